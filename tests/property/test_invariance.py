"""Properties every design-based estimate must have, on random stratified cluster samples.

Row order does not matter; scaling the weights by c leaves means, ratios and model
coefficients alone and multiplies totals by c; a domain mean is the subset mean and
the ratio of domain totals; standard errors are never negative; and malformed input
raises a SurveyError, never anything else.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_allclose

import sscoverage as ssc

RTOL = 1e-9  # sums in another order differ in the last bits


@st.composite
def samples(draw: st.DrawFn) -> pd.DataFrame:
    """A stratified two-stage sample: 1-4 strata of 2-5 PSUs of 2-6 rows, with positive
    weights, a numeric outcome, a positive denominator, a 0/1 outcome and a domain."""
    n_strata = draw(st.integers(1, 4))
    psus = draw(st.lists(st.integers(2, 5), min_size=n_strata, max_size=n_strata))
    sizes = draw(st.lists(st.integers(2, 6), min_size=sum(psus), max_size=sum(psus)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    stratum = np.repeat(np.repeat(np.arange(n_strata), psus), sizes)
    psu = np.repeat(np.arange(sum(psus)), sizes)
    n = len(psu)
    # Every domain level in at least one row, so that every level has an estimate.
    domain = rng.permutation(np.resize(np.array(["a", "b", "c"]), n))
    return pd.DataFrame({
        "stratum": stratum,
        "psu": psu,
        "w": rng.uniform(0.5, 5.0, n).round(3),
        "y": rng.normal(10, 3, n).round(2),
        "x": rng.uniform(1, 4, n).round(2),
        "b": (rng.random(n) < 0.4).astype(float),
        "g": domain,
    })


def design_of(df: pd.DataFrame) -> ssc.Design:
    return ssc.Design(df, ids="psu", strata="stratum", weights="w", lonely_psu="adjust")


def estimates(d: ssc.Design) -> dict[str, ssc.Estimates]:
    return {
        "mean": d.mean(["y", "g"]),
        "total": d.total("y"),
        "ratio": d.ratio("y", "x"),
        "by": d.mean("y", by="g"),
        "median": d.quantile("y", 0.5),
    }


@given(samples(), st.randoms(use_true_random=False))
def test_row_order_does_not_change_any_estimate(df, random):
    order = list(range(len(df)))
    random.shuffle(order)
    shuffled = df.iloc[order].reset_index(drop=True)
    a, b = estimates(design_of(df)), estimates(design_of(shuffled))
    for name in a:
        assert_allclose(b[name].estimate, a[name].estimate, rtol=RTOL, err_msg=name)
        assert_allclose(b[name].se, a[name].se, rtol=RTOL, atol=1e-12, err_msg=name)
    fit_a, fit_b = design_of(df).glm("y ~ x", progress=False), design_of(shuffled).glm("y ~ x", progress=False)
    assert_allclose(fit_b.coef, fit_a.coef, rtol=1e-9, atol=1e-12)
    assert_allclose(fit_b.se, fit_a.se, rtol=1e-8, atol=1e-12)


@given(samples(), st.floats(0.01, 100.0))
def test_scaling_the_weights(df, c):
    a = estimates(design_of(df))
    b = estimates(design_of(df.assign(w=df["w"] * c)))
    for name in ("mean", "ratio", "by", "median"):
        assert_allclose(b[name].estimate, a[name].estimate, rtol=RTOL, err_msg=name)
        assert_allclose(b[name].se, a[name].se, rtol=1e-8, atol=1e-12, err_msg=name)
    assert_allclose(b["total"].estimate, c * a["total"].estimate, rtol=RTOL)
    assert_allclose(b["total"].se, c * a["total"].se, rtol=1e-8)
    fit_a = design_of(df).glm("y ~ x", progress=False)
    fit_b = design_of(df.assign(w=df["w"] * c)).glm("y ~ x", progress=False)
    assert_allclose(fit_b.coef, fit_a.coef, rtol=1e-8, atol=1e-10)
    assert_allclose(fit_b.se, fit_a.se, rtol=1e-6, atol=1e-10)


@given(samples())
def test_domain_mean_is_the_subset_mean_and_a_ratio(df):
    d = design_of(df)
    by = d.mean("y", by="g").table.set_index("g")
    for level in by.index:
        inside = (df["g"] == level).to_numpy()
        sub = d.subset(inside).mean("y")
        ratio = d.with_columns({"num": df["y"].to_numpy() * inside, "den": inside.astype(float)}).ratio("num", "den")
        assert_allclose([sub.estimate[0], ratio.estimate[0]], by.loc[level, "estimate"], rtol=RTOL)
        assert_allclose([sub.se[0], ratio.se[0]], by.loc[level, "se"], rtol=1e-8, atol=1e-12)


@given(samples())
def test_standard_errors_are_never_negative(df):
    d = design_of(df)
    for name, est in estimates(d).items():
        se = est.se
        assert (se[~np.isnan(se)] >= 0).all(), name
    assert (design_of(df).glm("y ~ x", progress=False).se >= 0).all()


# ---------------------------------------------------------------------------- malformed input
BAD_NUMBERS = st.sampled_from([np.nan, np.inf, -np.inf, -1.0, 0.0, 1e-300])
BAD_LABELS = st.sampled_from([None, np.nan, "", "x", 1, 2.5])


@st.composite
def malformed(draw: st.DrawFn) -> tuple[pd.DataFrame, dict]:
    """A valid sample with a few cells broken, columns of the wrong type, rows dropped,
    or a design naming what is not there."""
    df = draw(samples()).astype({"stratum": object, "psu": object, "g": object})
    for _ in range(draw(st.integers(1, 4))):
        column = draw(st.sampled_from(list(df.columns)))
        row = draw(st.integers(0, len(df) - 1))
        bad = draw(BAD_NUMBERS) if column in ("w", "y", "x", "b") else draw(BAD_LABELS)
        df[column] = df[column].astype(object)
        df.loc[row, column] = bad
    if draw(st.booleans()):
        df = df.iloc[: draw(st.integers(0, 3))]
    if draw(st.booleans()):
        df[draw(st.sampled_from(["w", "y", "x"]))] = draw(st.sampled_from(["text", None, True]))
    spec = {"ids": draw(st.sampled_from(["psu", None, "nope"])), "strata": draw(st.sampled_from(["stratum", None])),
            "weights": draw(st.sampled_from(["w", "y", None]))}
    return df, spec


@given(malformed(), st.sampled_from(["mean", "total", "ratio", "by", "quantile", "glm", "ciprop", "chisq"]))
def test_malformed_input_raises_a_survey_error(case, estimator):
    df, spec = case
    try:
        d = ssc.Design(df, **spec)
        {
            "mean": lambda: d.mean("y"),
            "total": lambda: d.total(["y", "g"]),
            "ratio": lambda: d.ratio("y", "x"),
            "by": lambda: d.mean("y", by="g"),
            "quantile": lambda: d.quantile("y", 0.5),
            "glm": lambda: d.glm("b ~ y", family="quasibinomial", progress=False),
            "ciprop": lambda: d.ciprop("b"),
            "chisq": lambda: d.chisq("g", "b"),
        }[estimator]()
    except ssc.SurveyError:
        pass  # the only way bad input may fail
    except Warning as warning:  # warnings are errors in the test suite
        pytest.fail(f"{estimator}: a warning instead of a SurveyError: {warning!r}")
