"""Predictive margins, average marginal effects and counterfactual scenarios of a fitted
design-based GLM, with design-based standard errors.

Every quantity here is a weighted mean over the fitted rows of a function of the
coefficients, theta = sum_i w_i m_i(beta) / sum_i w_i.  Its uncertainty has two sources:
the sample the mean is taken over and the estimated coefficients.  By linearisation the
influence value of row i is

    z_i = w_i (m_i - theta) / sum_j w_j  +  (d theta / d beta)' u_i,

u_i the coefficients' own influence values (the ones whose design covariance is the
model's ``vcov``); the covariance of the z's comes from the design's one variance engine
(:meth:`Design.influence_vcov`), so strata, clusters, fpc, calibration and domains are
all accounted for.  On a replicate design theta is recomputed with each replicate's
coefficients and weights and the replicate engine gives the covariance.

R's ``svypredmeans`` adds the two parts' variances and leaves out their covariance;
``method="svypredmeans"`` reproduces that, the default (``"joint"``) keeps it.
Stata's ``margins`` after ``svy:`` linearises in the same joint way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import special, stats

from ..exceptions import ColumnError, DesignError, EmptyDomainError, EstimationError, OptionError
from ..results.estimates import Estimates, critical_value

if TYPE_CHECKING:
    from ..protocols import FittedModel, SurveyDesign

METHODS = ("joint", "svypredmeans")

# R's clamps in make.link (family.R): mu stays inside (eps, 1 - eps) for the binomial
# links, and d mu / d eta never drops below eps; the same as the Rust core's.
_EPS = np.finfo(float).eps
_LOGIT_THRESH = 30.0


def link_functions(link: str) -> tuple[Callable[[np.ndarray], np.ndarray], ...]:
    """The inverse link and its first two derivatives, vectorised.

    R's ``make.link(link)$linkinv`` and ``$mu.eta``, with R's clamps on the first two
    (the second derivative is only used in gradients).

    Parameters
    ----------
    link : ``"identity"``, ``"log"``, ``"inverse"``, ``"logit"``, ``"probit"`` or
        ``"cloglog"``.

    Returns
    -------
    tuple of three functions
        mu = g^-1(eta), d mu / d eta and d^2 mu / d eta^2, each of an array eta.

    Examples
    --------
    >>> inverse, mu_eta, _ = ssc.margins.link_functions("logit")
    >>> inverse(np.array([0.0, 2.0])).round(4), mu_eta(np.array([0.0])).round(4)
    (array([0.5   , 0.8808]), array([0.25]))
    """
    if link == "identity":
        return (lambda e: e, lambda e: np.ones_like(e), lambda e: np.zeros_like(e))
    if link == "log":
        return (lambda e: np.maximum(np.exp(e), _EPS), lambda e: np.maximum(np.exp(e), _EPS), np.exp)
    if link == "inverse":
        return (lambda e: 1.0 / e, lambda e: -1.0 / (e * e), lambda e: 2.0 / e**3)
    if link == "logit":
        def mu_eta(e: np.ndarray) -> np.ndarray:
            p = special.expit(e)
            return np.where(np.abs(e) > _LOGIT_THRESH, _EPS, p * (1 - p))

        def d2(e: np.ndarray) -> np.ndarray:
            p = special.expit(e)
            return p * (1 - p) * (1 - 2 * p)

        return (lambda e: special.expit(np.clip(e, -_LOGIT_THRESH, _LOGIT_THRESH)), mu_eta, d2)
    if link == "probit":
        bound = -stats.norm.ppf(_EPS)
        return (
            lambda e: stats.norm.cdf(np.clip(e, -bound, bound)),
            lambda e: np.maximum(stats.norm.pdf(e), _EPS),
            lambda e: -e * stats.norm.pdf(e),
        )
    if link == "cloglog":
        def mu_eta(e: np.ndarray) -> np.ndarray:
            e = np.minimum(e, 700.0)
            return np.maximum(np.exp(e - np.exp(e)), _EPS)

        return (
            lambda e: np.clip(-np.expm1(-np.exp(e)), _EPS, 1 - _EPS),
            mu_eta,
            lambda e: np.exp(e - np.exp(e)) * (1 - np.exp(e)),
        )
    raise EstimationError(f"link {link!r} has no inverse here")


@dataclass
class _Piece:
    """One weighted mean theta = sum_i w_i g_i m_i(beta) / sum_i w_i g_i over the fitted rows
    (g_i the group indicator).  ``grad(beta, v)`` is sum_i v_i d m_i / d beta."""

    value: Callable[[np.ndarray], np.ndarray]
    grad: Callable[[np.ndarray, np.ndarray], np.ndarray]
    group: np.ndarray | None = None


def _prediction(x: np.ndarray, link: str, group: np.ndarray | None = None) -> _Piece:
    """Mean predicted response with model matrix `x` (R's ``predict(type="response")``)."""
    inverse, mu_eta, _ = link_functions(link)
    return _Piece(
        value=lambda b: inverse(x @ b),
        grad=lambda b, v: (v * mu_eta(x @ b)) @ x,
        group=group,
    )


def _derivative(x: np.ndarray, dx: np.ndarray, link: str) -> _Piece:
    """Mean of d mu_i / d x_i = mu'(eta_i) (dX_i . beta), dX_i the derivative of row i of
    the model matrix with respect to the variable."""
    _, mu_eta, d2 = link_functions(link)

    def value(b: np.ndarray) -> np.ndarray:
        return mu_eta(x @ b) * (dx @ b)

    def grad(b: np.ndarray, v: np.ndarray) -> np.ndarray:
        eta, slope = x @ b, dx @ b
        return (v * d2(eta) * slope) @ x + (v * mu_eta(eta)) @ dx

    return _Piece(value, grad)


def _combine(result: "FittedModel", pieces: list[_Piece], contrast: np.ndarray | None = None,
             method: str = "joint") -> tuple[np.ndarray, np.ndarray]:
    """Estimates (contrast @ thetas) and their design-based covariance."""
    if method not in METHODS:
        raise OptionError(f"method={method!r}; use one of {', '.join(METHODS)}")
    design, model = result.design, result.model_frame
    if design is None or model is None:
        raise EstimationError("this result does not carry its design and data; refit it with design.glm")
    rows = _fitted_rows(model)
    w = design.weights[rows]
    beta = result.coef
    k = len(pieces)
    L = np.eye(k) if contrast is None else np.asarray(contrast, dtype=np.float64)
    weights = []
    for piece in pieces:
        wk = w if piece.group is None else w * piece.group
        if not wk.sum() > 0:
            raise EmptyDomainError("a group of the margins has no fitted row with positive weight")
        weights.append(wk)
    values = [piece.value(beta) for piece in pieces]
    theta = np.array([wk @ m / wk.sum() for wk, m in zip(weights, values)])
    est = L @ theta
    # d theta_k / d beta, one row per piece: how the coefficients' uncertainty enters.
    grads = np.array([piece.grad(beta, wk / wk.sum()) for piece, wk in zip(pieces, weights)])
    coef_part = L @ grads @ result.vcov @ grads.T @ L.T  # used by method="svypredmeans"
    if not design.is_replicate:
        in_fit = np.zeros(design.n_rows, bool)
        in_fit[rows] = True
        z = np.zeros((design.n_rows, k))
        for j, (wk, m) in enumerate(zip(weights, values)):
            z[rows, j] = wk * (m - theta[j]) / wk.sum()
        if method == "svypredmeans":
            return est, design.influence_vcov(z @ L.T, in_fit) + coef_part
        z[rows] += result.influence @ grads.T
        return est, design.influence_vcov(z @ L.T, in_fit)
    reps = design.replicate_weights()[rows]
    thetas = np.empty((reps.shape[1], k))
    # All replicates at once (no loop over them): "joint" takes each replicate's
    # coefficients and weights (the pieces evaluate an n x R matrix of values at the p x R
    # coefficients); "svypredmeans" is svymean of the fitted values, the coefficients
    # held at the full-sample fit.
    betas = np.asarray(result.replicate_coef).T if method == "joint" else None
    for j, piece in enumerate(pieces):
        wr = reps if piece.group is None else reps * piece.group[:, None]
        if betas is not None:
            thetas[:, j] = np.einsum("nr,nr->r", wr, piece.value(betas)) / wr.sum(axis=0)
        else:
            thetas[:, j] = values[j] @ wr / wr.sum(axis=0)
    v = design.replicate_vcov(thetas @ L.T, est)
    return est, v if method == "joint" else v + coef_part


def _table(result: "FittedModel", statistic: str, variable: str | list[str], levels: list[Any], labels: list[str],
           est: np.ndarray, vcov: np.ndarray, level: float | None, notes: list[str] | None = None,
           by: dict[str, list[Any]] | None = None) -> Estimates:
    level = result.level if level is None else level
    se = np.sqrt(np.clip(np.diag(vcov), 0.0, None))
    df = float(result.df_residual)
    q = critical_value(level, df) if df > 0 else np.nan
    columns: dict[str, Any] = dict(by or {})
    columns.update({
        "variable": variable,
        "level": levels,
        "label": labels,
        "estimate": est,
        "se": se,
        "ci_low": est - q * se,
        "ci_high": est + q * se,
    })
    return Estimates(statistic=statistic, table=pd.DataFrame(columns), vcov=[vcov], by=list(by or {}),
                     level=level, df=df, notes=notes or [])


def _fitted_rows(model: Any) -> np.ndarray:
    """The design rows the model was fitted on; a streamed fit does not hold them."""
    if getattr(model, "streamed", False):
        raise DesignError("margins and scenarios average over the fitted rows, which a streamed design does "
                          "not hold: collect() the data (or a sample of it) and refit")
    return np.asarray(model.rows)


def _variable(result: "FittedModel", var: str) -> str:
    """The formula's name of a model variable, or a ColumnError."""
    model = result.model_frame
    if model is None:
        raise EstimationError("this result does not carry its data; refit it with design.glm")
    name = model.name_of(var)
    if name not in model.rhs_variables:
        raise ColumnError(
            f"{var!r} is not a variable of the right-hand side of {result.formula} "
            f"(its variables: {', '.join(str(model.aliases.get(v, v)) for v in model.rhs_variables)})"
        )
    return name


def _set(model: Any, data: pd.DataFrame, name: str, var: str, values: Any) -> None:
    """Put `values` (one value, or one per fitted row) into column `name` of `data`, coded
    as the fitted variable (a factor keeps the fitted levels)."""
    if name in model.factors:
        categories = model.data[name].cat.categories
        values = pd.Series(np.broadcast_to(np.asarray(values, dtype=object), (len(data),)))
        unknown = (~values.isin(categories) & values.notna()).to_numpy()
        if unknown.any():
            raise EstimationError(
                f"{var!r} = {values[unknown].iloc[0]!r} is not a level the model was fitted with "
                f"({', '.join(map(str, categories))})"
            )
        data[name] = pd.Series(pd.Categorical(values, categories=categories), index=data.index)
    else:
        try:
            data[name] = np.broadcast_to(np.asarray(values, dtype=np.float64), (len(data),))
        except (TypeError, ValueError):
            raise EstimationError(f"{var!r} is numeric in the model; give numbers, not {values!r}") from None


def predictive_margins(result: "FittedModel", var: str, levels: Sequence[Any] | None = None,
                       method: str = "joint", level: float | None = None) -> Estimates:
    """Predictive margins of a fitted GLM at levels (or values) of one variable.

    For each level, every fitted row is predicted on the response scale with `var` set to
    that level and its other variables as observed, and the predictions are averaged
    with the sampling weights.

    Mirrors Stata's ``margins var`` (factor) / ``margins, at(var=(...))`` (numeric) after
    ``svy: glm``, and R's ``svypredmeans(adjustmodel, ~var)`` (with `var` in the model).

    Parameters
    ----------
    result : a fit of :meth:`Design.glm`.
    var : a right-hand-side variable of the formula.
    levels : the levels of a factor (default: all fitted levels) or the values of a
        numeric variable (required).
    method : ``"joint"`` (default): the delta-method influence values of the margin
        (mean part plus coefficient part) go through the design's variance engine
        together, keeping their covariance; ``"svypredmeans"``: the two variances added,
        as R's ``svypredmeans``.
    level : interval level (t on the model's ``df_residual``); default the model's.

    Returns
    -------
    Estimates
        One row per level: ``estimate``, ``se``, ``ci_low``, ``ci_high``; ``vcov[0]`` is
        their joint covariance.
    """
    name = _variable(result, var)
    model = result.model_frame
    if levels is None:
        if name not in model.factors:
            raise EstimationError(f"{var!r} is numeric: give the values to predict at, levels=[...]")
        levels = list(model.data[name].cat.categories)
    levels = list(levels)
    if not levels:
        raise EstimationError("levels is empty")
    pieces = []
    for value in levels:
        data = model.data.copy()
        _set(model, data, name, var, value)
        pieces.append(_prediction(model.matrix(data), result.link))
    est, vcov = _combine(result, pieces, method=method)
    labels = [f"{var}={v}" for v in levels]
    return _table(result, "predictive margin", var, levels, labels, est, vcov, level,
                  notes=[] if method == "joint" else ["variance as R's svypredmeans (no covariance term)"])


def marginal_effects(result: "FittedModel", var: str, level: float | None = None) -> Estimates:
    """Average marginal effect of one variable on the response scale.

    A numeric `var`: the weighted mean over the fitted rows of d mu_i / d x_i, the
    derivative of each row's predicted mean (the model matrix differentiated by central
    differences, so ``x + I(x**2)``, ``log(x)``, hinges and interactions are handled).
    A factor: for each non-reference level the difference between its predictive margin
    and the reference level's (the average discrete change).

    Mirrors Stata's ``margins, dydx(var)`` after ``svy: glm`` (R's survey has none).  The
    design-based standard errors are by the delta method through the variance engine
    (replicate designs: recomputed per replicate); see the module notes.

    Parameters
    ----------
    result : a fit of :meth:`Design.glm`.
    var : a right-hand-side variable of the formula.
    level : interval level (t on the model's ``df_residual``); default the model's.

    Returns
    -------
    Estimates
        One row (numeric) or one per non-reference level: ``estimate``, ``se``,
        ``ci_low``, ``ci_high`` (t on ``df_residual``).
    """
    name = _variable(result, var)
    model = result.model_frame
    if name in model.factors:
        categories = list(model.data[name].cat.categories)
        if len(categories) < 2:
            raise EstimationError(f"{var!r} has one level in the fit: no effect to estimate")
        pieces = []
        for value in categories:
            data = model.data.copy()
            _set(model, data, name, var, value)
            pieces.append(_prediction(model.matrix(data), result.link))
        contrast = np.zeros((len(categories) - 1, len(categories)))
        contrast[:, 0] = -1.0
        contrast[np.arange(len(categories) - 1), np.arange(1, len(categories))] = 1.0
        est, vcov = _combine(result, pieces, contrast)
        return _table(result, f"average marginal effect (change from {var}={categories[0]})", var,
                      categories[1:], [f"{var}{c}" for c in categories[1:]], est, vcov, level)
    x0 = model.data[name].to_numpy(dtype=np.float64)
    # A step small against the spread of the variable: central differences are exact for
    # terms up to quadratic in it and O(h^2) otherwise.
    scale = float(np.std(x0))
    h = 1e-5 * (scale if scale > 0 else 1.0)
    shifted = []
    for sign in (1.0, -1.0):
        data = model.data.copy()
        data[name] = x0 + sign * h
        shifted.append(model.matrix(data))
    dx = (shifted[0] - shifted[1]) / (2 * h)
    est, vcov = _combine(result, [_derivative(model.x, dx, result.link)])
    return _table(result, "average marginal effect (dy/dx)", var, [None], [var], est, vcov, level)


def scenario(result: "FittedModel", changes: Mapping[str, Any], design: "SurveyDesign | None" = None,
             by: str | None = None, level: float | None = None) -> Estimates:
    """Predicted mean response (coverage) by group under counterfactual changes to the
    model's variables, against the fitted data as observed, with design-based SEs.

    For every fitted row the model predicts the response twice: with the data as
    observed (the baseline) and with `changes` applied; the weighted means of both, and
    their difference (the effect of the scenario), are returned for the whole domain and
    for each group of `by`.  The SE of the difference accounts for the estimated
    coefficients and for the sample the mean is taken over, jointly, through the
    design's variance engine (delta method; replicate designs: recomputed per
    replicate), so it is usually much smaller than the two levels' SEs suggest.

    Stata: ``margins, at(...)`` with ``contrast``; R: predictions of ``svyglm`` averaged
    with ``svymean`` (no built-in SE of the change).

    Parameters
    ----------
    result : a fit of :meth:`Design.glm`, e.g. of coverage (or lapse) on income.
    changes : column -> new value: one value for every row, or a function of the
        column's fitted values (a pandas Series) returning the new ones, e.g.
        ``{"income": lambda x: np.where(x < 5000, x + 300, x)}`` (a subsidy below a
        threshold).  Only variables of the model's formula can change a prediction.
    design : the design the averages are taken over: the fitted one (default) or a
        subset of it (``design.subset(...)``), e.g. one population group.
    by : a column of the design's data: the averages per level as well.
    level : interval level (t on the model's ``df_residual``).

    Returns
    -------
    Estimates
        Rows ``baseline``, ``scenario`` and ``change`` (``variable``) for ``all`` and each
        group (``group``).
    """
    model = result.model_frame
    fit_design = result.design
    if model is None or fit_design is None:
        raise EstimationError("this result does not carry its design and data; refit it with design.glm")
    if not changes:
        raise EstimationError("changes is empty: name at least one model variable to change")
    target = fit_design if design is None else design
    if target.core is not fit_design.core:
        raise DesignError(
            "the scenario must be averaged over the design the model was fitted on or a subset of it "
            "(design.subset(...)); refit the model on the design you want to predict for"
        )
    data = model.data.copy()
    for column, change in changes.items():
        name = _variable(result, column)
        new = change(model.data[name].copy()) if callable(change) else change
        if name in model.factors:
            new = np.asarray(new, dtype=object)
        _set(model, data, name, column, new)
    x1 = model.matrix(data)
    if np.isnan(x1).any():
        raise EstimationError("the changes give missing values of a model variable")
    in_target = target.in_subset()[_fitted_rows(model)]
    if not in_target.any():
        raise EmptyDomainError("no fitted row is in the design the scenario is averaged over")
    groups: list[tuple[str, np.ndarray]] = [("all", in_target.astype(np.float64))]
    if by is not None:
        coded = fit_design.frame.codes(by, "by")
        codes = coded.codes[model.rows]
        for j, label in enumerate(coded.labels):
            g = (codes == j) & in_target
            if g.any():
                groups.append((label, g.astype(np.float64)))
    pieces: list[_Piece] = []
    for _, g in groups:
        pieces.append(_prediction(model.x, result.link, g))
        pieces.append(_prediction(x1, result.link, g))
    n = len(groups)
    contrast = np.zeros((3 * n, 2 * n))
    for j in range(n):
        contrast[3 * j, 2 * j] = 1.0
        contrast[3 * j + 1, 2 * j + 1] = 1.0
        contrast[3 * j + 2, 2 * j], contrast[3 * j + 2, 2 * j + 1] = -1.0, 1.0
    est, vcov = _combine(result, pieces, contrast)
    group_labels = [label for label, _ in groups for _ in range(3)]
    kinds = ["baseline", "scenario", "change"] * n
    return _table(
        result,
        f"scenario: {', '.join(changes)} changed; predicted mean of {result.formula.split('~')[0].strip()}",
        kinds, [None] * (3 * n), [f"{g}:{k}" for g, k in zip(group_labels, kinds)], est, vcov, level,
        by={"group": group_labels},
    )
