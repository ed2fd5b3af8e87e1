"""Bad input raises a clear SurveyError naming the column or stratum and the fix."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import sscoverage as ssc


@pytest.fixture
def df() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    return pd.DataFrame(
        {
            "region": np.repeat(["north", "south", "west"], 8),
            "psu": np.repeat(np.arange(12), 2),
            "w": rng.uniform(1, 3, 24),
            "y": rng.normal(size=24),
            "g": np.tile(["a", "b"], 12),
            "when": pd.date_range("2024-01-01", periods=24),
        }
    )


def design(df, **kw):
    return ssc.Design(df, ids="psu", strata="region", weights="w", **kw)


def test_every_error_is_a_survey_error():
    for cls in (ssc.DesignError, ssc.LonelyPsuError, ssc.ShapeError, ssc.EstimationError,
                ssc.ColumnError, ssc.MissingValueError, ssc.EmptyDomainError):
        assert issubclass(cls, ssc.SurveyError)


def test_missing_and_misspelt_columns(df):
    with pytest.raises(ssc.ColumnError, match=r"'wt' is not in the data.*Did you mean 'w'"):
        ssc.Design(df, ids="psu", weights="wt")
    with pytest.raises(ssc.ColumnError, match=r"'yy' is not in the data.*'y'"):
        design(df).mean("yy")


@pytest.mark.parametrize("bad,match", [
    (np.nan, "'w'.*missing values"),
    (-1.0, "'w'.*negative"),
])
def test_bad_weights(df, bad, match):
    df.loc[3, "w"] = bad
    with pytest.raises(ssc.SurveyError, match=match):
        design(df)


def test_zero_sum_weights(df):
    with pytest.raises(ssc.DesignError, match="weights sum to zero"):
        design(df.assign(w=0.0))


def test_non_numeric_outcome(df):
    with pytest.raises(ssc.ColumnError, match="'when'.*must be numeric"):
        design(df).mean("when")
    with pytest.raises(ssc.ColumnError, match="'g'.*must be numeric"):
        design(df).ratio("g", "y")


def test_mismatched_by_length(df):
    with pytest.raises(ssc.ShapeError, match="by\\[0\\] has 5 values, the data 24 rows"):
        design(df).mean("y", by=np.arange(5))


def test_lonely_psu_names_the_stratum(df):
    lonely = df[~df.psu.isin([9, 10, 11])].copy()  # west keeps PSU 8 only
    with pytest.raises(ssc.LonelyPsuError, match="stratum 'west' has only one PSU.*lonely_psu"):
        design(lonely).mean("y")
    # Each other rule gives a number (R's values are checked by the reference cases).
    for rule in ("remove", "adjust", "average", "certainty"):
        assert np.isfinite(design(lonely, lonely_psu=rule).mean("y").se[0])
    with pytest.raises(ssc.DesignError, match="lonely_psu"):
        design(df, lonely_psu="skip")


def test_empty_domain(df):
    with pytest.raises(ssc.EmptyDomainError, match="no rows"):
        design(df).subset(df.y > 100)
    with pytest.raises(ssc.EmptyDomainError):
        design(df, subset={"column": "g", "op": "==", "value": "zzz"})


def test_fpc_smaller_than_sample(df):
    # The core says which role failed; the message names the user's column of that role.
    with pytest.raises(ssc.DesignError, match=r"fpc.*smaller than the number of sampled PSUs.*fpc=\['N'\]"):
        design(df.assign(N=3.0), fpc="N")
    with pytest.raises(ssc.DesignError, match=r"all population sizes.*or all sampling fractions.*fpc=\['N'\]"):
        design(df.assign(N=np.where(df.region == "north", 0.5, 10.0)), fpc="N")


def test_missing_outcome_without_na_rm(df):
    df.loc[[2, 3], "y"] = np.nan
    with pytest.raises(ssc.MissingValueError, match="'y' has 2 missing values.*na_rm=True"):
        design(df).mean("y")
    assert design(df).mean("y", na_rm=True).n_removed == 2


def test_missing_design_variable(df):
    df.loc[0, "psu"] = np.nan
    with pytest.raises(ssc.MissingValueError, match="'psu' \\(ids\\) has 1 missing"):
        design(df)


def test_clusters_not_nested_in_strata(df):
    df["psu"] = np.tile(np.arange(4), 6)
    with pytest.raises(ssc.DesignError, match=r"nest=True \(columns strata=\['region'\]\)$"):
        design(df)
    assert np.isfinite(design(df, nest=True).mean("y").se[0])


def test_bad_data_type():
    with pytest.raises(TypeError, match="pandas or polars DataFrame"):
        ssc.Design([[1, 2]], weights="w")


def test_no_panic_on_odd_shapes(df):
    with pytest.raises(ssc.SurveyError):
        ssc.Design(df, ids="psu", fpc=["w", "w"])
    with pytest.raises(ssc.SurveyError):
        ssc.Design(df.iloc[:0], weights="w")
    with pytest.raises(ssc.ShapeError):
        ssc.Design(df, weights="w", pps={"method": "ppsmat", "joint_probs": np.ones(3)})


def test_a_zero_denominator_is_named_by_its_domain_labels():
    df = ssc.demo_sample(n_strata=3, psus_per_stratum=3, persons_per_psu=6, seed=7)
    design = ssc.Design(df, ids="psu", strata="stratum", weights="weight")
    z = np.where(df["population_type"] == "local_urban", 0.0, 1.0)
    derived = design.with_columns({"z": z, "s2": df["stratum"] * 10})
    with pytest.raises(ssc.EmptyDomainError, match="zero in the domain population_type = 'local_urban'"):
        derived.ratio("covered", "z", by="population_type")
    with pytest.raises(ssc.EmptyDomainError, match="zero in the domain s2 = 10, population_type = 'local_urban'"):
        derived.ratio("covered", "z", by=["s2", "population_type"])
    with pytest.raises(ssc.EmptyDomainError, match="zero over the design's rows"):
        design.with_columns({"z": 0.0}).ratio("covered", "z")


def test_labels_beyond_int64_keep_their_values():
    # uint64 above 2^63 wrapped to negative labels; floats beyond 2^53 overflowed a cast.
    df = ssc.demo_sample(n_strata=3, psus_per_stratum=3, persons_per_psu=6, seed=7)
    design = ssc.Design(df, ids="psu", strata="stratum", weights="weight")
    half = df.index % 2 == 0
    derived = design.with_columns({"big": np.where(half, 2**63 + 5, 7).astype(np.uint64),
                                   "huge": np.where(half, 1e300, 2.0)})
    by_big = derived.mean("covered", by="big").to_pandas()
    assert by_big["big"].tolist() == [7, 2**63 + 5]
    by_huge = derived.mean("covered", by="huge").to_pandas()
    assert by_huge["huge"].tolist() == [2.0, 1e300]
    assert by_big["estimate"].tolist() == by_huge["estimate"].tolist()


def test_calibration_names_the_terms_it_cannot_meet(df):
    # x2 = 2 x1: the second is a linear combination of the first (and the intercept).
    df = df.assign(x1=np.arange(24.0), x2=2 * np.arange(24.0))
    with pytest.raises(ssc.CalibrationError, match=r"^term 'x2': linear combinations of the columns before them"):
        design(df).calibrate("~ x1 + x2", {"(Intercept)": 100.0, "x1": 1000.0, "x2": 2000.0})
    with pytest.raises(ssc.CalibrationError, match=r"^term '\(Intercept\)': target 100, but the bounds .*infeasible"):
        design(df).calibrate("~ x1", {"(Intercept)": 100.0, "x1": 1000.0}, bounds=(0.9, 1.1))


def test_structured_errors_read_as_their_message():
    # Errors the core raises with details for Python to name still print as a message.
    err = ssc.DesignError("fpc must be given per stage", "fpc")
    assert str(err) == "fpc must be given per stage"
