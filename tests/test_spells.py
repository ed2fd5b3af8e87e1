"""Contribution histories: the Rust spell kernel against a plain Python loop, and the
errors that name the person."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pytest

import sscoverage as ssc

SURVEY_YEAR = 2024


def loop(records: pd.DataFrame, persons: pd.DataFrame, survey_year: int) -> tuple[pd.DataFrame, list[tuple]]:
    """Spells the slow, obvious way: walk every year from first job to the survey year."""
    paid = {(p, y) for p, y, c in records[["person_id", "year", "contributed"]].itertuples(index=False) if c}
    rows, spells = [], []
    for pid, first in persons[["person_id", "first_job_year"]].itertuples(index=False):
        years = range(int(first), survey_year + 1)
        flags = [(pid, y) in paid for y in years]
        started, run, n_paid, first_paid = False, [], 0, None
        for y, f in zip(years, flags):
            if f:
                if run:
                    spells.append((pid, run[0], len(run), True))
                    run = []
                started, n_paid = True, n_paid + 1
                first_paid = y if first_paid is None else first_paid
            elif started:
                run.append(y)
        if run:
            spells.append((pid, run[0], len(run), False))
        mine = [s for s in spells if s[0] == pid]
        interrupted = sum(s[2] for s in mine)
        rows.append(
            {
                "person_id": pid,
                "first_contribution_year": first_paid,
                "paid_years": n_paid,
                "n_interruptions": len(mine),
                "years_interrupted": interrupted,
                "years_since_first_job": len(years),
                "density": interrupted / len(years),
                "n_reentries": sum(s[3] for s in mine),
            }
        )
    return pd.DataFrame(rows), spells


def random_histories(seed: int, n: int = 300) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Persons with random first jobs and contribution runs; some years have no record
    at all, and the persons' records are interleaved (each person's in time order)."""
    rng = np.random.default_rng(seed)
    ids = rng.choice(np.arange(1000, 9000), n, replace=False)
    first = rng.integers(1985, SURVEY_YEAR + 1, n)
    rows = []
    for pid, f in zip(ids, first):
        p_pay = rng.uniform(0.2, 0.95)
        for y in range(f, SURVEY_YEAR + 1):
            if rng.random() < 0.85:  # otherwise the year has no record
                rows.append((pid, y, rng.random() < p_pay))
    records = pd.DataFrame(rows, columns=["person_id", "year", "contributed"])
    # Interleave persons, keeping each person's own time order.
    records["key"] = rng.random(len(records))
    records = records.sort_values("key").sort_values(["year"], kind="stable").drop(columns="key").reset_index(drop=True)
    persons = pd.DataFrame({"person_id": ids, "first_job_year": first})
    return records, persons


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_spells_match_a_plain_loop(seed):
    records, persons = random_histories(seed)
    got = ssc.contribution_histories(records, persons, survey_year=SURVEY_YEAR)
    expected, spells = loop(records, persons, SURVEY_YEAR)
    table = got.persons
    for column in expected.columns.drop("first_contribution_year"):
        np.testing.assert_array_equal(table[column].to_numpy(), expected[column].to_numpy(), err_msg=column)
    first = table["first_contribution_year"].astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    np.testing.assert_array_equal(first, expected["first_contribution_year"].astype(float).to_numpy())
    assert (table["ever_interrupted"] == (expected["n_interruptions"] > 0)).all()
    assert (table["reentered"] == (expected["n_reentries"] > 0)).all()
    got_spells = list(got.spells[["person_id", "start_year", "years", "reentered"]].itertuples(index=False, name=None))
    order = {pid: i for i, pid in enumerate(persons["person_id"])}
    assert got_spells == sorted(spells, key=lambda s: (order[s[0]], s[1]))
    assert (got.spells["end_year"] == got.spells["start_year"] + got.spells["years"] - 1).all()


def test_spells_from_polars_and_default_survey_year():
    records, persons = random_histories(4, n=50)
    a = ssc.contribution_histories(pl.from_pandas(records), pl.from_pandas(persons))
    b = ssc.contribution_histories(records, persons, survey_year=int(records["year"].max()))
    pd.testing.assert_frame_equal(a.persons, b.persons)
    assert a.survey_year == records["year"].max()


def test_bundled_histories_agree_with_the_persons():
    survey = ssc.datasets.coverage_survey()
    histories = ssc.contribution_histories(survey.histories, survey.persons)
    persons = histories.persons
    assert (persons["years_since_first_job"] == SURVEY_YEAR - survey.persons["first_job_year"] + 1).all()
    lapse = ssc.lapse_indicators(survey.persons)["lapse_pension"].to_numpy()
    # Members pay in the survey year; lapsers who once paid are in a running interruption.
    running = histories.spells.loc[~histories.spells["reentered"], "person_id"]
    assert set(running) == set(survey.persons.loc[(lapse == 1) & persons["paid_years"].gt(0).to_numpy(), "person_id"])


def history(person, year, paid, first):
    records = pd.DataFrame({"person_id": person, "year": year, "contributed": paid})
    persons = pd.DataFrame({"person_id": ["A-1", "B-2"], "first_job_year": first})
    return ssc.contribution_histories(records, persons, survey_year=SURVEY_YEAR)


@pytest.mark.parametrize(
    "person,year,first,match",
    [
        (["A-1", "B-2", "B-2"], [2001, 2003, 2003], [2000, 2000], "person 'B-2' year 2003 is recorded twice"),
        (["B-2", "B-2"], [2005, 2004], [2000, 2000], "person 'B-2' year 2004 is recorded after year 2005"),
        (["A-1"], [1999], [2000, 2000], "person 'A-1' a record for 1999 precedes the first job in 2000"),
        (["A-1"], [2025], [2000, 2000], "person 'A-1' a record for 2025 is after the survey year 2024"),
        (["A-1"], [2001], [2000, np.nan], "person 'B-2' has no first-job year"),
        (["C-3"], [2001], [2000, 2000], "person 'C-3' has contribution records but is not in the person table"),
    ],
)
def test_bad_histories_name_the_person(person, year, first, match):
    with pytest.raises(ssc.HistoryError, match=match):
        history(person, year, [True] * len(person), first)


def test_history_error_is_a_survey_error():
    assert issubclass(ssc.HistoryError, ssc.SurveyError)


def test_bad_record_columns():
    with pytest.raises(ssc.MissingValueError, match="'year'"):
        history(["A-1"], [np.nan], [True], [2000, 2000])
    with pytest.raises(ssc.MissingValueError, match="'contributed'"):
        history(["A-1"], [2001], [np.nan], [2000, 2000])
    with pytest.raises(ssc.ColumnError, match="'contributed' must hold 0/1"):
        history(["A-1"], [2001], [2], [2000, 2000])
    persons = pd.DataFrame({"person_id": ["A", "A"], "first_job_year": [2000, 2001]})
    with pytest.raises(ssc.ShapeError, match="repeat: 'A'"):
        ssc.contribution_histories(pd.DataFrame({"person_id": ["A"], "year": [2001], "contributed": [1]}), persons)
