"""The coverage report's numbers (``sscoverage report --json``), each checked by its
label against plain numpy over the bundled synthetic survey's columns: point estimates
as weighted shares and means, standard errors as the stratified with-replacement
variance of PSU totals (``tests/_oracle.py``).  Estimates within a table are distinct,
so a swapped label fails.  The lapse model is checked against R's svyglm.

Keys relied on (the report's JSON): ``sections.survey.{rows, design_df,
population_estimate}``; ``sections.table1.table[group, scheme, estimate, se, n]``;
``sections.lapse.rates[subgroup, variable, estimate, se, n]``;
``sections.lapse.by_population_type[population_type, variable, estimate, se, n]``;
``sections.lapser_profile.profile[variable, kind, level, estimate, se, n]``;
``sections.reasons.{never_insured, interrupted}.ranking[rank, reason, estimate, se, n]``;
``sections.presumption.indicators_met[level, estimate, se, n]``;
``sections.lapse_model.coefficients[term, estimate, se, t, p_value, ci_low, ci_high]``.
"""

from __future__ import annotations

import json
import sys
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

import sscoverage as ssc
from sscoverage.cli import main

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _oracle  # noqa: E402

RTOL = 1e-9  # sums in another order
# The study's scheme tree (Table 1): a parent is covered if any child is.
TREE = {
    "basic_pension": ["employee_pension", "resident_pension"],
    "supplementary_pension": ["enterprise_or_occupational_annuity", "individual_pension", "other_commercial_pension"],
    "basic_medical": ["employee_medical", "resident_medical"],
    "supplementary_medical": ["enterprise_supplementary_or_public_medical", "commercial_medical",
                              "other_supplementary_medical"],
    "work_injury": [],
    "unemployment": [],
}
FLEXIBLE_JOBS = ["new_employment_form", "other_flexible"]


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("report_numbers")
    assert main(["report", "--out", str(folder / "r.html"), "--json", str(folder / "r.json"), "--no-progress"]) == 0
    return json.loads((folder / "r.json").read_text())["sections"]


@pytest.fixture(scope="module")
def persons() -> pd.DataFrame:
    return ssc.datasets.coverage_survey().persons


class Hand:
    """Weighted shares and means with their SEs, by hand over the persons' columns."""

    def __init__(self, persons: pd.DataFrame) -> None:
        self.p = persons
        self.w = persons["weight"].to_numpy(float)
        self.args = (self.w, persons["province"].to_numpy(), persons["county"].to_numpy())

    def mean(self, y: np.ndarray, inside: np.ndarray | None = None) -> tuple[float, float]:
        inside = np.ones(len(y), bool) if inside is None else np.asarray(inside, bool)
        inside = inside & ~np.isnan(y)
        return _oracle.domain_mean(np.nan_to_num(y), *self.args, inside)

    def covered(self, scheme: str) -> np.ndarray:
        children = TREE.get(scheme) or [scheme]
        return self.p[children].to_numpy(float).max(axis=1)


def _check(rows: list[dict], keys: list[str], expected: dict[tuple, tuple[float, float]]) -> None:
    """Every row's estimate and SE by its labels; the expected estimates are distinct."""
    got = {tuple(row[k] for k in keys): (row["estimate"], row["se"]) for row in rows}
    assert set(got) == set(expected)
    for label, want in expected.items():
        assert_allclose(got[label], want, rtol=RTOL, err_msg=str(label))


def _distinct(expected: dict[tuple, tuple[float, float]], allowed: set[frozenset] = frozenset()) -> None:
    for (a, x), (b, y) in combinations(expected.items(), 2):
        if frozenset((a, b)) not in allowed:
            assert abs(x[0] - y[0]) > 1e-6, f"{a} and {b} have the same estimate: a swap would pass"


def test_survey_facts(report, persons):
    facts = report["survey"]
    n_psu = persons.groupby(["province", "county"]).ngroups
    assert facts["rows"] == len(persons)
    assert facts["design_df"] == n_psu - persons["province"].nunique()
    assert_allclose(facts["population_estimate"], persons["weight"].sum(), rtol=1e-12)


def test_table1_every_scheme_and_group(report, persons):
    hand = Hand(persons)
    groups = {"all": np.ones(len(persons), bool)}
    groups.update({g: (persons["population_type"] == g).to_numpy() for g in persons["population_type"].unique()})
    schemes = [s for parent, children in TREE.items() for s in [parent, *children]]
    expected = {(g, s): hand.mean(hand.covered(s), inside) for g, inside in groups.items() for s in schemes}
    _check(report["table1"]["table"], ["group", "scheme"], expected)
    for g in groups:
        _distinct({k: v for k, v in expected.items() if k[0] == g},
                  # The bundled survey draws employee medical insurance with employee pension.
                  allowed={frozenset({(g, "employee_pension"), (g, "employee_medical")})})


def _lapse(persons: pd.DataFrame) -> dict[str, np.ndarray]:
    pension = 1 - persons[TREE["basic_pension"]].to_numpy(float).max(axis=1)
    medical = 1 - persons[TREE["basic_medical"]].to_numpy(float).max(axis=1)
    return {"lapse_pension": pension, "lapse_medical": medical, "lapse_both": pension * medical}


def test_lapse_rates_by_subgroup_pension_and_medical_apart(report, persons):
    hand = Hand(persons)
    subgroups = {
        "all": np.ones(len(persons), bool),
        "flexible workers": persons["job_type"].isin(FLEXIBLE_JOBS).to_numpy(),
        "platform workers": (persons["job_type"] == "new_employment_form").to_numpy(),
        "contract employees": (persons["contract_type"] == "labour_contract").to_numpy(),
    }
    lapse = _lapse(persons)
    expected = {(s, v): hand.mean(y, inside) for s, inside in subgroups.items() for v, y in lapse.items()}
    _check(report["lapse"]["rates"], ["subgroup", "variable"], expected)
    for s in subgroups:
        # Pension and medical lapse must differ for a swap to show; in the bundled survey
        # whoever lapses from medical insurance lapses from pension too, so "both" is
        # the medical rate (checked by its own definition above).
        assert abs(expected[(s, "lapse_pension")][0] - expected[(s, "lapse_medical")][0]) > 1e-3, s
        assert (lapse["lapse_medical"] <= lapse["lapse_pension"]).all()
    rows = {r["variable"]: r for r in report["lapse"]["rates"] if r["subgroup"] == "all"}
    assert rows["lapse_pension"]["n"] == len(persons)


def test_lapse_rates_by_population_type(report, persons):
    hand = Hand(persons)
    lapse = _lapse(persons)
    expected = {
        (g, v): hand.mean(y, (persons["population_type"] == g).to_numpy())
        for g in persons["population_type"].unique() for v, y in lapse.items()
    }
    _check(report["lapse"]["by_population_type"], ["population_type", "variable"], expected)
    _distinct({k: v for k, v in expected.items() if k[1] == "lapse_pension"})


def test_lapser_profile(report, persons):
    hand = Hand(persons)
    lapsers = _lapse(persons)["lapse_pension"] == 1
    rows = report["lapser_profile"]["profile"]
    expected = {}
    for row in rows:
        column = persons[row["variable"]]
        if row["kind"] == "share":
            y = (column.astype(str) == str(row["level"])).to_numpy(float)
        else:
            assert row["kind"] == "mean" and row["level"] is None
            y = column.to_numpy(float)
        expected[(row["variable"], row["kind"], row["level"])] = hand.mean(y, lapsers)
    assert {r["variable"] for r in rows} >= {"sex", "age_band", "job_type", "age", "monthly_income"}
    _check(rows, ["variable", "kind", "level"], expected)
    for variable in {r["variable"] for r in rows if r["kind"] == "share"}:
        levels = [k for k in expected if k[0] == variable]
        assert_allclose(sum(expected[k][0] for k in levels), 1.0, rtol=1e-12)
        # Two levels of one variable with equal shares could be swapped unseen.
        _distinct({k: expected[k] for k in levels})


@pytest.mark.parametrize("section,prefix", [("never_insured", "never_reason_"), ("interrupted", "interrupt_reason_")])
def test_reason_rankings(report, persons, section, prefix):
    hand = Hand(persons)
    rows = report["reasons"][section]["ranking"]
    expected = {(r["reason"],): hand.mean(persons[prefix + r["reason"]].to_numpy(float)) for r in rows}
    assert len(expected) == len([c for c in persons.columns if c.startswith(prefix)])
    _check(rows, ["reason"], expected)
    _distinct(expected)
    ranks = [r["rank"] for r in sorted(rows, key=lambda r: -expected[(r["reason"],)][0])]
    assert ranks == list(range(1, len(rows) + 1))
    answered = persons[prefix + rows[0]["reason"]].notna().sum()
    assert all(r["n"] == answered for r in rows)


def test_platform_workers_indicators_met(report, persons):
    """The "two of five" presumption: how many of the five control indicators a platform
    worker meets (the shares of 0 ... 5 among those with every indicator known)."""
    hand = Hand(persons)
    controls = persons[[c for c in persons.columns if c.startswith("control_")]].to_numpy(float)
    assert controls.shape[1] == 5
    met = controls.sum(axis=1)  # NaN where an indicator is unknown
    known = ~np.isnan(met)
    expected = {(level,): hand.mean((met == level).astype(float), known) for level in range(6)}
    _check(report["presumption"]["indicators_met"], ["indicators_met"], expected)
    _distinct(expected)


def test_lapse_model_of_platform_workers_is_r_s(report):
    """Every coefficient, SE, t, p and interval against R's svyglm on the same survey
    (tests/data/r_checks/report_model.R); the report prints 15 decimals."""
    r = json.loads((Path(__file__).resolve().parent / "data" / "r_checks" / "report_model.json").read_text())
    table = pd.DataFrame(report["lapse_model"]["coefficients"]).set_index("term")
    assert table.index.tolist() == r["terms"]
    for column in ("estimate", "se", "t", "p_value", "ci_low", "ci_high"):
        assert_allclose(table[column].to_numpy(), r[column], rtol=1e-9, atol=1e-14, err_msg=column)
