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
