"""Quantiles of a streamed design (LazyFrame batches, Dask partitions) are the in-memory
design's to the last bit: estimates, Woodruff limits, by= domains and subsets, with ties,
integer data, equal and unequal weights and tiny domains; each pass reads a window of a
few values, not the rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import sscoverage as ssc
import sscoverage.stream.quantile as streamed_quantile

DESIGN = {"ids": "psu", "strata": "h", "weights": "w"}
EXACT = ["estimate", "ci_low", "ci_high", "se", "df", "n"]


def _frame(seed: int, n: int = 20_000, weights: str = "uniform") -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    h = rng.integers(0, 5, n)
    w = {
        "uniform": rng.uniform(1, 4, n),  # unequal, not multiples of a power of two
        "integer": rng.integers(1, 6, n).astype(float),
        "equal": np.full(n, 1000 / 3),  # R's running sum of equal weights: from the count alone
    }[weights]
    return pd.DataFrame({
        "h": h,
        "psu": h * 100 + rng.integers(0, 20, n),
        "w": w,
        "income": rng.lognormal(8, 1, n),
        "children": rng.poisson(1.2, n).astype(float),  # integer values, many ties
        "d": rng.integers(0, 4, n),
    })


def _same(memory: ssc.Estimates, streamed: ssc.Estimates) -> None:
    a, b = memory.to_pandas(), streamed.to_pandas()
    assert_array_equal(b[EXACT].to_numpy(float), a[EXACT].to_numpy(float))
    assert_allclose(b["weight_sum"].to_numpy(float), a["weight_sum"].to_numpy(float), rtol=1e-14)
    assert b.drop(columns=EXACT + ["weight_sum"]).equals(a.drop(columns=EXACT + ["weight_sum"]))


def _lazy(df: pd.DataFrame, batch_rows: int = 3_000) -> ssc.Design:
    return ssc.Design(pl.from_pandas(df).lazy(), **DESIGN, batch_rows=batch_rows, progress=False)


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("weights", ["uniform", "integer", "equal"])
@pytest.mark.parametrize("y", ["income", "children"])
def test_lazyframe_quantiles_are_the_in_memory_ones(seed, weights, y):
    df = _frame(seed, weights=weights)
    memory, streamed = ssc.Design(df, **DESIGN), _lazy(df)
    probs = [0.1, 0.25, 0.5, 0.75, 0.9]
    _same(memory.quantile(y, probs), streamed.quantile(y, probs))
    _same(memory.quantile(y, probs, by="d", qrule="school", interval_type="beta"),
          streamed.quantile(y, probs, by="d", qrule="school", interval_type="beta"))


def test_by_two_columns_several_variables_and_interval_types():
    df = _frame(4)
    memory, streamed = ssc.Design(df, **DESIGN), _lazy(df)
    for interval_type in ("mean", "xlogit", "asin"):
        kw = dict(quantiles=[0.2, 0.5], by=["d", "h"], interval_type=interval_type, level=0.9)
        _same(memory.quantile(["income", "children"], **kw), streamed.quantile(["income", "children"], **kw))


def test_hand_computed_median_of_tied_integers():
    # 1..10 with weight 1 (and each value twice): half the weight is reached exactly at 5,
    # so math gives 5 and school (5 + 6) / 2.
    df = pd.DataFrame({"y": np.repeat(np.arange(1.0, 11.0), 2), "w": 1.0, "h": 0, "psu": np.arange(20) % 4})
    streamed = _lazy(df, batch_rows=7)
    assert streamed.quantile("y", 0.5).table.estimate.item() == 5.0
    assert streamed.quantile("y", 0.5, qrule="school").table.estimate.item() == 5.5
    _same(ssc.Design(df, **DESIGN).quantile("y", [0.05, 0.5, 0.95]), streamed.quantile("y", [0.05, 0.5, 0.95]))


def test_tiny_domains_and_a_subset():
    df = _frame(5, n=5_000)
    # Domains of one, two and three rows (R's first-row rule; undefined Woodruff limits).
    df.loc[:5, "d"] = [7, 8, 8, 9, 9, 9]
    memory, streamed = ssc.Design(df, **DESIGN), _lazy(df, batch_rows=700)
    _same(memory.quantile("income", [0.1, 0.5, 0.9], by="d"), streamed.quantile("income", [0.1, 0.5, 0.9], by="d"))
    low = {"column": "children", "op": "<=", "value": 1.0}
    _same(memory.subset(low).quantile("income", [0.25, 0.5], by="d"),
          streamed.subset(pl.col("children") <= 1.0).quantile("income", [0.25, 0.5], by="d"))


def test_a_domain_of_zero_weight_is_left_out_with_a_warning():
    df = _frame(10, n=3_000)
    df.loc[df.d == 2, "w"] = 0.0
    memory, streamed = ssc.Design(df, **DESIGN), _lazy(df)
    with pytest.warns(ssc.SurveyWarning, match="d = 2: every row has zero weight"):
        want = memory.quantile("income", 0.5, by="d")
    with pytest.warns(ssc.SurveyWarning, match="d = 2: every row has zero weight"):
        got = streamed.quantile("income", 0.5, by="d")
    _same(want, got)
    assert list(got.to_pandas()["d"]) == [0, 1, 3]


def test_missing_values_leave_the_rows_out():
    df = _frame(6, n=8_000)
    df.loc[::37, "income"] = np.nan
    memory, streamed = ssc.Design(df, **DESIGN), _lazy(df)
    _same(memory.quantile(["income", "children"], 0.5, by="d", na_rm=True),
          streamed.quantile(["income", "children"], 0.5, by="d", na_rm=True))
    assert streamed.quantile("income", 0.5, na_rm=True).n_removed == memory.quantile("income", 0.5, na_rm=True).n_removed
    with pytest.raises(ssc.MissingValueError, match="na_rm=True"):
        streamed.quantile("income", 0.5)


def test_dask_partitions_give_the_in_memory_quantiles():
    dd = pytest.importorskip("dask.dataframe")
    df = _frame(7)
    streamed = ssc.Design(dd.from_pandas(df, npartitions=6), **DESIGN, progress=False)
    memory = ssc.Design(df, **DESIGN)
    _same(memory.quantile("income", [0.25, 0.5, 0.75], by="d"), streamed.quantile("income", [0.25, 0.5, 0.75], by="d"))
    _same(memory.quantile("children", [0.5, 0.9]), streamed.quantile("children", [0.5, 0.9]))


def test_rounding_level_ties_are_settled_on_the_domains_rows(monkeypatch):
    # Unequal weights that are not multiples of a common power of two, placed so that
    # the weight of the values below the median is exactly half the total in real
    # arithmetic: R's long-double sums decide at the last bit, so the windows' sums
    # (in another order) cannot, and the domain's rows are read for the in-memory rule.
    n = 6_000
    half = np.tile([1 / 3, 1 / 7, 0.1], n // 6)
    df = pd.DataFrame({"y": np.arange(n, dtype=float), "w": np.r_[half, half[::-1]], "h": 0,
                       "psu": np.arange(n) % 30})
    collected = []
    rows_of = streamed_quantile._Reader._rows_of
    monkeypatch.setattr(streamed_quantile._Reader, "_rows_of",
                        lambda self, d: collected.append(d) or rows_of(self, d))
    _same(ssc.Design(df, **DESIGN).quantile("y", [0.5, 0.3]), _lazy(df, batch_rows=1_000).quantile("y", [0.5, 0.3]))
    assert collected, "the tie at the median is settled on the rows"


def test_each_window_holds_a_few_values(monkeypatch):
    df = _frame(8, n=200_000)
    sizes = []
    window = streamed_quantile._Reader._window
    monkeypatch.setattr(streamed_quantile._Reader, "_window",
                        lambda self, *a: (lambda xc: sizes.append(len(xc[0])) or xc)(window(self, *a)))
    for y in ("income", "children"):
        _same(ssc.Design(df, **DESIGN).quantile(y, [0.1, 0.5, 0.9], by="d"),
              _lazy(df, batch_rows=50_000).quantile(y, [0.1, 0.5, 0.9], by="d"))
    # 2 variables x 4 domains x (3 quantiles + 6 limits); a window is read at full
    # resolution once it holds at most WINDOW_ROWS rows (tied rows stand as a value's
    # first and last row): all windows together hold a few percent of the 200,000 rows.
    assert len(sizes) == 2 * 4 * 9
    assert max(sizes) <= 2 * streamed_quantile.WINDOW_ROWS + 2
    assert sum(sizes) < 0.1 * len(df)


def test_what_needs_every_weight_is_refused_with_collect():
    streamed = _lazy(_frame(9, n=2_000))
    for kw in (dict(qrule="hf7"), dict(qrule="shahvaish"), dict(interval_type="score"),
               dict(interval_type="quantile")):
        with pytest.raises(ssc.NotSupportedError, match=r"collect\(\)"):
            streamed.quantile("income", 0.5, **kw)
    with pytest.raises(ssc.OptionError, match="qrule"):
        streamed.quantile("income", 0.5, qrule="nearest")
    with pytest.raises(ssc.EstimationError, match="strictly between 0 and 1"):
        streamed.quantile("income", 1.0)
