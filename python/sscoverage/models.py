"""Regression models for survey data: design-based generalised linear models.

:func:`glm` mirrors R's ``survey::svyglm`` (and Stata's ``svy: glm``): the coefficients
solve the sampling-weighted score equations, fitted by R's IRLS in the Rust core; their
covariance is the design-based covariance of the influence values (each row's score
contribution times the inverse information, R's ``svy.varcoef``), through the one
variance engine of :class:`~sscoverage.Design`.
"""

from __future__ import annotations

import difflib
import keyword
import re
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
import pandas as pd
import polars as pl
from formulaic import Formula, model_matrix
from scipy import stats

from . import _core
from ._frames import codes_of
from .exceptions import ColumnError, ConvergenceError, ConvergenceWarning, DesignError, EstimationError
from .results import critical_value

if TYPE_CHECKING:
    from .design import Design

#: R's family names (``quasi*`` fit as their namesakes; the dispersion is estimated from
#: the design for every family).
FAMILIES = ("gaussian", "binomial", "quasibinomial", "poisson", "quasipoisson", "Gamma")
BINOMIAL = ("binomial", "quasibinomial")

# A formula token: a quoted name or string (left alone unless a backquoted column), or a
# bare name that may contain dots as R's names do.
_TOKEN = re.compile(r"`[^`]*`|'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|[A-Za-z_.][A-Za-z0-9_.]*")
_ALIAS = re.compile(r"__ssc(\d+)__")


def glm(
    design: "Design",
    formula: str,
    family: str = "gaussian",
    link: str | None = None,
    levels: Mapping[str, Sequence[Any]] | None = None,
    level: float = 0.95,
    epsilon: float = 1e-8,
    maxit: int = 25,
) -> "GLMResult":
    """Design-based generalised linear model; see :meth:`sscoverage.Design.glm`."""
    if family not in FAMILIES:
        raise ValueError(f"family={family!r}; use one of {', '.join(FAMILIES)}")
    model = _ModelFrame(design, formula, family, levels or {})
    if design.is_replicate:
        return _replicate_glm(design, model, formula, family, link, level, epsilon, maxit)
    w = design.weights
    rows = model.rows
    # R's svyglm fits with the weights rescaled to mean 1 over the rows of the design's
    # model frame (all rows of a PPS design, whose domains keep their rows with weight 0;
    # the domain's rows otherwise).  The scale cancels in the coefficients and their
    # covariance, but not in the binomial starting values.
    keeps_rows = bool(design.spec.get("pps"))
    scope = design._scope()
    mean_w = w[scope].sum() / (design.n_rows if keeps_rows else scope.sum())
    fit = _fit(model, w[rows] / mean_w, formula, family, link, epsilon, maxit)

    p = len(model.terms)
    in_fit = np.zeros(design.n_rows, bool)
    in_fit[rows] = True
    influence = np.zeros((design.n_rows, p))
    influence[rows] = fit["influence"]
    vcov = design._influence_vcov(influence, in_fit)
    # Rows left out for missing values leave the design as a domain (R refits on
    # design[-na.action, ]): degrees of freedom and dispersion are that domain's.
    fit_design = design if in_fit.sum() == scope.sum() else design.subset(in_fit)
    # R's Pearson residuals carry sqrt(prior weight / design weight rescaled to mean 1
    # over the fitted rows): 1, unless rows were dropped for missing values.
    mean_fit = w[rows].sum() / (design.n_rows if keeps_rows else len(rows))
    dispersion = _dispersion(fit["pearson_residuals"] * np.sqrt(mean_fit / mean_w), w[rows])
    return GLMResult(
        formula=formula,
        family=family,
        link=str(fit["link"]),
        terms=model.terms,
        coef=np.asarray(fit["coefficients"]),
        vcov=vcov,
        dispersion=dispersion,
        df_residual=fit_design.degf + 1 - p,
        deviance=float(fit["deviance"]),
        iterations=int(fit["iterations"]),
        n=len(rows),
        n_removed=model.n_removed,
        level=level,
    )


def _fit(model: "_ModelFrame", weights: np.ndarray, formula: str, family: str, link: str | None,
         epsilon: float, maxit: int) -> dict[str, Any]:
    """One IRLS fit in the core, with aliased columns named by their terms."""
    try:
        fit = _core.glm_fit(model.x, model.y, weights, family, link, epsilon=epsilon, maxit=maxit)
    except EstimationError as err:
        if len(err.args) > 1:  # the core's positions of aliased columns
            names = [model.terms[j] for j in err.args[1]]
            raise EstimationError(
                f"{formula}: term(s) {', '.join(names)} are aliased (a constant predictor, or a "
                "linear combination of the terms before them); drop them from the formula"
            ) from None
        raise type(err)(f"{formula}: {err}") from None
    _check_convergence(fit, formula, maxit)
    return fit


def _replicate_glm(design: "Design", model: "_ModelFrame", formula: str, family: str, link: str | None,
                   level: float, epsilon: float, maxit: int) -> "GLMResult":
    """R's ``svyglm.svyrep.design``: the model refitted with each replicate's weights
    (normalised to sum 1, which leaves the coefficients alone), and the spread of the
    replicate coefficients through the one replicate engine."""
    rows = model.rows
    scope = design._scope()
    w = design.weights
    prior = w[rows] / w[scope].mean()  # R rescales the sampling weights to mean 1
    fit = _fit(model, prior, formula, family, link, epsilon, maxit)
    coef = np.asarray(fit["coefficients"])
    reps = design.replicate_weights()[rows]
    thetas = np.empty((reps.shape[1], len(coef)))
    for r in range(reps.shape[1]):
        wr = reps[:, r]
        thetas[r] = _fit(model, wr / wr.sum(), formula, family, link, epsilon, maxit)["coefficients"]
    vcov = design._replicate_vcov(thetas, coef)
    # summary.svrepglm: sum(w * r^2) / sum(w) with residuals.svrepglm's Pearson
    # residuals r = e sqrt(prior) / sqrt(w / sum(w)), which reduces to sum(prior * e^2).
    e = np.asarray(fit["pearson_residuals"])
    dispersion = float((prior * e**2).sum())
    p = len(model.terms)
    return GLMResult(
        formula=formula,
        family=family,
        link=str(fit["link"]),
        terms=model.terms,
        coef=coef,
        vcov=vcov,
        dispersion=dispersion,
        df_residual=design.degf + 1 - p,
        deviance=float(fit["deviance"]),
        iterations=int(fit["iterations"]),
        n=len(rows),
        n_removed=model.n_removed,
        level=level,
    )


def _check_convergence(fit: dict[str, Any], formula: str, maxit: int) -> None:
    """R warns (or not) and returns these fits; their coefficients are not estimates, so refuse."""
    if fit["separated"]:
        raise ConvergenceError(
            f"{formula}: the predictors separate the outcome (perfectly or quasi-perfectly: some "
            "group or range of a predictor has only 0s or only 1s, or no events), so the likelihood "
            "has no finite maximum and some coefficients are infinite; drop or merge the separating terms"
        )
    if not fit["converged"]:
        raise ConvergenceError(
            f"{formula}: the IRLS did not converge in {maxit} iterations; raise maxit (if it then "
            "converges, separation of the outcome by the predictors is checked)"
        )
    if fit["boundary"]:
        warnings.warn(
            f"{formula}: the IRLS halved a step to keep the fitted means in the family's range "
            "(R: step size truncated); check the fit",
            ConvergenceWarning,
            stacklevel=4,
        )


def _dispersion(pearson: np.ndarray, w: np.ndarray) -> float:
    """R's ``summary.svyglm`` dispersion: ``svyvar`` of the Pearson residuals, i.e. their
    weighted variance times n/(n-1), n the rows of non-zero weight."""
    n = int((w != 0).sum())
    if n < 2:
        return float("nan")
    centred = pearson - (w * pearson).sum() / w.sum()
    return float((w * centred * centred * n / (n - 1)).sum() / w.sum())


class _ModelFrame:
    """The model matrix of a formula on a design's rows, with R's term names.

    Rows outside the design's domain are left out, then rows with a missing value in a
    model variable (``n_removed`` counts these), as R's ``na.omit``; factor levels with no
    row left are dropped, as R's ``glm`` does (``drop.unused.levels``).
    """

    def __init__(self, design: "Design", formula: str, family: str, levels: Mapping[str, Sequence[Any]]) -> None:
        frame = design._frame
        text, aliases = _alias_names(formula, frame.columns)
        try:
            parsed = Formula(text)
        except Exception as err:  # formulaic's parse errors have many classes
            raise ValueError(f"cannot read the formula {formula!r}: {err}") from None
        if not hasattr(parsed, "lhs"):
            raise ValueError(f"the formula {formula!r} has no outcome: write 'y ~ x1 + x2'")
        used = sorted(parsed.required_variables)
        for name in used:
            if name not in aliases and name not in frame.columns:
                close = difflib.get_close_matches(name, [str(c) for c in frame.columns], n=1)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                raise ColumnError(f"column {name!r} in the formula {formula!r} is not in the data.{hint}")
        for name in levels:
            if name not in frame.columns:
                raise ColumnError(f"levels given for {name!r}, which is not a column of the data")
        scope = np.flatnonzero(design._scope())
        data = pd.DataFrame(index=scope)
        factors: list[str] = []  # the formula names of factor variables
        for name in used:
            column = aliases.get(name, name)
            values = frame._column(column)
            if isinstance(values, pl.Series):
                values = values.to_pandas()
            values = values.iloc[scope].set_axis(scope)
            data[name] = _as_model_variable(values, column, levels.get(column))
            if isinstance(data[name].dtype, pd.CategoricalDtype):
                factors.append(name)
        # Pass 1 finds the complete rows; pass 2 builds the matrix without unused levels.
        first = model_matrix(text, data, na_action="drop")
        kept = first.rhs.index.to_numpy()
        if len(kept) == 0:
            raise EstimationError(f"{formula}: no rows are left to fit (subset and missing values)")
        data = data.loc[kept]
        for name in factors:
            data[name] = data[name].cat.remove_unused_categories()
        mm = model_matrix(text, data, na_action="raise")
        self.rows = kept
        self.n_removed = len(scope) - len(kept)
        self.terms = _r_names(list(mm.rhs.columns), data, factors, aliases)
        self.x = np.ascontiguousarray(mm.rhs.to_numpy(dtype=np.float64))
        outcome = text.split("~", 1)[0].strip()
        if outcome in factors and family in BINOMIAL:
            # A factor outcome: success = any level but the first, as R's binomial.
            self.y = np.ascontiguousarray((data[outcome].cat.codes != 0).to_numpy(dtype=np.float64))
        elif mm.lhs.shape[1] == 1 and outcome not in factors:
            self.y = np.ascontiguousarray(mm.lhs.iloc[:, 0].to_numpy(dtype=np.float64))
        else:
            raise ColumnError(
                f"the outcome of {formula!r} must be one numeric column"
                + (" or a factor" if family in BINOMIAL else "")
            )


def _alias_names(formula: str, columns: Sequence[Any]) -> tuple[str, dict[str, str]]:
    """The formula with column names that are not Python names (``api.stu``, or backquoted)
    replaced by aliases formulaic can evaluate, and alias -> column."""
    wanted = {str(c): c for c in columns}
    aliases: dict[str, str] = {}
    by_column: dict[str, str] = {}

    def swap(m: re.Match[str]) -> str:
        token = m.group(0)
        name = token[1:-1] if token.startswith("`") else token
        if token[0] in "'\"" or name not in wanted:
            return token
        if name.isidentifier() and not keyword.iskeyword(name) and not token.startswith("`"):
            return token
        if name not in by_column:
            alias = f"__ssc{len(by_column)}__"
            by_column[name] = alias
            aliases[alias] = wanted[name]
        return by_column[name]

    return _TOKEN.sub(swap, formula), aliases


def _as_model_variable(values: pd.Series, name: str, levels: Sequence[Any] | None) -> pd.Series:
    """A column as R's model frame sees it: numbers stay numbers; strings, logicals and
    categoricals are factors with R's level order (or the given `levels`)."""
    if levels is not None:
        return pd.Series(pd.Categorical(values, categories=list(levels)), index=values.index)
    if pd.api.types.is_bool_dtype(values.dtype):
        text = values.map(lambda v: None if pd.isna(v) else ("TRUE" if v else "FALSE"))
        return pd.Series(pd.Categorical(text, categories=["FALSE", "TRUE"]), index=values.index)
    if isinstance(values.dtype, pd.CategoricalDtype):
        return values
    if pd.api.types.is_numeric_dtype(values.dtype):
        return values.astype(np.float64)
    labels = codes_of(values, name, "model term").labels
    return pd.Series(pd.Categorical(values, categories=labels), index=values.index)


def _r_names(columns: list[str], data: pd.DataFrame, factors: Sequence[str], aliases: Mapping[str, str]) -> list[str]:
    """formulaic's column names in R's spelling: ``(Intercept)``, ``stypeH``,
    ``stypeH:meals`` (factor name and level run together)."""
    spelled: dict[str, str] = {}
    for name in factors:
        for lv in data[name].cat.categories:
            for token in (f"{name}[T.{lv}]", f"{name}[{lv}]"):
                spelled[token] = f"{name}{lv}"
    out = []
    # A factor's token is one whole ':'-separated part of a column name.
    pattern = (
        re.compile("(?<![^:])(" + "|".join(map(re.escape, sorted(spelled, key=len, reverse=True))) + ")(?![^:])")
        if spelled
        else None
    )
    for col in columns:
        if col == "Intercept":
            out.append("(Intercept)")
            continue
        if pattern is not None:
            col = pattern.sub(lambda m: spelled[m.group(1)], col)
        out.append(_ALIAS.sub(lambda m: str(aliases[m.group(0)]), col))
    return out


@dataclass(frozen=True)
class GLMResult:
    """A fitted design-based GLM (R's ``svyglm`` with ``summary``).

    ``coef`` (also ``estimate``), ``se``, ``vcov`` (design-based), ``dispersion`` (R's
    ``summary(fit)$dispersion``: the design-weighted variance of the Pearson residuals),
    ``df_residual`` (design degrees of freedom + 1 - number of coefficients, on which the
    t statistics, p-values and intervals are based), ``n`` rows fitted and ``n_removed``
    rows of the domain left out for missing values.
    """

    formula: str
    family: str
    link: str
    terms: list[str]
    coef: np.ndarray
    vcov: np.ndarray
    dispersion: float
    df_residual: int
    deviance: float
    iterations: int
    n: int
    n_removed: int
    level: float = 0.95

    @property
    def estimate(self) -> np.ndarray:
        return self.coef

    @property
    def se(self) -> np.ndarray:
        return np.sqrt(np.clip(np.diag(self.vcov), 0.0, None))

    @property
    def t(self) -> np.ndarray:
        return self.coef / self.se

    @property
    def p_value(self) -> np.ndarray:
        """Two-sided, from t on ``df_residual`` degrees of freedom (NaN when it is not positive)."""
        if self.df_residual <= 0:
            return np.full(len(self.coef), np.nan)
        return 2 * stats.t.sf(np.abs(self.t), self.df_residual)

    def conf_int(self, level: float | None = None) -> pd.DataFrame:
        """Wald intervals with t quantiles on ``df_residual`` (R's ``confint.svyglm``)."""
        level = self.level if level is None else level
        if self.df_residual <= 0:
            q = np.nan
        else:
            q = critical_value(level, float(self.df_residual))
        return pd.DataFrame({"term": self.terms, "ci_low": self.coef - q * self.se, "ci_high": self.coef + q * self.se})

    def summary(self, level: float | None = None) -> pd.DataFrame:
        """One row per coefficient: estimate, se, t, p_value, ci_low, ci_high."""
        ci = self.conf_int(level)
        return pd.DataFrame(
            {
                "term": self.terms,
                "estimate": self.coef,
                "se": self.se,
                "t": self.t,
                "p_value": self.p_value,
                "ci_low": ci["ci_low"],
                "ci_high": ci["ci_high"],
            }
        )

    def to_pandas(self) -> pd.DataFrame:
        return self.summary()

    def to_polars(self) -> pl.DataFrame:
        return pl.from_pandas(self.summary())

    def _header(self) -> str:
        removed = f", {self.n_removed} rows with missing values left out" if self.n_removed else ""
        return (
            f"Survey GLM {self.formula}, {self.family} ({self.link} link)\n"
            f"n = {self.n}{removed}; dispersion {self.dispersion:.6g}; "
            f"t on {self.df_residual} residual df; {self.level:.0%} CI"
        )

    def __repr__(self) -> str:
        with pd.option_context("display.width", 120, "display.max_columns", 20):
            return f"{self._header()}\n{self.summary().to_string(index=False)}"

    def _repr_html_(self) -> str:
        head = self._header().replace("\n", "<br>")
        table = self.summary().to_html(index=False, float_format=lambda x: f"{x:.6g}")
        return f"<div><p><b>{head}</b></p>{table}</div>"
