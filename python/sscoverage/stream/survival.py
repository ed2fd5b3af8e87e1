"""Survival curves of a streamed design (:meth:`StreamedDesign.km`): each batch summed at
its distinct times per curve by the core's pass, the batches' tables merged in batch
order (a Dask tree on the workers), the curves from the merged tables: the numbers of
the in-memory :meth:`Design.km`.  Memory: one batch plus a table per curve of its
distinct times; with ``se=True`` also each event's weight and PSU (R's Nelson-Aalen
curve has an entry per event), and per variance pass PSUs x entries asked for."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import polars as pl

from .. import _core
from .._frames import OUTSIDE, Frame
from ..exceptions import ColumnError, EstimationError, NotSupportedError, OptionError
from ..models.survival import Curve, SurvivalCurves, event_values, missing_error, survival_times
from .batches import UNIT, expression_columns, with_units

IN_SCOPE = "__ssc_in"
#: Counts a batch sends beside its tables: rows of the domain missing the time, the
#: event, the by value, any of them; negative and infinite times.
COUNTS = ("time", "event", "by", "missing", "negative", "infinite")


@dataclass(frozen=True)
class _Plan:
    """What every batch needs; small, so it travels to workers."""

    time: str
    event: str
    by: str | None
    by_rank: dict[Any, int] | None  # an Enum by column's level order; None: the values' own
    condition: pl.Expr | None
    weight: pl.Expr
    na_rm: bool
    se: bool
    keys: list[str]  # the PSU table's keys and the table (se=True: entries' PSUs)
    psus: pl.DataFrame

    def order(self, value: Any) -> Any:
        return value if self.by_rank is None else self.by_rank[value]


@dataclass(frozen=True)
class _Tables:
    """A batch's time table per curve (or several batches' merged), with se=True each
    curve's entries (event weights, PSU codes); the curves' by values in sort order, and
    the counts of :data:`COUNTS`."""

    groups: list[Any]
    tables: list[tuple[np.ndarray, ...]]
    entries: list[tuple[np.ndarray, np.ndarray]]
    counts: np.ndarray


def _batch_rows(plan: _Plan, batch: pl.DataFrame, groups: list[Any] | None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[Any], np.ndarray]:
    """(time, event, each row's curve: OUTSIDE outside the domain and where a value is
    missing, the curves' by values, the counts of :data:`COUNTS`) of a batch; the
    curves are `groups` if given, else the by values the batch holds."""
    frame = Frame(batch)
    t = frame.numeric(plan.time, "survival time")
    e = event_values(frame, plan.event)
    n = len(batch)
    scope = (np.ones(n, bool) if plan.condition is None
             else batch.select(plan.condition.alias(IN_SCOPE)).get_column(IN_SCOPE).to_numpy().astype(bool))
    miss_t, miss_e = np.isnan(t) & scope, np.isnan(e) & scope
    if plan.by is None:
        groups = [None]
        codes = np.zeros(n, np.uint32)
        miss_by = np.zeros(n, bool)
    else:
        col = batch.get_column(plan.by)
        if groups is None:
            groups = sorted(col.drop_nulls().unique().to_list(), key=plan.order)
        coded = col.replace_strict(groups, list(range(len(groups))), default=None, return_dtype=pl.UInt32)
        miss_by = col.is_null().to_numpy() & scope
        outside = coded.is_null().to_numpy()
        codes = np.where(outside, OUTSIDE, coded.fill_null(0).to_numpy())
    missing = miss_t | miss_e | miss_by
    used = scope & ~missing
    # NaN compares false: only the negative and infinite times of the domain count.
    counts = np.array([miss_t.sum(), miss_e.sum(), miss_by.sum(), missing.sum(), (scope & (t < 0)).sum(),
                       (scope & np.isinf(t)).sum()], dtype=np.int64)
    curve = np.ascontiguousarray(np.where(used, codes, OUTSIDE), dtype=np.uint32)
    return t, e, curve, groups, counts


def _weights(plan: _Plan, batch: pl.DataFrame) -> np.ndarray:
    return np.ascontiguousarray(batch.select(plan.weight.alias("w")).get_column("w").to_numpy(), dtype=np.float64)


def _units(plan: _Plan, batch: pl.DataFrame) -> np.ndarray:
    return np.ascontiguousarray(with_units(plan.keys, plan.psus, batch).get_column(UNIT).to_numpy(),
                                dtype=np.uint32)


def _batch_tables(plan: _Plan, batch: pl.DataFrame) -> _Tables:
    t, e, curve, groups, counts = _batch_rows(plan, batch, None)
    if counts[4] or counts[5]:
        return _Tables([], [], [], counts)  # refused after the pass, with the whole data's counts
    w = _weights(plan, batch)
    if plan.se:
        made = _core.km_batch_entries(t, e, w, _units(plan, batch), curve, len(groups))
        tables, entries = [m[0] for m in made], [(m[1], m[2]) for m in made]
    else:
        tables = _core.km_time_tables(t, e, w, curve, len(groups))
        entries = [(np.zeros(0), np.zeros(0, np.uint32))] * len(groups)
    kept = [i for i, tab in enumerate(tables) if len(tab[0])]
    return _Tables([groups[i] for i in kept], [tables[i] for i in kept], [entries[i] for i in kept], counts)


def _merge(plan: _Plan, a: _Tables, b: _Tables) -> _Tables:
    """Two batches' tables as one, a's rows first, over the union of their curves."""
    groups = sorted(set(a.groups) | set(b.groups), key=plan.order)
    of_a = dict(zip(a.groups, zip(a.tables, a.entries)))
    of_b = dict(zip(b.groups, zip(b.tables, b.entries)))
    tables, entries = [], []
    for g in groups:
        if g in of_a and g in of_b:
            (ta, ea), (tb, eb) = of_a[g], of_b[g]
            tables.append(_core.km_merge_tables(ta, tb))
            entries.append(_core.km_merge_entries((ta, *ea), (tb, *eb)) if plan.se else ea)
        else:
            table, entry = of_a[g] if g in of_a else of_b[g]
            tables.append(table)
            entries.append(entry)
    return _Tables(groups, tables, entries, a.counts + b.counts)


@dataclass(frozen=True)
class _BinPass:
    """The second pass of a curve's variance: its by value, and where its rows' influence
    at the entries asked for goes (``HazardCurves.bin_plan``)."""

    plan: _Plan
    group: Any
    bins: tuple[Any, ...]
    n_units: int


def _batch_bins(job: _BinPass, batch: pl.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    t, e, curve, _, _ = _batch_rows(job.plan, batch, [job.group])
    return _core.km_unit_bins(t, e, _weights(job.plan, batch), _units(job.plan, batch), job.n_units, curve, 1, 0,
                              job.bins)


def _add_bins(a: tuple[np.ndarray, ...], b: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
    return a[0] + b[0], a[1] + b[1], a[2] | b[2]


#: Entries of a curve whose variance one pass over the batches gives: bounds the sums
#: each batch sends (PSUs x entries).
ENTRIES_PER_PASS = 256


def _streamed_variance(design: Any, plan: _Plan, columns: list[str], hazard: Any, d: int, group: Any,
                       entry_units: np.ndarray) -> Callable[[list[int]], np.ndarray]:
    """The variance of log S of curve `d` at entries: a pass over the batches per
    :data:`ENTRIES_PER_PASS` entries, the rows' sums per PSU added in batch order."""
    n_units = len(design.psu_table)

    def variance(at: list[int]) -> np.ndarray:
        out = []
        for lo in range(0, len(at), ENTRIES_PER_PASS):
            part = at[lo:lo + ENTRIES_PER_PASS]
            job = _BinPass(plan, group, tuple(hazard.bin_plan(d, part)), n_units)
            bins = design.reduce_batches(columns, _batch_bins, _add_bins, job, label="survival variance")
            out.append(np.asarray(hazard.variance_from_bins(design.core, d, part, entry_units, bins)))
        return np.concatenate(out) if out else np.zeros(0)

    return variance


def streamed_km(design: Any, time: str, event: str, by: str | None, times: Any, se: bool, na_rm: bool,
                level: float) -> SurvivalCurves:
    """Design-weighted survival curves over the streamed batches; see
    :meth:`sscoverage.Design.km`.  With ``se=True`` the first pass also gathers each
    curve's Nelson-Aalen entries (one event weight and PSU code per event: the one part
    that grows with the data, with the events), and each variance asked for is a
    second pass summing the rows' influence per PSU."""
    if design.raked is not None:
        raise NotSupportedError(
            "km() on a raked streamed design is not served (the rake's residuals need the rows): collect() the "
            "data and use the in-memory design"
        )
    if by is not None and not isinstance(by, str):
        raise OptionError("by must be one column name (combine several into one column first)")
    at_times = survival_times(times)
    for name in [time, event] + ([by] if by else []):
        design.require_column(name)
    schema = design.schema()
    by_rank = ({v: i for i, v in enumerate(schema[by].categories.to_list())}
               if by is not None and isinstance(schema[by], pl.Enum) else None)
    plan = _Plan(time, event, by, by_rank, design.condition, design.weight_expr, na_rm, se, design.psu_keys,
                 design.psu_table)
    columns = list(dict.fromkeys([time, event] + ([by] if by else []) + [c for c in [design.weight_name] if c]
                                 + expression_columns(design.condition) + (design.psu_keys if se else [])))
    merged = design.reduce_batches(columns, _batch_tables, functools.partial(_merge, plan), plan,
                                   label="survival curves")
    counts = dict(zip(COUNTS, (int(c) for c in merged.counts)))
    if counts["negative"]:
        raise ColumnError(f"column {time!r} has {counts['negative']} negative survival time(s); times are durations "
                          "from the time origin and must be >= 0")
    if counts["infinite"]:
        raise ColumnError(f"column {time!r} has {counts['infinite']} infinite survival times")
    n_removed = counts["missing"]
    if n_removed and not na_rm:
        named = {time: counts["time"], event: counts["event"], **({by: counts["by"]} if by else {})}
        raise missing_error(named, n_removed)
    if not merged.groups:
        raise EstimationError("no rows are left to estimate a survival curve from (subset and missing values)")
    if se:
        hazard = _core.HazardCurves.from_tables(merged.tables, [w for w, _ in merged.entries])
        curves = []
        for d, (group, (_, units)) in enumerate(zip(merged.groups, merged.entries)):
            entry_time, surv = hazard.curve(d)
            curves.append(Curve(entry_time, surv, _streamed_variance(design, plan, columns, hazard, d, group, units)))
        n = [int(k) for k in hazard.n_rows]
    else:
        made = [_core.km_table_product_limit(tab) for tab in merged.tables]
        curves = [Curve(c.time, c.surv) for c in made]
        n = [int(c.n_rows) for c in made]
    return SurvivalCurves(
        time_column=time,
        event_column=event,
        by=by,
        groups=merged.groups,
        curves=curves,
        times=at_times,
        se=se,
        level=level,
        n=n,
        n_removed=n_removed,
    )
