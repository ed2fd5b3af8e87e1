"""Quantiles: R's rules by hand and against numpy's, Woodruff intervals by hand,
domains, errors, and every number of the shared reference cases.  Every rule and
interval type on each kind of design against R: tests/test_r_checks.py."""

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
from _threads import outputs_by_threads

@pytest.fixture
def srs() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    return pd.DataFrame(
        {
            "x": rng.permutation(np.arange(1.0, 41.0)),
            "g": np.tile(["a", "b"], 20),
            "w": rng.uniform(1, 4, 40),
            "psu": np.repeat(np.arange(10), 4),
            "stratum": np.repeat(["s1", "s2"], 20),
        }
    )


def test_rules_by_hand():
    """x = 1..10, equal weights: the median is where the cumulative weight reaches 5."""
    design = ssc.Design(pd.DataFrame({"x": np.arange(1.0, 11.0)}))
    est = lambda rule, p: design.quantile("x", [p], qrule=rule).estimate[0]  # noqa: E731
    assert est("math", 0.5) == 5  # the weight up to 5 is exactly half: the lower value
    assert est("school", 0.5) == 5.5  # the average of the two values either side
    assert est("math", 0.55) == 6
    assert est("hf7", 0.5) == 5.5


@pytest.mark.parametrize(
    "rule,method",
    [("math", "inverted_cdf"), ("school", "averaged_inverted_cdf"), ("hf4", "interpolated_inverted_cdf"),
     ("hf5", "hazen"), ("hf6", "weibull"), ("hf7", "linear"), ("hf8", "median_unbiased"),
     ("hf9", "normal_unbiased")],
)
def test_equal_weights_give_the_hyndman_fan_types(srs, rule, method):
    """With equal weights each R rule is the classical sample quantile of its type."""
    design = ssc.Design(srs)
    probs = [0.1, 0.33, 0.5, 0.77]
    got = design.quantile("x", probs, qrule=rule).estimate
    assert_allclose(got, np.quantile(srs["x"], probs, method=method), rtol=1e-12)


EQUAL = json.loads((Path(__file__).resolve().parent / "data" / "r_checks" / "expected.json").read_text())[
    "equal_weights"]


@pytest.mark.parametrize("rule", sorted(EQUAL["quantiles"]))
def test_every_rule_out_to_the_tails_is_r_s(rule):
    """1..40 with equal weights, p from 0.01 to 0.99: R's numbers (tests/data/r_checks).
    survey's hf3 is not R's quantile(type=3): it takes the lower value only at an even
    position, which is where an off-by-one shows."""
    design = ssc.Design(pd.DataFrame({"x": np.arange(1.0, 41.0), "w": 1.0}), weights="w")
    got = design.quantile("x", EQUAL["probs"], qrule=rule).estimate
    assert_allclose(got, EQUAL["quantiles"][rule], rtol=1e-13)


def test_quantiles_do_not_depend_on_the_scale_of_the_weights(srs):
    a = ssc.Design(srs, weights="w").quantile("x", [0.2, 0.5, 0.9], qrule="hf7")
    srs = srs.assign(w=srs["w"] * 1000)
    b = ssc.Design(srs, weights="w").quantile("x", [0.2, 0.5, 0.9], qrule="hf7")
    assert_allclose(a.estimate, b.estimate, rtol=1e-12)


def test_woodruff_interval_by_hand(srs):
    """Simple random sample, no fpc: the proportion below the median has variance
    p(1-p)/(n-1); its t interval, read back through the rule, is the interval."""
    design = ssc.Design(srs)
    res = design.quantile("x", [0.5], level=0.9).table.iloc[0]
    x = srs["x"].to_numpy()
    n = len(x)
    p = np.mean(x <= res.estimate)
    t = stats.t.ppf(0.95, n - 1)
    half = t * np.sqrt(p * (1 - p) / (n - 1))
    by_hand = [np.quantile(x, q, method="inverted_cdf") for q in (p - half, p + half)]
    assert [res.ci_low, res.ci_high] == by_hand
    assert res.se == pytest.approx((res.ci_high - res.ci_low) / (2 * t), rel=1e-14)
    assert res.df == n - 1


def test_domains_are_subsets(srs):
    design = ssc.Design(srs, ids="psu", strata="stratum", weights="w")
    by = design.quantile("x", [0.25, 0.75], by="g", interval_type="beta").to_pandas()
    for g, rows in by.groupby("g"):
        alone = design.subset(srs["g"].to_numpy() == g).quantile("x", [0.25, 0.75], interval_type="beta")
        assert_allclose(rows[["estimate", "se", "ci_low", "ci_high"]].to_numpy(),
                        alone.to_pandas()[["estimate", "se", "ci_low", "ci_high"]].to_numpy())
        # A domain's degrees of freedom count its own PSUs, as R's degf of a subset.
        assert rows["df"].iloc[0] == alone.df


def test_undefined_limit_is_reported_not_silent():
    """A proportion interval reaching below 0 has no quantile: NaN, as R, with a note."""
    design = ssc.Design(pd.DataFrame({"x": np.arange(1.0, 11.0)}))
    res = design.quantile("x", [0.05])
    assert np.isnan(res.table.ci_low.iloc[0])
    assert any("undefined" in note for note in res.notes)
    assert "undefined" in repr(res)


def test_missing_values(srs):
    srs.loc[[3, 8], "x"] = np.nan
    design = ssc.Design(srs)
    with pytest.raises(ssc.MissingValueError, match="na_rm=True"):
        design.quantile("x", [0.5])
    res = design.quantile("x", [0.5], na_rm=True)
    assert res.n_removed == 2 and res.table.n.iloc[0] == 38


def test_bad_input(srs):
    design = ssc.Design(srs)
    for bad in ([0.0], [1.0], [1.5], [-0.1], []):
        with pytest.raises(ssc.SurveyError, match="between 0 and 1"):
            design.quantile("x", bad)
    with pytest.raises(ssc.SurveyError, match="qrule"):
        design.quantile("x", [0.5], qrule="hf10")
    with pytest.raises(ssc.SurveyError, match="interval_type"):
        design.quantile("x", [0.5], interval_type="wald")
    with pytest.raises(ssc.ColumnError):
        design.quantile("g", [0.5])


def test_score_interval_that_cannot_be_solved_says_so(srs):
    """R's uniroot stops when the score test never crosses the critical value (R fails
    on this very domain and quantile too)."""
    design = ssc.Design(srs, ids="psu", strata="stratum", weights="w").subset(srs["g"].to_numpy() == "b")
    with pytest.raises(ssc.EstimationError, match="score interval.*interval_type='mean'"):
        design.quantile("x", [0.25], interval_type="score")


def test_result_object(srs):
    res = ssc.Design(srs, weights="w").quantile(["x"], [0.25, 0.5])
    df = res.to_pandas()
    assert list(df[["quantile", "estimate", "se", "ci_low", "ci_high"]].columns) == [
        "quantile", "estimate", "se", "ci_low", "ci_high"]
    assert isinstance(res.to_polars(), pl.DataFrame)
    assert "quantile" in repr(res) and "<table" in res._repr_html_()
    assert res.labels == ["x.0.25", "x.0.5"]
    # R reports no covariance between quantiles: NaN off the diagonal.
    assert np.isnan(res.vcov[0][0, 1]) and res.vcov[0][0, 0] == pytest.approx(res.se[0] ** 2)


def _math_rule(x: np.ndarray, w: np.ndarray, p: float) -> float:
    """R's qrule_math written out with numpy (exact for integer weights): the first value
    whose cumulative weight reaches p * sum(w)."""
    order = np.argsort(x, kind="stable")
    cumw = np.cumsum(w[order])
    return float(x[order][min(np.searchsorted(cumw, p * w.sum()), len(x) - 1)])


def test_a_rule_given_as_a_function(srs):
    """R's svyquantile takes a function as qrule; ours runs it domain by domain (and
    replicate by replicate) in Python, and gives the core's numbers for the same rule."""
    srs = srs.assign(w=np.floor(srs["w"]) + 1)
    design = ssc.Design(srs, ids="psu", strata="stratum", weights="w")
    for d, interval in ((design, "beta"), (design.as_replicates("JKn"), "quantile")):
        ours = d.quantile("x", [0.3, 0.5, 0.8], by="g", qrule="math", interval_type=interval).table
        theirs = d.quantile("x", [0.3, 0.5, 0.8], by="g", qrule=_math_rule, interval_type=interval,
                            progress=False).table
        cols = ["estimate", "ci_low", "ci_high", "se"]
        assert_allclose(theirs[cols].to_numpy(), ours[cols].to_numpy(), rtol=1e-13)


def test_undefined_quantile_is_an_error_not_nan():
    """R's hf7 needs two values (cumw[n - 1]); a domain with one row says so."""
    df = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "g": ["a", "a", "a", "b"]})
    with pytest.raises(ssc.EstimationError, match="undefined.*two rows"):
        ssc.Design(df).quantile("x", [0.5], by="g", qrule="hf7")


_THREADS_SCRIPT = """
import numpy as np, pandas as pd, sscoverage as ssc
rng = np.random.default_rng(5)
n = 300_000
df = pd.DataFrame({"x": np.round(rng.lognormal(3, 1, n), 2), "w": rng.uniform(1, 40, n),
                   "psu": rng.integers(0, 40, n), "g": rng.integers(0, 5, n)})
df["h"] = df["psu"] % 4
design = ssc.Design(df, ids="psu", strata="h", weights="w")
out = []
for d, interval in ((design, "mean"), (design, "beta"), (design.as_replicates("JKn"), "quantile")):
    for rule in ("math", "hf7"):
        t = d.quantile("x", [0.1, 0.5, 0.75], by="g", qrule=rule, interval_type=interval).table
        out += [v.hex() for v in t[["estimate", "ci_low", "ci_high", "se"]].to_numpy().ravel()]
print(" ".join(out))
"""


def test_the_same_digits_with_any_number_of_threads():
    """The core sorts, sums and estimates in parallel; the numbers may not depend on
    how many threads it has."""
    runs = outputs_by_threads(_THREADS_SCRIPT)
    assert runs[0] and runs[0] == runs[1]
