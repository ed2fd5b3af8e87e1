"""The threshold GLM (design.threshold_glm): simulations with a known threshold and with
none, on a stratified cluster design; and its errors.

All data are simulated with fixed seeds; the whole file runs in about 15 s."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import sscoverage as ssc

TRUE_THRESHOLD = 5.0  # income in thousands of yuan a month


def simulate(seed: int, kind: str = "slope", effect: float = 1.0, n_strata: int = 10, psus: int = 8,
             per_psu: int = 12) -> pd.DataFrame:
    """A stratified cluster sample (10 strata x 8 PSUs x 12 people) with unequal PSU
    weights and a PSU random effect; income log-normal around 6 thousand.  Coverage
    (y = 1) falls away below 5 thousand: its logit slope in income is steeper there by
    `effect` (kind="slope"), or drops by `effect` there (kind="level"); effect=0 is a
    plain logistic model in income and age, with no threshold."""
    rng = np.random.default_rng(seed)
    n_psu = n_strata * psus
    n = n_psu * per_psu
    psu = np.repeat(np.arange(n_psu), per_psu)
    income = np.exp(rng.normal(np.log(6.0), 0.5, n))
    age = rng.uniform(20, 60, n)
    u = rng.normal(0, 0.3, n_psu)[psu]
    if kind == "slope":
        eta = 1.5 - 0.1 * (income - TRUE_THRESHOLD) - effect * np.minimum(income - TRUE_THRESHOLD, 0) \
            + 0.01 * (age - 40) + u
    else:
        eta = 1.0 + 0.05 * income - effect * (income < TRUE_THRESHOLD) + u
    return pd.DataFrame({
        "stratum": psu // psus,
        "psu": psu,
        "w": np.repeat(rng.uniform(1, 4, n_psu), per_psu),
        "covered": (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(float),
        "income": income,
        "age": age,
    })


def design(df: pd.DataFrame) -> ssc.Design:
    return ssc.Design(df, ids="psu", strata="stratum", weights="w")


# ----------------------------------------------------------------------------- known threshold
def test_a_kink_is_recovered_within_its_interval():
    """Six data sets with a kink at 5: a 95 % interval may miss now and then, so the
    truth must be inside at least 5 of the 6 (P(2+ misses) = 3.3 % at exact coverage)."""
    covered = []
    for seed in range(11, 17):
        res = design(simulate(seed)).threshold_glm("covered ~ income + age", "income", kind="slope",
                                                   n_draws=99)
        assert res.ci_method == "lr" and res.ci_low <= res.threshold <= res.ci_high
        assert res.p_value < 0.05
        covered.append(res.ci_low <= TRUE_THRESHOLD <= res.ci_high)
    assert sum(covered) >= 5, covered
    # The last fit in detail.  The fitted model at the threshold is a design-based GLM
    # with the hinge term.
    assert isinstance(res.model, ssc.GLMResult)
    assert res.term == f"pmax(income - {res.threshold!r}, 0)" and res.term in res.model.terms
    slopes = res.slopes()
    assert slopes["slope"][0] < slopes["slope"][1]  # steeper (more negative) below
    # The profile: the least deviance at the threshold, LR 0 there.
    prof = res.profile
    assert prof["threshold"][prof["deviance"].idxmin()] == res.threshold
    assert prof.loc[prof["deviance"].idxmin(), "lr"] == 0.0
    assert (prof["n_below"] >= 10).all() and (prof["n_above"] >= 10).all()
    assert "threshold" in repr(res) and res.summary().shape == (1, 8)
    # The model at the threshold predicts like any GLM.
    assert np.isfinite(res.model.marginal_effects("income").se).all()


def test_a_step_is_recovered_within_its_interval():
    covered = []
    for seed in range(21, 25):
        res = design(simulate(seed, kind="level", effect=1.2)).threshold_glm(
            "covered ~ income + age", "income", kind="level", n_draws=99)
        assert res.p_value < 0.05
        covered.append(res.ci_low <= TRUE_THRESHOLD <= res.ci_high)
    assert sum(covered) >= 3, covered  # P(2+ misses of 4) = 1.4 % at exact coverage
    assert res.term == f"I(income < {res.threshold!r})TRUE"
    # Hansen's (2000) critical value for a step: -2 log(1 - sqrt(0.95)).
    assert res.critical_value == pytest.approx(7.352, abs=1e-3)
    assert set(res.confidence_set) <= set(res.profile["threshold"])


def test_replicate_design_interval_from_bootstrap_replicates():
    d = design(simulate(13)).as_replicates("bootstrap", replicates=40, seed=3)
    res = d.threshold_glm("covered ~ income + age", "income", grid=12)
    assert res.ci_method == "replicate" and len(res.replicate_thresholds) == 40
    assert res.ci_low <= TRUE_THRESHOLD <= res.ci_high
    assert res.p_value < 0.05


# ----------------------------------------------------------------------------- no threshold
def test_no_threshold_rejects_at_about_the_nominal_rate():
    """40 data sets without a threshold (20 of each kind), tests at 5 %.  Under the null
    the rejections are Binomial(40, 0.05): mean 2, P(>= 6) = 1.4 %; a test twice too
    liberal would reject 6 or more with probability 37 %.  The p-values should also
    average about 0.5 (SE 0.046 for 40 uniform values)."""
    p = []
    for rep in range(40):
        kind = "slope" if rep % 2 == 0 else "level"
        res = design(simulate(100 + rep, kind=kind, effect=0.0)).threshold_glm(
            "covered ~ income + age", "income", kind=kind, n_draws=99)
        p.append(res.p_value)
    p = np.asarray(p)
    assert (p < 0.05).sum() <= 5
    assert p.mean() > 0.5 - 3 * 0.046


# ----------------------------------------------------------------------------- errors
def test_grid_outside_the_data_is_refused():
    d = design(simulate(14))
    with pytest.raises(ssc.ThresholdError, match=r"grid value\(s\) 100 are outside the range of 'income'"):
        d.threshold_glm("covered ~ income + age", "income", grid=[4.0, 5.0, 100.0])


def test_too_few_rows_on_one_side_is_refused():
    df = simulate(14)
    third_lowest = np.sort(df["income"].to_numpy())[3]
    with pytest.raises(ssc.ThresholdError, match="has 3 rows below .* min_side=10"):
        design(df).threshold_glm("covered ~ income + age", "income", grid=[third_lowest, 5.0])


def test_threshold_variable_must_be_a_numeric_column():
    df = simulate(14).assign(region=lambda d: np.where(d["income"] > 6, "east", "west"))
    with pytest.raises(ssc.ColumnError, match="'incme' is not in the data. Did you mean 'income'"):
        design(df).threshold_glm("covered ~ income + age", "incme")
    with pytest.raises(ssc.ColumnError, match="must be numeric"):
        design(df).threshold_glm("covered ~ income + age", "region", kind="level")


def test_slope_kind_needs_the_variable_in_the_formula():
    with pytest.raises(ssc.ThresholdError, match="needs 'income' as a term"):
        design(simulate(14)).threshold_glm("covered ~ age", "income", kind="slope")
    # A step needs no slope.
    res = design(simulate(14, kind="level")).threshold_glm("covered ~ age", "income", kind="level",
                                                           n_draws=19, grid=5)
    assert len(res.profile) == 5


def test_missing_threshold_values_leave_the_design_as_a_domain():
    df = simulate(14, kind="level")
    df.loc[:9, "income"] = np.nan
    res = design(df).threshold_glm("covered ~ age", "income", kind="level", grid=5, n_draws=19)
    assert res.model.n == len(df) - 10
    assert "10 rows with a missing income left out" in res.notes
