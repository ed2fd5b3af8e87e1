"""sscoverage: design-based survey estimation for social-insurance coverage and lapse.

>>> import sscoverage as ssc
>>> design = ssc.Design(df, ids="psu", strata="stratum", weights="weight")
>>> design.mean("covered", by="population_type").to_pandas()
"""

from ._core import __version__
from .datasets import demo_sample
from .design import Design
from .exceptions import (
    CalibrationError,
    ColumnError,
    ConvergenceError,
    ConvergenceWarning,
    DesignError,
    EmptyDomainError,
    EstimationError,
    LonelyPsuError,
    MissingValueError,
    ShapeError,
    SurveyError,
)
from .replicates import ReplicateDesign
from .models import GLMResult
from .results import Estimates

__all__ = [
    "__version__",
    "Design",
    "ReplicateDesign",
    "Estimates",
    "demo_sample",
    "SurveyError",
    "DesignError",
    "LonelyPsuError",
    "ShapeError",
    "EstimationError",
    "CalibrationError",
    "ColumnError",
    "MissingValueError",
    "EmptyDomainError",
    "ConvergenceError",
    "ConvergenceWarning",
    "GLMResult",
]
