"""Properties every design-based estimate must have, on random stratified cluster samples.

Row order does not matter; scaling the weights by c leaves means, ratios and model
coefficients alone and multiplies totals by c; a domain mean is the subset mean and
the ratio of domain totals; squared standard errors are the hand variances; and
malformed input raises a SurveyError, never anything else.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_allclose

import sscoverage as ssc

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import _oracle  # noqa: E402

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
def test_squared_standard_errors_are_the_hand_variances(df):
    """SE^2 of a mean, a total, a ratio and each domain mean is the stratified
    with-replacement variance of the PSU totals of its influence values, by hand."""
    d = design_of(df)
    y, x, w = (df[c].to_numpy() for c in ("y", "x", "w"))
    args = (w, df["stratum"].to_numpy(), df["psu"].to_numpy())
    everyone = np.ones(len(df), bool)
    by = d.mean("y", by="g").table.set_index("g")
    want = {
        "mean": _oracle.domain_mean(y, *args, everyone),
        "total": _oracle.domain_total(y, *args, everyone),
        "ratio": _oracle.ratio(y, x, *args),
        **{f"by {g}": _oracle.domain_mean(y, *args, (df["g"] == g).to_numpy()) for g in by.index},
    }
    got = {"mean": d.mean("y"), "total": d.total("y"), "ratio": d.ratio("y", "x")}
    for name, est in got.items():
        assert_allclose([est.estimate[0], est.se[0] ** 2], [want[name][0], want[name][1] ** 2], rtol=1e-9,
                        err_msg=name)
    for g in by.index:
        assert_allclose([by.loc[g, "estimate"], by.loc[g, "se"] ** 2],
                        [want[f"by {g}"][0], want[f"by {g}"][1] ** 2], rtol=1e-9, atol=1e-15, err_msg=g)


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


# The columns each estimator reads, besides the design's.
READS = {"mean": ["y"], "total": ["y", "g"], "ratio": ["y", "x"], "by": ["y", "g"], "quantile": ["y"],
         "glm": ["b", "y"], "ciprop": ["b"], "chisq": ["g", "b"]}


def _unusable(column: pd.Series, weights: bool = False) -> bool:
    """A missing, infinite or text value where a number is needed, or a negative weight:
    input that has no answer without a decision the user must make."""
    values = pd.to_numeric(column, errors="coerce")
    if column.isna().any() or values.isna().any() or np.isinf(values.to_numpy(float)).any():
        return True
    return bool(weights and (values < 0).any())


def _must_fail(df: pd.DataFrame, spec: dict, estimator: str) -> bool:
    if len(df) == 0 or spec["ids"] == "nope":
        return True
    labels = [c for c in (spec["ids"], spec["strata"]) if c is not None]
    if any(df[c].isna().any() for c in labels):
        return True
    if spec["weights"] is not None and _unusable(df[spec["weights"]], weights=True):
        return True
    # A by or table column may miss values (those rows are in no domain, or left out).
    numeric = [c for c in READS[estimator] if c != "g" and not (estimator == "chisq" and c == "b")]
    return any(_unusable(df[c]) for c in numeric)


@given(malformed(), st.sampled_from(list(READS)))
def test_malformed_input_raises_a_survey_error(case, estimator):
    """Unusable input raises a SurveyError (nothing else); input that is accepted gives
    finite estimates and standard errors."""
    df, spec = case
    try:
        d = ssc.Design(df, **spec)
        result = {
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
        return  # the only way bad input may fail
    except Warning as warning:  # warnings are errors in the test suite
        pytest.fail(f"{estimator}: a warning instead of a SurveyError: {warning!r}")
    assert not _must_fail(df, spec, estimator), f"{estimator} accepted unusable input: {spec}\n{df}"
    numbers = {"glm": lambda: result.coef, "chisq": lambda: result.statistic}.get(estimator, lambda: result.estimate)()
    assert np.isfinite(np.r_[numbers]).all(), f"{estimator} gave {numbers} without an error"
