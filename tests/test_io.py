"""read_survey: Stata, SPSS, CSV and parquet, with value labels as categoricals and
variable labels shown under results."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pytest
from numpy.testing import assert_allclose

import sscoverage as ssc

pyreadstat = pytest.importorskip("pyreadstat")

LABELS = {"sex": "Sex of respondent", "covered": "Has a basic pension"}
VALUE_LABELS = {"sex": {1: "male", 2: "female"}, "age": {99: "refused"}}


@pytest.fixture
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(4)
    n = 60
    return pd.DataFrame({
        "stratum": np.repeat([1, 2, 3], n // 3),
        "psu": np.repeat(np.arange(12), n // 12),
        "w": rng.uniform(1, 3, n),
        "sex": rng.choice([2, 1], n),
        "age": np.where(rng.random(n) < 0.1, 99, rng.integers(20, 60, n)),
        "covered": rng.integers(0, 2, n).astype(float),
    })


@pytest.mark.parametrize("suffix,writer", [("dta", "write_dta"), ("sav", "write_sav"), ("zsav", "write_sav")])
def test_labelled_files(tmp_path, frame, suffix, writer):
    path = tmp_path / f"survey.{suffix}"
    getattr(pyreadstat, writer)(frame, str(path), column_labels=LABELS, variable_value_labels=VALUE_LABELS,
                                **({"compress": True} if suffix == "zsav" else {}))
    df = ssc.read_survey(path)
    # Fully labelled: a categorical, levels in code order; labelled in part: numbers.
    assert df["sex"].cat.categories.tolist() == ["male", "female"]
    assert (df["sex"] == "male").tolist() == (frame["sex"] == 1).tolist()
    assert_allclose(df["age"], frame["age"])
    assert df.attrs["variable_labels"] == LABELS
    assert df.attrs["value_labels"]["age"] == {99: "refused"}
    raw = ssc.read_survey(path, value_labels=False)
    assert_allclose(raw["sex"], frame["sex"])

    design = ssc.Design(df, ids="psu", strata="stratum", weights="w", nest=True)
    est = design.mean("covered", by="sex")
    assert est.table["sex"].tolist() == ["male", "female"]
    assert "sex: Sex of respondent" in repr(est) and "covered: Has a basic pension" in repr(est)
    assert "Sex of respondent" in est._repr_html_()


def test_columns_and_unknown_columns(tmp_path, frame):
    path = tmp_path / "survey.dta"
    pyreadstat.write_dta(frame, str(path))
    assert ssc.read_survey(path, columns=["psu", "w"]).columns.tolist() == ["psu", "w"]
    with pytest.raises(ssc.ColumnError, match="'nope'"):
        ssc.read_survey(path, columns=["psu", "nope"])


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_csv_and_parquet(tmp_path, frame, suffix):
    path = tmp_path / f"survey.{suffix}"
    levels = ["male", "female"]  # not sorted: the file's order must survive
    labelled = frame.assign(sex=pd.Categorical(frame["sex"].map({1: "male", 2: "female"}), categories=levels))
    pl.from_pandas(frame).write_csv(path) if suffix == "csv" else labelled.to_parquet(path)
    df = ssc.read_survey(path)
    assert df.shape == frame.shape
    assert_allclose(df["w"], frame["w"])
    if suffix == "parquet":  # parquet keeps the categorical and its level order
        assert df["sex"].cat.categories.tolist() == levels
    a = ssc.Design(df, ids="psu", strata="stratum", weights="w", nest=True).mean("covered")
    b = ssc.Design(frame, ids="psu", strata="stratum", weights="w", nest=True).mean("covered")
    assert_allclose(a.estimate, b.estimate, rtol=1e-15)
    assert ssc.read_survey(path, columns=["w"]).columns.tolist() == ["w"]
    with pytest.raises(ssc.ColumnError, match="'nope'"):
        ssc.read_survey(path, columns=["w", "nope"])


def test_reader_options(tmp_path, frame):
    # The reader's own options go through `options` (a semicolon-separated CSV).
    path = tmp_path / "survey.csv"
    pl.from_pandas(frame).write_csv(path, separator=";")
    df = ssc.read_survey(path, columns=["w"], options={"separator": ";"})
    assert_allclose(df["w"], frame["w"])


def test_unknown_format(tmp_path):
    with pytest.raises(ssc.SurveyError, match="format"):
        ssc.read_survey(tmp_path / "survey.xlsx")
