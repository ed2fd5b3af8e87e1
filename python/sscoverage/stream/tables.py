"""Proportions with their intervals, tests of association in two-way tables, and
contrasts of domain means or totals over a streamed design.

Each is finished by the core from the per-(domain, PSU) sums that the streamed mean
gathers (:meth:`StreamedDesign.sums_pass`: batch by batch, added in batch order), through
the same from-sums entry point the in-memory path calls after its own pass
(``proportion_from_sums``, ``estimate_from_sums``, ``joint_estimate_from_sums``): the
numbers of the in-memory design, with the rows never held.

Passes over the batches:

- :func:`streamed_contrast`: one; one more (of the subset's rows only, no outcome) with
  ``by`` on a subset, to mark the PSUs the subset holds (R's lonely-PSU rules see them).
- :func:`streamed_chisq`: two, the levels of both columns in the subset, then the cells.
- :func:`streamed_ciprop`: a quick check of the outcome's values, then one pass for
  ``mean``, ``xlogit``, ``asin``, ``beta`` and ``wilson``; one more with missing values
  left out (``na_rm``; the domains' rows with them are R's degrees of freedom and prior
  weights); ``logit`` and ``likelihood`` one more again: the first IRLS step of R's
  ``svyglm(y ~ 1, quasibinomial)`` starts from a mean that differs by row, so its sums
  are taken per row at the prior weights the first pass gives.
"""

from __future__ import annotations

from typing import Any, Protocol, Sequence

import numpy as np
import polars as pl

from .. import _core
from .._frames import Coded
from ..estimators.association import ChisqTest, cell_kind, check_statistic, table_test
from ..estimators.contrast import check_statistic as check_contrast, contrast_estimates
from ..estimators.domains import present_domains
from ..estimators.proportions import check_request, keeps_all_rows, proportion_estimates
from ..exceptions import ColumnError, EmptyDomainError, EstimationError, MissingValueError
from ..results.estimates import Estimates
from .batches import UNIT, BatchSource, expression_columns
from .sums import Plan, Sums, batch_rows


class SumsSource(BatchSource, Protocol):
    """What the streamed tables read of a streamed design, besides its batches."""

    #: The subset's condition (None: every row).
    condition: pl.Expr | None
    #: The weight (or probs) column, None for equal weights.
    weight_name: str | None

    @property
    def degf(self) -> int: ...

    def require_column(self, name: str) -> None: ...

    def schema(self) -> dict[str, pl.DataType]: ...

    def sums_pass(self, kind: str, outcomes: list[str], by: Any, na_rm: bool, deff: bool = False,
                  derived: Sequence[pl.Expr] = (), factors: Sequence[str] | None = None) -> tuple[Plan, Sums]:
        """Per-(domain, PSU) sums of one pass (see :meth:`StreamedDesign.sums_pass`)."""
        ...

CELL = "__ssc_cell"


def _domains(plan: Plan, domains: list[tuple[Any, ...]], counts: np.ndarray,
             notes: list[str]) -> tuple[list[Coded], pl.DataFrame | None]:
    """The by columns' values of `domains`, as :func:`present_domains` reads them; a note
    counts the rows with a missing by value (`counts` of the pass's :class:`Sums`)."""
    n_missing_by = int(counts[1])
    if n_missing_by:
        notes.append(f"{n_missing_by} rows with a missing by value are in no domain")
    if not plan.by_names:
        return [], None
    labels = pl.DataFrame({n: [d[i] for d in domains] for i, n in enumerate(plan.by_names)})
    return [Coded(np.zeros(0, np.uint32), labels.get_column(n).to_list(), None) for n in plan.by_names], labels


def _raked(design: SumsSource, sums: Sums) -> Any:
    return (sums.cells.ravel(), design.raked.core) if design.raked is not None else None


def _rows_in_subset(design: SumsSource) -> np.ndarray:
    """Which PSUs hold a row of the design's subset: one pass of its rows, no outcome."""
    _, scope = design.sums_pass("total", [], None, True)
    return np.ascontiguousarray(scope.table[0, :, 0] > 0)


def streamed_contrast(
    design: SumsSource,
    y: str | Sequence[str],
    contrasts: Any,
    statistic: str = "mean",
    by: Any = None,
    na_rm: bool = False,
    level: float = 0.95,
    df: float | str | None = None,
) -> Estimates:
    """:meth:`Design.contrast` over the streamed batches: the domains' means or totals and
    their joint covariance from the one pass's sums (``joint_estimate_from_sums``, the
    core's finish of the in-memory ``joint_estimate``), on a raked design too."""
    check_contrast(statistic)
    names = [y] if isinstance(y, str) else list(y)
    plan, sums = design.sums_pass(statistic, names, by, na_rm)
    if not sums.domains:
        raise EmptyDomainError(f"the by columns {plan.by_names} hold no values")
    n_removed = int(sums.counts[0])
    # As in memory: with by, R's svyby(covmat=TRUE) takes the PSUs of the design given;
    # without, svymean(na.rm) those of the rows left once missing values are dropped.
    if plan.by_names:
        present = _rows_in_subset(design) if design.condition is not None else None
    elif design.condition is not None or n_removed:
        present = np.ascontiguousarray(sums.table[0, :, 0] > 0)
    else:
        present = None
    res = _core.joint_estimate_from_sums(design.core, statistic, sums.table.ravel(), len(sums.domains),
                                         sums.width(plan), present, _raked(design, sums))
    notes: list[str] = []
    coded, by_levels = _domains(plan, sums.domains, sums.counts, notes)
    present_codes, values = present_domains(res.n_rows, res.weight_sum, plan.by_names, coded, notes, by_levels)
    labels = [label for name in names
              for label in ([f"{name}{lv}" for lv in sums.levels[name]] if name in plan.factors else [name])]
    return contrast_estimates(res, present_codes, values, plan.by_names, labels, contrasts, statistic, level,
                              float(design.degf) if df == "design" else df, n_removed, notes)


def _level_order(design: SumsSource, name: str, values: set[Any]) -> list[Any]:
    """The levels in the in-memory design's order: an Enum's declared order, else sorted."""
    dtype = design.schema()[name]
    if isinstance(dtype, pl.Enum):
        return [v for v in dtype.categories.to_list() if v in values]
    return sorted(values)


def _as_text(name: str, dtype: pl.DataType) -> pl.Expr:
    """A categorical column as its text, as the in-memory design codes it."""
    return pl.col(name).cast(pl.String) if dtype in (pl.Categorical, pl.Enum) else pl.col(name)


def _batch_levels(names: list[str], condition: pl.Expr | None, batch: pl.DataFrame) -> tuple[list[set[Any]], list[int]]:
    """A batch's values of each column within the subset, and its missing values there."""
    if condition is not None:
        batch = batch.filter(condition)
    columns = [batch.get_column(n) for n in names]
    columns = [c.cast(pl.String) if c.dtype in (pl.Categorical, pl.Enum) else c for c in columns]
    return [set(c.drop_nulls().unique().to_list()) for c in columns], [c.null_count() for c in columns]


def _add_levels(a: tuple[list[set[Any]], list[int]], b: tuple[list[set[Any]], list[int]]) -> tuple[list[set[Any]], list[int]]:
    return [x | y for x, y in zip(a[0], b[0])], [x + y for x, y in zip(a[1], b[1])]


def streamed_chisq(design: SumsSource, row: str, col: str, statistic: str = "F",
                   na_rm: bool = True) -> ChisqTest:
    """:meth:`Design.chisq` over the streamed batches: one pass finds the levels of
    `row` and `col` in the subset; a second sums each cell's indicator per PSU (the core's
    pass with the cell as a factor), and the core finishes the cells' means or totals and
    covariance from those sums (``estimate_from_sums``, as the in-memory ``estimate``), on
    a raked design too.  Rao-Scott, Wald and saddlepoint statistics as in memory."""
    check_statistic(statistic)
    for name in (row, col):
        design.require_column(name)
    columns = list(dict.fromkeys([row, col] + expression_columns(design.condition)))
    found, missing = design.reduce_batches(columns, _batch_levels, _add_levels, [row, col], design.condition,
                                           label="levels")
    levels = []
    for name, values, n_missing in zip((row, col), found, missing):
        if n_missing and not na_rm:
            raise MissingValueError(
                f"column {name!r} has {n_missing} missing values in the rows used; "
                "pass na_rm=True to leave those rows out of the table"
            )
        if len(values) < 2:
            raise EstimationError(
                f"column {name!r} has {len(values)} level(s) in the rows used; a table test needs two or more"
            )
        levels.append(_level_order(design, name, values))
    (row_levels, col_levels), schema = levels, design.schema()
    nr, k = len(row_levels), len(row_levels) * len(col_levels)

    def code(name: str, values: list[Any]) -> pl.Expr:
        return _as_text(name, schema[name]).replace_strict(values, list(range(len(values))), default=None,
                                                            return_dtype=pl.UInt32)

    # The cell of each row (R's order: row level fastest); null, so in no domain, where
    # either level is missing.
    cell = (code(row, row_levels) + pl.lit(nr, pl.UInt32) * code(col, col_levels)).alias(CELL)
    plan, sums = design.sums_pass(cell_kind(statistic), [CELL], None, True, derived=[cell], factors=[CELL])
    # Every cell has a column, those no row holds at zero (as in memory).
    at = np.array([0, 1, *(2 + np.asarray(sums.levels[CELL], dtype=np.intp))])
    table = np.zeros((1, sums.table.shape[1], 2 + k))
    table[:, :, at] = sums.table
    raked = None
    if design.raked is not None:
        cells = np.zeros((1, sums.cells.shape[1], 2 + k))
        cells[:, :, at] = sums.cells
        raked = (cells.ravel(), design.raked.core)
    res = design.core.estimate_from_sums(cell_kind(statistic), table.ravel(), np.zeros(0), 1, k, raked=raked)
    n_missing = int(sums.counts[0])
    # R's N counts the subset's rows with a missing value too.
    n_rows = int(sums.table[0, :, 0].sum()) + n_missing
    return table_test(statistic, res, n_rows, design.degf, (row, row_levels), (col, col_levels), n_missing)


def _proportion_values(design: SumsSource, y: str) -> pl.Expr:
    """The column as 0/1 floats (null where missing), once one pass has checked it is
    numeric in [0, 1], boolean, or FALSE/TRUE text (R's logical), as in memory."""
    dtype = design.schema()[y]
    if dtype == pl.Boolean:
        return pl.col(y).cast(pl.Float64)
    if dtype in (pl.String, pl.Categorical, pl.Enum):
        found, _ = design.reduce_batches([y], _batch_levels, _add_levels, [y], None, label="levels")
        if not found[0] <= {"TRUE", "FALSE"}:
            raise ColumnError(
                f"column {y!r} has levels {sorted(found[0])}; ciprop needs a 0/1 or logical column "
                f"(e.g. ({y} == 'Yes'))"
            )
        return _as_text(y, dtype).replace_strict(["FALSE", "TRUE"], [0.0, 1.0], default=None, return_dtype=pl.Float64)
    if not dtype.is_numeric():
        raise ColumnError(f"column {y!r} must be numeric for a proportion, not {dtype}")
    lo, hi = design.reduce_batches([y], _batch_range, _add_range, y, label="range")
    if lo < 0 or hi > 1:
        raise ColumnError(f"column {y!r} has values outside [0, 1]; ciprop needs a 0/1 or logical column")
    return pl.col(y).cast(pl.Float64)


def _batch_range(name: str, batch: pl.DataFrame) -> tuple[float, float]:
    """A batch's smallest and largest value of the column (missing ones aside; 0 for none)."""
    values = batch.get_column(name).cast(pl.Float64).fill_nan(None).drop_nulls()
    return (float(values.min()), float(values.max())) if len(values) else (0.0, 0.0)


def _add_range(a: tuple[float, float], b: tuple[float, float]) -> tuple[float, float]:
    return min(a[0], b[0]), max(a[1], b[1])


def _placed(values: np.ndarray, own: list[tuple[Any, ...]], domains: list[tuple[Any, ...]]) -> np.ndarray:
    """`values` of the domains `own` (one per first index) over `domains`, which hold
    them: zero for the others."""
    row_of = {d: i for i, d in enumerate(domains)}
    out = np.zeros((len(domains), *values.shape[1:]))
    out[[row_of[d] for d in own]] = values
    return out


def _batch_first_steps(plan: Plan, domains: list[tuple[Any, ...]], mean_weight: np.ndarray,
                       batch: pl.DataFrame) -> np.ndarray:
    """A batch's sums of the first IRLS step of y ~ 1 per domain (domains x 5) at prior
    weights w (raked, on a raked design) over each domain's `mean_weight` (the core's
    per-row terms)."""
    rows = batch_rows(plan, batch)
    out = np.zeros((len(domains), 5))
    if not rows.domains:
        return out
    row_of = {d: i for i, d in enumerate(domains)}
    at = np.array([row_of[d] for d in rows.domains], dtype=np.intp)
    units = np.ascontiguousarray(rows.batch.get_column(UNIT).to_numpy(), dtype=np.uint32)
    w = rows.w if plan.raked is None else plan.raked.weights(rows.batch, rows.w)[0]
    first = _core.proportion_first_steps(w, units, plan.n_units, rows.numeric[0][1], rows.domain,
                                         np.ascontiguousarray(mean_weight[at]))
    out[at] = first.reshape(len(at), 5)
    return out


def streamed_ciprop(
    design: SumsSource,
    y: str,
    method: str = "logit",
    level: float = 0.95,
    by: Any = None,
    df: float | None = None,
    na_rm: bool = False,
) -> Estimates:
    """:meth:`Design.ciprop` over the streamed batches, every method with the in-memory
    numbers: the domains' proportions, variances and degrees of freedom from the one
    pass's sums, and for ``logit`` and ``likelihood`` R's intercept-only fit from one more
    pass (see the module notes); the core finishes both from the sums
    (``proportion_from_sums``, as the in-memory ``proportion``).  On a raked design the
    variance takes R's raking residuals from the per-(domain, cell) sums."""
    check_request(method, level)
    values = _proportion_values(design, y).alias(y)
    fit, dispersion = method in ("logit", "likelihood"), method == "likelihood"
    plan, sums = design.sums_pass("proportion", [y], by, na_rm, deff=dispersion, derived=[values], factors=[])
    n_removed = int(sums.counts[0])
    domains, all_table = sums.domains, None
    if n_removed:
        # R's domains keep the rows with a missing y for their degrees of freedom and
        # the mean weight that scales svyglm's prior weights.
        _, every = design.sums_pass("proportion", [], by, True)
        domains, all_table = every.domains, every.table.ravel()
    if not domains:
        raise EmptyDomainError(f"the by columns {plan.by_names} hold no values")
    table = _placed(sums.table, sums.domains, domains)
    squares = _placed(sums.squares, sums.domains, domains).ravel() if dispersion else np.zeros(0)
    raked = (_placed(sums.cells, sums.domains, domains).ravel(), design.raked.core) if design.raked is not None else None
    # R's model frame of a raked design's domain keeps every row (at zero weight outside).
    keeps_all = keeps_all_rows(design)

    def finish(first: np.ndarray | None = None) -> Any:
        return _core.proportion_from_sums(design.core, table.ravel(), squares, len(domains), design.n_rows,
                                          keeps_all, all_table, first, raked)

    res = finish()
    if fit:
        raked_columns = design.raked.rows.cells.columns if design.raked is not None else []
        columns = list(dict.fromkeys(design.psu_keys + [y] + plan.by_names + [c for c in [design.weight_name] if c]
                                     + expression_columns(design.condition) + raked_columns))
        res = finish(design.reduce_batches(columns, _batch_first_steps, np.add, plan, domains,
                                           np.asarray(res.mean_weight), label="first IRLS step").ravel())
    notes: list[str] = []
    coded, by_levels = _domains(plan, domains, sums.counts, notes)
    present, labels = present_domains(res.n_domain_rows, res.domain_weight_sum, plan.by_names, coded, notes,
                                      by_levels)
    degf = res.degf[present].astype(int)
    n_rows = np.full(len(present), design.n_rows) if keeps_all else res.n_domain_rows[present].astype(int)
    return proportion_estimates(res, present, labels, plan.by_names, y, method, level, df, degf, n_rows,
                                n_removed, notes)
