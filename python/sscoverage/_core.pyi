# Stubs for the compiled module sscoverage._core (src/bindings/*.rs), checked by
# `python -m mypy.stubtest sscoverage._core` in tests/test_typing.py.  Arrays are
# contiguous numpy arrays of the dtypes named; dicts hold arrays and numbers by name.

from typing import Any, Callable, Sequence, final

import numpy as np
from numpy.typing import NDArray

__version__: str
__all__ = [
    "__version__",
    "CoreDesign",
    "DomainEstimates",
    "GlmBatchPass",
    "GlmFit",
    "GlmRows",
    "InterruptionSpells",
    "ModelColumns",
    "Proportions",
    "WeightingReport",
    "svyvar",
    "svyvar_of_sums",
    "glm_batch_pass",
    "glm_batch_scores",
    "glm_fit",
    "glm_rows",
    "glm_replicate_coefficients",
    "glm_replicate_fits",
    "glm_streamed_fit",
    "threshold_candidate",
    "threshold_covariance",
    "threshold_score_test",
    "ThresholdCandidate",
    "ThresholdScoreTest",
    "IrlsRun",
    "dense_codes",
    "survival_census",
    "SurvivalCensus",
    "all_finite",
    "poststratify",
    "rake",
    "rake_cells",
    "CellRake",
    "calibrate",
    "trim_weights",
    "interruption_spells",
    "select",
    "pps_probabilities",
    "joint_probabilities",
    "accumulate_batch",
    "DomainQuantiles",
    "quantile_proportions",
    "domain_degf",
    "WindowCounts",
    "window_counts",
    "window_quantiles",
    "repeated_cumsum",
    "rows_quantiles",
    "SurvivalCurve",
    "HazardCurves",
    "km_product_limit",
    "km_time_tables",
    "km_merge_tables",
    "km_table_product_limit",
    "km_batch_entries",
    "km_merge_entries",
    "km_unit_bins",
    "CoxFit",
    "CoxSolution",
    "cox_batch_moments",
    "cox_batch_spread",
    "cox_batch_table",
    "cox_fit",
    "cox_replicates",
    "cox_scaling",
    "cox_streamed_fit",
    "proportion",
    "joint_estimate",
    "joint_estimate_from_sums",
    "proportion_from_sums",
    "proportion_first_steps",
    "FayHerriotFit",
    "fay_herriot_fit",
    "fay_herriot_bootstrap",
    "SurveyError",
    "DesignError",
    "LonelyPsuError",
    "ShapeError",
    "EstimationError",
    "CalibrationError",
    "SamplingError",
    "HistoryError",
]

_F64 = NDArray[np.float64]
_U32 = NDArray[np.uint32]
_Bool = NDArray[np.bool_]

class SurveyError(ValueError): ...
class DesignError(SurveyError): ...
class LonelyPsuError(DesignError): ...
class ShapeError(SurveyError): ...
class EstimationError(SurveyError): ...
class CalibrationError(SurveyError): ...
class SamplingError(SurveyError): ...
class HistoryError(SurveyError): ...

# Typed records the core returns (frozen; attributes only).
@final
class DomainEstimates:
    p: int
    estimate: _F64
    vcov: _F64
    n_rows: _F64
    weight_sum: _F64
    dropped_replicates: int
    deff: _F64 | None
    offset: int | None

@final
class GlmFit:
    link: str
    coefficients: _F64
    previous: _F64 | None
    cov_unscaled: NDArray[np.float64]
    deviance: float
    iterations: int
    converged: bool
    boundary: bool
    separated: bool
    pearson: _F64 | None
    vcov: NDArray[np.float64] | None

@final
class GlmRows:
    fitted: _F64
    working_weights: _F64
    working_residuals: _F64
    pearson_residuals: _F64
    influence: NDArray[np.float64]

@final
class ModelColumns:
    """A model matrix's columns, each a product of numeric columns (k, None), level
    indicators (k, level) of codes and threshold terms (k, kind, at) of numeric columns."""

    def __new__(
        cls,
        n: int,
        values: list[_F64],
        codes: list[_U32],
        columns: list[list[tuple[int, int | None] | tuple[int, str, float]]],
    ) -> ModelColumns: ...
    @property
    def n(self) -> int: ...
    @property
    def p(self) -> int: ...
    def dense(self, columns: list[int] | None = None) -> NDArray[np.float64]: ...
    def with_threshold(self, j: int, x: _F64, kind: str, at: float) -> ModelColumns: ...

@final
class GlmBatchPass:
    deviance: float
    valid: bool
    triangle: _F64 | None
    informative: int
    drift: float
    def __new__(
        cls, deviance: float, valid: bool, triangle: _F64 | None, informative: int, drift: float
    ) -> GlmBatchPass: ...
    def __reduce__(self) -> tuple[Any, Any]: ...

@final
class IrlsRun:
    link: str
    coefficients: _F64
    previous: _F64 | None
    cov_unscaled: NDArray[np.float64]
    deviance: float
    iterations: int
    converged: bool
    boundary: bool
    separated: bool

@final
class Proportions:
    n_rows: _F64
    weight_sum: _F64
    n_domain_rows: _F64
    domain_weight_sum: _F64
    estimate: _F64
    variance: _F64
    degf: _F64
    dropped_replicates: int
    mean_weight: _F64
    coefficient: _F64
    cov_unscaled: _F64
    naive_cov: _F64
    deviance: _F64
    dispersion: _F64
    model_rows: _F64
    prior_weight: _F64
    prior_weighted_y: _F64
    prior_entropy: _F64

@final
class WeightingReport:
    iterations: int
    converged: bool
    misfit: float
    before: _F64
    after: _F64
    replicates_not_converged: int

@final
class InterruptionSpells:
    first_contribution: _F64
    paid_years: _U32
    n_interruptions: _U32
    years_interrupted: _U32
    years_since_first_job: _U32
    density: _F64
    n_reentries: _U32
    spell_person: NDArray[np.int64]
    spell_start: NDArray[np.int64]
    spell_years: NDArray[np.int64]
    spell_reentered: NDArray[np.bool_]

@final
class CoreDesign:
    def __new__(
        cls,
        n_rows: int,
        clusters: list[_U32 | None],
        strata: list[_U32],
        fpc: list[_F64],
        weights: _F64 | None,
        nest: bool,
        lonely_psu: str,
        adjust_domain_lonely: bool,
        pps_method: str | None = None,
        pps_psum: float | None = None,
        pps_joint: _F64 | None = None,
        pps_variance: str = "HT",
        weights_roundtrip: bool = False,
        ids_labels: NDArray[np.integer[Any]] | None = None,
    ) -> CoreDesign: ...
    @staticmethod
    def from_replicate_weights(
        weights: _F64, analysis: NDArray[np.float64], scale: float, rscales: list[float], mse: bool
    ) -> CoreDesign: ...
    def as_replicates(
        self,
        kind: str,
        rho: float = 0.0,
        mse: bool = False,
        replicates: int = 50,
        seed: int = 0,
        stratum_rank: list[int] | None = None,
        small: str = "fail",
        large: str = "split",
    ) -> CoreDesign: ...
    @property
    def is_replicate(self) -> bool: ...
    @property
    def replicate_scheme(self) -> tuple[float, list[float], bool, int] | None: ...
    def replicate_weights(self) -> _F64: ...
    def replicate_vcov(self, thetas: _F64, full: _F64) -> tuple[_F64, int]: ...
    @property
    def degf(self) -> int: ...
    def replicate_degf_in(self, in_domain: _Bool) -> int: ...
    @property
    def any_zero_weight(self) -> bool: ...
    @property
    def weights(self) -> _F64: ...
    @property
    def n_units(self) -> int: ...
    @property
    def unit_of_row(self) -> _U32: ...
    def influence_vcov(self, influence: _F64, in_domain: _Bool | None = None) -> _F64: ...
    def totals_vcov(self, totals: _F64) -> _F64: ...
    def estimate(
        self,
        kind: str,
        domain: _U32,
        n_domains: int,
        numeric: list[tuple[int, _F64]],
        categorical: list[tuple[int, _U32, int]],
        n_numerators: int = 0,
        deff: bool = False,
    ) -> DomainEstimates: ...
    def estimate_labels(
        self,
        kind: str,
        labels: NDArray[np.integer[Any]],
        numeric: list[tuple[int, _F64]],
        categorical: list[tuple[int, _U32, int]],
        n_numerators: int = 0,
        deff: bool = False,
        max_domains: int = 256,
    ) -> DomainEstimates | None: ...
    def estimate_from_sums(
        self,
        kind: str,
        table: _F64,
        squares: _F64,
        n_domains: int,
        width: int,
        n_numerators: int = 0,
        raked: tuple[_F64, CellRake] | None = None,
    ) -> DomainEstimates: ...

@final
class CellRake: ...

def proportion(
    design: CoreDesign,
    y: _F64,
    used: _U32,
    all: _U32 | None,
    n_domains: int,
    fit: bool,
    dispersion: bool,
    model_keeps_all_rows: bool,
) -> Proportions: ...
def proportion_from_sums(
    design: CoreDesign,
    table: _F64,
    squares: _F64,
    n_domains: int,
    n_rows: int,
    model_keeps_all_rows: bool,
    all: _F64 | None = None,
    first: _F64 | None = None,
    raked: tuple[_F64, CellRake] | None = None,
) -> Proportions: ...
def proportion_first_steps(
    weights: _F64, units: _U32, n_units: int, y: _F64, used: _U32, mean_weight: _F64
) -> _F64: ...
def joint_estimate_from_sums(
    design: CoreDesign,
    kind: str,
    table: _F64,
    n_domains: int,
    width: int,
    present: _Bool | None = None,
    raked: tuple[_F64, CellRake] | None = None,
) -> DomainEstimates: ...
def joint_estimate(
    design: CoreDesign,
    kind: str,
    domain: _U32,
    n_domains: int,
    numeric: list[tuple[int, _F64]],
    categorical: list[tuple[int, _U32, int]],
    in_design: _Bool | None = None,
) -> DomainEstimates: ...
def svyvar(values: _F64, weights: _F64) -> float: ...
def svyvar_of_sums(weight: float, first: float, second: float, n_obs: float) -> float: ...
def dense_codes(labels: NDArray[np.integer[Any]]) -> tuple[_U32, NDArray[np.int64]]: ...

# quantile.rs: each domain's distribution, read from windows (step rules) or sorted;
# quantiles at levels (n_domains x k).
@final
class DomainQuantiles:
    def __new__(
        cls, design: CoreDesign, values: _F64, domain: _U32, n_domains: int, rule: str, min_window_rows: int = ...
    ) -> DomainQuantiles: ...
    def at(self, levels: _F64) -> _F64: ...
    def replicate_variances(self, probs: list[float], full: _F64) -> tuple[_F64, list[int]]: ...
    @property
    def n_rows(self) -> NDArray[np.uintp]: ...
    @property
    def weight_sum(self) -> _F64: ...

def quantile_proportions(
    design: CoreDesign, values: _F64, domain: _U32, n_domains: int, q: _F64
) -> tuple[_F64, _F64]: ...
def domain_degf(design: CoreDesign, domain: _U32, n_domains: int) -> NDArray[np.uintp]: ...
# A streamed design's quantiles: windows of the distributions counted batch by batch,
# then read by R's step rule.
@final
class WindowCounts:
    target: NDArray[np.uint32]
    bin: NDArray[np.uint64]
    count: NDArray[np.uint64]
    weight: _F64
    first: _F64
    low: NDArray[np.uint64]
    high: NDArray[np.uint64]
    below_count: NDArray[np.uint64]
    below_weight: _F64
    below_max: NDArray[np.uint64]
    above_min: NDArray[np.uint64]

def window_counts(
    values: _F64,
    weights: _F64,
    domain: _U32,
    slot: _U32,
    per_domain: int,
    lo: NDArray[np.uint64],
    hi: NDArray[np.uint64],
    shift: _U32,
) -> WindowCounts: ...
def window_quantiles(
    rule: str, x: _F64, cumw: _F64, starts: NDArray[np.uint64], totals: _F64, levels: _F64
) -> _F64: ...
def repeated_cumsum(weight: float, counts: NDArray[np.uint64]) -> _F64: ...
def rows_quantiles(rule: str, values: _F64, weights: _F64, levels: _F64) -> _F64: ...
def all_finite(values: _F64) -> bool: ...
def glm_fit(
    x: ModelColumns,
    y: _F64,
    weights: _F64,
    family: str,
    link: str | None = None,
    offset: _F64 | None = None,
    epsilon: float = 1e-8,
    maxit: int = 25,
    design: CoreDesign | None = None,
    rows: NDArray[np.int64] | None = None,
) -> GlmFit: ...
def glm_rows(
    x: ModelColumns,
    y: _F64,
    weights: _F64,
    family: str,
    link: str | None,
    beta: _F64,
    previous: _F64 | None,
    cov_unscaled: NDArray[np.float64],
) -> GlmRows: ...
def glm_replicate_coefficients(
    x: ModelColumns,
    y: _F64,
    replicate_weights: NDArray[np.float64],
    start: _F64,
    family: str,
    link: str | None = None,
    epsilon: float = 1e-8,
    maxit: int = 25,
) -> NDArray[np.float64]: ...
def glm_replicate_fits(
    x: ModelColumns,
    y: _F64,
    replicate_weights: NDArray[np.float64],
    family: str,
    link: str | None = None,
    epsilon: float = 1e-8,
    maxit: int = 25,
) -> tuple[NDArray[np.float64], _F64]: ...
def glm_batch_pass(
    x: ModelColumns,
    y: _F64,
    weights: _F64,
    family: str,
    link: str | None = None,
    beta: _F64 | None = None,
    step: bool = True,
    reference: _F64 | None = None,
) -> GlmBatchPass: ...
def glm_streamed_fit(
    pass_fn: Any, p: int, family: str, link: str | None = None, epsilon: float = 1e-8, maxit: int = 25
) -> IrlsRun: ...
def glm_batch_scores(
    x: ModelColumns,
    y: _F64,
    weights: _F64,
    family: str,
    link: str | None,
    beta: _F64,
    previous: _F64 | None,
    units: _U32,
    n_units: int,
) -> tuple[_F64, _F64, _F64]: ...

# weighting.rs: the adjusted design and a report of iterations, misfit, totals before / after.
@final
class ThresholdCandidate:
    deviance: float
    coefficient: float
    naive_variance: float
    converged: bool
    boundary: bool
    separated: bool
    influence: _F64 | None

@final
class ThresholdScoreTest:
    converged: bool
    boundary: bool
    separated: bool
    sums: NDArray[np.float64] | None
    variances: NDArray[np.float64] | None

def threshold_candidate(
    x: ModelColumns,
    j: int,
    y: _F64,
    weights: _F64,
    family: str,
    link: str | None = None,
    epsilon: float = 1e-8,
    maxit: int = 25,
    design: CoreDesign | None = None,
    rows: NDArray[np.int64] | None = None,
) -> ThresholdCandidate: ...
def threshold_covariance(design: CoreDesign, influence: NDArray[np.float64], rows: NDArray[np.int64]) -> NDArray[np.float64]: ...
def threshold_score_test(
    x: ModelColumns,
    y: _F64,
    weights: _F64,
    family: str,
    link: str | None,
    epsilon: float,
    maxit: int,
    values: _F64,
    kind: str,
    candidates: _F64,
    design: CoreDesign,
    rows: NDArray[np.int64],
    signs: NDArray[np.float64],
) -> ThresholdScoreTest: ...
def poststratify(design: CoreDesign, cells: _U32, targets: _F64) -> tuple[CoreDesign, WeightingReport]: ...
def rake(
    design: CoreDesign, margins: list[tuple[_U32, _F64]], maxit: int = 10, epsilon: float = 1.0
) -> tuple[CoreDesign, WeightingReport]: ...
def rake_cells(
    margins: list[tuple[_U32, _F64]],
    weight: _F64,
    counts: _F64,
    base_by_unit: _F64,
    zero_by_unit: _F64,
    maxit: int = 10,
    epsilon: float = 1.0,
) -> tuple[_F64, CellRake, WeightingReport]: ...
def calibrate(
    design: CoreDesign,
    x: _F64,
    population: _F64,
    calfun: str = "linear",
    lower: float = ...,
    upper: float = ...,
    epsilon: float = 1e-7,
    maxit: int = 50,
) -> tuple[CoreDesign, WeightingReport]: ...
def trim_weights(
    design: CoreDesign, lower: float = ..., upper: float = ..., strict: bool = False
) -> tuple[CoreDesign, WeightingReport]: ...

# survival.rs
_TimeTable = tuple[_F64, NDArray[np.uint64], _F64, _F64, NDArray[np.uint64]]
_BinPlan = tuple[_F64, NDArray[np.uint64], _F64, int]
_Bins = tuple[_F64, _F64, _Bool]

@final
class SurvivalCensus:
    @property
    def missing_time(self) -> int: ...
    @property
    def infinite_time(self) -> int: ...
    @property
    def negative_time(self) -> int: ...
    @property
    def missing_event(self) -> int: ...
    @property
    def non_binary_event(self) -> int: ...

def survival_census(time: _F64 | None, event: _F64) -> SurvivalCensus: ...

@final
class SurvivalCurve:
    @property
    def time(self) -> _F64: ...
    @property
    def surv(self) -> _F64: ...
    @property
    def n_rows(self) -> int: ...

@final
class HazardCurves:
    def __new__(
        cls, time: _F64, event: _F64, weights: _F64, curve: _U32 | None, n_curves: int
    ) -> HazardCurves: ...
    @staticmethod
    def from_tables(tables: list[_TimeTable], entry_weights: list[_F64]) -> HazardCurves: ...
    @property
    def n_rows(self) -> list[int]: ...
    def curve(self, d: int) -> tuple[_F64, _F64]: ...
    def log_variance(self, design: CoreDesign, d: int, entries: list[int]) -> tuple[_F64, int]: ...
    def bin_plan(self, d: int, entries: list[int]) -> _BinPlan: ...
    def variance_from_bins(
        self, design: CoreDesign, d: int, entries: list[int], entry_units: _U32, bins: _Bins
    ) -> _F64: ...

def km_product_limit(
    time: _F64, event: _F64, weights: _F64, curve: _U32 | None, n_curves: int
) -> list[SurvivalCurve]: ...


def km_time_tables(
    time: _F64, event: _F64, weights: _F64, curve: _U32 | None, n_curves: int
) -> list[_TimeTable]: ...
def km_merge_tables(earlier: _TimeTable, later: _TimeTable) -> _TimeTable: ...
def km_table_product_limit(table: _TimeTable) -> SurvivalCurve: ...
def km_batch_entries(
    time: _F64, event: _F64, weights: _F64, units: _U32, curve: _U32 | None, n_curves: int
) -> list[tuple[_TimeTable, _F64, _U32]]: ...
def km_merge_entries(
    earlier: tuple[_TimeTable, _F64, _U32], later: tuple[_TimeTable, _F64, _U32]
) -> tuple[_F64, _U32]: ...
def km_unit_bins(
    time: _F64,
    event: _F64,
    weights: _F64,
    units: _U32,
    n_units: int,
    curve: _U32 | None,
    n_curves: int,
    d: int,
    plan: _BinPlan,
) -> _Bins: ...
@final
class CoxFit:
    @property
    def coefficients(self) -> _F64: ...
    @property
    def var(self) -> _F64: ...
    @property
    def loglik(self) -> _F64: ...
    @property
    def iterations(self) -> int: ...
    @property
    def converged(self) -> bool: ...
    @property
    def infinite(self) -> list[int]: ...
    @property
    def influence(self) -> _F64 | None: ...
    @property
    def vcov(self) -> _F64 | None: ...
    @property
    def solution(self) -> CoxSolution: ...

def cox_fit(
    x: ModelColumns,
    columns: list[int],
    model_rows: NDArray[np.int64] | None,
    time: _F64,
    event: _Bool,
    weights: _F64,
    ties: str = "efron",
    eps: float = 1e-9,
    maxit: int = 20,
    design: CoreDesign | None = None,
    rows: NDArray[np.int64] | None = None,
    domain: NDArray[np.int64] | None = None,
) -> CoxFit: ...
def cox_replicates(
    x: ModelColumns,
    columns: list[int],
    model_rows: NDArray[np.int64] | None,
    time: _F64,
    event: _Bool,
    weights: _F64,
    replicate_weights: _F64,
    init: list[float],
    ties: str = "efron",
    eps: float = 1e-9,
    maxit: int = 20,
) -> _F64: ...

def cox_batch_moments(x: _F64, time: _F64, event: _Bool, weights: _F64) -> tuple[float, _F64, list[bool]]: ...
def cox_scaling(
    total: float, sums: Sequence[float], dummy: Sequence[bool], spread: Sequence[float] | None = None
) -> tuple[_F64, _F64]: ...
def cox_batch_spread(x: _F64, time: _F64, event: _Bool, weights: _F64, centre: Sequence[float]) -> _F64: ...
def cox_batch_table(
    x: _F64,
    time: _F64,
    event: _Bool,
    weights: _F64,
    centre: Sequence[float],
    scale: Sequence[float],
    beta: _F64,
    event_times: _F64,
) -> _F64: ...
@final
class CoxSolution:
    def __new__(
        cls,
        centre: Sequence[float],
        scale: Sequence[float],
        beta: Sequence[float],
        var: Sequence[float],
        times: Sequence[float],
        steps: Sequence[float],
    ) -> CoxSolution: ...
    def __reduce__(self) -> tuple[Any, Any]: ...
    def unit_totals(
        self, x: _F64, time: _F64, event: _Bool, weights: _F64, units: _U32, n_units: int
    ) -> tuple[_F64, _F64]: ...

def cox_streamed_fit(
    pass_fn: Callable[[_F64], _F64],
    centre: Sequence[float],
    scale: Sequence[float],
    event_times: Sequence[float],
    ties: str = "efron",
    eps: float = 1e-9,
    maxit: int = 20,
) -> CoxFit: ...

# sampling.rs
def select(size: _F64 | None, strata: _U32, n: list[int], method: str, seed: int) -> tuple[_U32, _F64]: ...
def pps_probabilities(size: _F64, n: int) -> _F64: ...
def joint_probabilities(prob: _F64, design: str) -> _F64: ...

# stream.rs
def accumulate_batch(
    weights: _F64,
    units: _U32,
    n_units: int,
    domain: _U32,
    n_domains: int,
    numeric: list[tuple[int, _F64]],
    categorical: list[tuple[int, _U32, int]],
    with_squares: bool = False,
) -> tuple[_F64, _F64]: ...

# coverage.rs
def interruption_spells(
    person: _U32, year: NDArray[np.int32], contributed: _Bool, first_job: _F64, survey_year: int
) -> InterruptionSpells: ...

# small_area.rs
@final
class FayHerriotFit:
    @property
    def variance(self) -> float: ...
    @property
    def iterations(self) -> int: ...
    @property
    def converged(self) -> bool: ...
    @property
    def at_zero(self) -> bool: ...
    @property
    def loglik(self) -> float: ...
    @property
    def beta(self) -> _F64: ...
    @property
    def beta_vcov(self) -> _F64: ...
    @property
    def synthetic(self) -> _F64: ...
    @property
    def gamma(self) -> _F64: ...
    @property
    def eblup(self) -> _F64: ...
    @property
    def mse(self) -> _F64: ...
    @property
    def synthetic_out(self) -> _F64: ...
    @property
    def mse_out(self) -> _F64: ...

def fay_herriot_fit(
    y: _F64, x: _F64, psi: _F64, x_out: _F64, method: str = "REML", max_iter: int = 100, precision: float = 1e-4
) -> FayHerriotFit: ...
def fay_herriot_bootstrap(
    fit: FayHerriotFit,
    y: _F64,
    x: _F64,
    psi: _F64,
    x_out: _F64,
    scale: str,
    seed: int,
    first: int,
    count: int,
    max_iter: int = 100,
    precision: float = 1e-4,
) -> tuple[_F64, int]: ...
