"""Means, totals, ratios and domains against hand formulas, the numpy oracle and each other."""

from __future__ import annotations


import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from numpy.testing import assert_allclose
from scipy import stats

import sscoverage as ssc

import _oracle
from _threads import outputs_by_threads


def stratified_sample(seed: int, n_strata: int = 5, psus: int = 4, per_psu: int = 6) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = n_strata * psus * per_psu
    return pd.DataFrame(
        {
            "stratum": np.repeat(np.arange(n_strata), psus * per_psu),
            "psu": np.repeat(np.arange(n_strata * psus), per_psu),
            "w": np.repeat(rng.uniform(1, 5, n_strata * psus), per_psu) * rng.uniform(0.8, 1.2, n),
            "y": rng.normal(10, 3, n),
            "x": rng.uniform(1, 2, n),
            "dom": rng.integers(0, 3, n),
            "popsize": np.repeat(rng.integers(psus, 3 * psus, n_strata), psus * per_psu).astype(float),
        }
    )


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("with_fpc", [False, True])
def test_mean_total_ratio_match_oracle(seed, with_fpc):
    df = stratified_sample(seed)
    design = ssc.Design(df, ids="psu", strata="stratum", weights="w", fpc="popsize" if with_fpc else None)
    s, p = df.stratum.to_numpy(), df.psu.to_numpy()
    pop = df.groupby("stratum").popsize.first().to_dict() if with_fpc else None
    args = (df.w.to_numpy(), s, p)
    everyone = np.ones(len(df), bool)
    mean = design.mean("y")
    assert_allclose([mean.estimate[0], mean.se[0]], _oracle.domain_mean(df.y.to_numpy(), *args, everyone, pop), rtol=1e-12)
    total = design.total("y")
    assert_allclose([total.estimate[0], total.se[0]], _oracle.domain_total(df.y.to_numpy(), *args, everyone, pop), rtol=1e-12)
    r = design.ratio("y", "x")
    assert_allclose([r.estimate[0], r.se[0]], _oracle.ratio(df.y.to_numpy(), df.x.to_numpy(), *args, pop), rtol=1e-12)
    by = design.mean("y", by="dom").to_pandas()
    for _, row in by.iterrows():
        want = _oracle.domain_mean(df.y.to_numpy(), *args, (df.dom == row["dom"]).to_numpy(), pop)
        assert_allclose([row["estimate"], row["se"]], want, rtol=1e-12)


def test_srs_with_replacement_hand_formula():
    """One row per PSU, no strata, no fpc: SE^2 = n/(n-1) sum w^2 (y - ybar)^2 / (sum w)^2."""
    y = np.array([3.0, 7.0, 8.0, 1.0, 6.0])
    w = np.array([2.0, 1.0, 1.5, 3.0, 2.5])
    design = ssc.Design(pd.DataFrame({"y": y, "w": w}), weights="w")
    ybar = (w * y).sum() / w.sum()
    se = np.sqrt(5 / 4 * ((w * (y - ybar)) ** 2).sum()) / w.sum()
    res = design.mean("y")
    assert_allclose(res.estimate[0], ybar, rtol=1e-14)
    assert_allclose(res.se[0], se, rtol=1e-14)
    wy = w * y
    assert_allclose(design.total("y").se[0], np.sqrt(5 / 4 * ((wy - wy.mean()) ** 2).sum()), rtol=1e-14)


def test_two_stage_hand_formula():
    """Two-stage SRS without replacement (Cochran 1977, eq. 11.24) for a total:
    V = N^2 (1-f1) s1^2/n + (N/n) sum_i M_i^2 (1-f2i) s2i^2/m_i."""
    df = pd.DataFrame(
        {
            "psu": [1, 1, 1, 2, 2, 3, 3, 3],
            "unit": [1, 2, 3, 1, 2, 1, 2, 3],
            "y": [4.0, 6.0, 5.0, 9.0, 7.0, 2.0, 3.0, 1.0],
            "N": 10.0,
            "M": [6.0, 6.0, 6.0, 4.0, 4.0, 5.0, 5.0, 5.0],
        }
    )
    design = ssc.Design(df, ids=["psu", "unit"], fpc=["N", "M"])
    n, N = 3, 10
    groups = [g for _, g in df.groupby("psu")]
    totals = np.array([g.M.iloc[0] * g.y.mean() for g in groups])
    est = N / n * totals.sum()
    v1 = N**2 * (1 - n / N) * totals.var(ddof=1) / n
    v2 = N / n * sum(g.M.iloc[0] ** 2 * (1 - len(g) / g.M.iloc[0]) * g.y.var(ddof=1) / len(g) for g in groups)
    res = design.total("y")
    assert_allclose(res.estimate[0], est, rtol=1e-13)
    assert_allclose(res.se[0], np.sqrt(v1 + v2), rtol=1e-13)


def test_domain_routes_agree():
    """As R's tests/domain.R: subset mean = by mean = ratio of y*1[d] to 1[d], with equal SEs."""
    df = stratified_sample(11)
    df["in_d"] = (df.dom == 1).astype(float)
    df["y_d"] = df.y * df.in_d
    design = ssc.Design(df, ids="psu", strata="stratum", weights="w")
    sub = design.subset(df.dom == 1).mean("y")
    by = design.mean("y", by="dom").to_pandas().set_index("dom").loc[1]
    rat = design.ratio("y_d", "in_d")
    assert_allclose([sub.estimate[0], sub.se[0]], [by["estimate"], by["se"]], rtol=1e-13)
    assert_allclose([sub.estimate[0], sub.se[0]], [rat.estimate[0], rat.se[0]], rtol=1e-12)
    # A domain total equals the total of y * 1[d] over the whole design.
    assert_allclose(design.subset(df.dom == 1).total("y").se[0], design.total("y_d").se[0], rtol=1e-13)


def test_invariances():
    df = stratified_sample(3)
    design = ssc.Design(df, ids="psu", strata="stratum", weights="w")
    shuffled = df.sample(frac=1, random_state=0).reset_index(drop=True)
    again = ssc.Design(shuffled, ids="psu", strata="stratum", weights="w")
    assert_allclose(design.mean("y", by="dom").se, again.mean("y", by="dom").se, rtol=1e-12)
    scaled = df.assign(w=df.w * 7.5)
    d7 = ssc.Design(scaled, ids="psu", strata="stratum", weights="w")
    assert_allclose(d7.mean("y").estimate, design.mean("y").estimate, rtol=1e-13)
    assert_allclose(d7.mean("y").se, design.mean("y").se, rtol=1e-12)
    assert_allclose(d7.total("y").estimate, 7.5 * design.total("y").estimate, rtol=1e-13)
    assert_allclose(d7.ratio("y", "x").se, design.ratio("y", "x").se, rtol=1e-12)
    assert (design.mean(["y", "x"], by="dom").se >= 0).all()


def test_factor_outcome_gives_proportions_summing_to_one():
    df = stratified_sample(4).assign(kind=lambda d: np.where(d.y > 10, "high", "low"))
    res = ssc.Design(df, ids="psu", strata="stratum", weights="w").mean("kind").to_pandas()
    assert res.level.tolist() == ["high", "low"]
    assert_allclose(res.estimate.sum(), 1.0, rtol=1e-14)
    assert_allclose(res.se[0], res.se[1], rtol=1e-10)


def test_data_frame_kinds_agree():
    df = stratified_sample(5)
    want = ssc.Design(df, ids="psu", strata="stratum", weights="w").mean("y", by="dom").to_pandas()
    for data in (pl.from_pandas(df), pl.from_pandas(df).lazy(), pa.Table.from_pandas(df)):
        got = ssc.Design(data, ids="psu", strata="stratum", weights="w").mean("y", by="dom").to_pandas()
        assert_allclose(got[["estimate", "se"]].to_numpy(), want[["estimate", "se"]].to_numpy(), rtol=1e-14)


def test_confidence_intervals_follow_r():
    """R: confint(x) uses qnorm; confint(x, df=degf(des)) uses qt."""
    df = stratified_sample(6)
    design = ssc.Design(df, ids="psu", strata="stratum", weights="w")
    assert design.degf == 20 - 5
    res = design.mean("y", level=0.9)
    z = stats.norm.ppf(0.95)
    assert_allclose(res.table.ci_low[0], res.estimate[0] - z * res.se[0], rtol=1e-14)
    res = design.mean("y", df="design")
    t = stats.t.ppf(0.975, 15)
    assert_allclose(res.table.ci_high[0], res.estimate[0] + t * res.se[0], rtol=1e-14)
    assert_allclose(res.table.cv[0], res.se[0] / res.estimate[0], rtol=1e-14)


def test_na_rm_counts_rows_and_keeps_the_design():
    df = stratified_sample(7)
    df.loc[[0, 5, 40], "y"] = np.nan
    design = ssc.Design(df, ids="psu", strata="stratum", weights="w")
    res = design.mean("y", na_rm=True)
    assert res.n_removed == 3
    assert res.table.n[0] == len(df) - 3
    assert "3 rows with missing values left out" in repr(res)
    same = design.subset(df.y.notna()).mean("y")
    assert_allclose(res.se, same.se, rtol=1e-14)


def test_results_are_the_same_whatever_the_thread_count():
    """The parallel pass adds chunk sums in a fixed order: identical digits for 1 and 2 threads."""
    code = (
        "import numpy as np, pandas as pd, sscoverage as ssc\n"
        "rng = np.random.default_rng(0); n = 400_000\n"
        "df = pd.DataFrame({'s': rng.integers(0, 10, n), 'w': rng.uniform(1, 3, n),"
        " 'y': rng.normal(size=n), 'd': rng.integers(0, 4, n)})\n"
        "df['p'] = df.s * 100 + rng.integers(0, 50, n)\n"
        "r = ssc.Design(df, ids='p', strata='s', weights='w').mean('y', by='d')\n"
        "print(repr(r.estimate.tolist()), repr(r.se.tolist()))\n"
    )
    outs = outputs_by_threads(code)
    assert outs[0] == outs[1]


def test_result_object_display():
    df = stratified_sample(8)
    res = ssc.Design(df, ids="psu", strata="stratum", weights="w").mean("y", by="dom", deff=True)
    table = res.to_pandas()
    assert list(table.columns) == ["dom", "variable", "level", "estimate", "se", "ci_low", "ci_high", "cv", "deff", "n", "weight_sum"]
    assert len(res) == 3 and res.by == ["dom"]
    assert "Survey mean by dom" in repr(res)
    assert "<table" in res._repr_html_()
    assert res.to_polars().shape == table.shape
    assert_allclose(res.conf_int(level=0.5).ci_low, res.estimate - stats.norm.ppf(0.75) * res.se, rtol=1e-14)


def test_design_is_a_snapshot_of_the_data():
    """As R's svydesign copies its variables, later edits to the user's frame do not
    change a built design's estimates."""
    df = stratified_sample(9)
    design = ssc.Design(df, ids="psu", strata="stratum", weights="w")
    before = design.mean("y", by="dom").to_pandas()
    df.loc[:10, "y"] = 1e6
    df.loc[:10, "dom"] = 0
    after = design.mean("y", by="dom").to_pandas()
    assert_allclose(after[["estimate", "se"]].to_numpy(), before[["estimate", "se"]].to_numpy(), rtol=0)
