"""The coverage layer: the bundled survey against the published figures, hand-computed
values on small data, and bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pytest
from numpy.testing import assert_allclose

import sscoverage as ssc
from sscoverage.study.coverage import EMPLOYEE_CONTRIBUTION_BANDS, published_figures
from sscoverage.report.report import MEAN_FIGURES, PROFILE_FIGURES

FIGURES = published_figures()
LAPSE = FIGURES["lapse"]
FLEXIBLE = ["new_employment_form", "other_flexible"]


@pytest.fixture(scope="module")
def survey() -> ssc.datasets.CoverageSurvey:
    return ssc.datasets.coverage_survey()


@pytest.fixture(scope="module")
def design(survey) -> ssc.Design:
    return survey.design()


@pytest.fixture(scope="module")
def lapsers(survey) -> np.ndarray:
    return ssc.lapse_indicators(survey.persons)["lapse_pension"].to_numpy() == 1


# ---------------------------------------------------------------------------- the bundled survey
def test_bundled_survey_shape(survey):
    persons = survey.persons
    assert len(persons) == FIGURES["sample"]["n"]
    assert persons["province"].nunique() == FIGURES["sample"]["provinces"]
    assert persons.groupby("province", observed=True)["county"].nunique().min() >= 3
    assert persons["age"].between(20, 60).all()
    assert set(survey.histories.columns) == {"person_id", "year", "contributed"}
    assert ssc.population_type(persons).values.astype(str).equals(persons["population_type"].astype(str))


def test_bundled_survey_is_deterministic(survey):
    again = ssc.datasets.coverage_survey(2024)
    pd.testing.assert_frame_equal(again.persons, survey.persons)
    pd.testing.assert_frame_equal(again.histories, survey.histories)
    assert not ssc.datasets.coverage_survey(7).persons["weight"].equals(survey.persons["weight"])


@pytest.mark.parametrize("seed", [2024, 7])
def test_every_table1_cell_within_half_a_point(seed):
    design = ssc.datasets.coverage_survey(seed).design()
    table = ssc.coverage_table(design).compare()
    table1 = FIGURES["table1"]
    assert list(table["group"].unique()) == table1["groups"]
    assert list(table["scheme"].unique()) == list(table1["rows"])
    assert table["published"].notna().all() and len(table) == 16 * 5
    worst = table.loc[table["difference"].abs().idxmax()]
    assert worst["difference"] == pytest.approx(0, abs=0.005), worst.to_dict()


def test_lapse_rates_within_one_point(design, survey):
    persons = survey.persons
    subgroups = {
        "all": None,
        "flexible": persons["job_type"].isin(FLEXIBLE).to_numpy(),
        "contract": {"column": "contract_type", "op": "==", "value": "labour_contract"},
    }
    rates = ssc.lapse_rates(design, subgroups).to_pandas().set_index(["subgroup", "variable"])["estimate"]
    flex = LAPSE["flexible_workers"]
    expected = {
        ("all", "lapse_pension"): LAPSE["pension_lapse_rate"],
        ("all", "lapse_medical"): LAPSE["medical_lapse_rate"],
        ("flexible", "lapse_pension"): flex["pension_lapse_rate"],
        ("flexible", "lapse_medical"): flex["medical_lapse_rate"],
        ("flexible", "lapse_both"): flex["both_lapse_rate"],
        ("contract", "lapse_pension"): LAPSE["contract_employees"]["lapse_rate"],
    }
    for key, published in expected.items():
        assert rates[key] == pytest.approx(published, abs=0.01), key


def test_lapser_profile_within_one_point(design, lapsers):
    categorical = ["sex", "hukou_type", "work_status", "age_band", "weekly_hours_band", "job_type"]
    continuous = ["age", "schooling_years", "monthly_income"]
    prof = ssc.profile(design, lapsers, categorical, continuous).to_pandas()
    shares = prof[prof["kind"] == "share"].set_index(["variable", "level"])["estimate"]
    means = prof[prof["kind"] == "mean"].set_index("variable")["estimate"]
    published = LAPSE["lapser_profile"]
    assert shares[("sex", "male")] == pytest.approx(published["male"], abs=0.01)
    assert shares[("hukou_type", "agricultural")] == pytest.approx(published["agricultural_hukou"], abs=0.01)
    for family, column in PROFILE_FIGURES.items():
        for level, value in LAPSE[family].items():
            if level != "of":
                assert shares[(column, level)] == pytest.approx(value, abs=0.01), (family, level)
    for figure, column in MEAN_FIGURES.items():
        assert means[column] == pytest.approx(published[figure], rel=0.01), figure


def test_flexible_worker_shares_within_one_point(design, survey, lapsers):
    jobs = survey.persons["job_type"]
    flexible = jobs.isin(FLEXIBLE).to_numpy()
    new_form = (jobs == "new_employment_form").to_numpy(float)
    derived = design.with_columns({"flexible": flexible.astype(float), "new_form": new_form})
    flex = LAPSE["flexible_workers"]
    assert derived.mean("flexible").estimate[0] == pytest.approx(flex["share_of_sample"], abs=0.01)
    of_lapsers = derived.subset(lapsers).mean("flexible").estimate[0]
    assert of_lapsers == pytest.approx(flex["share_of_pension_lapsers"], abs=0.01)
    share = derived.subset(lapsers & flexible).mean("new_form").estimate[0]
    assert share == pytest.approx(flex["new_form_share_of_flexible_lapsers"], abs=0.01)


def test_interruption_figures_within_ten_percent(design, survey):
    histories = ssc.contribution_histories(survey.histories, survey.persons)
    summary = ssc.interruption_summary(design, histories).to_pandas().set_index("variable")["estimate"]
    published = FIGURES["interruption"]
    assert summary["ever_interrupted"] == pytest.approx(published["ever_interrupted_rate"], rel=0.1)
    assert summary["years_interrupted"] == pytest.approx(published["mean_years_interrupted"], rel=0.1)
    assert summary["density"] == pytest.approx(published["mean_density"], rel=0.1)
    assert histories.persons["ever_interrupted"].sum() == pytest.approx(published["ever_interrupted"], rel=0.1)


def test_published_reason_order_and_significant_top_two(design, survey):
    reasons = FIGURES["reasons"]
    published = {"never_reason_": reasons["never_insured_top4"], "interrupt_reason_": reasons["interrupted_top2"]}
    for prefix, order in published.items():
        columns = [c for c in survey.persons.columns if c.startswith(prefix)]
        ranking = ssc.reasons(design, columns)
        ranked = [r.removeprefix(prefix) for r in ranking.to_pandas()["reason"]]
        assert ranked[: len(order)] == order
        assert ranking.top_two["p_value"] < 0.05


def test_contribution_level_band(design):
    shares = ssc.band_shares(design, "employee_contribution_monthly", EMPLOYEE_CONTRIBUTION_BANDS)
    middle = shares.to_pandas().set_index("level").loc["400-700", "estimate"]
    assert middle == pytest.approx(FIGURES["contribution_levels"]["employee_scheme_monthly_400_700_share"], abs=0.01)


# ---------------------------------------------------------------------------- small data, by hand
@pytest.fixture
def small() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "psu": np.arange(8),
            "w": [1.0, 2.0, 1.0, 3.0, 1.0, 2.0, 2.0, 1.0],
            "group": ["a", "a", "a", "a", "b", "b", "b", "b"],
            "emp": [1, 0, 0, 1, 0, 0, 1, 0],
            "res": [0, 1, 0, 1, 0, 0, 0, 1],
            "injury": [True, False, False, True, False, False, True, False],
            "age": [25.0, 35.0, 45.0, 55.0, 30.0, 40.0, np.nan, 50.0],
            "sex": ["m", "f", "m", "f", "m", "m", "f", "f"],
        }
    )


TREE = {"basic": ["emp", "res"], "injury": []}


def test_scheme_tree_order_and_any_child():
    tree = ssc.SchemeTree({"a": ["a1", "a2"], "a2": ["x", "y"], "b": []})
    assert tree.rows == [("a", 0), ("a1", 1), ("a2", 1), ("x", 2), ("y", 2), ("b", 0)]
    assert tree.leaves == ["a1", "x", "y", "b"]
    data = pd.DataFrame({"a1": [0, 0, 0, np.nan], "x": [1, 0, np.nan, 0], "y": [0, 0, 0, 0], "b": [1, 0, 1, 0]})
    ind = tree.indicators(data)
    assert_allclose(ind["a2"], [1, 0, np.nan, 0])
    assert_allclose(ind["a"], [1, 0, np.nan, np.nan])
    assert list(ind) == ["a", "a1", "a2", "x", "y", "b"]
    assert [name for name, _ in ssc.SchemeTree.study().rows] == list(FIGURES["table1"]["rows"])


def test_coverage_table_by_hand(small):
    design = ssc.Design(small, ids="psu", weights="w")
    table = ssc.coverage_table(design, TREE, by="group")
    long = table.to_pandas().set_index(["group", "scheme"])
    w = small["w"].to_numpy()
    basic = np.array([1, 1, 0, 1, 0, 0, 1, 1.0])
    for group, rows in (("all", np.ones(8, bool)), ("a", np.arange(8) < 4), ("b", np.arange(8) >= 4)):
        p = np.sum(w[rows] * basic[rows]) / w[rows].sum()
        z = np.where(rows, w * (basic - p) / w[rows].sum(), 0.0)
        se = np.sqrt(8 / 7 * np.sum(z**2))  # with-replacement variance, one row per PSU
        assert long.loc[(group, "basic"), "estimate"] == pytest.approx(p)
        assert long.loc[(group, "basic"), "se"] == pytest.approx(se)
        assert long.loc[(group, "basic"), "n"] == rows.sum()
    assert list(table.wide().index) == ["basic", "emp", "res", "injury"]
    assert list(table.wide().columns) == ["all", "a", "b"]
    assert table.wide("n").loc["basic", "a"] == 4
    assert long.loc[("all", "emp"), "depth"] == 1
    assert "basic" in repr(table) and "<table" in table._repr_html_()
    polars_table = ssc.coverage_table(ssc.Design(pl.from_pandas(small), ids="psu", weights="w"), TREE, by="group")
    assert_allclose(polars_table.to_pandas()["estimate"], table.to_pandas()["estimate"])


def test_coverage_table_compare_uses_given_figures(small):
    table = ssc.coverage_table(ssc.Design(small, ids="psu", weights="w"), TREE, by=None)
    compared = table.compare({"groups": ["all"], "rows": {"basic": [0.5]}}).set_index("scheme")
    assert compared.loc["basic", "difference"] == pytest.approx(compared.loc["basic", "estimate"] - 0.5)
    assert np.isnan(compared.loc["emp", "published"])


def test_population_type_reports_unknowns():
    data = pd.DataFrame(
        {
            "hukou_county": [1, 1, 2, 2, None, 3],
            "residence_county": [1, 1, 1, 1, 1, 3],
            "hukou_type": ["non_agricultural", "agricultural", "urban", "rural", "rural", "farm"],
        },
        index=[10, 11, 12, 13, 14, 15],
    )
    types = ssc.population_type(data)
    assert types.values.iloc[:4].tolist() == ssc.coverage.POPULATION_TYPES
    assert types.values.isna().tolist() == [False] * 4 + [True, True]
    assert list(types.values.index) == list(data.index)
    assert types.unknown["count"].tolist() == [1, 1]
    assert "'farm'" in types.unknown["reason"].iloc[1]
    assert "unknown: 1" in repr(types)


def test_lapse_indicators_and_target(small):
    tree = {"basic_pension": ["emp", "res"], "basic_medical": ["injury"]}
    lapse = ssc.lapse_indicators(small, tree)
    assert_allclose(lapse["lapse_pension"], [0, 0, 1, 0, 1, 1, 0, 0])
    assert_allclose(lapse["lapse_medical"], [0, 1, 1, 0, 1, 1, 0, 1])
    assert_allclose(lapse["lapse_both"], [0, 0, 1, 0, 1, 1, 0, 0])
    target = ssc.lapse_indicators(small, tree, target=small["age"] < 40)
    assert target["lapse_pension"].isna().tolist() == [False, False, True, True, False, True, True, True]


def test_profile_by_hand(small):
    design = ssc.Design(small, ids="psu", weights="w")
    prof = ssc.profile(design, small["group"] == "a", ["sex"], ["age"])
    table = prof.to_pandas().set_index(["variable", "level"], drop=False)
    assert table.loc[("sex", "m"), "estimate"] == pytest.approx(2 / 7)
    assert table.loc[("age", None), "estimate"] == pytest.approx((25 + 70 + 45 + 165) / 7)
    # age is missing in group b only: nothing is left out of group a
    assert prof.notes == ()
    everyone = ssc.profile(design, None, continuous=["age"])
    assert everyone.notes == ("age: 1 rows with a missing value left out",)
    numeric_as_factor = ssc.profile(design, None, categorical=["emp"]).to_pandas()
    assert numeric_as_factor["level"].tolist() == [0, 1]


def test_reasons_rank_and_joint_test(small):
    data = small.assign(
        r1=[1, 0, 1, 1, 0, 1, np.nan, 1],
        r2=[0, 1, 1, 0, 0, 1, np.nan, 1],
        r3=[0, 0, 0, 1, 0, 0, np.nan, 0],
    )
    design = ssc.Design(data, ids="psu", weights="w")
    ranking = ssc.reasons(design, ["r3", "r2", "r1"])
    table = ranking.to_pandas()
    assert table["reason"].tolist() == ["r1", "r2", "r3"] and table["rank"].tolist() == [1, 2, 3]
    asked = np.arange(8) != 6
    w = np.where(asked, data["w"], 0.0)
    p = {r: np.sum(w * data[r].fillna(0)) / w.sum() for r in ("r1", "r2")}
    assert table["estimate"].iloc[0] == pytest.approx(p["r1"])
    # The joint covariance by the influence route: Z = w (y - p) / W per reason.
    z = np.column_stack([np.where(asked, w * (data[r].fillna(0) - p[r]) / w.sum(), 0.0) for r in ("r1", "r2")])
    v = design.influence_vcov(z, asked)
    top = ranking.top_two
    assert (top["first"], top["second"]) == ("r1", "r2")
    assert top["difference"] == pytest.approx(p["r1"] - p["r2"])
    assert top["se"] == pytest.approx(np.sqrt(v[0, 0] + v[1, 1] - 2 * v[0, 1]))
    assert "top two differ" in repr(ranking)


def test_employment_presumption_two_of_five():
    x = pd.DataFrame(
        {
            "c1": [1, 1, 0, 1, np.nan, np.nan, 0],
            "c2": [1, 0, 0, np.nan, np.nan, np.nan, 0],
            "c3": [0, 0, 0, np.nan, np.nan, 1, np.nan],
            "c4": [0, 0, 0, 0, np.nan, 1, np.nan],
            "c5": [1, 0, 0, 0, np.nan, 0, np.nan],
        }
    )
    out = ssc.employment_presumption(x, ["c1", "c2", "c3", "c4", "c5"])
    assert_allclose(out["n_indicators"], [3, 1, 0, 1, np.nan, 2, 0])
    # met >= 2: presumed; met + unknown < 2: not; otherwise undetermined
    assert_allclose(out["presumed"], [1, 0, 0, np.nan, np.nan, 1, np.nan])


def test_presumed_coverage_by_hand():
    data = pd.DataFrame(
        {
            "psu": np.arange(6),
            "w": [1.0, 1.0, 2.0, 1.0, 1.0, 5.0],
            "emp": [1, 0, 1, 0, 1, 1],
            **{c: [1, 1, 0, 0, 1, np.nan] for c in ssc.coverage.PLATFORM_CONTROLS},
        }
    )
    est = ssc.presumed_coverage(ssc.Design(data, ids="psu", weights="w"), scheme="emp", schemes={"emp": []})
    table = est.to_pandas().set_index("employment_presumed")
    assert table.loc["presumed", "estimate"] == pytest.approx(2 / 3)
    assert table.loc["not presumed", "estimate"] == pytest.approx(2 / 3)
    assert table["n"].sum() == 5


def test_band_shares_and_transitions(small):
    data = small.assign(
        pay=[300, 400, 700, 701, np.nan, 650, 100, 999],
        before=["e", "e", "r", "r", None, "e", "e", "r"],
        after=["e", "r", "r", "e", "r", "r", "e", "r"],
    )
    design = ssc.Design(data, ids="psu", weights="w")
    shares = ssc.band_shares(design, "pay", EMPLOYEE_CONTRIBUTION_BANDS).to_pandas().set_index("level")["estimate"]
    w = data["w"].to_numpy()
    assert shares["400-700"] == pytest.approx((2 + 1 + 2) / (w.sum() - 1))
    moves = ssc.transition_table(design, "before", "after").to_pandas().set_index(["before", "level"])["estimate"]
    assert moves[("e", "r")] == pytest.approx((2 + 2) / (1 + 2 + 2 + 2))
    joint = ssc.transition_table(design, "before", "after", shares="all").to_pandas().set_index("level")["estimate"]
    assert joint["e -> r"] == pytest.approx(4 / (w.sum() - 1))
    assert joint.sum() == pytest.approx(1)


def test_design_with_columns(small):
    shifted = small.set_index(np.arange(100, 108))
    design = ssc.Design(shifted, ids="psu", weights="w")
    # A Series goes by its index, as pandas assigns: here listed in reverse order.
    x = pd.Series(np.arange(8.0)[::-1], index=np.arange(100, 108)[::-1])
    derived = design.with_columns({"x": x, "emp": np.ones(8)})
    with pytest.raises(ssc.ShapeError, match="index does not match the data's .*8 of the data's 8 row labels absent"):
        design.with_columns({"x": pd.Series(np.arange(8.0))})
    assert derived.mean("x").estimate[0] == pytest.approx(np.average(np.arange(8.0), weights=small["w"]))
    assert derived.mean("emp").estimate[0] == 1.0 and design.mean("emp").estimate[0] < 1.0
    via_polars = ssc.Design(pl.from_pandas(small), ids="psu", weights="w").with_columns({"x": np.arange(8.0)})
    assert via_polars.mean("x").estimate[0] == pytest.approx(derived.mean("x").estimate[0])
    in_a = small["group"].to_numpy() == "a"
    assert design.subset(in_a).with_columns({"x": x.to_numpy()[::-1]}).mean("x").to_pandas()["n"].iloc[0] == 4  # the subset is kept
    with pytest.raises(ssc.ShapeError, match="column 'x' has 3 values, the data 8 rows"):
        design.with_columns({"x": [1, 2, 3]})


# ---------------------------------------------------------------------------- bad input
def test_scheme_tree_errors():
    with pytest.raises(ssc.SchemeTreeError, match=r"cycle: a <- b <- a"):
        ssc.SchemeTree({"top": ["x"], "a": ["b"], "b": ["a"]})
    with pytest.raises(ssc.SchemeTreeError, match="cycle"):
        ssc.SchemeTree({"a": ["a"]})
    with pytest.raises(ssc.SchemeTreeError, match="'x' has two parents, 'a' and 'b'"):
        ssc.SchemeTree({"a": ["x"], "b": ["x"]})
    with pytest.raises(ssc.SchemeTreeError, match="'a'.*not a leaf"):
        ssc.SchemeTree({"a": ["x"]}, columns={"a": "col"})
    assert issubclass(ssc.SchemeTreeError, ssc.SurveyError)


def test_unknown_or_bad_scheme_columns(small):
    design = ssc.Design(small, ids="psu", weights="w")
    with pytest.raises(ssc.ColumnError, match=r"scheme 'nope': column 'nope' is not in the data"):
        ssc.coverage_table(design, {"basic": ["emp", "nope"]}, by=None)
    with pytest.raises(ssc.ColumnError, match=r"scheme 'x': column 'age' must hold 0/1.*found 25"):
        ssc.coverage_table(design, ssc.SchemeTree({"x": []}, columns={"x": "age"}), by=None)
    with pytest.raises(ssc.ColumnError, match="'sex' must hold 0/1"):
        ssc.coverage_table(design, {"sex": []}, by=None)
    with pytest.raises(ssc.SchemeTreeError, match="pension scheme 'basic_pension' is not in the scheme tree"):
        ssc.lapse_indicators(small, TREE)


def test_empty_subgroup_and_missing_values(small):
    design = ssc.Design(small, ids="psu", weights="w")
    with pytest.raises(ssc.EmptyDomainError):
        ssc.profile(design, small["group"] == "c", ["sex"])
    with pytest.raises(ssc.EmptyDomainError):
        tree = {"basic_pension": ["emp"], "basic_medical": ["res"]}
        ssc.lapse_rates(design, {"none": np.zeros(8, bool)}, schemes=tree)
    holes = ssc.Design(small.assign(emp=[1, np.nan, 0, 1, 0, 0, 1, 0]), ids="psu", weights="w")
    with pytest.raises(ssc.MissingValueError, match="'emp' has 1 missing"):
        ssc.coverage_table(holes, TREE, by=None)
    assert ssc.coverage_table(holes, TREE, by=None, na_rm=True).to_pandas()["n"].iloc[0] == 7
    with pytest.raises(ssc.MissingValueError, match="'r2'"):
        ssc.reasons(ssc.Design(small.assign(r1=[1.0] * 8, r2=[0, np.nan] * 4), ids="psu", weights="w"), ["r1", "r2"])
