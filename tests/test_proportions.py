"""Confidence intervals for proportions: each method by hand, invariants, errors, and
every number of the shared reference cases."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest
from numpy.testing import assert_allclose
from scipy import stats

import sscoverage as ssc

METHODS = ("logit", "likelihood", "asin", "beta", "mean", "xlogit", "wilson")


@pytest.fixture
def df() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    n = 120
    return pd.DataFrame(
        {
            "covered": (rng.uniform(size=n) < 0.3).astype(float),
            "psu": np.repeat(np.arange(24), 5),
            "stratum": np.repeat(["a", "b", "c"], 40),
            "w": rng.uniform(1, 5, n),
            "g": np.tile(["x", "y"], 60),
        }
    )


@pytest.fixture
def design(df) -> ssc.Design:
    return ssc.Design(df, ids="psu", strata="stratum", weights="w")


def test_mean_interval_is_mean_plus_minus_t_se(design):
    r = design.ciprop("covered", "mean").table.iloc[0]
    m = design.mean("covered").table.iloc[0]
    assert r.estimate == pytest.approx(m.estimate, rel=1e-14)
    assert r.se == pytest.approx(m.se, rel=1e-12)
    t = stats.t.ppf(0.975, design.degf)
    assert [r.ci_low, r.ci_high] == pytest.approx([r.estimate - t * r.se, r.estimate + t * r.se], rel=1e-14)


def test_transformed_intervals_by_hand(design):
    p, se = design.mean("covered").estimate[0], design.mean("covered").se[0]
    t = stats.t.ppf(0.95, design.degf)
    eta = np.log(p / (1 - p)) + np.array([-t, t]) * se / (p * (1 - p))
    xlogit = design.ciprop("covered", "xlogit", level=0.9).table.iloc[0]
    assert_allclose([xlogit.ci_low, xlogit.ci_high], 1 / (1 + np.exp(-eta)), rtol=1e-12)
    angle = np.arcsin(np.sqrt(p)) + np.array([-t, t]) * se / (2 * np.sqrt(p * (1 - p)))
    asin = design.ciprop("covered", "asin", level=0.9).table.iloc[0]
    assert_allclose([asin.ci_low, asin.ci_high], np.sin(angle) ** 2, rtol=1e-12)


def test_logit_is_the_glm_fit_of_xlogit(design):
    """R's "logit" fits a logistic regression: the same interval as "xlogit" up to the
    glm's convergence."""
    a = design.ciprop("covered", "logit").table.iloc[0]
    b = design.ciprop("covered", "xlogit").table.iloc[0]
    assert_allclose([a.estimate, a.ci_low, a.ci_high], [b.estimate, b.ci_low, b.ci_high], rtol=1e-6)


def test_beta_by_hand(design, df):
    """Korn-Graubard: Clopper-Pearson on the effective sample size, times R's ratio of
    t quantiles on n - 1 and on the design df."""
    p, se = design.mean("covered").estimate[0], design.mean("covered").se[0]
    n_eff = p * (1 - p) / se**2 * (stats.t.ppf(0.025, len(df) - 1) / stats.t.ppf(0.025, design.degf)) ** 2
    want = [stats.beta.ppf(0.025, n_eff * p, n_eff * (1 - p) + 1), stats.beta.ppf(0.975, n_eff * p + 1, n_eff * (1 - p))]
    r = design.ciprop("covered", "beta").table.iloc[0]
    assert_allclose([r.ci_low, r.ci_high], want, rtol=1e-12)


def test_wilson_is_the_classical_one_for_a_simple_random_sample():
    """No clusters, strata or weights: the variance is p(1-p)/(n-1), so the effective
    sample size is n - 1 and the interval is Wilson's with t on n - 1 df."""
    y = np.r_[np.ones(13), np.zeros(37)]
    r = ssc.Design(pd.DataFrame({"y": y})).ciprop("y", "wilson").table.iloc[0]
    n, p, z = len(y) - 1, y.mean(), stats.t.ppf(0.975, len(y) - 1)
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z / (1 + z**2 / n) * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2))
    assert_allclose([r.ci_low, r.ci_high], [centre - half, centre + half], rtol=1e-13)


# Every method against R on each kind of design: tests/test_r_checks.py.
RARE = json.loads((Path(__file__).resolve().parent / "data" / "r_checks" / "expected.json").read_text())["rare"]


@pytest.mark.parametrize("method", [m for m in METHODS if m != "wilson"])
def test_a_rare_event_gives_r_s_interval(method):
    """1 case in 40, a simple random sample: R's limits (the Wald one leaves [0, 1])."""
    y = np.r_[1.0, np.zeros(39)]
    r = ssc.Design(pd.DataFrame({"y": y})).ciprop("y", method).table.iloc[0]
    want = RARE[method]
    assert_allclose([r.estimate, r.se, r.ci_low, r.ci_high],
                    [want["estimate"], want["se"], want["ci_low"], want["ci_high"]], rtol=1e-9)


def test_boolean_column_is_a_proportion(df):
    a = ssc.Design(df, weights="w").ciprop("covered", "beta").table
    b = ssc.Design(df.assign(covered=df["covered"] == 1), weights="w").ciprop("covered", "beta").table
    assert_allclose(a[["estimate", "ci_low", "ci_high"]], b[["estimate", "ci_low", "ci_high"]])


@pytest.mark.parametrize("method", ["likelihood", "beta", "logit"])
def test_domains_are_subsets(design, df, method):
    by = design.ciprop("covered", method, by="g").to_pandas()
    for g, row in by.groupby("g"):
        alone = design.subset(df["g"].to_numpy() == g).ciprop("covered", method).to_pandas()
        assert_allclose(row[["estimate", "ci_low", "ci_high"]], alone[["estimate", "ci_low", "ci_high"]])


def test_missing_values(df):
    df.loc[[0, 5], "covered"] = np.nan
    design = ssc.Design(df, weights="w")
    with pytest.raises(ssc.MissingValueError, match="na_rm=True"):
        design.ciprop("covered")
    res = design.ciprop("covered", na_rm=True)
    assert res.n_removed == 2


def test_bad_input(design, df):
    with pytest.raises(ssc.SurveyError, match="method"):
        design.ciprop("covered", "clopper")
    with pytest.raises(ssc.ColumnError, match="0/1"):
        design.ciprop("g")
    with pytest.raises(ssc.ColumnError, match=r"outside \[0, 1\]"):
        ssc.Design(df.assign(n=df["covered"] * 2)).ciprop("n")
    with pytest.raises(ssc.SurveyError, match="level"):
        design.ciprop("covered", level=95)


def test_result_object(design):
    res = design.ciprop("covered", "likelihood")
    assert {"estimate", "se", "ci_low", "ci_high"} <= set(res.to_pandas().columns)
    assert isinstance(res.to_polars(), pl.DataFrame)
    assert "likelihood" in repr(res) and "<table" in res._repr_html_()


def test_logit_link_clamps_are_r_s():
    """The likelihood profile's means use R's binomial() link, clamped beyond |eta| = 30
    (C logit_linkinv; the core's fit has the same, with mu.eta and the deviance, in
    src/models/family.rs).  R: ``options(digits=17); e <- c(-40, -30.5, -30, -29.5, 0,
    1.5, 29.5, 30, 30.5, 40); binomial()$linkinv(e)``."""
    from sscoverage.estimators.proportions import _linkinv

    eta = np.array([-40, -30.5, -30, -29.5, 0, 1.5, 29.5, 30, 30.5, 40])
    linkinv = [2.2204460492503126e-16, 2.2204460492503126e-16, 9.3576229688393001e-14, 1.5428112031916497e-13,
               0.5, 8.1757447619364365e-01, 9.9999999999984568e-01, 9.9999999999990641e-01,
               9.9999999999999978e-01, 9.9999999999999978e-01]
    # The same double operations as R's C code: the same doubles (R printed 17 digits).
    np.testing.assert_array_equal(_linkinv(eta), linkinv)


def test_likelihood_profile_deviance_is_r_s_binomial_deviance():
    """The profile's deviance at a common mean from the fit's sums equals R's sum of
    ``binomial()$dev.resids``.  R: ``y <- c(0,1,0,1,1,0.25); wt <- c(1,2,3,.5,1.5,2);
    sum(binomial()$dev.resids(y, rep(0.4, 6), wt))`` gives 11.61635786981806."""
    from sscoverage.estimators.proportions import _InterceptFit

    y = np.array([0.0, 1, 0, 1, 1, 0.25])
    wt = np.array([1, 2, 3, 0.5, 1.5, 2])
    inner = (y > 0) & (y < 1)
    entropy = float(np.sum(wt[inner] * (y[inner] * np.log(y[inner]) + (1 - y[inner]) * np.log(1 - y[inner]))))
    fit = _InterceptFit(0.0, 1.0, 1.0, 0.0, 1.0, (float(wt.sum()), float(wt @ y), entropy), 6)
    assert fit.deviance_at(np.log(0.4 / 0.6)) == pytest.approx(11.61635786981806, rel=1e-14)
