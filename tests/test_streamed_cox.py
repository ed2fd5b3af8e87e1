"""Cox regression on streamed designs (a LazyFrame over parquet, batch by batch) gives
the in-memory fit, which tests/test_survival.py checks against R's svycoxph."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pytest
from numpy.testing import assert_allclose

import sscoverage as ssc


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    rng = np.random.default_rng(8)
    n = 12_000
    df = pd.DataFrame({
        "h": rng.integers(0, 5, n),
        "w": rng.uniform(1, 4, n),
        "x": rng.uniform(1, 3, n),
        "income": rng.lognormal(8, 1, n),  # yuan: a column R scales
        "job": rng.choice(["platform", "contract", "self"], n),
        "d": rng.integers(0, 4, n),
    })
    df["psu"] = df.h * 100 + rng.integers(0, 20, n)
    # Whole months, so that many events are tied; a third censored.
    df["months"] = np.ceil(rng.exponential(12 / df.x))
    df["lapsed"] = (rng.uniform(size=n) < 0.65).astype(float)
    df.loc[::97, "months"] = np.nan
    df.loc[::89, "lapsed"] = np.nan
    df.loc[::113, "x"] = np.nan
    return df


@pytest.fixture(scope="module")
def lazy(data, tmp_path_factory) -> pl.LazyFrame:
    path = tmp_path_factory.mktemp("cox") / "cox.parquet"
    pl.from_pandas(data).write_parquet(path, row_group_size=2_500)
    return pl.scan_parquet(path)


def _designs(data, lazy):
    memory = ssc.Design(data, ids="psu", strata="h", weights="w")
    streamed = ssc.Design(lazy, ids="psu", strata="h", weights="w", batch_rows=2_500, progress=False)
    return memory, streamed


def _same_cox(a: ssc.CoxResult, b: ssc.CoxResult) -> None:
    assert b.terms == a.terms
    # 1e-12 relative, or 1e-10 of the standard error: R's stopping rule leaves the
    # coefficients where rounding moves them by ~1e-12 absolute (x * job here), as much
    # as the in-memory fit moves when its rows are permuted.
    assert np.all(np.abs(b.coef - a.coef) <= 1e-12 * np.abs(a.coef) + 1e-10 * a.se), b.coef - a.coef
    for v, w in ((b.vcov, a.vcov), (b.vcov_model, a.vcov_model)):
        assert_allclose(v, w, rtol=1e-10, atol=1e-12 * np.abs(w).max())
    assert_allclose(b.loglik, a.loglik, rtol=1e-14)
    assert (b.n, b.n_events, b.n_removed, b.df_residual, b.iterations) == \
        (a.n, a.n_events, a.n_removed, a.df_residual, a.iterations)


@pytest.mark.parametrize("formula,ties", [
    ("Surv(months, lapsed) ~ x + job", "efron"),
    ("Surv(months, lapsed) ~ x * job + C(d) + income", "efron"),
    ("Surv(months, lapsed) ~ x + job + income", "breslow"),
    ("Surv(months, lapsed) ~ C(d) + x:income", "efron"),
])
def test_lazyframe_cox_matches_memory(data, lazy, formula, ties):
    memory, streamed = _designs(data, lazy)
    a = memory.coxph(formula, ties=ties, na_rm=True)
    b = streamed.coxph(formula, ties=ties, na_rm=True, progress=False)
    _same_cox(a, b)


def test_lazyframe_cox_on_a_subset_and_with_levels(data, lazy):
    memory, streamed = _designs(data, lazy)
    levels = {"job": ["self", "platform", "contract"]}
    a = memory.subset(data.d >= 1).coxph("Surv(months, lapsed) ~ x + job", levels=levels, na_rm=True)
    b = streamed.subset(pl.col("d") >= 1).coxph("Surv(months, lapsed) ~ x + job", levels=levels, na_rm=True,
                                                progress=False)
    assert a.terms == ["x", "jobplatform", "jobcontract"]
    _same_cox(a, b)


def test_boolean_events_and_a_time_before_every_event(data, lazy, tmp_path):
    # Rows censored before the first event time are in no event's risk set: in memory
    # they are walked past; in a batch they fall in no bin.
    df = data.dropna().assign(lapsed=lambda d: d.lapsed == 1)
    df.loc[df.index[:40], ["months", "lapsed"]] = [0.25, False]
    path = tmp_path / "bool.parquet"
    pl.from_pandas(df).write_parquet(path)
    memory = ssc.Design(df, ids="psu", strata="h", weights="w")
    streamed = ssc.Design(pl.scan_parquet(path), ids="psu", strata="h", weights="w", batch_rows=3_000,
                          progress=False)
    _same_cox(memory.coxph("Surv(months, lapsed) ~ x + job"),
              streamed.coxph("Surv(months, lapsed) ~ x + job", progress=False))


def test_streamed_cox_refuses_as_memory_does(data, lazy, tmp_path):
    memory, streamed = _designs(data, lazy)
    formula = "Surv(months, lapsed) ~ x + job"
    for design in (memory, streamed):
        # Rows 0, 97, ... (124) or 0, 89, ... (135) miss the outcome, 2 both (0, 8633): 257;
        # rows 0, 113, ... (107) miss x, 3 of them also the outcome (0, 10057, 10961): 104.
        with pytest.raises(ssc.MissingValueError, match=r"361 rows .*'months/lapsed': 257, 'covariates': 104"):
            design.coxph(formula)
        with pytest.raises(ssc.OptionError, match="ties='exact'"):
            design.coxph(formula, ties="exact")
        with pytest.raises(ssc.OptionError, match="no covariates"):
            design.coxph("Surv(months, lapsed) ~ 1", na_rm=True)
        with pytest.raises(ssc.ColumnError, match="'mnths'"):
            design.coxph("Surv(mnths, lapsed) ~ x", na_rm=True)
    bad = data.assign(months=np.where(data.index == 5, -1.0, data.months), twice=data.x * 2)
    path = tmp_path / "bad.parquet"
    pl.from_pandas(bad).write_parquet(path)
    memory = ssc.Design(bad, ids="psu", strata="h", weights="w")
    streamed = ssc.Design(pl.scan_parquet(path), ids="psu", strata="h", weights="w", progress=False)
    for design in (memory, streamed):
        with pytest.raises(ssc.ColumnError, match="1 negative survival time"):
            design.coxph(formula, na_rm=True)
        ok = design.subset({"column": "months", "op": ">=", "value": 0})
        with pytest.raises(ssc.EstimationError, match="term\\(s\\) twice are aliased"):
            ok.coxph("Surv(months, lapsed) ~ x + twice", na_rm=True)
        with pytest.raises(ssc.EstimationError, match="no events"):
            ok.subset({"column": "lapsed", "op": "==", "value": 0}).coxph(formula, na_rm=True)
    raked = ssc.Design(lazy, ids="psu", strata="h", weights="w", progress=False).rake(
        {"d": {0: 1e4, 1: 1e4, 2: 1e4, 3: 1e4}})
    with pytest.raises(ssc.NotSupportedError, match="raked streamed design"):
        raked.coxph(formula, na_rm=True)


def test_streamed_cox_prints_as_memory(data, lazy):
    memory, streamed = _designs(data, lazy)
    b = streamed.coxph("Surv(months, lapsed) ~ x + job", na_rm=True, progress=False)
    a = memory.coxph("Surv(months, lapsed) ~ x + job", na_rm=True)
    assert repr(b).splitlines()[:2] == repr(a).splitlines()[:2]
    assert "jobself" in b._repr_html_()


def test_an_infinite_time_is_refused_as_it_is_read(data, tmp_path):
    # Wherever the row is (here outside the domain too): the column is read as a whole.
    bad = data.assign(months=np.where(data.index == 7, np.inf, data.months))
    path = tmp_path / "inf.parquet"
    pl.from_pandas(bad).write_parquet(path)
    memory = ssc.Design(bad, ids="psu", strata="h", weights="w")
    streamed = ssc.Design(pl.scan_parquet(path), ids="psu", strata="h", weights="w", progress=False)
    for design in (memory, streamed):
        for call in (lambda d: d.coxph("Surv(months, lapsed) ~ x", na_rm=True),
                     lambda d: d.km("months", "lapsed", na_rm=True)):
            with pytest.raises(ssc.ColumnError, match=r"'months' \(survival time\) has 1 infinite values"):
                call(design.subset({"column": "d", "op": "==", "value": (int(bad.d[7]) + 1) % 4}))
