"""Regression models for survey data: design-based generalised linear models.

:func:`glm` mirrors R's ``survey::svyglm`` (and Stata's ``svy: glm``): the coefficients
solve the sampling-weighted score equations, fitted by R's IRLS in the Rust core; their
covariance is the design-based covariance of the influence values (each row's score
contribution times the inverse information, R's ``svy.varcoef``), through the one
variance engine of :class:`~sscoverage.Design`.
"""

from __future__ import annotations

import itertools
import re
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Protocol, Sequence

import numpy as np
import pandas as pd
import polars as pl
from formulaic import Formula, model_matrix
from scipy import stats

from .. import _core

from ..results import display as _display
from .._frames import as_pandas, codes_of
from .._provenance import Provenance, design_facts
from ..formula import CONTEXT, ParsedFormula, column_of, parse_formula, term_name
from ..exceptions import ColumnError, ConvergenceError, ConvergenceWarning, DesignError, EstimationError, OptionError
from ..results.estimates import CoefficientModel, Estimates, critical_value
from ..io.serialize import UNSTORED, Serializable

if TYPE_CHECKING:
    from ..protocols import SurveyDesign

#: R's family names (``quasi*`` fit as their namesakes; the dispersion is estimated from
#: the design for every family).
FAMILIES = ("gaussian", "binomial", "quasibinomial", "poisson", "quasipoisson", "Gamma")
BINOMIAL = ("binomial", "quasibinomial")



def glm(
    design: "SurveyDesign",
    formula: str,
    family: str = "gaussian",
    link: str | None = None,
    levels: Mapping[str, Sequence[Any]] | None = None,
    level: float = 0.95,
    epsilon: float = 1e-8,
    maxit: int = 25,
    progress: bool = True,
) -> "GLMResult":
    """Design-based generalised linear model; see :meth:`sscoverage.Design.glm`."""
    if family not in FAMILIES:
        raise OptionError(f"family={family!r}; use one of {', '.join(FAMILIES)}")
    critical_value(level, None)  # a level outside (0, 1) is refused before the fit
    model = ModelFrame(design, formula, family, levels or {})
    # `progress` shows the batches of a streamed design; in memory the fit, replicate
    # refits included, is one call into the core.
    del progress
    return fit_model(design, model, formula, family, link, level, epsilon, maxit)


def fit_model(design: "SurveyDesign", model: "ModelFrame", formula: str, family: str, link: str | None,
               level: float, epsilon: float, maxit: int) -> "GLMResult":
    """The fit of a built model frame on a design, with its design-based covariance (also
    used by the threshold model for its fit at the threshold)."""
    if design.is_replicate:
        return _replicate_glm(design, model, formula, family, link, level, epsilon, maxit)
    w = design.weights
    rows = model.rows
    # R's svyglm fits with the weights rescaled to mean 1 over the rows of the design's
    # model frame (all rows of a PPS design, whose domains keep their rows with weight 0;
    # the domain's rows otherwise).  The scale cancels in the coefficients and their
    # covariance, but not in the binomial starting values.
    keeps_rows = bool(design.spec.get("pps"))
    scope = design.in_subset()
    n_scope = int(scope.sum())
    # Every row in scope or fitted (the usual case): the weights as they are, no copy.
    mean_w = (w.sum() if n_scope == design.n_rows else w[scope].sum()) / (design.n_rows if keeps_rows else n_scope)
    w_fit = w if len(rows) == design.n_rows else w[rows]
    # The core sums the influence values to the design's PSUs where they are (the
    # fitted rows are the domain) and returns their covariance with the fit.
    fit = irls_fit(model, w_fit / mean_w, formula, family, link, epsilon, maxit, design=design)
    p = len(model.terms)
    # Rows left out for missing values leave the design as a domain (R refits on
    # design[-na.action, ]): degrees of freedom and dispersion are that domain's.
    if len(rows) == n_scope:
        fit_design = design
    else:
        in_fit = np.zeros(design.n_rows, bool)
        in_fit[rows] = True
        fit_design = design.subset(in_fit)
    # R's Pearson residuals carry sqrt(prior weight / design weight rescaled to mean 1
    # over the fitted rows): 1, unless rows were dropped for missing values.  The
    # dispersion is svyvar of the residuals (from their moments, which the core summed
    # in its pass at the solution) times that ratio, as a streamed fit computes it.
    mean_fit = w_fit.sum() / (design.n_rows if keeps_rows else len(rows))
    dispersion = mean_fit / mean_w * _core.svyvar_of_sums(*map(float, fit.pearson))
    return _result(fit, model, design, formula, family, level, fit.vcov, dispersion,
                   df_residual=fit_design.degf + 1 - p, prior_scale=mean_w, previous=fit.previous)


def matrix_columns(x: np.ndarray) -> _core.ModelColumns:
    """The columns of a dense n x p model matrix as the core reads them (views of a
    column-major copy)."""
    x = np.asfortranarray(x, dtype=np.float64)
    return value_columns(x.shape[0], [x[:, j] for j in range(x.shape[1])])


def value_columns(n: int, values: Sequence[np.ndarray]) -> _core.ModelColumns:
    """Model columns given by their values (n each)."""
    return _core.ModelColumns(n, list(values), [], [[(j, None)] for j in range(len(values))])


def formulaic_values(frame: pd.DataFrame) -> list[np.ndarray]:
    """The columns of formulaic's model matrix, each as it is stored (no row-major copy
    of the whole matrix)."""
    return [np.ascontiguousarray(frame.iloc[:, j].to_numpy(dtype=np.float64)) for j in range(frame.shape[1])]


#: The threshold model's term as its formula writes it (``models.threshold``): a kink
#: ``pmax(x - c, 0)`` or a step ``I(x < c)`` of a variable at a number, which the core
#: makes as it reads the rows.
_THRESHOLD_TERM = re.compile(
    r"^(?:pmax\((?P<slope>[A-Za-z_][A-Za-z0-9_.]*) - (?P<at>[-+0-9.eE]+), 0\)"
    r"|I\((?P<level>[A-Za-z_][A-Za-z0-9_.]*) < (?P<below>[-+0-9.eE]+)\))$"
)


def threshold_term_text(token: str, kind: str, at: float) -> str:
    """The threshold term of the variable `token` at `at` as a formula writes it (a term
    of the package's formula grammar; R codes the logical ``I(x < c)`` as a factor, whose
    column ``I(x < c)TRUE`` is 1 below c); :func:`threshold_term` reads it back."""
    value = repr(float(at))
    return f"pmax({token} - {value}, 0)" if kind == "slope" else f"I({token} < {value})"


def threshold_term(expr: str) -> tuple[str, str, float] | None:
    """(variable, kind, candidate) of a threshold term's factor as
    :func:`threshold_term_text` writes it, or None."""
    m = _THRESHOLD_TERM.match(expr)
    if m is None:
        return None
    try:
        if m["slope"] is not None:
            return m["slope"], "slope", float(m["at"])
        return m["level"], "level", float(m["below"])
    except ValueError:
        return None


@dataclass(frozen=True)
class ColumnPlan:
    """Each column of a model matrix as a product of model variables, read from formulaic's
    spec: ``(name, None)`` a numeric variable's values, ``(name, k)`` the indicator of a
    factor's k-th level (treatment contrasts drop the first level; R's full coding of a
    factor in some interactions keeps it).  The core assembles the columns from the
    variables block by block, so no n x p matrix is built."""

    columns: list[list[tuple[Any, ...]]]

    @classmethod
    def of(cls, spec: Any, data: pd.DataFrame) -> "ColumnPlan | None":
        """The plan of formulaic's model `spec` over model variables `data`, or None when
        some factor of a term is not a plain variable (``I()``, ``log()``, ``poly()``,
        ``C()``, other contrasts) or a threshold term: formulaic then evaluates the
        columns."""
        columns: list[list[tuple[Any, ...]]] = []
        names: list[str] = []
        for term in spec.structure:
            for scoped in term.scoped_terms:
                choices = []
                for factor in scoped.factors:
                    name = factor.factor.expr
                    threshold = threshold_term(name)
                    if threshold is not None:
                        variable, kind, at = threshold
                        if variable not in data.columns or data[variable].dtype != np.float64:
                            return None
                        choices.append([((variable, kind, at), name)])
                        continue
                    # ``C(f)`` of a factor variable codes it as the factor itself.
                    variable = name[2:-1] if name.startswith("C(") and name.endswith(")") else name
                    if variable not in data.columns or (variable != name and
                                                        not isinstance(data[variable].dtype, pd.CategoricalDtype)):
                        return None
                    values = data[variable]
                    if isinstance(values.dtype, pd.CategoricalDtype):
                        cats = list(values.cat.categories)
                        if factor.reduced:
                            choices.append([((variable, k), f"{name}[T.{cats[k]}]") for k in range(1, len(cats))])
                        else:
                            choices.append([((variable, k), f"{name}[{cats[k]}]") for k in range(len(cats))])
                    elif values.dtype == np.float64:
                        choices.append([((name, None), name)])
                    else:
                        return None
                # formulaic's order: the first factor's levels vary fastest.
                for combo in itertools.product(*reversed(choices)):
                    columns.append([c for c, _ in reversed(combo)])
                    names.append(":".join(n for _, n in reversed(combo)) or "Intercept")
        # Contrasts other than treatment, or a layout this reading does not know, name
        # their columns otherwise: formulaic builds those.
        return cls(columns) if names == list(spec.column_names) else None

    def build(self, data: pd.DataFrame) -> _core.ModelColumns:
        """The model columns over the rows of `data` (no missing values)."""
        values: list[np.ndarray] = []
        codes: list[np.ndarray] = []
        index: dict[str, int] = {}
        for name, *how in itertools.chain.from_iterable(self.columns):
            if name in index:
                continue
            # (name, level) reads a factor's codes; (name, None) and a threshold term
            # (name, kind, at) read a variable's values.
            if len(how) == 1 and how[0] is not None:
                index[name] = len(codes)
                codes.append(data[name].cat.codes.to_numpy().astype(np.uint32))
            else:
                index[name] = len(values)
                values.append(np.ascontiguousarray(data[name].to_numpy(dtype=np.float64)))
        layout = [[(index[name], *how) for name, *how in column] for column in self.columns]
        return _core.ModelColumns(len(data), values, codes, layout)


def irls_fit(model: "ModelFrame", weights: np.ndarray, formula: str, family: str, link: str | None,
         epsilon: float, maxit: int, design: "SurveyDesign | None" = None) -> _core.GlmFit:
    """One IRLS fit in the core, with aliased columns named by their terms; with a
    (linearisation) `design` and a model frame, also the coefficients' design-based
    covariance (``vcov``)."""
    on_design = {} if design is None else {"design": design.core, "rows": model.rows}
    with fit_errors(formula, model.terms):
        fit = _core.glm_fit(model.columns, model.y, weights, family, link, epsilon=epsilon, maxit=maxit, **on_design)
    check_convergence(fit, formula, maxit)
    return fit


def fitted_rows(model: "ModelFrame", weights: np.ndarray, family: str, link: str, coef: np.ndarray,
                previous: np.ndarray | None, cov_unscaled: np.ndarray) -> _core.GlmRows:
    """The rows at a fit's solution (fitted means, working weights and residuals, Pearson
    residuals, influence values), one pass in the core: the fit itself keeps none of them,
    so the callers that read rows (margins, a result's influence values) make them."""
    return _core.glm_rows(model.columns, model.y, weights, family, link, coef, previous,
                          np.ascontiguousarray(cov_unscaled))


@contextmanager
def fit_errors(formula: str, terms: Sequence[str]) -> Iterator[None]:
    """The core's fitting errors told with the formula; aliased columns named by their terms."""
    try:
        yield
    except EstimationError as err:
        if len(err.args) > 1:  # the core's positions of aliased columns
            names = [terms[j] for j in err.args[1]]
            raise EstimationError(
                f"{formula}: term(s) {', '.join(names)} are aliased (a constant predictor, or a "
                "linear combination of the terms before them); drop them from the formula"
            ) from None
        raise type(err)(f"{formula}: {err}") from None


def _replicate_glm(design: "SurveyDesign", model: "ModelFrame", formula: str, family: str, link: str | None,
                   level: float, epsilon: float, maxit: int) -> "GLMResult":
    """R's ``svyglm.svyrep.design``: the model refitted with each replicate's weights
    (normalised to sum 1, which leaves the coefficients alone), and the spread of the
    replicate coefficients through the one replicate engine."""
    rows = model.rows
    scope = design.in_subset()
    w = design.weights
    prior = w[rows] / w[scope].mean()  # R rescales the sampling weights to mean 1
    fit = irls_fit(model, prior, formula, family, link, epsilon, maxit)
    coef = fit.coefficients
    # Every replicate refitted in the core, in parallel, from the full-sample
    # coefficients as R's svyglm.svyrep.design starts them.
    reps = np.ascontiguousarray(design.replicate_weights()[rows])
    thetas = _core.glm_replicate_coefficients(model.columns, model.y, reps, np.ascontiguousarray(coef), family, link,
                                              epsilon=epsilon, maxit=maxit)
    vcov = design.replicate_vcov(thetas, coef)
    # summary.svrepglm: sum(w * r^2) / sum(w) with residuals.svrepglm's Pearson
    # residuals r = e sqrt(prior) / sqrt(w / sum(w)), which reduces to sum(prior * e^2),
    # the second of the moments the core summed.
    dispersion = float(fit.pearson[2])
    p = len(model.terms)
    return _result(fit, model, design, formula, family, level, vcov, dispersion,
                   df_residual=design.degf + 1 - p, replicate_coef=thetas)


def _result(fit: _core.GlmFit, model: "ModelFrame", design: "SurveyDesign", formula: str, family: str,
            level: float, vcov: np.ndarray, dispersion: float, **extra: Any) -> "GLMResult":
    """The GLMResult of a full-sample fit, its covariance (by linearisation or by
    replicates: `extra` carries what that route keeps) and dispersion."""
    return GLMResult(
        formula=formula,
        family=family,
        link=fit.link,
        terms=model.terms,
        coef=fit.coefficients,
        vcov=vcov,
        dispersion=dispersion,
        deviance=fit.deviance,
        iterations=fit.iterations,
        n=len(model.rows),
        n_removed=model.n_removed,
        level=level,
        naive_cov=fit.cov_unscaled,
        design=design,
        model_frame=model,
        **extra,
    )


class FitFlags(Protocol):
    """How an IRLS ended (the core's ``GlmFit``, a streamed fit)."""

    @property
    def converged(self) -> bool: ...
    @property
    def boundary(self) -> bool: ...
    @property
    def separated(self) -> bool: ...


def check_convergence(fit: FitFlags, formula: str, maxit: int) -> None:
    """R warns (or not) and returns these fits; their coefficients are not estimates, so refuse."""
    if fit.separated:
        raise ConvergenceError(
            f"{formula}: the predictors separate the outcome (perfectly or quasi-perfectly: some "
            "group or range of a predictor has only 0s or only 1s, or no events), so the likelihood "
            "has no finite maximum and some coefficients are infinite; drop or merge the separating terms"
        )
    if not fit.converged:
        raise ConvergenceError(
            f"{formula}: the IRLS did not converge in {maxit} iterations; raise maxit (if it then "
            "converges, separation of the outcome by the predictors is checked)"
        )
    if fit.boundary:
        warnings.warn(
            f"{formula}: the IRLS halved a step to keep the fitted means in the family's range "
            "(R: step size truncated); check the fit",
            ConvergenceWarning,
            stacklevel=4,
        )


def row_major(frame: pd.DataFrame) -> np.ndarray:
    """A model matrix as the C-ordered float64 matrix the core reads."""
    return np.ascontiguousarray(frame.to_numpy(dtype=np.float64))


def _factor_exprs(parsed: Any) -> set[str]:
    """The factors of a formula's right-hand side as formulaic writes them (``x``,
    ``C(region)``, ``log(income)``)."""
    return {str(factor.expr) for term in parsed.rhs for factor in term.factors}


def _coded_numbers(parsed: Any, used: Sequence[str]) -> set[str]:
    """The variables a formula uses only as ``C(name)`` on its right-hand side."""
    exprs = _factor_exprs(parsed)
    return {
        name for name in used
        if f"C({name})" in exprs
        and not any(re.search(rf"\b{re.escape(name)}\b", e) for e in exprs - {f"C({name})"})
        and not re.search(rf"\b{re.escape(name)}\b", str(parsed.lhs))
    }


def _has_unused_levels(factor: pd.Series) -> bool:
    """Whether some level of a categorical has no row (R's ``drop.unused.levels`` drops it)."""
    codes = factor.cat.codes.to_numpy()
    return bool((np.bincount(codes[codes >= 0], minlength=len(factor.cat.categories)) == 0).any())


def _build(text: str, data: pd.DataFrame, outcome: str, na_action: str, plain: bool
           ) -> tuple[Any, _core.ModelColumns, np.ndarray | None] | None:
    """The right-hand side's spec, the model columns and the outcome's values (None: not
    one numeric column) of a formula on complete model variables; None when a transform
    made a missing value (with ``na_action="ignore"``).

    Formulas of `plain` variables (names and ``C(name)``), factors and their interactions
    are read from a spec built on one row and assembled by the core from the variables;
    others are formulaic's columns (a transform learns from all the rows).
    """
    if plain and outcome in data.columns:
        spec = model_matrix(text, data.iloc[:1], na_action=na_action, context=CONTEXT).rhs.model_spec
        plan = ColumnPlan.of(spec, data)
        if plan is not None:
            lhs = data[outcome]
            y = None if isinstance(lhs.dtype, pd.CategoricalDtype) else np.ascontiguousarray(lhs.to_numpy(np.float64))
            return spec, plan.build(data), y
    mm = model_matrix(text, data, na_action=na_action, context=CONTEXT)
    values = formulaic_values(mm.rhs)
    if mm.lhs.isna().to_numpy().any() or any(np.isnan(v).any() for v in values):
        return None
    y = np.ascontiguousarray(mm.lhs.iloc[:, 0].to_numpy(dtype=np.float64)) if mm.lhs.shape[1] == 1 else None
    return mm.rhs.model_spec, value_columns(len(mm.rhs), values), y


class ModelFrame:
    """The model matrix of a formula on a design's rows, with R's term names.

    Rows outside the design's domain are left out, then rows with a missing value in a
    model variable (``n_removed`` counts these), as R's ``na.omit``; factor levels with no
    row left are dropped, as R's ``glm`` does (``drop.unused.levels``).
    """

    def __init__(self, design: "SurveyDesign", formula: str, family: str, levels: Mapping[str, Sequence[Any]]) -> None:
        frame = design.frame
        checked, parsed = read_formula(formula, list(frame.columns), levels)
        text, aliases, used = checked.text, checked.aliases, checked.names
        scope = np.flatnonzero(design.in_subset())
        data = pd.DataFrame(index=scope)
        factors: list[str] = []  # the formula names of factor variables
        coded_numbers = _coded_numbers(parsed, used)
        for name in used:
            column = aliases.get(name, name)
            values = as_pandas(frame.column(column)).iloc[scope].set_axis(scope)
            coded = None
            if levels.get(column) is None and (_is_text(values) or name in coded_numbers):
                # Text, and whole numbers the formula only codes as C(name): the frame's
                # cached codes (one pass over the column per data set, not a sort per
                # model); levels absent from the scope are dropped below.
                coded = frame.codes(column, "model term")
                labels: Any = coded.labels
                if name in coded_numbers:
                    # formulaic's C() of numbers: the sorted values, as floats.
                    whole = all(isinstance(v, (int, np.integer)) for v in labels)
                    labels = np.asarray(labels, dtype=np.float64) if whole else None
                    if labels is None or (np.diff(labels) <= 0).any():
                        coded = None
            if coded is not None:
                codes = coded.codes[scope].astype(np.int64)
                codes[codes == _OUTSIDE] = -1
                data[name] = pd.Series(pd.Categorical.from_codes(codes, categories=labels), index=scope)
            else:
                data[name] = as_model_variable(values, column, levels.get(column))
            if isinstance(data[name].dtype, pd.CategoricalDtype):
                factors.append(name)
        # With no model variable missing and every level used, one build is the answer,
        # unless a transform made a missing value (log of a negative number).  Otherwise
        # pass 1 finds the complete rows and pass 2 builds the matrix on them without
        # unused levels (formulaic's row dropping costs more than the build itself).
        outcome = text.split("~", 1)[0].strip()
        plain = all(expr in data.columns or (expr.startswith("C(") and expr[2:-1] in data.columns)
                    or threshold_term(expr) is not None
                    for expr in _factor_exprs(parsed) - {"1", "0"})  # the intercept's factor is "1"
        built = None
        if len(data) and not data.isna().to_numpy().any() and not any(_has_unused_levels(data[name]) for name in factors):
            built = _build(text, data, outcome, na_action="ignore", plain=plain)
        if built is None:
            first = model_matrix(text, data, na_action="drop", context=CONTEXT)
            kept = first.rhs.index.to_numpy()
            if len(kept) == 0:
                raise EstimationError(f"{formula}: no rows are left to fit (subset and missing values)")
            data = data.loc[kept]
            for name in factors:
                data[name] = data[name].cat.remove_unused_categories()
            built = _build(text, data, outcome, na_action="raise", plain=plain)
            assert built is not None  # na_action="raise": no missing value is left
        spec, self.columns, lhs = built
        self.rows = data.index.to_numpy()
        self.n_removed = len(scope) - len(self.rows)
        self.terms = r_names(list(spec.column_names), data, factors, aliases, checked.logical_terms)
        # Kept for predictions and margins: the right-hand side's spec re-encodes new or
        # counterfactual data with the fitted levels and transform states (R's xlevels).
        self.spec = spec
        self.data = data
        self.aliases = aliases
        self.factors = factors
        self.rhs_variables = sorted(parsed.rhs.required_variables)
        self.term_columns = {
            "(Intercept)" if str(term) == "1" else term_name(str(term), checked):
            list(range(sl.start, sl.stop))
            for term, sl in spec.term_slices.items()
        }
        if outcome in factors and family in BINOMIAL:
            # A factor outcome: success = any level but the first, as R's binomial.
            self.y = np.ascontiguousarray((data[outcome].cat.codes != 0).to_numpy(dtype=np.float64))
        elif lhs is not None and outcome not in factors:
            self.y = lhs
        else:
            raise ColumnError(
                f"the outcome of {formula!r} must be one numeric column"
                + (" or a factor" if family in BINOMIAL else "")
            )

    @cached_property
    def x(self) -> np.ndarray:
        """The model matrix itself, row-major n x p (margins and the Cox model read its
        rows; the GLM reads the columns)."""
        return self.columns.dense()

    def name_of(self, column: str) -> str:
        """The formula's name of a data column (its alias, if it is not a Python name)."""
        for alias, col in self.aliases.items():
            if col == column:
                return alias
        return column

    def matrix(self, data: pd.DataFrame) -> np.ndarray:
        """The model matrix of (new or counterfactual) model variables, as fitted."""
        return row_major(self.spec.get_model_matrix(data, na_action="ignore", context=CONTEXT))

    def new_data(self, newdata: Any) -> tuple[pd.DataFrame, np.ndarray]:
        """The right-hand-side variables of `newdata` converted as the fitted ones (factor
        levels of the fit), and the rows with a missing value (their predictions are NaN).

        R's ``model.frame(delete.response(terms), newdata, xlev=object$xlevels)``.
        """
        frame = _as_pandas(newdata)
        out = pd.DataFrame(index=pd.RangeIndex(len(frame)))
        missing = np.zeros(len(frame), bool)
        for name in self.rhs_variables:
            column = self.aliases.get(name, name)
            if column not in frame.columns:
                raise ColumnError(f"newdata has no column {column!r}, a variable of the model")
            values = frame[column].reset_index(drop=True)
            missing |= values.isna().to_numpy()
            if name in self.factors:
                fitted = self.data[name].cat.categories
                if pd.api.types.is_bool_dtype(values.dtype):
                    values = values.map(lambda v: None if pd.isna(v) else ("TRUE" if v else "FALSE"))
                elif isinstance(values.dtype, pd.CategoricalDtype):
                    values = values.astype(object)
                unknown = (~values.isin(fitted) & values.notna()).to_numpy()
                if unknown.any():
                    bad = values[unknown].iloc[0]
                    raise EstimationError(
                        f"newdata: {column!r} = {bad!r} is not a level the model was fitted with "
                        f"({', '.join(map(str, fitted))})"
                    )
                out[name] = pd.Categorical(values, categories=fitted)
            else:
                if not pd.api.types.is_numeric_dtype(values.dtype) and not values.isna().all():
                    raise ColumnError(f"newdata: {column!r} must be numeric, as in the fitted data")
                out[name] = values.astype(np.float64)
        return out, missing


def read_formula(formula: str, columns: list[Any], levels: Mapping[str, Sequence[Any]]
                  ) -> tuple[ParsedFormula, Any]:
    """A model formula read by the package's grammar against the data's columns (nothing
    is evaluated before it passes), and formulaic's parse of the checked text."""
    checked = parse_formula(formula, columns, lhs="required")
    for name in levels:
        if name not in columns:
            raise ColumnError(f"levels given for {name!r}, which is not a column of the data")
    return checked, Formula(checked.text)


def _as_pandas(data: Any) -> pd.DataFrame:
    """A user's pandas / polars (eager or lazy) / pyarrow frame as pandas."""
    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, pl.LazyFrame):
        data = data.collect()
    if isinstance(data, pl.DataFrame) or hasattr(data, "to_pandas"):
        return data.to_pandas()
    raise OptionError(f"newdata must be a pandas or polars DataFrame or a pyarrow Table, not {type(data).__name__}")


_OUTSIDE = np.iinfo(np.uint32).max  # the code of a missing value in Coded.codes


def _is_text(values: pd.Series) -> bool:
    """A column of strings (a factor by R's rules, not a logical or a categorical)."""
    dtype = values.dtype
    return not (pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)
                or isinstance(dtype, pd.CategoricalDtype))


def as_model_variable(values: pd.Series, name: str, levels: Sequence[Any] | None) -> pd.Series:
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


#: formulaic's name of a level of a coded variable: the part ``C(name)[T.level]``.
_CODED_LEVEL = re.compile(r"(?<![^:])(C\([A-Za-z_.][A-Za-z0-9_.]*\))\[(?:T\.)?([^\]]*)\](?![^:])")


def _r_level(text: str) -> str:
    """A level of a coded number as R prints it: whole numbers without ``.0``."""
    try:
        value = float(text)
    except ValueError:
        return text
    return str(int(value)) if value.is_integer() and text.endswith(".0") else text


def r_names(columns: list[str], data: pd.DataFrame, factors: Sequence[str], aliases: Mapping[str, str],
             logical_terms: Mapping[str, str]) -> list[str]:
    """formulaic's column names in R's spelling: ``(Intercept)``, ``stypeH``,
    ``stypeH:meals`` (factor name and level run together), ``I(x > 4)TRUE``,
    ``C(region)3`` (R's ``factor(region)3``)."""
    spelled: dict[str, str] = {}
    for factor, term in logical_terms.items():
        for lv in (False, True):
            for token in (f"{factor}[T.{lv}]", f"{factor}[{lv}]"):
                spelled[token] = f"{term}{str(lv).upper()}"
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
        col = _CODED_LEVEL.sub(lambda m: m.group(1) + _r_level(m.group(2)), col)
        out.append(column_of(col, aliases))
    return out


@dataclass(frozen=True)
class GLMResult(CoefficientModel, Serializable):
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
    #: R's ``naive.cov``: the model-based (unscaled) covariance, (X'WX)^-1 with the weights
    #: rescaled to mean 1; design-based over model-based variance is a design effect.
    naive_cov: np.ndarray | None = None
    # What predictions and margins need: the design, the model frame (data, levels,
    # spec), where the IRLS ended (the prior weights' scale and the coefficients the last
    # step started from, None for the starting means: the influence values are remade
    # from them, linearisation) or the replicate coefficients (replicate designs).
    design: Any = field(default=None, repr=False, compare=False, metadata=UNSTORED)
    model_frame: Any = field(default=None, repr=False, compare=False, metadata=UNSTORED)
    prior_scale: float | None = field(default=None, repr=False, compare=False, metadata=UNSTORED)
    previous: np.ndarray | None = field(default=None, repr=False, compare=False, metadata=UNSTORED)
    replicate_coef: np.ndarray | None = field(default=None, repr=False, compare=False, metadata=UNSTORED)
    #: The call that made the fit (set by :meth:`Design.glm`).
    provenance: Provenance | None = field(default=None, repr=False, compare=False)

    @property
    def influence(self) -> np.ndarray | None:
        """The coefficients' influence values on the fitted rows (n x p; linearisation
        designs, else None), remade from the fit's solution by one pass in the core."""
        model = self.model_frame
        if self.prior_scale is None or model is None or self.naive_cov is None:
            return None
        prior = self.design.weights[model.rows] / self.prior_scale
        return fitted_rows(model, prior, self.family, self.link, self.coef, self.previous, self.naive_cov).influence

    @property
    def t(self) -> np.ndarray:
        """Wald t statistics, coef / se (R's ``t value``)."""
        return self.coef / self.se

    @property
    def p_value(self) -> np.ndarray:
        """Two-sided, from t on ``df_residual`` degrees of freedom (NaN when it is not positive)."""
        if self.df_residual <= 0:
            return np.full(len(self.coef), np.nan)
        return 2 * stats.t.sf(np.abs(self.t), self.df_residual)

    def conf_int(self, level: float | None = None) -> pd.DataFrame:
        """Wald intervals with t quantiles on ``df_residual`` (R's ``confint.svyglm``).

        Parameters
        ----------
        level : confidence level; default the fit's (``level`` of :meth:`Design.glm`).

        Returns
        -------
        pandas.DataFrame
            ``term``, ``ci_low``, ``ci_high``.
        """
        level = self.level if level is None else level
        if self.df_residual <= 0:
            q = np.nan
        else:
            q = critical_value(level, float(self.df_residual))
        return pd.DataFrame({"term": self.terms, "ci_low": self.coef - q * self.se, "ci_high": self.coef + q * self.se})

    def _coefficients(self, level: float | None = None) -> pd.DataFrame:
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

    def summary(self, level: float | None = None) -> pd.DataFrame:
        """One row per coefficient: estimate, se, t, p_value, ci_low, ci_high.

        A DataFrame that prints as R's ``summary.svyglm``: the model, the design (rows,
        PSUs, strata, design degrees of freedom), the coefficients with significance
        codes, the dispersion and the iterations.

        Parameters
        ----------
        level : confidence level; default the fit's (``level`` of :meth:`Design.glm`).

        Returns
        -------
        pandas.DataFrame
        """
        level = self.level if level is None else level
        removed = f"; {self.n_removed} left out for missing values" if self.n_removed else ""
        if self.provenance is not None:
            facts = self.provenance.facts()
        else:
            facts = None if self.design is None else design_facts(self.design)
        header = [
            f"Survey GLM: {self.formula}",
            f"Family: {self.family} ({self.link} link); {self.n} rows fitted{removed}",
            *_display.design_line(facts),
            f"Coefficients (t on {self.df_residual} residual df, {level:.0%} CI):",
        ]
        footer = [
            f"Dispersion parameter for {self.family} family taken to be {self.dispersion:.6g} (design-based)",
            f"Deviance {self.deviance:.6g}; {self.iterations} IRLS iterations",
        ]
        return _display.summary_frame(self._coefficients(level), header, footer)

    def _header(self) -> list[str]:
        removed = f", {self.n_removed} rows with missing values left out" if self.n_removed else ""
        return [
            f"Survey GLM {self.formula}, {self.family} ({self.link} link)",
            f"n = {self.n}{removed}; dispersion {self.dispersion:.6g}; "
            f"t on {self.df_residual} residual df; {self.level:.0%} CI",
        ]

    def __repr__(self) -> str:
        return _display.text(self._header(), self._coefficients())

    def _repr_html_(self) -> str:
        return _display.to_html(self._header(), self._coefficients())

    def plot(self, ax: Any = None, intercept: bool = False) -> Any:
        """Odds ratios (logit link) or coefficients with their intervals, as a forest
        plot; see :func:`sscoverage.plots.coefficients`.

        Parameters
        ----------
        ax : matplotlib Axes to draw on; None: a new figure.
        intercept : show the intercept too.

        Returns
        -------
        matplotlib.axes.Axes
        """
        from ..results.plots import coefficients

        return coefficients(self, ax, intercept)

    # ------------------------------------------------------------------ inference on the fit
    def wald_test(self, terms: str | Sequence[str], null: Sequence[float] | None = None,
                  df: float | None = None) -> "WaldTest":
        """Design-based Wald test that a group of coefficients is zero.

        Mirrors R's ``regTermTest(model, test.terms)`` (its default ``method="Wald"``) and
        Stata's ``test`` after ``svy: glm``: X^2 = b' V^-1 b over the tested coefficients
        b with their design-based covariance V; F = X^2 / k on (k, `df`) degrees of
        freedom.

        Parameters
        ----------
        terms : coefficient names (``["stypeH", "stypeM"]``), term labels of the formula
            (``"stype"`` tests all its coefficients, ``"ell:stype"`` an interaction, in
            any order of its parts), or an R one-sided formula ``"~stype + meals"``.
        null : values of the coefficients under the null hypothesis (default 0).
        df : denominator degrees of freedom; default ``df_residual`` (R's); ``np.inf``
            gives the chi-squared test on k degrees of freedom.

        Returns
        -------
        WaldTest
            ``statistic`` (F, or X^2 with ``df=np.inf``), ``ndf``, ``ddf``, ``p_value``,
            ``chisq`` and the ``coefficients`` tested.
        """
        index = self._term_index(terms)
        beta = self.coef[index] - (0.0 if null is None else np.asarray(null, dtype=np.float64))
        v = self.vcov[np.ix_(index, index)]
        try:
            chisq = float(beta @ np.linalg.solve(v, beta))
        except np.linalg.LinAlgError:
            raise EstimationError(
                f"the covariance of {', '.join(self.terms[j] for j in index)} is singular: "
                "too few PSUs for this many coefficients"
            ) from None
        k = len(index)
        ddf = float(self.df_residual) if df is None else float(df)
        if np.isinf(ddf):
            stat, p = chisq, float(stats.chi2.sf(chisq, k))
        else:
            stat = chisq / k
            p = float(stats.f.sf(stat, k, ddf)) if ddf > 0 else float("nan")
        return WaldTest(
            statistic=stat,
            ndf=k,
            ddf=None if np.isinf(ddf) else ddf,
            p_value=p,
            chisq=chisq,
            coefficients=[self.terms[j] for j in index],
            formula=self.formula,
        )

    def _term_index(self, terms: str | Sequence[str]) -> list[int]:
        """Coefficient positions of coefficient names or R term labels."""
        if isinstance(terms, str):
            text = terms.strip()
            terms = [t.strip() for t in text.lstrip("~").split("+")] if text.startswith("~") else [text]
        labels = self.model_frame.term_columns if self.model_frame is not None else {}
        canonical = {":".join(sorted(label.split(":"))): cols for label, cols in labels.items()}
        index: list[int] = []
        for name in terms:
            if name in self.terms:
                cols = [self.terms.index(name)]
            elif ":".join(sorted(str(name).split(":"))) in canonical:
                cols = canonical[":".join(sorted(str(name).split(":")))]
            else:
                raise EstimationError(
                    f"{name!r} is neither a coefficient ({', '.join(self.terms)}) nor a term "
                    f"({', '.join(labels)}) of {self.formula}"
                )
            index.extend(c for c in cols if c not in index)
        if not index:
            raise EstimationError(f"no coefficient to test in {terms!r}")
        return index

    def odds_ratios(self, level: float | None = None) -> pd.DataFrame:
        """Odds ratios exp(coef) with intervals exp(conf_int) (t on ``df_residual``).

        R's ``exp(cbind(coef(fit), confint(fit)))``; Stata's ``svy: logit, or``.
        Needs the logit link.

        Parameters
        ----------
        level : confidence level; default the fit's (``level`` of :meth:`Design.glm`).

        Returns
        -------
        pandas.DataFrame
            ``term``, ``odds_ratio``, ``ci_low``, ``ci_high``, ``p_value``.
        """
        if self.link != "logit":
            raise EstimationError(
                f"odds ratios need a logit link; {self.formula} has the {self.link} link "
                "(exponentiate the coefficients yourself if they mean something on that scale)"
            )
        ci = self.conf_int(level)
        return pd.DataFrame({
            "term": self.terms,
            "odds_ratio": np.exp(self.coef),
            "ci_low": np.exp(ci["ci_low"].to_numpy()),
            "ci_high": np.exp(ci["ci_high"].to_numpy()),
            "p_value": self.p_value,
        })

    def predict(self, newdata: Any = None, type: str = "link", se: bool = True, vcov: bool = False,
                level: float | None = None) -> Estimates:
        """Predictions with design-based standard errors (delta method on ``vcov``).

        Mirrors R's ``predict.svyglm(object, newdata, type, se.fit)`` and Stata's
        ``predict, xb stdp`` / ``margins, predict() at()`` after ``svy: glm``.

        Parameters
        ----------
        newdata : pandas / polars frame with the formula's right-hand-side columns;
            None predicts the fitted rows.  Factor values must be levels the model was
            fitted with; rows with a missing value get NaN.
        type : ``"link"`` (the linear predictor) or ``"response"`` (the mean).
        se : compute standard errors and intervals (t on ``df_residual``).
        vcov : also keep the full covariance of the predictions (``.vcov[0]``), n x n.
        level : confidence level; default the fit's (``level`` of :meth:`Design.glm`).

        Returns
        -------
        Estimates
            One row per row of `newdata` (``row`` is its index): ``estimate``, ``se``,
            ``ci_low``, ``ci_high``.
        """
        from .margins import link_functions

        if type not in ("link", "response"):
            raise OptionError(f"type={type!r}; use 'link' or 'response'")
        model = self.model_frame
        if newdata is None and getattr(model, "streamed", False):
            raise DesignError("a streamed design does not hold its rows: predict on newdata")
        if newdata is None:
            data, missing, rows = model.data, np.zeros(len(model.data), bool), list(model.data.index)
        else:
            data, missing = model.new_data(newdata)
            rows = list(_as_pandas(newdata).index)
        x = model.matrix(data)
        x[missing] = np.nan
        eta = x @ self.coef
        inverse, mu_eta, _ = link_functions(self.link)
        fit, jac = (eta, x) if type == "link" else (inverse(eta), mu_eta(eta)[:, None] * x)
        var = np.einsum("ij,jk,ik->i", jac, self.vcov, jac) if se else np.full(len(eta), np.nan)
        sd = np.sqrt(np.clip(var, 0.0, None))
        level = self.level if level is None else level
        q = critical_value(level, float(self.df_residual)) if self.df_residual > 0 else np.nan
        table = pd.DataFrame({
            "row": rows,
            "variable": type,
            "level": None,
            "label": [str(r) for r in rows],
            "estimate": fit,
            "se": sd,
            "ci_low": fit - q * sd,
            "ci_high": fit + q * sd,
        })
        return Estimates(
            statistic=f"prediction ({type} scale) from {self.formula}",
            table=table,
            vcov=[jac @ self.vcov @ jac.T] if (vcov and se) else [],
            by=["row"],
            level=level,
            df=float(self.df_residual),
        )

    def predictive_margins(self, var: str, levels: Sequence[Any] | None = None, method: str = "joint",
                           level: float | None = None) -> Estimates:
        """Predictive margins: the mean predicted response with `var` set to each level for
        every fitted row, the other variables as observed.

        Stata's ``margins var``, R's ``svypredmeans``; design-based SEs by the delta
        method through the variance engine (replicate designs: recomputed with each
        replicate's coefficients and weights).

        Parameters
        ----------
        var, levels, method : as for :func:`sscoverage.margins.predictive_margins`.
        level : confidence level; default the fit's (``level`` of :meth:`Design.glm`).

        Returns
        -------
        Estimates
            One row per level of `var`.
        """
        from .margins import predictive_margins

        return predictive_margins(self, var, levels, method, level)

    def marginal_effects(self, var: str, level: float | None = None) -> Estimates:
        """Average marginal effect of `var` on the response scale: the mean derivative
        (numeric `var`) or the change from the reference level (factor).

        Stata's ``margins, dydx(var)``; see :func:`sscoverage.margins.marginal_effects`.

        Parameters
        ----------
        var : a variable of the model's right-hand side.
        level : confidence level; default the fit's (``level`` of :meth:`Design.glm`).

        Returns
        -------
        Estimates
        """
        from .margins import marginal_effects

        return marginal_effects(self, var, level)


@dataclass(frozen=True)
class WaldTest(Serializable):
    """A design-based Wald test of a group of coefficients (R's ``regTermTest``)."""

    statistic: float
    ndf: int
    ddf: float | None
    p_value: float
    chisq: float
    coefficients: list[str]
    formula: str

    def to_pandas(self) -> pd.DataFrame:
        """One row: ``statistic``, ``ndf``, ``ddf``, ``p_value``, ``chisq``."""
        return pd.DataFrame([{"statistic": self.statistic, "ndf": self.ndf, "ddf": self.ddf,
                              "p_value": self.p_value, "chisq": self.chisq}])

    def _lines(self) -> list[str]:
        name = "F" if self.ddf is not None else "Chisq"
        dfs = f"{self.ndf} and {self.ddf:g} df" if self.ddf is not None else f"{self.ndf} df"
        return [f"Wald test for {' '.join(self.coefficients)}", f" in {self.formula}",
                f"{name} = {self.statistic:.6g} on {dfs}: p = {self.p_value:.4g}"]

    def __repr__(self) -> str:
        return "\n".join(self._lines())

    def _repr_html_(self) -> str:
        return _display.to_html(self._lines())
