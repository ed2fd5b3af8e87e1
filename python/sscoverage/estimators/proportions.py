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
from .domains import domains, linear, weighted_mean
from .._rmath import approx, qt, r_mean, r_sum, spline_fmm
from ..exceptions import ColumnError, DesignError, EstimationError, MissingValueError, SurveyWarning
from ..results.estimates import Estimates, standard_errors

METHODS = ("logit", "likelihood", "asin", "beta", "mean", "xlogit", "wilson")


def _expit(eta: np.ndarray) -> np.ndarray:
    """R's ``survey:::expit``."""
    return np.exp(eta) / (1 + np.exp(eta))


# R's binomial()$linkinv and $mu.eta (C logit_linkinv, logit_mu_eta), clamped as in R.
_EPS = float(np.finfo(np.float64).eps)


def _linkinv(eta: np.ndarray) -> np.ndarray:
    t = np.where(eta < -30, _EPS, np.where(eta > 30, 1 / _EPS, np.exp(np.clip(eta, -30, 30))))
    return t / (1 + t)


def _mu_eta(eta: np.ndarray) -> np.ndarray:
    opexp = 1 + np.exp(np.clip(eta, -30, 30))
    return np.where((eta > 30) | (eta < -30), _EPS, np.exp(np.clip(eta, -30, 30)) / (opexp * opexp))


def _deviance(y: np.ndarray, mu: np.ndarray, wt: np.ndarray) -> float:
    """Sum of R's ``binomial()$dev.resids`` (y log y taken as 0 at y = 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(y != 0, y * np.log(y / mu), 0.0)
        b = np.where(1 - y != 0, (1 - y) * np.log((1 - y) / (1 - mu)), 0.0)
    return r_sum(2 * wt * (a + b))


def rows_in_r(design: Any) -> np.ndarray:
    """The rows R's subset of `design` keeps: for a calibrated (post-stratified, raked)
    or PPS design every row, those outside with zero weight (``[.survey.design2``);
    otherwise the rows in the domain.  R's row counts and mean weights count them."""
    spec = design.spec
    weighted = set(spec.get("weighting") or ()) & {"calibrate", "rake", "poststratify"}
    if not design.is_replicate and (spec.get("pps") is not None or weighted):
        return np.ones(design.n_rows, bool)
    return design.in_subset()


@dataclass(frozen=True)
class _InterceptFit:
    """``svyglm(y ~ 1, design, family=quasibinomial)`` as R leaves it."""

    beta: float  # the intercept, logit of the fitted proportion
    mu: float  # the fitted proportion
    cov_unscaled: float  # design-based variance of beta
    naive_cov: float  # model-based (X'WX)^-1 at the working weights of the last iteration
    deviance: float
    dispersion: float  # design variance of the Pearson residuals (summary.svyglm)
    y: np.ndarray  # the rows used
    prior: np.ndarray  # their prior weights
    n_rows: int  # the rows of R's model frame (with those R keeps at zero weight)


def _fit_intercept(dom: Any, used: Any, x: np.ndarray, epsilon: float = 1e-8, maxit: int = 25) -> _InterceptFit:
    """R's svyglm fit of an intercept-only logistic model, IRLS iteration by iteration.

    glm stops when the deviance changes by less than `epsilon` relatively, a few
    iterations in: R's intercept is logit(p) only to that tolerance (1e-9 or so), and
    its model-based variance uses the working weights of the iteration before (1e-4 or
    so off).  Both enter R's intervals, so the iterations are repeated here rather than
    the fit solved exactly.
    `dom` is the design given, `used` its rows with a value of y.
    """
    rows = used.in_subset()
    y, w = x[rows], used.weights[rows]
    # Prior weights: sampling weights over their mean in the design given (rows with a
    # missing y included, as svyglm scales them before glm drops those rows).
    all_mean = r_mean(np.where(dom.in_subset(), dom.weights, 0.0)[rows_in_r(dom)])
    prior = w / all_mean
    good = prior > 0
    mu = (prior * y + 0.5) / (prior + 1)  # binomial()$initialize
    eta = np.log(mu / (1 - mu))
    dev_old = _deviance(y, mu, prior)
    for _ in range(maxit):
        mu_eta = _mu_eta(eta)[good]
        z = eta[good] + (y - mu)[good] / mu_eta
        wt = prior[good] * mu_eta**2 / (mu * (1 - mu))[good]  # squared working weights
        beta = float(r_sum(wt * z) / r_sum(wt))
        eta = np.full(len(y), beta)
        mu = _linkinv(eta)
        dev = _deviance(y, mu, prior)
        if abs(dev - dev_old) / (abs(dev) + 0.1) < epsilon:
            break
        dev_old = dev
    naive_cov = 1 / r_sum(wt)
    if used.is_replicate:
        # svyglm.svyrep.design: the fit refitted with each replicate's weights (in the
        # core, from this fit's coefficient, as R), their spread the variance; and
        # summary.svrepglm's dispersion, sum(w r^2) / sum(w) with its Pearson residuals
        # r = e sqrt(prior / (w / sum(w))), which is sum(prior e^2) (about n, not 1).
        reps = np.ascontiguousarray(used.replicate_weights()[rows])
        thetas = _core.glm_replicate_coefficients(
            np.ones((len(y), 1)), np.ascontiguousarray(y), reps, np.array([beta]), "quasibinomial"
        )
        cov_unscaled = float(used.replicate_vcov(thetas, np.array([beta]))[0, 0])
        dispersion = r_sum(prior * (y - mu) ** 2 / (mu * (1 - mu)))
        return _InterceptFit(beta, float(mu[0]), cov_unscaled, naive_cov, dev, dispersion, y, prior,
                             int(rows_in_r(used).sum()))
    # svy.varcoef: working residuals times working weights, through (X'WX)^-1.
    score = np.zeros(used.n_rows)
    score[np.flatnonzero(rows)[good]] = ((y - mu) / _mu_eta(eta))[good] * wt * naive_cov
    cov_unscaled = float(used.influence_vcov(score, used.in_subset())[0, 0])
    # Pearson residuals weigh by prior / (weights over their mean in the rows used).
    resid = np.zeros(used.n_rows)
    in_r = rows_in_r(used)
    used_mean = r_mean(np.where(rows, used.weights, 0.0)[in_r])
    resid[rows] = (y - mu) * np.sqrt(used_mean / all_mean) / np.sqrt(mu * (1 - mu))
    n_obs = int((w != 0).sum())
    r_bar = weighted_mean(used, resid[:, None])[0]
    dispersion = weighted_mean(used, ((resid - r_bar) ** 2 * n_obs / (n_obs - 1))[:, None])[0]
    return _InterceptFit(beta, float(mu[0]), cov_unscaled, naive_cov, dev, dispersion, y, prior, int(in_r.sum()))


def _wald_interval(fit: _InterceptFit, level: float, df: float) -> np.ndarray:
    """R's ``confint.svyglm(method="Wald", ddf=df)``: a normal interval at the level
    whose normal quantile is the t quantile, back on the proportion scale."""
    if df <= 0:
        return np.array([np.nan, np.nan])
    t_level = 1 - 2 * stats.norm.cdf(qt((1 - level) / 2, df))
    a = (1 - t_level) / 2
    fac = stats.norm.ppf([a, 1 - a])
    return _expit(fit.beta + np.sqrt(fit.cov_unscaled) * fac)


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
    for sign in (-1, 1):
        step, z = 0, 0.0
        while (step := step + 1) < 10 and abs(z) < zmax:
            b = fit.beta + sign * step * step_size * std_err
            mu = _linkinv(np.full(len(fit.y), b))
            zz = (_deviance(fit.y, mu, fit.prior) - fit.deviance) / fit.dispersion
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


def _values(design: Any, name: str) -> np.ndarray:
    """The column as 0/1 floats (NaN where missing): numeric in [0, 1], boolean, or a
    FALSE/TRUE factor (R's logical)."""
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
        return mapped[np.where(c.missing if c.missing is not None else False, len(c.labels), c.codes)]
    x = frame.numeric(name, "proportion")
    present = x[~np.isnan(x)]
    if present.size and (present.min() < 0 or present.max() > 1):
        raise ColumnError(f"column {name!r} has values outside [0, 1]; ciprop needs a 0/1 or logical column")
    return x


def proportion_interval(
    method: str, p: float, var: float, level: float, df: float, n_rows: int, degf: int, alpha: float | None = None
) -> tuple[float, float]:
    """Interval for a proportion p with design variance var, by R's ``svyciprop`` methods
    ``mean``, ``xlogit``, ``asin`` and ``beta`` (also R's ``woodruffCI`` for quantiles),
    or ``wilson``.

    The t quantiles are on `df`; ``beta`` rescales the effective sample size by R's
    ratio of t quantiles on ``n_rows - 1`` and on `degf`, at `alpha` (R's woodruffCI
    takes the alpha given, svyciprop ``1 - level``: they can differ in the last bit).
    """
    var = np.float64(var)  # a zero variance gives R's NaN limits, not an exception
    se = np.sqrt(var)
    a = (1 - level) / 2
    fac = np.array([qt(a, df), qt(1 - a, df)])
    if method == "mean":
        lo, hi = p + se * fac
    elif method == "xlogit":
        lo, hi = _expit(np.log(p / (1 - p)) + se / (p * (1 - p)) * fac)
    elif method == "asin":
        lo, hi = np.sin(np.arcsin(np.sqrt(p)) + se * 0.5 / np.sqrt(p) / np.sqrt(1 - p) * fac) ** 2
    elif method == "beta":
        # Korn-Graubard: Clopper-Pearson on the effective sample size.
        alpha = 1 - level if alpha is None else alpha
        n_eff = p * (1 - p) / var * (qt(alpha / 2, n_rows - 1) / qt(alpha / 2, degf)) ** 2
        lo = stats.beta.ppf(alpha / 2, n_eff * p, n_eff * (1 - p) + 1)
        hi = stats.beta.ppf(1 - alpha / 2, n_eff * p + 1, n_eff * (1 - p))
    elif method == "wilson":
        # Wilson's score interval with n the effective sample size p(1-p)/var.
        n_eff = p * (1 - p) / var
        z = fac[1]
        centre = (p + z**2 / (2 * n_eff)) / (1 + z**2 / n_eff)
        half = z / (1 + z**2 / n_eff) * np.sqrt(p * (1 - p) / n_eff + z**2 / (4 * n_eff**2))
        lo, hi = centre - half, centre + half
    else:
        raise DesignError(f"no interval method {method!r}")
    return float(lo), float(hi)


def ciprop(
    design: Any,
    y: str,
    method: str = "logit",
    level: float = 0.95,
    by: Any = None,
    df: float | None = None,
    na_rm: bool = False,
) -> Estimates:
    """A proportion with a confidence interval; see :meth:`Design.ciprop`."""
    if method not in METHODS:
        raise DesignError(f"method={method!r}; use one of {', '.join(METHODS)}")
    if not 0 < level < 1:
        raise EstimationError(f"level must lie strictly between 0 and 1, not {level}")
    values = _values(design, y)
    missing = np.isnan(values)
    by_names, doms, notes = domains(design, by)
    records, vcovs, n_removed = [], [], 0
    for labels, dom in doms:
        # As R: df comes from the design given, before missing values leave it; the
        # proportion and its variance from the rows with a value.
        dom_df = float(dom.degf) if df is None else float(df)
        hit = missing & dom.in_subset()
        if hit.any():
            if not na_rm:
                raise MissingValueError(
                    f"column {y!r} has {int(hit.sum())} missing values in the rows used; pass na_rm=True "
                    "to leave them out (they stay in the design)"
                )
            n_removed += int(hit.sum())
            used = dom.subset(~missing)
        else:
            used = dom
        x = np.where(used.in_subset(), values, 0.0)
        est, v = linear(used, x)
        var = float(v[0, 0])
        with np.errstate(divide="ignore", invalid="ignore"):
            if method in ("logit", "likelihood"):
                # R fits svyglm(y ~ 1, quasibinomial): its estimate and interval.
                fit = _fit_intercept(dom, used, x)
                p = float(_expit(fit.beta))
                interval = _wald_interval if method == "logit" else _likelihood_interval
                lo, hi = interval(fit, level, dom_df)
            else:
                # R takes the row count and degf of the design given, before missing
                # values leave it.
                p = float(est[0])
                n_rows = int(rows_in_r(dom).sum())
                lo, hi = proportion_interval(method, p, var, level, dom_df, n_rows, dom.degf)
        records.append(
            {
                **labels,
                "variable": y,
                "level": None,
                "label": y,
                "estimate": p,
                "se": float(standard_errors(np.array([var]))[0]),
                "ci_low": lo,
                "ci_high": hi,
                "df": dom_df,
                "n": int(used.in_subset().sum()),
                "weight_sum": r_sum(used.weights[used.in_subset()]),
            }
        )
        vcovs.append(np.array([[var]]))
    table = pd.DataFrame.from_records(records)
    undefined = int(table[["ci_low", "ci_high"]].isna().to_numpy().sum())
    if undefined:
        notes.append(f"{undefined} interval limits are undefined (NaN), as in R (a proportion of 0 or 1?)")
    dfs = table["df"].unique()
    return Estimates(
        statistic=f"proportion ({method} interval)",
        table=table,
        vcov=vcovs,
        by=by_names,
        level=level,
        df=float(dfs[0]) if len(dfs) == 1 else None,
        n_removed=n_removed,
        notes=notes,
    )
