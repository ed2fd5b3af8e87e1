"""Design-based GLMs (design.glm, R's svyglm) against identities an outsider can check:
the intercept-only model is the mean, a one-dummy model the difference of domain means,
weights' scale does not matter, missing values make a domain; and the errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pytest
from numpy.testing import assert_allclose
from scipy import stats

import sscoverage as ssc

import _oracle


@pytest.fixture
def df() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    n_strata, psus, per_psu = 4, 5, 8
    n = n_strata * psus * per_psu
    x = rng.normal(0, 1, n)
    g = rng.choice(["north", "east", "west"], n)
    eta = -0.3 + 0.8 * x + np.where(g == "west", 0.5, 0.0)
    return pd.DataFrame(
        {
            "stratum": np.repeat(np.arange(n_strata), psus * per_psu),
            "psu": np.repeat(np.arange(n_strata * psus), per_psu),
            "w": np.repeat(rng.uniform(1, 5, n_strata * psus), per_psu) * rng.uniform(0.8, 1.2, n),
            "y": 10 + 2 * x + rng.normal(0, 1, n),
            "x": x,
            "g": g,
            "covered": (rng.uniform(size=n) < 1 / (1 + np.exp(-eta))).astype(float),
            "visits": rng.poisson(np.exp(0.2 + 0.3 * x)).astype(float),
        }
    )


def design(df: pd.DataFrame | pl.DataFrame) -> ssc.Design:
    return ssc.Design(df, ids="psu", strata="stratum", weights="w")


def test_intercept_only_gaussian_is_the_mean(df):
    fit = design(df).glm("y ~ 1")
    mean = design(df).mean("y")
    assert fit.terms == ["(Intercept)"]
    assert_allclose(fit.estimate, mean.estimate, rtol=1e-12)
    assert_allclose(fit.se, mean.se, rtol=1e-10)
    # The dispersion is the design-weighted variance of y, with the n/(n-1) factor.
    w, y = df["w"].to_numpy(), df["y"].to_numpy()
    ybar = (w * y).sum() / w.sum()
    n = len(y)
    assert_allclose(fit.dispersion, (w * (y - ybar) ** 2).sum() / w.sum() * n / (n - 1), rtol=1e-12)
    # df: 20 PSUs - 4 strata + 1 - 1 coefficient.
    assert fit.df_residual == 16


def test_one_dummy_is_the_difference_of_domain_means(df):
    df = df.assign(b=(df["g"] == "west").astype(float))
    fit = design(df).glm("y ~ b")
    w, y, b = df["w"].to_numpy(), df["y"].to_numpy(), df["b"].to_numpy()
    strata, psu = df["stratum"].to_numpy(), df["psu"].to_numpy()
    m0, se0 = _oracle.domain_mean(y, w, strata, psu, b == 0)
    m1, _ = _oracle.domain_mean(y, w, strata, psu, b == 1)
    # Influence of the difference: each domain mean's, with opposite signs.
    z = [w * (b == d) * (y - m) / (w * (b == d)).sum() for d, m in ((0, m0), (1, m1))]
    se_diff = np.sqrt(_oracle.stratified_variance(z[1] - z[0], strata, psu))
    assert_allclose(fit.estimate, [m0, m1 - m0], rtol=1e-12)
    assert_allclose(fit.se, [se0, se_diff], rtol=1e-10)


def test_scaling_the_weights_changes_nothing(df):
    fit = design(df).glm("covered ~ x + g", family="quasibinomial")
    scaled = design(df.assign(w=df["w"] * 37.5)).glm("covered ~ x + g", family="quasibinomial")
    assert_allclose(scaled.estimate, fit.estimate, rtol=1e-10)
    assert_allclose(scaled.se, fit.se, rtol=1e-10)
    assert_allclose(scaled.dispersion, fit.dispersion, rtol=1e-10)


def test_logistic_score_equations_hold_at_the_estimate(df):
    # The weighted score sum_i w_i x_i (y_i - p_i) is zero at the solution.
    fit = design(df).glm("covered ~ x", family="binomial")
    X = np.column_stack([np.ones(len(df)), df["x"]])
    p = 1 / (1 + np.exp(-X @ fit.estimate))
    score = X.T @ (df["w"].to_numpy() * (df["covered"].to_numpy() - p))
    assert np.abs(score).max() < 1e-6 * df["w"].sum()


def test_missing_values_leave_the_design_as_a_domain(df):
    df = df.copy()
    df.loc[[3, 40, 41, 100], "x"] = np.nan
    fit = design(df).glm("visits ~ x", family="quasipoisson")
    complete = design(df).subset(df["x"].notna().to_numpy()).glm("visits ~ x", family="quasipoisson")
    assert fit.n_removed == 4 and fit.n == len(df) - 4
    assert_allclose(fit.estimate, complete.estimate, rtol=1e-12)
    assert_allclose(fit.se, complete.se, rtol=1e-12)
    assert fit.df_residual == complete.df_residual


def test_subset_design_uses_the_domain_only(df):
    d = design(df)
    fit = d.subset(df["g"] != "east").glm("y ~ x")
    # Influence values are zero outside the domain: the same as fitting on zero weights.
    inside = (df["g"] != "east").to_numpy()
    direct = design(df.assign(w=np.where(inside, df["w"], 0.0))).glm("y ~ x")
    assert_allclose(fit.estimate, direct.estimate, rtol=1e-12)
    assert_allclose(fit.se, direct.se, rtol=1e-10)


def test_terms_follow_r(df):
    df = df.assign(flag=df["x"] > 0, api_stu=df["visits"])
    df["g"] = pd.Categorical(df["g"], categories=["west", "east", "north"])
    fit = design(df.rename(columns={"api_stu": "api.stu"})).glm("y ~ g*x + flag + api.stu")
    assert fit.terms == ["(Intercept)", "geast", "gnorth", "x", "flagTRUE", "api.stu", "geast:x", "gnorth:x"]
    # Without an intercept every level of the first factor has its own column; a text
    # column is a factor with sorted levels; `levels` picks the reference.
    df["h"] = df["g"].astype(str)
    assert design(df).glm("y ~ h - 1").terms == ["heast", "hnorth", "hwest"]
    assert design(df).glm("y ~ h", levels={"h": ["west", "north", "east"]}).terms == [
        "(Intercept)", "hnorth", "heast"]


def test_factor_outcome_is_success_for_any_level_but_the_first(df):
    numeric = design(df).glm("covered ~ x", family="quasibinomial")
    labelled = df.assign(covered=np.where(df["covered"] == 1, "yes", "no"))
    as_factor = design(labelled).glm("covered ~ x", family="quasibinomial")
    assert_allclose(as_factor.estimate, numeric.estimate, rtol=1e-12)


def test_polars_input_gives_the_same_fit(df):
    a = design(df).glm("covered ~ x + g", family="quasibinomial")
    b = design(pl.from_pandas(df)).glm("covered ~ x + g", family="quasibinomial")
    assert a.terms == b.terms
    assert_allclose(b.estimate, a.estimate, rtol=1e-14)
    assert_allclose(b.se, a.se, rtol=1e-14)


def test_result_tables(df):
    fit = design(df).glm("covered ~ x", family="quasibinomial", link="probit")
    table = fit.summary()
    assert list(table.columns) == ["term", "estimate", "se", "t", "p_value", "ci_low", "ci_high"]
    q = stats.t.ppf(0.95, fit.df_residual)
    ci = fit.conf_int(0.90)
    assert_allclose(ci["ci_high"], fit.estimate + q * fit.se, rtol=1e-12)
    assert_allclose(table["p_value"], 2 * stats.t.sf(np.abs(fit.estimate / fit.se), fit.df_residual))
    assert fit.to_polars().shape == (2, 7)
    assert fit.link == "probit" and fit.vcov.shape == (2, 2)
    assert "(Intercept)" in repr(fit) and "probit" in repr(fit) and "<table" in fit._repr_html_()


def test_step_halving_warns_and_follows_r():
    # Poisson with the identity link: one IRLS step would make a fitted mean negative.
    data = pd.DataFrame({
        "x": [0.53, 1.16, 3.19, 0.82, 0.97, 0.15, 1.37, 0.01, 4.88, 3.63, 1.83, 3.89],
        "y": [5.0, 2, 1, 1, 4, 3, 0, 0, 0, 0, 1, 1],
    })
    with pytest.warns(ssc.ConvergenceWarning, match="halved a step"):
        fit = ssc.Design(data).glm("y ~ x", family="poisson", link="identity")
    # R: coef(glm(y ~ x, family = poisson(link = "identity"))), 9 iterations.
    assert_allclose(fit.estimate, [2.431220591866627, -0.49820094081143002], rtol=1e-10)
    assert fit.iterations == 9


def test_missing_column_is_named(df):
    with pytest.raises(ssc.ColumnError, match=r"'xx' in the formula.*Did you mean 'x'"):
        design(df).glm("y ~ xx")


def test_binomial_outcome_outside_0_1(df):
    with pytest.raises(ssc.EstimationError, match="between 0 and 1"):
        design(df).glm("visits ~ x", family="binomial")


def test_separation_is_refused(df):
    # Complete: R's IRLS runs out of iterations, or, given enough, "converges" to huge
    # coefficients as the deviance goes to 0.
    df = df.assign(sep=(df["x"] > 0).astype(float))
    with pytest.raises(ssc.ConvergenceError, match="did not converge"):
        design(df).glm("sep ~ x", family="quasibinomial")
    with pytest.raises(ssc.ConvergenceError, match="separate"):
        design(df).glm("sep ~ x", family="quasibinomial", maxit=100)
    # Quasi-complete: one level of g has no successes at all.
    df = df.assign(q=np.where(df["g"] == "east", 0.0, df["covered"]))
    with pytest.raises(ssc.ConvergenceError, match="separate"):
        design(df).glm("q ~ x + g", family="binomial")


def test_no_convergence_is_refused(df):
    with pytest.raises(ssc.ConvergenceError, match="did not converge in 2 iterations"):
        design(df).glm("covered ~ x", family="quasibinomial", maxit=2)


def test_constant_or_duplicated_predictor_is_named(df):
    with pytest.raises(ssc.EstimationError, match=r"term\(s\) one are aliased"):
        design(df.assign(one=1.0)).glm("y ~ x + one")
    with pytest.raises(ssc.EstimationError, match=r"term\(s\) x2 are aliased"):
        design(df.assign(x2=2 * df["x"])).glm("y ~ x + x2")


def test_bad_family_or_link(df):
    with pytest.raises(ValueError, match="family='logistic'"):
        design(df).glm("covered ~ x", family="logistic")
    with pytest.raises(ssc.EstimationError, match="not available"):
        design(df).glm("y ~ x", family="gaussian", link="logit")
