"""Design-based tests of association: hand computations, independence by construction,
errors, and every number of the shared reference cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pytest
from scipy import stats

import sscoverage as ssc

STATISTICS = ("F", "Chisq", "Wald", "adjWald", "saddlepoint")


@pytest.fixture
def df() -> pd.DataFrame:
    rng = np.random.default_rng(11)
    n = 300
    a = rng.choice(["lo", "mid", "hi"], n)
    # b depends on a: "yes" is more likely where a is "hi".
    b = np.where(rng.uniform(size=n) < np.where(a == "hi", 0.7, 0.3), "yes", "no")
    return pd.DataFrame(
        {"a": a, "b": b, "psu": np.repeat(np.arange(30), 10), "stratum": np.repeat(["s", "t", "u"], 100),
         "w": rng.uniform(1, 3, n)}
    )


def test_pearson_statistic_is_the_classical_one_without_weights(df):
    """Equal weights: the table scaled to n rows is the count table."""
    design = ssc.Design(df, ids="psu", strata="stratum")
    counts = pd.crosstab(df["a"], df["b"]).to_numpy()
    classical = stats.chi2_contingency(counts, correction=False)[0]
    assert design.chisq("a", "b", "Chisq").statistic == pytest.approx(classical, rel=1e-12)
    assert design.chisq("a", "b", "saddlepoint").statistic == pytest.approx(classical, rel=1e-12)


def test_rao_scott_f_is_pearson_over_the_mean_design_effect(df):
    """The second-order F has the first-order statistic X^2 / (ndf-weighted mean
    eigenvalue) scaled: both use trace(Delta), so F * ndf_chisq = X^2 / mean(delta)."""
    design = ssc.Design(df, ids="psu", strata="stratum", weights="w")
    chisq, f = design.chisq("a", "b", "Chisq"), design.chisq("a", "b", "F")
    # p(Chisq) = P(chi2_k > X^2 / mean(delta)) with mean(delta) = trace / k.
    mean_delta = chisq.statistic / stats.chi2.isf(chisq.p_value, chisq.ndf)
    assert f.statistic == pytest.approx(chisq.statistic / (mean_delta * chisq.ndf), rel=1e-8)
    assert f.ddf == pytest.approx(f.ndf * design.degf)


def test_independent_by_construction():
    """Every combination of the two variables equally often, equal weights: the table
    is exactly the product of its margins, so every statistic is 0 and p = 1."""
    cells = [(a, b) for a in ("p", "q", "r") for b in ("u", "v")]
    rows = np.random.default_rng(5).permutation(np.array(cells * 20, dtype=object))
    df = pd.DataFrame(list(rows), columns=["a", "b"]).assign(psu=np.arange(len(rows)) // 4)
    design = ssc.Design(df, ids="psu")
    for statistic in ("F", "Chisq", "Wald", "adjWald"):
        res = design.chisq("a", "b", statistic)
        assert res.statistic == pytest.approx(0.0, abs=1e-20)
        assert res.p_value == pytest.approx(1.0)


def test_association_is_detected(df):
    design = ssc.Design(df, ids="psu", strata="stratum", weights="w")
    for statistic in STATISTICS:
        assert design.chisq("a", "b", statistic).p_value < 1e-4, statistic


def test_wald_degrees_of_freedom(df):
    design = ssc.Design(df, ids="psu", strata="stratum", weights="w")
    wald, adj = design.chisq("a", "b", "Wald"), design.chisq("a", "b", "adjWald")
    assert (wald.ndf, wald.ddf) == (2, design.degf)
    assert (adj.ndf, adj.ddf) == (2, design.degf - 2 + 1)
    # adjWald rescales the same quadratic form: F_adj = F * ndf * ddf_adj / (ndf * nu).
    assert adj.statistic == pytest.approx(wald.statistic * adj.ddf / design.degf, rel=1e-12)


def test_subset_and_missing_values(df):
    df.loc[[0, 1, 2], "b"] = None
    design = ssc.Design(df, ids="psu", strata="stratum", weights="w")
    res = design.chisq("a", "b")
    assert any("3 rows" in n for n in res.notes)
    with pytest.raises(ssc.MissingValueError, match="has 3 missing values.*na_rm=True"):
        design.chisq("a", "b", na_rm=False)
    # Missing values outside the rows used do not stop na_rm=False.
    complete = design.subset(~df["b"].isna().to_numpy())
    assert complete.chisq("a", "b", na_rm=False).statistic == pytest.approx(complete.chisq("a", "b").statistic)
    sub = design.subset(df["stratum"].to_numpy() != "u").chisq("a", "b")
    assert sub.table.to_numpy().sum() == pytest.approx((df["stratum"] != "u").sum())


def test_bad_input(df):
    design = ssc.Design(df, weights="w")
    with pytest.raises(ssc.SurveyError, match="two or more"):
        ssc.Design(df.assign(one="x")).chisq("a", "one")
    with pytest.raises(ssc.SurveyError, match="statistic"):
        design.chisq("a", "b", "G2")
    with pytest.raises(ssc.SurveyError, match="saddlepoint"):
        design.chisq("a", "b", "lincom")
    with pytest.raises(ssc.ColumnError):
        design.chisq("a", "nope")


def test_singular_covariance_is_an_estimation_error():
    """Every PSU holds the same cells: the interaction contrasts have no variance."""
    cells = [(a, b) for a in ("p", "q") for b in ("u", "v")]
    df = pd.DataFrame(cells * 10, columns=["a", "b"]).assign(psu=np.arange(40) // 4)
    with pytest.raises(ssc.EstimationError, match="singular"):
        ssc.Design(df, ids="psu").chisq("a", "b", "Wald")


def test_result_object(df):
    res = ssc.Design(df, weights="w").chisq("a", "b", "Chisq")
    assert res.ddf is None and res.ndf == 2
    assert list(res.to_pandas().columns) == ["statistic", "ndf", "ddf", "p_value", "method"]
    assert isinstance(res.to_polars(), pl.DataFrame)
    assert "p-value" in repr(res) and "<table" in res._repr_html_()
    assert res.table.shape == (3, 2)
