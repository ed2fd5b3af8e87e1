"""Inference on a fitted design-based GLM: Wald tests of groups of terms (R's regTermTest),
odds ratios, predictions with SEs (R's predict.svyglm), predictive margins (R's
svypredmeans), average marginal effects and policy scenarios.

R figures were computed once with R 4.2.2 and survey 4.1.1 on the reference data in
../shared/reference/data; each test quotes the R call.  R's common set-up:

    apistrat <- read.csv("apistrat.csv", stringsAsFactors=TRUE)
    apiclus1 <- read.csv("apiclus1.csv", stringsAsFactors=TRUE)
    dstrat <- svydesign(id=~1, strata=~stype, weights=~pw, fpc=~fpc, data=apistrat)
    dclus1 <- svydesign(id=~dnum, weights=~pw, fpc=~fpc, data=apiclus1)
    rclus1 <- as.svrepdesign(dclus1)                  # JK1
    m2 <- svyglm(sch.wide ~ ell + meals + stype, design=dclus1, family=quasibinomial)
    m4 <- svyglm(sch.wide ~ ell + meals + stype, design=rclus1, family=quasibinomial)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest
from numpy.testing import assert_allclose

import sscoverage as ssc

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _oracle  # noqa: E402

RTOL = 1e-8
# R refits each replicate from the full-sample coefficients and stops by its deviance
# rule, so replicate coefficients (and what is built on them) agree to about 1e-7.
RTOL_REP = 1e-5


@pytest.fixture(scope="module")
def api(reference_dir):
    def read(name: str) -> pd.DataFrame:
        return pd.read_csv(reference_dir / "data" / name, keep_default_na=False, na_values=[""])

    return read("apistrat.csv"), read("apiclus1.csv")


@pytest.fixture(scope="module")
def dstrat(api):
    return ssc.Design(api[0], strata="stype", weights="pw", fpc="fpc")


@pytest.fixture(scope="module")
def dclus1(api):
    return ssc.Design(api[1], ids="dnum", weights="pw", fpc="fpc")


@pytest.fixture(scope="module")
def m2(dclus1):
    return dclus1.glm("sch.wide ~ ell + meals + stype", family="quasibinomial")


@pytest.fixture(scope="module")
def m4(dclus1):
    return dclus1.as_replicates("JK1").glm("sch.wide ~ ell + meals + stype", family="quasibinomial")


# ----------------------------------------------------------------------------- regTermTest
def test_wald_test_of_a_factor_and_of_two_terms_match_regtermtest(dstrat):
    fit = dstrat.glm("api00 ~ ell + meals + mobility + stype")
    # r <- regTermTest(svyglm(api00 ~ ell + meals + mobility + stype, dstrat), ~stype)
    # c(r$Ftest, r$df, r$ddf, r$p)
    t = fit.wald_test("stype")
    assert (t.ndf, t.ddf) == (2, 192)
    assert_allclose([t.statistic, t.p_value], [78.7064751722935, 1.08736216594048e-25], rtol=RTOL)
    # The coefficient names, or R's one-sided formula, name the same test.
    assert_allclose(fit.wald_test(["stypeH", "stypeM"]).statistic, t.statistic, rtol=1e-14)
    assert_allclose(fit.wald_test("~stype").statistic, t.statistic, rtol=1e-14)
    # regTermTest(m1, ~ell+meals)
    t2 = fit.wald_test("~ell + meals")
    assert_allclose([t2.statistic, t2.p_value], [298.033520457066, 1.33922689221846e-59], rtol=RTOL)


def test_wald_test_of_an_interaction_matches_regtermtest(dstrat):
    # regTermTest(svyglm(api00 ~ ell*stype + meals, dstrat), ~ell:stype): 2 and 191 df
    fit = dstrat.glm("api00 ~ ell*stype + meals")
    t = fit.wald_test("stype:ell")  # either order of the parts, as R's canonicalOrder
    assert t.coefficients == ["ell:stypeH", "ell:stypeM"] and t.ddf == 191
    assert_allclose([t.statistic, t.p_value], [1.181292397202738, 0.309113714411685], rtol=RTOL)


def test_wald_test_on_a_cluster_design_f_and_chisq(m2):
    # regTermTest(m2, ~stype); regTermTest(m2, ~stype, df=Inf)
    t = m2.wald_test("stype")
    assert t.ddf == 10
    assert_allclose([t.statistic, t.p_value], [4.4131667482881092, 0.0422835324177632], rtol=RTOL)
    c = m2.wald_test("stype", df=np.inf)
    assert c.ddf is None and c.ndf == 2
    assert_allclose([c.statistic, c.p_value], [8.8263334965762184, 0.0121167468233177], rtol=RTOL)
    assert "F = 4.41317 on 2 and 10 df" in repr(t)


def test_wald_test_on_a_replicate_design(m4):
    # regTermTest(m4, ~stype+meals)
    t = m4.wald_test("~stype+meals")
    assert (t.ndf, t.ddf) == (3, 10)
    assert_allclose([t.statistic, t.p_value], [6.70864606896049054, 0.00927374924803969], rtol=RTOL_REP)


def test_wald_test_with_a_null_value(m2):
    # Testing b = b_hat gives 0.
    t = m2.wald_test(["ell"], null=[m2.coef[1]])
    assert t.statistic == pytest.approx(0.0, abs=1e-20) and t.p_value == pytest.approx(1.0)


def test_wald_test_unknown_term(m2):
    with pytest.raises(ssc.EstimationError, match="'region' is neither a coefficient"):
        m2.wald_test("region")


# ----------------------------------------------------------------------------- odds ratios
def test_odds_ratios_match_r(m2):
    # exp(cbind(coef(m2), confint(m2)))
    r = np.array([
        [15.654641671608569, 5.1522511058995892, 47.565190599085597],
        [1.038904610904614, 1.0114451788264529, 1.067109531147472],
        [0.974965332790508, 0.9563665459082321, 0.993925816634031],
        [0.354539115004504, 0.0975166094402814, 1.288990509305530],
        [0.175811622166514, 0.0465054548661773, 0.664647331754219],
    ])
    table = m2.odds_ratios()
    assert table["term"].tolist() == ["(Intercept)", "ell", "meals", "stypeH", "stypeM"]
    assert_allclose(table[["odds_ratio", "ci_low", "ci_high"]].to_numpy(), r, rtol=RTOL)


def test_odds_ratios_need_the_logit_link(dclus1):
    fit = dclus1.glm("sch.wide ~ ell", family="quasibinomial", link="probit")
    with pytest.raises(ssc.EstimationError, match="logit link"):
        fit.odds_ratios()


# ----------------------------------------------------------------------------- predict
ROWS = [0, 49, 99, 149]  # R's apiclus1[c(1,50,100,150), ]


def test_predict_matches_predict_svyglm(api, m2):
    new = api[1].iloc[ROWS]
    # p <- predict(m2, newdata=apiclus1[c(1,50,100,150),], type="response"); coef(p); SE(p)
    resp = m2.predict(new, type="response").to_pandas()
    assert resp["row"].tolist() == ROWS
    assert_allclose(resp["estimate"], [0.888130802260862, 0.940934913697588, 0.714370302437187,
                                       0.639325173214431], rtol=RTOL)
    assert_allclose(resp["se"], [0.0528735542587625, 0.0141239089465876, 0.1026544366936062,
                                 0.1181649798258965], rtol=RTOL)
    # type="link"
    link = m2.predict(new, type="link")
    assert_allclose(link.estimate, [2.071788720522124, 2.768233976485637, 0.916705250638852,
                                    0.572436407631750], rtol=RTOL)
    assert_allclose(link.se, [0.532170809809206, 0.254135000974844, 0.503096124976924,
                              0.512449587988804], rtol=RTOL)


def test_predict_on_a_replicate_design_matches_predict_svrepglm(api, m4):
    # p <- predict(m4, newdata=..., type="response", return.replicates=FALSE); sqrt(attr(p, "var"))
    resp = m4.predict(api[1].iloc[ROWS], type="response")
    assert_allclose(resp.se, [0.0611349580998914, 0.0165301696088251, 0.1137133690716813,
                              0.1253679705315432], rtol=RTOL_REP)


def test_predict_without_newdata_covariance_and_missing_rows(api, m2):
    fitted = m2.predict(type="response", vcov=True)
    assert len(fitted) == m2.n and fitted.vcov[0].shape == (m2.n, m2.n)
    assert_allclose(np.sqrt(np.diag(fitted.vcov[0])), fitted.se, rtol=1e-12)
    new = pl.from_pandas(api[1].iloc[ROWS][["ell", "meals", "stype"]]).with_columns(
        pl.when(pl.int_range(pl.len()) == 1).then(None).otherwise(pl.col("ell")).alias("ell"))
    pred = m2.predict(new, type="response")
    assert np.isnan(pred.estimate[1]) and np.isfinite(pred.estimate[[0, 2, 3]]).all()


def test_predict_errors(api, m2):
    new = api[1].iloc[ROWS]
    with pytest.raises(ssc.ColumnError, match="no column 'meals'"):
        m2.predict(new.drop(columns=["meals"]))
    with pytest.raises(ssc.EstimationError, match="'X' is not a level"):
        m2.predict(new.assign(stype="X"))


# ----------------------------------------------------------------------------- margins
def test_predictive_margins_match_svypredmeans(dclus1):
    # adj <- svyglm(sch.wide ~ ell + meals, design=dclus1, family=quasibinomial)
    # pm <- svypredmeans(adj, ~stype); coef(pm); SE(pm)          (R lists H, E, M)
    fit = dclus1.glm("sch.wide ~ ell + meals + stype", family="quasibinomial")
    r_est = {"E": 0.916737582077037, "H": 0.801821344824702, "M": 0.675717384675901}
    r_se = {"E": 0.0172336854264153, "H": 0.0772508394265532, "M": 0.1136857550057998}
    compat = fit.predictive_margins("stype", method="svypredmeans")
    assert compat.to_pandas()["level"].tolist() == ["E", "H", "M"]
    assert_allclose(compat.estimate, [r_est[k] for k in "EHM"], rtol=RTOL)
    assert_allclose(compat.se, [r_se[k] for k in "EHM"], rtol=RTOL)
    # The default keeps the covariance between the sample-mean and coefficient parts,
    # which R's svypredmeans leaves out: same estimates, other SEs.
    joint = fit.predictive_margins("stype")
    assert_allclose(joint.estimate, compat.estimate, rtol=1e-14)
    assert not np.allclose(joint.se, compat.se, rtol=1e-3)


def _mean_prediction(fit, data, w, **changes):
    return float(np.average(fit.predict(data.assign(**changes), type="response").estimate, weights=w))


@pytest.mark.parametrize("link", ["logit", "probit", "cloglog"])
def test_average_marginal_effect_is_the_mean_derivative_of_predictions(api, dclus1, link):
    data = api[1]
    fit = dclus1.glm("sch.wide ~ ell + I(ell**2) + meals + stype", family="quasibinomial", link=link)
    w = data["pw"].to_numpy()
    h = 1e-3
    finite = (_mean_prediction(fit, data, w, ell=data["ell"] + h)
              - _mean_prediction(fit, data, w, ell=data["ell"] - h)) / (2 * h)
    ame = fit.marginal_effects("ell")
    assert_allclose(ame.estimate[0], finite, rtol=1e-6)
    # A factor: the change of the mean prediction from the reference level.
    levels = fit.marginal_effects("stype").to_pandas()
    assert levels["level"].tolist() == ["H", "M"]
    base = _mean_prediction(fit, data, w, stype="E")
    for level, est in zip("HM", levels["estimate"]):
        assert_allclose(est, _mean_prediction(fit, data, w, stype=level) - base, rtol=1e-10)


@pytest.mark.parametrize("link", ["logit", "cloglog"])
def test_ame_standard_error_by_numerical_delta_method(api, dclus1, link):
    # The analytic gradient of the AME against a numerical one: influence values
    # w (m_i - AME) / W + u_i . grad, all by hand (tests/_oracle.py for the variance).
    data = api[1]
    fit = dclus1.glm("sch.wide ~ ell + meals", family="quasibinomial", link=link)
    x = np.column_stack([np.ones(len(data)), data["ell"], data["meals"]])
    w = data["pw"].to_numpy()
    inverse, mu_eta = {
        "logit": (lambda e: 1 / (1 + np.exp(-e)), lambda e: np.exp(-e) / (1 + np.exp(-e)) ** 2),
        "cloglog": (lambda e: 1 - np.exp(-np.exp(e)), lambda e: np.exp(e - np.exp(e))),
    }[link]

    def per_row(beta):
        return mu_eta(x @ beta) * beta[1]

    ame = np.average(per_row(fit.coef), weights=w)
    grad = np.empty(3)
    for j in range(3):
        step = np.zeros(3)
        step[j] = 1e-6
        grad[j] = (np.average(per_row(fit.coef + step), weights=w)
                   - np.average(per_row(fit.coef - step), weights=w)) / 2e-6
    # The coefficients' influence values by hand: the inverse expected information times
    # each row's score (svyglm's sandwich), then R's one-stage variance with fpc.
    y = (data["sch.wide"] == "Yes").to_numpy(float)
    eta = x @ fit.coef
    mu, d_mu = inverse(eta), mu_eta(eta)
    info = x.T @ (x * (w * d_mu**2 / (mu * (1 - mu)))[:, None])
    influence = (x * (w * (y - mu) * d_mu / (mu * (1 - mu)))[:, None]) @ np.linalg.inv(info)
    z = w * (per_row(fit.coef) - ame) / w.sum() + influence @ grad
    n_districts = data["fpc"].iloc[0]
    se = np.sqrt(_oracle.stratified_variance(z, np.zeros(len(z)), data["dnum"].to_numpy(), {0.0: n_districts}))
    got = fit.marginal_effects("ell")
    assert_allclose(got.estimate[0], ame, rtol=1e-9)
    # R's svyglm (and ours) takes the information at the working weights of its last
    # IRLS step, not at the final coefficients: a difference of the order of the
    # square root of glm's 1e-8 convergence tolerance on the deviance.
    assert_allclose(got.se[0], se, rtol=1e-4)


def test_linear_model_ame_is_the_coefficient(dstrat):
    fit = dstrat.glm("api00 ~ ell + meals + stype")
    ame = fit.marginal_effects("meals")
    j = fit.terms.index("meals")
    assert_allclose(ame.estimate[0], fit.coef[j], rtol=1e-9)
    assert_allclose(ame.se[0], fit.se[j], rtol=1e-7)
    # A factor's discrete change in a linear model without interactions: its coefficient.
    change = fit.marginal_effects("stype")
    assert_allclose(change.estimate, fit.coef[[fit.terms.index("stypeH"), fit.terms.index("stypeM")]],
                    rtol=1e-10)
    assert_allclose(change.se, fit.se[[fit.terms.index("stypeH"), fit.terms.index("stypeM")]], rtol=1e-8)


def test_margins_on_a_replicate_design_are_recomputed_per_replicate(dclus1, m4):
    """R's numbers: the margins with each replicate's svyglm coefficients and weights,
    through svrVar (tests/data/r_checks/margins.R)."""
    r = json.loads((Path(__file__).resolve().parent / "data" / "r_checks" / "margins.json").read_text())
    margins = m4.predictive_margins("stype").to_pandas()
    assert margins["level"].tolist() == r["levels"]
    # R's glm stops each replicate fit at a relative deviance change of 1e-8, and an SE
    # is a spread of nearly equal replicate values: 1e-6 (the SEs agree to ~1e-7).
    assert_allclose(margins[["estimate", "se"]].to_numpy().T,
                    [r["predictive_margins"]["estimate"], r["predictive_margins"]["se"]], rtol=1e-6)
    effects = m4.marginal_effects("stype").to_pandas()
    assert effects["level"].tolist() == r["marginal_effects"]["levels"]
    assert_allclose(effects[["estimate", "se"]].to_numpy().T,
                    [r["marginal_effects"]["estimate"], r["marginal_effects"]["se"]], rtol=1e-6)
    # A gaussian identity model on replicates: the AME is the coefficient, SE and all.
    rep = dclus1.as_replicates("JK1").glm("api00 ~ ell + meals")
    assert_allclose(rep.marginal_effects("meals").se[0], rep.se[2], rtol=1e-7)


def test_numeric_margins_at_values(dstrat):
    fit = dstrat.glm("api00 ~ ell + meals")
    pm = fit.predictive_margins("meals", levels=[10, 50])
    w = dstrat.weights
    ell_mean = np.average(dstrat.frame.numeric("ell", "x"), weights=w)
    b = fit.coef
    assert_allclose(pm.estimate, [b[0] + b[1] * ell_mean + b[2] * m for m in (10, 50)], rtol=1e-12)
    # The difference of the two margins is 40 times the slope, with 40 times its SE.
    v = pm.vcov[0]
    assert_allclose(np.sqrt(v[0, 0] + v[1, 1] - 2 * v[0, 1]), 40 * fit.se[2], rtol=1e-7)


def test_margin_errors(m2):
    with pytest.raises(ssc.ColumnError, match="'api00' is not a variable of the right-hand side"):
        m2.marginal_effects("api00")
    with pytest.raises(ssc.EstimationError, match="numeric: give the values"):
        m2.predictive_margins("ell")
    with pytest.raises(ssc.EstimationError, match="'Z' is not a level"):
        m2.predictive_margins("stype", levels=["E", "Z"])


# ----------------------------------------------------------------------------- scenarios
def test_scenario_shift_in_a_linear_model_changes_by_slope_times_shift(dstrat):
    fit = dstrat.glm("api00 ~ ell + meals")
    out = ssc.simulate.scenario(fit, changes={"meals": lambda x: x + 5}, by="stype").to_pandas()
    assert out["group"].tolist() == ["all"] * 3 + ["E"] * 3 + ["H"] * 3 + ["M"] * 3
    change = out[out["variable"] == "change"]
    assert_allclose(change["estimate"], 5 * fit.coef[2], rtol=1e-10)
    assert_allclose(change["se"], 5 * fit.se[2], rtol=1e-7)
    baseline = out[(out["variable"] == "baseline") & (out["group"] == "all")]
    assert_allclose(baseline["estimate"], np.average(dstrat.frame.numeric("api00", "y"),
                                                     weights=dstrat.weights), rtol=1e-10)


def test_scenario_subsidy_below_a_threshold(dclus1, m2):
    # A subsidy that lowers meals (a poverty marker) for schools above 50: coverage of
    # sch.wide rises only through them; the change is the mean of the prediction
    # differences, with an SE smaller than either level's.
    change = {"meals": lambda m: np.where(m > 50, m - 10, m)}
    out = ssc.simulate.scenario(m2, changes=change).to_pandas()
    base, new, diff = out["estimate"]
    data = dclus1.frame.data
    w = data["pw"].to_numpy()
    p0 = m2.predict(data, type="response").estimate
    p1 = m2.predict(data.assign(meals=change["meals"](data["meals"])), type="response").estimate
    assert_allclose([base, new, diff], [np.average(p0, weights=w), np.average(p1, weights=w),
                                        np.average(p1 - p0, weights=w)], rtol=1e-10)
    assert 0 < out["se"][2] < min(out["se"][0], out["se"][1])
    # A subset of the design: the averages over that domain only.
    sub = ssc.simulate.scenario(m2, dclus1.subset((data["stype"] == "E").to_numpy()), changes=change)
    e = (data["stype"] == "E").to_numpy()
    assert_allclose(sub.estimate[2], np.average((p1 - p0)[e], weights=w[e]), rtol=1e-10)


def test_scenario_no_change_and_errors(dclus1, m2):
    out = ssc.simulate.scenario(m2, changes={"stype": lambda s: s})
    assert out.estimate[2] == pytest.approx(0.0, abs=1e-15) and out.se[2] == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ssc.ColumnError, match="'income' is not a variable"):
        ssc.simulate.scenario(m2, changes={"income": 1.0})
    with pytest.raises(ssc.EstimationError, match="changes is empty"):
        ssc.simulate.scenario(m2, changes={})
    other = ssc.Design(dclus1.frame.data, ids="dnum", weights="pw")
    with pytest.raises(ssc.DesignError, match="fitted on or a subset"):
        ssc.simulate.scenario(m2, other, changes={"meals": 0.0})
