"""The sums a streamed design reduces each batch to: the plan that travels to the
workers, each batch's rows as the reductions read them (PSU codes, domains, outcomes,
weights), the per-(domain, PSU) sums of the core's pass and how two batches' sums add."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from .. import _core
from .._frames import OUTSIDE, reject_infinite
from ..exceptions import ColumnError, MissingValueError
from .batches import UNIT, with_units

DOMAIN = "__ssc_domain"
IN_SCOPE = "__ssc_in"


@dataclass(frozen=True)
class Plan:
    """What every batch needs to be reduced: the PSU table, the by columns, the outcomes,
    the subset condition and the weight; small, so it travels to workers."""

    keys: list[str]
    psus: pl.DataFrame
    by_names: list[str]
    by_rank: list[dict[Any, int] | None]  # an Enum by column's level order; None: the values' own
    outcomes: list[str]
    factors: list[str]  # outcomes estimated level by level
    condition: pl.Expr | None
    weight: pl.Expr
    kind: str
    n_units: int
    na_rm: bool
    deff: bool
    raked: Any = None  # the rows' side of the design's rake (see stream.weighting.RakedRows)
    units: bool = True  # the rows' PSU codes are needed (not by a quantile's windows)
    derived: tuple[pl.Expr, ...] = ()  # columns added to each batch before it is read

    def domain_order(self, domain: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple(v if rank is None else rank[v] for v, rank in zip(domain, self.by_rank))

    def columns(self, levels: dict[str, list[Any]]) -> list[int]:
        """Each outcome's first column in a table row (after rows and weight) and the
        row's width, for factor outcomes with these levels."""
        starts, at = [], 2
        for name in self.outcomes:
            starts.append(at)
            at += len(levels[name]) if name in self.factors else 1
        return [*starts, at]


@dataclass(frozen=True)
class Sums:
    """A batch's sums (or several batches' added), with the domains and the factor
    levels they hold: found in the same pass, never by a pass only for the levels."""

    domains: list[tuple[Any, ...]]  # the by columns' values of each domain, in sort order
    levels: dict[str, list[Any]]  # each factor outcome's levels, sorted
    table: np.ndarray  # domains x units x (2 + width): rows, weight, weighted values
    squares: np.ndarray  # domains x (width + 1) for design effects, else empty
    cells: np.ndarray  # domains x cells x (2 + width) for a raked design, else empty
    counts: np.ndarray  # rows left out for missing values, rows with a missing by value

    def width(self, plan: Plan) -> int:
        return plan.columns(self.levels)[-1] - 2


def _placed(plan: Plan, part: Sums, domains: list[tuple[Any, ...]], levels: dict[str, list[Any]],
            ) -> tuple[np.ndarray, np.ndarray]:
    """Where `part`'s domains (rows) and table columns go among `domains` and `levels`."""
    row_of = {d: i for i, d in enumerate(domains)}
    new = plan.columns(levels)
    cols = [0, 1]
    for k, name in enumerate(plan.outcomes):
        if name in plan.factors:
            at = {v: i for i, v in enumerate(levels[name])}
            cols += [new[k] + at[v] for v in part.levels[name]]
        else:
            cols.append(new[k])
    return np.array([row_of[d] for d in part.domains], dtype=np.intp), np.array(cols, dtype=np.intp)


def add_sums(plan: Plan, a: Sums, b: Sums) -> Sums:
    """Two batches' sums as one: over the union of their domains and levels, each
    batch's sums added into its own places (a's first, then b's)."""
    domains = sorted(set(a.domains) | set(b.domains), key=plan.domain_order)
    levels = {n: sorted(set(a.levels[n]) | set(b.levels[n])) for n in plan.factors}
    stride = plan.columns(levels)[-1]
    n_domains = len(domains)
    table = np.zeros((n_domains, a.table.shape[1], stride))
    squares = np.zeros((n_domains, stride - 1)) if plan.deff else np.zeros((0, 0))
    cells = np.zeros((n_domains, a.cells.shape[1], stride)) if plan.raked is not None else np.zeros((0, 0, 0))
    for part in (a, b):
        rows, cols = _placed(plan, part, domains, levels)
        table[rows[:, None], :, cols[None, :]] += part.table.transpose(0, 2, 1)
        if plan.deff:
            # The squares hold the value columns (without rows and weight) and, last, the
            # weight-count column.
            sq_cols = np.append(cols[2:] - 2, stride - 2)
            squares[rows[:, None], sq_cols[None, :]] += part.squares
        if plan.raked is not None:
            cells[rows[:, None], :, cols[None, :]] += part.cells.transpose(0, 2, 1)
    return Sums(domains, levels, table, squares, cells, a.counts + b.counts)


@dataclass(frozen=True)
class Rows:
    """A batch's rows as every streamed reduction reads them."""

    batch: pl.DataFrame  # with the PSU code of each row (column UNIT)
    domains: list[tuple[Any, ...]]  # the by columns' values of the batch's domains, in sort order
    domain: np.ndarray  # u32: each row's domain among `domains`; OUTSIDE when in none or left out
    levels: dict[str, list[Any]]  # each factor outcome's levels in the batch
    numeric: list[tuple[int, np.ndarray]]  # (outcome position, values; 0 where missing)
    categorical: list[tuple[int, np.ndarray, int]]  # (outcome position, level codes, levels)
    w: np.ndarray  # the sampling weights
    removed: int  # rows in scope left out for a missing outcome
    missing_by: int  # rows in scope with a missing by value


def batch_rows(plan: Plan, batch: pl.DataFrame) -> Rows:
    """A batch's PSU codes, domains (within the subset; a missing by value or, with
    na_rm, a missing outcome puts a row in none), outcome values and weights."""
    if plan.units:
        batch = with_units(plan.keys, plan.psus, batch)
    if plan.derived:
        batch = batch.with_columns(plan.derived)
    if plan.by_names:
        present = batch.select(plan.by_names).unique().drop_nulls()
        domains = sorted(present.rows(), key=plan.domain_order)
        codes = pl.DataFrame({**{n: [d[i] for d in domains] for i, n in enumerate(plan.by_names)},
                              DOMAIN: np.arange(len(domains), dtype=np.uint32)},
                             schema={**{n: batch.schema[n] for n in plan.by_names}, DOMAIN: pl.UInt32})
        batch = batch.join(codes, on=plan.by_names, how="left", maintain_order="left")
    else:
        domains = [()]
    if plan.condition is None:
        in_scope = np.ones(len(batch), bool)
    else:
        in_scope = batch.select(plan.condition.alias(IN_SCOPE)).get_column(IN_SCOPE).to_numpy().copy()
    missing_by = 0
    if plan.by_names:
        no_domain = batch.get_column(DOMAIN).is_null().to_numpy()
        missing_by = int((no_domain & in_scope).sum())
        in_scope = in_scope & ~no_domain
    numeric, categorical, missing = [], [], np.zeros(len(batch), bool)
    levels: dict[str, list[Any]] = {}
    for pos, name in enumerate(plan.outcomes):
        col = batch.get_column(name)
        if name in plan.factors:
            # The levels are the column's own values (text for a categorical).
            values = col.cast(pl.String) if col.dtype in (pl.Categorical, pl.Enum) else col
            levels[name] = sorted(values.drop_nulls().unique().to_list())
            codes_of_level = values.replace_strict(levels[name], list(range(len(levels[name]))), default=None,
                                                   return_dtype=pl.UInt32)
            missing |= codes_of_level.is_null().to_numpy()
            categorical.append((pos, np.ascontiguousarray(codes_of_level.fill_null(0).to_numpy()), len(levels[name])))
        else:
            if not col.dtype.is_numeric():
                raise ColumnError(f"column {name!r} must be numeric for a {plan.kind}, not {col.dtype}")
            values = col.cast(pl.Float64).to_numpy()
            if not _core.all_finite(values):
                reject_infinite(values, name, "outcome")
            missing |= np.isnan(values)
            numeric.append((pos, np.ascontiguousarray(np.nan_to_num(values))))
    hit = missing & in_scope
    removed = int(hit.sum())
    if removed and not plan.na_rm:
        raise MissingValueError(
            f"outcomes {plan.outcomes} have missing values in the rows used; pass na_rm=True to "
            "leave those rows out (they stay in the design)"
        )
    in_scope &= ~missing
    domain = batch.get_column(DOMAIN).fill_null(0).to_numpy() if plan.by_names else np.zeros(len(batch), np.uint32)
    domain = np.ascontiguousarray(np.where(in_scope, domain, OUTSIDE), dtype=np.uint32)
    w = np.ascontiguousarray(batch.select(plan.weight.alias("w")).get_column("w").to_numpy(), dtype=np.float64)
    return Rows(batch, domains, domain, levels, numeric, categorical, w, removed, missing_by)


def batch_sums(plan: Plan, batch: pl.DataFrame) -> Sums:
    """One batch reduced by the core's pass to per-(domain, PSU) sums over the domains
    and factor levels the batch holds; with the design effects' sums, for a raked design
    the per-(domain, cell) sums with weights over base weights, and the rows left out for
    missing values and for a missing by value."""
    rows = batch_rows(plan, batch)
    batch, domains, domain, levels, w = rows.batch, rows.domains, rows.domain, rows.levels, rows.w
    numeric, categorical = rows.numeric, rows.categorical
    stride = plan.columns(levels)[-1]
    n_domains = len(domains)
    cells = np.zeros((0, 0, 0))
    if plan.raked is not None:
        w, cell_of_row, over_base = plan.raked.weights(batch, w)
        flat, _ = _core.accumulate_batch(over_base, cell_of_row, plan.raked.n_cells, domain, n_domains,
                                         numeric, categorical)
        cells = flat.reshape(n_domains, plan.raked.n_cells, stride)
    units = np.ascontiguousarray(batch.get_column(UNIT).to_numpy(), dtype=np.uint32)
    table, squares = _core.accumulate_batch(
        w, units, plan.n_units, domain, n_domains, numeric, categorical, with_squares=plan.deff
    )
    return Sums(domains, levels, table.reshape(n_domains, plan.n_units, stride),
                 squares.reshape(n_domains, stride - 1) if plan.deff else np.zeros((0, 0)), cells,
                 np.array([rows.removed, rows.missing_by], dtype=np.float64))
