"""Every plot kind draws what the result holds: counts of points, bars, lines and bands."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import LineCollection, PolyCollection
from numpy.testing import assert_allclose

import sscoverage as ssc
from sscoverage.study.coverage import CoverageTable


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def design() -> ssc.Design:
    df = ssc.demo_sample(n_strata=4, psus_per_stratum=5, persons_per_psu=20, seed=3)
    df["sex"] = np.where(np.arange(len(df)) % 2 == 0, "female", "male")
    return ssc.Design(df, ids="psu", strata="stratum", weights="weight")


def points_and_bars(ax) -> tuple[list[int], int]:
    """Points per errorbar container and the number of interval segments."""
    points = [len(c.lines[0].get_xdata()) for c in ax.containers]
    segments = sum(len(seg.get_segments()) for c in ax.containers for seg in c.lines[2])
    return points, segments


def test_domain_estimates_one_point_and_bar_each_sorted(design):
    est = design.mean("covered", by="population_type")
    ax = est.plot()
    points, segments = points_and_bars(ax)
    assert points == [4] and segments == 4
    x = ax.containers[0].lines[0].get_xdata()
    assert_allclose(np.sort(x), x)  # sorted by estimate
    assert sorted(x) == sorted(est.estimate)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert set(labels) == set(est.table["population_type"])


def test_domain_estimates_grouped_by_the_first_by_column(design):
    est = design.mean("covered", by=["sex", "population_type"])
    ax = est.plot()
    points, segments = points_and_bars(ax)
    assert points == [4, 4] and segments == 8
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["female", "male"]
    ax = est.plot(group="population_type", sort=False)
    assert points_and_bars(ax)[0] == [2, 2, 2, 2]


def test_factor_levels_are_labels(design):
    ax = design.mean("population_type").plot()
    assert points_and_bars(ax) == ([4], 4)


def test_unknown_group_column(design):
    with pytest.raises(ValueError, match="group='nope'"):
        design.mean("covered", by="population_type").plot(group="nope")


def test_coverage_table_dots_with_intervals_on_a_percent_axis():
    groups = ("all", "local_urban", "rural_to_urban_migrant")
    schemes = ["basic_pension", "employee_pension", "resident_pension"]
    rows = [{"group": g, "scheme": s, "depth": 0, "estimate": 0.5 + 0.1 * i, "se": 0.01, "ci_low": 0.48 + 0.1 * i,
             "ci_high": 0.52 + 0.1 * i, "n": 100} for g in groups for i, s in enumerate(schemes)]
    table = CoverageTable(title="Coverage", table=pd.DataFrame(rows), groups=groups)
    ax = table.plot()
    points, segments = points_and_bars(ax)
    assert points == [3, 3, 3] and segments == 9
    assert_allclose(ax.containers[0].lines[0].get_xdata(), [0.5, 0.6, 0.7])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["All", "Local urban", "Rural-to-urban migrant"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["Basic pension", "Employee pension",
                                                            "Urban and rural resident pension"]
    assert ax.get_title(loc="left") == "Coverage rate by scheme (95% CI)"
    assert ax.xaxis.get_major_formatter()(0.5, 0) == "50%"


def test_model_coefficients_as_odds_ratios(design):
    fit = design.glm("covered ~ monthly_income + population_type", family="quasibinomial")
    ax = fit.plot()
    points, segments = points_and_bars(ax)
    odds = fit.odds_ratios().iloc[1:]
    assert points == [len(odds)] and segments == len(odds)
    assert_allclose(ax.containers[0].lines[0].get_xdata(), odds["odds_ratio"], rtol=1e-12)
    assert ax.get_xscale() == "log" and ax.get_title(loc="left").startswith("Odds ratios of")


def test_domain_proportions_on_a_percent_axis(design):
    ax = design.mean("population_type").plot()
    assert ax.xaxis.get_major_formatter()(0.25, 0) == "25%"
    assert ax.get_title(loc="left").startswith("mean of population_type")


def test_survival_curves_lines_and_bands():
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"t": rng.exponential(5, 120).round(1), "e": rng.integers(0, 2, 120),
                       "g": rng.choice(["a", "b", "c"], 120), "w": rng.uniform(1, 3, 120)})
    design = ssc.Design(df, weights="w")
    ax = design.km("t", "e", by="g", se=True).plot()
    assert len(ax.get_lines()) == 3
    assert sum(isinstance(c, PolyCollection) for c in ax.collections) == 3
    ax = design.km("t", "e").plot()
    assert len(ax.get_lines()) == 1 and not ax.collections
    line = ax.get_lines()[0]
    assert line.get_ydata()[0] == 1.0 and np.all(np.diff(line.get_ydata()) <= 0)


def test_threshold_profile_line_and_markers(design):
    fit = design.threshold_glm("covered ~ monthly_income", "monthly_income", family="quasibinomial", grid=8)
    ax = fit.plot()
    profile, critical, threshold = ax.get_lines()
    assert len(profile.get_xdata()) == len(fit.profile)
    assert critical.get_ydata()[0] == pytest.approx(fit.critical_value)
    assert threshold.get_xdata()[0] == pytest.approx(fit.threshold)


def test_weights_before_and_after_calibration(design):
    df = design.frame.data
    population = {"(Intercept)": 3.0e7, "population_typelocal_rural": 0.9e7,
                  "population_typeurban_to_urban_migrant": 0.4e7, "population_typerural_to_urban_migrant": 0.4e7}
    calibrated = design.calibrate("~population_type", population)
    ax = calibrated.plot_weights(before=design, bins=12)
    before, after = ax.containers
    assert len(before.patches) == len(after.patches) == 12
    assert sum(p.get_height() for p in before.patches) == len(df)
    assert sum(p.get_height() for p in after.patches) == len(df)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[0].startswith("before (Kish deff") and labels[1].startswith("after (Kish deff")
    ax = design.plot_weights(bins=7, ax=plt.subplots()[1])
    assert [len(c.patches) for c in ax.containers] == [7]


def test_every_plot_returns_its_axes(design):
    _, ax = plt.subplots()
    assert design.mean("covered").plot(ax=ax) is ax
    assert isinstance(design.mean("covered").plot().collections[0], LineCollection)
