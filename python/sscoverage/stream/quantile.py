"""Quantiles of a streamed design with the numbers of :meth:`Design.quantile`.

R's step rules (``math``, ``school``) decide from the cumulative weights around
``p * total``: the value there and the one after.  So the rows never meet:

1. one pass of the estimate machinery finds the domains, their rows and PSUs;
2. passes of weighted counts in windows of the values narrow each (domain, level)
   down: a histogram of a domain's values (the top 24 bits of an order-preserving key
   of the doubles, then the next 16 inside the bin that holds ``p * total``, ...) until
   the window holds few rows, its last pass at full resolution: each distinct value's
   rows, weight and first weight (the weights of tied rows matter only through those);
3. the core's rule reads each window (``window_quantiles``), the rows below it standing
   as one entry with their cumulative weight;
4. Woodruff's interval: one estimate pass of the indicators ``y <= estimate`` (the mean
   and its variance, as R's ``svymean``), then windows at the limits' levels.

R sums the weights in long double (in row order for the total, in value order for the
cumulative weights); the windows' sums are in another order.  They are R's bits all the
same when the weights are multiples of one power of two small enough that no partial
sum rounds (integer weights), or all equal (R's running sum of k equal weights depends
on k only).  Otherwise the sums are R's to a bound (n 2^-50 of the total); a window
whose cumulative weight lies that close to ``p * total`` cannot decide and its domain's
values and weights are collected (16 bytes a row, for that domain only) for the
in-memory rule.  The Woodruff levels come from the streamed estimate pass, whose sums
are added in batch order: equal to the in-memory ones to about 1e-16, so a limit equals
the in-memory one unless its level lies that close to a step of the distribution.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import polars as pl

from .. import _core
from .._frames import OUTSIDE, column_names
from .._rmath import qt
from ..estimators.proportions import proportion_interval
from ..estimators.quantile import QRULES, WOODRUFF, quantile_estimates, quantile_request
from ..exceptions import (ColumnError, EmptyDomainError, EstimationError, NotSupportedError, OptionError,
                          SurveyWarning)
from ..results.estimates import Estimates
from .batches import UNIT, BatchSource, expression_columns
from .sums import Plan, add_sums, batch_rows, batch_sums

#: R's step rules, the ones a window decides.
STEP_RULES = ("math", "school", "hf1", "hf2")
#: Bits of the value key the first pass resolves (a 256th of a binade), then each
#: narrowing pass.
FIRST_BITS = 24
BIN_BITS = 16
#: A window of at most this many rows is read at full resolution in the next pass.
WINDOW_ROWS = 4096
ALL = np.uint64(2**64 - 1)
SIGN = np.uint64(1 << 63)


def key_values(keys: np.ndarray) -> np.ndarray:
    """The doubles of the core's order keys (its ``order_key``: unsigned order is the
    doubles' order, -0 and +0 one key)."""
    keys = np.asarray(keys, dtype=np.uint64)
    return np.where(keys >> np.uint64(63) == 1, keys & ~SIGN, ~keys).view(np.float64)


def _lowest_bit(w: np.ndarray) -> np.ndarray:
    """The exponent of each positive double's lowest set bit: w is a multiple of 2^that."""
    bits = w.view(np.uint64)
    biased = ((bits >> np.uint64(52)) & np.uint64(0x7FF)).astype(np.int64)
    mantissa = (bits & np.uint64((1 << 52) - 1)) | np.where(biased > 0, np.uint64(1 << 52), np.uint64(0))
    low = mantissa & (~mantissa + np.uint64(1))
    return np.maximum(biased, 1) - 1075 + np.log2(low.astype(np.float64)).astype(np.int64)


@dataclass(frozen=True)
class _Targets:
    """The windows a pass reads: slot[d, j] = t is domain d's j-th target (-1: none),
    its values with keys in [lo[t], hi[t]], counted in bins of ``key >> shift[t]``."""

    plan: Plan
    index: dict[tuple[Any, ...], int]  # a domain's by values -> its global position
    lo: np.ndarray
    hi: np.ndarray
    shift: np.ndarray
    slot: np.ndarray
    stats: bool  # also the weights' facts per domain (first pass)


@dataclass(frozen=True)
class _Windows:
    """A pass's counts (a batch's, or several batches' merged in batch order)."""

    target: np.ndarray  # entries sorted by (target, bin) ...
    bin: np.ndarray
    count: np.ndarray
    weight: np.ndarray
    first: np.ndarray  # ... the weight of the entry's first row in row order,
    low: np.ndarray  # ... its smallest and largest key
    high: np.ndarray
    below_count: np.ndarray  # per target: rows below the window, their weight,
    below_weight: np.ndarray
    below_max: np.ndarray  # the largest key below (0 when none)
    above_min: np.ndarray  # the smallest key above (ALL when none)
    facts: np.ndarray  # per domain (stats pass): min weight, max weight, lowest bit; else empty


def _rows_in_domains(targets: _Targets, batch: pl.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(domain among the reader's, or OUTSIDE; value; weight) of the batch's rows."""
    rows = batch_rows(targets.plan, batch)
    to_global = np.array([targets.index.get(d, OUTSIDE) for d in rows.domains] + [OUTSIDE], dtype=np.uint32)
    local = np.where(rows.domain == OUTSIDE, len(rows.domains), rows.domain)
    return to_global[local], rows.numeric[0][1], rows.w


def _window_counts(targets: _Targets, batch: pl.DataFrame) -> _Windows:
    d, x, w = _rows_in_domains(targets, batch)
    n_domains, per_domain = targets.slot.shape
    c = _core.window_counts(x, w, d, np.where(targets.slot < 0, OUTSIDE, targets.slot).astype(np.uint32).ravel(),
                            per_domain, targets.lo, targets.hi, targets.shift.astype(np.uint32))
    facts = np.zeros((0, 3))
    if targets.stats:
        # Per domain, over its rows of positive weight: the smallest and largest weight
        # and the lowest bit any weight sets.
        used = (d != OUTSIDE) & (w > 0)
        per = pl.DataFrame({"d": d[used], "w": w[used], "bit": _lowest_bit(w[used])}).group_by("d").agg(
            pl.col("w").min().alias("lo"), pl.col("w").max().alias("hi"), pl.col("bit").min())
        facts = np.tile([np.inf, -np.inf, np.inf], (n_domains, 1))
        facts[per["d"].to_numpy()] = per.select("lo", "hi", pl.col("bit").cast(pl.Float64)).to_numpy()
    return _Windows(c.target.astype(np.int64), c.bin, c.count.astype(np.int64), c.weight, c.first, c.low, c.high,
                    c.below_count.astype(np.int64), c.below_weight, c.below_max, c.above_min, facts)


def _entries(t: np.ndarray, b: np.ndarray, count: np.ndarray, weight: np.ndarray, first: np.ndarray,
             low: np.ndarray, high: np.ndarray, below_count: np.ndarray, below_weight: np.ndarray,
             below_max: np.ndarray, above_min: np.ndarray, facts: np.ndarray) -> _Windows:
    """Entries grouped by (target, bin), each group in its given order (a stable sort)."""
    sort = np.lexsort((b, t))
    t, b, count, weight, first, low, high = (a[sort] for a in (t, b, count, weight, first, low, high))
    if len(t):
        starts = np.flatnonzero(np.r_[True, (t[1:] != t[:-1]) | (b[1:] != b[:-1])])
        t, b, first = t[starts], b[starts], first[starts]
        count, weight = np.add.reduceat(count, starts), np.add.reduceat(weight, starts)
        low, high = np.minimum.reduceat(low, starts), np.maximum.reduceat(high, starts)
    return _Windows(t, b, count, weight, first, low, high, below_count, below_weight, below_max, above_min, facts)


def _merge(a: _Windows, b: _Windows) -> _Windows:
    """Two passes' counts as one, a's rows before b's."""
    fields = ("target", "bin", "count", "weight", "first", "low", "high")
    cat = [np.concatenate([getattr(a, f), getattr(b, f)]) for f in fields]
    facts = a.facts
    if len(a.facts):
        facts = np.column_stack([np.minimum(a.facts[:, 0], b.facts[:, 0]), np.maximum(a.facts[:, 1], b.facts[:, 1]),
                                 np.minimum(a.facts[:, 2], b.facts[:, 2])])
    return _entries(*cat, a.below_count + b.below_count, a.below_weight + b.below_weight,
                    np.maximum(a.below_max, b.below_max), np.minimum(a.above_min, b.above_min), facts)


@dataclass
class _Domain:
    """What the windows of one domain need from the first pass."""

    total: float  # R's sum of its weights (exact or equal weights), else the windows' sum
    n_positive: int  # rows of positive weight
    mode: str  # "exact" (no partial sum rounds), "equal" (one weight) or "bounded"
    weight: float  # the one weight ("equal")
    base: _Windows  # the first pass's histograms (target d: this domain's)


class _Reader:
    """The windows of a streamed design's domains for one variable."""

    def __init__(self, design: BatchSource, plan: Plan, domains: list[tuple[Any, ...]], columns: list[str],
                 rule: str) -> None:
        self.design, self.plan, self.columns, self.rule = design, plan, columns, rule
        self.index = {d: i for i, d in enumerate(domains)}
        n = len(domains)
        first = self._pass(np.zeros(n, np.uint64), np.full(n, ALL), np.full(n, 64 - FIRST_BITS),
                           np.arange(n)[:, None], stats=True)
        self.domains = []
        for d in range(n):
            on = first.target == d
            total, n_pos = float(first.weight[on].sum()), int(first.count[on].sum())
            lo_w, hi_w, low_bit = first.facts[d]
            if n_pos and total * (1 + 1e-9) < 2.0 ** (low_bit + 52):
                mode, exact_total = "exact", total
            elif n_pos and lo_w == hi_w:
                mode, exact_total = "equal", float(_core.repeated_cumsum(lo_w, np.array([n_pos], np.uint64))[0])
            else:
                mode, exact_total = "bounded", total
            self.domains.append(_Domain(exact_total, n_pos, mode, lo_w, first))

    def _pass(self, lo: np.ndarray, hi: np.ndarray, shift: np.ndarray, slot: np.ndarray,
              stats: bool = False) -> _Windows:
        targets = _Targets(self.plan, self.index, lo.astype(np.uint64), hi.astype(np.uint64),
                           shift.astype(np.int64), slot, stats)
        return self.design.reduce_batches(self.columns, _window_counts, _merge, targets,
                                          label="quantile windows", progress=False)

    def margin(self, dom: _Domain) -> float:
        """How far R's cumulative weights may lie from the windows' sums."""
        return 0.0 if dom.mode != "bounded" else dom.total * (dom.n_positive + 1) * 2.0**-50

    def quantiles(self, levels: np.ndarray) -> np.ndarray:
        """Each domain's quantiles at its row of `levels` (n_domains x k; NaN: none)."""
        n_dom, k = levels.shape
        out = np.full(levels.shape, np.nan)
        todo = [(d, j) for d in range(n_dom) for j in range(k)
                if not np.isnan(levels[d, j]) and self.domains[d].n_positive]
        # Each target's window, narrowed from the domain's first histogram.
        window = {}
        for d, j in todo:
            base = self.domains[d].base
            window[d, j] = self._narrow(d, levels[d, j], base, base.target == d, 0.0, 64 - FIRST_BITS)
        final: dict[tuple[int, int], tuple[_Windows, int]] = {}
        while window:
            keys = list(window)
            slot = np.full((n_dom, k), -1, np.int64)
            for t, (d, j) in enumerate(keys):
                slot[d, j] = t
            lo, hi, shift = (np.array([window[key][i] for key in keys]) for i in range(3))
            counts = self._pass(lo, hi, shift, slot)
            window = {}
            for t, (d, j) in enumerate(keys):
                if shift[t] == 0:
                    final[d, j] = (counts, t)
                    continue
                window[d, j] = self._narrow(d, levels[d, j], counts, counts.target == t,
                                            float(counts.below_weight[t]), int(shift[t]))
        fallback = set()
        xs, cums, starts, totals, ps, cells = [], [], [0], [], [], []
        for (d, j), (counts, t) in final.items():
            x, cumw = self._window(self.domains[d], counts, t)
            dom = self.domains[d]
            near = np.abs(cumw[np.isfinite(cumw)] - levels[d, j] * dom.total)
            if dom.mode == "bounded" and (near <= self.margin(dom)).any():
                fallback.add(d)
                continue
            xs.append(x)
            cums.append(cumw)
            starts.append(starts[-1] + len(x))
            totals.append(dom.total)
            ps.append(levels[d, j])
            cells.append((d, j))
        if cells:
            got = _core.window_quantiles(self.rule, np.concatenate(xs), np.concatenate(cums),
                                         np.array(starts, np.uint64), np.array(totals), np.array(ps))
            for (d, j), v in zip(cells, got):
                out[d, j] = v
        for d in sorted(fallback):
            values, weights = self._rows_of(d)
            row = levels[d]
            out[d] = _core.rows_quantiles(self.rule, values, weights, np.where(np.isnan(row), 0.5, row))
            out[d, np.isnan(row)] = np.nan
        return out

    def _narrow(self, d: int, p: float, counts: _Windows, on: np.ndarray, below: float,
                shift: int) -> tuple[int, int, int]:
        """The bins around ``p * total`` (with a margin for the sums' rounding) among the
        entries `on` of `counts` as the next window (lo, hi, shift): at full resolution
        when it holds few rows or one value."""
        bins, weights = counts.bin[on], counts.weight[on]
        dom = self.domains[d]
        target = p * dom.total
        margin = 4 * self.margin(dom) + 1e-9 * dom.total
        ends = below + np.cumsum(weights)
        first = min(int(np.searchsorted(ends, target - margin, side="right")), len(bins) - 1)
        last = min(int(np.searchsorted(ends, target + margin, side="right")), len(bins) - 1)
        lo = int(bins[first]) << shift
        hi = min(((int(bins[last]) + 1) << shift) - 1, 2**64 - 1)
        rows = int(counts.count[on][first:last + 1].sum())
        one_value = counts.low[on][first] == counts.high[on][last]
        next_shift = 0 if rows <= WINDOW_ROWS or one_value else max(shift - BIN_BITS, 0)
        return lo, hi, next_shift

    def _window(self, dom: _Domain, counts: _Windows, t: int) -> tuple[np.ndarray, np.ndarray]:
        """The window's values and R's cumulative weights: the last row below (the weight
        of all below), each distinct value's first and last rows (tied rows between them
        change nothing in a step rule), the first row above."""
        on = counts.target == t
        keys, n, weight, first = counts.bin[on], counts.count[on], counts.weight[on], counts.first[on]
        n_below = int(counts.below_count[t])
        # Entries: a first-row entry for each value of several rows, then its last row.
        tied = n > 1
        value = np.repeat(key_values(keys), np.where(tied, 2, 1))
        rows_before = n_below + np.cumsum(n) - n
        at_first = np.column_stack([rows_before + 1, rows_before + n])
        end_rows = np.where(tied[:, None], at_first, (rows_before + n)[:, None]).ravel()
        keep = np.column_stack([tied, np.ones(len(n), bool)]).ravel()
        ends_rows = end_rows[keep]
        if dom.mode == "equal":
            cumw = _core.repeated_cumsum(dom.weight, np.r_[n_below, ends_rows].astype(np.uint64))
            below, cumw = cumw[0], cumw[1:]
        else:
            # Sums of weights in value order (exact when no partial sum rounds).
            below = float(counts.below_weight[t])
            ends = np.cumsum(np.r_[below, weight])
            cumw = np.column_stack([ends[:-1] + first, ends[1:]]).ravel()[keep]
        x, c = [value], [cumw]
        if n_below:
            x.insert(0, key_values(counts.below_max[t:t + 1]))
            c.insert(0, np.array([below]))
        if counts.above_min[t] != ALL:
            x.append(key_values(counts.above_min[t:t + 1]))
            c.append(np.array([np.inf]))
        return np.concatenate(x), np.concatenate(c)

    def _rows_of(self, d: int) -> tuple[np.ndarray, np.ndarray]:
        """Domain d's values and weights in row order (for the in-memory rule)."""
        targets = _Targets(self.plan, self.index, np.zeros(0, np.uint64),
                           np.zeros(0, np.uint64), np.zeros(0, np.int64), np.zeros((0, 0), np.int64), False)
        parts = self.design.map_batches(self.columns, _domain_rows, targets, d, label="quantile rows", progress=False)
        values, weights = zip(*parts)
        return np.concatenate(values), np.concatenate(weights)


def _domain_rows(targets: _Targets, d: int, batch: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    dom, x, w = _rows_in_domains(targets, batch)
    return x[dom == d], w[dom == d]


def _indicator_sums(plan: Plan, name: str, names: list[str], q: pl.DataFrame, by_names: list[str],
                    batch: pl.DataFrame) -> Any:
    """A batch's sums of the indicators ``name <= estimate`` of the row's domain (missing
    where a variable is, as those rows are in no domain)."""
    k = q.width - len(by_names)
    batch = batch.join(q, on=by_names, how="left", maintain_order="left") if by_names else batch.with_columns(
        [pl.lit(q.item(0, i)).alias(f"__ssc_q{i}") for i in range(k)])
    missing = pl.any_horizontal([pl.col(n).is_null() | pl.col(n).cast(pl.Float64).is_nan() for n in names])
    batch = batch.with_columns([
        pl.when(missing).then(None).otherwise((pl.col(name).cast(pl.Float64) <= pl.col(f"__ssc_q{i}"))
                                              .cast(pl.Float64)).alias(f"__ssc_at{i}") for i in range(k)])
    return batch_sums(plan, batch)


def streamed_quantile(
    design: BatchSource,
    y: str | Sequence[str],
    quantiles: float | Sequence[float] = (0.5,),
    by: Any = None,
    level: float = 0.95,
    qrule: Any = "math",
    interval_type: str = "mean",
    na_rm: bool = False,
    df: float | None = None,
) -> Estimates:
    """:meth:`Design.quantile` over the streamed rows; see the module notes."""
    collect = ("collect() the data (ssc.Design(lazy.collect(), ...), or ddf.compute()) and use the in-memory "
               "design")
    if not isinstance(qrule, str) or qrule not in QRULES:
        raise OptionError(f"qrule={qrule!r}; use one of {', '.join(QRULES)}")
    if qrule not in STEP_RULES:
        raise NotSupportedError(f"qrule={qrule!r} reads every weight of a domain; a streamed design serves the step "
                                f"rules {', '.join(STEP_RULES)}: {collect}")
    if interval_type not in WOODRUFF:
        raise NotSupportedError(f"interval_type={interval_type!r} on a streamed design: it serves Woodruff's "
                                f"intervals ({', '.join(WOODRUFF)}); for others {collect}")
    if design.raked is not None:
        raise NotSupportedError(f"quantiles of a raked streamed design: {collect}")
    names, probs = quantile_request(y, quantiles, level)
    alpha = 1 - level
    by_names = column_names(by, "by")
    schema = design.schema()
    for name in names + by_names:
        design.require_column(name)
    for name in names:
        if not schema[name].is_numeric() or schema[name] == pl.Boolean:
            raise ColumnError(f"column {name!r} must be numeric to take quantiles")
    by_rank = [{v: i for i, v in enumerate(schema[n].categories.to_list())} if isinstance(schema[n], pl.Enum)
               else None for n in by_names]
    base = list(dict.fromkeys(design.psu_keys + by_names + [c for c in [design.weight_name] if c]
                              + expression_columns(design.condition)))
    k = len(probs)
    # Rows of a domain: those with every variable present (as in memory).
    plan = Plan(design.psu_keys, design.psu_table, by_names, by_rank, names, [], design.condition,
                 design.weight_expr, "mean", len(design.psu_table), na_rm, False)
    columns = list(dict.fromkeys(base + names))
    sums = design.reduce_batches(columns, batch_sums, functools.partial(add_sums, plan), plan,
                                 label="quantile domains")
    n_rows_all = sums.table[:, :, 0].sum(axis=1)
    weight_all = sums.table[:, :, 1].sum(axis=1)
    present = np.flatnonzero((n_rows_all > 0) & (weight_all > 0))
    if len(present) == 0:
        raise EmptyDomainError("no rows are left to take quantiles of (subset and missing values)")
    n_removed, n_missing_by = (int(c) for c in sums.counts)
    notes = [f"{n_missing_by} rows with a missing by value are in no domain"] if n_missing_by else []
    weightless = [sums.domains[d] for d in np.flatnonzero((n_rows_all > 0) & (weight_all == 0))]
    if weightless:
        # As in memory (and R's svyby): such a domain is left out, with a warning.
        text = ", ".join("/".join(str(v) for v in d) for d in weightless)
        message = (f"{'/'.join(by_names)} = {text}: every row has zero weight, so the domain is left out "
                   "of the table (as R's svyby)")
        warnings.warn(message, SurveyWarning, stacklevel=3)
        notes.append(message)
    domains = [sums.domains[d] for d in present]
    n_dom = len(domains)
    labels = [dict(zip(by_names, d)) for d in domains]
    # Degrees of freedom of each domain: its PSUs of positive weight less their strata.
    used = sums.table[present, :, 1] > 0
    strata = design.spec["strata"]
    stratum = (design.psu_table.sort(UNIT).select(pl.col(strata[0]).rank("dense")).to_series().to_numpy()
               if strata else np.zeros(design.n_psu))
    degf = np.array([u.sum() - len(np.unique(stratum[u])) for u in used], dtype=np.float64)
    dom_df = degf if df is None else np.full(n_dom, float(df))
    q = qt(1 - alpha / 2, dom_df)
    n_rows = n_rows_all[present]
    estimates, lowers, uppers, weight_sums = [], [], [], None
    for name in names:
        # The variable first; rows with another variable missing are in no domain.
        one = Plan(design.psu_keys, design.psu_table, by_names, by_rank, [name] + [n for n in names if n != name],
                   [], design.condition, design.weight_expr, "mean", len(design.psu_table), True, False, units=False)
        reader = _Reader(design, one, domains, columns, qrule)
        weight_sums = np.array([dom.total for dom in reader.domains])
        qhat = reader.quantiles(np.tile(probs, (n_dom, 1)))
        if np.isnan(qhat).any():
            d, j = np.argwhere(np.isnan(qhat))[0]
            where = f" in {labels[d]}" if by_names else ""
            raise EstimationError(f"the {probs[j]:g} quantile of {name!r}{where} is undefined: qrule {qrule!r} "
                                  "needs a row of non-zero weight there")
        # Woodruff: the mean of y <= estimate per domain and its variance, one pass.
        at = [f"__ssc_at{j}" for j in range(k)]
        qframe = pl.DataFrame({**{n: [d[i] for d in domains] for i, n in enumerate(by_names)},
                               **{f"__ssc_q{j}": qhat[:, j] for j in range(k)}},
                              schema={**{n: schema[n] for n in by_names}, **{f"__ssc_q{j}": pl.Float64
                                                                             for j in range(k)}})
        # Missing values were dealt with in the first pass; a domain left out has no
        # estimate (its indicators are missing).
        iplan = Plan(design.psu_keys, design.psu_table, by_names, by_rank, at, [], design.condition,
                     design.weight_expr, "mean", len(design.psu_table), True, False)
        isums = design.reduce_batches(columns, functools.partial(_indicator_sums, iplan, name, names, qframe, by_names),
                                      functools.partial(add_sums, iplan), label="quantile proportions")
        row_of = {dm: i for i, dm in enumerate(isums.domains)}
        rows = [row_of[dm] for dm in domains]
        res = design.core.estimate_from_sums("mean", isums.table[rows].ravel(), np.zeros(0), n_dom, k)
        est = np.asarray(res.estimate).reshape(n_dom, k)
        var = np.asarray(res.vcov).reshape(n_dom, k, k)[:, range(k), range(k)]
        with np.errstate(divide="ignore", invalid="ignore"):
            lo, hi = proportion_interval(interval_type, est, var, 1 - alpha, dom_df[:, None], n_rows[:, None],
                                         degf[:, None], alpha)
        limits = reader.quantiles(np.column_stack([np.where(np.isnan(lo) | (lo < 0), np.nan, lo),
                                                   np.where(np.isnan(hi) | (hi > 1), np.nan, hi)]))
        estimates.append(qhat)
        lowers.append(limits[:, :k])
        uppers.append(limits[:, k:])
    return quantile_estimates(names, probs, labels, by_names, estimates, lowers, uppers, q, dom_df, n_rows,
                              weight_sums, level, interval_type, qrule, n_removed, notes)
