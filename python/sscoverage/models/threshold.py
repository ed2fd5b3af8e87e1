"""Threshold (change-point) GLMs: a survey-weighted GLM whose slope, or level, in one
variable changes at an unknown threshold, estimated by profiling the pseudo-likelihood.

The model at a candidate threshold c adds one column to the formula's model matrix:

* ``kind="slope"`` (a kink, segmented regression): ``pmax(x - c, 0)``; the slope of
  x is b below c and b + d above it, continuous at c (the formula must contain x);
* ``kind="level"`` (a step): ``I(x < c)`` (R's column ``I(x < c)TRUE``); the linear predictor jumps by d below c.

Every candidate of a grid is fitted (one IRLS in the Rust core each) with the sampling
weights, and the threshold is the candidate of least weighted deviance, i.e. of greatest
pseudo-log-likelihood (Binder 1983, Skinner 1989: the log-likelihood with each row
weighted; the weighted deviance is minus twice it up to a constant, on the scale of the
sample since the weights are scaled to mean 1 over the fitted rows).

Inference
---------
Test of "no threshold" (d = 0).  Under the null c is not identified (Davies' problem), so
the statistic is a sup over the grid, and its null distribution is not chi-squared.
* Linearisation designs: the sup over c of the design-based score (LM) statistic
  S(c)^2 / V(c) at the fit without the threshold term (S(c) the weighted score of the
  threshold column made orthogonal to the model's columns, V(c) its variance from the
  design's variance engine), with the p-value by the wild score bootstrap (Kline and
  Santos 2012, J. Econometric Methods 1:23): each draw multiplies the score
  contributions of every first-stage PSU by one Rademacher sign and recomputes the sup,
  variance included, through the engine.  Re-estimating the variance in every draw is
  what keeps the size near nominal with tens of PSUs.  In 400 null data sets (80 PSUs
  in 10 strata, the default grid) it rejected 4.5 % (slope) and 4.75 % (level) at 5 %;
  simulating the Gaussian limit with the covariance held fixed (Hansen 1996,
  Econometrica 64:413) rejected 4 % and 7.25 %.
* Replicate designs (no PSUs to resample): the sup over c of the Wald statistic of d(c)
  with replicate variances, the null distribution simulated as in Hansen (1996): normal
  draws with the replicate covariance of d(c) across the grid, each divided by
  sqrt(chi^2_df / df), df the fitted model's residual degrees of freedom.  Expect it
  to be somewhat liberal for kind="level" with few PSUs (see the figures above).
The p-value is (1 + #{draws >= observed}) / (1 + draws), with a fixed seed.

Confidence set for c.
* ``ci="lr"``: likelihood-ratio inversion (Hansen 2000, Econometrica 68:575), the LR
  statistic LR(c) = (D(c) - D(c_hat)) / delta with a first-order Rao-Scott design
  correction delta = design-based over model-based variance of d at c_hat (R's
  ``regTermTest(method="LRT")`` misspecification eigenvalue of that one term).  The set
  is {c : LR(c) <= k}: k the chi^2_1 quantile for a kink, whose threshold is a regular
  parameter (Hansen 2017, JBES 35:228), and k = -2 log(1 - sqrt(level)) for a step,
  whose LR has Hansen's (2000) non-standard limit.  The interval is the hull of the set,
  its ends interpolated linearly between grid points.
* ``ci="replicate"``: the threshold re-estimated by profiling with each replicate's
  weights; its replicate variance (the replicate engine) gives c_hat +- t se.  Used by
  default on bootstrap, BRR and other replicate designs; jackknife replicates are not
  consistent for a non-smooth estimator like an argmin (as for the median), so on JK1 /
  JKn / JK2 designs the default is ``"lr"``.

Computation
-----------
The model at a candidate is the formula's own model columns (plain variables and
factors assembled from the variables, not formulaic's dense columns) with the threshold
term as a column made by the Rust core as it reads the rows
(``ModelColumns.with_threshold``): no copy of the model matrix.  Each candidate is one
core call (the fit, and on a linearisation design the influence values of d(c) summed
to the design's units); the G candidates' unit totals give their covariance through the
design's engine.  The score
test is one core call: the fit without the term, a pass forming X0'WH and the
projections, a pass summing every candidate's scores to units, and the sign flips of
those totals.  Only a calibrated design, whose residuals need the rows, holds the
influence values and scores row by row.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from ..exceptions import ColumnError, ConvergenceError, ConvergenceWarning, EstimationError, ThresholdError, OptionError
from .glm import FAMILIES, GLMResult, check_convergence, fit_errors, fit_model, ModelFrame, threshold_term_text
from .. import _core
from ..results import display as _display
from .._progress import track
from .._provenance import Provenance
from ..results.estimates import critical_value
from ..io.serialize import Serializable

if TYPE_CHECKING:
    from ..protocols import SurveyDesign

KINDS = ("slope", "level")
CI_METHODS = ("auto", "lr", "replicate")
JACKKNIFE = ("JK1", "JKn", "JK2")
#: Default trimming of the grid: sample quantiles of the threshold variable from 10 % to
#: 90 %, by 2.5 %.  With 5 % (and 80 PSUs) the test of no threshold rejected 6.75-7.25 %
#: of 400 null data sets at 5 %; with 10 %, 4.5-4.75 % (Andrews 1993 advises 15 %).
DEFAULT_TRIM = 0.10
GRID_STEP = 0.025


def threshold_glm(
    design: "SurveyDesign",
    formula: str,
    threshold_var: str,
    grid: Sequence[float] | int | None = None,
    kind: str = "slope",
    family: str = "quasibinomial",
    link: str | None = None,
    ci: str = "auto",
    level: float = 0.95,
    min_side: int | None = None,
    trim: float = DEFAULT_TRIM,
    n_draws: int = 999,
    seed: int = 20240601,
    levels: Mapping[str, Sequence[Any]] | None = None,
    epsilon: float = 1e-8,
    maxit: int = 25,
    progress: bool = True,
) -> "ThresholdResult":
    """Threshold GLM; see :meth:`sscoverage.Design.threshold_glm` and the module notes.
    `progress` shows a bar over the grid of candidates (``False`` turns it off)."""
    if kind not in KINDS:
        raise OptionError(f"kind={kind!r}; use 'slope' (a change of slope) or 'level' (a step)")
    if ci not in CI_METHODS:
        raise OptionError(f"ci={ci!r}; use one of {', '.join(CI_METHODS)}")
    if family not in FAMILIES:
        raise OptionError(f"family={family!r}; use one of {', '.join(FAMILIES)}")
    frame = design.frame
    if threshold_var not in frame.columns:
        frame.column(threshold_var)  # the ColumnError with a close-name hint
    if not frame.is_numeric(threshold_var):
        raise ColumnError(f"the threshold variable {threshold_var!r} must be numeric")
    x_all = frame.numeric(threshold_var, "threshold variable")
    notes: list[str] = []
    missing = np.isnan(x_all) & design.in_subset()
    if missing.any():
        # The threshold term of a missing value would be 0 (not missing) in the model
        # matrix, so those rows leave the design here, as a domain (R's na.omit).
        if missing.sum() == design.in_subset().sum():
            raise ThresholdError(f"{threshold_var!r} has no non-missing value in the design's rows")
        design = design.subset(~np.isnan(x_all))
        notes.append(f"{int(missing.sum())} rows with a missing {threshold_var} left out")
    levels = dict(levels or {})

    # The model with the threshold term at a placeholder candidate: its rows are those
    # complete in the formula's variables and the threshold variable; it tells the
    # term's column j and the terms' names.
    placeholder = float(np.median(x_all[design.in_subset()]))
    with_term = ModelFrame(design, _with_term(formula, threshold_var, kind, placeholder), family, levels)
    name = with_term.name_of(threshold_var)
    x = np.ascontiguousarray(with_term.data[name].to_numpy(dtype=np.float64))
    j = _term_column(with_term, _term_values(x, kind, placeholder))
    if kind == "slope" and threshold_var not in with_term.term_columns:
        raise ThresholdError(
            f"kind='slope' changes the slope of {threshold_var!r} at the threshold, so the formula needs "
            f"{threshold_var!r} as a term: write '{formula} + {threshold_var}' (or use kind='level')"
        )
    terms = with_term.terms
    # The fits read the formula's own model (the columns of plain variables and factors
    # made by the core from the variables, not formulaic's dense columns of the model
    # with a function in it), the term inserted as column j: the same columns and rows.
    model = ModelFrame(design, formula, family, levels)
    if model.terms != terms[:j] + terms[j + 1:] or not np.array_equal(model.rows, with_term.rows):
        raise ThresholdError(
            f"{formula}: adding the threshold term changed the formula's other columns or rows; "
            "write the formula's terms out plainly"
        )
    del with_term
    n = len(x)
    if min_side is None:
        min_side = max(10, math.ceil(0.01 * n))
    candidates = _grid(x, grid, min_side, threshold_var, trim)

    prior = design.weights[model.rows]
    prior /= prior.mean()  # mean 1 over the fitted rows: deviances on the sample's scale
    profile = _profile(model, j, terms, x, kind, candidates, prior, formula, family, link, epsilon, maxit,
                       None if design.is_replicate else design, progress)
    candidates = profile["candidates"]
    dev = profile["deviance"]
    best = int(np.argmin(dev))
    c_hat = float(candidates[best])

    # The test of no threshold, and the design-based SE of d(c) at every candidate.
    if design.is_replicate:
        reps = design.replicate_weights()[model.rows]
        rep_coef, rep_dev = _replicate_profiles(model, j, x, kind, candidates, reps, family, link, epsilon, maxit)
        # A candidate whose fit fails in some replicate (separation in a resample) has no
        # replicate variance; it stays in the profile but not in the test.
        usable = np.isfinite(rep_coef).all(axis=0)
        sigma = np.full((len(candidates), len(candidates)), np.nan)
        if usable.any():
            sigma[np.ix_(usable, usable)] = design.replicate_vcov(rep_coef[:, usable], profile["coef"][usable])
        if not usable.all():
            notes.append(f"candidates {', '.join(f'{c:g}' for c in candidates[~usable])} failed to fit in "
                         "some replicates and are left out of the test")
        lm = np.full(len(candidates), np.nan)
        test_method = "sup-Wald, null distribution simulated (replicate covariance)"
    else:
        sigma = _core.threshold_covariance(design.core, profile["influence"], model.rows)
        rep_coef = rep_dev = None  # no replicates: the threshold's interval is by LR
        lm, statistic, p_value = _score_test(design, model, x, kind, candidates, prior, formula, family, link,
                                             epsilon, maxit, n_draws, seed)
        test_method = "sup-LM (score), wild score bootstrap over PSUs"
    # The model at the threshold, once the candidates' model (and its columns) is let go.
    del model
    fitted_formula = _with_term(formula, threshold_var, kind, c_hat)
    final_model = ModelFrame(design, fitted_formula, family, levels)
    fitted = fit_model(design, final_model, fitted_formula, family, link, level, epsilon, maxit)
    k = _term_column(final_model, _term_values(x, kind, c_hat))
    df = float(fitted.df_residual)
    se = np.sqrt(np.clip(np.diag(sigma), 0.0, None))
    wald = (profile["coef"] / se) ** 2
    if design.is_replicate:
        if usable.any():
            statistic = float(np.nanmax(wald[usable]))
            p_value = _sup_p_value(sigma[np.ix_(usable, usable)], statistic, df, n_draws, seed)
        else:
            statistic = p_value = float("nan")

    # The confidence set.
    method = ci
    if method == "auto":
        kind_of_reps = str(design.spec.get("type", "")) if design.is_replicate else ""
        method = "replicate" if design.is_replicate and kind_of_reps not in JACKKNIFE else "lr"
        if design.is_replicate and method == "lr":
            notes.append(f"{kind_of_reps} replicates do not give a consistent variance of a threshold; "
                         "interval by likelihood-ratio inversion")
    if method == "replicate" and not design.is_replicate:
        raise ThresholdError("ci='replicate' needs a replicate design (design.as_replicates(type='bootstrap'))")
    deff = float(fitted.vcov[k, k] / profile["naive_var"][best])
    lr = (dev - dev[best]) / deff
    replicate_thresholds = None
    if method == "lr":
        crit = float(stats.chi2.ppf(level, 1)) if kind == "slope" else -2.0 * math.log(1 - math.sqrt(level))
        inside = lr <= crit
        lo, hi, edge = _lr_interval(candidates, lr, crit, inside)
        if edge:
            notes.append("the confidence set reaches the end of the grid: widen the grid")
        if not _contiguous(inside):
            notes.append("the confidence set is not one interval; ci_low/ci_high are its hull "
                          "(see confidence_set)")
        conf_set = candidates[inside]
    else:
        if design.spec.get("type") in JACKKNIFE:
            warnings.warn("jackknife replicates are not consistent for a threshold (an argmin, like the "
                          "median); prefer ci='lr' or bootstrap replicates", stacklevel=3)
        replicate_thresholds = np.where(np.isfinite(rep_dev).any(axis=1),
                                        candidates[np.argmin(np.where(np.isfinite(rep_dev), rep_dev, np.inf),
                                                             axis=1)], np.nan)
        v = design.replicate_vcov(replicate_thresholds[:, None], np.array([c_hat]))
        q = critical_value(level, float(design.degf)) if design.degf > 0 else np.nan
        half = q * math.sqrt(max(float(v[0, 0]), 0.0))
        lo, hi = max(c_hat - half, candidates[0]), min(c_hat + half, candidates[-1])
        crit = float("nan")
        conf_set = candidates[(candidates >= lo) & (candidates <= hi)]
    table = pd.DataFrame({
        "threshold": candidates,
        "deviance": dev,
        "lr": lr,
        "coef": profile["coef"],
        "se": se,
        "wald": wald,
        "lm": lm,
        "n_below": profile["n_below"],
        "n_above": profile["n_above"],
    })
    if profile["dropped"]:
        notes.append(f"candidates {', '.join(f'{c:g}' for c in profile['dropped'])} left out: the fit "
                     "separated or did not converge there")
    return ThresholdResult(
        variable=threshold_var,
        kind=kind,
        threshold=c_hat,
        ci_low=float(lo),
        ci_high=float(hi),
        ci_method=method,
        level=level,
        confidence_set=conf_set,
        critical_value=crit,
        deff=deff,
        statistic=statistic,
        p_value=p_value,
        test_method=test_method,
        df=df,
        n_draws=n_draws,
        seed=seed,
        profile=table,
        model=fitted,
        term=fitted.terms[k],
        replicate_thresholds=replicate_thresholds,
        notes=notes,
    )


# ---------------------------------------------------------------------------- the term
def _token(column: str) -> str:
    """The column as a formula token (backquoted when it is not a Python name)."""
    return column if column.isidentifier() else f"`{column}`"


def _with_term(formula: str, var: str, kind: str, c: float) -> str:
    """The formula with the threshold term at c, written so formulaic evaluates it (and
    a model frame has the core make it: :func:`threshold_term_text`)."""
    return f"{formula} + {threshold_term_text(_token(var), kind, c)}"


def _term_values(x: np.ndarray, kind: str, c: float) -> np.ndarray:
    """The threshold column, bit for bit as the formula computes it."""
    return np.maximum(x - c, 0) if kind == "slope" else (x < c).astype(np.float64)


def _term_column(model: ModelFrame, values: np.ndarray) -> int:
    """Which column of the model matrix is the threshold term (formulaic orders terms by
    degree, so it need not be the last): each column made by the core in turn."""
    hits = [j for j in range(model.columns.p) if np.array_equal(model.columns.dense([j])[:, 0], values)]
    if len(hits) != 1:
        raise ThresholdError("the threshold term duplicates a term of the formula; drop that term")
    return hits[0]


def _grid(x: np.ndarray, grid: Sequence[float] | int | None, min_side: int, var: str,
          trim: float = DEFAULT_TRIM) -> np.ndarray:
    """Candidates, checked: inside the range of x with at least `min_side` rows strictly
    below and strictly above each.  The default grid (the sample quantiles from `trim`
    to 1 - `trim` by 2.5 %, or an int: that many quantiles over that range) silently
    leaves out candidates failing that; a user's grid raises."""
    lo, hi = float(np.min(x)), float(np.max(x))
    if lo == hi:
        raise ThresholdError(f"{var!r} is constant in the fitted rows: no threshold to find")
    if not 0 <= trim < 0.5:
        raise ThresholdError(f"trim={trim}: give a fraction in [0, 0.5)")
    xs = np.sort(x)
    if grid is None or isinstance(grid, (int, np.integer)):
        count = int(round((1 - 2 * trim) / GRID_STEP)) + 1 if grid is None else int(grid)
        probs = np.linspace(trim, 1 - trim, max(count, 2))
        cand = np.unique(np.quantile(x, probs))
        below = np.searchsorted(xs, cand, side="left")
        above = len(xs) - np.searchsorted(xs, cand, side="right")
        cand = cand[(cand > lo) & (cand < hi) & (below >= min_side) & (above >= min_side)]
        if len(cand) < 2:
            raise ThresholdError(
                f"{var!r} takes too few distinct values with {min_side} rows on each side to make a grid; "
                "give grid=[...] or a smaller min_side"
            )
        return cand
    cand = np.unique(np.asarray(grid, dtype=np.float64))
    if cand.size == 0 or not np.isfinite(cand).all():
        raise ThresholdError("grid must hold finite candidate values")
    outside = cand[(cand <= lo) | (cand >= hi)]
    if outside.size:
        raise ThresholdError(
            f"grid value(s) {', '.join(f'{c:g}' for c in outside)} are outside the range of {var!r} in the "
            f"fitted rows ({lo:g} to {hi:g}); a threshold must have data on both sides"
        )
    below = np.searchsorted(xs, cand, side="left")
    above = len(xs) - np.searchsorted(xs, cand, side="right")
    thin = (below < min_side) | (above < min_side)
    if thin.any():
        c = cand[thin][0]
        b, a = below[thin][0], above[thin][0]
        raise ThresholdError(
            f"candidate {c:g} has {b} rows below and {a} above; at least min_side={min_side} are needed on "
            "each side: move the candidate inward or lower min_side"
        )
    return cand


# ---------------------------------------------------------------------------- profiles
def _profile(model: ModelFrame, j: int, terms: list[str], x: np.ndarray, kind: str, candidates: np.ndarray,
             prior: np.ndarray, formula: str, family: str, link: str | None, epsilon: float,
             maxit: int, design: "SurveyDesign | None", progress: bool = True) -> dict[str, Any]:
    """One IRLS per candidate in the core, of the model without the term (`model`) with
    the threshold term of `x` at the candidate as column j, made by the core as it reads
    the rows (`terms`: the names of those columns; the loop is cheap next to the fits).
    On a linearisation `design` each fit also gives the influence values of the
    threshold coefficient summed to the design's units (on a calibrated design, its
    rows)."""
    on_design = {} if design is None else {"design": design.core, "rows": model.rows}
    keep, dev, coef, naive, infl, n_below, n_above, dropped = [], [], [], [], [], [], [], []
    for c in track(candidates, len(candidates), "threshold grid", progress):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                with fit_errors(formula, terms):
                    fit = _core.threshold_candidate(model.columns.with_threshold(j, x, kind, float(c)), j, model.y,
                                                    prior, family, link, epsilon=epsilon, maxit=maxit, **on_design)
                check_convergence(fit, formula, maxit)
        except (ConvergenceError, EstimationError):
            dropped.append(float(c))
            continue
        keep.append(c)
        dev.append(fit.deviance)
        coef.append(fit.coefficient)
        naive.append(fit.naive_variance)
        infl.append(fit.influence)
        n_below.append(int((x < c).sum()))
        n_above.append(int((x > c).sum()))
    if len(keep) < 2:
        raise ThresholdError(
            "the model could be fitted at fewer than two candidates (separation or no convergence "
            "elsewhere); use a coarser grid inside the data, or kind='slope'"
        )
    return {
        "candidates": np.asarray(keep, dtype=np.float64),
        "deviance": np.asarray(dev),
        "coef": np.asarray(coef),
        "naive_var": np.asarray(naive),
        # G x n_units (G x rows on a calibrated design); None on a replicate design.
        "influence": None if design is None else np.vstack(infl),
        "n_below": n_below,
        "n_above": n_above,
        "dropped": dropped,
    }


def _replicate_profiles(model: ModelFrame, j: int, x: np.ndarray, kind: str, candidates: np.ndarray,
                        reps: np.ndarray, family: str, link: str | None, epsilon: float,
                        maxit: int) -> tuple[np.ndarray, np.ndarray]:
    """The threshold coefficient and deviance at every candidate with every replicate's
    weights (R x G each; NaN / inf where a replicate's fit fails): per candidate, all
    replicates refitted in the core (the model without the term, the term as column j)."""
    coef = np.empty((reps.shape[1], len(candidates)))
    dev = np.empty((reps.shape[1], len(candidates)))
    reps = np.ascontiguousarray(reps)
    for col, c in enumerate(candidates):
        columns = model.columns.with_threshold(j, x, kind, float(c))
        rep_coef, dev[:, col] = _core.glm_replicate_fits(columns, model.y, reps, family, link, epsilon=epsilon,
                                                         maxit=maxit)
        coef[:, col] = rep_coef[:, j]
    return coef, dev


def _score_test(design: "SurveyDesign", model: ModelFrame, x: np.ndarray, kind: str,
                candidates: np.ndarray, prior: np.ndarray, formula: str, family: str, link: str | None,
                epsilon: float, maxit: int, n_draws: int, seed: int) -> tuple[np.ndarray, float, float]:
    """LM(c) over the grid, its sup, and the wild score bootstrap p-value, in one core
    call: the fit of `model` (without the threshold term); the score of the term at
    every candidate (working weight x working residual x the term's residual from its
    weighted projection on the model's columns: the efficient score, which already
    accounts for estimating the other coefficients) summed to the design's units; and
    every draw (Rademacher signs per first-stage PSU) with its variance from the
    design's engine."""
    def lm_of(sums: np.ndarray, var: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(var > 0, sums**2 / var, np.nan)

    # The observed statistic is the draw with every sign +1.
    n_units = design.core.n_units
    rng = np.random.default_rng(seed)
    # The signs drawn as rng.choice([-1.0, 1.0]) draws them (its indices 0/1), written in
    # place: draws x units can be larger than a column of the data.
    signs = np.empty((n_draws + 1, n_units))
    signs[0] = 1.0
    np.multiply(rng.integers(0, 2, size=(n_draws, n_units)), 2.0, out=signs[1:])
    signs[1:] -= 1.0
    with fit_errors(formula, model.terms):
        test = _core.threshold_score_test(model.columns, model.y, prior, family, link, epsilon, maxit, x, kind,
                                          np.ascontiguousarray(candidates, dtype=np.float64), design.core,
                                          model.rows, np.ascontiguousarray(signs))
    check_convergence(test, formula, maxit)
    lm_all = lm_of(test.sums, test.variances)
    lm = lm_all[0]
    observed = float(np.nanmax(lm))
    count = int((np.nanmax(lm_all[1:], axis=1) >= observed).sum()) if n_draws else 0
    return lm, observed, float((1 + count) / (1 + n_draws))


def _sup_p_value(sigma: np.ndarray, observed: float, df: float, n_sim: int, seed: int) -> float:
    """P(sup_c T_c^2 >= observed) for T = U / sqrt(chi^2_df / df), U ~ N(0, corr(sigma))."""
    d = np.sqrt(np.clip(np.diag(sigma), 0.0, None))
    ok = d > 0
    if not ok.any() or not np.isfinite(observed):
        return float("nan")
    corr = sigma[np.ix_(ok, ok)] / np.outer(d[ok], d[ok])
    # Neighbouring candidates are nearly collinear: factor by eigenvalues, not Cholesky.
    lam, vec = np.linalg.eigh(corr)
    root = vec * np.sqrt(np.clip(lam, 0.0, None))
    rng = np.random.default_rng(seed)
    u = rng.standard_normal((n_sim, len(lam))) @ root.T
    sup = np.max(u * u, axis=1)
    if np.isfinite(df) and df > 0:
        sup /= rng.chisquare(df, n_sim) / df
    return float((1 + np.count_nonzero(sup >= observed)) / (1 + n_sim))


def _lr_interval(cand: np.ndarray, lr: np.ndarray, crit: float, inside: np.ndarray) -> tuple[float, float, bool]:
    """Hull of {LR <= crit}, each end interpolated linearly to where LR crosses crit."""
    idx = np.flatnonzero(inside)
    i0, i1 = int(idx[0]), int(idx[-1])
    edge = i0 == 0 or i1 == len(cand) - 1

    def cross(a: int, b: int) -> float:
        # a outside (lr > crit), b inside.
        t = (lr[a] - crit) / (lr[a] - lr[b])
        return float(cand[a] + t * (cand[b] - cand[a]))

    lo = float(cand[0]) if i0 == 0 else cross(i0 - 1, i0)
    hi = float(cand[-1]) if i1 == len(cand) - 1 else cross(i1 + 1, i1)
    return lo, hi, edge


def _contiguous(inside: np.ndarray) -> bool:
    idx = np.flatnonzero(inside)
    return bool(idx[-1] - idx[0] + 1 == len(idx))


@dataclass(frozen=True)
class ThresholdResult(Serializable):
    """A fitted threshold GLM (:meth:`sscoverage.Design.threshold_glm`).

    ``threshold`` (the candidate of least weighted deviance), ``ci_low`` / ``ci_high``
    (``ci_method``: ``"lr"`` or ``"replicate"``; see the module notes) and
    ``confidence_set`` (the grid candidates inside); ``statistic`` (the sup over the
    grid) and ``p_value`` the test of no threshold (``test_method``); ``profile`` (one row
    per candidate: ``deviance``, design-corrected ``lr``, the threshold term's ``coef``,
    ``se`` and Wald statistic ``wald``, the score statistic ``lm``, rows below and above)
    to plot; ``model`` the GLM fitted at the threshold (a :class:`GLMResult`
    with the threshold term ``term``); ``deff`` the Rao-Scott factor of the LR.
    """

    variable: str
    kind: str
    threshold: float
    ci_low: float
    ci_high: float
    ci_method: str
    level: float
    confidence_set: np.ndarray
    critical_value: float
    deff: float
    statistic: float
    p_value: float
    test_method: str
    df: float
    n_draws: int
    seed: int
    profile: pd.DataFrame
    model: GLMResult
    term: str
    replicate_thresholds: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)
    #: The call that made the fit (set by :meth:`Design.threshold_glm`).
    provenance: Provenance | None = field(default=None, repr=False, compare=False)

    def slopes(self) -> pd.DataFrame:
        """kind="slope": the slope of the variable below and above the threshold (on the
        link scale), with design-based SEs and intervals (t on the model's df)."""
        if self.kind != "slope":
            raise EstimationError("slopes() is for kind='slope'; a step model has one slope")
        m = self.model
        b = m.terms.index(self.variable) if self.variable in m.terms else None
        if b is None:
            raise EstimationError(f"{self.variable!r} is not a coefficient of {m.formula}")
        d = m.terms.index(self.term)
        rows = np.zeros((2, len(m.coef)))
        rows[0, b] = 1.0
        rows[1, b] = rows[1, d] = 1.0
        est = rows @ m.coef
        se = np.sqrt(np.clip(np.diag(rows @ m.vcov @ rows.T), 0.0, None))
        q = critical_value(m.level, float(m.df_residual)) if m.df_residual > 0 else np.nan
        return pd.DataFrame({"side": ["below", "above"], "slope": est, "se": se,
                             "ci_low": est - q * se, "ci_high": est + q * se})

    def summary(self) -> pd.DataFrame:
        """One row: threshold, interval, method, test statistic and p-value."""
        return pd.DataFrame([{
            "variable": self.variable, "kind": self.kind, "threshold": self.threshold,
            "ci_low": self.ci_low, "ci_high": self.ci_high, "ci_method": self.ci_method,
            "statistic": self.statistic, "p_value": self.p_value,
        }])

    def to_pandas(self) -> pd.DataFrame:
        """:meth:`summary`: one row with the threshold, its interval and the test."""
        return self.summary()

    def plot(self, ax: Any = None) -> Any:
        """The profile of the likelihood-ratio statistic over the candidate thresholds;
        see :func:`sscoverage.plots.threshold_profile`.

        Parameters
        ----------
        ax : matplotlib Axes to draw on; None: a new figure.

        Returns
        -------
        matplotlib.axes.Axes
        """
        from ..results.plots import threshold_profile

        return threshold_profile(self, ax)

    def _lines(self) -> list[str]:
        what = "slope change" if self.kind == "slope" else "level change"
        return [
            f"Threshold GLM: {what} in {self.variable} ({self.model.formula})",
            f"threshold {self.threshold:.6g}, {self.level:.0%} interval [{self.ci_low:.6g}, {self.ci_high:.6g}] "
            f"({'likelihood-ratio inversion, Rao-Scott factor ' + format(self.deff, '.3g') if self.ci_method == 'lr' else 'replicate variance'})",
            f"test of no threshold: {self.test_method}: {self.statistic:.4g} over {len(self.profile)} "
            f"candidates, p = {self.p_value:.4g} ({self.n_draws} draws, seed {self.seed})",
            *self.notes,
        ]

    def __repr__(self) -> str:
        return "\n".join(self._lines())

    def _repr_html_(self) -> str:
        return _display.to_html(self._lines(), self.summary())
