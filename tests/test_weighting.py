"""Weighting: post-stratification, raking, calibration and trimming, their variance,
diagnostics and errors.  R's own numbers for the shared API cases are in
tests/reference; here are properties an outsider can check by hand."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

import sscoverage as ssc
from run_cases import SHARED_REFERENCE as REFERENCE
from run_cases import load_data

TOTALS = {"(Intercept)": 6194, "stypeH": 755, "stypeM": 1018, "api99": 3914069}
STYPE = [{"stype": "E", "Freq": 4421}, {"stype": "H", "Freq": 755}, {"stype": "M", "Freq": 1018}]
SCH_WIDE = {"No": 1072, "Yes": 5122}


@pytest.fixture(scope="module")
def apiclus1(reference_dir):
    return load_data({"data": "apiclus1.csv"}, REFERENCE / "data")


@pytest.fixture(scope="module")
def clus1(apiclus1):
    return ssc.Design(apiclus1, ids="dnum", weights="pw", fpc="fpc")


def _model(df):
    """The model matrix of ~stype+api99 by hand: intercept, stypeH, stypeM, api99."""
    return np.column_stack([np.ones(len(df)), df["stype"] == "H", df["stype"] == "M", df["api99"]]).astype(float)


@pytest.mark.parametrize("calfun,bounds", [
    ("linear", None), ("raking", None), ("logit", (0.7, 1.7)), ("linear", (0.6, 1.6)),
])
def test_calibrated_weights_reproduce_their_totals(clus1, apiclus1, calfun, bounds):
    cal = clus1.calibrate("~stype+api99", TOTALS, calfun=calfun, bounds=bounds)
    assert_allclose(cal.weights @ _model(apiclus1), list(TOTALS.values()), rtol=1e-7)
    if bounds is not None:
        g = cal.weights / clus1.weights
        assert g.min() >= bounds[0] - 1e-9 and g.max() <= bounds[1] + 1e-9
    table = cal.weighting_report().to_pandas()
    assert_allclose(table["after"], table["target"], rtol=1e-7)
    assert_allclose(table["before"], clus1.weights @ _model(apiclus1))


def test_rake_equals_raking_calibration(clus1):
    """Raking to two margins and calibrating with calfun='raking' to the same totals
    reach the same weights (both are the multiplicative solution)."""
    raked = clus1.rake([("~stype", STYPE), ("~sch.wide", SCH_WIDE)], control={"maxit": 200, "epsilon": 1e-12})
    cal = clus1.calibrate(
        "~stype+sch.wide", {"(Intercept)": 6194, "stypeH": 755, "stypeM": 1018, "sch.wideYes": 5122},
        calfun="raking", epsilon=1e-12,
    )
    assert_allclose(raked.weights, cal.weights, rtol=1e-9)


def test_poststratify_equals_linear_calibration_on_the_cells(clus1):
    """Post-stratification is GREG on cell indicators: same weights, same residuals."""
    ps = clus1.poststratify("~stype", STYPE)
    cal = clus1.calibrate("~stype", {"(Intercept)": 6194, "stypeH": 755, "stypeM": 1018})
    assert_allclose(ps.weights, cal.weights, rtol=1e-12)
    a, b = ps.total("enroll"), cal.total("enroll")
    assert_allclose(a.estimate, b.estimate, rtol=1e-12)
    assert_allclose(a.se, b.se, rtol=1e-10)


def test_post_stratified_se_by_hand():
    """An SRS with replacement of 6 rows in two post-strata.  The post-stratified total's
    variance is n/(n-1) sum_i (e_i - ebar)^2, e_i = w_new (y_i - ybar_h) with ybar_h the
    post-stratum's (old-weight) mean (Sarndal, Swensson & Wretman 1992, 7.6)."""
    df = pd.DataFrame({"y": [1.0, 3, 2, 10, 14, 12], "g": list("aaabbb"), "w": 2.0})
    ps = ssc.Design(df, weights="w").poststratify("g", {"a": 9, "b": 3})
    w_new = np.array([3.0, 3, 3, 1, 1, 1])
    e = w_new * (df["y"] - np.repeat([2.0, 12.0], 3))
    res = ps.total("y")
    assert_allclose(res.estimate, [9 * 2 + 3 * 12])
    assert_allclose(res.se, [np.sqrt(6 / 5 * ((e - e.mean()) ** 2).sum())])


def test_calibration_removes_the_variance_of_what_it_fixes(clus1):
    """The total of a calibration variable is known after calibration: SE 0."""
    cal = clus1.calibrate("~stype+api99", TOTALS)
    res = cal.total("api99")
    assert_allclose(res.estimate, [TOTALS["api99"]])
    assert res.se[0] < 1e-6 * TOTALS["api99"]


def test_domains_of_a_calibrated_design_match_r(clus1):
    # R: cal <- calibrate(svydesign(ids=~dnum, weights=~pw, fpc=~fpc, data=apiclus1),
    #          ~stype+api99, c(`(Intercept)`=6194, stypeH=755, stypeM=1018, api99=3914069))
    #    svyby(~api00, ~sch.wide, cal, svymean); svyratio(~api00, ~api99, cal)
    cal = clus1.calibrate("~stype+api99", TOTALS)
    by = cal.mean("api00", by="sch.wide")
    assert_allclose(by.estimate, [626.721780184336, 671.581043023697], rtol=1e-10)
    assert_allclose(by.se, [16.6943685676236, 4.46031458286185], rtol=1e-9)
    r = cal.ratio("api00", "api99")
    assert_allclose(r.estimate, [1.05284919269457], rtol=1e-10)
    assert_allclose(r.se, [0.00544656182683837], rtol=1e-9)


def test_replicates_are_recalibrated(clus1, apiclus1):
    rep = clus1.as_replicates("JK1")
    for cal in (rep.calibrate("~stype+api99", TOTALS), rep.calibrate("~stype+api99", TOTALS, calfun="raking")):
        assert_allclose(cal.replicate_weights().T @ _model(apiclus1), np.tile(list(TOTALS.values()), (15, 1)), rtol=1e-6)
    ps = rep.poststratify("~stype", STYPE)
    counts = [ps.replicate_weights()[(apiclus1["stype"] == s).to_numpy()].sum(axis=0) for s in "EHM"]
    assert_allclose(np.array(counts).T, np.tile([4421, 755, 1018], (15, 1)))


def test_trimming_keeps_the_sum_and_bounds(apiclus1):
    design = ssc.Design(apiclus1.assign(w=np.linspace(5, 80, len(apiclus1))), ids="dnum", weights="w")
    trimmed = design.trim_weights(lower=20, upper=60, strict=True)
    assert trimmed.weights.min() >= 20 and trimmed.weights.max() <= 60
    assert_allclose(trimmed.weights.sum(), design.weights.sum())


def test_weighting_report(clus1):
    cal = clus1.calibrate("~stype+api99", TOTALS, calfun="raking")
    rep = cal.weighting_report()
    w = cal.weights
    assert_allclose(rep.kish_deff, len(w) * (w**2).sum() / w.sum() ** 2)
    assert_allclose(rep.effective_n, w.sum() ** 2 / (w**2).sum())
    assert rep.adjustments[0].method == "calibrate" and rep.adjustments[0].converged
    assert 1 <= rep.adjustments[0].iterations < 50
    assert rep.weights["min"] == w.min()
    assert "Kish deff" in repr(rep)


# ----------------------------------------------------------------------------- errors
def test_margins_whose_totals_disagree(clus1):
    with pytest.raises(ssc.CalibrationError, match="margins disagree"):
        clus1.rake([("~stype", STYPE), ("~sch.wide", {"No": 1072, "Yes": 5000})])


def test_category_in_sample_absent_from_targets(clus1):
    with pytest.raises(ssc.CalibrationError, match="stype = M"):
        clus1.poststratify("~stype", STYPE[:2])
    with pytest.raises(ssc.CalibrationError, match="sample is absent from the targets"):
        clus1.calibrate("~stype+api99", {k: v for k, v in TOTALS.items() if k != "stypeM"})


def test_category_in_targets_absent_from_sample(clus1):
    with pytest.raises(ssc.CalibrationError, match="no row of the sample"):
        clus1.poststratify("~stype", [*STYPE, {"stype": "K", "Freq": 10}])
    with pytest.raises(ssc.CalibrationError, match="absent from the sample"):
        clus1.calibrate("~stype+api99", {**TOTALS, "stypeK": 10})


def test_negative_targets(clus1):
    with pytest.raises(ssc.CalibrationError, match="non-negative"):
        clus1.poststratify("~stype", [{**STYPE[0], "Freq": -1}, *STYPE[1:]])
    with pytest.raises(ssc.CalibrationError, match="negative population total"):
        clus1.calibrate("~stype+api99", {**TOTALS, "stypeH": -5})


def test_infeasible_bounds(clus1):
    with pytest.raises(ssc.CalibrationError, match="infeasible bounds"):
        clus1.calibrate("~stype+api99", TOTALS, bounds=(0.9, 1.1))


def test_non_convergence_says_how_close(clus1):
    with pytest.raises(ssc.ConvergenceError, match="did not converge") as err:
        clus1.calibrate("~stype+api99", TOTALS, calfun="raking", maxit=1)
    assert err.value.misfit > 1e-7 and err.value.iterations >= 1
    with pytest.raises(ssc.ConvergenceError, match=r"margin sch\.wide is furthest from its targets"):
        clus1.rake([("~stype", STYPE), ("~sch.wide", SCH_WIDE), ("~comp.imp", {"No": 1712, "Yes": 4482})],
                   control={"maxit": 1, "epsilon": 1e-12})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        kept = clus1.calibrate("~stype+api99", TOTALS, calfun="raking", maxit=1, force=True)
    assert any(issubclass(c.category, ssc.ConvergenceWarning) for c in caught)
    assert not kept.weighting_report().adjustments[0].converged


def test_weighting_a_subset_is_refused(clus1):
    with pytest.raises(ssc.DesignError, match="then take the subset"):
        clus1.subset({"column": "stype", "op": "==", "value": "E"}).poststratify("~stype", STYPE)


# ------------------------------------------------------------------ nonresponse adjustment
# R's numbers below come from survey 4.1.1 with a made-up response indicator,
# resp <- as.integer(meals < 75), and the full-sample class totals as the population:
#   d   <- svydesign(id=~1, strata=~stype, weights=~pw, fpc=~fpc, data=apistrat)
#   adj <- postStratify(subset(d, resp==1), ~stype+awards, as.data.frame(svytable(~stype+awards, d)))
# (subset() of an uncalibrated design drops the nonrespondents' rows; the variance still
# counts the full sample's PSUs, padding the dropped ones with zeros.)
@pytest.fixture(scope="module")
def apistrat_nr(reference_dir):
    df = load_data({"data": "apistrat.csv"}, REFERENCE / "data")
    return df.assign(resp=(df["meals"] < 75).astype(int))


@pytest.fixture(scope="module")
def strat_nr(apistrat_nr):
    return ssc.Design(apistrat_nr, strata="stype", weights="pw", fpc="fpc")


def test_nonresponse_classes_reproduce_the_full_sample_class_totals(strat_nr, apistrat_nr):
    adj = strat_nr.adjust_nonresponse("resp", classes=["stype", "awards"])
    resp = apistrat_nr["resp"].to_numpy() == 1
    assert (adj.weights[~resp] == 0).all()
    for _, cls in apistrat_nr.groupby(["stype", "awards"]):
        rows = apistrat_nr.index.get_indexer(cls.index)
        assert_allclose(adj.weights[rows].sum(), strat_nr.weights[rows].sum(), rtol=1e-12)
        assert (adj.weights[rows][resp[rows]] > 0).all()
    step = adj.weighting_report().adjustments[-1]
    assert step.method == "nonresponse (weighting classes)"
    table = step.table
    assert list(table["level"]) == ["E:No", "E:Yes", "H:No", "H:Yes", "M:No", "M:Yes"]
    assert_allclose(table["after"], table["target"], rtol=1e-12)
    assert_allclose(table["factor"], table["target"] / table["before"])
    assert_allclose(table["response_rate"], table["n_respondents"] / table["n"])
    assert step.details["respondents"] == 160 and step.details["response_rate"] == 0.8
    assert_allclose(step.details["weighted_response_rate"], strat_nr.weights[resp].sum() / strat_nr.weights.sum())
    # The adjusted design can be calibrated further.
    cal = adj.calibrate("~api99", {"(Intercept)": 6194, "api99": 3914069})
    assert_allclose(cal.total("api99").estimate, [3914069])


def test_nonresponse_adjustment_by_hand():
    """Six rows of an SRS with replacement in two classes.  Class a: weights 1, 2, 3, of
    which the first two respond, so they get 6/3 = 2x; class b: weights 4, 4, 4, one
    respondent carrying 12.  The total's variance is n/(n-1) sum_i (e_i - ebar)^2 over
    all six rows, e_i = w_new (y_i - ybar_c) for a respondent (ybar_c its class's
    respondent mean with the old weights) and 0 for a nonrespondent."""
    df = pd.DataFrame({
        "y": [1.0, 4.0, np.nan, 10.0, np.nan, np.nan],
        "c": list("aaabbb"),
        "w": [1.0, 2, 3, 4, 4, 4],
        "r": [True, True, False, True, False, False],
    })
    adj = ssc.Design(df, weights="w").adjust_nonresponse("r", classes="c")
    assert_allclose(adj.weights, [2.0, 4, 0, 12, 0, 0])
    table = adj.weighting_report().adjustments[0].table
    assert_allclose(table["factor"], [2.0, 3.0])
    assert_allclose(table["response_rate"], [2 / 3, 1 / 3])
    assert_allclose(table["weighted_response_rate"], [0.5, 1 / 3])
    res = adj.total("y", na_rm=True)
    ybar_a = (1 * 1.0 + 2 * 4.0) / 3
    assert_allclose(res.estimate, [2 * 1.0 + 4 * 4.0 + 12 * 10.0])
    e = np.array([2 * (1.0 - ybar_a), 4 * (4.0 - ybar_a), 0, 12 * (10.0 - 10.0), 0, 0])
    assert_allclose(res.se, [np.sqrt(6 / 5 * ((e - e.mean()) ** 2).sum())], rtol=1e-12)


def test_nonresponse_se_matches_r(strat_nr, apistrat_nr, apiclus1):
    # R (see above): svymean(~api00, adj); svytotal(~enroll, adj); degf(adj)
    adj = strat_nr.adjust_nonresponse("resp", classes="~stype+awards")
    m, t = adj.mean("api00"), adj.total("enroll")
    assert_allclose(m.estimate, [705.495752853], rtol=1e-10)
    assert_allclose(m.se, [8.8394261893199], rtol=1e-9)
    assert_allclose(t.estimate, [3492800.215517], rtol=1e-10)
    assert_allclose(t.se, [107547.732247793], rtol=1e-9)
    # With the outcome missing for nonrespondents, the respondents' subset gives the
    # same numbers and R's degrees of freedom (160 respondents - 3 strata).
    resp = apistrat_nr["resp"] == 1
    hidden = ssc.Design(apistrat_nr.assign(api00=apistrat_nr["api00"].where(resp)),
                        strata="stype", weights="pw", fpc="fpc").adjust_nonresponse("resp", classes="~stype+awards")
    sub = hidden.subset(resp.to_numpy()).mean("api00")
    assert_allclose(sub.se, [8.8394261893199], rtol=1e-9)
    assert hidden.subset(resp.to_numpy()).degf == 157
    assert_allclose(hidden.mean("api00", na_rm=True).se, [8.8394261893199], rtol=1e-9)

    # A cluster sample, nonrespondents inside the sampled districts:
    #   apiclus1$resp <- as.integer(apiclus1$meals < 75)
    #   c1 <- svydesign(id=~dnum, weights=~pw, fpc=~fpc, data=apiclus1)
    #   ac <- postStratify(subset(c1, resp==1), ~stype, as.data.frame(svytable(~stype, c1)))
    #   svytotal(~enroll, ac); svymean(~api00, ac)
    #   ar <- postStratify(subset(as.svrepdesign(c1, type="JK1"), resp==1), ~stype,
    #                      as.data.frame(svytable(~stype, c1))); svymean(~api00, ar)
    clus = ssc.Design(apiclus1.assign(resp=apiclus1["meals"] < 75), ids="dnum", weights="pw", fpc="fpc")
    ac = clus.adjust_nonresponse("resp", classes="stype")
    assert_allclose(ac.total("enroll").estimate, [3433290.42597463], rtol=1e-10)
    assert_allclose(ac.total("enroll").se, [290900.089874608], rtol=1e-9)
    assert_allclose(ac.mean("api00").estimate, [684.135159922045], rtol=1e-10)
    assert_allclose(ac.mean("api00").se, [13.2674779760653], rtol=1e-9)
    ar = clus.as_replicates("JK1").adjust_nonresponse("resp", classes="stype")
    assert_allclose(ar.mean("api00").se, [14.7575416627828], rtol=1e-9)


def test_nonresponse_by_propensity_matches_r(strat_nr):
    # fit <- svyglm(resp ~ api99 + stype, d, family=quasibinomial); p <- fitted(fit)
    # w <- weights(d); o <- order(p); share <- cumsum(w[o])/sum(w)
    # cuts <- p[o][sapply((1:4)/5, function(q) which(share >= q)[1])]
    # d <- update(d, pcls=factor(sapply(p, function(x) sum(cuts < x)) + 1))
    # a <- postStratify(subset(d, resp==1), ~pcls, as.data.frame(svytable(~pcls, d)))
    # svymean(~api00, a)
    # dd <- svydesign(id=~1, strata=~stype, weights=~ifelse(resp==1, pw/p, 0), fpc=~fpc,
    #                 data=apistrat); svymean(~api00, dd)
    adj = strat_nr.adjust_nonresponse("resp", propensity="~api99+stype")
    step = adj.weighting_report().adjustments[-1]
    assert_allclose(list(step.details["coefficients"].values()),
                    [-13.593786376178933, 0.025201099985546, 2.844687051285387, 2.042142750596822], rtol=1e-7)
    assert_allclose(step.table["target"],
                    [1276.19997978210, 1242.96998977661, 1203.33999061584, 1239.26000022888, 1232.22999763489],
                    rtol=1e-10)
    assert (np.diff(step.table["propensity_mean"]) > 0).all()
    m = adj.mean("api00")
    assert_allclose(m.estimate, [667.379613968033], rtol=1e-10)
    assert_allclose(m.se, [5.28991127209131], rtol=1e-8)
    div = strat_nr.adjust_nonresponse("resp", propensity="api99 + stype", n_classes=None)
    m = div.mean("api00")
    assert_allclose(m.estimate, [673.047642767255], rtol=1e-9)
    assert_allclose(m.se, [12.4797368500087], rtol=1e-8)
    assert div.weighting_report().adjustments[-1].method == "nonresponse (propensity)"


def test_nonresponse_errors(strat_nr, apistrat_nr):
    with pytest.raises(ssc.CalibrationError, match=r"stype:awards = 'H:No' \(34 sampled, 0 responded\)"):
        ssc.Design(apistrat_nr.assign(resp=apistrat_nr["resp"].where(
            (apistrat_nr["stype"] != "H") | (apistrat_nr["awards"] != "No"), 0)),
            strata="stype", weights="pw", fpc="fpc").adjust_nonresponse("resp", classes=["stype", "awards"])
    bad = ssc.Design(apistrat_nr.assign(r2=np.where(apistrat_nr["resp"] == 1, 1, 2),
                                        r3=np.where(apistrat_nr["resp"] == 1, "yes", "no"),
                                        r4=apistrat_nr["resp"].where(apistrat_nr.index != 5),
                                        c=apistrat_nr["awards"].where(apistrat_nr.index != 7)),
                     strata="stype", weights="pw", fpc="fpc")
    with pytest.raises(ssc.ColumnError, match="0/1 or logical.*other values"):
        bad.adjust_nonresponse("r2", classes="stype")
    with pytest.raises(ssc.ColumnError, match="0/1 or logical"):
        bad.adjust_nonresponse("r3", classes="stype")
    with pytest.raises(ssc.MissingValueError, match="respondent column 'r4' has 1 missing"):
        bad.adjust_nonresponse("r4", classes="stype")
    with pytest.raises(ssc.MissingValueError, match="weighting-class variable 'c'"):
        bad.adjust_nonresponse("resp", classes="c")
    with pytest.raises(ValueError, match=r"\(classes=\) or a response-propensity"):
        strat_nr.adjust_nonresponse("resp")
    with pytest.raises(ssc.DesignError, match="adjust for nonresponse first"):
        strat_nr.poststratify("~stype", STYPE).adjust_nonresponse("resp", classes="stype")
    with pytest.raises(ssc.DesignError, match="then take the subset"):
        strat_nr.subset(apistrat_nr["stype"] == "E").adjust_nonresponse("resp", classes="awards")


def test_nonresponse_degf_counts_only_psus_with_respondents():
    """R: degf(postStratify(subset(des, resp == 1), ...)) counts the PSUs and strata of
    rows with non-zero weight: 157 on apistrat with resp = meals < 75 (197 before)."""
    df = pd.read_csv(REFERENCE / "data" / "apistrat.csv", keep_default_na=False, na_values=[""])
    df["resp"] = (df.meals < 75).astype(int)
    design = ssc.Design(df, strata="stype", weights="pw", fpc="fpc")
    assert design.degf == 197
    assert design.adjust_nonresponse("resp", classes=["stype", "awards"]).degf == 157
