"""sscoverage: design-based survey estimation for social-insurance coverage and lapse.

>>> import sscoverage as ssc
>>> design = ssc.Design(df, ids="psu", strata="stratum", weights="weight")
>>> design.mean("covered", by="population_type").to_pandas()
"""

from ._core import __version__
from .coverage import (
    SchemeTree,
    band_shares,
    contribution_histories,
    coverage_table,
    employment_presumption,
    interruption_summary,
    lapse_indicators,
    lapse_rates,
    population_type,
    presumed_coverage,
    profile,
    reasons,
    reentry_curve,
    transition_table,
)
from .datasets import demo_sample
from .design import Design
from .exceptions import (
    CalibrationError,
    ColumnError,
    ConvergenceError,
    ConvergenceWarning,
    SurveyWarning,
    DesignError,
    EmptyDomainError,
    EstimationError,
    FormulaError,
    HistoryError,
    LonelyPsuError,
    MappingError,
    MissingValueError,
    NotSupportedError,
    OptionError,
    SamplingError,
    SchemeTreeError,
    SerializationError,
    ShapeError,
    SurveyError,
    ThresholdError,
)
from .replicates import ReplicateDesign
from .streamed import StreamedDesign
from .association import ChisqTest
from .models import GLMResult, WaldTest
from .threshold import ThresholdResult
from .survival import CoxResult, SurvivalCurves, person_period
from .results import Estimates
from .io import read_survey
from .publication import ReliabilityRules, SuppressedTable, suppress
from .serialize import load
from . import plots
from . import coverage, datasets, margins, sampling, simulate, small_area, weighting

__all__ = [
    "__version__",
    "Design",
    "ReplicateDesign",
    "StreamedDesign",
    "Estimates",
    "demo_sample",
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
    "SerializationError",
    "NotSupportedError",
    "OptionError",
    "ColumnError",
    "MissingValueError",
    "EmptyDomainError",
    "ConvergenceError",
    "ConvergenceWarning",
    "SurveyWarning",
    "GLMResult",
    "WaldTest",
    "ChisqTest",
    "ThresholdResult",
    "ThresholdError",
    "simulate",
    "CoxResult",
    "SurvivalCurves",
    "person_period",
    "SchemeTree",
    "coverage_table",
    "population_type",
    "lapse_indicators",
    "lapse_rates",
    "profile",
    "reasons",
    "employment_presumption",
    "presumed_coverage",
    "contribution_histories",
    "interruption_summary",
    "reentry_curve",
    "band_shares",
    "transition_table",
    "read_survey",
    "load",
    "suppress",
    "ReliabilityRules",
    "SuppressedTable",
    "plots",
    "small_area",
]
