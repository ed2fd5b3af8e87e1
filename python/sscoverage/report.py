"""The coverage report, the package's main job (``sscoverage report``).

One self-contained HTML file (tables, and charts as embedded PNG images) and the same
numbers as JSON: Table 1 with intervals, lapse rates and the profile of lapsers,
interruptions of contribution, reasons, the employment presumption, contribution levels
and scheme switching, and a lapse model of platform workers.  On the bundled synthetic
survey every published figure of the study is set beside its estimate.
"""

from __future__ import annotations

import base64
import html
import io
import json
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from ._core import __version__
from ._progress import track
from .coverage import (
    AGE_BANDS,
    EMPLOYEE_CONTRIBUTION_BANDS,
    HOURS_BANDS,
    INCOME_BANDS,
    PLATFORM_CONTROLS,
    RESIDENT_CONTRIBUTION_BANDS,
    CoverageTable,
    Histories,
    ReasonRanking,
    SchemeTree,
    Summary,
    band_shares,
    contribution_histories,
    coverage_table,
    employment_presumption,
    interruption_summary,
    lapse_indicators,
    lapse_rates,
    population_type,
    presumed_coverage,
    profile,
    published_figures,
    reasons,
    transition_table,
)
from .datasets import coverage_survey
from .design import Design
from .exceptions import ColumnError, MappingError
from .models import GLMResult
from .results import Estimates
from .simulate import scenario
from .survival import SurvivalCurves
from .threshold import ThresholdResult

#: What the report's column names mean for values, where a user's data may differ.
DEFAULT_VALUES = {
    "flexible_jobs": ["new_employment_form", "other_flexible"],
    "platform_jobs": ["new_employment_form"],
    "labour_contract": "labour_contract",
}
PROFILE_CATEGORICAL = ["sex", "hukou_type", "work_status", "age_band", "weekly_hours_band", "job_type", "income_band"]
PROFILE_CONTINUOUS = ["age", "schooling_years", "monthly_income"]
#: Bands the report derives when the data has the variable but not its bands.
DERIVED_BANDS = {
    "age_band": ("age", AGE_BANDS),
    "weekly_hours_band": ("weekly_hours", HOURS_BANDS),
    "income_band": ("monthly_income", INCOME_BANDS),
}
DESIGN_COLUMNS = ("ids", "strata", "weights", "probs", "fpc")
DESIGN_OPTIONS = ("nest", "lonely_psu")
MAPPING_KEYS = ("design", "columns", "values", "tree", "histories")
LAPSE_MODEL = "lapse_pension ~ log(monthly_income) + hukou_type + age + schooling_years + contract_type"
THRESHOLD_MODEL = "lapse_pension ~ monthly_income + hukou_type + age + schooling_years + contract_type"
REENTRY_TIMES = [1, 2, 3, 5, 10]
SUBSIDY_FLOOR = 5000.0
#: The published lapser-profile distributions and the profile variable of each.
PROFILE_FIGURES = {
    "work_status": "work_status",
    "age_band": "age_band",
    "weekly_hours": "weekly_hours_band",
    "job_type": "job_type",
}
#: The published means (sample and lapsers) and the variable of each.
MEAN_FIGURES = {"mean_age": "age", "mean_schooling_years": "schooling_years", "mean_after_tax_wage_yuan": "monthly_income"}
#: The published interruption figures and the variable of each.
INTERRUPTION_FIGURES = {
    "ever_interrupted_rate": "ever_interrupted",
    "mean_years_interrupted": "years_interrupted",
    "mean_density": "density",
}
# Allowed deviation from a published figure: absolute for shares and rates, relative
# for means and the interruption figures (the issue's tolerances).
TOLERANCE = {"Table 1": 0.005, "shares": 0.01, "means": 0.01, "Interruptions": 0.10}


# ---------------------------------------------------------------------------- inputs
@dataclass
class Study:
    """What a report is made from: the data under the package's column names, its
    design, scheme tree, contribution records and the values that name job types.

    Build one with :func:`bundled_study` or :func:`study_from_files`.
    """

    data: pd.DataFrame
    design: Design
    tree: SchemeTree
    histories: pd.DataFrame | None
    source: str
    bundled: bool
    values: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_VALUES))
    notes: list[str] = field(default_factory=list)

    def has(self, *columns: str) -> bool:
        return all(c in self.data.columns for c in columns)


def bundled_study(seed: int = 2024) -> Study:
    """The bundled synthetic survey (:func:`sscoverage.datasets.coverage_survey`)."""
    survey = coverage_survey(seed)
    return Study(
        data=survey.persons,
        design=survey.design(),
        tree=SchemeTree.study(),
        histories=survey.histories,
        source=f"bundled synthetic survey (sscoverage.datasets.coverage_survey(seed={seed}))",
        bundled=True,
    )


def study_from_files(data: str | Path, mapping: str | Path) -> Study:
    """A user's survey: a CSV, parquet or Stata file and a JSON column mapping.

    The mapping (all parts optional but ``design``)::

        {"design": {"ids": "county", "strata": "province", "weights": "wt"},
         "columns": {"employee_pension": "ep_paid", "age": "age_years"},
         "values": {"flexible_jobs": ["platform", "gig"], "platform_jobs": ["platform"],
                    "labour_contract": "signed"},
         "tree": {"basic_pension": ["employee_pension", "resident_pension"]},
         "histories": {"file": "years.csv", "person": "pid", "year": "yr",
                       "contributed": "paid"}}

    ``columns`` maps the report's names (the bundled survey's column names) to the
    file's; a name not mapped is looked up as it is.  The scheme tree's leaves are
    required; a section whose other columns are absent is left out with a note.

    Raises
    ------
    ColumnError : a mapped or required column is not in the file (naming the column and
        the mapping key).
    MappingError : the mapping is not JSON or has unknown keys.
    """
    data_path, mapping_path = Path(data), Path(mapping)
    try:
        spec = json.loads(mapping_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise MappingError(f"mapping {mapping_path.name} is not valid JSON: {err}") from None
    if not isinstance(spec, dict) or "design" not in spec:
        raise MappingError(f"mapping {mapping_path.name} needs a 'design' object (ids, strata, weights)")
    unknown = set(spec) - set(MAPPING_KEYS)
    if unknown:
        allowed = ", ".join(MAPPING_KEYS)
        raise MappingError(f"mapping {mapping_path.name} has unknown keys {sorted(unknown)}; use {allowed}")
    frame = _read(data_path)
    design_spec = dict(spec["design"])
    for key, value in design_spec.items():
        if key in DESIGN_COLUMNS:
            for column in [value] if isinstance(value, str) else value:
                _require(frame, column, f"design.{key}", data_path.name)
        elif key not in DESIGN_OPTIONS:
            raise MappingError(f"mapping key 'design.{key}' is not one of {', '.join(DESIGN_COLUMNS + DESIGN_OPTIONS)}")
    renames = {}
    for role, column in spec.get("columns", {}).items():
        _require(frame, column, f"columns.{role}", data_path.name)
        renames[column] = role
    clash = [role for role in renames.values() if role in frame.columns and role not in renames]
    if clash:
        key = clash[0]
        raise MappingError(f"mapping key 'columns.{key}' renames a column to {key!r}, which the file already has")
    frame = frame.rename(columns=renames)
    tree = SchemeTree(spec["tree"]) if "tree" in spec else SchemeTree.study()
    for leaf in tree.leaves:
        _require(frame, leaf, f"columns.{leaf}", data_path.name)
    notes = _derive(frame)
    histories = None
    if "histories" in spec:
        histories = _histories_file(spec["histories"], mapping_path.parent, frame)
    values = {**DEFAULT_VALUES, **spec.get("values", {})}
    return Study(
        data=frame,
        design=Design(frame, **design_spec),
        tree=tree,
        histories=histories,
        source=str(data_path),
        bundled=False,
        values=values,
        notes=notes,
    )


def _read(path: Path) -> pd.DataFrame:
    readers: dict[str, Callable[[Path], pd.DataFrame]] = {
        ".csv": pd.read_csv,
        ".parquet": pd.read_parquet,
        ".pq": pd.read_parquet,
        ".dta": pd.read_stata,
    }
    if path.suffix.lower() not in readers:
        raise MappingError(f"data file {path.name}: use a .csv, .parquet or .dta file")
    return readers[path.suffix.lower()](path)


def _require(frame: pd.DataFrame, column: str, key: str, source: str) -> None:
    if column not in frame.columns:
        raise ColumnError(f"column {column!r} (mapping key {key!r}) is not in {source}")


def _derive(frame: pd.DataFrame) -> list[str]:
    """Add the bands and population type the report needs, from the columns behind them."""
    notes = []
    for band, (column, bands) in DERIVED_BANDS.items():
        if band not in frame.columns and column in frame.columns:
            frame[band] = bands.cut(frame[column])
    hukou = {"hukou_county", "residence_county", "hukou_type"}
    if "population_type" not in frame.columns and hukou <= set(frame.columns):
        types = population_type(frame)
        frame["population_type"] = types.values
        notes += [f"population type unknown for {r.count} persons: {r.reason}" for r in types.unknown.itertuples()]
    return notes


def _histories_file(spec: dict[str, str], folder: Path, persons: pd.DataFrame) -> pd.DataFrame:
    if "file" not in spec:
        raise MappingError("mapping key 'histories' needs 'file' (the person-year records)")
    path = folder / spec["file"]
    records = _read(path)
    renames = {}
    for role, name in (("person", "person_id"), ("year", "year"), ("contributed", "contributed")):
        column = spec.get(role, name)
        _require(records, column, f"histories.{role}", path.name)
        renames[column] = name
    for column in ("person_id", "first_job_year"):
        _require(persons, column, f"columns.{column}", "the data file")
    return records.rename(columns=renames)


# ---------------------------------------------------------------------------- analyses
class Analyses:
    """Every estimate of the report, each computed once on first use."""

    def __init__(self, study: Study) -> None:
        self.study = study
        self.data = study.data
        indicators = lapse_indicators(study.data, study.tree)
        # The design with the lapse indicators, for shares and the lapse model.
        self.design = study.design.with_columns(indicators)
        self.lapser = indicators["lapse_pension"].to_numpy() == 1

    def _mask(self, column: str, values: Any) -> np.ndarray | None:
        if column not in self.data.columns:
            return None
        return self.data[column].isin(values if isinstance(values, list) else [values]).to_numpy()

    @cached_property
    def flexible(self) -> np.ndarray | None:
        return self._mask("job_type", self.study.values["flexible_jobs"])

    @cached_property
    def platform(self) -> np.ndarray | None:
        return self._mask("job_type", self.study.values["platform_jobs"])

    @cached_property
    def contract(self) -> np.ndarray | None:
        return self._mask("contract_type", self.study.values["labour_contract"])

    @cached_property
    def coverage(self) -> CoverageTable:
        by = "population_type" if self.study.has("population_type") else None
        return coverage_table(self.study.design, self.study.tree, by=by)

    @cached_property
    def lapse(self) -> Summary:
        named = {
            "flexible workers": self.flexible,
            "platform workers": self.platform,
            "contract employees": self.contract,
        }
        subgroups = {"all": None, **{k: v for k, v in named.items() if v is not None}}
        return lapse_rates(self.study.design, subgroups, schemes=self.study.tree)

    @cached_property
    def lapse_by_group(self) -> Summary | None:
        if not self.study.has("population_type"):
            return None
        return lapse_rates(self.study.design, by="population_type", schemes=self.study.tree)

    def _profile(self, subgroup: Any) -> Summary | None:
        categorical = [c for c in PROFILE_CATEGORICAL if self.study.has(c)]
        continuous = [c for c in PROFILE_CONTINUOUS if self.study.has(c)]
        if not categorical and not continuous:
            return None
        return profile(self.study.design, subgroup, categorical, continuous)

    @cached_property
    def lapser_profile(self) -> Summary | None:
        return self._profile(self.lapser)

    @cached_property
    def sample_profile(self) -> Summary | None:
        return self._profile(None)

    def share(self, indicator: np.ndarray, within: np.ndarray | None = None) -> Estimates:
        """The weighted share of rows where `indicator` holds (within a subgroup)."""
        derived = self.design.with_columns({"share": indicator.astype(np.float64)})
        return (derived if within is None else derived.subset(within)).mean("share")

    @cached_property
    def histories(self) -> Histories | None:
        if self.study.histories is None or not self.study.has("person_id", "first_job_year"):
            return None
        return contribution_histories(self.study.histories, self.data)

    @cached_property
    def interruptions(self) -> Summary | None:
        return None if self.histories is None else interruption_summary(self.study.design, self.histories)

    def _reasons(self, prefix: str) -> ReasonRanking | None:
        columns = [c for c in self.data.columns if str(c).startswith(prefix)]
        return reasons(self.study.design, columns) if len(columns) >= 2 else None

    @cached_property
    def never_reasons(self) -> ReasonRanking | None:
        return self._reasons("never_reason_")

    @cached_property
    def interrupt_reasons(self) -> ReasonRanking | None:
        return self._reasons("interrupt_reason_")

    @cached_property
    def presumption(self) -> tuple[Estimates, Estimates] | None:
        if not self.study.has(*PLATFORM_CONTROLS):
            return None
        met = employment_presumption(self.data)["n_indicators"].to_numpy()
        met_levels = pd.Categorical(pd.array(met, dtype="Int64"))
        counts = self.study.design.with_columns({"indicators_met": met_levels}).subset(~np.isnan(met))
        return counts.mean("indicators_met"), presumed_coverage(self.study.design, schemes=self.study.tree)

    @cached_property
    def contributions(self) -> list[Estimates]:
        bands = {
            "employee_contribution_monthly": EMPLOYEE_CONTRIBUTION_BANDS,
            "resident_contribution_yearly": RESIDENT_CONTRIBUTION_BANDS,
        }
        return [band_shares(self.study.design, c, b) for c, b in bands.items() if self.study.has(c)]

    @cached_property
    def switching(self) -> Estimates | None:
        if not self.study.has("previous_pension_scheme", "pension_scheme"):
            return None
        return transition_table(self.study.design, "previous_pension_scheme", "pension_scheme", shares="all")

    @cached_property
    def lapse_fit(self) -> GLMResult | None:
        needed = ("monthly_income", "hukou_type", "age", "schooling_years", "contract_type")
        if self.platform is None or not self.study.has(*needed):
            return None
        return self.design.subset(self.platform).glm(LAPSE_MODEL, family="quasibinomial")

    @cached_property
    def model(self) -> pd.DataFrame | None:
        return None if self.lapse_fit is None else self.lapse_fit.summary()

    @cached_property
    def threshold(self) -> ThresholdResult | None:
        """A step in lapse at an unknown monthly income, among platform workers."""
        if self.lapse_fit is None:
            return None
        return self.design.subset(self.platform).threshold_glm(
            THRESHOLD_MODEL, threshold_var="monthly_income", kind="level", grid=25, n_draws=199
        )

    @cached_property
    def reentry(self) -> SurvivalCurves | None:
        """Kaplan-Meier curve of staying out after an interruption begins (event: re-entry);
        each spell carries its person's stratum, PSU and weight."""
        if self.histories is None:
            return None
        spec = self.design.spec
        design_columns = [*spec["strata"], *spec["ids"][:1], spec["weights"]]
        if "person_id" not in self.study.data or None in design_columns:
            return None
        spells = self.histories.spells.merge(self.study.data[["person_id", *design_columns]], on="person_id")
        design = Design(spells, ids=spec["ids"][:1], strata=spec["strata"] or None, weights=spec["weights"])
        return design.km("years", "reentered", times=REENTRY_TIMES, se=True)

    @cached_property
    def scenario(self) -> Estimates | None:
        """The lapse model's predicted pension lapse if incomes below the threshold of the
        study (5,000 yuan a month) were raised to it, e.g. by a contribution subsidy."""
        if self.lapse_fit is None:
            return None
        return scenario(self.lapse_fit, changes={"monthly_income": lambda x: x.clip(lower=SUBSIDY_FLOOR)})


# ---------------------------------------------------------------------------- published figures
def study_checks(a: Analyses) -> pd.DataFrame:
    """Every published figure beside its estimate from the bundled survey.

    Returns
    -------
    pandas.DataFrame
        ``family``, ``figure``, ``published``, ``estimate``, ``se``, ``deviation``
        (estimate - published), ``tolerance`` (the allowed absolute deviation) and
        ``within``.
    """
    fig = published_figures()
    lapse = fig["lapse"]
    rows: list[tuple[str, str, float, float, float, float]] = []

    def add(
        family: str, figure: str, published: float, estimate: float, se: float, relative: float | None = None
    ) -> None:
        tolerance = TOLERANCE.get(family, TOLERANCE["shares"]) if relative is None else relative * abs(published)
        rows.append((family, figure, published, estimate, se, tolerance))

    table1 = a.coverage.compare()
    for r in table1.itertuples():
        add("Table 1", f"{r.scheme} [{r.group}]", r.published, r.estimate, r.se)

    rates = a.lapse.table.set_index(["subgroup", "variable"])
    for name, variable in (("pension_lapse_rate", "lapse_pension"), ("medical_lapse_rate", "lapse_medical")):
        add("Lapse", name, lapse[name], *rates.loc[("all", variable), ["estimate", "se"]])

    lapsers = _by_level(a.lapser_profile)
    everyone = _by_level(a.sample_profile)
    profiles = {"Lapser profile": (lapsers, lapse["lapser_profile"]), "Sample": (everyone, fig["sample"])}
    for family, (est, published) in profiles.items():
        add(family, "male", published["male"], *est[("sex", "male")])
        add(family, "agricultural_hukou", published["agricultural_hukou"], *est[("hukou_type", "agricultural")])
        for figure, column in MEAN_FIGURES.items():
            add(family, figure, published[figure], *est[(column, None)], relative=TOLERANCE["means"])
    for key, column in PROFILE_FIGURES.items():
        for level, value in lapse[key].items():
            if level != "of":
                add("Lapser profile", f"{key}: {level}", value, *lapsers[(column, level)])

    flex = lapse["flexible_workers"]
    add("Flexible workers", "share_of_sample", flex["share_of_sample"], *_first(a.share(a.flexible)))
    for name, variable in (("pension", "lapse_pension"), ("medical", "lapse_medical"), ("both", "lapse_both")):
        estimate = rates.loc[("flexible workers", variable), ["estimate", "se"]]
        add("Flexible workers", f"flexible {name}_lapse_rate", flex[f"{name}_lapse_rate"], *estimate)
    of_lapsers = _first(a.share(a.flexible, a.lapser))
    add("Flexible workers", "share_of_pension_lapsers", flex["share_of_pension_lapsers"], *of_lapsers)
    new_form = _first(a.share(a.platform, a.lapser & a.flexible))
    add("Flexible workers", "new_form_share_of_flexible_lapsers", flex["new_form_share_of_flexible_lapsers"], *new_form)
    contract = rates.loc[("contract employees", "lapse_pension"), ["estimate", "se"]]
    add("Flexible workers", "contract_employees lapse_rate", lapse["contract_employees"]["lapse_rate"], *contract)

    interruption = a.interruptions.table.set_index("variable")
    for figure, variable in INTERRUPTION_FIGURES.items():
        estimate = interruption.loc[variable, ["estimate", "se"]]
        add("Interruptions", figure, fig["interruption"][figure], *estimate, relative=TOLERANCE["Interruptions"])

    figure = "employee_scheme_monthly_400_700_share"
    monthly = a.contributions[0].table.set_index("level").loc["400-700", ["estimate", "se"]]
    add("Contribution levels", figure, fig["contribution_levels"][figure], *monthly)
    switching = fig["scheme_switching"]
    moved = a.switching.table.set_index("level").loc["employee -> resident", ["estimate", "se"]]
    figure = "employee_to_resident share of those free to choose"
    add("Scheme switching", figure, switching["employee_to_resident"] / switching["migrants_with_choice"], *moved)

    out = pd.DataFrame(rows, columns=["family", "figure", "published", "estimate", "se", "tolerance"])
    out.insert(5, "deviation", out["estimate"] - out["published"])
    out["within"] = out["deviation"].abs() <= out["tolerance"]
    return out


def _by_level(summary: Summary) -> dict[tuple[str, Any], tuple[float, float]]:
    """(variable, level) -> (estimate, se) of a profile; level None for means."""
    t = summary.table
    levels = [None if pd.isna(lv) else lv for lv in t["level"]]
    return {(v, lv): (e, s) for v, lv, e, s in zip(t["variable"], levels, t["estimate"], t["se"])}


def _first(est: Estimates) -> tuple[float, float]:
    return float(est.estimate[0]), float(est.se[0])


# ---------------------------------------------------------------------------- sections
@dataclass
class Section:
    """One part of the report: its HTML blocks and the numbers behind them."""

    key: str
    title: str
    blocks: list[str]
    data: dict[str, Any]


def _records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-ready rows (NaN as null, numpy scalars as numbers)."""
    return json.loads(table.to_json(orient="records", double_precision=15))


def _html_table(table: pd.DataFrame) -> str:
    return table.to_html(index=False, border=0, classes="t", na_rep="", float_format=lambda x: f"{x:.4g}")


def _estimates(est: Estimates | Summary) -> pd.DataFrame:
    table = est.to_pandas()
    return table.drop(columns=[c for c in ("cv", "weight_sum") if c in table.columns])


def _png(draw: Callable[[Any], None], width: float = 7.0, height: float = 3.6) -> str:
    """A chart drawn by `draw(axes)` as an embedded PNG image."""
    from matplotlib.figure import Figure  # no pyplot: the user's backend is left alone

    figure = Figure(figsize=(width, height), dpi=110, layout="constrained")
    draw(figure.add_subplot())
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="chart" src="data:image/png;base64,{encoded}">'


def _bars(table: pd.DataFrame, label: str, title: str, horizontal: bool = False) -> Callable[[Any], None]:
    """Bars of `estimate` with their intervals, one per row, labelled by `label`."""

    def draw(ax: Any) -> None:
        y, lo, hi = (table[c].to_numpy(dtype=float) for c in ("estimate", "ci_low", "ci_high"))
        err = np.vstack([y - lo, hi - y])
        pos = np.arange(len(table))
        if horizontal:
            ax.barh(pos, y, xerr=err, color="#4c78a8", capsize=3)
            ax.set_yticks(pos, table[label].astype(str))
            ax.invert_yaxis()
        else:
            ax.bar(pos, y, yerr=err, color="#4c78a8", capsize=3)
            ax.set_xticks(pos, table[label].astype(str), rotation=20, ha="right")
        ax.set_title(title, fontsize=10)

    return draw


def _overview(a: Analyses) -> Section:
    d = a.study.design
    facts = {
        "source": a.study.source,
        "synthetic": a.study.bundled,
        "rows": d.n_rows,
        "design": {k: v for k, v in d.spec.items() if v not in (None, [], False)},
        "design_df": d.degf,
        "population_estimate": float(d.weights.sum()),
        "notes": a.study.notes,
    }
    items = "".join(f"<li><b>{html.escape(k)}</b>: {html.escape(str(v))}</li>" for k, v in facts.items() if v != [])
    return Section("survey", "Survey", [f"<ul>{items}</ul>"], facts)


def _table1(a: Analyses) -> Section:
    table = a.coverage
    intro = "<p>Rate % (95% CI); a parent line is covered by any child.</p>"
    blocks = [intro + table.formatted().to_html(border=0, classes="t")]
    data = {"table": _records(table.table), "notes": list(table.notes)}
    top = table.table[table.table["depth"] == 0]
    blocks.append(_png(replace(table, table=top).plot, height=4.0))
    if a.study.bundled:
        compared = table.compare()
        cells = [f"{100 * e:.1f} / {100 * p:.1f}" for e, p in zip(compared["estimate"], compared["published"])]
        wide = compared.assign(cell=cells).pivot(index="scheme", columns="group", values="cell")
        wide = wide.loc[table.table["scheme"].unique(), list(table.groups)]
        blocks.append("<h3>Estimated / published (%)</h3>" + wide.to_html(border=0, classes="t"))
        data["published_comparison"] = _records(compared)
    return Section("table1", "Coverage by scheme (Table 1)", blocks, data)


def _lapse(a: Analyses) -> Section:
    rates = _estimates(a.lapse)
    blocks = [_html_table(rates)]
    pension = rates[rates["variable"] == "lapse_pension"]
    blocks.append(_png(_bars(pension, "subgroup", "Pension lapse rate (95% CI)")))
    data: dict[str, Any] = {"rates": _records(rates)}
    if a.lapse_by_group is not None:
        by_group = _estimates(a.lapse_by_group)
        blocks.append("<h3>By population type</h3>" + _html_table(by_group))
        data["by_population_type"] = _records(by_group)
    return Section("lapse", "Lapse: should be insured, is not", blocks, data)


def _lapser_profile(a: Analyses) -> Section | None:
    if a.lapser_profile is None:
        return None
    table = _estimates(a.lapser_profile)
    blocks = [_html_table(table)]
    ages = table[table["variable"] == "age_band"]
    if not ages.empty:
        blocks.append(_png(_bars(ages, "level", "Pension lapsers by age band (95% CI)"), height=3.0))
    return Section("lapser_profile", "Profile of pension lapsers", blocks, {"profile": _records(table)})


def _interruptions(a: Analyses) -> Section | None:
    if a.interruptions is None:
        return None
    table = _estimates(a.interruptions)
    spells = a.histories.spells
    lengths = spells["years"].clip(upper=10).value_counts().sort_index()
    facts = {"spells": int(len(spells)), "reentered": int(spells["reentered"].sum())}

    def draw(ax: Any) -> None:
        ax.bar(lengths.index.astype(str), lengths.to_numpy(), color="#72b7b2")
        ax.set_xlabel("years without contribution (10 = 10 or more)")
        ax.set_ylabel("spells in the sample")
        ax.set_title("Length of interruption spells (unweighted counts)", fontsize=10)

    counts = f"<p>{facts['spells']:,} spells, {facts['reentered']:,} ended by re-entry.</p>"
    blocks = [_html_table(table), counts, _png(draw, height=3.0)]
    return Section("interruptions", "Interruptions of contribution", blocks, {"summary": _records(table), **facts})


def _reasons(a: Analyses) -> Section | None:
    blocks, data = [], {}
    for key, title, ranking, prefix in (
        ("never_insured", "Never insured", a.never_reasons, "never_reason_"),
        ("interrupted", "Interrupted", a.interrupt_reasons, "interrupt_reason_"),
    ):
        if ranking is None:
            continue
        table = ranking.to_pandas()
        table["reason"] = table["reason"].str.removeprefix(prefix)
        t = ranking.top_two
        test = (
            f"Top two differ by {100 * t['difference']:.1f} points "
            f"(t = {t['t']:.2f} on {t['df']:g} df, p = {t['p_value']:.3g})."
        )
        blocks += [f"<h3>{title}</h3>", _html_table(table), f"<p>{test}</p>"]
        chart = _bars(table, "reason", f"{title}: share choosing each reason (95% CI)", horizontal=True)
        blocks.append(_png(chart, height=2.6))
        data[key] = {"ranking": _records(table), "top_two": t}
    return Section("reasons", "Reasons (multiple response)", blocks, data) if blocks else None


def _presumption(a: Analyses) -> Section | None:
    if a.presumption is None:
        return None
    met, coverage = (_estimates(e) for e in a.presumption)
    blocks = [
        "<p>Indicators of platform control met (EU rule: two of five presume employment).</p>",
        _html_table(met),
        "<p>Basic pension coverage of those presumed employees and the others.</p>",
        _html_table(coverage),
    ]
    data = {"indicators_met": _records(met), "coverage": _records(coverage)}
    return Section("presumption", "Employment presumption (two of five)", blocks, data)


def _contributions(a: Analyses) -> Section | None:
    tables = [_estimates(e) for e in a.contributions]
    if a.switching is not None:
        tables.append(_estimates(a.switching))
    if not tables:
        return None
    data = {str(t["variable"].iloc[0]): _records(t) for t in tables}
    return Section("contributions", "Contribution levels and scheme switching", [_html_table(t) for t in tables], data)


def _model(a: Analyses) -> Section | None:
    if a.model is None:
        return None
    table = a.model
    intro = f"<p>Survey-weighted quasibinomial model among platform workers: <code>{html.escape(LAPSE_MODEL)}</code></p>"
    data = {"formula": LAPSE_MODEL, "coefficients": _records(table)}
    return Section("lapse_model", "Lapse model of platform workers", [intro, _html_table(table)], data)


def _threshold(a: Analyses) -> Section | None:
    if a.threshold is None:
        return None
    r = a.threshold
    text = (
        f"<p>A step in pension lapse at an unknown monthly income among platform workers "
        f"(<code>{html.escape(THRESHOLD_MODEL)}</code>): threshold {r.threshold:,.0f} yuan, "
        f"{r.level:.0%} interval [{r.ci_low:,.0f}, {r.ci_high:,.0f}] ({html.escape(r.ci_method)}); "
        f"test of no threshold p = {r.p_value:.3g} ({html.escape(r.test_method)}).</p>"
    )
    data = {"threshold": r.threshold, "ci_low": r.ci_low, "ci_high": r.ci_high, "p_value": r.p_value,
            "summary": _records(r.summary())}
    return Section("threshold", "Income threshold", [text, _html_table(r.summary()), _png(r.plot, height=3.0)], data)


def _reentry(a: Analyses) -> Section | None:
    if a.reentry is None:
        return None
    table = a.reentry.to_pandas()
    text = "<p>Share of interruption spells not yet ended by re-entry, by years since the interruption began.</p>"
    return Section("reentry", "Re-entry after an interruption", [text, _html_table(table), _png(a.reentry.plot, height=3.0)],
                   {"curve": _records(table)})


def _scenario(a: Analyses) -> Section | None:
    if a.scenario is None:
        return None
    table = _estimates(a.scenario)
    text = (
        f"<p>Predicted pension lapse of platform workers from the lapse model, as observed and if every "
        f"monthly income below {SUBSIDY_FLOOR:,.0f} yuan were raised to it; the change has its own "
        "design-based standard error.</p>"
    )
    return Section("scenario", "Policy scenario: an income floor", [text, _html_table(table)], {"scenario": _records(table)})


def _checks(a: Analyses) -> Section | None:
    if not a.study.bundled:
        return None
    checks = study_checks(a)
    used = checks.assign(share_of_tolerance=checks["deviation"].abs() / checks["tolerance"])
    families = used.groupby("family", sort=False).agg(
        figures=("figure", "size"),
        largest_share_of_tolerance=("share_of_tolerance", "max"),
        within=("within", "all"),
    ).reset_index()
    blocks = [
        "<p>Every published figure of the study beside its estimate from the bundled synthetic survey "
        "(tolerances: Table 1 ±0.5 points, lapse and flexible-worker figures ±1 point, means ±1 %, "
        "interruption figures ±10 %).</p>",
        _html_table(families),
        _html_table(checks),
    ]
    data = {"families": _records(families), "checks": _records(checks)}
    return Section("published_figures", "Published figures reproduced", blocks, data)


SECTIONS: list[Callable[[Analyses], Section | None]] = [
    _overview,
    _table1,
    _lapse,
    _lapser_profile,
    _interruptions,
    _reasons,
    _presumption,
    _contributions,
    _model,
    _threshold,
    _reentry,
    _scenario,
    _checks,
]

_STYLE = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{margin-bottom:.2em} h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
table.t{border-collapse:collapse;font-size:.85em;margin:.6em 0}
table.t td,table.t th{padding:.2em .6em;border-bottom:1px solid #eee;text-align:right;white-space:pre}
.synthetic{background:#fff3cd;border:1px solid #e0c36b;padding:.6em 1em}
img{max-width:100%} footer{margin-top:3em;color:#777;font-size:.8em}
"""


@dataclass
class Report:
    """A finished report: its sections, as HTML (:meth:`html`) and JSON (:meth:`to_json`)."""

    study: Study
    sections: list[Section]

    def html(self) -> str:
        nav = " · ".join(f'<a href="#{s.key}">{html.escape(s.title)}</a>' for s in self.sections)
        warning = (
            '<p class="synthetic"><b>Synthetic data.</b> The bundled survey is generated by the package to '
            "reproduce the study's published aggregates; it is for learning and testing, not for "
            "conclusions about China.</p>"
            if self.study.bundled
            else ""
        )
        body = "".join(
            f'<h2 id="{s.key}">{html.escape(s.title)}</h2>' + "".join(s.blocks) for s in self.sections
        )
        return (
            '<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f"<title>Coverage report</title><style>{_STYLE}</style></head><body>"
            f"<h1>Social-insurance coverage report</h1><p>{html.escape(self.study.source)}</p>{warning}"
            f"<nav>{nav}</nav>{body}<footer>sscoverage {__version__}: design-based estimates; "
            "intervals are 95% Wald intervals on the design's standard errors.</footer></body></html>"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "generator": f"sscoverage {__version__}",
            "source": self.study.source,
            "synthetic": self.study.bundled,
            "sections": {s.key: s.data for s in self.sections},
        }


def build_report(study: Study, progress: bool = True) -> Report:
    """Every section of the report on `study`, showing progress unless `progress` is False."""
    analyses = Analyses(study)
    built = (build(analyses) for build in track(SECTIONS, len(SECTIONS), "coverage report", progress))
    return Report(study, [section for section in built if section is not None])
