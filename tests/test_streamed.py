"""Larger-than-memory designs: a LazyFrame over parquet files streamed in batches, and
a Dask DataFrame on a dask.distributed cluster, give the in-memory numbers."""

from __future__ import annotations


import numpy as np
import pandas as pd
import polars as pl
import pytest
from numpy.testing import assert_allclose

import sscoverage as ssc
from _threads import outputs_by_threads


@pytest.fixture(scope="module")
def df() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    n = 30_000
    data = pd.DataFrame({
        "h": rng.integers(0, 6, n),
        "w": rng.uniform(1, 4, n),
        "y": rng.normal(10, 2, n),
        "x": rng.uniform(1, 3, n),
        "job": rng.choice(["platform", "contract", "self"], n),
        "d": rng.integers(0, 4, n),
    })
    data["psu"] = data.h * 100 + rng.integers(0, 25, n)
    data.loc[::53, "y"] = np.nan
    return data


@pytest.fixture(scope="module")
def lazy(df, tmp_path_factory) -> pl.LazyFrame:
    folder = tmp_path_factory.mktemp("parquet")
    n = len(df)
    for i in range(4):
        pl.from_pandas(df.iloc[i * n // 4:(i + 1) * n // 4]).write_parquet(folder / f"part{i}.parquet")
    return pl.scan_parquet(folder / "*.parquet")


CALLS = [
    ("mean", dict(y="y", by="d", na_rm=True, deff=True)),
    ("total", dict(y=["x", "job"], by=["d", "h"])),
    ("mean", dict(y="job")),
]


def _same(a: ssc.Estimates, b: ssc.Estimates) -> None:
    cols = [c for c in ("estimate", "se", "deff", "n", "weight_sum") if c in a.table]
    assert_allclose(b.to_pandas()[cols].to_numpy(float), a.to_pandas()[cols].to_numpy(float), rtol=1e-12)
    assert b.n_removed == a.n_removed


@pytest.mark.parametrize("op,kw", CALLS)
def test_lazyframe_matches_memory(df, lazy, op, kw):
    memory = ssc.Design(df, ids="psu", strata="h", weights="w")
    streamed = ssc.Design(lazy, ids="psu", strata="h", weights="w", batch_rows=4_000)
    assert isinstance(streamed, ssc.StreamedDesign) and streamed.degf == memory.degf
    _same(getattr(memory, op)(**kw), getattr(streamed, op)(**kw))


def test_lazyframe_ratio_and_subset(df, lazy):
    memory = ssc.Design(df, ids="psu", strata="h", weights="w")
    streamed = ssc.Design(lazy, ids="psu", strata="h", weights="w", batch_rows=7_000)
    _same(memory.subset(df.job == "platform").ratio("y", "x", na_rm=True),
          streamed.subset(pl.col("job") == "platform").ratio("y", "x", na_rm=True))
    _same(memory.subset({"column": "d", "op": "in", "value": [1, 2]}).mean("x"),
          streamed.subset({"column": "d", "op": "in", "value": [1, 2]}).mean("x"))


def test_dask_on_a_local_cluster_matches_memory(df):
    dd = pytest.importorskip("dask.dataframe")
    distributed = pytest.importorskip("dask.distributed")
    memory = ssc.Design(df, ids="psu", strata="h", weights="w")
    with distributed.LocalCluster(n_workers=2, processes=False, dashboard_address=":0") as cluster, \
            distributed.Client(cluster):
        streamed = ssc.Design(dd.from_pandas(df, npartitions=5), ids="psu", strata="h", weights="w")
        for op, kw in CALLS:
            _same(getattr(memory, op)(**kw), getattr(streamed, op)(**kw))


def test_dask_glm_on_a_local_cluster_matches_memory(model_df):
    dd = pytest.importorskip("dask.dataframe")
    distributed = pytest.importorskip("dask.distributed")
    memory = ssc.Design(model_df, ids="psu", strata="h", weights="w")
    with distributed.LocalCluster(n_workers=2, processes=False, dashboard_address=":0") as cluster, \
            distributed.Client(cluster):
        streamed = ssc.Design(dd.from_pandas(model_df, npartitions=5), ids="psu", strata="h", weights="w")
        for formula, family in GLMS[:2]:
            _same_fit(memory.glm(formula, family=family), streamed.glm(formula, family=family, progress=False))


def test_dask_worker_processes_serve_every_streamed_estimator(model_df):
    # Worker processes send what each partition gives to the client pickled (threads
    # share it): every estimator a streamed design serves, with the in-memory numbers.
    dd = pytest.importorskip("dask.dataframe")
    distributed = pytest.importorskip("dask.distributed")
    data = model_df.assign(t=np.ceil(model_df.x * 10.0), e=model_df.lapse)
    memory = ssc.Design(data, ids="psu", strata="h", weights="w")
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                  dashboard_address=":0") as cluster, distributed.Client(cluster):
        streamed = ssc.Design(dd.from_pandas(data, npartitions=4), ids="psu", strata="h", weights="w",
                              progress=False)
        for op, kw in CALLS:
            _same(getattr(memory, op)(**kw), getattr(streamed, op)(**kw))
        _same(memory.ratio("y", "x", na_rm=True), streamed.ratio("y", "x", na_rm=True))
        _same(memory.quantile("x", [0.25, 0.5], by="d"), streamed.quantile("x", [0.25, 0.5], by="d"))
        formula, family = GLMS[1]
        _same_fit(memory.glm(formula, family=family), streamed.glm(formula, family=family))
        a, b = memory.coxph("Surv(t, e) ~ y + job", na_rm=True), streamed.coxph("Surv(t, e) ~ y + job", na_rm=True)
        assert np.all(np.abs(b.coef - a.coef) <= 1e-12 * np.abs(a.coef) + 1e-10 * a.se)  # as test_streamed_cox
        assert_allclose(b.vcov, a.vcov, rtol=1e-10, atol=1e-12 * np.abs(a.vcov).max())
        a, b = memory.coxph("Surv(t, e) ~ y + job", na_rm=True), streamed.coxph("Surv(t, e) ~ y + job", na_rm=True)
        assert np.all(np.abs(b.coef - a.coef) <= 1e-12 * np.abs(a.coef) + 1e-10 * a.se)  # as test_streamed_cox
        assert_allclose(b.vcov, a.vcov, rtol=1e-10, atol=1e-12 * np.abs(a.vcov).max())
        a, b = (d.km("t", "e", by="job", times=[10, 20], se=True) for d in (memory, streamed))
        cols = ["time", "survival", "se_log", "ci_low", "ci_high"]
        assert_allclose(b.to_pandas()[cols].to_numpy(float), a.to_pandas()[cols].to_numpy(float), rtol=1e-12)
        _same(memory.ciprop("lapse", method="logit", by="job"), streamed.ciprop("lapse", method="logit", by="job"))
        _same(memory.contrast("x", [1, -1, 0, 0], by="d"), streamed.contrast("x", [1, -1, 0, 0], by="d"))
        a, b = memory.chisq("job", "d"), streamed.chisq("job", "d")
        assert_allclose([b.statistic, b.p_value], [a.statistic, a.p_value], rtol=1e-12)
        margins = {"d": {0: 1e4, 1: 1e4, 2: 1e4, 3: 1e4}}
        _same(memory.rake(margins).mean("x"), streamed.rake(margins).mean("x"))


def test_same_digits_for_1_2_and_8_threads(lazy, tmp_path):
    code = (
        "import polars as pl, sscoverage as ssc, sys\n"
        "lf = pl.scan_parquet(sys.argv[1]).with_columns(t=pl.col('d') + 1.0, e=pl.col('x') > 2)\n"
        "d = ssc.Design(lf, ids='psu', strata='h', weights='w', batch_rows=5000)\n"
        "r = d.mean('y', by='d', na_rm=True)\n"
        "g = d.glm('y ~ x + job', progress=False)\n"
        "k = d.rake([('job', {'platform': 2e4, 'contract': 3e4, 'self': 2.6e4})]).mean('x', by='d')\n"
        "c = d.coxph('Surv(t, e) ~ x + job', progress=False)\n"
        "print(r.estimate.tolist(), r.se.tolist(), g.coef.tolist(), g.vcov.tolist(), k.se.tolist(), c.coef.tolist(),\n"
        "      c.vcov.tolist())\n"
    )
    folder = str(tmp_path / "p.parquet")
    lazy.sink_parquet(folder)
    outs = set(outputs_by_threads(code, folder, threads=("1", "2", "8")))
    assert len(outs) == 1


def test_streamed_design_refuses_what_needs_rows(df, lazy):
    with pytest.raises(ssc.DesignError, match="needs PSU ids"):
        ssc.Design(lazy, weights="w")
    streamed = ssc.Design(lazy, ids="psu", strata="h", weights="w")
    with pytest.raises(ssc.DesignError, match="polars expression or a condition dict"):
        streamed.subset(df.d == 1)
    with pytest.raises(ssc.MissingValueError, match="na_rm=True"):
        streamed.mean("y")
    with pytest.raises(ssc.ColumnError, match="'nope'"):
        streamed.mean("nope")


@pytest.fixture(scope="module")
def model_df(df) -> pd.DataFrame:
    """`df` with a 0/1 lapse outcome that depends on x and job."""
    rng = np.random.default_rng(11)
    eta = -1 + 0.5 * df.x + 0.7 * (df.job == "self")
    return df.assign(lapse=(rng.uniform(size=len(df)) < 1 / (1 + np.exp(-eta))).astype(float))


@pytest.fixture(scope="module")
def model_lazy(model_df, tmp_path_factory) -> pl.LazyFrame:
    path = tmp_path_factory.mktemp("model") / "model.parquet"
    pl.from_pandas(model_df).write_parquet(path, row_group_size=5_000)
    return pl.scan_parquet(path)


GLMS = [
    ("lapse ~ x + job", "quasibinomial"),
    ("y ~ x + job + C(d)", "gaussian"),  # 1 row in 53 has no y: left out, counted
    ("lapse ~ x * job", "binomial"),
]


def _same_fit(a, b) -> None:
    assert b.terms == a.terms
    assert_allclose(b.coef, a.coef, rtol=1e-12)
    assert_allclose(b.vcov, a.vcov, rtol=1e-12, atol=1e-12 * np.abs(a.vcov).max())
    assert_allclose([b.dispersion, b.deviance], [a.dispersion, a.deviance], rtol=1e-12)
    assert (b.df_residual, b.n, b.n_removed, b.iterations) == (a.df_residual, a.n, a.n_removed, a.iterations)


@pytest.mark.parametrize("formula,family", GLMS)
def test_lazyframe_glm_matches_memory(model_df, model_lazy, formula, family):
    memory = ssc.Design(model_df, ids="psu", strata="h", weights="w")
    streamed = ssc.Design(model_lazy, ids="psu", strata="h", weights="w", batch_rows=7_000)
    _same_fit(memory.glm(formula, family=family), streamed.glm(formula, family=family, progress=False))


def test_lazyframe_glm_on_a_subset(model_df, model_lazy):
    """The domain's rows only, with the domain's mean weight and degrees of freedom."""
    memory = ssc.Design(model_df, ids="psu", strata="h", weights="w").subset(model_df.d.to_numpy() == 1)
    streamed = ssc.Design(model_lazy, ids="psu", strata="h", weights="w").subset(pl.col("d") == 1)
    a, b = memory.glm("y ~ x + job"), streamed.glm("y ~ x + job", progress=False)
    _same_fit(a, b)
    with pytest.raises(ssc.DesignError, match="predict on newdata"):
        b.predict()
    with pytest.raises(ssc.DesignError, match="fitted rows"):
        b.predictive_margins("job")
    new = pd.DataFrame({"x": [1.5, 2.5], "job": ["self", "contract"]})
    assert_allclose(b.predict(new).se, a.predict(new).se, rtol=1e-12)


def test_streamed_glm_refuses_stateful_transforms_and_aliasing(model_df, model_lazy):
    streamed = ssc.Design(model_lazy, ids="psu", strata="h", weights="w")
    with pytest.raises(ssc.DesignError, match="stateful transforms"):
        streamed.glm("lapse ~ scale(x)", progress=False)
    with pytest.raises(ssc.EstimationError, match="I\\(2 \\* x\\)"):
        streamed.glm("lapse ~ x + I(2 * x)", progress=False)
    with pytest.raises(ssc.ColumnError, match="'xx'"):
        streamed.glm("lapse ~ xx", progress=False)


MARGINS = [
    ("job", {"platform": 20_000, "contract": 30_000, "self": 26_000}),
    ("~d", pd.DataFrame({"d": [0, 1, 2, 3], "Freq": [19_000, 19_000, 20_000, 18_000]})),
]
RAKED_CALLS = CALLS[:2] + [("ratio", dict(numerator="y", denominator="x", na_rm=True, by="h"))]


def test_lazyframe_raking_matches_memory(df, lazy):
    """A rake on the collapsed cell table: the same weights and the same raking residuals
    in the variance (R's svyrecvar sweeps) as the in-memory rake."""
    memory = ssc.Design(df, ids="psu", strata="h", weights="w").rake(MARGINS)
    streamed = ssc.Design(lazy, ids="psu", strata="h", weights="w", batch_rows=6_000, progress=False).rake(MARGINS)
    for op, kw in RAKED_CALLS:
        _same(getattr(memory, op)(**kw), getattr(streamed, op)(**kw))
    _same(memory.subset(df.job == "self").mean("x", by="d"), streamed.subset(pl.col("job") == "self").mean("x", by="d"))
    # Raked to its margins (to R's epsilon of 1 in a count), job's shares are the
    # targets' and have next to no sampling variance.
    shares = streamed.mean("job").to_pandas().set_index("level")
    assert_allclose(shares.estimate[["platform", "contract", "self"]], np.array([20, 30, 26]) / 76, rtol=1e-4)
    assert shares.se.max() < 1e-3 * streamed.mean("x").se[0]
    assert streamed.spec["weighting"] == ["rake"]


def test_dask_raking_on_a_local_cluster_matches_memory(df):
    dd = pytest.importorskip("dask.dataframe")
    distributed = pytest.importorskip("dask.distributed")
    memory = ssc.Design(df, ids="psu", strata="h", weights="w").rake(MARGINS)
    with distributed.LocalCluster(n_workers=2, processes=False, dashboard_address=":0") as cluster, \
            distributed.Client(cluster):
        streamed = ssc.Design(dd.from_pandas(df, npartitions=5), ids="psu", strata="h", weights="w").rake(MARGINS)
        for op, kw in RAKED_CALLS:
            _same(getattr(memory, op)(**kw), getattr(streamed, op)(**kw))


def test_streamed_rake_refuses_bad_margins(df, lazy):
    streamed = ssc.Design(lazy, ids="psu", strata="h", weights="w", progress=False)
    with pytest.raises(ssc.CalibrationError, match="job = self"):
        streamed.rake([("job", {"platform": 20_000, "contract": 30_000})])
    with pytest.raises(ssc.CalibrationError, match="margins disagree"):
        streamed.rake([("job", {"platform": 1, "contract": 1, "self": 1}), MARGINS[1]])
    with pytest.raises(ssc.ColumnError, match="'nope'"):
        streamed.rake([("nope", {"a": 1})])
    raked = streamed.rake(MARGINS)
    with pytest.raises(ssc.DesignError, match="raked already"):
        raked.rake(MARGINS)
    with pytest.raises(ssc.DesignError, match="GLM on a raked streamed design"):
        raked.glm("y ~ x")


def test_logical_and_categorical_outcomes_match_memory(df):
    """Factor outcomes keep their own values as levels (a logical is not matched as text)."""
    data = df.assign(high=df.x > 2)
    memory = ssc.Design(data, ids="psu", strata="h", weights="w")
    lazy = pl.from_pandas(data).with_columns(pl.col("job").cast(pl.Categorical)).lazy()
    streamed = ssc.Design(lazy, ids="psu", strata="h", weights="w", progress=False)
    _same(memory.mean(["high", "job"], by="d"), streamed.mean(["high", "job"], by="d"))


def test_domains_and_levels_come_from_the_estimating_pass(df, lazy):
    # No pass over the data only to find the by levels or a factor's levels: once the
    # design is built, an estimate reads the data once (the levels travel with the sums).
    dd = pytest.importorskip("dask.dataframe")
    memory = ssc.Design(df, ids="psu", strata="h", weights="w")
    for data in (lazy, dd.from_pandas(df, npartitions=7)):
        streamed = ssc.Design(data, ids="psu", strata="h", weights="w", progress=False)
        passes = []
        reduce_batches = streamed.reduce_batches
        streamed.reduce_batches = lambda *a, **k: passes.append(1) or reduce_batches(*a, **k)
        streamed._unique = None  # a separate pass for the levels would fail here
        _same(memory.mean("job", by=["d", "h"]), streamed.mean("job", by=["d", "h"]))
        assert passes == [1]


def test_dask_partition_sums_are_combined_in_a_tree_on_the_workers(df):
    # Seven partitions are combined pairwise in a fixed tree (6 combinations): the client
    # receives one combined table, not one per partition, and the digits are the same run
    # after run.
    dd = pytest.importorskip("dask.dataframe")
    streamed = ssc.Design(dd.from_pandas(df, npartitions=7), ids="psu", strata="h", weights="w", progress=False)
    pairs = []

    def combine(a, b):
        pairs.append((a, b))
        return a + b

    total = streamed.reduce_batches(["w"], lambda batch: float(batch["w"].sum()), combine)
    assert len(pairs) == 6
    assert total == pytest.approx(float(df["w"].sum()), rel=1e-12)
    first = streamed.mean("y", by="d", na_rm=True).to_pandas()
    again = streamed.mean("y", by="d", na_rm=True).to_pandas()
    pd.testing.assert_frame_equal(first, again, check_exact=True)
