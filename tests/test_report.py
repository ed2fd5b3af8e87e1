"""The coverage report (``sscoverage report``): on the bundled survey, with every
published figure reproduced, and on a user's file with a column mapping."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import sscoverage as ssc
from sscoverage.cli import main
from sscoverage.report import Analyses, build_report, bundled_study, study_checks, study_from_files


@pytest.fixture(scope="module")
def bundled(tmp_path_factory) -> tuple[dict, str, float]:
    folder = tmp_path_factory.mktemp("report")
    start = time.perf_counter()
    code = main(["report", "--out", str(folder / "r.html"), "--json", str(folder / "r.json"), "--no-progress"])
    elapsed = time.perf_counter() - start
    assert code == 0
    return json.loads((folder / "r.json").read_text()), (folder / "r.html").read_text(), elapsed


def test_report_on_the_bundled_survey(bundled):
    numbers, page, elapsed = bundled
    assert elapsed < 60
    assert numbers["synthetic"] is True
    expected = ["survey", "table1", "lapse", "lapser_profile", "interruptions", "reasons", "presumption",
                "contributions", "lapse_model", "threshold", "reentry", "scenario", "published_figures"]
    assert list(numbers["sections"]) == expected
    assert page.startswith("<!doctype html>") and "Synthetic data" in page
    assert page.count("data:image/png;base64,") >= 5
    assert "http://" not in page and "https://" not in page  # self-contained


def test_report_json_has_table1_and_every_figure_within_tolerance(bundled):
    numbers, _, _ = bundled
    table1 = pd.DataFrame(numbers["sections"]["table1"]["table"])
    direct = ssc.coverage_table(ssc.datasets.coverage_survey().design()).to_pandas()
    np.testing.assert_allclose(table1["estimate"], direct["estimate"], rtol=1e-12)
    np.testing.assert_allclose(table1["se"], direct["se"], rtol=1e-12)
    checks = pd.DataFrame(numbers["sections"]["published_figures"]["checks"])
    assert set(checks["family"]) >= {"Table 1", "Lapse", "Lapser profile", "Flexible workers", "Interruptions"}
    assert (checks["family"] == "Table 1").sum() == 80
    assert checks["within"].all(), checks[~checks["within"]]


def test_checks_use_the_issue_tolerances():
    checks = study_checks(Analyses(bundled_study())).set_index("figure")
    assert checks.loc["basic_pension [all]", "tolerance"] == 0.005
    assert checks.loc["pension_lapse_rate", "tolerance"] == 0.01
    assert checks.loc["mean_density", "tolerance"] == pytest.approx(0.0113)


# The lapse model's every number against R: tests/test_report_numbers.py.


def test_threshold_reentry_and_scenario_sections(bundled):
    """The study's income threshold, re-entry after interruptions and an income floor."""
    data, page, _ = bundled
    sections = data["sections"]
    t = sections["threshold"]
    # The bundled survey builds its participation threshold near 5,000 yuan a month.
    assert 4_000 < t["threshold"] < 7_000 and t["ci_low"] <= t["threshold"] <= t["ci_high"]
    assert t["p_value"] < 0.05
    curve = [row["survival"] for row in sections["reentry"]["curve"]]
    assert all(a >= b for a, b in zip(curve, curve[1:])) and 0 < curve[-1] < curve[0] <= 1
    change = next(r for r in sections["scenario"]["scenario"] if r["variable"] == "change")
    # Raising low incomes lowers predicted lapse, by more than its standard error.
    assert change["estimate"] < 0 and change["se"] > 0 and change["ci_high"] < 0
    assert "Income threshold" in page and "Re-entry after an interruption" in page


@pytest.fixture
def user_files(tmp_path) -> tuple[Path, Path, dict]:
    """Four provinces of the bundled survey under other column names, with histories."""
    survey = ssc.datasets.coverage_survey()
    persons = survey.persons[survey.persons["province"].isin(["P01", "P02", "P03", "P04"])]
    persons = persons.drop(columns=["population_type", "age_band", "weekly_hours_band", "income_band"])
    persons = persons.rename(columns={"weight": "wt", "employee_pension": "ep", "age": "age_years"})
    persons.to_csv(tmp_path / "survey.csv", index=False)
    survey.histories[survey.histories["person_id"].isin(persons["person_id"])].rename(
        columns={"contributed": "paid"}
    ).to_csv(tmp_path / "years.csv", index=False)
    mapping = {
        "design": {"ids": "county", "strata": "province", "weights": "wt"},
        "columns": {"employee_pension": "ep", "age": "age_years"},
        "histories": {"file": "years.csv", "contributed": "paid"},
    }
    (tmp_path / "map.json").write_text(json.dumps(mapping))
    return tmp_path / "survey.csv", tmp_path / "map.json", mapping


def test_report_on_a_user_csv_with_a_mapping(user_files, tmp_path):
    data, mapping, _ = user_files
    code = main(["report", "--data", str(data), "--mapping", str(mapping), "--out", str(tmp_path / "u.html"),
                 "--json", str(tmp_path / "u.json"), "--no-progress"])
    assert code == 0
    numbers = json.loads((tmp_path / "u.json").read_text())
    assert numbers["synthetic"] is False
    sections = numbers["sections"]
    assert "published_figures" not in sections and "published_comparison" not in sections["table1"]
    groups = {row["group"] for row in sections["table1"]["table"]}
    assert groups == {"all", *ssc.coverage.POPULATION_TYPES}  # derived from the hukou columns
    assert {"lapser_profile", "interruptions", "lapse_model"} <= set(sections)
    ages = [r for r in sections["lapser_profile"]["profile"] if r["variable"] == "age_band"]
    assert len(ages) == 4  # bands derived from the mapped age column


def test_mapped_column_missing_names_column_and_key(user_files, capsys, tmp_path):
    data, mapping, spec = user_files
    spec["columns"]["resident_pension"] = "rp_paid"
    mapping.write_text(json.dumps(spec))
    message = r"column 'rp_paid' \(mapping key 'columns.resident_pension'\) is not in survey.csv"
    with pytest.raises(ssc.ColumnError, match=message):
        study_from_files(data, mapping)
    args = ["report", "--data", str(data), "--mapping", str(mapping), "--out", str(tmp_path / "x.html"), "--no-progress"]
    assert main(args) == 2
    assert "'rp_paid' (mapping key 'columns.resident_pension')" in capsys.readouterr().err


def test_unmapped_scheme_and_design_columns(user_files):
    data, mapping, spec = user_files
    del spec["columns"]["employee_pension"]
    mapping.write_text(json.dumps(spec))
    with pytest.raises(ssc.ColumnError, match=r"column 'employee_pension' \(mapping key 'columns.employee_pension'\)"):
        study_from_files(data, mapping)
    spec["columns"]["employee_pension"] = "ep"
    spec["design"]["weights"] = "weight"
    mapping.write_text(json.dumps(spec))
    with pytest.raises(ssc.ColumnError, match=r"column 'weight' \(mapping key 'design.weights'\)"):
        study_from_files(data, mapping)


def test_bad_mappings(user_files):
    data, mapping, spec = user_files
    mapping.write_text("{not json")
    with pytest.raises(ssc.MappingError, match="not valid JSON"):
        study_from_files(data, mapping)
    mapping.write_text(json.dumps({**spec, "colums": {}}))
    with pytest.raises(ssc.MappingError, match=r"unknown keys \['colums'\]"):
        study_from_files(data, mapping)
    mapping.write_text(json.dumps({**spec, "columns": {**spec["columns"], "sex": "hukou_type"}}))
    with pytest.raises(ssc.MappingError, match="'columns.sex' renames a column to 'sex', which the file already has"):
        study_from_files(data, mapping)


def test_report_without_optional_columns(tmp_path):
    """Only the design and the scheme columns: Table 1 and lapse, the rest left out."""
    survey = ssc.datasets.coverage_survey()
    leaves = ssc.SchemeTree.study().leaves
    survey.persons[["province", "county", "weight", *leaves]].to_csv(tmp_path / "min.csv", index=False)
    (tmp_path / "map.json").write_text(json.dumps({"design": {"ids": "county", "strata": "province", "weights": "weight"}}))
    report = build_report(study_from_files(tmp_path / "min.csv", tmp_path / "map.json"), progress=False)
    assert [s.key for s in report.sections] == ["survey", "table1", "lapse"]
    assert "<h2" in report.html()
