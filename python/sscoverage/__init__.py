"""sscoverage: design-based survey estimation for social-insurance coverage and lapse.

>>> import sscoverage as ssc
>>> df = ssc.demo_sample(n_strata=4, psus_per_stratum=5, persons_per_psu=20, seed=1)
>>> design = ssc.Design(df, ids="psu", strata="stratum", weights="weight")
>>> design.mean("covered", by="population_type").to_pandas()[["population_type", "estimate", "se"]].round(3)
          population_type  estimate     se
0             local_urban     0.954  0.019
1             local_rural     0.867  0.031
2  urban_to_urban_migrant     0.916  0.038
3  rural_to_urban_migrant     0.982  0.016
"""

from ._core import __version__
from .study.coverage import (
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
from .study.datasets import demo_sample
from .design.design import Design
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
from .design.design import ReplicateDesign
from .stream.design import StreamedDesign
from .estimators.association import ChisqTest
from .models.glm import GLMResult, WaldTest
from .models.threshold import ThresholdResult
from .models.survival import CoxResult, SurvivalCurves, person_period
from .results.estimates import Estimates
from .io.labels import read_survey
from .results.publication import ReliabilityRules, SuppressedTable, suppress
from .io.serialize import load
from .results import plots
from .models import margins
from .design import sampling
from .study import coverage, datasets, simulate, small_area
from . import weighting

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
    "margins",
    "weighting",
    "sampling",
    "coverage",
    "datasets",
    "small_area",
]
