"""Quantiles of a survey variable with Woodruff or score (Francisco-Fuller) intervals.

Mirrors R's ``survey::svyquantile`` (survey >= 4.1, linearisation designs): the
quantile rules ``qrule`` and the interval types ``interval.type`` are R's, step by
step, so estimates and interval limits are the same data values R reports.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from .domains import domains, linear
from .._progress import track
from .._rmath import approx, iqr, qt, r_cumsum, r_mean, r_sum, uniroot
from ..exceptions import ColumnError, DesignError, EstimationError, MissingValueError, OptionError
from .proportions import rows_in_r, proportion_interval
from ..results.estimates import Estimates

INTERVAL_TYPES = ("mean", "beta", "xlogit", "asin", "score", "quantile")

QRule = Callable[[np.ndarray, np.ndarray, float], float]


# ---------------------------------------------------------------- quantile rules
def _positive(x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows with non-zero weight: every R rule drops the others first."""
    keep = w != 0
    return x[keep], w[keep]


def _qs(x: np.ndarray, w: np.ndarray, p: float) -> dict[str, float]:
    """R's ``survey:::qs``: the data values either side of the p-th weighted quantile."""
    ii = np.argsort(x, kind="stable")
    xs = x[ii]
    cumw = r_cumsum(w[ii])
    total = r_sum(w)
    below = np.flatnonzero(cumw <= p * total)
    pos = below[-1] if len(below) else 0
    nxt = pos if pos == len(xs) - 1 else pos + 1
    return {
        "qlow": xs[pos],
        "qup": xs[nxt],
        "ilow": pos + 1,
        "wlow": p - cumw[pos] / total,
        "wup": cumw[nxt] / total - p,
    }


def _qrule_math(x: np.ndarray, w: np.ndarray, p: float) -> float:
    q = _qs(*_positive(x, w), p)
    return q["qlow"] if q["wlow"] == 0 else q["qup"]


def _qrule_school(x: np.ndarray, w: np.ndarray, p: float) -> float:
    q = _qs(*_positive(x, w), p)
    return (q["qlow"] + q["qup"]) / 2 if q["wlow"] == 0 else q["qup"]


def _qrule_hf3(x: np.ndarray, w: np.ndarray, p: float) -> float:
    x, w = _positive(x, w)
    ux, group = np.unique(x, return_inverse=True)
    wsum = np.zeros(len(ux))
    np.add.at(wsum, group, w)  # R's rowsum: sums in row order, in double
    q = _qs(ux, wsum, p)
    return q["qlow"] if q["wlow"] == 0 and q["ilow"] % 2 == 0 else q["qup"]


def _qrule_hf4(x: np.ndarray, w: np.ndarray, p: float) -> float:
    q = _qs(*_positive(x, w), p)
    gamma = q["wlow"] / (q["wup"] + q["wlow"])
    return q["qlow"] * (1 - gamma) + q["qup"] * gamma


def _sorted_cumw(x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x, w = _positive(x, w)
    ii = np.argsort(x, kind="stable")
    return x[ii], w[ii], r_cumsum(w[ii])


def _interpolating(pk_of: Callable[[np.ndarray, np.ndarray], np.ndarray], method: str = "linear") -> QRule:
    """A rule that interpolates the sorted data at plotting positions pk(w, cumw)."""

    def rule(x: np.ndarray, w: np.ndarray, p: float) -> float:
        xs, ws, cumw = _sorted_cumw(x, w)
        return approx(pk_of(ws, cumw), xs, p, method=method, rule=2)

    return rule


def _previous(cumw: np.ndarray) -> np.ndarray:
    """R's ``c(0, cumw[-n])``."""
    return np.concatenate([[0.0], cumw[:-1]])


QRULES: dict[str, QRule] = {
    "math": _qrule_math,
    "hf1": _qrule_math,
    "school": _qrule_school,
    "hf2": _qrule_school,
    "hf3": _qrule_hf3,
    "hf4": _qrule_hf4,
    "hf5": _interpolating(lambda w, cw: (cw - w / 2) / cw[-1]),
    "hf6": _interpolating(lambda w, cw: cw / (cw[-1] + w[-1])),
    "hf7": _interpolating(lambda w, cw: _previous(cw) / cw[-2]),
    "hf8": _interpolating(lambda w, cw: (_previous(cw) * 1 / 3 + cw * 2 / 3) / (cw[-1] + w[-1] / 3)),
    "hf9": _interpolating(lambda w, cw: (_previous(cw) * 3 / 8 + cw * 5 / 8) / (cw[-1] + w[-1] / 4)),
    # R divides by the mean weight for the positions but subtracts half the raw weight.
    "shahvaish": _interpolating(
        lambda w, cw: (r_cumsum(w / r_mean(w)) + 0.5 - w / 2) / (len(w) + 1), method="constant"
    ),
}


def _rule(qrule: str | QRule) -> QRule:
    if callable(qrule):
        return qrule
    if qrule not in QRULES:
        raise DesignError(f"qrule={qrule!r}; use one of {', '.join(QRULES)} or a function (x, w, p)")
    return QRULES[qrule]


# ---------------------------------------------------------------- intervals
def _woodruff(dom: Any, x: np.ndarray, qhat: float, p: float, rule: QRule, alpha: float, df: float, method: str):
    """R's ``survey:::woodruffCI``: an interval for the proportion of the domain at or
    below the estimate, read back through the quantile rule."""
    rows = dom.in_subset()
    est, v = linear(dom, (x <= qhat).astype(np.float64))
    var = float(v[0, 0])
    with np.errstate(divide="ignore", invalid="ignore"):
        lo, hi = proportion_interval(method, float(est[0]), var, 1 - alpha, df, int(rows_in_r(dom).sum()), dom.degf,
                                     alpha)
    xs, ws = x[rows], dom.weights[rows]
    # Outside [0, 1] the proportion has no quantile: R reports NaN there.
    lower = np.nan if np.isnan(lo) or lo < 0 else rule(xs, ws, lo)
    upper = np.nan if np.isnan(hi) or hi > 1 else rule(xs, ws, hi)
    return lower, upper


def _score(dom: Any, x: np.ndarray, qhat: float, p: float, rule: QRule, alpha: float, df: float, method: str):
    """R's ``survey:::ffullerCI``: invert the score test of P(X > theta) = 1 - p.

    The search interval, tolerance and the fractions below the roots are R's, over the
    rows R's design holds (for a domain of a calibrated or PPS design, all rows)."""
    rows = dom.in_subset()
    xs, ws = x[rows], dom.weights[rows]
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
    return rule(xs, ws, float(np.mean(x_r <= qlow))), rule(xs, ws, float(np.mean(x_r <= qup)))


def _replicate(dom: Any, x: np.ndarray, qhat: float, p: float, rule: QRule, alpha: float, df: float, method: str,
               progress: bool = True):
    """R's ``survey:::repCI``: the quantile re-estimated with each replicate's weights,
    their replicate variance, and a symmetric interval."""
    rows = dom.in_subset()
    reps = dom.replicate_weights()[rows]
    xs = x[rows]
    n_rep = reps.shape[1]
    steps = track(range(n_rep), n_rep, f"quantile {p:g} replicates", progress)
    thetas = np.array([rule(xs, reps[:, r], p) for r in steps])
    se = float(np.sqrt(dom.replicate_vcov(thetas[:, None], np.array([qhat]))[0, 0]))
    half = se * qt(1 - alpha / 2, df)
    return qhat - half, qhat + half


# ---------------------------------------------------------------- estimator
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
    alpha = 1 - level  # R's svyquantile speaks of alpha
    if interval_type not in INTERVAL_TYPES:
        raise DesignError(f"interval_type={interval_type!r}; use one of {', '.join(INTERVAL_TYPES)}")
    rule = _rule(qrule)
    ci = {"score": _score, "quantile": partial(_replicate, progress=progress)}.get(interval_type, _woodruff)
    frame = design.frame
    values = {}
    for name in names:
        if frame.is_factor(name) or not frame.is_numeric(name):
            raise ColumnError(f"column {name!r} must be numeric to take quantiles")
        values[name] = frame.numeric(name, "quantile variable")
    missing = np.any([np.isnan(v) for v in values.values()], axis=0)
    by_names, doms, notes = domains(design, by)
    records, vcovs, n_removed = [], [], 0
    for labels, dom in doms:
        rows = dom.in_subset()
        hit = missing & rows
        if hit.any():
            if not na_rm:
                raise MissingValueError(
                    f"{int(hit.sum())} rows used have a missing value in {names}; pass na_rm=True to "
                    "leave them out (they stay in the design)"
                )
            # As R: the rows leave the design, which is then a domain of fewer rows.
            n_removed += int(hit.sum())
            dom = dom.subset(~missing)
            rows = dom.in_subset()
        dom_df = float(dom.degf) if df is None else float(df)
        w = dom.weights
        q = qt(1 - alpha / 2, dom_df)
        ses = []
        for name in names:
            # Rows R keeps outside a domain (calibrated, PPS) carry their values too.
            x = np.where(rows_in_r(dom) & ~missing, values[name], 0.0)
            for p in probs:
                qhat = rule(x[rows], w[rows], p)
                lower, upper = ci(dom, x, qhat, p, rule, alpha, dom_df, interval_type)
                se = (upper - lower) / (2 * q)
                ses.append(se)
                records.append(
                    {
                        **labels,
                        "variable": name,
                        "quantile": p,
                        "level": None,
                        "label": f"{name}.{p:g}",
                        "estimate": qhat,
                        "se": se,
                        "ci_low": lower,
                        "ci_high": upper,
                        "df": dom_df,
                        "n": int(rows.sum()),
                        "weight_sum": r_sum(w[rows]),
                    }
                )
        # R reports only the variances of quantiles (vcov has NA off the diagonal).
        v = np.full((len(ses), len(ses)), np.nan)
        np.fill_diagonal(v, np.square(ses))
        vcovs.append(v)
    table = pd.DataFrame.from_records(records)
    undefined = int(table[["ci_low", "ci_high"]].isna().to_numpy().sum())
    if undefined:
        notes.append(
            f"{undefined} interval limits are undefined (NaN): the interval for the proportion below "
            "the quantile leaves [0, 1], as in R; try interval_type='beta' or 'score'"
        )
    dfs = table["df"].unique()
    return Estimates(
        statistic=f"quantile ({interval_type} interval, qrule {qrule if isinstance(qrule, str) else 'custom'})",
        table=table,
        vcov=vcovs,
        by=by_names,
        level=level,
        df=float(dfs[0]) if len(dfs) == 1 else None,
        n_removed=n_removed,
        notes=notes,
    )
