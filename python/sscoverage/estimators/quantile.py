"""Quantiles of a survey variable with Woodruff or score (Francisco-Fuller) intervals.

Mirrors R's ``survey::svyquantile`` (survey >= 4.1): the quantile rules ``qrule`` and the
interval types ``interval.type`` are R's, step by step, so estimates and interval limits
are the same data values R reports.

The core does the work on the rows (``sscoverage._core.DomainQuantiles``): for R's step
rules (math, school) it reads each quantile and interval limit from a window of the
domain's distribution (a histogram of the values places the level, one pass gathers the
rows there), with R's rule and R's long-double sums; other rules, windows whose sums
cannot decide at the last bit, and the replicates sort the domain's rows once.  The
proportions below the quantiles of every domain take one pass of the variance engine.
Here: names, the missing-value policy, R's intervals for those proportions (scipy's t and
beta quantiles), labels and the result.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from .. import _core
from .._frames import OUTSIDE
from .._progress import track
from .._rmath import iqr, qt, r_sum, uniroot
from ..exceptions import ColumnError, DesignError, EstimationError, MissingValueError, OptionError, SurveyWarning
from ..results.estimates import Estimates
from .domains import coded_domains, linear
from .proportions import interval_estimates, keeps_all_rows, proportion_interval, rows_in_r

INTERVAL_TYPES = ("mean", "beta", "xlogit", "asin", "score", "quantile")
#: R's woodruffCI methods: an interval for the proportion below the quantile.
WOODRUFF = ("mean", "beta", "xlogit", "asin")
QRULES = ("math", "school", "shahvaish", *(f"hf{i}" for i in range(1, 10)))

QRule = Callable[[np.ndarray, np.ndarray, float], float]


class _PythonRule:
    """A ``qrule`` given as a Python function ``(x, w, p)``, as R's svyquantile allows:
    the :class:`sscoverage._core.DomainQuantiles` calls, with the function applied to each
    domain's rows (and each replicate's weights) in Python, since it is Python code."""

    def __init__(self, design: Any, x: np.ndarray, codes: np.ndarray, n_domains: int, rule: QRule, progress: bool):
        self._core = design.core
        self._rows = [np.flatnonzero(codes == d) for d in range(n_domains)]
        self._x = [x[rows] for rows in self._rows]
        self._w = design.weights
        self._rule = rule
        self._progress = progress
        self.n_rows = np.array([len(rows) for rows in self._rows])
        self.weight_sum = np.array([r_sum(self._w[rows]) for rows in self._rows])

    def at(self, levels: np.ndarray) -> np.ndarray:
        return np.array(
            [[np.nan if np.isnan(p) else self._rule(x, self._w[rows], p) for p in ps]
             for ps, x, rows in zip(levels, self._x, self._rows)],
            dtype=np.float64,
        ).reshape(levels.shape)

    def replicate_variances(self, probs: list[float], full: np.ndarray) -> tuple[np.ndarray, list[int]]:
        core = self._core
        reps = core.replicate_weights()
        n_rep = reps.shape[1]
        var, dropped = np.empty_like(full), []
        for d, (x, rows) in enumerate(zip(self._x, self._rows)):
            for j, p in enumerate(probs):
                steps = track(range(n_rep), n_rep, f"quantile {p:g} replicates", self._progress)
                thetas = np.array([[self._rule(x, reps[rows, r], p)] for r in steps])
                v, n_dropped = core.replicate_vcov(thetas, full[d, j:j + 1])
                var[d, j] = v[0, 0]
                dropped.append(n_dropped)
        return var, dropped


def _distributions(design: Any, x: np.ndarray, codes: np.ndarray, n_domains: int, qrule: Any, progress: bool) -> Any:
    """Each domain's weighted distribution of x: the core's for R's rules."""
    if callable(qrule):
        return _PythonRule(design, x, codes, n_domains, qrule, progress)
    return _core.DomainQuantiles(design.core, x, codes, n_domains, qrule)


# ---------------------------------------------------------------- intervals
def _woodruff(design: Any, dist: Any, x: np.ndarray, codes: np.ndarray, qhat: np.ndarray, method: str, alpha: float,
              df: np.ndarray, n_rows_in_r: np.ndarray, degf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """R's ``survey:::woodruffCI`` for every domain and quantile at once: an interval for
    the proportion of the domain at or below the estimate, read back through the rule."""
    est, var = _core.quantile_proportions(design.core, x, codes, len(qhat), qhat)
    with np.errstate(divide="ignore", invalid="ignore"):
        lo, hi = proportion_interval(method, est, var, 1 - alpha, df[:, None], n_rows_in_r[:, None], degf[:, None],
                                     alpha)
    # Outside [0, 1] the proportion has no quantile: R reports NaN there.
    return _limits(dist, np.where(np.isnan(lo) | (lo < 0), np.nan, lo), np.where(np.isnan(hi) | (hi > 1), np.nan, hi))


def _limits(dist: Any, low_levels: np.ndarray, up_levels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The quantiles at the lower and upper limits' levels (n_domains x k each), in one
    reading of the distributions."""
    k = low_levels.shape[1]
    both = dist.at(np.hstack([low_levels, up_levels]))
    return both[:, :k], both[:, k:]


def _score(dom: Any, x: np.ndarray, p: float, alpha: float, df: float) -> tuple[float, float]:
    """R's ``survey:::ffullerCI``: invert the score test of P(X > theta) = 1 - p, giving
    the levels whose quantiles are the limits.

    The search interval, tolerance and the fractions below the roots are R's, over the
    rows R's design holds (for a domain of a calibrated or PPS design, all rows).  Each
    step of the root finder is one estimate pass of the core."""
    x_r = x[rows_in_r(dom)]

    def scoretest(theta: float, qlimit: float) -> float:
        est, v = linear(dom, ((x > theta) - (1 - p)).astype(np.float64))
        return float(est[0] / np.sqrt(v[0, 0]) - qlimit)

    spread = iqr(x_r)
    lower_t, upper_t = x_r.min() + spread / 100, x_r.max() - spread / 100
    tol = 1 / (100 * np.sqrt(len(x_r)))
    try:
        with np.errstate(divide="ignore", invalid="ignore"):
            qlow = uniroot(lambda t: scoretest(t, qt(alpha / 2, df, lower_tail=False)), lower_t, upper_t, tol)
            qup = uniroot(lambda t: scoretest(t, qt(alpha / 2, df)), lower_t, upper_t, tol)
    except EstimationError as err:
        raise EstimationError(
            f"score interval for the {p:g} quantile: {err} (as R's ffullerCI fails here; too few "
            "rows or PSUs for this interval): use interval_type='mean' or 'beta'"
        ) from None
    # R maps the roots back through the rule at the unweighted fraction below them.
    return float(np.mean(x_r <= qlow)), float(np.mean(x_r <= qup))


# ---------------------------------------------------------------- estimator
def quantile_request(y: str | Sequence[str], quantiles: Any, level: Any) -> tuple[list[str], np.ndarray]:
    """The variables and probabilities a quantile call asks for, checked with its level
    (in memory and streamed alike)."""
    names = [y] if isinstance(y, str) else list(y)
    if not names:
        raise EstimationError("name at least one variable")
    try:
        probs = np.atleast_1d(np.asarray(quantiles, dtype=np.float64))
    except (TypeError, ValueError):
        raise OptionError(f"quantiles={quantiles!r}: give probabilities between 0 and 1, as 0.5 or [0.25, 0.75]") from None
    if probs.size == 0 or np.any(~((probs > 0) & (probs < 1))):
        raise EstimationError(f"quantiles must lie strictly between 0 and 1, not {probs.tolist()}")
    if isinstance(level, bool) or not isinstance(level, (int, float, np.floating)) or not 0 < level < 1:
        raise OptionError(f"level={level!r}: the confidence level is a number between 0 and 1, as 0.95")
    return names, probs


def quantile(
    design: Any,
    y: str | Sequence[str],
    quantiles: float | Sequence[float] = (0.5,),
    by: Any = None,
    level: float = 0.95,
    qrule: str | QRule = "math",
    interval_type: str = "mean",
    na_rm: bool = False,
    df: float | None = None,
    progress: bool = True,
) -> Estimates:
    """Weighted quantiles with confidence intervals; see :meth:`Design.quantile`."""
    if interval_type == "quantile" and not design.is_replicate:
        raise DesignError("interval_type='quantile' re-estimates with replicate weights: it needs a replicate design")
    if interval_type == "score" and design.is_replicate:
        raise DesignError("interval_type='score' is for linearisation designs (as R)")
    names, probs = quantile_request(y, quantiles, level)
    alpha = 1 - level  # R's svyquantile speaks of alpha
    if interval_type not in INTERVAL_TYPES:
        raise DesignError(f"interval_type={interval_type!r}; use one of {', '.join(INTERVAL_TYPES)}")
    if not callable(qrule) and qrule not in QRULES:
        raise DesignError(f"qrule={qrule!r}; use one of {', '.join(QRULES)} or a function (x, w, p)")
    frame = design.frame
    values = {}
    for name in names:
        if frame.is_factor(name) or not frame.is_numeric(name):
            raise ColumnError(f"column {name!r} must be numeric to take quantiles")
        values[name] = frame.numeric(name, "quantile variable")
    missing = np.any([np.isnan(v) for v in values.values()], axis=0)
    by_names, codes, n_dom, labels, notes = coded_domains(design, by)
    hit = missing & (codes != OUTSIDE)
    n_removed = int(hit.sum())
    if n_removed:
        if not na_rm:
            per_domain = np.bincount(codes[hit], minlength=n_dom)
            raise MissingValueError(
                f"{int(per_domain[per_domain > 0][0])} rows used have a missing value in {names}; pass na_rm=True "
                "to leave them out (they stay in the design)"
            )
        # As R: the rows leave the design, which is then a domain of fewer rows.
        codes = np.where(hit, OUTSIDE, codes).astype(np.uint32)
    whole = by is None and not design.is_subset and not n_removed
    # Each domain as R's subset of the design, for what R takes from it: degrees of
    # freedom of a replicate design, and the score interval's estimates.
    subsets = [design if whole else design.subset(codes == d) for d in range(n_dom)] if (
        design.is_replicate or interval_type == "score") else None
    if design.is_replicate:
        degf = np.array([dom.degf for dom in subsets], dtype=np.float64)
    else:
        degf = _core.domain_degf(design.core, codes, n_dom).astype(np.float64)
    dom_df = degf if df is None else np.full(n_dom, float(df))
    q = qt(1 - alpha / 2, dom_df)
    estimates, lowers, uppers, n_rows, weight_sums = [], [], [], None, None
    for name in names:
        # Rows in no domain (missing values among them) are not read.
        x = np.ascontiguousarray(values[name], dtype=np.float64)
        dist = _distributions(design, x, codes, n_dom, qrule, progress)
        n_rows, weight_sums = np.asarray(dist.n_rows), np.asarray(dist.weight_sum)
        qhat = dist.at(np.tile(probs, (n_dom, 1)))
        if np.isnan(qhat).any():
            d, j = np.argwhere(np.isnan(qhat))[0]
            where = f" in {labels[d]}" if by_names else ""
            raise EstimationError(
                f"the {probs[j]:g} quantile of {name!r}{where} is undefined: qrule {qrule!r} needs "
                f"{'two rows' if qrule == 'hf7' else 'a row'} of non-zero weight there"
            )
        if interval_type in WOODRUFF:
            # R's nrow(design) of each domain (every row for a calibrated or PPS design).
            n_rows_in_r = np.full(n_dom, design.n_rows) if keeps_all_rows(design) else n_rows
            lower, upper = _woodruff(design, dist, x, codes, qhat, interval_type, alpha, dom_df, n_rows_in_r, degf)
        elif interval_type == "quantile":
            # R's repCI: each replicate's quantile, their replicate variance, a t interval.
            var, dropped = dist.replicate_variances([float(p) for p in probs], qhat)
            if max(dropped, default=0):
                warnings.warn(f"{max(dropped)} replicates gave undefined estimates and were left out (R: "
                              "\"replicates gave NA results and were discarded\")", SurveyWarning, stacklevel=3)
            half = np.sqrt(var) * q[:, None]
            lower, upper = qhat - half, qhat + half
        else:
            low_levels, up_levels = np.empty_like(qhat), np.empty_like(qhat)
            for d, dom in enumerate(subsets):
                # Rows R keeps outside a domain (calibrated, PPS) carry their values too.
                x_dom = np.where(rows_in_r(dom) & ~missing, values[name], 0.0)
                for j, p in enumerate(probs):
                    low_levels[d, j], up_levels[d, j] = _score(dom, x_dom, p, alpha, dom_df[d])
            lower, upper = _limits(dist, low_levels, up_levels)
        estimates.append(qhat)
        lowers.append(lower)
        uppers.append(upper)
    return quantile_estimates(names, probs, labels, by_names, estimates, lowers, uppers, q, dom_df, n_rows,
                              weight_sums, level, interval_type, qrule, n_removed, notes)


def quantile_estimates(names: list[str], probs: np.ndarray, labels: list[dict[str, Any]], by_names: list[str],
                       estimates: list[np.ndarray], lowers: list[np.ndarray], uppers: list[np.ndarray], q: np.ndarray,
                       dom_df: np.ndarray, n_rows: np.ndarray, weight_sums: np.ndarray, level: float,
                       interval_type: str, qrule: Any, n_removed: int, notes: list[str]) -> Estimates:
    """The result of :func:`quantile` (in memory or streamed): `estimates`, `lowers` and
    `uppers` per variable (n_domains x quantiles), the t quantiles `q` and degrees of
    freedom `dom_df` of each domain, its rows and weight."""
    n_dom, k = len(labels), len(probs)
    # Per domain: the variables, each at every probability.
    est, lo, hi = (np.stack(a, axis=1).reshape(n_dom, -1) for a in (estimates, lowers, uppers))
    se = (hi - lo) / (2 * q[:, None])
    records = [
        {
            **labels[d],
            "variable": name,
            "quantile": p,
            "level": None,
            "label": f"{name}.{p:g}",
            "estimate": est[d, i * k + j],
            "se": se[d, i * k + j],
            "ci_low": lo[d, i * k + j],
            "ci_high": hi[d, i * k + j],
            "df": dom_df[d],
            "n": int(n_rows[d]),
            "weight_sum": weight_sums[d],
        }
        for d in range(n_dom)
        for i, name in enumerate(names)
        for j, p in enumerate(probs)
    ]
    # R reports only the variances of quantiles (vcov has NA off the diagonal).
    vcovs = []
    for d in range(n_dom):
        v = np.full((se.shape[1], se.shape[1]), np.nan)
        np.fill_diagonal(v, np.square(se[d]))
        vcovs.append(v)
    table = pd.DataFrame.from_records(records)
    rule = qrule if isinstance(qrule, str) else "custom"
    return interval_estimates(f"quantile ({interval_type} interval, qrule {rule})", table, vcovs, by_names, level,
                              n_removed, notes, "as in R: the interval for the proportion below the quantile leaves "
                              "[0, 1]; try interval_type='beta' or 'score'")
