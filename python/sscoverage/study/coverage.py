"""The study's vocabulary on top of the generic estimators: scheme trees, population
types, lapse, profiles, contribution histories, reasons and the employment presumption.

Every number here is a composition of :meth:`Design.mean` (with ``by``),
:meth:`Design.subset` and :meth:`Design.with_columns` for derived variables: the
analyses have no variance formula of their own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
import pandas as pd
import polars as pl
from scipy import stats

from .. import _core
from .._frames import Frame
from ..exceptions import ColumnError, HistoryError, MissingValueError, SchemeTreeError, ShapeError, OptionError
from ..results.estimates import Estimates
from ..stream.batches import is_dask
from ..io.serialize import Serializable

if TYPE_CHECKING:
    from ..design.design import Design
    from ..models.survival import SurvivalCurves

#: The four population types of the study, from hukou location and hukou type.
POPULATION_TYPES = ["local_urban", "local_rural", "urban_to_urban_migrant", "rural_to_urban_migrant"]
#: The EU platform-work directive's five indicators of control, in its order.
PLATFORM_CONTROLS = [
    "control_pay_set_by_platform",
    "control_conduct_rules",
    "control_electronic_supervision",
    "control_restricted_schedule",
    "control_restricted_clients",
]
LAPSE_COLUMNS = ["lapse_pension", "lapse_medical", "lapse_both"]
#: Per-person results of the spell kernel, as it names them.
PER_PERSON = ["paid_years", "n_interruptions", "years_interrupted", "years_since_first_job", "density", "n_reentries"]
_SHOWN = ["estimate", "se", "ci_low", "ci_high", "n"]


@lru_cache(maxsize=1)
def _figures_text() -> str:
    return resources.files("sscoverage").joinpath("data", "figures.json").read_text(encoding="utf-8")


def published_figures() -> dict[str, Any]:
    """The study's published figures (WP No.212-20251117, SSL/CISS, CASS), as shipped
    with the package: Table 1, lapse, interruptions, reasons and model facts.

    Returns
    -------
    dict
        A fresh copy of ``figures.json`` (editing it changes nothing else).
    """
    return json.loads(_figures_text())


# ---------------------------------------------------------------------------- bands
@dataclass(frozen=True)
class Bands:
    """Named bands of a numeric variable, as the study tabulates them.

    Parameters
    ----------
    edges : increasing band edges (``len(labels) + 1`` of them).
    labels : one label per band.
    right : bands closed on the right, ``(a, b]``; otherwise ``[a, b)``.
    """

    edges: tuple[float, ...]
    labels: tuple[str, ...]
    right: bool = False

    def cut(self, values: Any) -> pd.Categorical:
        """The band of each value; a value outside every band is missing.

        Parameters
        ----------
        values : numbers (array-like).

        Returns
        -------
        pandas.Categorical
            The band labels, ordered as the bands.

        Examples
        --------
        >>> bands = ssc.coverage.Bands((0, 5000, np.inf), ("<5000", ">=5000"))
        >>> list(bands.cut([100, 5000, 9000]))
        ['<5000', '>=5000', '>=5000']
        """
        return pd.cut(np.asarray(values, dtype=np.float64), self.edges, right=self.right, labels=list(self.labels))


#: Age bands of the lapser profile (completed years).
AGE_BANDS = Bands((20, 30, 40, 50, 61), ("20-29", "30-39", "40-49", "50-60"))
#: Usual weekly working hours bands of the lapser profile.
HOURS_BANDS = Bands((1, 10, 25, 40, 60, np.inf), ("[1,10)", "[10,25)", "[25,40)", "[40,60)", "60+"))
#: Monthly after-tax income bands (yuan), with the study's 3,001-5,000 band of typical lapsers.
INCOME_BANDS = Bands(
    (-np.inf, 3000, 5000, 8000, 12000, np.inf),
    ("<=3000", "3001-5000", "5001-8000", "8001-12000", ">12000"),
    right=True,
)
#: Monthly employee-scheme contributions (whole yuan), with the study's 400-700 band.
EMPLOYEE_CONTRIBUTION_BANDS = Bands((0, 400, 701, np.inf), ("<400", "400-700", ">700"))
#: Yearly resident-scheme contributions (yuan), split at the study's 700.
RESIDENT_CONTRIBUTION_BANDS = Bands((0, 700, np.inf), ("<700", ">=700"))


# ---------------------------------------------------------------------------- results
@dataclass(frozen=True)
class Summary(Serializable):
    """A tidy table of design-based estimates from one of the coverage analyses.

    Columns of :meth:`to_pandas` depend on the analysis; estimates always come with
    ``se``, ``ci_low``, ``ci_high`` (at ``level``) and ``n``, the rows used.
    """

    title: str
    table: pd.DataFrame
    level: float = 0.95
    notes: tuple[str, ...] = ()

    def to_pandas(self) -> pd.DataFrame:
        """The table of estimates, a copy."""
        return self.table.copy()

    def to_polars(self) -> pl.DataFrame:
        """:meth:`to_pandas` as a polars DataFrame."""
        return pl.from_pandas(self.table)

    def _header(self) -> str:
        return "\n".join([f"{self.title} ({self.level:.0%} CI)", *self.notes])

    def __repr__(self) -> str:
        with pd.option_context("display.width", 140, "display.max_columns", 20):
            return f"{self._header()}\n{self.table.to_string(index=False)}"

    def _repr_html_(self) -> str:
        head = self._header().replace("\n", "<br>")
        body = self.table.to_html(index=False, float_format=lambda x: f"{x:.4g}")
        return f"<div><p><b>{head}</b></p>{body}</div>"

    def __len__(self) -> int:
        return len(self.table)


def _tidy(est: Estimates, **labels: Any) -> pd.DataFrame:
    """An estimator's table with the columns the summaries keep, labelled."""
    table = est.to_pandas()
    keep = [c for c in table.columns if c in est.by] + ["variable", "level", *_SHOWN]
    return table[keep].assign(**labels)


def _hits(design: "Design", values: Mapping[str, np.ndarray], by: str | None, label: str) -> pd.DataFrame:
    """Unweighted count of rows of the design's domain where each 0/1 column is 1, per
    level of `by` (``label`` names the count column); for the tables' n covered, n lapsers."""
    scope = design.in_subset()
    ones = pd.DataFrame({name: (np.asarray(v) == 1) & scope for name, v in values.items()})
    if by is None:
        return ones.sum().rename_axis("variable").reset_index(name=label)
    groups = pd.Series(np.asarray(design.frame.column(by).to_numpy()), name=by)
    counts = ones.groupby(groups, observed=True, dropna=True).sum()
    long = counts.melt(ignore_index=False, var_name="variable", value_name=label).reset_index()
    long[by] = long[by].astype(str)
    return long


# ---------------------------------------------------------------------------- scheme trees
class SchemeTree:
    """Insurance schemes where a parent is covered when any of its children is.

    A parent line is "covered by any child", not the sum of its children: a person in
    two supplementary schemes counts once.  Leaves are 0/1 (or true/false) columns of
    the data; parents are computed.  A parent with a missing child is covered if
    another child is, and missing otherwise.

    Parameters
    ----------
    children : scheme -> its child schemes, in table order.  A scheme with no children
        (an empty list), or named only as a child, is a leaf.  Schemes that are nobody's
        child are the top lines of the table, in the mapping's order.
    columns : leaf scheme -> its column in the data, where the names differ.

    Raises
    ------
    SchemeTreeError : a cycle, a scheme with two parents, or `columns` naming a scheme
        that is not a leaf.

    Examples
    --------
    >>> import sscoverage as ssc
    >>> tree = ssc.SchemeTree({"basic_pension": ["employee_pension", "resident_pension"],
    ...                        "work_injury": []})
    >>> [name for name, depth in tree.rows]
    ['basic_pension', 'employee_pension', 'resident_pension', 'work_injury']
    """

    def __init__(self, children: Mapping[str, Sequence[str]], columns: Mapping[str, str] | None = None) -> None:
        self.children = {str(k): tuple(str(c) for c in v) for k, v in children.items()}
        parent_of: dict[str, str] = {}
        for parent, kids in self.children.items():
            for kid in kids:
                if kid in parent_of:
                    raise SchemeTreeError(f"scheme {kid!r} has two parents, {parent_of[kid]!r} and {parent!r}")
                parent_of[kid] = parent
        rows: list[tuple[str, int]] = []

        def visit(name: str, depth: int) -> None:
            rows.append((name, depth))
            for kid in self.children.get(name, ()):
                visit(kid, depth + 1)

        for root in (k for k in self.children if k not in parent_of):
            visit(root, 0)
        # With one parent each, a scheme not reached from a top line sits on or below a
        # cycle: walk up its parents to name the cycle.
        seen = {name for name, _ in rows}
        for name in self.children:
            if name not in seen:
                walk = [name]
                while (up := parent_of[walk[-1]]) not in walk:
                    walk.append(up)
                cycle = walk[walk.index(up) :] + [up]
                raise SchemeTreeError(f"the scheme tree has a cycle: {' <- '.join(cycle)}")
        self.rows = rows
        self.leaves = [name for name, _ in rows if not self.children.get(name)]
        self.columns = dict(columns or {})
        stray = [k for k in self.columns if k not in self.leaves]
        if stray:
            raise SchemeTreeError(f"columns names {stray[0]!r}, which is not a leaf scheme of the tree")

    @classmethod
    def study(cls) -> "SchemeTree":
        """The study's tree: Table 1's lines, parents from ``figures.json``."""
        table1 = published_figures()["table1"]
        tree = table1["tree"]
        nested = {kid for kids in tree.values() for kid in kids}
        return cls({row: tree.get(row, []) for row in table1["rows"] if row not in nested})

    def __repr__(self) -> str:
        lines = [("  " * depth) + name for name, depth in self.rows]
        return "SchemeTree(\n  " + "\n  ".join(lines) + "\n)"

    def indicators(self, data: Any) -> dict[str, np.ndarray]:
        """0/1 coverage of every scheme (NaN where unknown), in table order.

        Parameters
        ----------
        data : a pandas / polars DataFrame (or the design's data) with the leaf columns.

        Raises
        ------
        ColumnError : a leaf's column is missing or holds values other than 0/1.
        """
        frame = data if isinstance(data, Frame) else Frame(data)
        values: dict[str, np.ndarray] = {}
        for leaf in self.leaves:
            values[leaf] = _indicator(frame, self.columns.get(leaf, leaf), f"scheme {leaf!r}")
        for name, _ in reversed(self.rows):
            kids = self.children.get(name)
            if kids:
                stacked = np.vstack([values[k] for k in kids])
                covered = (stacked == 1).any(axis=0)
                unknown = np.isnan(stacked).any(axis=0) & ~covered
                values[name] = np.where(unknown, np.nan, covered.astype(np.float64))
        return {name: values[name] for name, _ in self.rows}


def _indicator(frame: Frame, column: str, role: str) -> np.ndarray:
    """A 0/1 (or boolean) column as floats, NaN where missing."""
    if column not in frame.columns:
        raise ColumnError(f"{role}: column {column!r} is not in the data")
    col = frame.column(column)
    try:
        if isinstance(col, pl.Series):
            values = col.cast(pl.Float64).to_numpy()
        else:
            values = col.astype("Float64").to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError, pl.exceptions.PolarsError):
        raise ColumnError(f"{role}: column {column!r} must hold 0/1 or true/false, not {col.dtype}") from None
    bad = ~np.isnan(values) & (values != 0) & (values != 1)
    if bad.any():
        raise ColumnError(f"{role}: column {column!r} must hold 0/1 or true/false; found {values[bad][0]:g}")
    return np.ascontiguousarray(values)


def _tree(schemes: SchemeTree | Mapping[str, Sequence[str]] | None) -> SchemeTree:
    if schemes is None:
        return SchemeTree.study()
    if not isinstance(schemes, (SchemeTree, Mapping)):
        raise OptionError(f"schemes={schemes!r}: give a SchemeTree or a dict parent -> [children], as "
                          "{'basic_pension': ['employee_pension', 'resident_pension']}")
    return schemes if isinstance(schemes, SchemeTree) else SchemeTree(schemes)


# ---------------------------------------------------------------------------- Table 1
@dataclass(frozen=True, repr=False)
class CoverageTable(Summary):
    """Coverage rates by scheme (tree order) for everyone and each group: Table 1.

    ``to_pandas()`` is long (one row per scheme and group: ``group``, ``scheme``,
    ``depth``, ``estimate``, ``se``, ``ci_low``, ``ci_high``, ``n`` (rows used) and
    ``n_covered`` (unweighted rows covered)); :meth:`wide` is the paper's layout.
    """

    groups: tuple[str, ...] = ()

    def wide(self, value: str = "estimate") -> pd.DataFrame:
        """One row per scheme (tree order), one column per group ("all" first).

        Parameters
        ----------
        value : the cell: ``"estimate"``, ``"se"``, ``"ci_low"``, ``"ci_high"`` or ``"n"``.
        """
        if value not in _SHOWN:
            raise OptionError(f"value={value!r}; use one of {', '.join(_SHOWN)}")
        wide = self.table.pivot(index="scheme", columns="group", values=value)
        return wide.loc[self.table["scheme"].unique(), list(self.groups)].rename_axis(columns=None)

    def compare(self, published: Mapping[str, Any] | None = None) -> pd.DataFrame:
        """Estimates beside published rates: the long table with ``published`` and
        ``difference`` (estimate - published); NaN where nothing was published.

        Parameters
        ----------
        published : ``{"groups": [...], "rows": {scheme: [rate per group]}}``; default
            the study's Table 1.
        """
        published = published or published_figures()["table1"]
        known = {
            (scheme, group): rate
            for scheme, rates in published["rows"].items()
            for group, rate in zip(published["groups"], rates)
        }
        out = self.table.copy()
        out["published"] = [known.get(key, np.nan) for key in zip(out["scheme"], out["group"])]
        out["difference"] = out["estimate"] - out["published"]
        return out

    def formatted(self) -> pd.DataFrame:
        """The paper's layout as text: percent rate and interval per cell, schemes
        indented by depth, and a last row of counts."""
        t = self.table
        text = [
            f"{100 * e:.1f} ({100 * lo:.1f}-{100 * hi:.1f})" for e, lo, hi in zip(t["estimate"], t["ci_low"], t["ci_high"])
        ]
        cells = t.assign(cell=text).pivot(index="scheme", columns="group", values="cell")
        order = t.drop_duplicates("scheme")
        cells = cells.loc[order["scheme"], list(self.groups)]
        cells.index = ["  " * d + s for s, d in zip(order["scheme"], order["depth"])]
        counts = t.drop_duplicates("group").set_index("group")["n"]
        cells.loc["n"] = [f"{counts[g]:,}" for g in self.groups]
        return cells.rename_axis(index=None, columns=None)

    def __repr__(self) -> str:
        with pd.option_context("display.width", 200, "display.max_columns", 20):
            return f"{self._header()}\nrate % ({self.level:.0%} CI)\n{self.formatted().to_string()}"

    def _repr_html_(self) -> str:
        head = self._header().replace("\n", "<br>")
        return f"<div><p><b>{head}</b></p>{self.formatted().to_html()}</div>"

    def plot(self, ax: Any = None, lang: str = "en") -> Any:
        """Horizontal dots with intervals: one row per scheme, one colour per
        population group, on a % axis; see :func:`sscoverage.plots.coverage_table`.

        Parameters
        ----------
        ax : matplotlib Axes to draw on; None: a new figure.
        lang : language of the labels, ``"en"`` or ``"zh"``.

        Returns
        -------
        matplotlib.axes.Axes
        """
        from ..results.plots import coverage_table

        return coverage_table(self, ax, lang)


def coverage_table(
    design: "Design",
    schemes: SchemeTree | Mapping[str, Sequence[str]] | None = None,
    by: str | None = "population_type",
    level: float = 0.95,
    df: float | str | None = None,
    na_rm: bool = False,
) -> CoverageTable:
    """Coverage rate of every scheme, for everyone and by group: the study's Table 1.

    Parameters
    ----------
    design : the survey design.
    schemes : a :class:`SchemeTree` (or the mapping it takes); default the study's.
    by : the group column (default ``"population_type"``); None for everyone only.
    level, df : interval level and degrees of freedom, as :meth:`Design.mean`.
    na_rm : leave out rows with a missing scheme (from every rate, so the rates share
        their rows); otherwise a missing value is an error naming the scheme.

    Returns
    -------
    CoverageTable
        Rates with SE, CI and n; a group column's missing values are in "all" only,
        and a note says how many there are.

    Examples
    --------
    >>> import sscoverage as ssc
    >>> survey = ssc.datasets.coverage_survey()
    >>> table = ssc.coverage_table(survey.design())
    >>> round(float(table.wide().loc["basic_pension", "all"]), 2)
    0.92
    """
    tree = _tree(schemes)
    indicators = tree.indicators(design.frame)
    derived = design.with_columns(indicators)
    names = list(indicators)
    depth = dict(tree.rows)
    everyone = _tidy(derived.mean(names, na_rm=na_rm, level=level, df=df), group="all")
    parts = [everyone.merge(_hits(design, indicators, None, "n_covered"), on="variable")]
    notes: list[str] = []
    groups = ["all"]
    if by is not None:
        est = derived.mean(names, by=by, na_rm=na_rm, level=level, df=df)
        notes.extend(est.notes)
        part = _tidy(est)
        part[by] = part[by].astype(str)
        part = part.merge(_hits(design, indicators, by, "n_covered"), on=[by, "variable"], how="left")
        part["group"] = part.pop(by)
        groups.extend(part["group"].unique())
        parts.append(part)
    table = pd.concat(parts, ignore_index=True).rename(columns={"variable": "scheme"}).drop(columns="level")
    table["depth"] = table["scheme"].map(depth)
    table = table[["group", "scheme", "depth", *_SHOWN, "n_covered"]]
    title = "Coverage by scheme" + (f" and {by}" if by else "")
    return CoverageTable(title=title, table=table, level=level, notes=tuple(notes), groups=tuple(groups))


# ---------------------------------------------------------------------------- population types
@dataclass(frozen=True)
class PopulationTypes:
    """Population type of each person and what could not be classified.

    Attributes
    ----------
    values : categorical Series (levels :data:`POPULATION_TYPES`), missing where unknown.
    unknown : one row per reason a person is unclassified, with the count.
    """

    values: pd.Series
    unknown: pd.DataFrame

    def __repr__(self) -> str:
        counts = self.values.value_counts(sort=False).to_string()
        lines = [f"Population types of {len(self.values)} persons", counts]
        lines += [f"unknown: {r.count} ({r.reason})" for r in self.unknown.itertuples()]
        return "\n".join(lines)


def population_type(
    data: Any,
    hukou_county: str = "hukou_county",
    residence_county: str = "residence_county",
    hukou_type: str = "hukou_type",
    urban: Sequence[Any] = ("non_agricultural", "urban"),
    rural: Sequence[Any] = ("agricultural", "rural"),
    local: str | None = None,
    local_values: Sequence[Any] = (1, True, "yes", "local"),
) -> PopulationTypes:
    """The study's four population types from hukou location and hukou type.

    Local when the hukou county is the county of residence, migrant otherwise; urban or
    rural (agricultural) by hukou type: local urban, local rural, urban-to-urban
    migrant, rural-to-urban migrant.  Nothing is guessed: a person with a missing county
    or an unrecognised hukou type is left unclassified and counted in ``unknown``.
    Surveys that ask "is your hukou in this county?" give `local` instead of the two
    county columns.

    Parameters
    ----------
    data : pandas or polars DataFrame.
    hukou_county, residence_county, hukou_type : column names.
    urban, rural : the hukou-type values meaning urban (non-agricultural) and rural.
    local : a column saying whether the hukou county is the county of residence; when
        given, the two county columns are not used.
    local_values : the values of `local` meaning local; any other known value means
        migrant, a missing one unknown.

    Returns
    -------
    PopulationTypes
        ``values`` (add it to the data as the ``by`` column) and ``unknown``.
    """
    frame = Frame(data)
    cols = {}
    roles = {"hukou_type": hukou_type}
    roles.update({"local": local} if local is not None else {"hukou_county": hukou_county, "residence_county": residence_county})
    for role, name in roles.items():
        if name not in frame.columns:
            raise ColumnError(f"{role}: column {name!r} is not in the data")
        col = frame.column(name)
        cols[role] = col.to_pandas() if isinstance(col, pl.Series) else col.reset_index(drop=True)
    kind = cols["hukou_type"]
    if local is None:
        home, here = cols["hukou_county"], cols["residence_county"]
        located = (home.notna() & here.notna()).to_numpy()
        is_local = located & (home.to_numpy() == here.to_numpy())
        missing_reason = "hukou or residence county missing"
    else:
        located = cols["local"].notna().to_numpy()
        is_local = located & cols["local"].isin(list(local_values)).to_numpy()
        missing_reason = f"{local} missing"
    is_urban, is_rural = kind.isin(list(urban)).to_numpy(), kind.isin(list(rural)).to_numpy()
    code = np.where(is_local, 0, 2) + is_rural
    known = located & (is_urban | is_rural)
    values = pd.Series(pd.Categorical.from_codes(np.where(known, code, -1), POPULATION_TYPES), name="population_type")
    if isinstance(data, pd.DataFrame):
        values.index = data.index
    unknown = [(missing_reason, int((~located).sum()))]
    odd = kind[~(is_urban | is_rural)]
    for value, count in odd.value_counts(dropna=False).items():
        what = "missing" if pd.isna(value) else f"{value!r}, neither urban nor rural"
        unknown.append((f"hukou type {what}", int(count)))
    table = pd.DataFrame(unknown, columns=["reason", "count"])
    return PopulationTypes(values=values, unknown=table[table["count"] > 0].reset_index(drop=True))


# ---------------------------------------------------------------------------- lapse
def lapse_indicators(
    data: Any,
    schemes: SchemeTree | Mapping[str, Sequence[str]] | None = None,
    pension: str = "basic_pension",
    medical: str = "basic_medical",
    target: Any = None,
) -> pd.DataFrame:
    """Lapse ("should be insured, is not") indicators: pension, medical and both.

    Parameters
    ----------
    data : pandas / polars DataFrame with the scheme tree's leaf columns.
    schemes : the scheme tree; default the study's.
    pension, medical : the schemes whose absence is a lapse (default the basic ones).
    target : boolean mask of the target population (who should be insured); outside it
        the indicators are missing.  Default everyone.

    Returns
    -------
    pandas.DataFrame
        ``lapse_pension``, ``lapse_medical``, ``lapse_both`` (0/1, NaN where unknown).
    """
    frame = data if isinstance(data, Frame) else Frame(data)
    coverage = _tree(schemes).indicators(frame)
    for role, name in (("pension", pension), ("medical", medical)):
        if name not in coverage:
            raise SchemeTreeError(f"{role} scheme {name!r} is not in the scheme tree")
    lapse_p, lapse_m = 1 - coverage[pension], 1 - coverage[medical]
    both = np.where((lapse_p == 0) | (lapse_m == 0), 0.0, lapse_p * lapse_m)
    out = pd.DataFrame(dict(zip(LAPSE_COLUMNS, (lapse_p, lapse_m, both))))
    if target is not None:
        out[~frame.mask(target, "target")] = np.nan
    return out


def lapse_rates(
    design: "Design",
    subgroups: Mapping[str, Any] | None = None,
    by: str | None = None,
    schemes: SchemeTree | Mapping[str, Sequence[str]] | None = None,
    level: float = 0.95,
    df: float | str | None = None,
) -> Summary:
    """Lapse rates (pension, medical, both) in named subgroups, optionally by a column.

    Parameters
    ----------
    design : the survey design.
    subgroups : name -> subset (a boolean mask or a ``{"column", "op", "value"}``
        condition, as :meth:`Design.subset`); default everyone.
    by : a column to split each subgroup by.
    schemes : the scheme tree; default the study's.
    level, df : as :meth:`Design.mean`.

    Returns
    -------
    Summary
        One row per subgroup (x by-level) and indicator, with ``n`` (rows used) and
        ``n_lapsers`` (unweighted rows lapsed).

    Raises
    ------
    EmptyDomainError : a subgroup holds no rows.
    """
    indicators = lapse_indicators(design.frame, schemes)
    derived = design.with_columns(indicators)
    values = {c: indicators[c].to_numpy() for c in LAPSE_COLUMNS}
    parts = []
    for name, rows in (subgroups or {"all": None}).items():
        sub = derived if rows is None else derived.subset(rows)
        part = _tidy(sub.mean(LAPSE_COLUMNS, by=by, level=level, df=df), subgroup=name)
        if by is not None:
            part[by] = part[by].astype(str)
        parts.append(part.merge(_hits(sub, values, by, "n_lapsers"), on=[*([by] if by else []), "variable"], how="left"))
    table = pd.concat(parts, ignore_index=True).drop(columns="level")
    first = ["subgroup", *([by] if by else [])]
    return Summary("Lapse rates", table[first + [c for c in table.columns if c not in first]], level)


def profile(
    design: "Design",
    subgroup: Any = None,
    categorical: Sequence[str] = (),
    continuous: Sequence[str] = (),
    level: float = 0.95,
    df: float | str | None = None,
) -> Summary:
    """Profile of a subgroup: shares of categorical traits and means of continuous ones.

    Each variable uses the rows of the subgroup where it is known (a note counts the
    others); the subgroup stays a domain of the whole design, so the SEs are
    design-based.

    Parameters
    ----------
    design : the survey design.
    subgroup : boolean mask or ``{"column", "op", "value"}`` condition; None = everyone.
    categorical : columns whose level shares are wanted (numeric ones are treated as
        categories).
    continuous : numeric columns whose means are wanted.
    level, df : as :meth:`Design.mean`.

    Returns
    -------
    Summary
        ``variable``, ``kind`` (share / mean), ``level``, ``estimate``, ``se``,
        ``ci_low``, ``ci_high``, ``n`` (rows used) and, for shares, ``n_level`` (the
        unweighted rows at the level).

    Examples
    --------
    >>> import sscoverage as ssc
    >>> survey = ssc.datasets.coverage_survey()
    >>> lapsers = survey.persons.employee_pension + survey.persons.resident_pension == 0
    >>> prof = ssc.profile(survey.design(), lapsers, ["sex"], ["age"])
    >>> prof.to_pandas()["variable"].tolist()
    ['sex', 'sex', 'age']
    """
    if not categorical and not continuous:
        raise OptionError("name at least one categorical or continuous column")
    frame = design.frame
    as_factors = {name: pd.Categorical(frame.column(name)) for name in categorical if not frame.is_factor(name)}
    sub = design.with_columns(as_factors) if as_factors else design
    sub = sub if subgroup is None else sub.subset(subgroup)
    parts, notes = [], []
    scope = sub.in_subset()
    for kind, names in (("share", categorical), ("mean", continuous)):
        for name in names:
            est = sub.mean(name, na_rm=True, level=level, df=df)
            if est.n_removed:
                notes.append(f"{name}: {est.n_removed} rows with a missing value left out")
            part = _tidy(est, kind=kind)
            if kind == "share":
                values = pd.Series(np.asarray(frame.column(name).to_numpy(), dtype=object)[scope]).astype(str)
                part["n_level"] = part["level"].astype(str).map(values.value_counts()).fillna(0).astype(int)
            parts.append(part)
    table = pd.concat(parts, ignore_index=True)
    table["n_level"] = (table["n_level"] if "n_level" in table else pd.Series(np.nan, index=table.index)).astype("Int64")
    table = table[["variable", "kind", "level", *_SHOWN, "n_level"]]
    return Summary("Profile", table, level, tuple(notes))


# ---------------------------------------------------------------------------- reasons
@dataclass(frozen=True, repr=False)
class ReasonRanking(Summary):
    """Shares choosing each reason, ranked, and the test that the top two differ.

    ``top_two``: ``first``, ``second``, ``difference``, ``se``, ``t``, ``df``,
    ``p_value`` (two-sided, t on the design degrees of freedom).
    """

    top_two: dict[str, Any] = field(default_factory=dict)

    def _header(self) -> str:
        t = self.top_two
        test = (
            f"top two differ by {t['difference']:.4f} (se {t['se']:.4f}, t = {t['t']:.2f} on "
            f"{t['df']:g} df, p = {t['p_value']:.3g})"
        )
        return "\n".join([super()._header(), test])


def reasons(
    design: "Design",
    columns: Sequence[str],
    subgroup: Any = None,
    level: float = 0.95,
) -> ReasonRanking:
    """Ranked shares of a multiple-response question, with a test that the top two differ.

    The people asked are the rows where any of the reason columns is known (and, with
    `subgroup`, in it); each reason is a 0/1 column.  The difference of the top two
    shares is tested with their joint design-based covariance (they come from the same
    people, so they are correlated).

    Parameters
    ----------
    design : the survey design.
    columns : one 0/1 column per reason.
    subgroup : boolean mask or ``{"column", "op", "value"}`` condition.
    level : interval level.

    Returns
    -------
    ReasonRanking
        ``rank``, ``reason``, ``estimate``, ``se``, ``ci_low``, ``ci_high``, ``n``;
        ``top_two`` holds the test.

    Raises
    ------
    MissingValueError : a person asked has a missing answer to one reason.
    """
    if len(columns) < 2:
        raise OptionError("a ranking needs at least two reason columns")
    answers = {name: _indicator(design.frame, name, "reason") for name in columns}
    asked = ~np.all(np.isnan(np.column_stack(list(answers.values()))), axis=1)
    sub = design.with_columns(answers).subset(asked)
    if subgroup is not None:
        sub = sub.subset(subgroup)
    est = sub.mean(list(columns), level=level)
    table = _tidy(est).drop(columns="level").rename(columns={"variable": "reason"})
    order = np.argsort(-table["estimate"].to_numpy(), kind="stable")
    table = table.iloc[order].reset_index(drop=True)
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    i, j = order[:2]
    vcov = est.vcov[0]
    diff = est.estimate[i] - est.estimate[j]
    se = float(np.sqrt(vcov[i, i] + vcov[j, j] - 2 * vcov[i, j]))
    df = float(sub.degf)
    t = diff / se
    top_two = {
        "first": columns[i],
        "second": columns[j],
        "difference": float(diff),
        "se": se,
        "t": float(t),
        "df": df,
        "p_value": float(2 * stats.t.sf(abs(t), df)),
    }
    return ReasonRanking("Reasons, ranked", table, level, (), top_two)


# ---------------------------------------------------------------------------- presumption
def employment_presumption(
    data: Any, indicators: Sequence[str] = PLATFORM_CONTROLS, threshold: int = 2
) -> pd.DataFrame:
    """The EU platform-work directive's presumption of employment: `threshold` (two) of
    the five indicators of control.

    A person meeting `threshold` indicators is presumed an employee even if others are
    unknown; one whose met and unknown indicators together fall short is not; anyone
    in between is undetermined (missing).  People not asked (every indicator missing)
    have missing values.

    Parameters
    ----------
    data : pandas / polars DataFrame with one 0/1 column per indicator.
    indicators : the indicator columns (default :data:`PLATFORM_CONTROLS`).
    threshold : how many indicators presume employment.

    Returns
    -------
    pandas.DataFrame
        ``n_indicators`` (indicators met) and ``presumed`` (0/1).
    """
    frame = data if isinstance(data, Frame) else Frame(data)
    x = np.column_stack([_indicator(frame, c, "indicator") for c in indicators])
    met = (x == 1).sum(axis=1).astype(np.float64)
    unknown = np.isnan(x).sum(axis=1)
    presumed = np.where(met >= threshold, 1.0, np.where(met + unknown < threshold, 0.0, np.nan))
    asked = unknown < len(indicators)
    return pd.DataFrame({"n_indicators": np.where(asked, met, np.nan), "presumed": np.where(asked, presumed, np.nan)})


def presumed_coverage(
    design: "Design",
    scheme: str = "basic_pension",
    indicators: Sequence[str] = PLATFORM_CONTROLS,
    threshold: int = 2,
    schemes: SchemeTree | Mapping[str, Sequence[str]] | None = None,
    level: float = 0.95,
) -> Estimates:
    """Coverage of people who would, or would not, be presumed employees.

    Among the people asked the indicators (with a determined presumption), the rate of
    `scheme` by ``employment_presumed`` ("presumed" / "not presumed").

    Parameters
    ----------
    design : the survey design.
    scheme : the scheme whose coverage is estimated (a node of the scheme tree).
    indicators, threshold : as for :func:`employment_presumption`.
    schemes : the scheme tree; default the study's.
    level : interval level.

    Returns
    -------
    Estimates
        As :meth:`Design.mean` with ``by="employment_presumed"``.
    """
    frame = design.frame
    presumed = employment_presumption(frame, indicators, threshold)["presumed"].to_numpy()
    coverage = _tree(schemes).indicators(frame)
    if scheme not in coverage:
        raise SchemeTreeError(f"scheme {scheme!r} is not in the scheme tree")
    codes = np.where(np.isnan(presumed), -1, presumed).astype(int)
    label = pd.Categorical.from_codes(codes, ["not presumed", "presumed"])
    derived = design.with_columns({scheme: coverage[scheme], "employment_presumed": label})
    return derived.subset(~np.isnan(presumed)).mean(scheme, by="employment_presumed", level=level)


# ---------------------------------------------------------------------------- histories
@dataclass(frozen=True)
class Histories:
    """Interruption spells of contribution histories.

    Attributes
    ----------
    persons : one row per person of the person table, in its order: the person id,
        ``first_contribution_year``, ``paid_years``, ``n_interruptions``,
        ``years_interrupted``, ``years_since_first_job``, ``density`` (years interrupted
        / years since first job), ``n_reentries``, ``ever_interrupted`` and ``reentered``
        (0/1).
    spells : one row per interruption: person id, ``start_year``, ``years``,
        ``end_year`` (last year without a contribution), ``reentered``.
    survey_year : the last year of every history.

    From Dask DataFrames (see :func:`contribution_histories`), `persons` and `spells`
    are lazy Dask DataFrames ordered by person id; :meth:`compute` brings them into memory.
    """

    persons: pd.DataFrame
    spells: pd.DataFrame
    survey_year: int

    def compute(self) -> "Histories":
        """The histories in memory (pandas, index 0..n-1): computes both tables of the
        Dask path in one go, so the records are shuffled once; in memory already, itself."""
        if not is_dask(self.persons):
            return self
        import dask

        persons, spells = dask.compute(self.persons, self.spells)
        return Histories(persons.reset_index(drop=True), spells.reset_index(drop=True), self.survey_year)


def contribution_histories(
    records: Any,
    persons: Any,
    person: str = "person_id",
    year: str = "year",
    contributed: str = "contributed",
    first_job: str = "first_job_year",
    survey_year: int | None = None,
) -> Histories:
    """Interruption spells from person-year contribution records (computed in Rust).

    A history runs from a person's first-job year to the survey year; a year without a
    record counts as a year without a contribution.  An interruption is a maximal run
    of years without a contribution after the first paid year; it ends in re-entry when
    the person pays again, otherwise it lasts to the survey year.

    Data beyond one machine: if `records` or `persons` is a Dask DataFrame (the other
    may be in memory), both tables are partitioned by person id with Dask's own shuffle
    (``set_index``: range partitions of person ids, so a person's records and person row
    meet in one partition) and the same kernel runs on each partition
    (``map_partitions``).  The histories are then lazy Dask DataFrames, ordered by
    person id (spells by person id, then start year), with the numbers of the in-memory
    path whatever the partitioning: a table with a row per person may not fit in the
    client's memory, and stays where the data is.  ``histories.compute()`` brings both
    tables into memory (one shuffle for the two; ``dask.persist`` them to keep them on
    the workers); it equals the in-memory result sorted by person id.  A person's
    records keep their order in the Dask DataFrame (partition by partition), so the
    errors below are the same, but raised when the tables are computed; a missing or
    non-numeric column is raised at once, and the default survey year costs a pass
    over the years (give `survey_year` to skip it).

    Parameters
    ----------
    records : person-year table (pandas / polars / Dask) with `person`, `year`,
        `contributed`; a person's records in time order.
    persons : person table (pandas / polars / Dask) with `person` and `first_job`;
        results follow its rows (in memory) or person ids (Dask).
    person, year, contributed, first_job : column names.
    survey_year : last year of the histories; default the latest year recorded.

    Returns
    -------
    Histories
        Of pandas DataFrames, or of Dask DataFrames when either input is one.

    Raises
    ------
    HistoryError : naming the person: no first-job year, a year recorded twice or out of
        order, a record before the first job or after the survey year, a record of a
        person not in the person table.
    ColumnError : naming a column missing from a table, or of the wrong type.
    """
    if is_dask(records) or is_dask(persons):
        return _dask_histories(records, persons, person, year, contributed, first_job, survey_year)
    recs, people = Frame(records), Frame(persons)
    ids = pd.Index(_plain(people, person))
    if not ids.is_unique:
        raise ShapeError(f"person ids in column {person!r} of the person table repeat: {ids[ids.duplicated()][0]!r}")
    record_ids = _plain(recs, person)
    code = ids.get_indexer(record_ids)
    if (code < 0).any():
        stranger = record_ids[np.argmax(code < 0)]
        raise HistoryError(f"person {stranger!r} has contribution records but is not in the person table")
    years = _whole(recs, year)
    paid = _indicator(recs, contributed, "contributed")
    if np.isnan(paid).any():
        raise MissingValueError(f"column {contributed!r} has {int(np.isnan(paid).sum())} missing values")
    survey_year = int(years.max()) if survey_year is None else int(survey_year)
    try:
        out = _core.interruption_spells(
            code.astype(np.uint32), years, paid == 1, people.numeric(first_job, "first-job year"), survey_year
        )
    except HistoryError as err:
        _, who, reason = err.args
        raise HistoryError(f"person {ids[who]!r} {reason}") from None
    first = out.first_contribution
    table = pd.DataFrame(
        {
            person: ids.to_numpy(),
            "first_contribution_year": pd.array(first, dtype="Int64"),
            **{k: getattr(out, k) for k in PER_PERSON},
        }
    )
    table["ever_interrupted"] = (table["n_interruptions"] > 0).astype(np.float64)
    table["reentered"] = (table["n_reentries"] > 0).astype(np.float64)
    spells = pd.DataFrame(
        {
            person: ids.to_numpy()[out.spell_person],
            "start_year": out.spell_start,
            "years": out.spell_years,
            "end_year": out.spell_start + out.spell_years - 1,
            "reentered": out.spell_reentered,
        }
    )
    return Histories(persons=table, spells=spells, survey_year=survey_year)


_ROW = "__ssc_row"  # a record's place in the Dask DataFrame: partition << 40 | row
_TABLE = "__ssc_table"  # 0 person row, 1 spell row (stacked per partition)
_SPELL_REENTERED = "__ssc_spell_reentered"


def _dask_histories(
    records: Any, persons: Any, person: str, year: str, contributed: str, first_job: str, survey_year: int | None
) -> Histories:
    """:func:`contribution_histories` of Dask DataFrames: see its notes."""
    import dask.dataframe as dd

    def distributed(data: Any, npartitions: int) -> Any:
        if is_dask(data):
            return data
        frame = Frame(data).data
        frame = frame.to_pandas() if isinstance(frame, pl.DataFrame) else frame
        return dd.from_pandas(frame, npartitions=max(1, min(npartitions, len(frame))), sort=False)

    recs = distributed(records, persons.npartitions if is_dask(persons) else 1)
    people = distributed(persons, recs.npartitions)
    for table, what, names in ((recs, "contribution records", (person, year, contributed)),
                               (people, "person table", (person, first_job))):
        for name in names:
            if name not in table.columns:
                raise ColumnError(f"column {name!r} is not in the {what}")
    for table, name, role in ((recs, year, "year"), (people, first_job, "first-job year")):
        dtype = table.dtypes[name]
        if not (pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)):
            raise ColumnError(f"column {name!r} ({role}) must be numeric, but holds {dtype}")
    ids = {what: table.dtypes[person] for what, table in (("records", recs), ("person table", people))}
    if len({pd.api.types.is_numeric_dtype(d) for d in ids.values()}) > 1:
        raise ColumnError(f"person ids in column {person!r} are {ids['records']} in the records "
                          f"but {ids['person table']} in the person table")
    if survey_year is None:
        survey_year = int(recs[year].max().compute())
    survey_year = int(survey_year)
    recs = recs[[person, year, contributed]]
    recs = recs.map_partitions(_numbered, meta=recs._meta.assign(**{_ROW: np.int64(0)}))
    # Range partitions of person ids, the same for both tables: a person's rows meet in one
    # partition, and partitions follow each other in person-id order.
    # The divisions (quantiles of the person ids) are computed once, here, and given to both.
    people = people[[person, first_job]]
    divisions = list(people.set_index(person, npartitions=max(recs.npartitions, people.npartitions)).divisions)
    if any(pd.isna(d) for d in divisions):  # one partition asked for, or no persons: no quantiles
        people, recs = (t.set_index(person, npartitions=1) for t in (people, recs))
    else:
        people, recs = (t.set_index(person, divisions=divisions) for t in (people, recs))
    args = (person, year, contributed, first_job, survey_year)
    empty = contribution_histories(*_partition_tables(recs._meta, people._meta, person), person, year, contributed,
                                   first_job, survey_year)
    tables = {"persons": empty.persons, "spells": empty.spells}
    # The person column as the in-memory path makes it of real ids (from the ids' numpy array).
    sample = pd.Index(people._meta_nonempty.index).to_numpy()
    dtypes = {key: {**t.dtypes.to_dict(), person: pd.DataFrame({person: sample})[person].dtype} for key, t in tables.items()}
    # One kernel call per partition gives both tables, stacked; each is a selection of them.
    stacked = dd.map_partitions(
        _partition_histories, recs, people, *args,
        meta=_stack(empty, person), align_dataframes=False, clear_divisions=True,
    )
    out = {
        key: stacked.map_partitions(_unstack, key, list(t.columns), dtypes[key], meta=t.astype(dtypes[key]))
        for key, t in tables.items()
    }
    return Histories(persons=out["persons"], spells=out["spells"], survey_year=survey_year)


def _numbered(part: pd.DataFrame, partition_info: dict | None = None) -> pd.DataFrame:
    number = 0 if partition_info is None else int(partition_info["number"])
    return part.assign(**{_ROW: (np.int64(number) << 40) + np.arange(len(part), dtype=np.int64)})


def _partition_tables(records: pd.DataFrame, persons: pd.DataFrame, person: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A partition's records back in their order in the Dask DataFrame; its persons (and
    so the results) by person id."""
    records = records.reset_index().sort_values(_ROW, kind="stable").drop(columns=_ROW).reset_index(drop=True)
    persons = persons.reset_index().sort_values(person, kind="stable").reset_index(drop=True)
    return records, persons


def _partition_histories(
    records: pd.DataFrame, persons: pd.DataFrame, person: str, year: str, contributed: str, first_job: str,
    survey_year: int,
) -> pd.DataFrame:
    """The kernel on one partition of person ids: both tables, stacked."""
    got = contribution_histories(*_partition_tables(records, persons, person), person, year, contributed,
                                 first_job, survey_year)
    return _stack(got, person)


def _stack(histories: Histories, person: str) -> pd.DataFrame:
    """The person rows, then the spell rows (their ``reentered`` as _SPELL_REENTERED), of
    one partition in one frame, the table of a row in _TABLE (numbers upcast to floats
    where the other table has no value; :func:`_unstack` casts them back)."""
    persons, spells = histories.persons, histories.spells
    n, m = len(persons), len(spells)
    out = persons.reindex(pd.RangeIndex(n + m))
    out[person] = np.concatenate([persons[person].to_numpy(), spells[person].to_numpy()])
    spells = spells.set_axis(pd.RangeIndex(n, n + m)).rename(columns={"reentered": _SPELL_REENTERED})
    for name in spells.columns.drop(person):
        out[name] = spells[name]
    out[_TABLE] = np.repeat(np.array([0, 1], dtype=np.int8), [n, m])
    return out


def _unstack(stacked: pd.DataFrame, table: str, columns: list[str], dtypes: dict) -> pd.DataFrame:
    """One table of a stacked partition, in its own dtypes."""
    spells = table == "spells"
    rows = stacked[stacked[_TABLE].to_numpy() == int(spells)]
    source = [_SPELL_REENTERED if spells and c == "reentered" else c for c in columns]
    return rows[source].set_axis(columns, axis=1).astype(dtypes).reset_index(drop=True)


def _plain(frame: Frame, name: str) -> np.ndarray:
    """A column's values as a numpy array (ids, labels)."""
    if name not in frame.columns:
        raise ColumnError(f"column {name!r} is not in the data")
    col = frame.column(name)
    return col.to_numpy() if isinstance(col, pl.Series) else col.to_numpy()


def _whole(frame: Frame, name: str) -> np.ndarray:
    """A column of calendar years as int32; missing or fractional years are errors."""
    values = frame.numeric(name, "year")
    if np.isnan(values).any():
        raise MissingValueError(f"column {name!r} has {int(np.isnan(values).sum())} missing years")
    if (values != np.round(values)).any():
        raise ColumnError(f"column {name!r} must hold whole years")
    return values.astype(np.int32)


def interruption_summary(design: "Design", histories: Histories, level: float = 0.95) -> Summary:
    """Design-based interruption figures: the share ever interrupted, and among them the
    mean years interrupted, mean density, mean number of interruptions and the share
    who came back.

    Parameters
    ----------
    design : the survey design over the person table the histories were built from.
    histories : from :func:`contribution_histories`, rows in the design's row order.
    level : interval level.

    Returns
    -------
    Summary
        ``population`` (everyone / ever interrupted), ``variable``, estimates.
    """
    table = histories.persons
    if is_dask(table):
        raise ShapeError(
            "histories of Dask DataFrames: compute() them and put the persons in the design's row order first"
        )
    if len(table) != design.n_rows:
        raise ShapeError(f"histories have {len(table)} persons, the design {design.n_rows} rows")
    measures = ["ever_interrupted", "years_interrupted", "density", "n_interruptions", "reentered"]
    derived = design.with_columns({m: table[m].to_numpy(dtype=np.float64) for m in measures})
    everyone = _tidy(derived.mean("ever_interrupted", level=level), population="everyone")
    interrupted = derived.subset(table["ever_interrupted"].to_numpy() == 1)
    among = _tidy(interrupted.mean(measures[1:], level=level), population="ever interrupted")
    out = pd.concat([everyone, among], ignore_index=True).drop(columns="level")
    return Summary("Interruptions of contribution", out[["population", "variable", *_SHOWN]], level)


def first_interruption(histories: Histories) -> pd.DataFrame:
    """Each person's first interruption, in the person table's order: ``years`` out
    (to re-entry, or to the survey year if still out) and ``reentered`` (0/1); NaN for
    people never interrupted.

    Parameters
    ----------
    histories : from :func:`contribution_histories` (in memory).
    """
    persons, spells = histories.persons, histories.spells
    if is_dask(persons):
        raise ShapeError("histories of Dask DataFrames: compute() them first")
    person = persons.columns[0]
    first = spells.sort_values([person, "start_year"], kind="stable").drop_duplicates(person)
    at = pd.Index(first[person]).get_indexer(persons[person])
    has = at >= 0
    years = np.where(has, first["years"].to_numpy(dtype=np.float64)[at], np.nan)
    back = np.where(has, first["reentered"].to_numpy(dtype=np.float64)[at], np.nan)
    return pd.DataFrame({"years": years, "reentered": back})


def reentry_curve(
    design: "Design", histories: Histories, times: Sequence[float] | None = None, level: float = 0.95
) -> "SurvivalCurves":
    """Re-entry after each person's first interruption, as the study defines it: the
    design-weighted share still out (not yet contributing again) by years since the
    first interruption began; still out at the survey year is censored.

    The people interrupted are a domain of the person design (rows are not dropped),
    so every design option (strata, nested PSUs, fpc, lonely-PSU rule) carries over.

    Parameters
    ----------
    design : the survey design over the person table the histories were built from.
    histories : from :func:`contribution_histories`, persons in the design's row order.
    times : years at which to report the curve; default every tabulated time.
    level : interval level.

    Returns
    -------
    SurvivalCurves
        As :meth:`Design.km` with ``se=True`` (time ``years_out``, event ``reentered``).
    """
    if len(histories.persons) != design.n_rows:
        raise ShapeError(f"histories have {len(histories.persons)} persons, the design {design.n_rows} rows")
    first = first_interruption(histories)
    derived = design.with_columns({"years_out": first["years"].to_numpy(), "reentered": first["reentered"].to_numpy()})
    return derived.subset(first["years"].notna().to_numpy()).km("years_out", "reentered", times=times, se=True,
                                                                  level=level)


# ---------------------------------------------------------------------------- levels, switching
def band_shares(design: "Design", column: str, bands: Bands, subgroup: Any = None, level: float = 0.95) -> Estimates:
    """Shares of `bands` of a numeric column among the rows where it is known.

    For contribution levels: the share of employee-scheme contributors paying 400-700
    yuan a month is ``band_shares(design, "employee_contribution_monthly",
    EMPLOYEE_CONTRIBUTION_BANDS)``.  A known value outside every band is an error.
    R: ``svymean(~cut(x, breaks), subset(design, !is.na(x)))``; Stata: ``svy, subpop():
    proportion`` of the banded variable.

    Parameters
    ----------
    design : the survey design.
    column : a numeric column.
    bands : the bands (:class:`Bands`).
    subgroup : boolean mask or ``{"column", "op", "value"}`` condition.
    level : interval level.

    Returns
    -------
    Estimates
        One row per band: its share among the rows where `column` is known.

    Examples
    --------
    >>> bands = ssc.coverage.Bands((0, 5000, np.inf), ("<5000", ">=5000"))
    >>> ssc.band_shares(design, "monthly_income", bands).to_pandas()[["level", "estimate", "se"]].round(3)
        level  estimate     se
    0   <5000     0.276  0.029
    1  >=5000     0.724  0.029
    """
    values = design.frame.numeric(column, "banded values")
    band = bands.cut(values)
    outside = ~np.isnan(values) & pd.isna(band)
    if outside.any():
        example = values[outside][0]
        raise ColumnError(f"column {column!r} has {int(outside.sum())} values outside the bands, e.g. {example:g}")
    name = f"{column}_band"
    sub = design.with_columns({name: band}).subset(~np.isnan(values))
    return (sub if subgroup is None else sub.subset(subgroup)).mean(name, level=level)


def transition_table(
    design: "Design", origin: str, destination: str, shares: str = "origin", subgroup: Any = None, level: float = 0.95
) -> Estimates:
    """A transition table such as scheme switching (previous -> current scheme).

    Parameters
    ----------
    design : the survey design.
    origin, destination : the two categorical columns.
    shares : ``"origin"``: shares of each destination within each origin (each origin
        sums to one); ``"all"``: shares of each ``origin -> destination`` move among
        everyone (all sum to one).
    subgroup : boolean mask or ``{"column", "op", "value"}`` condition.
    level : interval level.

    Rows where either column is missing are left out.
    """
    if shares not in ("origin", "all"):
        raise OptionError(f"shares={shares!r}; use 'origin' or 'all'")
    frame = design.frame
    known = ~(frame.isna(origin) | frame.isna(destination))
    sub = design.subset(known)
    sub = sub if subgroup is None else sub.subset(subgroup)
    if shares == "origin":
        return sub.mean(destination, by=origin, level=level)
    move = pd.Series(_plain(frame, origin)).astype(str) + " -> " + pd.Series(_plain(frame, destination)).astype(str)
    return sub.with_columns({"transition": move.where(known)}).mean("transition", level=level)
