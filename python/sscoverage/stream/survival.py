"""Survival curves of a streamed design (:meth:`StreamedDesign.km`): each batch summed at
its distinct times per curve by the core's pass, the batches' tables merged in batch
order (a Dask tree on the workers), the curves from the merged tables: the numbers of
the in-memory :meth:`Design.km`.  Memory: one batch plus a table per curve of its
distinct times; with ``se=True`` also each event's weight and PSU (R's Nelson-Aalen
curve has an entry per event), and per variance pass PSUs x entries asked for.

Cox regression (:meth:`StreamedDesign.coxph`): R's Newton-Raphson in the core, each step
one pass that sums the batches' rows to bins at the fit's event times (see
:func:`streamed_coxph`)."""

from __future__ import annotations

import dataclasses
import functools
import itertools
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import polars as pl

from .. import _core
from .._frames import OUTSIDE, Frame
from ..exceptions import ColumnError, EstimationError, NotSupportedError, OptionError
from ..models.survival import (TIES, CoxResult, Curve, SurvivalCurves, check_cox, cox_errors, event_values,
                               missing_error, parse_surv, survival_times)
from .batches import UNIT, add_parts, expression_columns, with_units
from .glm import StreamedModel, fit_degf, missing_values

IN_SCOPE = "__ssc_in"
#: Counts a batch sends beside its tables: rows of the domain missing the time, the
#: event, the by value, any of them; negative times (an infinite one is refused as it is
#: read, as in memory).
COUNTS = ("time", "event", "by", "missing", "negative")


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
    # NaN compares false: only the negative times of the domain count.
    counts = np.array([miss_t.sum(), miss_e.sum(), miss_by.sum(), missing.sum(), (scope & (t < 0)).sum()],
                      dtype=np.int64)
    curve = np.ascontiguousarray(np.where(used, codes, OUTSIDE), dtype=np.uint32)
    return t, e, curve, groups, counts


def _weights(plan: _Plan, batch: pl.DataFrame) -> np.ndarray:
    return np.ascontiguousarray(batch.select(plan.weight.alias("w")).get_column("w").to_numpy(), dtype=np.float64)


def _units(plan: _Plan, batch: pl.DataFrame) -> np.ndarray:
    return np.ascontiguousarray(with_units(plan.keys, plan.psus, batch).get_column(UNIT).to_numpy(),
                                dtype=np.uint32)


def _batch_tables(plan: _Plan, batch: pl.DataFrame) -> _Tables:
    t, e, curve, groups, counts = _batch_rows(plan, batch, None)
    if counts[4]:
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


# ---------------------------------------------------------------------------- Cox
@dataclass(frozen=True)
class _CoxJob:
    """What every batch of a streamed Cox fit needs; small, so it travels to workers."""

    model: StreamedModel
    time: str
    event: str
    keep: list[int]  # the model's columns that are covariates (not the intercept)
    condition: pl.Expr | None  # the design's domain (the model's also needs time and event)
    weight: pl.Expr
    mean_w: float  # the design's mean weight (R rescales the weights by it); 1: not known yet


def _cox_rows(job: _CoxJob, batch: pl.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                                                            pl.DataFrame]:
    """A batch's rows of the fit: in the domain, with a time, an event and every
    covariate, of positive weight (R fits on those): (x, time, event, weight / mean_w,
    the rows)."""
    columns, _, _, rows = job.model.batch(batch)
    w = rows.select(job.weight.alias("w")).get_column("w").to_numpy().astype(np.float64)
    x = columns.dense(job.keep)
    positive = w > 0
    if not positive.all():
        x, w, rows = np.ascontiguousarray(x[positive]), w[positive], rows.filter(pl.Series(positive))
    frame = Frame(rows)
    t = frame.numeric(job.time, "survival time")
    e = event_values(frame, job.event) == 1
    return x, np.ascontiguousarray(t), np.ascontiguousarray(e), w / job.mean_w, rows


def _cox_census(job: _CoxJob, batch: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """A batch's counts (rows of the domain missing the time or the event, its negative
    times, its weight; the rows and events of the fit) and its fit's event times."""
    # The columns are read whole, as in memory (an infinite time or an event other than
    # 0/1 anywhere is refused); the counts are the domain's.
    frame = Frame(batch)
    t, e = frame.numeric(job.time, "survival time"), event_values(frame, job.event)
    scope = (np.ones(len(batch), bool) if job.condition is None
             else batch.select(job.condition.alias(IN_SCOPE)).get_column(IN_SCOPE).to_numpy().astype(bool))
    w = batch.select(job.weight.alias("w")).get_column("w").to_numpy().astype(np.float64)
    counts = np.array([(scope & (np.isnan(t) | np.isnan(e))).sum(), (scope & (t < 0)).sum(), w[scope].sum(), 0, 0])
    if counts[1]:  # refused after the pass, with the whole data's counts
        return counts, np.zeros(0)
    _, t, e, _, _ = _cox_rows(job, batch)
    counts[3:] = len(t), e.sum()
    return counts, np.unique(t[e])


def _add_census(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    return a[0] + b[0], np.union1d(a[1], b[1])


def _cox_moments(job: _CoxJob, batch: pl.DataFrame) -> tuple[float, np.ndarray, list[bool]]:
    x, t, e, w, _ = _cox_rows(job, batch)
    return _core.cox_batch_moments(x, t, e, w)


def _add_moments(a: tuple[float, np.ndarray, list[bool]], b: tuple[float, np.ndarray, list[bool]]
                 ) -> tuple[float, np.ndarray, list[bool]]:
    return a[0] + b[0], a[1] + b[1], [x and y for x, y in zip(a[2], b[2])]


def _cox_spread(job: _CoxJob, centre: np.ndarray, batch: pl.DataFrame) -> np.ndarray:
    x, t, e, w, _ = _cox_rows(job, batch)
    return _core.cox_batch_spread(x, t, e, w, centre.tolist())


def _cox_table(job: _CoxJob, centre: list[float], scale: list[float], event_times: np.ndarray, beta: np.ndarray,
               batch: pl.DataFrame) -> np.ndarray:
    x, t, e, w, _ = _cox_rows(job, batch)
    return _core.cox_batch_table(x, t, e, w, centre, scale, beta, event_times)


def _cox_totals(job: _CoxJob, solution: _core.CoxSolution, keys: list[str], psus: pl.DataFrame, n_units: int,
                batch: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    x, t, e, w, rows = _cox_rows(job, batch)
    units = np.ascontiguousarray(with_units(keys, psus, rows).get_column(UNIT).to_numpy(), dtype=np.uint32)
    return solution.unit_totals(x, t, e, w, units, n_units)


def streamed_coxph(design: Any, formula: str, ties: str, levels: Mapping[str, Sequence[Any]] | None, na_rm: bool,
                   level: float, eps: float, maxit: int, progress: bool) -> CoxResult:
    """Design-based Cox regression over the streamed batches, R's ``svycoxph``; see
    :meth:`sscoverage.Design.coxph`.

    A first pass (the model's) finds the rows of the fit and the factors' levels; a
    second counts the missing and invalid times and events, the domain's weight and
    gathers the event times; two more sum the covariates' moments and spreads that set
    R's scaling of the covariates.  Then each Newton step is one pass in which every batch sums its
    rows to one bin per event time of the fit (R's risk-set sums, a row in the bin of
    the latest event time at or before its own), the bins added in batch order; the core
    walks them back as R's ``coxfit6``.  A last pass sums the rows' influence values
    (score residuals times the inverse information) to PSU totals for the design's
    variance engine.  Memory: one batch, and a table of (events' distinct times) x
    (p^2 + 3p + 5) values."""
    if ties not in TIES:
        raise OptionError(f"ties={ties!r}; use one of {', '.join(TIES)}")
    if design.raked is not None:
        raise NotSupportedError("coxph() on a raked streamed design is not served (the rake's residuals need the "
                                "rows): collect() the data and use the in-memory design")
    time, event, time_token, rhs = parse_surv(formula, design.columns)
    schema = design.schema()
    has_outcome = ~missing_values(time, schema[time]) & ~missing_values(event, schema[event])
    model = StreamedModel(design.subset(has_outcome), f"{time_token} ~ {rhs}", "gaussian", dict(levels or {}),
                          progress)
    keep = [j for j, term in enumerate(model.terms) if term != "(Intercept)"]
    if not keep:
        raise OptionError(f"{formula}: no covariates; for a survival curve use design.km")
    terms = [model.terms[j] for j in keep]
    columns = list(dict.fromkeys(model.data_columns + [time, event] + expression_columns(design.condition)))
    job = _CoxJob(model, time, event, keep, design.condition, design.weight_expr, 1.0)
    counts, event_times = design.reduce_batches(columns, _cox_census, _add_census, job, label="Cox rows",
                                                progress=progress)
    missing, negative, w_scope, n_rows, n_events = counts
    if negative:
        raise ColumnError(f"column {time!r} has {int(negative)} negative survival time(s); times are durations "
                          "from the time origin and must be >= 0")
    n_removed = int(missing) + model.n_removed
    if n_removed and not na_rm:
        raise missing_error({f"{time}/{event}": int(missing), "covariates": model.n_removed}, n_removed)
    if not len(event_times):
        raise EstimationError(f"{formula}: no events among the rows used; the model cannot be fitted")
    # R rescales the weights to mean 1 over the design's rows (zero outside the domain).
    # The scaling is summed over the weights the fit uses: it sets the iterates' rounding.
    job = dataclasses.replace(job, mean_w=float(w_scope) / design.n_rows)
    moments = design.reduce_batches(columns, _cox_moments, _add_moments, job, label="Cox scaling",
                                    progress=progress)
    centre, _ = _core.cox_scaling(*moments)
    spread = design.reduce_batches(columns, _cox_spread, np.add, job, centre, label="Cox scaling", progress=progress)
    centre, scale = (v.tolist() for v in _core.cox_scaling(*moments, spread.tolist()))
    passes = itertools.count(1)

    def pass_fn(beta: np.ndarray) -> np.ndarray:
        return design.reduce_batches(columns, _cox_table, np.add, job, centre, scale, event_times, beta,
                                     label=f"Cox pass {next(passes)}", progress=progress)

    with cox_errors(formula, terms):
        fit = _core.cox_streamed_fit(pass_fn, centre, scale, event_times.tolist(), ties, eps=eps, maxit=maxit)
    check_cox(fit, formula, terms, maxit)
    totals, unit_rows = design.reduce_batches(
        columns, _cox_totals, add_parts, job, fit.solution, design.psu_keys, design.psu_table, len(design.psu_table),
        label="Cox scores", progress=progress)
    return CoxResult(
        formula=formula,
        ties=ties,
        terms=terms,
        coef=np.asarray(fit.coefficients),
        vcov=design.core.totals_vcov(np.ascontiguousarray(totals)),
        vcov_model=np.asarray(fit.var),
        loglik=tuple(float(v) for v in fit.loglik),
        iterations=int(fit.iterations),
        n=int(n_rows),
        n_events=int(n_events),
        n_removed=n_removed,
        df_residual=fit_degf(design, unit_rows) + 1 - len(terms),
        level=level,
    )
