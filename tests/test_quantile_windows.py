"""Quantiles read from windows of the distribution (R's step rules, math and school):
the same bits as sorting all of a domain's rows, on random cases and through every
interval, and R's numbers on a sample large enough to take the windows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import sscoverage as ssc
from sscoverage import _core
from sscoverage._frames import OUTSIDE
from sscoverage.estimators import quantile as quantile_module

#: `min_window_rows` that reads every domain a window can read, and that reads none.
WINDOWS, SORTED = 0, 2**62


def _case(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, np.ndarray]:
    """Values, weights, domain codes (some rows in none), domains and levels of one
    random case: ties of every size, zero weights, and weights whose sums are exact
    (integers), R's repeated sum (one weight) or R's only to a bound (any; tenths, whose
    cumulative sums meet half the total where the last bit of R's long double sums
    decides)."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(200, 20_000))
    values = [rng.normal(0, 1, n), np.round(rng.lognormal(5, 1, n), 0), rng.integers(0, 4, n).astype(float),
              np.round(rng.uniform(-50, 50, n), 1)][seed % 4]
    weights = [rng.uniform(0.5, 40, n), rng.integers(0, 6, n).astype(float), np.full(n, 1 / 3),
               np.round(rng.uniform(1, 3, n), 2), rng.choice([0.1, 0.2, 0.3], n)][(seed // 4) % 5]
    weights[rng.random(n) < 0.05] = 0.0
    n_dom = int(rng.integers(1, 5))
    codes = rng.integers(0, n_dom, n).astype(np.uint32)
    codes[rng.random(n) < 0.1] = OUTSIDE
    # Levels anywhere, at 0 and 1, and on the steps of the unweighted positions.
    levels = np.column_stack([rng.random((n_dom, 6)), np.zeros(n_dom), np.ones(n_dom),
                              np.tile(np.array([0.25, 0.5, 0.75]), (n_dom, 1)),
                              rng.integers(1, n, (n_dom, 3)) / n])
    levels[0, 0] = np.nan
    return values, weights, codes, n_dom, levels


@pytest.mark.parametrize("rule", ["math", "school"])
def test_windows_give_the_bits_of_all_rows_sorted(rule):
    for seed in range(40):
        values, weights, codes, n_dom, levels = _case(seed)
        design = ssc.Design(pd.DataFrame({"w": weights}), weights="w").core
        got = _core.DomainQuantiles(design, values, codes, n_dom, rule, WINDOWS).at(levels)
        want = _core.DomainQuantiles(design, values, codes, n_dom, rule, SORTED).at(levels)
        assert_array_equal(got.view(np.uint64), want.view(np.uint64), err_msg=f"seed {seed}")


@pytest.fixture
def sample() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    n = 12_000
    df = pd.DataFrame({"x": np.round(rng.lognormal(6, 0.8, n), 0), "y": rng.normal(0, 1, n),
                       "w": rng.uniform(1, 30, n), "psu": rng.integers(0, 48, n),
                       "g": rng.choice(["a", "b", "c"], n)})
    df["h"] = df["psu"] % 6
    df.loc[rng.random(n) < 0.03, "x"] = np.nan
    df.loc[rng.random(n) < 0.03, "w"] = 0.0
    return df


def _windows_and_sorted(monkeypatch, call):
    """`call()` with every domain read from windows, and with every domain sorted."""
    out = []
    for rows in (WINDOWS, SORTED):
        monkeypatch.setattr(quantile_module, "_distributions",
                            lambda design, x, codes, n_domains, qrule, progress, rows=rows:
                            _core.DomainQuantiles(design.core, x, codes, n_domains, qrule, rows))
        out.append(call().table[["estimate", "ci_low", "ci_high", "se"]].to_numpy())
    return out


@pytest.mark.parametrize("interval", ["mean", "beta", "xlogit", "asin", "score"])
@pytest.mark.parametrize("rule", ["math", "school"])
def test_every_interval_the_same_bits(monkeypatch, sample, interval, rule):
    """Estimates and limits (Woodruff's at p -+ z se, or the score test's) by domain, of
    a subset, with missing values left out."""
    design = ssc.Design(sample, ids="psu", strata="h", weights="w")
    big = design.subset(sample["y"].to_numpy() > -1.5)
    for d, by in ((design, None), (design, "g"), (big, "g")):
        got, want = _windows_and_sorted(monkeypatch, lambda: d.quantile(
            "x", [0.1, 0.5, 0.73, 0.9], by=by, qrule=rule, interval_type=interval, na_rm=True))
        assert_array_equal(got, want)


def test_replicate_designs_the_same_bits(monkeypatch, sample):
    reps = ssc.Design(sample.dropna(), ids="psu", strata="h", weights="w").as_replicates("JKn")
    for interval in ("mean", "quantile"):
        got, want = _windows_and_sorted(monkeypatch, lambda: reps.quantile(
            "x", [0.25, 0.5], by="g", interval_type=interval))
        assert_array_equal(got, want)


def test_r_numbers_from_windows():
    """15,000 rows (5,000 a domain: read from windows by default), 1,009 values tied
    about 15 times each, weights whose sums round.  R 4.2, survey 4.1.1:

        i <- 0:14999
        df <- data.frame(x = ((i * 7919L) %% 1009L) / 4, w = 1 + ((i * 104729L) %% 997L) / 37,
                         psu = i %% 60L, h = (i %% 60L) %% 6L, g = i %% 3L)
        d <- svydesign(ids = ~psu, strata = ~h, weights = ~w, data = df)
        q <- svyquantile(~x, d, c(0.1, 0.5, 0.9))     # q$x: quantile, ci.2.5, ci.97.5; SE(q)
        b <- svyby(~x, ~g, d, svyquantile, quantiles = c(0.25, 0.75), qrule = "school",
                   interval.type = "beta", vartype = c("se", "ci"))
        # printed with sprintf("%.17g")
    """
    i = np.arange(15_000)
    df = pd.DataFrame({"x": (i * 7919 % 1009) / 4, "w": 1 + (i * 104729 % 997) / 37, "psu": i % 60,
                       "h": i % 60 % 6, "g": i % 3})
    design = ssc.Design(df, ids="psu", strata="h", weights="w")
    t = design.quantile("x", [0.1, 0.5, 0.9]).table
    assert t.estimate.tolist() == [25, 126, 227]
    assert t.ci_low.tolist() == [24, 124.75, 226.25]
    assert t.ci_high.tolist() == [26.25, 127.5, 228]
    assert_allclose(t.se, [0.56113103997235547, 0.68582682663287886, 0.43643525331183197], rtol=1e-13)
    b = design.quantile("x", [0.25, 0.75], by="g", qrule="school", interval_type="beta").table
    # Rows: g = 0, 1, 2, each at 0.25 then 0.75.
    assert b.estimate.tolist() == [63, 189.25, 62.75, 188.75, 63.25, 189.25]
    assert b.ci_low.tolist() == [61.5, 187.5, 60.75, 187.25, 61.5, 187.75]
    assert b.ci_high.tolist() == [64.75, 191, 64.75, 190.5, 65.25, 191]
    assert_allclose(b.se, [0.77346991886170335, 0.83296760492798816, 0.95196297706055788, 0.77346991886170335,
                           0.89246529099427307, 0.77346991886170335], rtol=1e-13)


def test_where_r_s_sums_lose_weight_the_rows_are_sorted():
    """R's running sum in long double drops each weight of 3 2^-66 added to 1 (under half
    its last bit), so its cumulative weight stays 1 over the tiny rows; exactly, it
    passes 1 + 2^-53 and rounds up after about 2,731 of them.  The median (half of R's
    total 2) is where R's cumulative weight is last 1: the last tiny row's value, 5,000
    (math).  Sums to a bound cannot tell, so the domain's rows are sorted."""
    m = 5000
    values = np.arange(m + 2, dtype=float)
    weights = np.r_[1.0, np.full(m, 3 * 2.0**-66), 1.0]
    # Row order: the two rows of weight 1 first, so R's total is 2 exactly.
    order = np.r_[0, m + 1, np.arange(1, m + 1)]
    design = ssc.Design(pd.DataFrame({"w": weights[order]}), weights="w").core
    codes = np.zeros(m + 2, np.uint32)
    for rows in (WINDOWS, SORTED):
        q = _core.DomainQuantiles(design, values[order], codes, 1, "math", rows)
        assert q.weight_sum[0] == 2.0
        assert q.at(np.array([[0.5]]))[0, 0] == m
