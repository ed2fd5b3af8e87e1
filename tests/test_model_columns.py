"""The GLM's model columns assembled by the core from the formula's variables equal
formulaic's model matrix value for value (the columns R's model.matrix gives)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from formulaic import model_matrix

import sscoverage as ssc
from sscoverage.models.glm import ColumnPlan, ModelFrame


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    n = 400
    return pd.DataFrame({
        "y": rng.random(n),
        "x": rng.normal(size=n),
        "z": rng.uniform(-3, 3, n),
        "u": rng.lognormal(size=n),
        "a": pd.Categorical(rng.choice(["p", "q", "r"], n), categories=["p", "q", "r"]),
        "b": pd.Categorical(rng.choice(["u", "v", "w", "t"], n), categories=["u", "v", "w", "t"]),
    })


PLAIN = [
    "y ~ x + a",
    "y ~ x * a",
    "y ~ a:b",
    "y ~ x + a:b + x:a",
    "y ~ x:z:u",
    "y ~ 0 + a",
    "y ~ a * b * x",
    "y ~ b + z - 1",
    "y ~ 1",
    "y ~ x + C(b)",
]


@pytest.mark.parametrize("formula", PLAIN)
def test_plain_formula_columns_equal_formulaic(data: pd.DataFrame, formula: str) -> None:
    dense = model_matrix(formula, data)
    # The plan is read from a spec built on one row, as ModelFrame does.
    plan = ColumnPlan.of(model_matrix(formula, data.iloc[:1]).rhs.model_spec, data)
    assert plan is not None
    columns = plan.build(data)
    assert (columns.n, columns.p) == dense.rhs.shape
    np.testing.assert_array_equal(columns.dense(), dense.rhs.to_numpy())


@pytest.mark.parametrize("formula", ["y ~ center(x) + a", "y ~ I(x * 2)", "y ~ C(a, contr.sum)", "y ~ C(b, levels=['v', 'u', 'w', 't'])"])
def test_other_terms_are_left_to_formulaic(data: pd.DataFrame, formula: str) -> None:
    assert ColumnPlan.of(model_matrix(formula, data).rhs.model_spec, data) is None


@pytest.mark.parametrize("formula", ["y ~ x * a + b", "y ~ log(u) + a", "y ~ I(x > 0) + z", "y ~ poly(x, 2) + a",
                                     "y ~ scale(z)"])
def test_model_frame_matrix_is_formulaics(data: pd.DataFrame, formula: str) -> None:
    design = ssc.Design(data.assign(w=1.0 + np.arange(len(data)) % 3), weights="w")
    with warnings.catch_warnings():
        # A transform that learns from the rows is never evaluated on a few of them.
        warnings.simplefilter("error")
        model = ModelFrame(design, formula, "gaussian", {})
    np.testing.assert_array_equal(model.x, model_matrix(formula, data).rhs.to_numpy())
    np.testing.assert_array_equal(model.y, data["y"].to_numpy())


def test_model_columns_refuse_bad_layouts() -> None:
    from sscoverage import _core

    x = np.array([1.0, 2.0, 3.0])
    with pytest.raises(ssc.SurveyError, match="names array 1 of 1"):
        _core.ModelColumns(3, [x], [], [[(1, None)]])
    with pytest.raises(ssc.SurveyError, match="missing or infinite"):
        _core.ModelColumns(3, [np.array([1.0, np.inf, 0.0])], [], [[(0, None)]])


@pytest.mark.parametrize("formula", ["y ~ x + C(k)", "y ~ x * C(k)", "y ~ k + C(k)", "y ~ C(k):a"])
def test_coded_numbers_are_formulaics_c(data: pd.DataFrame, formula: str) -> None:
    # Whole numbers used as C(k) are coded from the frame's cached codes; the matrix and
    # the names are formulaic's C() of the numbers, also on a subset without k = 2 and
    # with a missing x (the levels left are those of the fitted rows).
    rng = np.random.default_rng(5)
    frame = data.assign(k=rng.integers(0, 4, len(data)), w=1.0)
    frame.loc[3, "x"] = np.nan
    design = ssc.Design(frame, weights="w")
    for d, rows in ((design, frame), (design.subset(frame["k"] != 2), frame[frame["k"] != 2])):
        model = ModelFrame(d, formula, "gaussian", {})
        want = model_matrix(formula, rows.assign(k=rows["k"].astype(float)))  # drops rows with a missing value
        assert len(model.terms) == want.rhs.shape[1]
        np.testing.assert_array_equal(model.x, want.rhs.to_numpy())


def test_coded_terms_are_named_as_r_names_factor_levels(data: pd.DataFrame) -> None:
    # R: names(coef(svyglm(y ~ x + factor(k) + factor(k):a, design))) gives
    # "factor(k)1", "factor(k)3", ..., "factor(k)1:aq": the level run on, whole numbers
    # without decimals; C(k) is the package's factor(k).
    frame = data.assign(k=np.tile([0, 1, 3], len(data))[: len(data)], w=1.0)
    model = ModelFrame(ssc.Design(frame, weights="w"), "y ~ x + C(k) + C(k):a", "gaussian", {})
    assert model.terms[:4] == ["(Intercept)", "x", "C(k)1", "C(k)3"]
    assert "C(k)1:aq" in model.terms


@pytest.mark.parametrize("formula", ["y ~ x + a", "y ~ x * C(k)", "y ~ 0 + b:a", "y ~ z - 1"])
def test_plain_formulas_never_build_formulaics_matrix(data: pd.DataFrame, formula: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    # The core assembles them: formulaic only reads the spec on one row.
    from sscoverage.models import glm

    rows: list[int] = []

    def recorded(text: str, frame: pd.DataFrame, **kw: object) -> object:
        rows.append(len(frame))
        return model_matrix(text, frame, **kw)

    monkeypatch.setattr(glm, "model_matrix", recorded)
    frame = data.assign(k=np.arange(len(data)) % 3, w=1.0)
    ModelFrame(ssc.Design(frame, weights="w"), formula, "gaussian", {})
    assert rows == [1]


@pytest.mark.parametrize("formula", ["y ~ x + pmax(x - 0.25, 0)", "y ~ a + I(z < -1.5)",
                                     "y ~ x * a + pmax(x - 1e-05, 0)", "y ~ pmax(u - 2.0, 0):a"])
def test_threshold_terms_are_made_by_the_core_as_formulaic_makes_them(data: pd.DataFrame, formula: str) -> None:
    # The threshold model's terms (a kink, a step at a number) are assembled by the core
    # from the variable, value for value formulaic's columns (pmax as R's, I() of a
    # comparison as 0/1).
    from sscoverage.models.glm import CONTEXT, threshold_term, threshold_term_text

    dense = model_matrix(formula, data, context=CONTEXT)
    plan = ColumnPlan.of(model_matrix(formula, data.iloc[:1], context=CONTEXT).rhs.model_spec, data)
    assert plan is not None
    np.testing.assert_array_equal(plan.build(data).dense(), dense.rhs.to_numpy())
    # The threshold model writes its terms as the model frame reads them.
    for kind, at in (("slope", -1.5), ("level", 1e-05), ("slope", 12345678.125)):
        assert threshold_term(threshold_term_text("x", kind, at)) == ("x", kind, at)
