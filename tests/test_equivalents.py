"""Every row of the docs' "coming from R / Stata / samplics" table runs and gives R's numbers.

The rows come from ``docs/_gen/equivalents.py``, the same list that renders the page, so a
row whose code stops working, or stops matching the R reference case it names, fails here.
"""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path
from typing import Any

import pytest

import sscoverage as ssc
from run_cases import SHARED_REFERENCE as REFERENCE
from run_cases import compare, load_cases, load_data

SOURCE = Path(__file__).resolve().parents[1] / "docs" / "_gen" / "equivalents.py"
_spec = importlib.util.spec_from_file_location("ssc_docs_equivalents", SOURCE)
assert _spec is not None and _spec.loader is not None
equivalents = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = equivalents  # dataclasses look their module up by name
_spec.loader.exec_module(equivalents)
ROWS = equivalents.EQUIVALENTS


def _cases() -> dict[str, tuple[dict[str, Any], Path]]:
    return {c["id"]: (c, d) for c, d in load_cases([str(REFERENCE)])} if REFERENCE.is_dir() else {}


CASES = _cases()


def _namespace(row: Any, reference_dir: Path) -> dict[str, Any]:
    """ssc and each data set the row uses, read as the runner reads R's CSV files (the
    case's factor levels when the row names a case)."""
    namespace: dict[str, Any] = {"ssc": ssc}
    case = CASES[row.case][0] if row.case else {}
    for name in row.data:
        spec = {"data": name, "factors": case.get("factors", {}) if case.get("data") == name else {}}
        namespace[name.removesuffix(".csv")] = load_data(spec, reference_dir / "data")
    return namespace


@pytest.mark.parametrize("row", ROWS, ids=[f"{r.tool}: {r.call.splitlines()[-1]}" for r in ROWS])
def test_equivalent_matches_r(row, reference_dir):
    namespace = _namespace(row, reference_dir)
    exec(compile(row.code, f"<{row.call}>", "exec"), namespace)
    result = namespace["result"]
    if row.case is not None:
        case, _ = CASES[row.case]
        problems = compare(case, result)
        assert not problems, f"{row.call}\n{case['r_call']}\n" + "\n".join(problems)
    else:
        expected = {k: v for k, v in row.expected.items() if k != "source"}
        assert expected, f"{row.call}: neither a reference case nor R's numbers"
        for key, want in expected.items():
            got = getattr(result, key)
            assert math.isclose(float(got), want, rel_tol=1e-6, abs_tol=1e-300), f"{row.call}: {key} = {got}, R {want}"


def test_every_case_named_exists():
    missing = [r.case for r in ROWS if r.case is not None and r.case not in CASES]
    assert CASES and not missing, f"cases not in {REFERENCE}: {missing}"


def test_every_common_call_has_a_row():
    calls = "\n".join(r.call for r in ROWS)
    for name in ("svydesign", "svymean", "svytotal", "svyby", "svyratio", "svyquantile", "svyciprop",
                 "svychisq", "svyglm", "svykm", "svycoxph", "postStratify", "rake(", "calibrate(",
                 "as.svrepdesign", "svrepdesign(", "regTermTest", "svyset", "svy: mean", "svy: proportion",
                 "svy: logistic", "TaylorEstimator", "ReplicateEstimator"):
        assert name in calls, f"no row for {name}"


def test_page_shows_every_row():
    page = equivalents.markdown()
    assert page.count("\n| <code>") == len(ROWS)
    assert all(r.case in page for r in ROWS if r.case)


def test_a_wrong_row_fails(reference_dir):
    """The check can fail: the same code against a case with other numbers is reported."""
    row = next(r for r in ROWS if r.case == "apiclus1/mean/api00")
    namespace = _namespace(row, reference_dir)
    exec(row.code, namespace)
    case = json.loads(json.dumps(CASES[row.case][0]))
    case["expected"]["se"] = [case["expected"]["se"][0] * 1.001]
    assert any("se[0]" in p for p in compare(case, namespace["result"]))
