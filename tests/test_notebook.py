"""The worked example in docs/ runs: every code cell, in order, in one namespace (as a
kernel would), with matplotlib drawing off screen.  No Jupyter is needed.  Its key numbers
are then checked against plain numpy over the survey's columns."""

from __future__ import annotations

import json
from pathlib import Path

import sys

import matplotlib
import numpy as np
import pandas as pd
from numpy.testing import assert_allclose

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _oracle  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "docs" / "worked-example.ipynb"


def run_notebook() -> dict[str, object]:
    notebook = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    cells = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    assert cells and all(not c["outputs"] for c in cells), "commit the notebook without outputs"
    namespace: dict[str, object] = {"__name__": "__main__"}
    for number, cell in enumerate(cells, 1):
        source = "".join(cell["source"])
        exec(compile(source, f"{NOTEBOOK.name}, code cell {number}", "exec"), namespace)
    plt.close("all")
    return namespace


def _logistic(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted logistic regression by Newton's method (svyglm's point estimates)."""
    beta = np.zeros(x.shape[1])
    for _ in range(50):
        mu = 1 / (1 + np.exp(-x @ beta))
        step = np.linalg.solve(x.T @ (x * (w * mu * (1 - mu))[:, None]), x.T @ (w * (y - mu)))
        beta += step
        if np.abs(step).max() < 1e-12:
            break
    return beta


def test_worked_example_runs_and_its_numbers_are_right():
    ns = run_notebook()
    df: pd.DataFrame = ns["df"]
    w, stratum, county = df["weight"].to_numpy(), df["province"].to_numpy(), df["county"].to_numpy()
    design = ns["design"]
    n_psu = df.groupby(["province", "county"]).ngroups
    assert (design.n_rows, design.n_psu, design.n_strata) == (len(df), n_psu, df["province"].nunique())
    assert design.degf == n_psu - df["province"].nunique()

    # Cell 5: pension lapse by population type and sex, each domain by its labels.
    lapse = ns["lapse"].to_pandas()
    y = ns["indicators"]["lapse_pension"].to_numpy(float)
    assert len(lapse) == df.groupby(["population_type", "sex"], observed=True).ngroups
    for row in lapse.itertuples():
        inside = ((df["population_type"] == row.population_type) & (df["sex"] == row.sex)).to_numpy()
        est, se = _oracle.domain_mean(y, w, stratum, county, inside)
        assert_allclose([row.estimate, row.se], [est, se], rtol=1e-10, err_msg=str(row))

    # Cell 11: the lapse model of platform workers (point estimates of a weighted fit).
    platform = ns["platform"]
    sub = df[platform]
    fit = ns["fit"]
    columns = {"(Intercept)": np.ones(len(sub)), "log(monthly_income)": np.log(sub["monthly_income"]),
               "age": sub["age"], "schooling_years": sub["schooling_years"]}
    hukou = [t for t in fit.terms if t.startswith("hukou_type")]
    assert len(hukou) == sub["hukou_type"].nunique() - 1
    columns.update({t: (sub["hukou_type"] == t.removeprefix("hukou_type")).to_numpy(float) for t in hukou})
    x = np.column_stack([columns[t] for t in fit.terms])
    assert_allclose(fit.coef, _logistic(x, y[platform], w[platform]), rtol=1e-7)

    # Cell 14: calibrated weights reproduce the population counts they were given.
    calibrated = ns["calibrated"].weights
    counts = ns["counts"]
    for level, count in counts.items():
        assert_allclose(calibrated[(df["population_type"] == level).to_numpy()].sum(), count, rtol=1e-9)

    # Cell 15: estimated counts by province and population type.
    counts_by = ns["counts_by"].to_pandas()
    want = df.groupby(["province", "population_type"], observed=True)["weight"].sum()
    assert len(counts_by) == df["province"].nunique() * df["population_type"].nunique()
    for row in counts_by.itertuples():
        assert_allclose(row.estimate, want.get((row.province, row.level), 0.0), rtol=1e-12, err_msg=str(row))


def test_readme_links_the_worked_example():
    assert "docs/worked-example.ipynb" in (ROOT / "README.md").read_text(encoding="utf-8")
