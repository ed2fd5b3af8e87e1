"""Reliability flags (NCHS) and cell suppression that survives an attack on the margins."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from scipy import optimize

import sscoverage as ssc
from sscoverage.estimators.proportions import proportion_interval
from sscoverage.results.publication import cell_counts, korn_graubard


@pytest.fixture(scope="module")
def design() -> ssc.Design:
    df = ssc.demo_sample(n_strata=6, psus_per_stratum=4, persons_per_psu=15, seed=7)
    # A rare group: a handful of rows in two strata only.
    rare = (df["stratum"] <= 2) & (np.arange(len(df)) % 9 == 0)
    df["group"] = np.where(rare, "rare", np.where(df["stratum"] % 2 == 0, "even", "odd"))
    return ssc.Design(df, ids="psu", strata="stratum", weights="weight")


# ---------------------------------------------------------------------------- flags
def test_nchs_korn_graubard_is_svycipropbeta_when_the_cap_does_not_bind():
    p, var, n, df = 0.3, 0.0021, 200, 25
    n_eff, low, high = korn_graubard(p, var, n, df, nchs=True)
    assert n_eff < n
    assert_allclose([low, high], proportion_interval("beta", p, var, 0.95, df, n, df), rtol=1e-12)
    # The cap: a variance below the binomial one gives no more than n.
    assert korn_graubard(p, 1e-6, n, df, nchs=True)[0] == n
    assert korn_graubard(0.0, 0.0, 50, 10, nchs=True)[1:] == (0.0, pytest.approx(1 - 0.025 ** (1 / 50)))


def test_domain_df_is_the_degf_of_each_domain(design):
    est = design.mean("covered", by="group")
    flags = est.flags()
    df = design.frame.data
    for label, got in zip(flags["group"], flags["df"]):
        assert got == design.subset(df["group"] == label).degf
    assert flags.loc[flags["group"] == "rare", "df"].item() < 8


def test_flags_of_a_small_rare_domain(design):
    flags = design.mean("covered", by="group").flags().set_index("group")
    rare = flags.loc["rare"]
    assert rare["n"] < 30 and {"n", "df"} <= set(rare["flags"].split(", ")) and rare["suppress"]
    assert flags.loc["odd", "flags"] == "" and not flags.loc["odd", "suppress"]
    # A proportion gets the Korn-Graubard rules, not the CV rule.
    assert not np.isnan(flags["kg_low"]).any()
    assert "cv" not in ", ".join(flags["flags"])


def test_cv_rule_for_other_statistics_and_configurable_thresholds(design):
    est = design.total("covered", by="group")
    flags = est.flags().set_index("group")
    assert np.isnan(flags["kg_low"]).all()
    assert ("cv" in flags.loc["rare", "flags"]) == (flags.loc["rare", "cv"] > 0.3)
    loose = est.flags(ssc.ReliabilityRules(min_n=1, max_cv=10.0, min_df=1)).set_index("group")
    assert loose.loc["rare", "flags"] == ""
    strict = est.flags(ssc.ReliabilityRules(max_cv=0.0)).set_index("group")
    assert strict["flags"].str.contains("cv").all()
    assert design.mean("covered", by="group").flags(proportion=False)["kg_low"].isna().all()


def test_flags_are_printed_with_their_legend(design):
    est = design.mean("covered", by="group")
    text, html = repr(est), est._repr_html_()
    assert "flags" in text and "flag n: fewer than 30 rows" in text
    assert "flag df: fewer than 8 design degrees of freedom" in html
    assert "flags" not in repr(design.mean("covered"))


# ---------------------------------------------------------------------------- suppression
def attack(published: np.ndarray, hidden: np.ndarray, rows: np.ndarray, cols: np.ndarray | None) -> np.ndarray:
    """For each hidden cell, its smallest and largest value consistent with the
    published cells, the row totals, the column totals (if any) and non-negativity."""
    cells = np.argwhere(hidden)
    k = len(cells)
    equations, targets = [], []
    for i in range(hidden.shape[0]):
        equations.append([1.0 if r == i else 0.0 for r, _ in cells])
        targets.append(rows[i] - np.nansum(np.where(hidden[i], 0, published[i])))
    if cols is not None:
        for j in range(hidden.shape[1]):
            equations.append([1.0 if c == j else 0.0 for _, c in cells])
            targets.append(cols[j] - np.nansum(np.where(hidden[:, j], 0, published[:, j])))
    out = np.empty((k, 2))
    for m in range(k):
        for side, sign in enumerate((1.0, -1.0)):
            objective = np.zeros(k)
            objective[m] = sign
            res = optimize.linprog(objective, A_eq=equations, b_eq=targets, bounds=[(0, None)] * k, method="highs")
            assert res.status == 0
            out[m, side] = sign * res.fun
    return out


@pytest.mark.parametrize("seed", range(8))
def test_no_suppressed_cell_can_be_recovered_from_the_margins(seed):
    rng = np.random.default_rng(seed)
    shape = (rng.integers(3, 7), rng.integers(3, 7))
    counts = rng.integers(1, 60, size=shape) * (rng.random(shape) > 0.1)
    values = counts * rng.uniform(50, 150, size=shape)  # weighted totals of the cells
    counts_frame = pd.DataFrame(counts, index=[f"r{i}" for i in range(shape[0])],
                                columns=[f"c{j}" for j in range(shape[1])])
    values_frame = pd.DataFrame(values, index=counts_frame.index, columns=counts_frame.columns)
    out = ssc.suppress(values_frame, counts_frame, min_count=15, margins=True)

    status = out.status.loc[counts_frame.index, counts_frame.columns].to_numpy()
    primary = (counts > 0) & (counts < 15)
    assert ((status == "primary") == primary).all()
    hidden = status != ""
    published = out.table.loc[counts_frame.index, counts_frame.columns].to_numpy()
    assert np.isnan(published[hidden]).all() and not np.isnan(published[~hidden]).any()
    assert_allclose(out.table.loc["Total", "Total"], values.sum())
    if hidden.any():
        rows = out.table.loc[counts_frame.index, "Total"].to_numpy()
        cols = out.table.loc["Total", counts_frame.columns].to_numpy()
        bounds = attack(published, hidden, rows, cols)
        assert (bounds[:, 1] - bounds[:, 0] > 1e-6 * values.max()).all(), "a suppressed cell was recovered"


def test_one_way_table_needs_two_hidden_cells():
    counts = pd.Series([40, 3, 50, 25, 60], index=list("abcde"))
    values = counts * 10.0
    out = ssc.suppress(values, counts, min_count=10, margins=True)
    status = out.status.loc[list("abcde")].iloc[:, 0]  # one column: the table's
    assert status.tolist() == ["", "primary", "", "complementary", ""]  # the smallest other cell
    published = out.table.loc[list("abcde")].to_numpy(dtype=float).ravel()
    hidden = status.to_numpy() != ""
    bounds = attack(published[None, :], hidden[None, :], np.array([values.sum()]), None)
    assert (bounds[:, 1] - bounds[:, 0] > 1).all()


def test_a_cell_that_cannot_be_protected():
    with pytest.raises(ssc.EstimationError, match="cannot be protected"):
        ssc.suppress(pd.Series([5.0, 0.0]), pd.Series([5, 0]), min_count=10)


def test_cells_of_factor_levels_count_their_own_rows(design):
    est = design.total("population_type", by="group")
    df = design.frame.data
    sizes = df.groupby(["group", "population_type"], observed=True).size()
    expected = [sizes.get((g, lv), 0) for g, lv in zip(est.table["group"], est.table["level"])]
    assert cell_counts(est).tolist() == expected
    assert cell_counts(design.mean("covered", by="group")).tolist() == est.table.drop_duplicates("group")["n"].tolist()
    with pytest.raises(ssc.EstimationError, match="suppress them where they were estimated"):
        ssc.load(est.to_json()).suppress()


def test_suppress_estimates_table(design):
    est = design.total("population_type", by="group")
    out = est.suppress(min_count=30)
    counts = pd.Series(cell_counts(est), index=pd.MultiIndex.from_frame(est.table[["group", "level"]]))
    primary = out.status.stack()
    primary = primary[primary == "primary"]
    assert sorted(primary.index) == sorted(k for k, n in counts.items() if 0 < n < 30)
    assert list(out.table.index[:-1]) == list(pd.unique(est.table["group"]))
    assert "Total" in out.table.columns  # totals add: margins by default
    assert (out.status.loc["rare"] != "").any()
    assert "x: suppressed" in repr(out) and "<table" in out._repr_html_()
    means = design.mean("covered", by=["group", "population_type"]).suppress(min_count=20)
    assert "Total" not in means.table.columns
    assert ssc.load(out.to_json()).table.equals(out.table)
