"""Raking a streamed design (a polars LazyFrame or a Dask DataFrame) on the collapsed
cell table.

Every post-stratification of a rake multiplies the weights of a margin level by one
factor, so the rows of one cell of the margins' cross-classification share one product
of factors.  Two passes over the batches gather what the rake and its variance need:
the base weight and rows of each cell (pass 1), and of each (PSU, cell) (pass 2); the
core rakes the cells (R's sweeps) and keeps the margins' factors for R's raking
residuals.  Each later estimate weights its rows by base weight times their cell's
factor, and sums its influence values over base weights by cell in the same pass; the
core turns those into the PSU totals of the raking residuals (see
``CellRaking::residualise_totals``).  Memory: one batch, and tables of cells and of
PSUs x cells.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import polars as pl

from .. import _core
from ..exceptions import CalibrationError, DesignError, MissingValueError
from .batches import UNIT, BatchSource, add_parts, with_units
from ..weighting.adjust import describe_levels, level_key, margin_pairs, population_counts, rake_step, named_cell_error, margin_variables

#: Most combinations of the margins' levels numbered directly (before the absent ones
#: are dropped); beyond this the cross-classification is refused.
MAX_COMBINATIONS = 1 << 24
_SEPARATOR = "\x1f"


@dataclass(frozen=True)
class Margin:
    """One margin: its variables, the population's levels (as keys) and counts."""

    variables: list[str]
    keys: list[str]
    targets: np.ndarray
    labels: list[str]


@dataclass(frozen=True)
class Cells:
    """How a batch's rows find their cell: each margin's level, numbered mixed-radix
    (``strides``), then the cells present (``cell_of``: -1 for a combination without
    rows); small, so it travels to Dask workers."""

    margins: list[Margin]
    strides: np.ndarray
    n_combinations: int
    keys: list[str]
    psus: pl.DataFrame
    weight: pl.Expr
    cell_of: np.ndarray | None = None

    @property
    def columns(self) -> list[str]:
        return list(dict.fromkeys(v for m in self.margins for v in m.variables))

    def combination(self, batch: pl.DataFrame) -> np.ndarray:
        """Each row's combination of margin levels (int64), refusing missing values and
        categories the targets do not list."""
        code = np.zeros(len(batch), dtype=np.int64)
        for m, stride in zip(self.margins, self.strides):
            for v in m.variables:
                if batch.get_column(v).null_count():
                    raise MissingValueError(
                        f"weighting variable {v!r} has missing values; every row needs a category "
                        "(R's na.fail): drop or impute them first"
                    )
            key = pl.concat_str([_as_key(v, batch.schema[v]) for v in m.variables], separator=_SEPARATOR)
            level = batch.select(key.replace_strict(m.keys, list(range(len(m.keys))), default=None,
                                                    return_dtype=pl.Int64).alias("level")).get_column("level")
            if level.null_count():
                r = int(np.argmax(level.is_null().to_numpy()))
                values = [batch.get_column(v)[r] for v in m.variables]
                raise CalibrationError(
                    f"{level.null_count()} sample rows of a batch are in a category the targets do not "
                    f"list, e.g. {describe_levels(m.variables, values)}: give its population count"
                )
            code += level.to_numpy() * int(stride)
        return code

    def cells(self, batch: pl.DataFrame) -> np.ndarray:
        """Each row's cell (uint32) among the cells present in the data (after pass 1)."""
        if self.cell_of is None:
            raise DesignError("the raking's cells are not known before its first pass")
        cell = self.cell_of[self.combination(batch)]
        if (cell < 0).any():
            raise DesignError("a batch holds a combination of margin levels the raking's first pass did not see: "
                              "the data changed")
        return np.ascontiguousarray(cell, dtype=np.uint32)

    def weights(self, batch: pl.DataFrame) -> np.ndarray:
        return batch.select(self.weight.alias("w")).get_column("w").to_numpy().astype(np.float64)


@dataclass(frozen=True)
class RakedRows:
    """How a batch's rows get their raked weights: their cells and each cell's factor
    (picklable: it travels to Dask workers)."""

    cells: Cells
    factor: np.ndarray

    @property
    def n_cells(self) -> int:
        return len(self.factor)

    def weights(self, batch: pl.DataFrame, base: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The raked weights of a batch's rows, their cells, and the factors over base
        weight that the cell sums of the variance take (0 on rows of zero base weight)."""
        cell = self.cells.cells(batch)
        factor = self.factor[cell]
        return base * factor, cell, np.ascontiguousarray(np.where(base != 0, factor, 0.0))


@dataclass(frozen=True)
class Raked:
    """A streamed design's rake: the rows' side, and the core's rake for the variance
    (which stays with the client)."""

    rows: RakedRows
    core: Any


def streamed_rake(design: "BatchSource", margins: Any, control: Mapping[str, Any] | None = None,
                  force: bool = False) -> "BatchSource":
    """:meth:`Design.rake` of a streamed design; see the module notes."""
    if design.raked is not None:
        raise DesignError("this streamed design is raked already; rake it once, to all margins together")
    if design.condition is not None:
        raise DesignError("weighting applies to the whole sample: rake before taking a subset")
    control = {"maxit": 10, "epsilon": 1.0, **(control or {})}
    spec = []
    for strata, population in margin_pairs(margins):
        variables = margin_variables(strata, "margin")
        for v in variables:
            design.require_column(v)
        levels, targets = population_counts(population, variables, "margin population")
        keys = [_SEPARATOR.join(level_key(v) for v in row) for row in levels]
        if len(set(keys)) < len(keys):
            raise CalibrationError(f"the targets of margin {':'.join(variables)} list a category twice")
        spec.append(Margin(variables, keys, targets, [":".join(level_key(v) for v in row) for row in levels]))
    sizes = [len(m.keys) for m in spec]
    n_combinations = int(np.prod(sizes, dtype=np.float64))
    if n_combinations > MAX_COMBINATIONS:
        raise DesignError(
            f"the margins cross-classify into {n_combinations} combinations of levels (at most "
            f"{MAX_COMBINATIONS} for a streamed rake): rake to fewer or coarser margins"
        )
    strides = np.cumprod([1, *sizes[::-1]])[::-1][1:].astype(np.int64)
    cells = Cells(spec, strides, n_combinations, design.psu_keys, design.psu_table, design.weight_expr)
    columns = list(dict.fromkeys(design.psu_keys + cells.columns + [c for c in [design.weight_name] if c]))
    # Pass 1: the base weight and the rows of positive and of zero weight of every combination.
    census = design.reduce_batches(columns, _combination_sums, add_parts, cells, label="raking cells")
    present = np.flatnonzero(census[1] + census[2] > 0)
    cell_of = np.full(n_combinations, -1, dtype=np.int64)
    cell_of[present] = np.arange(len(present))
    cells = Cells(spec, strides, n_combinations, design.psu_keys, design.psu_table, design.weight_expr, cell_of)
    n_cells, n_units = len(present), design.n_psu
    # Pass 2: the same per (PSU, cell), for the variance.
    base_by_unit, zero_by_unit = design.reduce_batches(
        columns, _unit_cell_sums, add_parts, cells, n_cells, n_units, label="raking PSU cells")
    level_of_cell = [np.ascontiguousarray((present // s) % k, dtype=np.uint32) for s, k in zip(strides, sizes)]
    counts = np.ascontiguousarray(np.column_stack([census[1][present], census[2][present]]).reshape(-1))
    names, labels = [":".join(m.variables) for m in spec], [m.labels for m in spec]
    try:
        factor, core, info = _core.rake_cells(
            [(lv, np.ascontiguousarray(m.targets)) for lv, m in zip(level_of_cell, spec)],
            np.ascontiguousarray(census[0][present]), counts, base_by_unit, zero_by_unit,
            maxit=int(control["maxit"]), epsilon=float(control["epsilon"]),
        )
    except CalibrationError as err:
        raise named_cell_error(err, names, labels) from None
    step = rake_step(names, [m.targets for m in spec], labels, info, force)
    new = object.__new__(type(design))
    new.__dict__.update(design.__dict__)
    new.raked = Raked(RakedRows(cells, np.asarray(factor)), core)
    new.adjustments = (*getattr(design, "adjustments", ()), step)
    new.spec = {**design.spec, "weighting": [a.method for a in new.adjustments]}
    return new


def _combination_sums(cells: Cells, batch: pl.DataFrame) -> list[np.ndarray]:
    code = cells.combination(batch)
    w = cells.weights(batch)
    size = cells.n_combinations
    zero = (w == 0).astype(np.float64)
    return [np.bincount(code, weights=w, minlength=size), np.bincount(code, weights=1.0 - zero, minlength=size),
            np.bincount(code, weights=zero, minlength=size)]


def _unit_cell_sums(cells: Cells, n_cells: int, n_units: int, batch: pl.DataFrame) -> list[np.ndarray]:
    batch = with_units(cells.keys, cells.psus, batch)
    cell = cells.cells(batch).astype(np.int64)
    at = batch.get_column(UNIT).to_numpy().astype(np.int64) * n_cells + cell
    w = cells.weights(batch)
    size = n_units * n_cells
    return [np.bincount(at, weights=w, minlength=size), np.bincount(at, weights=(w == 0).astype(np.float64),
                                                                    minlength=size)]


def _as_key(column: str, dtype: pl.DataType) -> pl.Expr:
    """A column's values as R's as.character writes them (the population's keys)."""
    c = pl.col(column)
    if dtype == pl.Boolean:
        return pl.when(c).then(pl.lit("TRUE")).otherwise(pl.lit("FALSE"))
    if dtype.is_float():
        return pl.when(c == c.round()).then(c.cast(pl.Int64).cast(pl.String)).otherwise(c.cast(pl.String))
    return c.cast(pl.String)
