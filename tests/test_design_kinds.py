"""Every public method on every kind of design (the capability table of the docs):
a result equal to the in-memory design's, or NotSupportedError — nothing else."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import sscoverage as ssc

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "docs" / "_gen"))
import capabilities  # noqa: E402  (the docs' own table generator, so the table is what is tested)

DF = capabilities.sample()
KINDS = capabilities.kinds(DF)
METHODS = capabilities.methods(DF)
#: Each kind's in-memory twin: the same data and design held as a pandas frame.
TWIN = {"polars": "pandas", "LazyFrame": "pandas", "Dask": "pandas"}


@pytest.fixture(scope="module")
def designs() -> dict[str, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {kind: build() for kind, build in KINDS.items()}


def _numbers(result: Any) -> pd.DataFrame:
    table = result.to_pandas() if hasattr(result, "to_pandas") else pd.DataFrame([vars(result)])
    return table.select_dtypes("number").reset_index(drop=True)


def _call(method: str, design: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return METHODS[method](design)


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("method", list(METHODS))
def test_served_with_the_in_memory_numbers_or_refused(designs, method, kind):
    try:
        result = _call(method, designs[kind])
    except ssc.NotSupportedError as err:
        assert any(w in str(err) for w in ("use", "collect()", "first")), "a refusal says what to do instead"
        return
    twin = TWIN.get(kind)
    if twin is not None:
        expected = _numbers(_call(method, designs[twin]))
        got = _numbers(result)
        assert list(got.columns) == list(expected.columns)
        np.testing.assert_allclose(got.to_numpy(dtype=float), expected.to_numpy(dtype=float), rtol=1e-10, atol=1e-12)


def test_the_table_covers_every_public_design_method():
    public = {n for n in dir(ssc.Design) if not n.startswith("_") and callable(getattr(ssc.Design, n))}
    called = {name.split("`")[1].split("(")[0] for name in METHODS}
    # Methods that only read or present the design (not estimators) are not in the table.
    presenting = {"in_subset", "influence_vcov", "replicate_vcov", "replicate_weights", "by_columns", "to_json",
                  "plot_weights", "weighting_report", "with_columns", "median_survival", "threshold_glm"}
    assert public - called - presenting == set()
