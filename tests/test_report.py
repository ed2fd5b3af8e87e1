"""The coverage report (``sscoverage report``): on the bundled survey, with every
published figure reproduced, and on a user's file with a column mapping."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import sscoverage as ssc
from sscoverage.cli import main
from sscoverage.study.coverage import first_interruption
from sscoverage.results.publication import FLAG_MEANINGS
from _report_files import nested_survey
from sscoverage.report.report import Analyses, Labels, build_report, bundled_study, mapping_template, study_checks, study_from_files


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
                "contributions", "lapse_model", "threshold", "reentry", "scenario", "provinces", "published_figures", "quality"]
    assert list(numbers["sections"]) == expected
    # The provincial section is small_area.provincial_lapse on the same survey, number
    # for number (31 provinces, model variance, EBLUPs).
    fit = ssc.small_area.provincial_lapse()
    provinces = pd.DataFrame(numbers["sections"]["provinces"]["provinces"]).set_index("province")
    assert numbers["sections"]["provinces"]["model_variance"] == fit.model_variance
    assert len(provinces) == 31
    expected_eblup = fit.to_pandas().set_index("province")["eblup"]
    assert (provinces["eblup"].reindex(expected_eblup.index) == expected_eblup).all()
    assert page.startswith("<!doctype html>") and "Synthetic data" in page
    assert page.count("data:image/png;base64,") >= 5
    assert "http://" not in page and "https://" not in page  # self-contained


def test_report_json_has_table1_and_every_figure_within_tolerance(bundled):
    numbers, _, _ = bundled
    table1 = pd.DataFrame(numbers["sections"]["table1"]["table"])
    direct = ssc.coverage_table(ssc.datasets.coverage_survey().design()).to_pandas()
    # Full precision: the JSON holds every digit of the estimates.
    np.testing.assert_array_equal(table1["estimate"], direct["estimate"])
    np.testing.assert_array_equal(table1["se"], direct["se"])
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
    assert sections["reentry"]["definition"] == "first interruption of each person"
    curve = [row["survival"] for row in sections["reentry"]["curve"]]
    assert all(a >= b for a, b in zip(curve, curve[1:])) and 0 < curve[-1] < curve[0] <= 1
    change = next(r for r in sections["scenario"]["scenario"] if r["variable"] == "change")
    # Raising low incomes lowers predicted lapse, by more than its standard error.
    assert change["estimate"] < 0 and change["se"] > 0 and change["ci_high"] < 0
    assert "Income threshold" in page and "Re-entry after a first interruption" in page


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
    assert "provinces" not in sections  # provincial covariates exist for the bundled survey only
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
    assert [s.key for s in report.sections] == ["survey", "table1", "lapse", "quality"]
    assert "<h2" in report.html()


# ---------------------------------------------------------------------------- publication quality
def test_published_numbers_have_no_e_notation_and_one_decimal(bundled):
    numbers, page, _ = bundled
    text = re.sub(r'src="data:image/png;base64,[^"]*"', "", page)
    assert not re.search(r"\d[eE][+-]?\d", text)  # no 2.499e-21, 4.441e-05
    assert "None" not in text and "{'" not in text  # no level "None", no Python dict
    assert "hukou_typeagricultural" not in text.split("<code>")[0]  # terms by their labels
    assert "393,271,528" in text  # the population estimate with thousands separators
    assert "&lt; 0.001" in text  # p-values as published
    # Table 1: basic pension of everyone, one decimal, with its interval; parents bold.
    assert re.search(r'<tr class="parent d0"><th>Basic pension</th><td>92\.0<?[^<]*<span class=ci>\(\d+\.\d–\d+\.\d\)', text)
    assert '<tr class="child d1"><th>Employee pension</th>' in text and 'class="nrow"' in text


def test_share_intervals_stay_inside_zero_one_and_match_korn_graubard(bundled):
    numbers, _, _ = bundled
    sections = numbers["sections"]
    profile = pd.DataFrame(sections["lapser_profile"]["profile"])
    shares = profile[profile["kind"] == "share"]
    assert (shares["ci_low"] >= 0).all() and (shares["ci_high"] <= 1).all()
    # The study's smallest share (collective enterprises among lapsers) had a negative
    # Wald limit; the Korn-Graubard one is NCHS's: Clopper-Pearson on the effective n.
    row = shares[shares["level"] == "collective_enterprise"].iloc[0]
    assert row["estimate"] - 1.96 * row["se"] < 0 < row["ci_low"] < row["estimate"]
    df = sections["survey"]["design_df"]
    n_eff = min(row["n"], row["estimate"] * (1 - row["estimate"]) / row["se"] ** 2
                * (stats.t.ppf(0.025, row["n"] - 1) / stats.t.ppf(0.025, df)) ** 2)
    x = row["estimate"] * n_eff
    assert row["ci_low"] == pytest.approx(stats.beta.ppf(0.025, x, n_eff - x + 1), rel=1e-10)
    assert row["ci_high"] == pytest.approx(stats.beta.ppf(0.975, x + 1, n_eff - x), rel=1e-10)
    assert sections["table1"]["interval_method"] == "Korn-Graubard"


def test_unweighted_counts_in_results(bundled):
    numbers, _, _ = bundled
    persons = ssc.datasets.coverage_survey().persons
    table1 = pd.DataFrame(numbers["sections"]["table1"]["table"]).set_index(["group", "scheme"])
    assert table1.loc[("all", "employee_pension"), "n_covered"] == int((persons["employee_pension"] == 1).sum())
    local = persons["population_type"] == "local_rural"
    assert table1.loc[("local_rural", "resident_pension"), "n_covered"] == int((persons.loc[local, "resident_pension"] == 1).sum())
    assert table1.loc[("local_rural", "resident_pension"), "n"] == int(local.sum())
    rates = pd.DataFrame(numbers["sections"]["lapse"]["rates"]).set_index(["subgroup", "variable"])
    lapsed = (persons["employee_pension"] + persons["resident_pension"]) == 0
    assert rates.loc[("all", "lapse_pension"), "n_lapsers"] == int(lapsed.sum())
    profile = pd.DataFrame(numbers["sections"]["lapser_profile"]["profile"])
    male = profile[(profile["variable"] == "sex") & (profile["level"] == "male")].iloc[0]
    assert male["n_level"] == int((lapsed & (persons["sex"] == "male")).sum())


def test_model_json_has_n_df_and_dispersion(bundled):
    numbers, _, _ = bundled
    model = numbers["sections"]["lapse_model"]
    fit = Analyses(bundled_study()).lapse_fit
    assert model["n"] == fit.n == 2219 and model["df_residual"] == fit.df_residual and model["dispersion"] == fit.dispersion
    odds = pd.DataFrame(model["odds_ratios"]).set_index("term")
    coef = pd.DataFrame(model["coefficients"]).set_index("term")
    np.testing.assert_allclose(odds["odds_ratio"], np.exp(coef["estimate"]), rtol=1e-12)
    # Full precision in the JSON, not the page's rounding.
    assert coef.loc["age", "estimate"] != round(coef.loc["age", "estimate"], 6)


def test_published_vs_estimated_has_interval_difference_and_inside(bundled):
    numbers, page, _ = bundled
    compared = pd.DataFrame(numbers["sections"]["table1"]["published_comparison"])
    assert len(compared) == 80
    inside = (compared["published"] >= compared["ci_low"]) & (compared["published"] <= compared["ci_high"])
    assert (compared["inside"] == inside).all()
    np.testing.assert_allclose(compared["difference"], 100 * (compared["estimate"] - compared["published"]), atol=1e-12)
    assert f"{int(inside.sum())} of 80 published rates lie inside" in page


def test_chinese_edition_and_labels():
    zh = Labels("zh")
    assert zh("basic_pension") == "基本养老保险" and zh("unknown_key") == "unknown key"
    assert Labels("zh", {"zh": {"basic_pension": "养老"}})("basic_pension") == "养老"
    assert Labels("en", {"*": {"basic_pension": "Pension"}})("basic_pension") == "Pension"
    shipped = json.loads((Path(ssc.__file__).parent / "data" / "labels.json").read_text(encoding="utf-8"))
    assert set(shipped["en"]) == set(shipped["zh"])  # every label in both languages
    assert all(f"flag_{code}" in shipped["en"] for code in FLAG_MEANINGS)
    with pytest.raises(ssc.MappingError, match="language 'fr'"):
        Labels("fr")


def test_excel_workbook_has_a_sheet_per_table(tmp_path):
    openpyxl = pytest.importorskip("openpyxl")
    study = bundled_study()
    report = build_report(study, progress=False)
    report.to_excel(tmp_path / "r.xlsx")
    book = openpyxl.load_workbook(tmp_path / "r.xlsx")
    tables = sum(len(s.tables) for s in report.sections)
    assert len(book.sheetnames) == tables and "table1" in book.sheetnames
    sheet = book["table1"]
    header = [c.value for c in sheet[2]]
    assert header[:3] == ["Scheme", "Group", "%"]
    first = [c.value for c in sheet[3]]
    assert first[:2] == ["Basic pension", "All"]
    assert isinstance(first[2], float) and first[2] == pytest.approx(100 * report.sections[1].data["table"][0]["estimate"])


# ---------------------------------------------------------------------------- re-entry
def test_reentry_after_the_first_interruption_by_hand():
    """The curve on each person's first spell: S(t) = exp(-weighted Nelson-Aalen), by hand."""
    survey = ssc.datasets.coverage_survey()
    histories = ssc.contribution_histories(survey.histories, survey.persons)
    first = first_interruption(histories)
    spells = histories.spells
    assert first["years"].notna().sum() == spells["person_id"].nunique() < len(spells)
    w = survey.persons["weight"].to_numpy()
    years, back = first["years"].to_numpy(), first["reentered"].to_numpy()
    keep = ~np.isnan(years)
    hazard = 0.0
    expected = {}
    for t in np.unique(years[keep]):
        at_risk = w[keep & (years >= t)].sum()
        events = w[keep & (years == t) & (back == 1)].sum()
        hazard += events / at_risk
        expected[t] = np.exp(-hazard)
    curve = ssc.reentry_curve(survey.design(), histories, times=[1, 2, 5]).to_pandas()
    np.testing.assert_allclose(curve["survival"], [expected[1], expected[2], expected[5]], rtol=1e-12)


# ---------------------------------------------------------------------------- a user's file
@pytest.fixture
def nested_files(tmp_path) -> tuple[Path, Path, dict]:
    return nested_survey(tmp_path)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_report_on_a_nested_user_file_in_both_languages(nested_files, tmp_path, lang):
    data, mapping, _ = nested_files
    out = tmp_path / f"{lang}.html"
    code = main(["report", "--data", str(data), "--mapping", str(mapping), "--out", str(out),
                 "--json", str(tmp_path / f"{lang}.json"), "--lang", lang, "--no-progress"])
    assert code == 0
    numbers = json.loads((tmp_path / f"{lang}.json").read_text(encoding="utf-8"))
    sections = numbers["sections"]
    assert numbers["language"] == lang
    assert {"table1", "lapse", "interruptions", "reasons", "reentry", "quality"} <= set(sections)
    assert sections["quality"]["design"]["nest"] is True
    # Nested: 5 provinces, each county label a PSU of its own province only.
    persons = pd.read_csv(data)
    assert sections["quality"]["psus"] == persons.groupby(["province", "county"]).ngroups
    assert sections["quality"]["psus"] > persons["county"].nunique()
    # Population types from the one local/non-local column equal those from the counties.
    groups = {row["group"] for row in sections["table1"]["table"]}
    assert groups == {"all", *ssc.coverage.POPULATION_TYPES}
    survey = ssc.datasets.coverage_survey().persons.set_index("person_id")
    expected = survey.loc[persons["person_id"], "population_type"].value_counts()
    counted = {r["group"]: r["n"] for r in sections["table1"]["table"] if r["scheme"] == "basic_pension"}
    assert all(counted[g] == expected[g] for g in ssc.coverage.POPULATION_TYPES)
    # Re-entry on the nested person design equals reentry_curve with nest=True.
    design = ssc.Design(persons, ids="county", strata="province", weights="wt", nest=True)
    histories = ssc.contribution_histories(pd.read_csv(tmp_path / "years.csv"), persons)
    direct = ssc.reentry_curve(design, histories, times=[1, 2, 3, 5, 10]).to_pandas()
    np.testing.assert_allclose(pd.DataFrame(sections["reentry"]["curve"])["ci_low"], direct["ci_low"], rtol=1e-12)
    page = out.read_text(encoding="utf-8")
    # NCHS flags, worked out from the stored Korn-Graubard limits: relwidth where the
    # interval is wider than 5 points and than 130% of the estimate.
    estimates = pd.DataFrame(sections["table1"]["table"])[["group", "scheme", "estimate"]]
    cells = pd.DataFrame(sections["table1"]["intervals"]).merge(estimates, on=["group", "scheme"])
    width = cells["ci_high"] - cells["ci_low"]
    relwidth = (width > 0.05) & (width / cells["estimate"] > 1.30)
    assert relwidth.any() and (cells["flags"].str.contains("relwidth") == relwidth).all()
    assert page.count('<sup class="flag">†</sup>') == int((cells["flags"] != "").sum())
    assert ("区间宽度超过估计值的 130%" if lang == "zh" else "wider than 130% of the estimate") in page
    ranking = sections["reasons"]["never_insured"]["ranking"]
    assert {r["reason"] for r in ranking} == {c for c in persons.columns if c.startswith("why_")}
    assert ("收入太紧" if lang == "zh" else "Money is tight") in page
    if lang == "zh":
        assert '<html lang="zh-Hans">' in page and "分险种参保率" in page and "基本养老保险" in page


def test_init_writes_a_commented_template_that_reads_back(nested_files, tmp_path, capsys):
    data, _, _ = nested_files
    out = tmp_path / "template.json"
    assert main(["init", str(data), "--out", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert text.startswith("// Mapping for survey.csv")
    spec = ssc.report.read_mapping(out)
    # Design columns guessed by name; labels repeat across strata, so nest is proposed.
    assert spec["design"] == {"ids": "county", "strata": "province", "weights": "wt", "nest": True}
    columns = pd.read_csv(data, nrows=1).columns
    # Reasons found by the study's prefixes; the renamed never-insured ones are left to the user.
    assert spec["reasons"] == {"never_insured": [], "interrupted": [c for c in columns if c.startswith("interrupt_reason_")]}
    assert "first_job_year" not in spec["columns"]  # the file has it
    assert mapping_template(data) == text
    with pytest.raises(SystemExit, match="exists; pass --force"):
        main(["init", str(data), "--out", str(out)])


def test_missing_files_are_survey_errors_naming_them(nested_files, tmp_path, capsys):
    data, mapping, spec = nested_files
    args = ["report", "--data", str(data), "--mapping", str(tmp_path / "nope.json"), "--out", str(tmp_path / "x.html"),
            "--no-progress"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("sscoverage report: error: mapping file") and "nope.json" in err and "Traceback" not in err
    with pytest.raises(ssc.MappingError, match=r"mapping file .*nope\.json.* cannot be read.*sscoverage init"):
        study_from_files(data, tmp_path / "nope.json")
    with pytest.raises(ssc.MappingError, match=r"data file .*gone\.csv.* does not exist"):
        study_from_files(tmp_path / "gone.csv", mapping)
    spec["population"] = {"local": "hukou_local"}
    mapping.write_text(json.dumps(spec))
    with pytest.raises(ssc.ColumnError, match=r"column 'hukou_local' \(mapping key 'population.local'\)"):
        study_from_files(data, mapping)
    spec["population"] = {"locale": "hukou_here"}
    mapping.write_text(json.dumps(spec))
    with pytest.raises(ssc.MappingError, match=r"'population.locale'"):
        study_from_files(data, mapping)
    spec["population"] = {}
    spec["reasons"] = {"never_insured": ["why_cost"]}
    mapping.write_text(json.dumps(spec))
    with pytest.raises(ssc.ColumnError, match=r"column 'why_cost' \(mapping key 'reasons.never_insured'\)"):
        study_from_files(data, mapping)
    spec["reasons"] = {}
    spec["tree"] = {"a": ["b"], "b": ["a"]}
    mapping.write_text(json.dumps(spec))
    with pytest.raises(ssc.MappingError, match=r"mapping key 'tree': the scheme tree has a cycle"):
        study_from_files(data, mapping)


def test_flags_can_be_switched_off(nested_files, tmp_path):
    data, mapping, spec = nested_files
    report = build_report(study_from_files(data, mapping), progress=False, flags="none")
    page = report.html()
    assert "†" not in page and "Flags" not in page and "switched off" in page
    assert report.to_json()["sections"]["quality"]["reliability"] == "none"
    spec["flags"] = "who"
    mapping.write_text(json.dumps(spec))
    with pytest.raises(ssc.MappingError, match="mapping key 'flags' is 'who'; use one of nchs, none"):
        study_from_files(data, mapping)
