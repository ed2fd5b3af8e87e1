"""The exception classes of sscoverage, all under :class:`SurveyError`.

The classes raised by the Rust core are created there (``sscoverage._core``); the
ones only Python can detect (a missing column, a missing value) are defined here.
"""

from __future__ import annotations

from ._core import (
    CalibrationError,
    DesignError,
    EstimationError,
    HistoryError,
    LonelyPsuError,
    SamplingError,
    ShapeError,
    SurveyError,
)



def _message(self: BaseException) -> str:
    return str(self.args[0]) if self.args else ""


# The core raises some errors with structured details after the message (a stratum's
# code, a column's role, a cell's margin and level) for Python to name in the user's
# labels; wherever such an error is shown as it is, it reads as its message.
SurveyError.__str__ = _message  # type: ignore[method-assign,assignment]


class ColumnError(SurveyError, KeyError):
    """A column named in the call is not in the data, or has the wrong type."""

    __str__ = _message  # KeyError's own would quote the message


class MissingValueError(SurveyError):
    """A variable has missing values in rows the estimate would use."""


class EmptyDomainError(EstimationError):
    """A domain (subset, by-level) holds no rows."""


class OptionError(SurveyError, ValueError, TypeError):
    """An argument outside its allowed values or of the wrong type (a method name, a
    level, a family); the message names the argument and the values it takes."""


class FormulaError(SurveyError, ValueError):
    """A formula outside sscoverage's formula grammar (an unknown function, attribute
    access, a string where a column belongs); nothing of it was evaluated."""


class SerializationError(SurveyError, ValueError):
    """A saved result or design (JSON) that is corrupt, from an unknown version, or
    holds something other than the data sscoverage writes; the message names the field."""


class NotSupportedError(DesignError):
    """A method that this kind of design cannot serve; the message says what to do instead."""


class MappingError(SurveyError):
    """A column-mapping file of the report that cannot be used (not JSON, unknown keys)."""


class SchemeTreeError(SurveyError):
    """A scheme tree that is not a tree: a cycle, or a scheme with two parents."""


class ConvergenceError(EstimationError):
    """An iterative fit did not reach a solution (no convergence, or separation)."""


class ThresholdError(EstimationError):
    """A threshold model cannot be fitted as asked: a grid candidate outside the range of
    the threshold variable, too few rows on one side of a candidate, no usable grid."""


class SurveyWarning(UserWarning):
    """Something R's survey warns about: an fpc that varies within a stratum, a negative
    variance (R's "NaNs produced"), a domain left out of a table for zero weight."""


class ConvergenceWarning(UserWarning):
    """An iterative fit converged, but only after stepping back from the edge of its range;
    or a result that did not converge was kept on request (``force=True``)."""


__all__ = [
    "SurveyError",
    "DesignError",
    "LonelyPsuError",
    "ShapeError",
    "EstimationError",
    "CalibrationError",
    "SamplingError",
    "HistoryError",
    "SchemeTreeError",
    "MappingError",
    "FormulaError",
    "OptionError",
    "SerializationError",
    "NotSupportedError",
    "ColumnError",
    "MissingValueError",
    "EmptyDomainError",
    "ConvergenceError",
    "ConvergenceWarning",
    "SurveyWarning",
    "ThresholdError",
]
