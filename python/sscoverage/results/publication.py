"""Safe publication: reliability flags on estimates and cell suppression in tables.

Reliability follows the NCHS Data Presentation Standards for Proportions (Parker et al.
2017, Vital Health Stat 2(175)) and, for other statistics, NCHS's relative-standard-error
rule: an estimate is flagged when its unweighted sample size is small, when (for a
proportion) its effective sample size is small or its Korn-Graubard interval is wide in
absolute or relative terms, when its coefficient of variation is large (statistics
other than proportions), or (for review) when its degrees of freedom are few.

Suppression hides the cells of a table whose unweighted count is below a minimum
(primary suppression) and then enough other cells (complementary suppression) that no
hidden cell can be worked out from the published cells and the table's row, column
and grand totals.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import polars as pl
from scipy import stats

from . import display as _display
from .._provenance import Provenance
from ..design.stages import first_stage_counts
from ..exceptions import EstimationError, ShapeError
from .._frames import OUTSIDE, domain_codes
from ..io.serialize import Serializable, stored_value

if TYPE_CHECKING:
    from ..protocols import EstimateTable

#: What each flag means (the ``flags`` column lists the codes that apply), with the
#: thresholds of a :class:`ReliabilityRules` filled in.
FLAG_MEANINGS = {
    "n": "fewer than {r.min_n} rows",
    "neff": "effective sample size below {r.min_effective_n:g} (proportion)",
    "width": "Korn-Graubard {r.level:.0%} interval at least {r.max_width:g} wide (proportion)",
    "relwidth": "Korn-Graubard interval wider than {r.max_relative_width:.0%} of the estimate (proportion)",
    "cv": "coefficient of variation above {r.max_cv:g} (not a proportion)",
    "df": "fewer than {r.min_df:g} design degrees of freedom (review; not suppressed)",
}


@stored_value
@dataclass(frozen=True)
class ReliabilityRules:
    """Thresholds of the reliability flags (defaults: the NCHS standards).

    Parameters
    ----------
    min_n : smallest unweighted number of rows (NCHS: 30).
    min_effective_n : smallest effective sample size of a proportion, n p (1 - p) /
        var(p) times Korn and Graubard's degrees-of-freedom factor, capped at n (30).
    max_width : widest Korn-Graubard 95% interval of a proportion, absolute (0.30).
    max_relative_width : widest Korn-Graubard interval relative to the proportion, for
        intervals wider than `relative_from` (1.30, i.e. 130%).
    relative_from : intervals up to this width are never too wide relatively (0.05).
    max_cv : largest coefficient of variation (relative standard error) of a statistic
        that is not a proportion (0.30).
    min_df : fewest design degrees of freedom before an estimate is flagged for
        review (8).
    level : level of the Korn-Graubard interval (0.95).
    """

    min_n: int = 30
    min_effective_n: float = 30.0
    max_width: float = 0.30
    max_relative_width: float = 1.30
    relative_from: float = 0.05
    max_cv: float = 0.30
    min_df: float = 8.0
    level: float = 0.95


def korn_graubard(
    p: Any, var: Any, n: Any, df: Any, level: float = 0.95, *, alpha: float | None = None, nchs: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Korn and Graubard's interval of proportions p with design variances var, element
    by element: Clopper-Pearson on the effective sample size p (1 - p) / var times the
    squared ratio of t quantiles on n - 1 (n rows) and on df.  Returns (effective
    sample size, lower, upper).

    As R's ``svyciprop(method="beta")`` by default (`alpha` overrides ``1 - level``, as
    R's woodruffCI takes the alpha given).  ``nchs=True`` is NCHS's rule: the effective
    sample size capped at n, a proportion of 0 or 1 given the exact one-sided limit, and
    no t ratio where df is unknown (NaN) or n is 1.
    """
    p, var, n, df = (np.asarray(a, dtype=np.float64) for a in (p, var, n, df))
    alpha = 1 - level if alpha is None else alpha
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = (stats.t.ppf(alpha / 2, n - 1) / stats.t.ppf(alpha / 2, df)) ** 2
        n_eff = p * (1 - p) / var * factor
        if nchs:
            factor = np.where((n > 1) & np.isfinite(df) & (df > 0), factor, 1.0)
            n_eff = np.where(var > 0, np.minimum(n, p * (1 - p) / var * factor), n)
        # The beta shapes as R writes them (n.eff * p, n.eff * (1 - p) + 1), so the digits are R's.
        x, rest = n_eff * p, n_eff * (1 - p)
        low = stats.beta.ppf(alpha / 2, x, rest + 1)
        high = stats.beta.ppf(1 - alpha / 2, x + 1, rest)
        if nchs:
            low, high = np.where(x <= 0, 0.0, low), np.where(x >= n_eff, 1.0, high)
    return n_eff, low, high


def flags(est: EstimateTable, rules: ReliabilityRules | None = None, proportion: bool | None = None) -> pd.DataFrame:
    """Reliability of each estimate; see :meth:`sscoverage.Estimates.flags`."""
    rules = rules or ReliabilityRules()
    t = est.table
    n = t["n"].to_numpy(dtype=np.float64) if "n" in t else np.full(len(t), np.nan)
    estimate = t["estimate"].to_numpy(dtype=np.float64)
    se = t["se"].to_numpy(dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        cv = se / np.abs(estimate)
    df = domain_df(est)
    if proportion is None:
        proportion = est.statistic.startswith(("mean", "proportion"))
    is_prop = proportion & (estimate >= 0) & (estimate <= 1)
    n_eff = np.full(len(t), np.nan)
    kg = np.full((len(t), 2), np.nan)
    sel = is_prop & np.isfinite(se) & (n > 0)
    n_eff[sel], kg[sel, 0], kg[sel, 1] = korn_graubard(estimate[sel], se[sel] ** 2, n[sel], df[sel], rules.level,
                                                       nchs=True)
    width = kg[:, 1] - kg[:, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = width / estimate
    checks = {
        "n": n < rules.min_n,
        "neff": is_prop & (n_eff < rules.min_effective_n),
        "width": is_prop & (width >= rules.max_width),
        "relwidth": is_prop & (width > rules.relative_from) & (relative > rules.max_relative_width),
        "cv": ~is_prop & (cv > rules.max_cv),
        "df": df < rules.min_df,
    }
    codes = [", ".join(code for code, hit in checks.items() if hit[i]) for i in range(len(t))]
    keys = [c for c in [*est.by, "variable", "level", "quantile"] if c in t]
    out = t[keys].copy()
    out["n"] = n
    out["df"] = df
    out["effective_n"] = n_eff
    out["kg_low"], out["kg_high"] = kg[:, 0], kg[:, 1]
    out["cv"] = cv
    out["flags"] = codes
    out["suppress"] = np.any([hit for code, hit in checks.items() if code != "df"], axis=0)
    return out


def legend(codes: Any, rules: ReliabilityRules | None = None) -> list[str]:
    """Footer lines explaining the flag codes that occur in `codes` (strings)."""
    rules = rules or ReliabilityRules()
    used = {c for text in codes for c in str(text).split(", ") if c}
    return [f"flag {code}: {meaning.format(r=rules)}" for code, meaning in FLAG_MEANINGS.items() if code in used]


def domain_df(est: EstimateTable) -> np.ndarray:
    """Design degrees of freedom of each estimate's domain: PSUs with rows in the domain
    minus strata with rows in it (NCHS's rule; R's ``degf`` of the domain's subset).

    From the design the estimate was asked of (its provenance); a replicate design's
    own degrees of freedom; stored numbers after :func:`sscoverage.load`; else the
    Estimates' ``df`` (NaN for normal intervals).
    """
    prov: Provenance | None = est.provenance
    n = len(est.table)
    if prov is None:
        return np.full(n, np.nan if est.df is None else float(est.df))
    design = prov.design
    if isinstance(design, Mapping):
        stored = design.get("domain_df")
        return np.asarray(stored, dtype=np.float64) if stored is not None else np.full(n, float(design["degf"]))
    by = prov.options.get("by")
    if design.is_replicate or design.frame is None or by is None or not est.by:
        # Replicate designs have one df (their replicate weights' rank); a design without
        # its rows in memory (streamed) only its own.
        return np.full(n, float(design.degf))
    names, coded, codes, n_domains, rows = _domains(design, by)
    n_psu, n_strata = first_stage_counts(design, rows, codes, n_domains)
    return (n_psu - n_strata)[_row_domains(est.table, names, coded)].astype(np.float64)


def _domains(design: Any, by: Any) -> tuple[list[str], list[Any], np.ndarray, int, np.ndarray]:
    """The `by` columns' names and codes, each row's domain code, the number of codes,
    and the rows that count: in the design's scope, of non-zero weight, in a domain."""

    names, coded = design.by_columns(by)
    codes, n_domains = domain_codes(coded, design.n_rows)
    rows = design.in_subset() & (design.weights != 0) & (codes != OUTSIDE)
    for c in coded:
        if c.missing is not None:
            rows &= ~c.missing
    return names, coded, codes, n_domains, rows


def _row_domains(table: pd.DataFrame, names: list[str], coded: list[Any]) -> np.ndarray:
    """The domain code of each row of an estimates table, from its by labels (first
    column slowest, as the design numbers them)."""
    domain = np.zeros(len(table), np.int64)
    for name, c in zip(names, coded):
        lookup = {label: k for k, label in enumerate(c.labels)}
        domain = domain * len(c.labels) + table[name].map(lookup).to_numpy(dtype=np.int64)
    return domain


def cell_counts(est: EstimateTable) -> np.ndarray:
    """The unweighted number of rows behind each estimate: the domain's rows (``n``), or
    for a level of a factor the domain's rows at that level.

    Raises
    ------
    EstimationError : factor levels of estimates without their design (loaded from JSON).
    """
    t = est.table
    if t["level"].isna().all():
        return t["n"].to_numpy(dtype=np.float64)
    prov: Provenance | None = est.provenance
    if prov is None or isinstance(prov.design, Mapping) or prov.design.frame is None:
        raise EstimationError(
            "the rows at each factor level are counted in the design's data, which these estimates "
            "do not carry (loaded, or streamed): suppress them where they were estimated"
        )
    design = prov.design
    names, coded, codes, n_domains, rows = _domains(design, prov.options.get("by"))
    domain = _row_domains(t, names, coded)
    out = np.zeros(len(t))
    for variable in pd.unique(t["variable"]):
        c = design.frame.codes(variable, "outcome")
        k = len(c.labels)
        used = rows if c.missing is None else rows & ~c.missing
        counts = np.bincount(codes[used].astype(np.int64) * k + c.codes[used], minlength=n_domains * k)
        mine = (t["variable"] == variable).to_numpy()
        level = t.loc[mine, "level"].map({label: j for j, label in enumerate(c.labels)}).to_numpy(dtype=np.int64)
        out[mine] = counts[domain[mine] * k + level]
    return out


# ---------------------------------------------------------------------------- suppression
@dataclass(frozen=True)
class SuppressedTable(Serializable):
    """A table ready for publication, with its suppressed cells hidden.

    ``table`` holds the values with suppressed cells missing (NaN), and the row and
    column totals of the full table when asked for; ``status`` says for each cell
    ``"primary"`` (below the minimum count), ``"complementary"`` (hidden to protect
    another) or ``""`` (published).
    """

    table: pd.DataFrame
    status: pd.DataFrame
    min_count: int
    notes: list[str] = field(default_factory=list)

    def to_pandas(self) -> pd.DataFrame:
        """The published values, suppressed cells NaN (a copy of ``table``)."""
        return self.table.copy()

    def to_polars(self) -> pl.DataFrame:
        """:meth:`to_pandas` as a polars DataFrame, the row labels as a column."""
        return pl.from_pandas(self.table.reset_index())

    def _shown(self) -> pd.DataFrame:
        """Values as text, ``x`` where suppressed (the usual statistical-office mark)."""
        shown = self.table.map(lambda v: "" if pd.isna(v) else _display.number(v))
        return shown.mask(self.status.reindex_like(shown).fillna("") != "", "x")

    def _lines(self) -> tuple[list[str], list[str]]:
        primary = int((self.status == "primary").to_numpy().sum())
        complementary = int((self.status == "complementary").to_numpy().sum())
        header = [f"Table for publication: cells with fewer than {self.min_count} rows suppressed"]
        footer = [f"x: suppressed ({primary} below the minimum count, {complementary} to protect them)", *self.notes]
        return header, footer

    def __repr__(self) -> str:
        header, footer = self._lines()
        return _display.text(header, self._shown(), footer, index=True)

    def _repr_html_(self) -> str:
        header, footer = self._lines()
        return _display.to_html(header, self._shown(), footer, index=True)


def suppress(
    values: pd.DataFrame | pd.Series,
    counts: pd.DataFrame | pd.Series,
    min_count: int = 30,
    margins: bool = False,
) -> SuppressedTable:
    """Primary and complementary cell suppression of a one- or two-way table.

    Parameters
    ----------
    values : the table to publish: a DataFrame (rows x columns) or a Series (one way).
    counts : the unweighted number of rows behind each cell, same shape and labels.
    min_count : cells with 0 < count < `min_count` are suppressed (primary); empty
        cells (count 0) are published, since they reveal no one.
    margins : add the row and column totals (sums of the full table) and the grand
        total, for additive tables (counts, totals).

    Returns
    -------
    SuppressedTable

    Notes
    -----
    The published totals are taken to be the sums of the full table: its row totals
    and column totals (two-way) or grand total (one-way).  A hidden cell can be worked
    out from them exactly when, in the graph whose vertices are the rows and columns
    and whose edges are the hidden cells, its edge lies on no cycle (a one-way table:
    its row is the only hidden cell of the line).  So each hidden cell that lies on no
    cycle gets one: the cheapest path between its row and column through the other
    cells, where hidden cells cost nothing and published ones their count, is hidden
    too.  Cells with a count of 0 are never used, since a published zero would be
    known.  For non-additive statistics (means, proportions) apply the pattern found on
    the counts of the same table.

    Raises
    ------
    ShapeError : `values` and `counts` differ in shape or labels.
    EstimationError : a suppressed cell cannot be protected (no other cell with rows
        can be hidden with it, e.g. a table of one cell).
    """
    one_way = isinstance(values, pd.Series)
    v = values.to_frame().T if one_way else values
    c = counts.to_frame().T if isinstance(counts, pd.Series) else counts
    if v.shape != c.shape or not (v.index.equals(c.index) and v.columns.equals(c.columns)):
        raise ShapeError("values and counts must have the same rows and columns")
    count = c.to_numpy(dtype=np.float64)
    primary = (count > 0) & (count < min_count)
    hidden = _complement(count, primary, column_totals=not one_way)
    status = np.where(primary, "primary", np.where(hidden & ~primary, "complementary", ""))
    table = v.astype(np.float64).mask(hidden)
    status_frame = pd.DataFrame(status, index=v.index, columns=v.columns)
    if margins:
        full = v.to_numpy(dtype=np.float64)
        table["Total"] = full.sum(axis=1)
        if not one_way:
            table.loc["Total"] = [*full.sum(axis=0), full.sum()]
        status_frame = status_frame.reindex(index=table.index, columns=table.columns, fill_value="")
    if one_way:
        table, status_frame = table.T, status_frame.T
    return SuppressedTable(table, status_frame, int(min_count))


def _complement(count: np.ndarray, primary: np.ndarray, column_totals: bool) -> np.ndarray:
    """The hidden cells: the primary ones and the complementary cells that put each of
    them on a cycle of hidden cells (see :func:`suppress`)."""
    n_rows, n_cols = count.shape
    # Vertices: rows 0..n_rows-1, then columns; without published column totals every
    # column is one vertex (the one-way table's cells are parallel edges of its row).
    ends = [(i, n_rows + (j if column_totals else 0)) for i in range(n_rows) for j in range(n_cols)]
    n_vertices = n_rows + (n_cols if column_totals else 1)
    cost = count.ravel()
    hidden = primary.ravel().copy()
    changed = True
    while changed:
        changed = False
        for e in np.flatnonzero(hidden).tolist():
            path = _cheapest_path(ends, cost, hidden, e, n_vertices)
            if path is None:
                i, j = divmod(e, n_cols)
                raise EstimationError(
                    f"cell ({i}, {j}) cannot be protected: no other cell with rows can be hidden with it"
                )
            new = [k for k in path if not hidden[k]]
            if new:
                hidden[new] = True
                changed = True
    return hidden.reshape(count.shape)


def _cheapest_path(ends: list[tuple[int, int]], cost: np.ndarray, hidden: np.ndarray, skip: int,
                   n_vertices: int) -> list[int] | None:
    """Cells on the cheapest path between the two ends of cell `skip` that avoids it
    (Dijkstra); hidden cells cost 0, cells with no rows cannot be used."""
    adjacency: list[list[tuple[int, int]]] = [[] for _ in range(n_vertices)]
    for k, (a, b) in enumerate(ends):
        if k != skip and (hidden[k] or cost[k] > 0):
            adjacency[a].append((b, k))
            adjacency[b].append((a, k))
    start, goal = ends[skip]
    best = {start: 0.0}
    via: dict[int, tuple[int, int]] = {}
    queue = [(0.0, start)]
    while queue:
        d, u = heapq.heappop(queue)
        if u == goal:
            path, node = [], goal
            while node != start:
                node, cell = via[node]
                path.append(cell)
            return path
        if d > best.get(u, np.inf):
            continue
        for w, k in adjacency[u]:
            step = d + (0.0 if hidden[k] else float(cost[k]))
            if step < best.get(w, np.inf):
                best[w] = step
                via[w] = (u, k)
                heapq.heappush(queue, (step, w))
    return None


def suppress_estimates(
    est: EstimateTable, min_count: int = 30, rows: str | None = None, columns: str | None = None,
    margins: bool | None = None,
) -> SuppressedTable:
    """Suppression of an Estimates' table; see :meth:`sscoverage.Estimates.suppress`."""
    t = est.table
    inner = "level" if t["level"].notna().any() else "variable"
    keys = [*est.by, inner] if t[inner].nunique() > 1 or not est.by else list(est.by)
    rows = rows or keys[0]
    columns = columns or next((k for k in keys if k != rows), None)
    for name in (rows, columns):
        if name is not None and name not in t:
            raise ShapeError(f"{name!r} is not a column of the estimates ({', '.join(keys)})")
    if margins is None:
        margins = est.statistic == "total"
    t = t.assign(cell_count=cell_counts(est))
    if columns is None:
        values = t.set_index(rows)["estimate"]
        counts = t.set_index(rows)["cell_count"]
    else:
        # In the estimates' order (pivot would sort the labels).
        order = {"index": t[rows].unique(), "columns": t[columns].unique()}
        values = t.pivot(index=rows, columns=columns, values="estimate").reindex(**order)
        counts = t.pivot(index=rows, columns=columns, values="cell_count").reindex(**order).fillna(0)
    return suppress(values, counts, min_count, margins)
