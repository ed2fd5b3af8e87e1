"""A hostile file cannot run code or write files through ``ssc.load``, and a hostile
formula cannot run code through ``glm``, ``calibrate``, ``threshold_glm``, ``coxph`` or
the streamed GLM: both are read as data by the package's own grammar and schema, and
refused with an error naming the field or the text before anything is evaluated."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest

import sscoverage as ssc
from sscoverage.formula import parse_formula


@pytest.fixture(scope="module")
def df() -> pd.DataFrame:
    data = ssc.demo_sample(n_strata=4, psus_per_stratum=4, persons_per_psu=10, seed=3)
    data["time"] = np.arange(len(data)) % 7 + 1.0
    data["event"] = np.arange(len(data)) % 2
    return data


@pytest.fixture(scope="module")
def design(df) -> ssc.Design:
    return ssc.Design(df, ids="psu", strata="stratum", weights="weight")


def hostile_code(sentinel: Path) -> list[str]:
    """Python that would create `sentinel` if anything evaluated it."""
    s = str(sentinel)
    return [
        f"open({s!r}, 'w').write('x')",
        f"__import__('pathlib').Path({s!r}).touch()",
        f"np.testing._private.utils.os.system('touch {s}')",
        f"(lambda: open({s!r}, 'w'))()",
        f"[open({s!r}, 'w') for _ in [1]]",
        f"monthly_income.__class__.__init__.__globals__['os'].system('touch {s}')",
    ]


def formulas(sentinel: Path) -> list[str]:
    out = []
    for code in hostile_code(sentinel):
        out += [f"covered ~ I({code})", f"covered ~ monthly_income + {code}", f"covered ~ log({code})",
                f"covered ~ C(population_type, levels={code})"]
    return out


@pytest.mark.parametrize("route", ["glm", "streamed_glm", "calibrate", "threshold", "coxph", "streamed_coxph"])
def test_a_hostile_formula_is_refused_before_anything_runs(design, df, tmp_path, route):
    sentinel = tmp_path / "ran"
    streamed = ssc.Design(pl.from_pandas(df).lazy(), ids="psu", strata="stratum", weights="weight")
    for formula in formulas(sentinel):
        rhs = formula.split("~", 1)[1]
        call = {
            "glm": lambda: design.glm(formula),
            "streamed_glm": lambda: streamed.glm(formula),
            "calibrate": lambda: design.calibrate(f"~{rhs}", {"(Intercept)": 1.0}),
            "threshold": lambda: design.threshold_glm(formula, "monthly_income", grid=4),
            "coxph": lambda: design.coxph(f"Surv(time, event) ~{rhs}"),
            "streamed_coxph": lambda: streamed.coxph(f"Surv(time, event) ~{rhs}"),
        }[route]
        with pytest.raises((ssc.FormulaError, ssc.ColumnError)) as err:
            call()
        assert "formula" in str(err.value), formula
        assert not sentinel.exists(), formula


@pytest.mark.parametrize("formula, message", [
    ("y ~ x.__class__", "column 'x.__class__' in the formula"),
    ("y ~ x[0]", "found '['"),
    ("y ~ 'x'", "expected a term"),
    ("y ~ x; import os", "';' at position 5"),
    ("y ~ os.system('ls')", "os.system() is not a function a formula may call"),
    ("y ~ I(x ** 2 if x else 0)", "expected ')'"),
    ("y ~ `x", "unclosed backquote"),
    ("~ x", "needs an outcome"),
    ("y ~ poly(x, 2.5)", "whole-number degree"),
])
def test_the_grammar_names_what_it_refuses(formula, message):
    with pytest.raises((ssc.FormulaError, ssc.ColumnError), match=message.replace("(", r"\(").replace(")", r"\)")
                       .replace("[", r"\[").replace(".", r"\.")):
        parse_formula(formula, ["y", "x"])


def test_the_grammar_rewrites_what_it_accepts():
    # Dotted (R) and backquoted names are aliased; a logical I() is R's two-level factor;
    # & binds looser than a comparison, as in R (Python would read x > (1 & z) < 2).
    parsed = parse_formula("y ~ api.stu + `my col` * I(x > 1 & z < 2) + log(x + 1)",
                           ["y", "api.stu", "my col", "x", "z"])
    assert parsed.text == "y ~ __ssc0__ + __ssc1__ * C(I((x > 1) & (z < 2))) + log(x + 1)"
    assert parsed.aliases == {"__ssc0__": "api.stu", "__ssc1__": "my col"}
    assert parsed.variables == ["y", "api.stu", "my col", "x", "z"]
    assert parsed.logical_terms == {"C(I((x > 1) & (z < 2)))": "I((x > 1) & (z < 2))"}


# ---------------------------------------------------------------------------- files
def saved(design: ssc.Design) -> dict:
    return json.loads(design.mean("covered", by="population_type").to_json())


def test_a_hostile_result_file_cannot_call_anything(design, tmp_path):
    sentinel = tmp_path / "report.html"
    good = saved(design)
    hostile = [
        # the kind names a function of the package (it wrote a report before)
        {**good, "kind": "sscoverage.cli:main"},
        {**good, "kind": "os:system"},
        # a nested "dataclass" that is a callable of the package
        {**good, "result": {**good["result"], "notes": [
            {"__dataclass__": "sscoverage.cli:main", "fields": {"argv": ["report", "--out", str(sentinel)]}}]}},
        {**good, "result": {**good["result"], "notes": [
            {"__dataclass__": "sscoverage.models:glm", "fields": {"formula": "y ~ x"}}]}},
        # a tag the writer never makes
        {**good, "result": {**good["result"], "notes": [{"__reduce__": ["os.system", "touch x"]}]}},
        # options with an unknown dataclass
        {**good, "options": {"y": {"__dataclass__": "sscoverage.report:Report", "fields": {}}}},
    ]
    for rec in hostile:
        with pytest.raises(ssc.SerializationError):
            ssc.load(json.dumps(rec))
        assert not sentinel.exists()


def test_a_hostile_design_file_can_only_replay_design_steps(design, df, tmp_path):
    sentinel = tmp_path / "out.json"
    good = json.loads(design.to_json())
    recipe = good["design"]["recipe"]
    for step, message in [
        (["to_json", {"path": str(sentinel)}], "'to_json' is not a step a saved design may hold"),
        (["glm", {"formula": f"covered ~ I(open({str(sentinel)!r}, 'w'))"}], "'glm' is not a step"),
        (["__class__", {}], "'__class__' is not a step"),
        (["subset", {"mask": [True], "path": str(sentinel)}], "subset takes no argument 'path'"),
        ("subset", "a step is \\[name, \\{arguments\\}\\]"),
    ]:
        rec = {**good, "design": {**good["design"], "recipe": [*recipe, step]}}
        with pytest.raises(ssc.SerializationError, match=message):
            ssc.load(json.dumps(rec), data=df)
        assert not sentinel.exists()
    # A design step with a code formula: the formula grammar refuses it.
    rec = {**good, "design": {**good["design"], "recipe": [
        *recipe, ["calibrate", {"formula": f"~I(open({str(sentinel)!r}, 'w'))", "population": {"a": 1}}]]}}
    with pytest.raises(ssc.FormulaError):
        ssc.load(json.dumps(rec), data=df)
    # The constructor with an argument it does not have.
    rec = {**good, "design": {**good["design"], "recipe": [["Design", {**recipe[0][1], "evil": 1}]]}}
    with pytest.raises(ssc.SerializationError, match="Design takes no argument 'evil'"):
        ssc.load(json.dumps(rec), data=df)
    assert not sentinel.exists()


@pytest.mark.parametrize("value, message", [
    ({"__array__": [], "dtype": "<f8", "shape": [100000, 100000]}, "more than one file may hold"),
    ({"__array__": [1.0], "dtype": "<f8", "shape": [1000]}, "1 values for shape \\[1000\\]"),
    ({"__array__": [1.0], "dtype": "V1000000000", "shape": [1]}, "not a numeric dtype"),
    ({"__array__": ["rm -rf"], "dtype": "<f8", "shape": [1]}, "holds numbers"),
    ({"__mask__": "AA==", "shape": [10**6]}, "1 bytes of mask"),
    ({"__mask__": "not base64!", "shape": [1]}, "not base64"),
    ({"__array__": [1.0], "dtype": "<f8", "shape": [-1]}, "non-negative"),
    ({"__float__": "__import__('os')"}, "is not 'nan'"),
    ({"__series__": {"name": None, "index": None, "data": {"dtype": "object; import os", "values": []}}},
     "not a column type"),
    ({"__frame__": {"columns": ["a"], "columns_name": None, "index": None,
                    "data": [{"dtype": "category", "categories": ["x"], "ordered": False, "codes": [5]}]}},
     "codes are whole numbers from -1 to 0"),
])
def test_sizes_and_types_are_checked_against_the_payload(design, value, message):
    rec = saved(design)
    rec["result"]["notes"] = [value]
    with pytest.raises(ssc.SerializationError, match=message):
        ssc.load(json.dumps(rec))


def test_fields_are_checked_against_their_types(design):
    rec = saved(design)
    rec["result"]["level"] = "0.95"
    with pytest.raises(ssc.SerializationError, match=r"result\.level: Estimates\.level holds float, not str"):
        ssc.load(json.dumps(rec))
    rec = saved(design)
    rec["result"]["surprise"] = 1
    with pytest.raises(ssc.SerializationError, match="Estimates has no field 'surprise'"):
        ssc.load(json.dumps(rec))
    rec = saved(design)
    del rec["result"]["table"]
    with pytest.raises(ssc.SerializationError, match="the field 'table' of Estimates is missing"):
        ssc.load(json.dumps(rec))
    rec = saved(design)
    rec["schema"] = 99
    with pytest.raises(ssc.SerializationError, match="'schema': 99"):
        ssc.load(json.dumps(rec))


@pytest.mark.parametrize("text, message", [
    ("{not json", "not JSON"),
    ("[" * 100_000 + "]" * 100_000, "nests too deeply|not sscoverage output"),
    ('{"sscoverage": "0.1.0"}', "not sscoverage output"),
    ('["sscoverage", "kind"]', "not sscoverage output"),
])
def test_corrupt_text_is_a_serialization_error(text, message):
    with pytest.raises(ssc.SerializationError, match=message):
        ssc.load(text)


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(ssc.SerializationError, match="no file .*missing.json"):
        ssc.load(tmp_path / "missing.json")


def test_a_fresh_process_can_load_every_kind_of_result():
    # The allow-list is the package's own result classes, registered as their modules are
    # imported: `import sscoverage` must import every one of them.
    import subprocess
    import sys

    code = ("import sscoverage; from sscoverage.io.serialize import result_types; "
            "print(' '.join(sorted(k.split(':')[1] for k in result_types())))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == sorted(["ChisqTest", "CoverageTable", "CoxResult", "Estimates", "FayHerriotResult", "GLMResult",
                          "ReasonRanking", "Summary", "SuppressedTable", "ThresholdResult", "WaldTest",
                          "WeightingReport"])
