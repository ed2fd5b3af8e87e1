"""Design-based GLMs over a streamed design (a polars LazyFrame or a Dask DataFrame).

R's IRLS, the core's one loop that :func:`sscoverage.models.glm` runs in memory, with
every pass over the rows made batch by batch: a first pass finds the rows of the model
(in the subset, no missing model variable), their weights and the factor levels
present; then each IRLS iteration is one pass, in which every batch gives the deviance
at the coefficients the core asks for and the triangular factor of its rows' weighted
least squares — the factors, stacked in batch order by the core, give the step; a last
pass sums the
estimating functions to PSU totals, which the design's variance engine turns into the
coefficients' covariance.  Binomial and Poisson fits take three more passes to probe for
separation (stopping as soon as a step settles or drifts), as in memory.  Memory: one batch and its model matrix.

Stateful formula transforms (``center``, ``scale``, ``poly``, splines) learn their state
from the data, which a streamed fit never holds at once: they are refused.
"""

from __future__ import annotations

import gc
import itertools
import re
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import polars as pl
from formulaic import model_matrix

from .. import _core
from .._frames import codes_of
from ..exceptions import ColumnError, DesignError, EstimationError, MissingValueError, OptionError
from ..formula import CONTEXT, term_name
from ..models.glm import (BINOMIAL, FAMILIES, ColumnPlan, GLMResult, ModelFrame, check_convergence, fit_errors,
                          formulaic_values, matrix_columns, r_names, read_formula, value_columns)
from .batches import UNIT, BatchSource, add_parts, expression_columns, with_units

#: A variable a formula codes as a factor: ``C(name`` or ``C(`name```.
_CODED = re.compile(r"\bC\(\s*`?([A-Za-z_.][A-Za-z0-9_.]*)")


def streamed_glm(
    design: "BatchSource",
    formula: str,
    family: str = "gaussian",
    link: str | None = None,
    levels: Mapping[str, Sequence[Any]] | None = None,
    level: float = 0.95,
    epsilon: float = 1e-8,
    maxit: int = 25,
    progress: bool = True,
) -> GLMResult:
    """:meth:`Design.glm` on a streamed design; see the module notes."""
    if family not in FAMILIES:
        raise OptionError(f"family={family!r}; use one of {', '.join(FAMILIES)}")
    if design.raked is not None:
        raise DesignError("a GLM on a raked streamed design is not supported yet: collect() the data, "
                          "or fit the model before raking")
    model = StreamedModel(design, formula, family, dict(levels or {}), progress)
    fit = _fit(design, model, family, link, epsilon, maxit, progress)
    check_convergence(fit, formula, maxit)
    p = len(model.terms)
    scores, unit_rows, pearson = design.reduce_batches(
        model.data_columns, _batch_scores, add_parts, model, fit.link, fit.coefficients, fit.previous, design.psu_keys,
        design.psu_table, design.n_psu,
        label="GLM scores", progress=progress,
    )
    totals = np.ascontiguousarray(scores @ fit.cov_unscaled)
    vcov = design.core.totals_vcov(totals)
    # Pearson residuals carry sqrt(mean weight of the fitted rows / of the domain's rows),
    # as in memory: the dispersion is svyvar of the residuals times that ratio.
    dispersion = model.mean_fit / model.mean_w * _core.svyvar_of_sums(*map(float, pearson))
    return GLMResult(
        formula=formula, family=family, link=fit.link, terms=model.terms,
        coef=fit.coefficients, vcov=vcov, dispersion=float(dispersion),
        df_residual=fit_degf(design, unit_rows) + 1 - p, deviance=fit.deviance,
        iterations=fit.iterations, n=model.n, n_removed=model.n_removed, level=level,
        naive_cov=fit.cov_unscaled, design=design, model_frame=model,
    )


class StreamedModel(ModelFrame):
    """The model of a formula over a streamed design: the formula's variables, their
    factor levels over the rows of the fit, the formula's spec, R's term names; and each
    batch's model matrix, outcome, weights and PSU codes (:meth:`batch`).

    A first pass over the batches finds the rows in the domain, those with every model
    variable (``n``; ``n_removed`` left out for missing values, as R's ``na.omit``),
    their weight sums, and the factor levels present in them (R's ``drop.unused.levels``).
    """

    def __init__(self, design: "BatchSource", formula: str, family: str,
                 levels: dict[str, Sequence[Any]], progress: bool) -> None:
        columns = design.columns
        checked, parsed = read_formula(formula, columns, levels)
        text, aliases, used = checked.text, checked.aliases, checked.names
        self.schema = schema = design.schema()
        self.variables = {name: aliases.get(name, name) for name in used}
        # Factors: text, logical and categorical columns, and any column given levels.
        factor_columns = {n: c for n, c in self.variables.items()
                          if c in levels or not schema[c].is_numeric()}
        # Numbers coded as a factor in the formula (``C(d)``): their levels are the values
        # present, which formulaic learns from the frame it first sees.
        coded = {n: self.variables[n] for n in set(_CODED.findall(text)) & set(self.variables)
                 if n not in factor_columns}
        self.weight_name = design.weight_name
        self.condition = design.condition
        # The data columns each batch reads (not the model's columns, which a batch makes).
        self.data_columns = list(dict.fromkeys(
            design.psu_keys + list(self.variables.values()) + [c for c in [self.weight_name] if c]
            + expression_columns(self.condition)))
        self.weight = design.weight_expr
        self.family, self.formula = family, formula
        counts, present = _census(design, self, {**factor_columns, **coded}, progress)
        n_scope, w_scope, n_fit, w_fit = counts
        if n_fit == 0:
            raise EstimationError(f"{formula}: no rows are left to fit (subset and missing values)")
        self.n, self.n_removed = int(n_fit), int(n_scope - n_fit)
        self.mean_w, self.mean_fit = w_scope / n_scope, w_fit / n_fit
        self.levels = {
            name: [v for v in levels[c] if v in present[name]] if c in levels else _r_order(present[name], c)
            for name, c in factor_columns.items()
        }
        # The formula's spec, from a frame holding every level (R's xlevels) and every
        # value of a coded number.
        values = {name: list(self.levels[name]) if name in self.levels else sorted(map(float, present[name]))
                  for name in {**factor_columns, **coded}}
        width = max([len(v) for v in values.values()] + [3])  # numbers vary: scale(x) evaluates
        prototype = pd.DataFrame({
            name: self.column(name, pl.Series(name, [values[name][i % len(values[name])] for i in range(width)]))
            if name in values else np.arange(1.0, width + 1.0)
            for name in used
        })
        mm = model_matrix(text, prototype, na_action="ignore", context=CONTEXT)
        if any(mm.rhs.model_spec.transform_state.values()) or any(mm.lhs.model_spec.transform_state.values()):
            raise DesignError(
                f"{formula}: stateful transforms (center, scale, poly, splines) learn from all the rows, "
                "which a streamed design does not hold at once: compute the column first, or collect() the data"
            )
        self.specs = mm.model_spec
        self.factors = list(self.levels)
        self.aliases = aliases
        self.data = prototype.iloc[:0]
        self.spec = mm.rhs.model_spec
        self.terms = r_names(list(mm.rhs.columns), prototype, self.factors, aliases, checked.logical_terms)
        self.rhs_variables = sorted(parsed.rhs.required_variables)
        self.term_columns = {
            "(Intercept)" if str(term) == "1" else term_name(str(term), checked): list(range(sl.start, sl.stop))
            for term, sl in mm.rhs.model_spec.term_slices.items()
        }
        outcome = text.split("~", 1)[0].strip()
        self.factor_outcome = outcome in self.levels and family in BINOMIAL
        self.outcome = outcome
        # Plain variables, factors and their interactions: each batch's columns
        # assembled by the core from its variables; others evaluated by formulaic.
        self.plan = ColumnPlan.of(self.spec, prototype) if outcome in prototype.columns else None
        if not self.factor_outcome and (outcome in self.levels or mm.lhs.shape[1] != 1):
            raise ColumnError(
                f"the outcome of {formula!r} must be one numeric column"
                + (" or a factor" if family in BINOMIAL else "")
            )

    #: Its rows are not held: predictions need new data.
    streamed = True

    def column(self, name: str, values: pl.Series) -> pd.Series:
        """A model variable of a batch as R's model frame sees it (factors with the fit's levels)."""
        if name not in self.levels:
            return values.cast(pl.Float64).to_pandas()
        values = _logical_as_text(values)
        levels = self.levels[name]
        if not values.dtype.is_numeric():
            values = values.cast(pl.String)
            if all(isinstance(v, str) for v in levels):
                # Text coded by polars, not as Python objects; values not among the
                # levels (and nulls) are missing, as pandas' Categorical makes them.
                codes = values.replace_strict(levels, list(range(len(levels))), default=-1, return_dtype=pl.Int32)
                return pd.Series(pd.Categorical.from_codes(codes.fill_null(-1).to_numpy(), categories=levels))
        return pd.Series(pd.Categorical(values.to_list(), categories=levels))

    def complete(self) -> pl.Expr:
        """Rows of the fit: in the domain, with every model variable."""
        expr = ~pl.any_horizontal([missing_values(c, self.schema[c]) for c in self.variables.values()])
        return expr if self.condition is None else expr & self.condition

    def batch(self, batch: pl.DataFrame) -> tuple[_core.ModelColumns, np.ndarray, np.ndarray, pl.DataFrame]:
        """A batch's model columns, outcome and prior weights (rescaled to mean 1 over the
        domain, as in memory) on its rows of the fit, and those rows."""
        rows = batch.filter(self.complete())
        data = pd.DataFrame({name: self.column(name, rows.get_column(c)) for name, c in self.variables.items()})
        if not len(rows):
            x, y = matrix_columns(np.zeros((0, len(self.terms)))), np.zeros(0)
        elif self.plan is not None:
            x = self.plan.build(data)
            y = None if self.factor_outcome else data[self.outcome].to_numpy(dtype=np.float64)
        else:
            mm = self.specs.get_model_matrix(data, na_action="raise", context=CONTEXT)
            x = value_columns(len(data), formulaic_values(mm.rhs))
            y = mm.lhs.iloc[:, 0].to_numpy(dtype=np.float64)
        if self.factor_outcome and len(rows):
            y = (data[self.outcome].cat.codes != 0).to_numpy(dtype=np.float64)
        w = rows.select(self.weight.alias("w")).get_column("w").to_numpy().astype(np.float64) / self.mean_w
        return x, np.ascontiguousarray(y), np.ascontiguousarray(w), rows


def _census(design: "BatchSource", model: StreamedModel, factors: Mapping[str, str],
            progress: bool) -> tuple[np.ndarray, dict[str, set[Any]]]:
    """One pass: rows and weight sums of the domain and of the fit, and the factor values
    present in the fit."""
    counts = np.zeros(4)
    present: dict[str, set[Any]] = {name: set() for name in factors}
    for part_counts, part_present in design.map_batches(model.data_columns, _census_batch, model, dict(factors),
                                                         label="GLM rows", progress=progress):
        counts += part_counts
        for name, values in part_present.items():
            present[name] |= values
    return counts, present


def _census_batch(model: StreamedModel, factors: dict[str, str], batch: pl.DataFrame
                  ) -> tuple[np.ndarray, dict[str, set[Any]]]:
    scope = batch if model.condition is None else batch.filter(model.condition)
    w_scope = scope.select(model.weight.alias("w")).get_column("w")
    rows = batch.filter(model.complete())
    w_fit = rows.select(model.weight.alias("w")).get_column("w")
    if w_scope.cast(pl.Float64).fill_nan(None).null_count():
        raise MissingValueError(f"the weights {model.weight_name!r} have missing values in the domain")
    present = {}
    for name, column in factors.items():
        present[name] = set(_logical_as_text(rows.get_column(column)).unique().to_list())
    counts = np.array([len(scope), float(w_scope.sum()), len(rows), float(w_fit.sum())])
    return counts, present


def _logical_as_text(values: pl.Series) -> pl.Series:
    """A logical column as R's factor of it sees it ("FALSE", "TRUE"); others unchanged."""
    if values.dtype == pl.Boolean:
        return values.replace_strict({True: "TRUE", False: "FALSE"}, return_dtype=pl.String)
    return values


def _r_order(values: set[Any], column: str) -> list[Any]:
    """Factor levels in R's order (as the in-memory model frame sorts them)."""
    if all(isinstance(v, str) for v in values):
        return list(codes_of(pd.Series(sorted(values), dtype=object), column, "model term").labels)
    return sorted(values)


def missing_values(column: str, dtype: pl.DataType) -> pl.Expr:
    """A model variable's missing values: nulls, and NaN in a float column."""
    c = pl.col(column)
    return c.is_null() | c.is_nan() if dtype.is_float() else c.is_null()


def _fit(design: "BatchSource", model: StreamedModel, family: str, link: str | None, epsilon: float,
         maxit: int, progress: bool) -> _core.IrlsRun:
    """R's IRLS, the core's one loop, with one pass over the batches per iteration: each
    pass maps the batches to their parts at the coefficients the core asks for (on the
    Dask workers, or here batch by batch)."""
    passes = itertools.count(1)

    def pass_fn(beta: np.ndarray | None, step: bool, reference: np.ndarray | None) -> list[_core.GlmBatchPass]:
        parts = list(design.map_batches(
            model.data_columns, _batch_pass, model, family, link, beta, step, reference,
            label=f"GLM pass {next(passes)}", progress=progress,
        ))
        # Model matrices leave reference cycles (formulaic, pandas) that the generational
        # collector frees late; pass after pass they would hold memory of many batches.
        gc.collect()
        return parts

    with fit_errors(model.formula, model.terms):
        return _core.glm_streamed_fit(pass_fn, len(model.terms), family, link, epsilon=epsilon, maxit=maxit)


def _batch_pass(model: StreamedModel, family: str, link: str | None, beta: np.ndarray | None, step: bool,
                reference: np.ndarray | None, batch: pl.DataFrame) -> _core.GlmBatchPass:
    x, y, w, _ = model.batch(batch)
    return _core.glm_batch_pass(x, y, w, family, link, beta=beta, step=step, reference=reference)


def _batch_scores(model: StreamedModel, link: str, beta: np.ndarray, previous: np.ndarray | None, keys: list[str],
                  psus: pl.DataFrame, n_units: int, batch: pl.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A batch's scores at the solution `beta` (working weights from `previous`)."""
    x, y, w, rows = model.batch(batch)
    units = np.ascontiguousarray(with_units(keys, psus, rows).get_column(UNIT).to_numpy(), dtype=np.uint32)
    return _core.glm_batch_scores(x, y, w, model.family, link, beta, previous, units, n_units)


def fit_degf(design: "BatchSource", unit_rows: np.ndarray) -> int:
    """Design df of the fitted rows: their PSUs minus their strata (R's ``degf`` of the
    design the model was fitted on)."""
    counted = design.psu_table.filter(pl.Series(unit_rows > 0))
    strata = design.spec["strata"]
    n_strata = counted.select(strata).n_unique() if strata else int(counted.height > 0)
    return int(counted.height - n_strata)
