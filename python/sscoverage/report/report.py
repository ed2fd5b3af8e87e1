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

from .._core import __version__
from .._labels import LANGUAGES, Labels
from .._progress import track
from ..study.coverage import (
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
    reentry_curve,
    transition_table,
)
from ..study.datasets import coverage_survey
from ..design.design import Design
from ..exceptions import ColumnError, MappingError, SchemeTreeError
from ..models.glm import GLMResult
from ..results.plots import dot_interval, survival_curves, threshold_profile
from ..results.publication import FLAG_MEANINGS, ReliabilityRules, flags
from ..results.estimates import Estimates
from ..study.simulate import scenario
from ..models.survival import SurvivalCurves
from ..models.threshold import ThresholdResult

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
MAPPING_KEYS = ("design", "columns", "values", "tree", "population", "reasons", "labels", "flags", "histories")
FLAG_RULES = ("nchs", "none")
POPULATION_KEYS = ("hukou_type", "hukou_county", "residence_county", "local", "local_values", "urban", "rural")
#: The multiple-response questions and the column prefix that finds them by default.
REASON_PREFIXES = {"never_insured": "never_reason_", "interrupted": "interrupt_reason_"}
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
# for means and the interruption figures (the tolerances).
TOLERANCE = {"Table 1": 0.005, "shares": 0.01, "means": 0.01, "Interruptions": 0.10}


# ---------------------------------------------------------------------------- inputs
@dataclass
class Study:
    """What a report is made from: the data under the package's column names, its
    design, scheme tree, contribution records, the values that name job types, the
    reason columns and label overrides.

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
    #: Reason questions: "never_insured" / "interrupted" -> their 0/1 columns.
    reasons: dict[str, list[str]] = field(default_factory=dict)
    #: Label overrides: language -> key -> text ("*" for every language).
    labels: dict[str, dict[str, str]] = field(default_factory=dict)
    #: Reliability flags: "nchs" (the NCHS data presentation standards) or "none".
    flags: str = "nchs"

    def has(self, *columns: str) -> bool:
        return all(c in self.data.columns for c in columns)


def _prefixed(columns: Any, prefix: str) -> list[str]:
    return [str(c) for c in columns if str(c).startswith(prefix)]


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
        reasons={key: _prefixed(survey.persons.columns, prefix) for key, prefix in REASON_PREFIXES.items()},
    )


def read_mapping(mapping: str | Path) -> dict[str, Any]:
    """A JSON mapping file; lines starting with ``//`` are comments (as in the template
    ``sscoverage init`` writes).

    Raises
    ------
    MappingError : the file is missing, not JSON, or not an object with ``design``.
    """
    path = Path(mapping)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise MappingError(f"mapping file {str(path)!r} cannot be read ({err.strerror}); "
                           "write one with 'sscoverage init DATA'") from None
    plain = "\n".join("" if line.lstrip().startswith("//") else line for line in text.splitlines())
    try:
        spec = json.loads(plain)
    except json.JSONDecodeError as err:
        raise MappingError(f"mapping {path.name} is not valid JSON: {err}") from None
    if not isinstance(spec, dict) or "design" not in spec:
        raise MappingError(f"mapping {path.name} needs a 'design' object (ids, strata, weights)")
    unknown = set(spec) - set(MAPPING_KEYS)
    if unknown:
        allowed = ", ".join(MAPPING_KEYS)
        raise MappingError(f"mapping {path.name} has unknown keys {sorted(unknown)}; use {allowed}")
    return spec


def study_from_files(data: str | Path, mapping: str | Path) -> Study:
    """A user's survey: a CSV, parquet or Stata file and a JSON column mapping.

    The mapping (all parts optional but ``design``; ``sscoverage init DATA`` writes a
    commented template from the file's columns)::

        {"design": {"ids": "county", "strata": "province", "weights": "wt", "nest": true},
         "columns": {"employee_pension": "ep_paid", "age": "age_years"},
         "values": {"flexible_jobs": ["platform", "gig"], "platform_jobs": ["platform"],
                    "labour_contract": "signed"},
         "tree": {"basic_pension": ["employee_pension", "resident_pension"]},
         "population": {"local": "hukou_here", "local_values": [1],
                        "hukou_type": "hukou", "urban": ["urban"], "rural": ["rural"]},
         "reasons": {"never_insured": ["why_cost", "why_trust"],
                     "interrupted": ["stop_job", "stop_money"]},
         "labels": {"zh": {"ep_paid": "职工养老"}, "en": {"why_cost": "Too costly"}},
         "flags": "nchs",
         "histories": {"file": "years.csv", "person": "pid", "year": "yr",
                       "contributed": "paid"}}

    ``design`` takes :class:`Design`'s arguments (columns and the options ``nest``,
    ``lonely_psu``); every design the report builds derives from it.  ``columns`` maps
    the report's names (the bundled survey's column names) to the file's; a name not
    mapped is looked up as it is.  Population types come from ``population``: either
    the two county columns (``hukou_county``, ``residence_county``) or one column
    ``local`` saying whether the hukou county is the county of residence (default the
    two county columns, when the file has them).  ``reasons`` names the 0/1 columns of
    each multiple-response question (default: columns starting ``never_reason_`` and
    ``interrupt_reason_``).  ``labels`` overrides the shipped labels, per language or
    for all (a flat object); ``flags`` chooses the reliability flags (``"nchs"``, the
    default, or ``"none"``).  The scheme tree's leaves are required; a section whose
    other columns are absent is left out with a note.

    Raises
    ------
    ColumnError : a mapped or required column is not in the file (naming the column and
        the mapping key).
    MappingError : the mapping is missing, not JSON or has unknown keys.
    """
    data_path = Path(data)
    spec = read_mapping(mapping)
    folder = Path(mapping).parent
    frame = _read(data_path)
    design_spec = dict(spec["design"])
    for key, value in design_spec.items():
        if key in DESIGN_COLUMNS:
            for column in [value] if isinstance(value, str) else value:
                _require(frame, column, f"design.{key}", data_path.name)
        elif key not in DESIGN_OPTIONS:
            raise MappingError(f"mapping key 'design.{key}' is not one of {', '.join(DESIGN_COLUMNS + DESIGN_OPTIONS)}")
    renames = {}
    for role, column in _object(spec, "columns").items():
        _require(frame, column, f"columns.{role}", data_path.name)
        renames[column] = role
    clash = [role for role in renames.values() if role in frame.columns and role not in renames]
    if clash:
        key = clash[0]
        raise MappingError(f"mapping key 'columns.{key}' renames a column to {key!r}, which the file already has")
    frame = frame.rename(columns=renames)
    try:
        tree = SchemeTree(_object(spec, "tree")) if "tree" in spec else SchemeTree.study()
    except SchemeTreeError as err:
        raise MappingError(f"mapping key 'tree': {err}") from None
    for leaf in tree.leaves:
        _require(frame, leaf, f"columns.{leaf}", data_path.name)
    notes = _derive(frame, _object(spec, "population"), data_path.name)
    histories = None
    if "histories" in spec:
        histories = _histories_file(_object(spec, "histories"), folder, frame)
    given = _object(spec, "reasons")
    unknown = set(given) - set(REASON_PREFIXES)
    if unknown:
        raise MappingError(f"mapping key 'reasons.{sorted(unknown)[0]}': use {', '.join(REASON_PREFIXES)}")
    reason_columns = {}
    for key, prefix in REASON_PREFIXES.items():
        columns = given.get(key, _prefixed(frame.columns, prefix))
        for column in columns:
            _require(frame, column, f"reasons.{key}", data_path.name)
        reason_columns[key] = list(columns)
    reliability = spec.get("flags", "nchs")
    if reliability not in FLAG_RULES:
        raise MappingError(f"mapping key 'flags' is {reliability!r}; use one of {', '.join(FLAG_RULES)}")
    labels = _object(spec, "labels")
    if labels and not set(labels) <= set(LANGUAGES):
        labels = {"*": labels}
    design_spec = {k: ([renames.get(c, c) for c in v] if isinstance(v, list) else renames.get(v, v))
                   if k in DESIGN_COLUMNS else v for k, v in design_spec.items()}
    return Study(
        data=frame,
        design=Design(frame, **design_spec),
        tree=tree,
        histories=histories,
        source=str(data_path),
        bundled=False,
        values={**DEFAULT_VALUES, **_object(spec, "values")},
        notes=notes,
        reasons=reason_columns,
        labels=labels,
        flags=reliability,
    )


def _object(spec: dict[str, Any], key: str) -> dict[str, Any]:
    value = spec.get(key, {})
    if not isinstance(value, dict):
        raise MappingError(f"mapping key {key!r} must be a JSON object, not {type(value).__name__}")
    return value


def _read(path: Path) -> pd.DataFrame:
    readers: dict[str, Callable[[Path], pd.DataFrame]] = {
        ".csv": pd.read_csv,
        ".parquet": pd.read_parquet,
        ".pq": pd.read_parquet,
        ".dta": pd.read_stata,
    }
    if path.suffix.lower() not in readers:
        raise MappingError(f"data file {path.name}: use a .csv, .parquet or .dta file")
    if not path.is_file():
        raise MappingError(f"data file {str(path)!r} does not exist")
    return readers[path.suffix.lower()](path)


def _require(frame: pd.DataFrame, column: str, key: str, source: str) -> None:
    if column not in frame.columns:
        raise ColumnError(f"column {column!r} (mapping key {key!r}) is not in {source}")


def _derive(frame: pd.DataFrame, population: dict[str, Any], source: str) -> list[str]:
    """Add the bands and population type the report needs, from the columns behind them."""
    notes = []
    for band, (column, bands) in DERIVED_BANDS.items():
        if band not in frame.columns and column in frame.columns:
            frame[band] = bands.cut(frame[column])
    unknown = set(population) - set(POPULATION_KEYS)
    if unknown:
        raise MappingError(f"mapping key 'population.{sorted(unknown)[0]}' is not one of {', '.join(POPULATION_KEYS)}")
    columns = {k: population.get(k, k) for k in ("hukou_type", "hukou_county", "residence_county")}
    needed = ["hukou_type", "local"] if "local" in population else ["hukou_type", "hukou_county", "residence_county"]
    columns["local"] = population.get("local")
    if population:
        for key in needed:
            _require(frame, columns[key], f"population.{key}", source)
    if "population_type" not in frame.columns and all(columns[k] in frame.columns for k in needed):
        options = {k: population[k] for k in ("urban", "rural", "local_values") if k in population}
        types = population_type(frame, **columns, **options)
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


#: Column names that suggest a design role, for the template of ``sscoverage init``.
DESIGN_GUESSES = {
    "weights": ("weight", "wt", "wgt", "pweight", "finalwt"),
    "strata": ("strata", "stratum", "province", "prov", "region"),
    "ids": ("psu", "cluster", "county", "village", "community", "ea"),
}


def mapping_template(data: str | Path) -> str:
    """A commented mapping for `data` (``sscoverage init``): the design columns guessed
    from their names, every column of the study the file lacks listed for mapping, the
    population-type and reason keys.  Lines starting ``//`` are comments; edit, then
    run ``sscoverage report --data DATA --mapping FILE``.
    """
    path = Path(data)
    frame = _read(path)
    names = [str(c) for c in frame.columns]
    lowered = {n.lower(): n for n in names}

    def guess(role: str) -> str | None:
        for hint in DESIGN_GUESSES[role]:
            hits = [original for low, original in lowered.items() if low == hint or low.startswith(hint)]
            if hits:
                return hits[0]
        return None

    design = {role: guess(role) for role in ("ids", "strata", "weights")}
    repeated = False
    if design["ids"] and design["strata"]:
        per_psu = frame.groupby(design["ids"])[design["strata"]].nunique()
        repeated = bool((per_psu > 1).any())
    spec_design = {k: v or f"?? your {k} column" for k, v in design.items()}
    if repeated:
        spec_design["nest"] = True
    study_columns = [*SchemeTree.study().leaves, *PROFILE_CATEGORICAL[:3], "job_type", "contract_type", *PROFILE_CONTINUOUS]
    missing = [c for c in dict.fromkeys(study_columns) if c not in names and c not in DERIVED_BANDS]
    lines = [
        f"// Mapping for {path.name}, written by sscoverage init.  Lines starting // are comments.",
        f"// Columns in the file: {', '.join(names)}",
        "// design: ids (PSU), strata, weights guessed from the column names; check them.",
        "//   nest: true when PSU labels repeat across strata"
        + (" (they do in this file)." if repeated else "."),
        "// columns: the study's name -> your column, for each column your file names differently;",
        "//   scheme columns hold 0/1.  Remove the entries your file does not have (the report",
        "//   leaves out sections whose columns are absent; Table 1 needs every scheme).",
        "// population: hukou_type with hukou_county and residence_county, or one column 'local'",
        "//   (hukou county is the county of residence) with its 'local_values'.",
        "// reasons: the 0/1 columns of each multiple-response question.",
        "// labels: your own labels, e.g. {\"zh\": {\"basic_pension\": \"基本养老保险\"}}.",
    ]
    spec = {
        "design": spec_design,
        "columns": {c: f"?? {c}" for c in missing},
        "population": (
            {"hukou_type": "hukou_type", "hukou_county": "hukou_county", "residence_county": "residence_county"}
            if {"hukou_county", "residence_county"} <= set(names)
            else {"hukou_type": "hukou_type", "local": "?? hukou-is-local column", "local_values": [1]}
        ),
        "reasons": {key: _prefixed(names, prefix) for key, prefix in REASON_PREFIXES.items()},
        "labels": {},
    }
    return "\n".join(lines) + "\n" + json.dumps(spec, indent=2, ensure_ascii=False) + "\n"


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
        rules = ReliabilityRules() if study.flags == "nchs" else None
        self.checks = Checks(float(study.design.degf), rules)

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

    def _reasons(self, question: str) -> ReasonRanking | None:
        columns = self.study.reasons.get(question, [])
        return reasons(self.study.design, columns) if len(columns) >= 2 else None

    @cached_property
    def never_reasons(self) -> ReasonRanking | None:
        return self._reasons("never_insured")

    @cached_property
    def interrupt_reasons(self) -> ReasonRanking | None:
        return self._reasons("interrupted")

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
        """Re-entry after each person's first interruption (:func:`reentry_curve`), on the
        person design itself, so every design option of the mapping applies."""
        if self.histories is None:
            return None
        return reentry_curve(self.study.design, self.histories, times=REENTRY_TIMES)

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


# ---------------------------------------------------------------------------- numbers
def _pct(x: float) -> str:
    return _fixed(100 * x, 1)


def _count(x: float) -> str:
    return "–" if x is None or pd.isna(x) else f"{x:,.0f}"


def _fixed(x: float, digits: int = 2) -> str:
    if x is None or pd.isna(x) or not np.isfinite(x):
        return "–"
    return f"{round(float(x), digits) + 0.0:,.{digits}f}"  # + 0.0: no "-0.0"


def _p(p: float) -> str:
    """A p-value as published: "< 0.001" or three decimals, never e-notation."""
    return "–" if pd.isna(p) else ("< 0.001" if p < 0.001 else f"= {p:.3f}")


#: How each kind of column is shown (HTML) and stored (Excel number format).
FORMATS: dict[str, tuple[Callable[[Any], str], str]] = {
    "pct": (_pct, "0.0"),
    "count": (_count, "#,##0"),
    "num1": (lambda x: _fixed(x, 1), "#,##0.0"),
    "num2": (lambda x: _fixed(x, 2), "#,##0.00"),
    "num3": (lambda x: _fixed(x, 3), "0.000"),
    # Means: two decimals for small numbers (1.13 interruptions), one for large (44.8 years).
    "mean": (lambda x: _fixed(x, 2 if pd.notna(x) and abs(x) < 10 else 1), "#,##0.00"),
    "p": (lambda x: _p(x).removeprefix("= "), "0.000"),
}


@dataclass
class Table:
    """A published table: numbers as numbers under internal column names, and how to
    show each column (``kinds``: a :data:`FORMATS` key, ``"label"`` for codes shown by
    their label, ``"text"``, ``"bool"``).  Shares are stored as proportions and shown as
    percentages; in HTML each (low, high) pair of ``intervals`` is one "95% CI" cell."""

    title: str
    frame: pd.DataFrame
    kinds: dict[str, str]
    intervals: list[tuple[str, str]] = field(default_factory=list)

    def shown(self, labels: Labels) -> pd.DataFrame:
        """The table as text in `labels`' language."""
        out = {}
        paired = {low: high for low, high in self.intervals}
        skip = set(paired.values())
        for column, kind in self.kinds.items():
            if column in skip:
                continue
            values = self.frame[column]
            if column in paired:
                fmt = FORMATS[kind][0]
                highs = self.frame[paired[column]]
                cells = [_interval(fmt(lo), fmt(hi), lo < 0, labels) if pd.notna(lo) and pd.notna(hi) else "–"
                         for lo, hi in zip(values, highs)]
                out[labels("col_ci")] = cells
                continue
            if kind in FORMATS:
                cells = [FORMATS[kind][0](v) for v in values]
            elif kind == "label":
                cells = ["" if pd.isna(v) else labels(v) for v in values]
            elif kind == "bool":
                cells = [labels("yes") if v else labels("no") for v in values]
            else:
                cells = ["" if pd.isna(v) else str(v) for v in values]
            out[self.header(column, labels)] = cells
        return pd.DataFrame(out)

    def header(self, column: str, labels: Labels) -> str:
        return labels("col_pct") if column == "estimate" and self.kinds[column] == "pct" else labels(f"col_{column}")

    def html(self, labels: Labels) -> str:
        shown = self.shown(labels)
        skip = {high for _, high in self.intervals}
        left = [self.kinds[c] in ("label", "text") for c in self.kinds if c not in skip]
        align = ['' if not lf else ' class="l"' for lf in left]
        head = "".join(f"<th{a}>{html.escape(str(c))}</th>" for a, c in zip(align, shown.columns))
        rows = []
        for row in shown.itertuples(index=False):
            rows.append("<tr>" + "".join(f"<td{a}>{html.escape(str(v))}</td>" for a, v in zip(align, row)) + "</tr>")
        return f'<div class="tw"><table class="t"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>'

    def excel(self, labels: Labels) -> pd.DataFrame:
        """Numbers as numbers (shares in percent), codes as labels, headers labelled."""
        out = {}
        for column, kind in self.kinds.items():
            values = self.frame[column]
            if kind == "pct":
                values = values.astype(float) * 100
            elif kind == "label":
                values = values.map(lambda v: "" if pd.isna(v) else labels(v))
            elif kind == "bool":
                values = values.map(lambda v: labels("yes") if v else labels("no"))
            out[self.header(column, labels)] = values.to_numpy()
        return pd.DataFrame(out)


def _interval(low: str, high: str, negative: bool, labels: Labels) -> str:
    """"1.2–3.4", or "-4.8 to -3.4" where a dash would read as a minus sign."""
    return f"{low}{labels('ci_to') if negative else '–'}{high}"


def _records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-ready rows at full precision (every digit of a float64; NaN as null, numpy
    scalars as numbers)."""
    rows = table.astype(object).where(table.notna(), None).to_dict(orient="records")
    return json.loads(json.dumps(rows, default=_plain))


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


@dataclass(frozen=True)
class Checks:
    """How the report judges reliability: the design degrees of freedom and the rules
    of the flags (None: no flags; intervals stay Korn-Graubard)."""

    df: float
    rules: ReliabilityRules | None


def _reliable(table: pd.DataFrame, checks: Checks, proportion: bool = True) -> pd.DataFrame:
    """Reliability flags of each row (``flags``; NCHS rules by default: for proportions
    the Korn-Graubard interval and effective n, for means and rates per person-year the
    relative standard error) and, for proportions, Korn-Graubard intervals in place of
    the Wald ones (they stay inside [0, 1]), from :func:`sscoverage.publication.flags`."""
    keyed = table.reset_index(drop=True)
    est = Estimates(statistic="mean" if proportion else "total", table=keyed[["estimate", "se", "n"]],
                    vcov=[], by=[], level=0.95, df=checks.df)
    checked = flags(est, checks.rules or ReliabilityRules(), proportion=proportion)
    out = keyed.assign(flags=checked["flags"].to_numpy() if checks.rules is not None else "")
    if proportion:
        out["ci_low"], out["ci_high"] = checked["kg_low"].to_numpy(), checked["kg_high"].to_numpy()
    return out


# ---------------------------------------------------------------------------- charts
def _cjk_font() -> str | None:
    from matplotlib import font_manager

    names = {f.name for f in font_manager.fontManager.ttflist}
    return next((n for n in ("Noto Sans CJK SC", "Noto Sans CJK JP", "Noto Serif CJK SC", "WenQuanYi Zen Hei") if n in names), None)


def _png(draw: Callable[[Any], None], labels: Labels, width: float = 7.5, height: float = 3.6) -> str:
    """A chart drawn by `draw(axes)` as an embedded PNG image (a CJK font for Chinese)."""
    from matplotlib import rc_context
    from matplotlib.figure import Figure  # no pyplot: the user's backend is left alone

    families = ["DejaVu Sans"]
    cjk = _cjk_font() if labels.lang == "zh" else None
    if cjk:
        families.append(cjk)
    with rc_context({"font.family": families, "axes.unicode_minus": False}):
        figure = Figure(figsize=(width, height), dpi=110, layout="constrained")
        ax = figure.add_subplot()
        draw(ax)
        # The title over the whole figure, so long row labels do not push it off the left edge.
        title = ax.get_title(loc="left") or ax.get_title()
        ax.set_title("", loc="left")
        ax.set_title("")
        figure.suptitle(title, x=0.01, ha="left", fontsize=11, fontweight="bold")
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    title = html.escape(title)
    return f'<figure><img alt="{title}" src="data:image/png;base64,{encoded}"></figure>'


def _chart_labels(labels: Labels) -> Labels:
    """Chart text in the report's language, or English if no CJK font is installed
    (matplotlib would draw empty boxes)."""
    return labels if labels.lang != "zh" or _cjk_font() else Labels("en")


def _dots(table: pd.DataFrame, label: str, title: str, labels: Labels, group: str | None = None) -> Callable[[Any], None]:
    def draw(ax: Any) -> None:
        names = [labels(v) for v in table[label]]
        groups = None if group is None else [labels(g) for g in table[group]]
        dot_interval(ax, names, table["estimate"], table["ci_low"], table["ci_high"], title=title, percent=True,
                     groups=groups)

    return draw


# ---------------------------------------------------------------------------- sections
@dataclass
class Section:
    """One part of the report: its HTML blocks, its tables and the numbers behind them."""

    key: str
    blocks: list[str]
    data: dict[str, Any]
    tables: list[Table] = field(default_factory=list)


def _share_table(table: pd.DataFrame, first: list[tuple[str, str]], checks: Checks, title: str = "",
                 counts: tuple[str, ...] = ()) -> tuple[Table, pd.DataFrame]:
    """A table of shares: label columns, %, Korn-Graubard interval, n (and unweighted
    counts), NCHS flags."""
    checked = _reliable(table, checks)
    kinds = {**dict(first), "estimate": "pct", "ci_low": "pct", "ci_high": "pct", **{c: "count" for c in counts},
             "n": "count", **_flag_column(checks)}
    return Table(title, checked, kinds, [("ci_low", "ci_high")]), checked


def _flag_column(checks: Checks) -> dict[str, str]:
    return {} if checks.rules is None else {"flags": "text"}


def _mixed_table(table: pd.DataFrame, first: list[tuple[str, str]], checks: Checks, share: np.ndarray,
                 title: str = "", percent: np.ndarray | None = None) -> tuple[Table, pd.DataFrame]:
    """Shares and means in one table: shares get Korn-Graubard intervals; shares (and
    the rows of `percent`, such as a rate per person-year) are shown in percent."""
    checked = table.reset_index(drop=True).assign(flags="")
    parts = {True: _reliable(table[share], checks), False: _reliable(table[~share], checks, proportion=False)}
    for is_share, part in parts.items():
        rows = np.flatnonzero(share == is_share)
        for c in ("ci_low", "ci_high", "flags"):
            checked.loc[rows, c] = part[c].to_numpy()
    scale = np.where(share if percent is None else percent, 100.0, 1.0)
    shown = checked.assign(**{c: checked[c].to_numpy(dtype=float) * scale for c in ("estimate", "ci_low", "ci_high")})
    kinds = {**dict(first), "estimate": "mean", "ci_low": "mean", "ci_high": "mean", "n": "count", **_flag_column(checks)}
    return Table(title, shown, kinds, [("ci_low", "ci_high")]), checked


def _survey(a: Analyses, L: Labels) -> Section:
    d = a.study.design
    facts = {
        "source": a.study.source,
        "synthetic": a.study.bundled,
        "rows": d.n_rows,
        "design": {k: v for k, v in d.spec.items() if v not in (None, [], False)},
        "strata": d.n_strata,
        "psus": d.n_psu,
        "design_df": d.degf,
        "population_estimate": float(d.weights.sum()),
        "notes": a.study.notes,
    }
    items = [
        (L("q_rows"), _count(d.n_rows)),
        (L("q_strata"), _count(d.n_strata)),
        (L("q_psus"), _count(d.n_psu)),
        (L("q_df"), _count(d.degf)),
        (L("q_population"), _count(facts["population_estimate"])),
    ]
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in items)
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in a.study.notes)
    blocks = [f'<table class="t facts">{rows}</table>' + (f"<ul>{notes}</ul>" if notes else "")]
    return Section("survey", blocks, facts)


def _table1(a: Analyses, L: Labels) -> Section:
    table = a.coverage
    checked = _reliable(table.table, a.checks)
    groups = list(table.groups)
    order = checked.drop_duplicates("scheme")
    head = "".join(f"<th>{html.escape(L(g))}</th>" for g in groups)
    rows = []
    cells = checked.set_index(["scheme", "group"])
    for scheme, depth in zip(order["scheme"], order["depth"]):
        cls = "parent" if (depth == 0 and a.study.tree.children.get(scheme)) else ("child" if depth else "")
        tds = []
        for g in groups:
            if (scheme, g) not in cells.index:
                tds.append("<td>–</td>")
                continue
            r = cells.loc[(scheme, g)]
            mark = '<sup class="flag">†</sup>' if r["flags"] else ""
            tds.append(f"<td>{_pct(r['estimate'])}{mark} <span class=ci>({_pct(r['ci_low'])}–{_pct(r['ci_high'])})</span></td>")
        rows.append(f'<tr class="{cls} d{depth}"><th>{html.escape(L(scheme))}</th>{"".join(tds)}</tr>')
    counts = checked.drop_duplicates("group").set_index("group")["n"]
    rows.append(f'<tr class="nrow"><th>{L("n_row")}</th>' + "".join(f"<td>{_count(counts[g])}</td>" for g in groups) + "</tr>")
    wide = (f'<div class="tw"><table class="t t1"><caption>{html.escape(L("sec_table1"))}</caption>'
            f"<thead><tr><th>{L('col_scheme')}</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>")
    blocks = [f"<p>{html.escape(L('t1_intro'))}</p>", wide]
    if checked["flags"].str.len().any():
        blocks.append(_legend(checked["flags"], L))
    C = _chart_labels(L)
    chart = checked.assign(scheme=checked["scheme"])
    blocks.append(_png(_dots(chart, "scheme", C("t1_chart"), C, group="group"), C, height=1.2 + 0.42 * len(order)))
    long = Table(L("sec_table1"), checked, {"scheme": "label", "group": "label", "estimate": "pct", "ci_low": "pct",
                                              "ci_high": "pct", "n": "count", "n_covered": "count",
                                              **_flag_column(a.checks)})
    data: dict[str, Any] = {"table": _records(table.table), "interval_method": "Korn-Graubard",
                            "intervals": _records(checked[["group", "scheme", "ci_low", "ci_high", "flags"]]),
                            "notes": list(table.notes)}
    tables = [long]
    if a.study.bundled:
        compared = table.compare().assign(ci_low=checked["ci_low"].to_numpy(), ci_high=checked["ci_high"].to_numpy())
        compared = compared[compared["published"].notna()].reset_index(drop=True)
        compared["inside"] = (compared["published"] >= compared["ci_low"]) & (compared["published"] <= compared["ci_high"])
        compared["difference"] = 100 * compared["difference"]
        published = Table(L("t1_published"), compared,
                          {"scheme": "label", "group": "label", "estimate": "pct", "ci_low": "pct", "ci_high": "pct",
                           "published": "pct", "difference": "num1", "inside": "bool"}, [("ci_low", "ci_high")])
        inside = L("t1_inside", inside=int(compared["inside"].sum()), total=len(compared),
                   largest=_fixed(compared["difference"].abs().max(), 1))
        blocks += [f"<h3>{html.escape(L('t1_published'))}</h3><p>{html.escape(L('t1_published_intro'))}</p>",
                   f"<details><summary>{html.escape(inside)}</summary>{published.html(L)}</details>"]
        data["published_comparison"] = _records(compared)
        tables.append(published)
    return Section("table1", blocks, data, tables)


def _legend(codes: pd.Series, L: Labels) -> str:
    """The meaning of the flags that occur, in the report's language (the NCHS
    thresholds of :class:`sscoverage.publication.ReliabilityRules`)."""
    used = {c for text in codes for c in str(text).split(", ") if c}
    items = "".join(f"<li>{html.escape(L('flag_' + code))}</li>" for code in FLAG_MEANINGS if code in used)
    return f'<div class="legend"><p>† {html.escape(L("flag_note"))}</p><ul>{items}</ul></div>'


def _lapse(a: Analyses, L: Labels) -> Section:
    checks = a.checks
    rates = a.lapse.to_pandas()
    t, checked = _share_table(rates, [("subgroup", "label"), ("variable", "label")], checks, L("sec_lapse"), ("n_lapsers",))
    blocks = [f"<p>{html.escape(L('lapse_intro'))}</p>", t.html(L)]
    tables = [t]
    C = _chart_labels(L)
    pension = checked[checked["variable"] == "lapse_pension"]
    blocks.append(_png(_dots(pension, "subgroup", C("lapse_chart"), C), C, height=2.4))
    data: dict[str, Any] = {"rates": _records(checked), "interval_method": "Korn-Graubard"}
    if a.lapse_by_group is not None:
        by = a.lapse_by_group.to_pandas()
        t2, checked2 = _share_table(by, [("population_type", "label"), ("variable", "label")], checks, L("lapse_by_type"),
                                    ("n_lapsers",))
        blocks += [f"<h3>{html.escape(L('lapse_by_type'))}</h3>", t2.html(L)]
        tables.append(t2)
        data["by_population_type"] = _records(checked2)
    if any(t.frame["flags"].str.len().any() for t in tables):
        blocks.append(_legend(pd.concat([t.frame["flags"] for t in tables]), L))
    return Section("lapse", blocks, data, tables)


def _lapser_profile(a: Analyses, L: Labels) -> Section | None:
    if a.lapser_profile is None:
        return None
    table = a.lapser_profile.to_pandas()
    share = (table["kind"] == "share").to_numpy()
    t, checked = _mixed_table(table, [("variable", "label"), ("level", "label")], a.checks, share,
                              L("sec_lapser_profile"))
    t.kinds = {**{k: v for k, v in t.kinds.items() if k != "flags"}, "n_level": "count", **_flag_column(a.checks)}
    blocks = [f"<p>{html.escape(L('profile_intro'))}</p>", t.html(L)]
    if checked["flags"].str.len().any():
        blocks.append(_legend(checked["flags"], L))
    shares = checked[share & checked["variable"].isin(["age_band", "job_type", "work_status", "sex"]).to_numpy()]
    if not shares.empty:
        C = _chart_labels(L)
        blocks.append(_png(_dots(shares, "level", C("profile_chart"), C, group="variable"), C,
                           height=1.2 + 0.3 * len(shares)))
    return Section("lapser_profile", blocks, {"profile": _records(checked)}, [t])


def _interruptions(a: Analyses, L: Labels) -> Section | None:
    if a.interruptions is None:
        return None
    table = a.interruptions.to_pandas()
    share = table["variable"].isin(["ever_interrupted", "reentered"]).to_numpy()
    percent = share | (table["variable"] == "density").to_numpy()
    t, checked = _mixed_table(table, [("population", "label"), ("variable", "label")], a.checks,
                              share, L("sec_interruptions"), percent)
    spells = a.histories.spells
    lengths = spells["years"].clip(upper=10).value_counts().sort_index()
    facts = {"spells": int(len(spells)), "reentered": int(spells["reentered"].sum())}
    C = _chart_labels(L)

    def draw(ax: Any) -> None:
        ax.bar(lengths.index.astype(str), lengths.to_numpy(), color="#4c78a8")
        ax.set_xlabel(C("years_out_axis"))
        ax.set_ylabel(C("spells_axis"))
        ax.set_title(C("interruptions_chart"), fontsize=10, loc="left")
        ax.yaxis.set_major_formatter(_thousands())
        ax.spines[["top", "right"]].set_visible(False)

    counts = L("interruptions_spells", spells=_count(facts["spells"]), reentered=_count(facts["reentered"]))
    blocks = [f"<p>{html.escape(L('interruptions_intro'))}</p>", t.html(L), f"<p>{html.escape(counts)}</p>",
              _png(draw, C, height=3.0)]
    return Section("interruptions", blocks, {"summary": _records(checked), **facts}, [t])


def _thousands() -> Any:
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda x, _: f"{x:,.0f}")


def _reasons(a: Analyses, L: Labels) -> Section | None:
    blocks, data, tables = [], {}, []
    checks = a.checks
    C = _chart_labels(L)
    for key, ranking in (("never_insured", a.never_reasons), ("interrupted", a.interrupt_reasons)):
        if ranking is None:
            continue
        prefix = REASON_PREFIXES[key]
        table = ranking.to_pandas()
        table["reason"] = table["reason"].str.removeprefix(prefix)
        t, checked = _share_table(table, [("rank", "text"), ("reason", "label")], checks, L(key))
        top = ranking.top_two
        test = L("top_two", diff=_fixed(100 * top["difference"], 1), t=_fixed(top["t"], 2), df=_count(top["df"]),
                 p=_p(top["p_value"]))
        blocks += [f"<h3>{html.escape(L(key))}</h3>", t.html(L), f"<p>{html.escape(test)}</p>"]
        blocks.append(_png(_dots(checked, "reason", C("reasons_chart", what=C(key)), C), C, height=1.2 + 0.4 * len(checked)))
        data[key] = {"ranking": _records(checked), "top_two": top}
        tables.append(t)
    if not blocks:
        return None
    return Section("reasons", [f"<p>{html.escape(L('reasons_intro'))}</p>", *blocks], data, tables)


def _presumption(a: Analyses, L: Labels) -> Section | None:
    if a.presumption is None:
        return None
    checks = a.checks
    met, coverage = (e.to_pandas() for e in a.presumption)
    met = met.rename(columns={"level": "indicators_met"})
    t1, c1 = _share_table(met, [("indicators_met", "text")], checks, L("indicators_met"))
    t2, c2 = _share_table(coverage, [("employment_presumed", "label")], checks, L("basic_pension"))
    blocks = [f"<p>{html.escape(L('presumption_met'))}</p>", t1.html(L),
              f"<p>{html.escape(L('presumption_coverage'))}</p>", t2.html(L)]
    data = {"indicators_met": _records(c1), "coverage": _records(c2)}
    return Section("presumption", blocks, data, [t1, t2])


def _contributions(a: Analyses, L: Labels) -> Section | None:
    tables = [e.to_pandas() for e in a.contributions]
    if a.switching is not None:
        tables.append(a.switching.to_pandas())
    if not tables:
        return None
    checks = a.checks
    blocks, data, shown = [f"<p>{html.escape(L('contributions_intro'))}</p>"], {}, []
    for table in tables:
        name = str(table["variable"].iloc[0])
        t, checked = _share_table(table, [("level", "label")], checks, L(name))
        blocks += [f"<h3>{html.escape(L(name))}</h3>", t.html(L)]
        data[name] = _records(checked)
        shown.append(t)
    return Section("contributions", blocks, data, shown)


def _model(a: Analyses, L: Labels) -> Section | None:
    if a.lapse_fit is None:
        return None
    fit = a.lapse_fit
    odds = fit.odds_ratios()
    coef = a.model.reset_index(drop=True)
    table = odds.assign(estimate=coef["estimate"].to_numpy(), se=coef["se"].to_numpy())
    facts = {"n": int(fit.n), "df_residual": int(fit.df_residual), "dispersion": float(fit.dispersion)}
    shown = table[table["term"] != "(Intercept)"].reset_index(drop=True)
    t = Table(L("sec_lapse_model"), shown, {"term": "label", "odds_ratio": "num2", "ci_low": "num2", "ci_high": "num2",
                                            "p_value": "p"}, [("ci_low", "ci_high")])
    facts_text = L("model_facts", n=_count(facts["n"]), df=_count(facts["df_residual"]), dispersion=_fixed(facts["dispersion"], 3))
    blocks = [f"<p>{html.escape(L('model_intro'))}</p><p><code>{html.escape(LAPSE_MODEL)}</code></p>", t.html(L),
              f"<p>{html.escape(facts_text)}</p>"]
    data = {"formula": LAPSE_MODEL, "coefficients": _records(coef), "odds_ratios": _records(odds), **facts}
    return Section("lapse_model", blocks, data, [t])


def _threshold(a: Analyses, L: Labels) -> Section | None:
    if a.threshold is None:
        return None
    r = a.threshold
    text = L("threshold_text", threshold=_count(r.threshold), low=_count(r.ci_low), high=_count(r.ci_high),
             method=r.ci_method, p=_p(r.p_value), test=r.test_method)
    C = _chart_labels(L)

    def draw(ax: Any) -> None:
        threshold_profile(r, ax)
        ax.set_title(C("threshold_chart"), fontsize=10, loc="left")
        ax.set_xlabel(C("threshold_axis"))
        ax.set_ylabel(C("lr_axis"))
        ax.xaxis.set_major_formatter(_thousands())

    data = {"threshold": r.threshold, "ci_low": r.ci_low, "ci_high": r.ci_high, "p_value": r.p_value,
            "summary": _records(r.summary())}
    return Section("threshold", [f"<p>{html.escape(text)}</p>", _png(draw, C, height=3.0)], data)


def _reentry(a: Analyses, L: Labels) -> Section | None:
    if a.reentry is None:
        return None
    table = a.reentry.to_pandas()
    t = Table(L("sec_reentry"), table, {"time": "count", "survival": "pct", "ci_low": "pct", "ci_high": "pct"},
              [("ci_low", "ci_high")])
    C = _chart_labels(L)

    def draw(ax: Any) -> None:
        survival_curves(a.reentry, ax)
        ax.set_title(C("reentry_chart"), fontsize=10, loc="left")
        ax.set_xlabel(C("years_since_axis"))
        ax.set_ylabel(C("still_out_axis"))
        ax.yaxis.set_major_formatter(_percent())

    blocks = [f"<p>{html.escape(L('reentry_intro'))}</p>", t.html(L), _png(draw, C, height=3.0)]
    data = {"curve": _records(table), "definition": "first interruption of each person",
            "persons": int(a.histories.persons["ever_interrupted"].sum())}
    return Section("reentry", blocks, data, [t])


def _provinces(a: Analyses, L: Labels) -> Section | None:
    """Flexible workers' pension lapse by province: Fay-Herriot EBLUPs beside the direct
    estimates (the bundled survey only: its provincial covariates ship with the package)."""
    if not a.study.bundled:
        return None
    from ..study.datasets import CoverageSurvey
    from ..study.small_area import provincial_lapse

    fit = provincial_lapse(CoverageSurvey(persons=a.data, histories=a.study.histories))
    table = fit.to_pandas().sort_values("direct_cv", ascending=False)
    shown = table[["province", "n", "direct", "direct_cv", "gamma", "eblup", "cv", "ci_low", "ci_high",
                   "benchmarked"]]
    t = Table(L("sec_provinces"), shown, {"province": "text", "n": "count", "direct": "pct", "direct_cv": "pct",
                                           "gamma": "num2", "eblup": "pct", "cv": "pct", "ci_low": "pct",
                                           "ci_high": "pct", "benchmarked": "pct"}, [("ci_low", "ci_high")])
    C = _chart_labels(L)

    def draw(ax: Any) -> None:
        dot_interval(ax, list(table["province"]), table["eblup"], table["ci_low"], table["ci_high"],
                     title=C("provinces_chart"), percent=True)
        ax.scatter(table["direct"], range(len(table)), marker="x", color="#8a8a8a", zorder=3,
                   label=C("col_direct"))
        ax.legend(loc="lower right", fontsize=8)

    text = L("provinces_intro", variance=f"{fit.model_variance:.5f}", method=fit.method)
    blocks = [f"<p>{html.escape(text)}</p>", t.html(L), _png(draw, C, height=max(3.0, 0.22 * len(table)))]
    data = {"method": fit.method, "mse": fit.mse_method, "model_variance": fit.model_variance,
            "coefficients": _records(fit.coefficients), "provinces": _records(table)}
    return Section("provinces", blocks, data, [t])


def _percent() -> Any:
    from matplotlib.ticker import PercentFormatter

    return PercentFormatter(xmax=1, decimals=0)


def _scenario(a: Analyses, L: Labels) -> Section | None:
    if a.scenario is None:
        return None
    table = a.scenario.to_pandas()
    t = Table(L("sec_scenario"), table, {"variable": "label", "estimate": "pct", "ci_low": "pct", "ci_high": "pct"},
              [("ci_low", "ci_high")])
    text = L("scenario_intro", floor=_count(SUBSIDY_FLOOR))
    return Section("scenario", [f"<p>{html.escape(text)}</p>", t.html(L)], {"scenario": _records(table)}, [t])


def _checks(a: Analyses, L: Labels) -> Section | None:
    if not a.study.bundled:
        return None
    checks = study_checks(a)
    used = checks.assign(share_of_tolerance=checks["deviation"].abs() / checks["tolerance"])
    families = used.groupby("family", sort=False).agg(
        figures=("figure", "size"),
        largest=("share_of_tolerance", "max"),
        within=("within", "all"),
    ).reset_index()
    summary = Table(L("sec_published_figures"), families,
                    {"family": "text", "figures": "count", "largest": "num2", "within": "bool"})
    detail = Table("", checks, {"family": "text", "figure": "text", "published": "num3", "estimate": "num3",
                                "deviation": "num3", "tolerance": "num3", "within": "bool"})
    blocks = [f"<p>{html.escape(L('checks_intro'))}</p>", summary.html(L),
              f"<details><summary>{len(checks)} {html.escape(L('col_figures'))}</summary>{detail.html(L)}</details>"]
    data = {"families": _records(families), "checks": _records(checks)}
    return Section("published_figures", blocks, data, [summary, detail])


def _quality(a: Analyses, L: Labels) -> Section:
    import platform

    import matplotlib
    import polars

    d = a.study.design
    spec = {k: v for k, v in d.spec.items() if v not in (None, [], False)}
    design_text = "; ".join(f"{k} = {', '.join(v) if isinstance(v, list) else v}" for k, v in spec.items())
    weighting = d.weighting_report()
    steps = [L("q_weights_given", column=d.spec.get("weights") or "probs", deff=_fixed(weighting.kish_deff, 3),
               neff=_count(weighting.effective_n))]
    steps += [L("q_weight_step", step=i + 1, method=adj.method) for i, adj in enumerate(weighting.adjustments)]
    used = [c for c in a.data.columns if c in _used_columns(a)]
    missing = pd.DataFrame({"column": used, "missing": [int(a.data[c].isna().sum()) for c in used]})
    missing = missing[missing["missing"] > 0].reset_index(drop=True)
    software = {
        "sscoverage": __version__, "python": platform.python_version(), "numpy": np.__version__,
        "pandas": pd.__version__, "polars": polars.__version__, "matplotlib": matplotlib.__version__,
    }
    facts = [
        (L("q_design"), design_text),
        (L("q_rows"), _count(d.n_rows)),
        (L("q_strata"), _count(d.n_strata)),
        (L("q_psus"), _count(d.n_psu)),
        (L("q_df"), _count(d.degf)),
        (L("q_population"), _count(float(d.weights.sum()))),
        (L("q_weighting"), " ".join(steps)),
        (L("q_software"), ", ".join(f"{k} {v}" for k, v in software.items())),
    ]
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in facts)
    methods = "".join(f"<li>{html.escape(L(k))}</li>" for k in
                      ("q_interval_props", "q_interval_means", "q_interval_models", "q_interval_km",
                       "q_flags" if a.checks.rules is not None else "q_no_flags"))
    t = Table(L("q_missing"), missing, {"column": "text", "missing": "count"})
    blocks = [f"<p>{html.escape(L('quality_intro'))}</p>", f'<table class="t facts">{rows}</table>',
              f"<h3>{html.escape(L('q_intervals'))}</h3><ul>{methods}</ul>",
              f"<h3>{html.escape(L('q_missing'))}</h3><p>{html.escape(L('q_missing_intro'))}</p>",
              t.html(L) if len(missing) else "<p>0</p>"]
    data = {"design": spec, "rows": d.n_rows, "strata": d.n_strata, "psus": d.n_psu, "design_df": d.degf,
            "population_estimate": float(d.weights.sum()), "kish_deff": weighting.kish_deff,
            "effective_n": weighting.effective_n, "weighting_steps": [adj.method for adj in weighting.adjustments],
            "missing": _records(missing),
            "interval_methods": {"shares": "Korn-Graubard (NCHS)", "means": "Wald, t on design df",
                                 "models": "Wald on log odds, t on residual df", "reentry": "svykm log scale"},
            "reliability": a.study.flags, "software": software}
    return Section("quality", blocks, data, [t])


def _used_columns(a: Analyses) -> set[str]:
    s = a.study
    return {*s.tree.leaves, *PROFILE_CATEGORICAL, *PROFILE_CONTINUOUS, *PLATFORM_CONTROLS, "population_type",
            "job_type", "contract_type", "first_job_year", *[c for cols in s.reasons.values() for c in cols],
            "employee_contribution_monthly", "resident_contribution_yearly", "pension_scheme", "previous_pension_scheme"}


SECTIONS: list[Callable[[Analyses, Labels], Section | None]] = [
    _survey,
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
    _provinces,
    _checks,
    _quality,
]

_STYLE = """
:root{--ink:#1d2733;--muted:#5b6775;--rule:#d5dbe1;--accent:#1f5f8b}
*{box-sizing:border-box}
body{font-family:"Noto Sans","Noto Sans CJK SC","Source Han Sans SC","PingFang SC","Microsoft YaHei",system-ui,sans-serif;
max-width:1040px;margin:0 auto;padding:1.5em 1.2em;color:var(--ink);line-height:1.5;font-size:15px}
h1{font-size:1.7em;margin:.2em 0} h2{font-size:1.25em;color:var(--accent);border-bottom:2px solid var(--accent);
padding-bottom:.15em;margin-top:2.2em} h3{font-size:1.02em;margin:1.4em 0 .4em}
.source{color:var(--muted);font-size:.9em;overflow-wrap:anywhere}
nav{background:#f4f6f8;padding:.6em 1em;border-radius:4px;font-size:.92em} nav ol{margin:.3em 0;columns:2}
nav a{color:var(--accent);text-decoration:none}
.tw{max-width:100%;overflow-x:auto}
table.t{border-collapse:collapse;font-size:.85em;margin:.6em 0;font-variant-numeric:tabular-nums}
table.t caption{text-align:left;font-weight:600;padding:.2em 0;color:var(--muted)}
table.t th,table.t td{padding:.25em .6em;border-bottom:1px solid #eef0f2;text-align:right}
table.t thead th{border-bottom:2px solid var(--ink);vertical-align:bottom}
table.t td:first-child,table.t th:first-child,table.t .l{text-align:left}
table.t1 td{white-space:nowrap} .ci{color:var(--muted);font-size:.9em}
table.t1 tbody th{text-align:left;font-weight:normal} tr.parent th{font-weight:700}
tr.child th{padding-left:1.6em} tr.nrow{border-top:2px solid var(--ink)} tr.nrow th{font-style:italic}
table.facts th{text-align:left;font-weight:600;width:16em} table.facts td{text-align:left;overflow-wrap:anywhere}
sup.flag{color:#a33}
.legend{font-size:.8em;color:var(--muted)} .legend ul{margin:.2em 0}
.synthetic{background:#fff3cd;border:1px solid #e0c36b;padding:.6em 1em;border-radius:4px}
figure{margin:.8em 0} img{max-width:100%;height:auto}
code{overflow-wrap:anywhere}
footer{margin-top:3em;color:var(--muted);font-size:.8em;border-top:1px solid var(--rule);padding-top:.6em}
@media print{
 body{max-width:none;font-size:10pt;padding:0} nav{display:none}
 section{break-inside:auto} h2{break-after:avoid;page-break-after:avoid} h3{break-after:avoid}
 table.t,figure{break-inside:avoid;page-break-inside:avoid} .tw{overflow:visible}
 details{display:block} details>*{display:block}
 a{color:inherit;text-decoration:none}
 @page{size:A4;margin:16mm 14mm}
}
"""


@dataclass
class Report:
    """A finished report: its sections, as HTML (:meth:`html`), JSON (:meth:`to_json`)
    and an Excel workbook (:meth:`to_excel`), in the language of `labels`."""

    study: Study
    sections: list[Section]
    labels: Labels

    def html(self) -> str:
        L = self.labels
        nav = "".join(f'<li><a href="#{s.key}">{html.escape(L("sec_" + s.key))}</a></li>' for s in self.sections)
        warning = f'<p class="synthetic"><b>{html.escape(L("synthetic_banner"))}</b></p>' if self.study.bundled else ""
        body = "".join(
            f'<section id="{s.key}"><h2>{html.escape(L("sec_" + s.key))}</h2>' + "".join(s.blocks) + "</section>"
            for s in self.sections
        )
        lang = "zh-Hans" if L.lang == "zh" else "en"
        title = html.escape(L("report_title"))
        return (
            f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{title}</title><style>{_STYLE}</style></head><body>"
            f'<header><h1>{title}</h1><p class="source">{html.escape(L("source"))}: {html.escape(self.study.source)}</p>'
            f"{warning}</header><nav><b>{html.escape(L('contents'))}</b><ol>{nav}</ol></nav>{body}"
            f"<footer>{html.escape(L('generated', version=__version__))}</footer></body></html>"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "generator": f"sscoverage {__version__}",
            "language": self.labels.lang,
            "source": self.study.source,
            "synthetic": self.study.bundled,
            "sections": {s.key: s.data for s in self.sections},
        }

    def to_excel(self, path: str | Path) -> None:
        """One sheet per table (numbers as numbers, percentages in percent, labels in
        the report's language); needs openpyxl."""
        with pd.ExcelWriter(path, engine="openpyxl") as writer:
            for section in self.sections:
                for k, table in enumerate(section.tables):
                    suffix = "" if k == 0 else f"_{k + 1}"
                    name = f"{section.key}{suffix}"[:31]
                    frame = table.excel(self.labels)
                    frame.to_excel(writer, sheet_name=name, index=False, startrow=1)
                    sheet = writer.sheets[name]
                    sheet.cell(row=1, column=1, value=table.title or self.labels("sec_" + section.key))
                    for j, kind in enumerate(table.kinds.values(), start=1):
                        if kind in FORMATS:
                            for row in sheet.iter_rows(min_row=3, min_col=j, max_col=j):
                                row[0].number_format = FORMATS[kind][1]


def build_report(study: Study, progress: bool = True, lang: str = "en", flags: str | None = None) -> Report:
    """Every section of the report on `study` in language `lang` (``"en"`` or ``"zh"``),
    with reliability flags `flags` (``"nchs"`` or ``"none"``; default the study's),
    showing progress unless `progress` is False."""
    if flags is not None:
        if flags not in FLAG_RULES:
            raise MappingError(f"flags={flags!r}; use one of {', '.join(FLAG_RULES)}")
        study = replace(study, flags=flags)
    labels = Labels(lang, study.labels)
    analyses = Analyses(study)
    built = (build(analyses, labels) for build in track(SECTIONS, len(SECTIONS), "coverage report", progress))
    return Report(study, [section for section in built if section is not None], labels)
