"""Survival curves of a streamed design (:meth:`StreamedDesign.km`): each batch summed at
its distinct times per curve by the core's pass, the batches' tables merged in batch
order (a Dask tree on the workers), the curves from the merged tables: the numbers of
the in-memory :meth:`Design.km`.  Memory: one batch plus a table per curve of its
distinct times."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from .. import _core
from .._frames import OUTSIDE, Frame
from ..exceptions import ColumnError, EstimationError, NotSupportedError, OptionError
from ..models.survival import Curve, SurvivalCurves, _event_values, _missing_error, _times
from .batches import expression_columns

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

    def order(self, value: Any) -> Any:
        return value if self.by_rank is None else self.by_rank[value]


@dataclass(frozen=True)
class _Tables:
    """A batch's time table per curve (or several batches' merged), the curves' by
    values in sort order, and the counts of :data:`COUNTS`."""

    groups: list[Any]
    tables: list[tuple[np.ndarray, ...]]
    counts: np.ndarray


def _batch_tables(plan: _Plan, batch: pl.DataFrame) -> _Tables:
    frame = Frame(batch)
    t = frame.numeric(plan.time, "survival time")
    e = _event_values(frame, plan.event)
    n = len(batch)
    scope = (np.ones(n, bool) if plan.condition is None
             else batch.select(plan.condition.alias(IN_SCOPE)).get_column(IN_SCOPE).to_numpy().astype(bool))
    miss_t, miss_e = np.isnan(t) & scope, np.isnan(e) & scope
    if plan.by is None:
        groups: list[Any] = [None]
        codes = np.zeros(n, np.uint32)
        miss_by = np.zeros(n, bool)
    else:
        col = batch.get_column(plan.by)
        groups = sorted(col.drop_nulls().unique().to_list(), key=plan.order)
        codes = col.replace_strict(groups, list(range(len(groups))), default=None, return_dtype=pl.UInt32)
        miss_by = codes.is_null().to_numpy() & scope
        codes = codes.fill_null(0).to_numpy()
    missing = miss_t | miss_e | miss_by
    used = scope & ~missing
    # NaN compares false: only the negative and infinite times of the domain count.
    counts = np.array([miss_t.sum(), miss_e.sum(), miss_by.sum(), missing.sum(), (scope & (t < 0)).sum(),
                       (scope & np.isinf(t)).sum()], dtype=np.int64)
    if counts[4] or counts[5]:
        return _Tables([], [], counts)  # refused after the pass, with the whole data's counts
    curve = np.ascontiguousarray(np.where(used, codes, OUTSIDE), dtype=np.uint32)
    w = np.ascontiguousarray(batch.select(plan.weight.alias("w")).get_column("w").to_numpy(), dtype=np.float64)
    tables = _core.km_time_tables(t, e, w, curve, len(groups))
    kept = [(g, tab) for g, tab in zip(groups, tables) if len(tab[0])]
    return _Tables([g for g, _ in kept], [tab for _, tab in kept], counts)


def _merge(plan: _Plan, a: _Tables, b: _Tables) -> _Tables:
    """Two batches' tables as one, a's rows first, over the union of their curves."""
    groups = sorted(set(a.groups) | set(b.groups), key=plan.order)
    of_a, of_b = dict(zip(a.groups, a.tables)), dict(zip(b.groups, b.tables))
    tables = []
    for g in groups:
        if g in of_a and g in of_b:
            tables.append(_core.km_merge_tables(of_a[g], of_b[g]))
        else:
            tables.append(of_a[g] if g in of_a else of_b[g])
    return _Tables(groups, tables, a.counts + b.counts)


def streamed_km(design: Any, time: str, event: str, by: str | None, times: Any, se: bool, na_rm: bool,
                level: float) -> SurvivalCurves:
    """Design-weighted product-limit curves over the streamed batches; see
    :meth:`sscoverage.Design.km`."""
    if se:
        raise NotSupportedError(
            "km(se=True) on a streamed design is not served yet (its Nelson-Aalen entries hold every event's "
            "weight): use se=False, or collect() the data and use the in-memory design"
        )
    if by is not None and not isinstance(by, str):
        raise OptionError("by must be one column name (combine several into one column first)")
    at_times = _times(times)
    for name in [time, event] + ([by] if by else []):
        design.require_column(name)
    schema = design.schema()
    by_rank = ({v: i for i, v in enumerate(schema[by].categories.to_list())}
               if by is not None and isinstance(schema[by], pl.Enum) else None)
    plan = _Plan(time, event, by, by_rank, design.condition, design.weight_expr, na_rm)
    columns = list(dict.fromkeys([time, event] + ([by] if by else []) + [c for c in [design.weight_name] if c]
                                 + expression_columns(design.condition)))
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
        raise _missing_error(named, n_removed)
    if not merged.groups:
        raise EstimationError("no rows are left to estimate a survival curve from (subset and missing values)")
    curves = [_core.km_table_product_limit(tab) for tab in merged.tables]
    return SurvivalCurves(
        time_column=time,
        event_column=event,
        by=by,
        groups=merged.groups,
        curves=[Curve(c.time, c.surv) for c in curves],
        times=at_times,
        se=False,
        level=level,
        n=[int(c.n_rows) for c in curves],
        n_removed=n_removed,
    )
