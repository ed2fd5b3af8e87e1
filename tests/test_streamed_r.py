"""Streamed designs (a LazyFrame over parquet, a Dask DataFrame) with a first-stage fpc
and a rake give R's numbers, as the in-memory design does; what they cannot do (PPS,
calibration other than raking, trimming, replicate weights, the threshold model) is
refused with an error that says so.

R's numbers are in ``tests/data/r_checks/expected.json`` (``r_checks.R``, section
``streamed``): ``svyby(~x + y, ~grp, des, svymean)`` and ``svytotal(~x, des)`` on the
stratified cluster design with fpc, and on it raked to margins of grp and h; and
``svycoxph(Surv(x, y) ~ z + grp, des)`` with fpc.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest
from numpy.testing import assert_allclose

import sscoverage as ssc

HERE = Path(__file__).resolve().parent / "data" / "r_checks"
EXPECTED = json.loads((HERE / "expected.json").read_text())["streamed"]
DESIGN = dict(ids="psu", strata="h", weights="w", fpc="N_h")
# R prints its survey numbers to 15 significant digits and sums in another order.
R_RTOL = 1e-12


@pytest.fixture(scope="module")
def df() -> pd.DataFrame:
    return pd.read_csv(HERE / "data.csv")


@pytest.fixture(scope="module")
def lazy(df, tmp_path_factory) -> pl.LazyFrame:
    folder = tmp_path_factory.mktemp("r_checks_parquet")
    for i, part in enumerate(np.array_split(np.arange(len(df)), 3)):
        pl.from_pandas(df.iloc[part]).write_parquet(folder / f"part{i}.parquet")
    return pl.scan_parquet(folder / "*.parquet")


@pytest.fixture(scope="module", params=["lazyframe", "dask"])
def source(request, df, lazy):
    if request.param == "lazyframe":
        return lambda: lazy
    dd = pytest.importorskip("dask.dataframe")
    return lambda: dd.from_pandas(df, npartitions=4)


def margins() -> list:
    g = pd.DataFrame(EXPECTED["rake_margins"]["grp"])
    h = pd.DataFrame(EXPECTED["rake_margins"]["h"])
    return [("~grp", g), ("~h", h)]


def _numbers(design: ssc.Design) -> np.ndarray:
    by = design.mean(["x", "y"], by="grp").to_pandas()
    assert list(by["grp"].drop_duplicates()) == ["a", "b", "c"]
    x, y = by[by["variable"] == "x"], by[by["variable"] == "y"]
    total = design.total("x")
    return np.r_[x["estimate"], x["se"], y["estimate"], y["se"], total.estimate, total.se]


def _r(which: str) -> np.ndarray:
    r = EXPECTED[which]
    assert r["domains"] == ["a", "b", "c"]
    return np.r_[r["mean_x"], r["se_x"], r["mean_y"], r["se_y"], r["total_x"], r["se_total_x"]]


def test_in_memory_fpc_and_rake_give_r_s_numbers(df):
    memory = ssc.Design(df, **DESIGN)
    assert_allclose(_numbers(memory), _r("stratclus"), rtol=R_RTOL)
    assert_allclose(_numbers(memory.rake(margins())), _r("raked"), rtol=R_RTOL)


def test_streamed_fpc_gives_r_s_numbers(df, source):
    """The fpc enters the streamed variance: without it every SE here is 3-14 % larger."""
    streamed = ssc.Design(source(), **DESIGN, batch_rows=50, progress=False)
    assert isinstance(streamed, ssc.StreamedDesign)
    got = _numbers(streamed)
    assert_allclose(got, _numbers(ssc.Design(df, **DESIGN)), rtol=1e-12)
    assert_allclose(got, _r("stratclus"), rtol=R_RTOL)
    without = _numbers(ssc.Design(source(), ids="psu", strata="h", weights="w", batch_rows=50, progress=False))
    assert np.all(without[3:6] > 1.02 * got[3:6])


def test_streamed_rake_with_fpc_gives_r_s_numbers(df, source):
    streamed = ssc.Design(source(), **DESIGN, batch_rows=50, progress=False).rake(margins())
    got = _numbers(streamed)
    assert_allclose(got, _numbers(ssc.Design(df, **DESIGN).rake(margins())), rtol=1e-12)
    assert_allclose(got, _r("raked"), rtol=R_RTOL)


NEEDS_ROWS = {
    "calibrate": lambda d: d.calibrate("~z + grp", {"(Intercept)": 9000, "z": 522000, "grpb": 3100, "grpc": 2900}),
    "poststratify": lambda d: d.poststratify("grp", pd.DataFrame({"grp": ["a", "b", "c"], "Freq": [1, 2, 3]})),
    # Trimming was silently ignored: the batches' weights are read from the data.
    "trim_weights": lambda d: d.trim_weights(upper=30),
    "adjust_nonresponse": lambda d: d.adjust_nonresponse("y", classes="grp"),
    "as_replicates": lambda d: d.as_replicates("JKn"),
    "quantile on a raked design": lambda d: d.rake(margins()).quantile("x", 0.5),
    "threshold_glm": lambda d: d.threshold_glm("y ~ x", "x"),
}


def test_streamed_pps_is_refused_with_the_fix(source):
    with pytest.raises(ssc.DesignError, match=r"PPS.*collect\(\)"):
        ssc.Design(source(), ids="psu", strata="h", fpc="prob", pps="brewer")


@pytest.mark.parametrize("what", list(NEEDS_ROWS))
def test_what_needs_the_rows_is_refused_with_the_fix(source, what):
    """Calibration (other than raking), trimming, replicate weights and the estimators
    that need every row say so, instead of a Python internal error or a number that
    ignores the request."""
    streamed = ssc.Design(source(), **DESIGN, progress=False)
    with pytest.raises(ssc.DesignError, match=rf"{what.split()[0]}.*collect\(\)"):
        NEEDS_ROWS[what](streamed)


def test_streamed_cox_with_fpc_is_rs(df, source):
    """R's svycoxph(Surv(x, y) ~ z + grp) on the design with fpc (x has many ties)."""
    want = EXPECTED["cox"]
    streamed = ssc.Design(source(), **DESIGN, batch_rows=50, progress=False).coxph("Surv(x, y) ~ z + grp",
                                                                                  progress=False)
    memory = ssc.Design(df, **DESIGN).coxph("Surv(x, y) ~ z + grp")
    for fit in (memory, streamed):
        assert_allclose(fit.coef, want["coef"], rtol=1e-9)
        assert_allclose(fit.se, want["se"], rtol=1e-9)
    assert_allclose(streamed.coef, memory.coef, rtol=1e-12)
    assert_allclose(streamed.vcov, memory.vcov, rtol=1e-10)


def test_streamed_quantiles_with_fpc_are_the_in_memory_ones(df, source):
    """Quantiles and Woodruff limits (whose proportions' SEs carry the fpc) by domain."""
    streamed = ssc.Design(source(), **DESIGN, batch_rows=50, progress=False)
    kw = dict(quantiles=[0.25, 0.5, 0.75], by="grp")
    got, want = streamed.quantile("x", **kw).to_pandas(), ssc.Design(df, **DESIGN).quantile("x", **kw).to_pandas()
    columns = ["estimate", "ci_low", "ci_high", "se", "df"]
    np.testing.assert_array_equal(got[columns].to_numpy(float), want[columns].to_numpy(float))
