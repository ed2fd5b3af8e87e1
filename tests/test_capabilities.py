"""A streamed design serves a method with the in-memory numbers or says it cannot:
every Design method that needs the rows in memory raises NotSupportedError (a
SurveyError) naming what to do, on a LazyFrame and on a Dask DataFrame alike."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

import sscoverage as ssc
from sscoverage.stream.design import IN_MEMORY_METHODS, STREAMED_METHODS


@pytest.fixture(scope="module")
def frames():
    df = ssc.demo_sample(n_strata=3, psus_per_stratum=3, persons_per_psu=6, seed=7)
    return df, pl.from_pandas(df).lazy()


def test_every_design_method_is_served_or_refused(frames):
    public = {n for n in dir(ssc.Design) if not n.startswith("_") and callable(getattr(ssc.Design, n))}
    assert public == set(STREAMED_METHODS) | set(IN_MEMORY_METHODS)


@pytest.mark.parametrize("method", IN_MEMORY_METHODS)
def test_in_memory_methods_are_refused_by_name(frames, method):
    _, lazy = frames
    design = ssc.Design(lazy, ids="psu", strata="stratum", weights="weight")
    with pytest.raises(ssc.NotSupportedError, match=rf"{method}\(\) needs the rows in memory.*collect\(\)"):
        getattr(design, method)("covered")


def test_trimming_a_streamed_design_no_longer_gives_other_numbers(frames):
    df, lazy = frames
    streamed = ssc.Design(lazy, ids="psu", strata="stratum", weights="weight")
    with pytest.raises(ssc.NotSupportedError, match="trim_weights"):
        streamed.trim_weights(upper=8)
    in_memory = ssc.Design(df, ids="psu", strata="stratum", weights="weight")
    np.testing.assert_allclose(streamed.mean("covered").estimate, in_memory.mean("covered").estimate, rtol=1e-13)


def test_streamed_results_record_the_call_and_the_design(frames):
    # As in memory: the estimator, its arguments and the design's size facts, which the
    # summary prints and a saved result keeps.
    df, lazy = frames
    memory = ssc.Design(df, ids="psu", strata="stratum", weights="weight")
    streamed = ssc.Design(lazy, ids="psu", strata="stratum", weights="weight", progress=False)
    for call in (lambda d: d.quantile("monthly_income", 0.5), lambda d: d.ciprop("covered"),
                 lambda d: d.chisq("covered", "population_type"),
                 lambda d: d.glm("covered ~ monthly_income", progress=False)):
        a, b = call(memory), call(streamed)
        assert b.provenance.estimator == a.provenance.estimator
        assert b.provenance.options == a.provenance.options
        facts = b.provenance.facts()
        assert facts == {**a.provenance.facts(), "kind": "StreamedDesign"}
        assert ssc.load(b.to_json()).provenance.facts() == facts
