"""Confidence intervals for a proportion that respect its [0, 1] range.

Mirrors R's ``survey::svyciprop`` (linearisation and replicate designs) method by method; Wilson's
score interval on the effective sample size is added, as Stata's
``svy: proportion, citype(wilson)``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from .. import _core
from .._frames import OUTSIDE
from .._rmath import approx, qt, spline_fmm
from ..exceptions import (
    ColumnError,
    DesignError,
    EmptyDomainError,
    EstimationError,
    MissingValueError,
    SurveyWarning,
)
from ..results.estimates import Estimates, standard_errors
from ..results.publication import korn_graubard
from .domains import domain_rows, present_domains

METHODS = ("logit", "likelihood", "asin", "beta", "mean", "xlogit", "wilson")


def _expit(eta: np.ndarray) -> np.ndarray:
    """R's ``survey:::expit``."""
    return np.exp(eta) / (1 + np.exp(eta))


# R's binomial()$linkinv (C logit_linkinv), clamped as in R.
_EPS = float(np.finfo(np.float64).eps)


def _linkinv(eta: np.ndarray) -> np.ndarray:
    t = np.where(eta < -30, _EPS, np.where(eta > 30, 1 / _EPS, np.exp(np.clip(eta, -30, 30))))
    return t / (1 + t)


def keeps_all_rows(design: Any) -> bool:
    """R's subset of a calibrated (post-stratified, raked) or PPS design keeps every
    row, those outside at zero weight (``[.survey.design2``): its model frame, row
    counts and mean weights count them."""
    weighted = set(design.spec.get("weighting") or ()) & {"calibrate", "rake", "poststratify"}
    return not design.is_replicate and (design.spec.get("pps") is not None or bool(weighted))


def rows_in_r(design: Any) -> np.ndarray:
    """The rows R's subset of `design` keeps: every row (see
    :func:`keeps_all_rows`), otherwise the rows in the domain."""
    return np.ones(design.n_rows, bool) if keeps_all_rows(design) else design.in_subset()


@dataclass(frozen=True)
class _InterceptFit:
    """``svyglm(y ~ 1, design, family=quasibinomial)`` as R leaves it, fitted by the core
    from the domain's prior-weighted sums (``sum w``, ``sum w y`` and ``sum w (y log y +
    (1 - y) log(1 - y))``, which give the deviance at any common mean)."""

    beta: float  # the intercept, logit of the fitted proportion
    cov_unscaled: float  # design-based variance of beta
    naive_cov: float  # model-based (X'WX)^-1 at the working weights of the last iteration
    deviance: float
    dispersion: float  # design variance of the Pearson residuals (summary.svyglm)
    sums: tuple[float, float, float]
    n_rows: int  # the rows of R's model frame (with those R keeps at zero weight)

    def deviance_at(self, beta: float) -> float:
        """The deviance with every mean at expit(beta), as the core computes the fit's."""
        weight, weighted_y, entropy = self.sums
        mu = float(_linkinv(np.float64(beta)))
        return 2 * (entropy - weighted_y * np.log(mu) - (weight - weighted_y) * np.log(1 - mu))


def _wald_interval(beta: np.ndarray, cov_unscaled: np.ndarray, level: float, df: np.ndarray) -> np.ndarray:
    """R's ``confint.svyglm(method="Wald", ddf=df)`` of each domain's intercept: a normal
    interval at the level whose normal quantile is the t quantile, back on the
    proportion scale (2 x domains; NaN where df <= 0)."""
    df = np.asarray(df, dtype=np.float64)
    t = np.where(np.isinf(df), stats.norm.ppf((1 - level) / 2), stats.t.ppf((1 - level) / 2, np.where(df > 0, df, 1)))
    t_level = 1 - 2 * stats.norm.cdf(t)
    a = (1 - t_level) / 2
    fac = np.array([stats.norm.ppf(a), stats.norm.ppf(1 - a)])
    return np.where(df > 0, _expit(beta + np.sqrt(cov_unscaled) * fac), np.nan)


def _likelihood_interval(fit: _InterceptFit, level: float, df: float) -> np.ndarray:
    """R's ``confint.svyglm(method="likelihood", ddf=df)``: the deviance profile scaled by
    the design (MASS's profile.glm on R's grid), inverted through R's spline."""
    if df <= 0:
        raise EstimationError("the likelihood interval needs positive degrees of freedom")
    lam = fit.cov_unscaled / fit.naive_cov
    alpha = stats.norm.cdf(qt((1 - level) / 2, df) * np.sqrt(lam)) / 2
    if alpha == 0:
        raise EstimationError(
            f"the likelihood interval cannot be computed: the design effect on the logit scale "
            f"({lam:.4g}) puts MASS's profile level below the smallest double (R stops with an "
            "error here too); use method='logit'"
        )
    # MASS's zmax = sqrt(qf(alpha, 1, n - 1, upper)): as |t| on n - 1 df at alpha / 2, since
    # F(1, d) is t_d squared; scipy's F quantile is infinite below alpha ~ 1e-100 (a large
    # design effect), which made the whole profile NaN.
    zmax = abs(float(qt(alpha / 2, fit.n_rows - 1)))
    step_size = zmax / 5
    std_err = np.sqrt(fit.cov_unscaled)
    z_values, betas = [0.0], [fit.beta]
    # MASS's grid: up to 9 steps each way, until |z| passes zmax (a walk along the
    # profile, not over rows: each deviance is a closed form of the fit's sums).
    for sign in (-1, 1):
        step, z = 0, 0.0
        while (step := step + 1) < 10 and abs(z) < zmax:
            b = fit.beta + sign * step * step_size * std_err
            zz = (fit.deviance_at(b) - fit.deviance) / fit.dispersion
            if zz <= -0.001:
                raise EstimationError(
                    "the likelihood profile found a better fit than the original one, which had not "
                    "converged (R stops here too; a proportion of 0 or 1 does this)"
                )
            z = sign * np.sqrt(max(zz, 0.0))
            z_values.append(z)
            betas.append(b)
    order = np.argsort(z_values, kind="stable")
    grid, profile = spline_fmm(np.asarray(betas)[order], np.asarray(z_values)[order], 3 * len(betas))
    cutoff = [stats.norm.ppf(2 * alpha), stats.norm.isf(2 * alpha)]
    limits = _expit(np.array([approx(profile, grid, c) for c in cutoff]))
    if np.isnan(limits).any():
        warnings.warn(
            f"the likelihood profile stops at z = {min(z_values):.3g} .. {max(z_values):.3g} after MASS's "
            f"9 steps each way, short of the cut-off +-{cutoff[1]:.3g}: the limits are NaN, as R's "
            "svyciprop gives NA (on a replicate design R's dispersion, about n, flattens the profile); "
            "use method='logit'",
            SurveyWarning,
            stacklevel=4,
        )
    return limits


def _values(design: Any, name: str) -> tuple[np.ndarray, bool]:
    """The column as 0/1 floats (NaN where missing): numeric in [0, 1], boolean, or a
    FALSE/TRUE factor (R's logical); and whether any value is missing."""
    frame = design.frame
    if frame.is_factor(name):
        c = frame.codes(name, "proportion")
        truth = {True: 1.0, False: 0.0, "TRUE": 1.0, "FALSE": 0.0}
        if not all(isinstance(lv, (bool, np.bool_, str)) and lv in truth for lv in c.labels):
            raise ColumnError(
                f"column {name!r} has levels {c.labels}; ciprop needs a 0/1 or logical column "
                f"(e.g. ({name} == 'Yes'))"
            )
        mapped = np.array([truth[lv] for lv in c.labels] + [np.nan])
        return mapped[np.where(c.missing if c.missing is not None else False, len(c.labels), c.codes)], \
            c.missing is not None
    x = frame.numeric(name, "proportion")
    lo, hi = x.min(initial=0.0), x.max(initial=0.0)
    missing = bool(np.isnan(lo) or np.isnan(hi))
    if missing:
        lo, hi = np.nanmin(x, initial=0.0), np.nanmax(x, initial=0.0)
    if lo < 0 or hi > 1:
        raise ColumnError(f"column {name!r} has values outside [0, 1]; ciprop needs a 0/1 or logical column")
    return x, missing


def proportion_interval(
    method: str, p: Any, var: Any, level: float, df: Any, n_rows: Any, degf: Any, alpha: float | None = None
) -> tuple[Any, Any]:
    """Interval for a proportion p with design variance var, by R's ``svyciprop`` methods
    ``mean``, ``xlogit``, ``asin`` and ``beta`` (also R's ``woodruffCI`` for quantiles),
    or ``wilson``.

    The t quantiles are on `df`; ``beta`` rescales the effective sample size by R's
    ratio of t quantiles on ``n_rows - 1`` and on `degf`, at `alpha` (R's woodruffCI
    takes the alpha given, svyciprop ``1 - level``: they can differ in the last bit).
    Scalars give two floats; arrays (p and var alike, df, n_rows and degf broadcasting
    against them) give two arrays, element by element the same numbers.
    """
    var = np.asarray(var, dtype=np.float64)  # a zero variance gives R's NaN limits, not an exception
    se = np.sqrt(var)
    a = (1 - level) / 2
    fac = np.array([qt(a, df), qt(1 - a, df)])
    if method == "mean":
        lo, hi = p + se * fac
    elif method == "xlogit":
        lo, hi = _expit(np.log(p / (1 - p)) + se / (p * (1 - p)) * fac)
    elif method == "asin":
        s = np.sin(np.arcsin(np.sqrt(p)) + se * 0.5 / np.sqrt(p) / np.sqrt(1 - p) * fac)
        lo, hi = s * s  # R's x^2 is x * x (numpy's scalar ** 2 is pow(), a bit off at times)
    elif method == "beta":
        _, lo, hi = korn_graubard(p, var, n_rows, degf, level, alpha=alpha)
    elif method == "wilson":
        # Wilson's score interval with n the effective sample size p(1-p)/var.
        n_eff = p * (1 - p) / var
        z = fac[1]
        centre = (p + z**2 / (2 * n_eff)) / (1 + z**2 / n_eff)
        half = z / (1 + z**2 / n_eff) * np.sqrt(p * (1 - p) / n_eff + z**2 / (4 * n_eff**2))
        lo, hi = centre - half, centre + half
    else:
        raise DesignError(f"no interval method {method!r}")
    if np.ndim(lo) == 0:
        return float(lo), float(hi)
    return lo, hi


def ciprop(
    design: Any,
    y: str,
    method: str = "logit",
    level: float = 0.95,
    by: Any = None,
    df: float | None = None,
    na_rm: bool = False,
) -> Estimates:
    """A proportion with a confidence interval; see :meth:`Design.ciprop`.

    One call of the core gives every domain's proportion, its variance and degrees of
    freedom and, for "logit" and "likelihood", R's svyglm fit of y ~ 1 with its design
    variance (refitted per replicate on a replicate design); the intervals follow from
    those few numbers per domain.
    """
    check_request(method, level)
    values, any_missing = _values(design, y)
    by_names, coded, domain, n_domains, notes = domain_rows(design, by)
    # As R: df comes from the design given, before missing values leave it; the
    # proportion and its variance from the rows with a value.
    n_removed, used, all_rows = 0, domain, None
    if any_missing:
        missing = np.isnan(values)
        n_removed = int(np.count_nonzero(missing & (domain != OUTSIDE)))
        if n_removed:
            if not na_rm:
                raise MissingValueError(
                    f"column {y!r} has {n_removed} missing values in the rows used; pass na_rm=True "
                    "to leave them out (they stay in the design)"
                )
            used, all_rows = np.where(missing, OUTSIDE, domain).astype(np.uint32), domain
    keeps_all = keeps_all_rows(design)
    res = _core.proportion(design.core, values, used, all_rows, n_domains, method in ("logit", "likelihood"),
                           method == "likelihood", keeps_all)
    present, labels = present_domains(res.n_domain_rows, res.domain_weight_sum, by_names, coded, notes)
    if not design.is_replicate:
        degf = res.degf[present].astype(int)
    elif not design.is_subset and not by_names:
        degf = np.array([design.degf])
    else:
        # R's degf of a replicate design's domain: the rank of its replicate weights.
        degf = np.array([design.core.replicate_degf_in(np.ascontiguousarray(domain == d)) for d in present])
    # R takes the row count of the design given, before missing values leave it.
    n_rows = np.full(len(present), design.n_rows) if keeps_all else res.n_domain_rows[present].astype(int)
    return proportion_estimates(res, present, labels, by_names, y, method, level, df, degf, n_rows, n_removed, notes)


def check_request(method: str, level: float) -> None:
    """Raise unless `method` is an interval :func:`ciprop` computes at a `level` in (0, 1)."""
    if method not in METHODS:
        raise DesignError(f"method={method!r}; use one of {', '.join(METHODS)}")
    if not 0 < level < 1:
        raise EstimationError(f"level must lie strictly between 0 and 1, not {level}")


def proportion_estimates(res: Any, present: np.ndarray, labels: dict[str, list[Any]], by_names: list[str], y: str,
                         method: str, level: float, df: float | None, degf: np.ndarray, n_rows: np.ndarray,
                         n_removed: int, notes: list[str]) -> Estimates:
    """The proportions and intervals of the domains `present` (by values `labels`) from
    the core's record `res` (``proportion`` in memory, ``proportion_from_sums``
    streamed): `degf` each domain's design degrees of freedom, `n_rows` the row count
    the beta interval rescales by."""
    if res.dropped_replicates:
        notes.append(f"{res.dropped_replicates} replicates gave undefined estimates and were left out (as R)")
    for i, d in enumerate(present):
        if res.n_rows[d] == 0 or res.weight_sum[d] == 0:
            where = ", ".join(f"{name} = {labels[name][i]!r}" for name in by_names) or "the design's rows"
            raise EmptyDomainError(f"{y!r} has no value of positive weight in {where}: nothing to estimate")
    dom_df = degf.astype(float) if df is None else np.full(len(present), float(df))
    var = res.variance[present]
    fits = [
        _InterceptFit(float(res.coefficient[d]), float(res.cov_unscaled[d]), float(res.naive_cov[d]),
                      float(res.deviance[d]), float(res.dispersion[d]),
                      (float(res.prior_weight[d]), float(res.prior_weighted_y[d]),
                       float(res.prior_entropy[d])), int(res.model_rows[d]))
        for d in present
    ] if method == "likelihood" else []
    with np.errstate(divide="ignore", invalid="ignore"):
        if method in ("logit", "likelihood"):
            # R fits svyglm(y ~ 1, quasibinomial): its estimate and interval.
            beta = res.coefficient[present]
            estimate = _expit(beta)
            if method == "logit":
                ci = _wald_interval(beta, res.cov_unscaled[present], level, dom_df)
            else:
                ci = np.array([_likelihood_interval(f, level, v) for f, v in zip(fits, dom_df)]).T
        else:
            estimate = res.estimate[present]
            ci = np.array([proportion_interval(method, float(p), float(v), level, float(f), int(n), int(g))
                           for p, v, f, n, g in zip(estimate, var, dom_df, n_rows, degf)]).T
    table = pd.DataFrame({
        **{name: labels[name] for name in by_names},
        "variable": y,
        "level": None,
        "label": y,
        "estimate": estimate,
        "se": standard_errors(var),
        "ci_low": ci[0],
        "ci_high": ci[1],
        "df": dom_df,
        "n": res.n_rows[present].astype(int),
        "weight_sum": res.weight_sum[present],
    })
    vcovs = [np.array([[v]]) for v in var]
    return interval_estimates(f"proportion ({method} interval)", table, vcovs, by_names, level, n_removed, notes,
                              "as in R (a proportion of 0 or 1?)")


def interval_estimates(statistic: str, table: pd.DataFrame, vcov: list[np.ndarray], by: list[str], level: float,
                       n_removed: int, notes: list[str], undefined_why: str) -> Estimates:
    """The Estimates of a table with its own interval limits (proportions, quantiles):
    a note counting the limits that are undefined (`undefined_why` says why), and one df
    when every row has the same."""
    undefined = int(table[["ci_low", "ci_high"]].isna().to_numpy().sum())
    if undefined:
        notes.append(f"{undefined} interval limits are undefined (NaN), {undefined_why}")
    dfs = table["df"].unique()
    return Estimates(statistic=statistic, table=table, vcov=vcov, by=by, level=level,
                     df=float(dfs[0]) if len(dfs) == 1 else None, n_removed=n_removed, notes=notes)
