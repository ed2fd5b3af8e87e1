"""Contrasts of means and totals: identities with the plain estimators, the covariance
between domains, errors, and every number of the shared reference cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import sscoverage as ssc

@pytest.fixture
def df() -> pd.DataFrame:
    rng = np.random.default_rng(2)
    n = 200
    return pd.DataFrame(
        {
            "a": rng.normal(10, 2, n),
            "b": rng.normal(8, 3, n),
            "g": rng.choice(["x", "y", "z"], n),
            "psu": np.repeat(np.arange(40), 5),
            "stratum": np.repeat(["s1", "s2", "s3", "s4"], 50),
            "w": rng.uniform(1, 4, n),
        }
    )


@pytest.fixture
def design(df) -> ssc.Design:
    return ssc.Design(df, ids="psu", strata="stratum", weights="w")


def test_difference_of_means_is_the_mean_of_the_difference(design, df):
    """a - b is linear in the row values: the same influence values, the same variance."""
    res = design.contrast(["a", "b"], [1, -1]).table.iloc[0]
    derived = ssc.Design(df.assign(d=df["a"] - df["b"]), ids="psu", strata="stratum", weights="w").mean("d")
    assert res.estimate == pytest.approx(derived.estimate[0], rel=1e-12)
    assert res.se == pytest.approx(derived.se[0], rel=1e-10)


def test_domain_totals_add_up_to_the_total(design):
    """The sum over every domain of the domain totals is the total, with its se: the
    covariances between domains make up the difference."""
    res = design.contrast("a", [1, 1, 1], "total", by="g").table.iloc[0]
    total = design.total("a")
    assert res.estimate == pytest.approx(total.estimate[0], rel=1e-12)
    assert res.se == pytest.approx(total.se[0], rel=1e-10)


def test_one_weight_is_the_estimate_itself(design):
    by = design.mean("a", by="g")
    for i in range(3):
        weights = np.eye(3)[i]
        res = design.contrast("a", weights, by="g").table.iloc[0]
        assert res.estimate == pytest.approx(by.estimate[i], rel=1e-12)
        assert res.se == pytest.approx(by.se[i], rel=1e-10)


def test_strata_as_domains_are_independent(design):
    """Domains that are whole strata share no PSU: the variance of a difference is the
    sum of the variances."""
    by = design.mean("a", by="stratum")
    res = design.contrast("a", [1, -1, 0, 0], by="stratum").table.iloc[0]
    assert res.se == pytest.approx(np.hypot(by.se[0], by.se[1]), rel=1e-10)


def test_several_contrasts_and_names(design):
    res = design.contrast("a", {"x-y": [1, -1, 0], "y-z": [0, 1, -1]}, by="g")
    assert res.table["variable"].tolist() == ["x-y", "y-z"]
    assert res.vcov[0].shape == (2, 2)
    twice = design.contrast("a", [2, -2, 0], by="g").table.iloc[0]
    assert twice.estimate == pytest.approx(2 * res.estimate[0])
    assert twice.se == pytest.approx(2 * res.se[0])


def test_factor_means_are_proportions(design, df):
    res = design.contrast("g", [1, -1, 0]).table.iloc[0]
    props = design.mean("g")
    assert res.estimate == pytest.approx(props.estimate[0] - props.estimate[1], rel=1e-12)


def test_bad_input(design):
    with pytest.raises(ssc.ShapeError, match="3 weights"):
        design.contrast("a", [1, -1], by="g")
    with pytest.raises(ssc.SurveyError, match="statistic"):
        design.contrast("a", [1], "median")


def test_missing_values(df):
    df.loc[[1, 2], "b"] = np.nan
    design = ssc.Design(df, weights="w")
    with pytest.raises(ssc.MissingValueError, match="na_rm=True"):
        design.contrast(["a", "b"], [1, -1])
    assert design.contrast(["a", "b"], [1, -1], na_rm=True).n_removed == 2


def test_a_matrix_of_contrasts_is_named_in_order(design):
    res = design.contrast(["a", "b"], [[1, -1], [1, 1]])
    assert res.table["variable"].tolist() == ["contrast1", "contrast2"]
    assert design.contrast(["a", "b"], [1, -1]).table["variable"].tolist() == ["contrast"]
    means = design.mean(["a", "b"]).estimate
    assert res.estimate == pytest.approx([means[0] - means[1], means[0] + means[1]], rel=1e-12)


def test_rows_missing_in_any_variable_leave(df):
    """The rows left out are those missing in any of the variables, numeric or factor."""
    df["g"] = df["g"].astype(object)
    df.loc[[1, 2], "a"] = np.nan
    df.loc[[3], "b"] = np.nan
    df.loc[[4], "g"] = None
    design = ssc.Design(df, weights="w")
    res = design.contrast(["a", "b", "g"], [1, -1, 0, 0, 0], na_rm=True)
    assert res.n_removed == 4
    kept = df.drop(index=[1, 2, 3, 4])
    want = np.average(kept["a"] - kept["b"], weights=kept["w"])
    assert res.estimate[0] == pytest.approx(want, rel=1e-12)
