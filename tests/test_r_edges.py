"""R's behaviour at the edges (issue 14, item 8), number by number against R's survey 4.1.1.

Every expected value is in ``tests/data/r_edges/expected.json``, written by
``tests/data/r_edges/r_edges.R`` (rerun: ``Rscript tests/data/r_edges/r_edges.R
../shared/reference/data``), which also writes ``nhanes.csv`` (survey's ``data(nhanes)``:
15 strata of two PSUs, one of three, PSU labels not in data order).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sscoverage as ssc
from sscoverage.models.glm import matrix_columns
from numpy.testing import assert_allclose

HERE = Path(__file__).resolve().parent / "data" / "r_edges"
R = json.loads((HERE / "expected.json").read_text())
RTOL = 1e-9


@pytest.fixture(scope="module")
def nhanes() -> pd.DataFrame:
    nh = pd.read_csv(HERE / "nhanes.csv")
    nh["st"] = nh["SDMVSTRA"] - 74  # strata 1..15: R sorts them as text, "1" "10" .. "15" "2" ..
    return nh


@pytest.fixture(scope="module")
def two(nhanes: pd.DataFrame) -> pd.DataFrame:
    return nhanes[nhanes["SDMVPSU"] != 3].reset_index(drop=True)


def _design(data: pd.DataFrame) -> ssc.Design:
    return ssc.Design(data, ids="SDMVPSU", strata="st", nest=True, weights="WTMEC2YR")


@pytest.fixture(scope="module")
def brr(two: pd.DataFrame) -> ssc.Design:
    return _design(two).as_replicates("BRR")


@pytest.fixture(scope="module")
def apistrat(reference_dir: Path) -> pd.DataFrame:
    api = pd.read_csv(reference_dir / "data" / "apistrat.csv")
    api["yes"] = (api["sch.wide"] == "Yes").astype(float)
    return api


@pytest.fixture(scope="module")
def jkn(apistrat: pd.DataFrame) -> ssc.Design:
    return ssc.Design(apistrat, strata="stype", weights="pw").as_replicates("JKn")


def _check(result: ssc.Estimates, expected: dict) -> None:
    table = result.to_pandas()
    assert_allclose(table["estimate"], np.atleast_1d(expected["estimate"]), rtol=RTOL)
    assert_allclose(table["se"], np.ravel(expected["se"]), rtol=RTOL)


# 1. BRR and Fay half-samples as R's brrweights assigns them ------------------------------


def test_brr_pairs_psus_as_r(two: pd.DataFrame, brr: ssc.Design) -> None:
    want = R["brr_order"]
    assert brr.n_replicates == want["n_replicates"]
    _check(brr.mean("HI_CHOL", na_rm=True), want["brr_chol"])
    _check(brr.mean("RIAGENDR"), want["brr_gender"])
    fay = _design(two).as_replicates("Fay", rho=0.3)
    _check(fay.mean("HI_CHOL", na_rm=True), want["fay_chol"])
    _check(fay.total("RIAGENDR"), want["fay_total"])


def test_brr_does_not_depend_on_row_order_of_strata_but_on_psu_first_rows(two: pd.DataFrame) -> None:
    # Reversing the rows reverses which PSU of each pair comes first (R's order): the
    # half-samples change, the SE with them; sorting the strata numerically would not match R.
    flipped = _design(two.iloc[::-1].reset_index(drop=True)).as_replicates("BRR")
    se = flipped.mean("RIAGENDR").to_pandas()["se"].iloc[0]
    assert abs(se - R["brr_order"]["brr_gender"]["se"]) > 1e-6


# 2. strata with more or fewer than two PSUs -----------------------------------------------


def test_large_strata_split_and_merge(nhanes: pd.DataFrame, apistrat: pd.DataFrame) -> None:
    want = R["large_small"]
    assert "odd" in want["odd_split_error"]
    with pytest.raises(ssc.DesignError, match="stratum 12 has 3 PSUs, an odd number"):
        _design(nhanes).as_replicates("BRR")
    merged = _design(nhanes).as_replicates("BRR", large="merge")
    assert merged.n_replicates == want["merge_large_n"]
    _check(merged.mean("HI_CHOL", na_rm=True), want["merge_large_chol"])
    api = ssc.Design(apistrat, strata="stype", weights="pw")
    split = api.as_replicates("BRR")
    assert split.n_replicates == want["split_api_n"]
    _check(split.mean(["api00", "enroll"]), want["split_api"])
    fay = api.as_replicates("Fay", rho=0.5, large="merge")
    assert fay.n_replicates == want["merge_api_n"]
    _check(fay.mean(["api00", "enroll"]), want["merge_api"])
    with pytest.raises(ssc.DesignError, match="stratum 'E' has 100"):
        api.as_replicates("BRR", large="fail")


def test_small_strata_fail_split_and_merge(two: pd.DataFrame) -> None:
    want = R["large_small"]
    single3 = two[~(two["st"].isin([1, 2, 3]) & (two["SDMVPSU"] == 2))].reset_index(drop=True)
    single2 = two[~(two["st"].isin([4, 12]) & (two["SDMVPSU"] == 2))].reset_index(drop=True)
    assert want["small_fail_error"] == "Some strata have fewer than 2 PSUs"
    with pytest.raises(ssc.DesignError, match="stratum 1 has one"):
        _design(single3).as_replicates("BRR")
    _check(_design(single3).as_replicates("BRR", small="split").mean("RIAGENDR"), want["small3_split"])
    _check(_design(single3).as_replicates("BRR", small="merge").mean("RIAGENDR"), want["small3_merge"])
    _check(_design(single2).as_replicates("BRR", small="merge").mean("RIAGENDR"), want["small2_merge"])
    assert _design(single2).as_replicates("BRR", small="split").n_replicates == want["small2_split_n"]
    one = two[~((two["st"] == 5) & (two["SDMVPSU"] == 2))].reset_index(drop=True)
    with pytest.raises(ssc.DesignError, match="only stratum 5 has one"):
        _design(one).as_replicates("BRR", small="merge")


def test_brr_needs_strata(apistrat: pd.DataFrame) -> None:
    with pytest.raises(ssc.DesignError, match="need strata"):
        ssc.Design(apistrat, ids="dnum", weights="pw").as_replicates("BRR")


def test_stratum_labels_sort_as_r_text() -> None:
    from sscoverage.design.replicates import r_text

    assert [r_text(v) for v in (10, 2.0, 1e5, 123456.0, 0.1, 1e-4, True, "b")] == [
        "10", "2", "1e+05", "123456", "0.1", "1e-04", "TRUE", "b"
    ]


# 3. the likelihood interval with a large design effect -----------------------------------


def test_likelihood_interval_with_a_large_design_effect(reference_dir: Path) -> None:
    want = R["likelihood"]
    clus = pd.read_csv(reference_dir / "data" / "apiclus1.csv")
    clus["yes"] = (clus["sch.wide"] == "Yes").astype(float)
    pupils = clus.loc[clus.index.repeat(60)].reset_index(drop=True)
    design = ssc.Design(pupils, ids="dnum", weights="pw")
    assert want["lambda"] > 40  # MASS's profile level falls below 1e-100 here
    lik = design.ciprop("yes", method="likelihood").to_pandas()
    assert_allclose(lik["estimate"], want["estimate"], rtol=RTOL)
    assert_allclose(lik[["ci_low", "ci_high"]].to_numpy()[0], want["ci"], rtol=1e-7)
    logit = design.ciprop("yes", method="logit").to_pandas()
    assert_allclose(logit[["ci_low", "ci_high"]].to_numpy()[0], want["logit_ci"], rtol=1e-7)


def test_likelihood_interval_beyond_double_range_is_an_error_as_in_r() -> None:
    # A design effect of 5000 on the logit scale: pnorm(qt(0.025, df) * sqrt(5000)) / 2
    # underflows to 0 (R then stops in spline(): "'from' must be a finite number").
    from sscoverage.estimators.proportions import _InterceptFit, _likelihood_interval

    # y = 0, 1, 1, 1 at prior weight 1: sum w = 4, sum w y = 3.
    fit = _InterceptFit(beta=np.log(3), cov_unscaled=5000 * 0.01, naive_cov=0.01, deviance=4.5,
                        dispersion=1.0, sums=(4.0, 3.0, 0.0), n_rows=4)
    with pytest.raises(ssc.EstimationError, match="use method='logit'"):
        _likelihood_interval(fit, 0.95, 19)


# 4. a domain of a replicate design has its own degrees of freedom ------------------------


def test_domain_of_replicate_design_recomputes_degf(apistrat: pd.DataFrame, jkn: ssc.Design, two: pd.DataFrame,
                                                    brr: ssc.Design) -> None:
    want = R["degf"]
    assert jkn.degf == want["full"]
    sub_e = jkn.subset(apistrat["stype"] == "E")
    assert sub_e.degf == want["sub_e"]
    ci = sub_e.mean("api00", df="design").to_pandas()[["ci_low", "ci_high"]].to_numpy()[0]
    assert_allclose(ci, want["sub_e_ci"], rtol=RTOL)
    assert brr.degf == want["brr_full"]
    sub = brr.subset((two["RIAGENDR"] == 1) & two["st"].isin(range(1, 7)))
    assert sub.degf == want["brr_sub"]
    ci = sub.mean("HI_CHOL", na_rm=True, df="design").to_pandas()[["ci_low", "ci_high"]].to_numpy()[0]
    assert_allclose(ci, want["brr_sub_ci"], rtol=RTOL)


# 5. ciprop logit / likelihood on replicate designs: the GLM refitted per replicate --------


def _check_ciprop(result: ssc.Estimates, expected: dict) -> None:
    table = result.to_pandas()
    assert_allclose(table["estimate"], expected["estimate"], rtol=1e-9)
    assert_allclose(table["se"], expected["se"], rtol=RTOL)
    assert_allclose(table[["ci_low", "ci_high"]].to_numpy()[0], expected["ci"], rtol=1e-8)


def test_ciprop_logit_on_replicate_designs(apistrat: pd.DataFrame, jkn: ssc.Design, brr: ssc.Design) -> None:
    want = R["ciprop_rep"]
    _check_ciprop(jkn.ciprop("yes", method="logit"), want["jkn_logit"])
    sub_e = jkn.subset(apistrat["stype"] == "E")
    _check_ciprop(sub_e.ciprop("yes", method="logit"), want["jkn_e_logit"])
    _check_ciprop(brr.ciprop("HI_CHOL", method="logit", na_rm=True), want["brr_logit"])


def test_ciprop_likelihood_on_replicate_designs_is_r_s_na_with_a_warning(jkn: ssc.Design, brr: ssc.Design) -> None:
    # R's svrepglm dispersion (about n) flattens the profile: R's limits are NA.
    want = R["ciprop_rep"]
    assert want["jkn_likelihood"]["ci"] == [None, None]
    for design, key, kw in ((jkn, "jkn_likelihood", {}), (brr, "brr_likelihood", {"na_rm": True})):
        y = "yes" if design is jkn else "HI_CHOL"
        with pytest.warns(ssc.SurveyWarning, match="short of the cut-off"):
            table = design.ciprop(y, method="likelihood", **kw).to_pandas()
        assert_allclose(table["estimate"], want[key]["estimate"], rtol=1e-9)
        assert_allclose(table["se"], want[key]["se"], rtol=RTOL)
        assert table[["ci_low", "ci_high"]].isna().all(axis=None)


def test_replicate_refits_run_in_the_core(jkn: ssc.Design, apistrat: pd.DataFrame) -> None:
    # Each replicate's intercept is the logit of its weighted proportion (to R's 1e-8
    # deviance tolerance): checked by hand against the replicate weights.
    reps = jkn.replicate_weights()
    y = apistrat["yes"].to_numpy()
    p = (reps * y[:, None]).sum(axis=0) / reps.sum(axis=0)
    start = np.array([np.log(0.8 / 0.2)])
    got = ssc._core.glm_replicate_coefficients(matrix_columns(np.ones((len(y), 1))), y, np.ascontiguousarray(reps), start,
                                               "quasibinomial")
    assert_allclose(got[:, 0], np.log(p / (1 - p)), rtol=1e-7)


# 6. a by-domain with zero total weight is left out, with a warning -----------------------


def test_zero_weight_domain_is_dropped(apistrat: pd.DataFrame) -> None:
    want = R["zero_domain"]
    zw = apistrat.assign(w=np.where(apistrat["stype"] == "H", 0.0, apistrat["pw"]))
    design = ssc.Design(zw, strata="stype", weights="w")
    with pytest.warns(ssc.SurveyWarning, match="stype = H: every row has zero weight"):
        mean = design.mean("api00", by="stype").to_pandas()
    assert mean["stype"].tolist() == want["levels"]
    assert_allclose(mean["estimate"], want["mean"], rtol=RTOL)
    assert_allclose(mean["se"], want["mean_se"], rtol=RTOL)
    with pytest.warns(ssc.SurveyWarning, match="stype = H"):
        total = design.total("api00", by="stype").to_pandas()
    assert_allclose(total["estimate"], want["total"], rtol=RTOL)
    assert_allclose(total["se"], want["total_se"], rtol=RTOL)
    clustered = ssc.Design(zw, ids="dnum", weights="w")
    with pytest.warns(ssc.SurveyWarning, match="stype = H"):
        clus = clustered.mean("api00", by="stype").to_pandas()
    assert_allclose(clus["estimate"], want["clus_mean"], rtol=RTOL)
    assert_allclose(clus["se"], want["clus_se"], rtol=RTOL)
    with pytest.warns(ssc.SurveyWarning, match="stype = H"):
        prop = design.ciprop("yes", by="stype").to_pandas()
    assert prop["stype"].tolist() == want["levels"]


# 7. R's warnings --------------------------------------------------------------------------


def test_fpc_varying_within_a_stratum_warns(apistrat: pd.DataFrame) -> None:
    want = R["warnings"]
    assert want["fpc_message"] == "`fpc' varies within strata: stratum M at stage 1"
    fv = apistrat.copy()
    fv["fpc2"] = fv["fpc"].astype(float)
    fv.loc[fv.index[fv["stype"] == "M"][0], "fpc2"] += 10
    with pytest.warns(ssc.SurveyWarning, match="fpc varies within strata: stratum 'M' at stage 1"):
        design = ssc.Design(fv, strata="stype", fpc="fpc2")
    _check(design.mean("api00"), want["fpc_mean"])


def test_negative_variance_gives_nan_with_a_warning(reference_dir: Path) -> None:
    want = R["warnings"]
    assert want["nan_message"] == "NaNs produced"
    clus = pd.read_csv(reference_dir / "data" / "apiclus1.csv")
    jk1 = pd.read_csv(reference_dir / "data" / "repw_apiclus1_JK1.csv")
    data = pd.concat([clus, jk1], axis=1)
    rscales = np.resize([1.0, -2.0], jk1.shape[1])
    design = ssc.ReplicateDesign(data, repweights=list(jk1.columns), weights="pw", type="other", scale=1.0,
                                 rscales=rscales, combined_weights=False)
    with pytest.warns(ssc.SurveyWarning, match="NaNs produced"):
        result = design.mean("api00")
    assert_allclose(result.to_pandas()["estimate"], want["nan_estimate"], rtol=RTOL)
    assert np.isnan(result.to_pandas()["se"]).all()
    assert_allclose(result.vcov[0][0, 0], want["nan_var"], rtol=RTOL)
