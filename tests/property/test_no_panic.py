"""No panic reachable from Python: extreme integers, floats and strings pushed through
the bindings (design build, estimates by domain, replicate weights, GLM, small areas,
loading) give a result or a SurveyError, never a PanicException (a BaseException that
`except Exception` would not catch) or another exception class."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

import sscoverage as ssc

I64 = np.iinfo(np.int64)
EXTREME_INTS = st.sampled_from([I64.min, I64.min + 1, -1, 0, 1, 2**31, 2**32 + 7, I64.max - 1, I64.max])
EXTREME_FLOATS = st.sampled_from([0.0, 5e-324, 2.2e-308, 1e-300, 1.0, 1e300, 1.7e308, np.inf, -np.inf, np.nan,
                                  -0.0, -1.0])
TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=0, max_size=6)


def outcome(call):
    """'ok' or the SurveyError class name; anything else fails the test.  (Warnings are
    not what this test is about: they are let pass.)"""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            call()
    except ssc.SurveyError as err:
        return type(err).__name__
    except BaseException as err:  # a PanicException is a BaseException
        pytest.fail(f"{type(err).__module__}.{type(err).__name__} escaped: {err}")
    return "ok"


@st.composite
def frames(draw):
    n = draw(st.integers(4, 24))
    rows = range(n)
    strata = [draw(EXTREME_INTS) for _ in rows]
    psus = [draw(EXTREME_INTS) for _ in rows]
    # Half the frames have ordinary weights and outcomes (so that the estimators run),
    # half extreme ones anywhere (so that the checks do).
    clean = draw(st.booleans())
    weight = st.floats(0.1, 100.0) if clean else st.one_of(EXTREME_FLOATS, st.floats(0.1, 100.0))
    value = st.one_of(st.floats(-5, 5), st.just(np.nan)) if clean else st.one_of(EXTREME_FLOATS, st.floats(-5, 5))
    weights = [draw(weight) for _ in rows]
    y = [draw(value) for _ in rows]
    by = [draw(st.one_of(EXTREME_INTS.map(str), TEXT)) for _ in rows]
    return pd.DataFrame({"stratum": strata, "psu": psus, "w": weights, "y": y, "g": by,
                         "big": np.array([draw(EXTREME_INTS) for _ in rows], dtype=np.int64)})


@given(frames(), st.booleans(), st.sampled_from(["fail", "adjust", "average", "remove", "certainty"]))
def test_design_and_estimates_never_panic(df, nest, lonely):
    def run():
        design = ssc.Design(df, ids="psu", strata="stratum", weights="w", nest=nest, lonely_psu=lonely)
        design.mean("y", na_rm=True)
        design.mean("y", by="g", na_rm=True)
        design.total("y", by="big", na_rm=True)
        design.ratio("y", "w", by=["g", "big"], na_rm=True)
        design.quantile("y", [0.25, 0.5], na_rm=True)

    outcome(run)


@given(frames(), st.integers(-3, 10**6), st.integers(-1, 2**64 + 1))
def test_replicates_never_panic(df, replicates, seed):
    def run():
        design = ssc.Design(df, ids="psu", strata="stratum", weights="w", nest=True, lonely_psu="adjust")
        design.as_replicates("bootstrap", replicates=replicates, seed=seed).mean("y", na_rm=True)
        design.as_replicates("JKn").mean("y", by="g", na_rm=True)

    outcome(run)


@given(frames(), st.sampled_from(["gaussian", "binomial", "quasibinomial", "poisson", "Gamma"]))
def test_glm_never_panics(df, family):
    def run():
        design = ssc.Design(df.assign(x=np.arange(len(df), dtype=float)), ids="psu", weights="w")
        design.glm("y ~ x + g", family=family)

    outcome(run)


@given(st.lists(st.tuples(EXTREME_FLOATS, st.one_of(EXTREME_FLOATS, st.floats(1e-6, 10.0)), EXTREME_FLOATS),
                min_size=1, max_size=8))
def test_small_areas_never_panic(rows):
    direct = pd.DataFrame({"area": [f"a{i}" for i in range(len(rows))],
                           "estimate": [r[0] for r in rows], "variance": [r[1] for r in rows]})
    covariates = pd.DataFrame({"area": direct["area"], "x": [r[2] for r in rows]})
    outcome(lambda: ssc.small_area.fay_herriot(direct, covariates, area="area"))


@given(st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), TEXT),
                    lambda inner: st.one_of(st.lists(inner, max_size=4),
                                            st.dictionaries(st.sampled_from(
                                                ["__array__", "__mask__", "dtype", "shape", "__frame__", "__float__",
                                                 "__dataclass__", "fields", "table", "level", "x"]), inner,
                                                max_size=4)),
                    max_leaves=20))
def test_loading_any_json_never_panics(value):
    rec = {"sscoverage": "0.1.0", "kind": "sscoverage.results:Estimates", "result": value}
    outcome(lambda: ssc.load(json.dumps(rec)))
