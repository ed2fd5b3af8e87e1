"""Contribution histories of Dask DataFrames: partitioned by person id with Dask's own
shuffle, the same Rust kernel per partition, the numbers of the in-memory path.

Run on the default scheduler and on a dask.distributed LocalCluster started here."""

from __future__ import annotations

import pandas as pd
import polars as pl
import pytest

import sscoverage as ssc

dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")

from test_spells import SURVEY_YEAR, random_histories  # noqa: E402  (after the skips: needs dask)


@pytest.fixture(params=["default", "local_cluster"])
def scheduler(request):
    """The default (threaded) scheduler, or a two-worker LocalCluster with its Client."""
    if request.param == "default":
        yield None
        return
    # ":0": the scheduler's HTTP server on a free port (with None it still takes 8787, and
    # warns, an error here, when another cluster on the machine holds that port).
    with distributed.LocalCluster(n_workers=2, threads_per_worker=2, processes=False, dashboard_address=":0") as cluster, \
            distributed.Client(cluster) as client:
        yield client


def by_person(histories: ssc.Histories) -> tuple[pd.DataFrame, pd.DataFrame]:
    """In-memory histories in the Dask path's order: by person id (spells then by start)."""
    persons = histories.persons.sort_values("person_id", kind="stable").reset_index(drop=True)
    spells = histories.spells.sort_values(["person_id", "start_year"], kind="stable").reset_index(drop=True)
    return persons, spells


def partitions_of(ddf) -> dict:
    """Person id -> the partitions of `ddf` holding its records."""
    seen: dict = {}
    for i in range(ddf.npartitions):
        for pid in set(ddf.get_partition(i)["person_id"].compute()):
            seen.setdefault(pid, set()).add(i)
    return seen


@pytest.mark.parametrize("seed,n_records,n_persons", [(1, 7, 3), (2, 4, 1), (3, 11, 5)])
def test_dask_histories_equal_the_in_memory_path(scheduler, seed, n_records, n_persons):
    records, persons = random_histories(seed)
    memory = ssc.contribution_histories(records, persons, survey_year=SURVEY_YEAR)
    # Records are ordered by year, so every partition holds a slice of years of most
    # persons: a person's rows are spread over partitions, and only the shuffle joins them.
    drecords = dd.from_pandas(records, npartitions=n_records, sort=False)
    assert sum(len(p) > 1 for p in partitions_of(drecords).values()) > len(persons) // 2
    got = ssc.contribution_histories(
        drecords, dd.from_pandas(persons, npartitions=n_persons, sort=False), survey_year=SURVEY_YEAR
    )
    assert isinstance(got.persons, dd.DataFrame) and isinstance(got.spells, dd.DataFrame)
    assert got.survey_year == SURVEY_YEAR
    computed = got.compute()
    persons_expected, spells_expected = by_person(memory)
    pd.testing.assert_frame_equal(computed.persons, persons_expected)
    pd.testing.assert_frame_equal(computed.spells, spells_expected)
    # Each table on its own is the same (the lazy frames carry the right meta).
    pd.testing.assert_frame_equal(got.persons.compute().reset_index(drop=True), persons_expected)
    pd.testing.assert_frame_equal(got.spells.compute().reset_index(drop=True), spells_expected)
    assert (got.persons.dtypes == persons_expected.dtypes).all()
    assert (got.spells.dtypes == spells_expected.dtypes).all()


def test_same_result_for_any_partitioning_and_string_ids(scheduler):
    records, persons = random_histories(5, n=120)
    records["person_id"] = "P-" + records["person_id"].astype(str)
    persons["person_id"] = "P-" + persons["person_id"].astype(str)
    # A person table in memory (pandas, polars) or distributed; default survey year.
    expected = by_person(ssc.contribution_histories(records, persons))
    for n_records, people in [(1, persons), (6, pl.from_pandas(persons)), (9, dd.from_pandas(persons, npartitions=4))]:
        got = ssc.contribution_histories(dd.from_pandas(records, npartitions=n_records, sort=False), people)
        assert got.survey_year == records["year"].max()
        computed = got.compute()
        pd.testing.assert_frame_equal(computed.persons, expected[0])
        pd.testing.assert_frame_equal(computed.spells, expected[1])


def hand_made() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Three persons, survey year 2024.

    A: first job 2015; pays 2016, 2017, 2020, 2022; a record without payment in 2018 and
       2021; no record in 2015, 2019, 2023, 2024.  2015 precedes the first payment (no
       interruption); interruptions 2018-2019 (2 years, re-entry 2020), 2021 (1 year,
       re-entry 2022), 2023-2024 (2 years, running): 3 interruptions, 5 years, 2 re-entries,
       10 years since the first job, density 0.5.
    B: first job 2020, a record without payment in 2021, never pays: no interruption.
    C: first job 2010, pays every year to 2024: 15 paid years, no interruption.
    """
    rows = [("A", 2016, 1), ("A", 2017, 1), ("A", 2018, 0), ("A", 2020, 1), ("A", 2021, 0), ("A", 2022, 1),
            ("B", 2021, 0)] + [("C", y, 1) for y in range(2010, 2025)]
    records = pd.DataFrame(rows, columns=["person_id", "year", "contributed"]).sort_values("year", kind="stable")
    persons = pd.DataFrame({"person_id": ["C", "A", "B"], "first_job_year": [2010, 2015, 2020]})
    return records.reset_index(drop=True), persons


def test_hand_counted_history(scheduler):
    records, persons = hand_made()
    drecords = dd.from_pandas(records, npartitions=4, sort=False)
    assert len(partitions_of(drecords)["A"]) >= 3  # A's records are in three partitions or more
    got = ssc.contribution_histories(drecords, dd.from_pandas(persons, npartitions=2), survey_year=2024).compute()
    table = got.persons.set_index("person_id")
    assert list(table.index) == ["A", "B", "C"]
    a, b, c = (table.loc[p] for p in "ABC")
    assert a["first_contribution_year"] == 2016 and a["paid_years"] == 4
    assert a["n_interruptions"] == 3 and a["years_interrupted"] == 5 and a["n_reentries"] == 2
    assert a["years_since_first_job"] == 10 and a["density"] == 0.5
    assert a["ever_interrupted"] == 1 and a["reentered"] == 1
    assert pd.isna(b["first_contribution_year"]) and b["paid_years"] == 0 and b["n_interruptions"] == 0
    assert b["years_since_first_job"] == 5 and b["density"] == 0 and b["ever_interrupted"] == 0
    assert c["first_contribution_year"] == 2010 and c["paid_years"] == 15 and c["n_interruptions"] == 0
    spells = list(got.spells.itertuples(index=False, name=None))
    assert spells == [("A", 2018, 2, 2019, True), ("A", 2021, 1, 2021, True), ("A", 2023, 2, 2024, False)]
    # And the in-memory path agrees.
    memory = by_person(ssc.contribution_histories(records, persons, survey_year=2024))
    pd.testing.assert_frame_equal(got.persons, memory[0])
    pd.testing.assert_frame_equal(got.spells, memory[1])


def test_missing_and_wrong_columns_are_named():
    records, persons = hand_made()
    drecords, dpersons = dd.from_pandas(records, npartitions=2), dd.from_pandas(persons, npartitions=1)
    with pytest.raises(ssc.ColumnError, match="column 'person_id' is not in the contribution records"):
        ssc.contribution_histories(drecords.drop(columns="person_id"), dpersons)
    with pytest.raises(ssc.ColumnError, match="column 'person_id' is not in the person table"):
        ssc.contribution_histories(drecords, dpersons.rename(columns={"person_id": "pid"}))
    with pytest.raises(ssc.ColumnError, match="'first_job_year' is not in the person table"):
        ssc.contribution_histories(drecords, persons.drop(columns="first_job_year"))
    with pytest.raises(ssc.ColumnError, match="'contributed' is not in the contribution records"):
        ssc.contribution_histories(drecords.rename(columns={"contributed": "paid"}), dpersons)
    with pytest.raises(ssc.ColumnError, match="'year' \\(year\\) must be numeric"):
        ssc.contribution_histories(drecords.assign(year=drecords["year"].astype(str)), dpersons)
    with pytest.raises(ssc.ColumnError, match="person ids in column 'person_id'"):
        ssc.contribution_histories(drecords, persons.assign(person_id=[1, 2, 3]))
    assert issubclass(ssc.ColumnError, ssc.SurveyError)


def test_bad_histories_name_the_person_when_computed(scheduler):
    records, persons = hand_made()
    # A's 2020 record moved to the end: in the Dask DataFrame's order it follows 2022.
    moved = (records.person_id == "A") & (records.year == 2020)
    late = pd.concat([records[~moved], records[moved]], ignore_index=True)
    message = "person 'A' year 2020 is recorded after year 2022"
    with pytest.raises(ssc.HistoryError, match=message):
        ssc.contribution_histories(late, persons, survey_year=2024)
    got = ssc.contribution_histories(dd.from_pandas(late, npartitions=3, sort=False), persons, survey_year=2024)
    with pytest.raises(ssc.HistoryError, match=message):
        got.compute()
    stranger = pd.concat([records, pd.DataFrame({"person_id": ["D"], "year": [2020], "contributed": [1]})])
    got = ssc.contribution_histories(dd.from_pandas(stranger, npartitions=3, sort=False), persons, survey_year=2024)
    with pytest.raises(ssc.HistoryError, match="person 'D' has contribution records but is not in the person table"):
        got.persons.compute()


def test_dask_histories_must_be_computed_for_the_summary():
    survey = ssc.datasets.coverage_survey()
    got = ssc.contribution_histories(dd.from_pandas(survey.histories, npartitions=3), survey.persons)
    with pytest.raises(ssc.ShapeError, match="compute"):
        ssc.interruption_summary(survey.design(), got)
    # Computed and put back in the person table's order, the summary is the in-memory one.
    memory = ssc.contribution_histories(survey.histories, survey.persons)
    computed = got.compute()
    order = computed.persons.set_index("person_id").loc[survey.persons["person_id"]].reset_index()
    pd.testing.assert_frame_equal(order, memory.persons)
