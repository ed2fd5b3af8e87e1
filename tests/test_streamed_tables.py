"""Proportions with their intervals (every ``ciprop`` method), tests of association
(``chisq``: Rao-Scott, Wald, saddlepoint) and contrasts of domain means and totals on a
streamed design (a LazyFrame in several batches, a Dask DataFrame in partitions) equal
the in-memory design's to 1e-12: the core finishes both from the same sums.  Bad input
is refused as in memory."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pytest
from numpy.testing import assert_allclose

import sscoverage as ssc
from _threads import outputs_by_threads

DESIGN = dict(ids="psu", strata="h", weights="w")
RTOL = 1e-12


@pytest.fixture(scope="module")
def df() -> pd.DataFrame:
    rng = np.random.default_rng(12)
    n = 12_000
    data = pd.DataFrame({
        "h": rng.integers(0, 5, n),
        "w": rng.uniform(1, 4, n),
        "x": rng.uniform(1, 3, n),
        "y": rng.normal(10, 2, n),
        "job": rng.choice(["platform", "contract", "self"], n),
        "d": rng.integers(0, 4, n),
    })
    data["psu"] = data.h * 100 + rng.integers(0, 20, n)
    # A proportion that differs by domain, and the same as TRUE/FALSE text.
    data["covered"] = (rng.uniform(size=n) < 0.3 + 0.1 * data.d).astype(float)
    data["covered_text"] = np.where(data.covered == 1, "TRUE", "FALSE")
    data.loc[::71, "covered"] = np.nan
    data.loc[::53, "y"] = np.nan
    data.loc[::97, "job"] = None
    return data


@pytest.fixture(scope="module")
def lazy(df, tmp_path_factory) -> pl.LazyFrame:
    folder = tmp_path_factory.mktemp("tables_parquet")
    for i, rows in enumerate(np.array_split(np.arange(len(df)), 3)):
        pl.from_pandas(df.iloc[rows]).write_parquet(folder / f"part{i}.parquet")
    return pl.scan_parquet(folder / "*.parquet")


@pytest.fixture(scope="module", params=["lazyframe", "dask"])
def streamed(request, df, lazy) -> ssc.StreamedDesign:
    if request.param == "lazyframe":
        return ssc.Design(lazy, **DESIGN, batch_rows=2_500, progress=False)
    dd = pytest.importorskip("dask.dataframe")
    return ssc.Design(dd.from_pandas(df, npartitions=4), **DESIGN, progress=False)


@pytest.fixture(scope="module")
def memory(df) -> ssc.Design:
    return ssc.Design(df, **DESIGN)


def _same(a: ssc.Estimates, b: ssc.Estimates) -> None:
    cols = [c for c in ("estimate", "se", "ci_low", "ci_high", "df", "n", "weight_sum") if c in a.table]
    assert_allclose(b.to_pandas()[cols].to_numpy(float), a.to_pandas()[cols].to_numpy(float), rtol=RTOL)
    by = [c for c in a.to_pandas().columns if c not in cols]
    assert b.to_pandas()[by].astype(str).equals(a.to_pandas()[by].astype(str))
    assert b.n_removed == a.n_removed


@pytest.mark.parametrize("method", ["logit", "likelihood", "mean", "xlogit", "asin", "beta", "wilson"])
def test_every_ciprop_method_by_domain_equals_memory(memory, streamed, method):
    """Missing values left out (their rows stay in each domain's degrees of freedom and
    in the mean weight that scales R's prior weights)."""
    _same(memory.ciprop("covered", method=method, by="d", na_rm=True),
          streamed.ciprop("covered", method=method, by="d", na_rm=True))


def test_ciprop_of_a_subset_and_of_true_false_text_equals_memory(df, memory, streamed):
    _same(memory.subset(df.h < 3).ciprop("covered", na_rm=True),
          streamed.subset(pl.col("h") < 3).ciprop("covered", na_rm=True))
    _same(memory.ciprop("covered_text", method="beta", by="job"),
          streamed.ciprop("covered_text", method="beta", by="job"))


def test_ciprop_refuses_what_memory_refuses(streamed):
    with pytest.raises(ssc.MissingValueError, match="na_rm=True"):
        streamed.ciprop("covered")
    with pytest.raises(ssc.ColumnError, match=r"outside \[0, 1\]"):
        streamed.ciprop("x")
    with pytest.raises(ssc.ColumnError, match="logical"):
        streamed.ciprop("job")


@pytest.mark.parametrize("statistic", ["F", "Chisq", "Wald", "adjWald", "saddlepoint"])
def test_every_chisq_statistic_equals_memory(df, memory, streamed, statistic):
    """Rows with a missing level left out (na_rm=True), in a subset too."""
    for mem, st in ((memory, streamed), (memory.subset(df.d > 0), streamed.subset(pl.col("d") > 0))):
        a, b = mem.chisq("job", "d", statistic=statistic), st.chisq("job", "d", statistic=statistic)
        got = [b.statistic, b.ndf or 0, b.ddf or 0, b.p_value]
        assert_allclose(got, [a.statistic, a.ndf or 0, a.ddf or 0, a.p_value], rtol=RTOL)
        assert_allclose(b.table.to_numpy(), a.table.to_numpy(), rtol=RTOL)
        assert list(b.table.index) == list(a.table.index) and list(b.table.columns) == list(a.table.columns)
        assert (b.method, b.notes) == (a.method, a.notes)


def test_chisq_with_missing_levels_and_no_na_rm_is_refused(streamed):
    # Rows 0, 97, ..., 97 x 123 = 11931 have no job: 124.
    with pytest.raises(ssc.MissingValueError, match="'job' has 124 missing values"):
        streamed.chisq("job", "d", na_rm=False)


CONTRASTS = {"d0 - d1": [1, -1, 0, 0, 0, 0, 0, 0], "y of d2 and d3": [0, 0, 0, 0, 0.5, 0, 0.5, 0]}


@pytest.mark.parametrize("statistic", ["mean", "total"])
def test_contrasts_of_domain_estimates_equal_memory(df, memory, streamed, statistic):
    """Across domains and variables; with by on a subset, whose PSUs the variance keeps
    as in memory; and of a factor's levels without by."""
    _same(memory.contrast(["y", "x"], CONTRASTS, statistic, by="d", na_rm=True),
          streamed.contrast(["y", "x"], CONTRASTS, statistic, by="d", na_rm=True))
    _same(memory.subset(df.h != 2).contrast("x", [1, 0, -1, 0], statistic, by="d"),
          streamed.subset(pl.col("h") != 2).contrast("x", [1, 0, -1, 0], statistic, by="d"))
    _same(memory.contrast("job", [[1, 0, 0], [0, 1, 1]], statistic, na_rm=True),
          streamed.contrast("job", [[1, 0, 0], [0, 1, 1]], statistic, na_rm=True))


MARGINS = [("~h", pd.DataFrame({"h": [0, 1, 2, 3, 4], "Freq": [6000.0, 6100.0, 5900.0, 6050.0, 6200.0]}))]


def test_contrast_and_chisq_on_a_raked_design_equal_memory(df, memory, streamed):
    """The rake's residuals enter the joint covariance from the per-(domain, cell) sums."""
    mem, st = memory.rake(MARGINS), streamed.rake(MARGINS)
    _same(mem.contrast("x", [1, -1, 0, 0], by="d"), st.contrast("x", [1, -1, 0, 0], by="d"))
    a, b = mem.chisq("job", "d", statistic="Wald"), st.chisq("job", "d", statistic="Wald")
    assert_allclose([b.statistic, b.p_value], [a.statistic, a.p_value], rtol=RTOL)


@pytest.mark.parametrize("method", ["logit", "likelihood", "beta"])
def test_ciprop_on_a_raked_design_equals_memory(df, memory, streamed, method):
    """R's fit on a raked design: prior weights over the mean weight of every row (R's
    subset keeps them at zero weight), the raking residuals of its working residuals."""
    _same(memory.rake(MARGINS).ciprop("covered", method=method, by="d", na_rm=True),
          streamed.rake(MARGINS).ciprop("covered", method=method, by="d", na_rm=True))


def test_same_digits_for_1_and_2_threads(lazy, tmp_path):
    code = (
        "import polars as pl, sscoverage as ssc, sys\n"
        "d = ssc.Design(pl.scan_parquet(sys.argv[1]), ids='psu', strata='h', weights='w', batch_rows=3000,"
        " progress=False)\n"
        "p = d.ciprop('covered', method='likelihood', by='d', na_rm=True)\n"
        "t = d.chisq('job', 'd')\n"
        "c = d.contrast('x', [1, -1, 0, 0], by='d')\n"
        "print(p.estimate.tolist(), p.se.tolist(), p.to_pandas().ci_low.tolist(), t.statistic, t.p_value,"
        " c.estimate.tolist(), c.se.tolist())\n"
    )
    path = str(tmp_path / "p.parquet")
    lazy.sink_parquet(path)
    assert len(set(outputs_by_threads(code, path))) == 1


def test_contrast_on_a_subset_keeps_the_subset_s_psus_for_the_lonely_psu_rule(df, tmp_path):
    """Stratum 4 has one PSU and the subset leaves stratum 3 out: 'average' scales the
    variance by the strata the subset holds over those with two PSUs or more (4 / 3, not
    5 / 4), as in memory, only if the streamed pass marks which PSUs the subset holds."""
    data = df.assign(psu=np.where(df.h == 4, 400, df.psu))
    pl.from_pandas(data).write_parquet(tmp_path / "lonely.parquet")
    kw = dict(ids="psu", strata="h", weights="w", lonely_psu="average")
    memory = ssc.Design(data, **kw)
    streamed = ssc.Design(pl.scan_parquet(tmp_path / "lonely.parquet"), **kw, batch_rows=2_500, progress=False)
    a = memory.subset(data.h != 3).contrast("x", [1, -1, 0, 0], by="d")
    _same(a, streamed.subset(pl.col("h") != 3).contrast("x", [1, -1, 0, 0], by="d"))
    # The same domains by a by column alone (no subset) keep stratum 3: 5 / 4.
    in_domain = data.assign(d=np.where(data.h == 3, -1, data.d))
    whole = ssc.Design(in_domain, **kw).contrast("x", [0, 1, -1, 0, 0], by="d")
    assert_allclose(a.se[0] ** 2 / (4 / 3), whole.se[0] ** 2 / (5 / 4), rtol=1e-12)
