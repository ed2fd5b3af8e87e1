"""JSON output: every result loads back to the same numbers; a design is rebuilt from
its recipe on the same data and gives the same estimates."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_array_equal
from pandas.testing import assert_frame_equal

import sscoverage as ssc


@pytest.fixture(scope="module")
def df() -> pd.DataFrame:
    data = ssc.demo_sample(n_strata=5, psus_per_stratum=4, persons_per_psu=12, seed=11)
    data["band"] = pd.cut(data["monthly_income"], [0, 5000, 8000, np.inf], labels=["low", "mid", "high"])
    return data


@pytest.fixture(scope="module")
def design(df) -> ssc.Design:
    return ssc.Design(df, ids="psu", strata="stratum", weights="weight")


def same_estimates(a: ssc.Estimates, b: ssc.Estimates) -> None:
    assert_frame_equal(a.table, b.table, check_exact=True)
    assert len(a.vcov) == len(b.vcov)
    for x, y in zip(a.vcov, b.vcov):
        assert_array_equal(x, y)
    assert (a.statistic, a.by, a.level, a.df, a.n_removed, a.notes) == (
        b.statistic, b.by, b.level, b.df, b.n_removed, b.notes)


@pytest.mark.parametrize("call", [
    lambda d: d.mean("covered", by="population_type", deff=True),
    lambda d: d.total("band", by=["population_type"]),
    lambda d: d.ratio("covered", "monthly_income"),
    lambda d: d.quantile("monthly_income", [0.1, 0.5], by="band"),
    lambda d: d.ciprop("covered", method="beta", by="band"),
    lambda d: d.contrast("covered", [1, -1, 0, 0], by="population_type"),
    lambda d: d.subset(d.frame.data["band"] == "low").mean("covered", df="design"),
])
def test_estimates_load_back_with_the_same_numbers(design, call):
    est = call(design)
    text = est.to_json()
    back = ssc.load(text)
    same_estimates(est, back)
    assert back.to_json() == text
    assert_frame_equal(back.flags(), est.flags(), check_exact=True)
    assert repr(back) == repr(est)
    record = json.loads(text)
    assert record["sscoverage"] == ssc.__version__
    assert record["estimator"] == est.provenance.estimator
    assert record["design"]["n_psu"] == 20 and record["design"]["degf"] == 15


def test_json_tells_the_design_options_and_version(design):
    record = json.loads(design.mean("covered", by="band", na_rm=True).to_json())
    assert record["kind"] == "sscoverage:Estimates"
    assert record["options"]["by"] == "band" and record["options"]["na_rm"] is True
    assert record["design"]["recipe"][0] == ["Design", {
        "ids": "psu", "strata": "stratum", "weights": "weight", "probs": None, "fpc": None, "nest": False,
        "lonely_psu": "fail", "adjust_domain_lonely": False, "pps": None, "variance": "HT", "subset": None}]


def test_glm_and_chisq_load_back(design, tmp_path):
    fit = design.glm("covered ~ monthly_income + population_type", family="quasibinomial")
    path = tmp_path / "fit.json"
    fit.to_json(path)
    back = ssc.load(path)
    for name in ("coef", "vcov", "naive_cov"):
        assert_array_equal(getattr(back, name), getattr(fit, name))
    assert back.terms == fit.terms and back.df_residual == fit.df_residual
    assert_frame_equal(back.summary(), fit.summary(), check_exact=True)
    assert repr(back.summary()) == repr(fit.summary())
    assert "20 PSUs in 5 strata; 15 design df" in repr(back.summary())
    test = design.chisq("population_type", "band")
    again = ssc.load(test.to_json())
    assert (again.statistic, again.p_value, again.ndf, again.ddf) == (test.statistic, test.p_value, test.ndf, test.ddf)
    assert_frame_equal(again.table, test.table, check_exact=True)


def test_non_finite_numbers_survive(design):
    est = design.quantile("monthly_income", 0.01)  # an interval limit below the data: NaN
    assert est.table[["ci_low", "ci_high"]].isna().any().any()
    same_estimates(ssc.load(est.to_json()), est)
    json.loads(est.to_json(), parse_constant=lambda c: pytest.fail(f"non-standard JSON {c}"))


@pytest.mark.parametrize("steps", [
    lambda d, df: d.subset(df["covered"] == 1),
    lambda d, df: d.as_replicates("bootstrap", replicates=20),
    lambda d, df: d.as_replicates("JKn").subset({"column": "band", "op": "!=", "value": "high"}),
    lambda d, df: d.poststratify("population_type", df.groupby("population_type", observed=True)["weight"].sum() * 1.1),
    lambda d, df: d.rake({"band": {"low": 2e6, "mid": 1.5e6, "high": 1e6},
                          "population_type": df.groupby("population_type", observed=True)["weight"].sum()
                          * (4.5e6 / df["weight"].sum())}),
    lambda d, df: d.calibrate("~band", {"(Intercept)": 5e6, "bandmid": 1.5e6, "bandhigh": 1e6}).trim_weights(upper=3e5),
    lambda d, df: d.with_columns({"rich": (df["monthly_income"] > 8000).to_numpy()}),
])
def test_designs_rebuild_from_their_recipe(design, df, steps):
    built = steps(design, df)
    back = ssc.load(built.to_json(), data=df)
    assert type(back) is type(built) and back.n_rows == built.n_rows
    assert_array_equal(back.weights, built.weights)
    y = "rich" if "rich" in back.frame.columns else "covered"
    same_estimates(back.mean(y, by="population_type"), built.mean(y, by="population_type"))


def test_replicate_weight_designs_rebuild(df):
    reps = pd.DataFrame(np.random.default_rng(2).uniform(0.5, 1.5, (len(df), 6)) * df["weight"].to_numpy()[:, None],
                        columns=[f"rw{k}" for k in range(6)])
    data = pd.concat([df, reps], axis=1)
    design = ssc.ReplicateDesign(data, repweights="^rw", weights="weight", type="bootstrap")
    back = ssc.load(design.to_json(), data=data)
    same_estimates(back.mean("covered"), design.mean("covered"))


def test_a_design_needs_its_own_data(design, df):
    text = design.subset(df["covered"] == 1).to_json()
    with pytest.raises(ssc.DesignError, match="data="):
        ssc.load(text)
    with pytest.raises(ssc.SurveyError):
        ssc.load(text, data=df.iloc[:-1])
    other = df.assign(weight=df["weight"] * 2)
    with pytest.raises(ssc.DesignError, match="not the design's"):
        ssc.load(text, data=other)


def test_not_sscoverage_json():
    with pytest.raises(ssc.SurveyError, match="not sscoverage output"):
        ssc.load('{"a": 1}')
    with pytest.raises(ssc.SerializationError, match="'os:system' is not a kind of sscoverage result"):
        ssc.load('{"sscoverage": "0", "kind": "os:system", "result": {}}')


def results_of_every_kind(design: ssc.Design, df: pd.DataFrame) -> dict[str, object]:
    rng = np.random.default_rng(5)
    cohort = ssc.Design(df.assign(time=rng.exponential(5, len(df)).round(1), event=rng.integers(0, 2, len(df))),
                        ids="psu", strata="stratum", weights="weight")
    fit = design.glm("covered ~ monthly_income + band", family="quasibinomial")
    calibrated = design.calibrate("~band", {"(Intercept)": 5e6, "bandmid": 1.5e6, "bandhigh": 1e6})
    return {
        "Estimates": design.mean("covered", by="band"),
        "GLMResult": fit,
        "WaldTest": fit.wald_test("band"),
        "ChisqTest": design.chisq("population_type", "band"),
        "CoxResult": cohort.coxph("Surv(time, event) ~ monthly_income"),
        "ThresholdResult": design.threshold_glm("covered ~ monthly_income", "monthly_income",
                                                family="quasibinomial", grid=6),
        "WeightingReport": calibrated.weighting_report(),
        "SuppressedTable": design.total("covered", by=["band", "population_type"]).suppress(min_count=10),
        "CoverageTable": ssc.coverage.CoverageTable(
            title="Coverage", groups=("all", "low"),
            table=pd.DataFrame({"group": ["all", "low"], "scheme": "basic_pension", "depth": 0,
                                "estimate": [0.9, 0.8], "se": 0.01, "ci_low": [0.88, 0.78],
                                "ci_high": [0.92, 0.82], "n": [100, 40]})),
    }


def test_every_result_prints_and_loads_back(design, df):
    for kind, result in results_of_every_kind(design, df).items():
        text, html = repr(result), result._repr_html_()
        assert text and "<div>" in html, kind
        stored = result.to_json()
        back = ssc.load(stored)
        assert type(back) is type(result), kind
        assert repr(back) == text, kind
        assert back.to_json() == stored, kind


def test_streamed_results_load_back_but_streamed_designs_are_not_rebuilt(df):
    import polars as pl

    streamed = ssc.Design(pl.from_pandas(df).lazy(), ids="psu", strata="stratum", weights="weight")
    est = streamed.mean("covered", by="population_type")
    back = ssc.load(est.to_json())
    same_estimates(back, est)
    assert json.loads(est.to_json())["design"]["n_psu"] == 20
    with pytest.raises(ssc.DesignError, match="no recipe"):
        ssc.load(streamed.to_json(), data=df)
