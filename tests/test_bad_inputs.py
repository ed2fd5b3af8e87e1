"""Bad and edge inputs, each run in its own Python process (tests/bad_inputs/harness.py):
none may panic, crash the interpreter or escape as a Python-internal exception; each
refusal is a subclass of ssc.SurveyError whose message names what is wrong (the
column, label or option) and so what to fix.  ``OK`` marks inputs that R's survey
accepts too: they must give a result."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

HARNESS = Path(__file__).parent / "bad_inputs" / "harness.py"
OK = None

D = 'ssc.Design(df, ids="psu", strata="stratum", weights="weight"{})'


def design_cases() -> list[tuple[str, str | None]]:
    cases = []
    base = {"ids": '"psu"', "strata": '"stratum"', "weights": '"weight"'}
    for role, value, expect in [
        ("ids", '"nope"', "'nope'"), ("strata", '"nope"', "'nope'"), ("weights", '"nope"', "'nope'"),
        ("fpc", '"nope"', "'nope'"), ("probs", '"nope"', "weights or probs|'nope'"),
        ("ids", "3", "column 3 is not in the data"), ("strata", "3.5", "strata"), ("weights", "[1, 2]", "weights"),
        ("lonely_psu", '"maybe"', "lonely_psu"), ("variance", '"XY"', "variance"), ("pps", '"nope"', "pps"),
        ("nest", '"yes"', "nest"), ("subset", '"covered"', "subset"), ("fpc", '"weight"', OK),
    ]:
        args = {**base, role: value}
        cases.append(("ssc.Design(df, " + ", ".join(f"{k}={v}" for k, v in args.items()) + ").mean('covered')",
                      expect))
    for _label, column, values, expect in [
        ("nan weight", "weight", "np.where(df.index == 4, np.nan, df.weight)", "weight.*missing"),
        ("inf weight", "weight", "np.where(df.index == 4, np.inf, df.weight)", "weight.*infinite"),
        ("negative weight", "weight", "np.where(df.index == 4, -1.0, df.weight)", "weight.*negative"),
        ("zero weights", "weight", "0.0", "weight"),
        ("text weight", "weight", '"a"', "weight.*numeric"),
        ("none weight", "weight", "None", "weight"),
        ("nan psu", "psu", "np.where(df.index == 4, np.nan, df.psu)", "psu.*missing"),
        ("nan stratum", "stratum", "np.where(df.index == 4, np.nan, df.stratum)", "stratum.*missing"),
        ("one psu stratum", "stratum", "np.where(df.psu == df.psu.iloc[0], 99, df.stratum)", "stratum 99 .*one PSU"),
        ("int64 extremes strata", "stratum", "np.where(df.index < 20, I64.min, I64.max)", "one PSU|stratum"),
        ("int64 extremes psu", "psu", "np.where(df.index % 2 == 0, I64.min, I64.max)", "nest"),
        ("uint64 strata", "stratum", "(df.stratum.to_numpy().astype(np.uint64) + np.uint64(2**63))", OK),
        ("float strata", "stratum", "df.stratum + 0.5", OK),
        ("bool strata", "stratum", "df.stratum > 1", OK),
        ("unicode strata", "stratum", '"省" + df.stratum.astype(str)', OK),
        ("NUL strata", "stratum", '"a\\x00" + df.stratum.astype(str)', OK),
        ("huge weight", "weight", "1e300", OK),
        ("tiny weight", "weight", "5e-324", OK),
        ("psu text", "psu", '"p" + df.psu.astype(str)', OK),
    ]:
        cases.append((f"df = df.assign({column}={values}); d = {D.format('')}; d.mean('covered')", expect))
    for fpc, expect in [("1.0", "fpc"), ("0.0", "fpc"), ("-5.0", "fpc"), ("np.nan", "fpc.*missing"),
                        ("2.5", "fpc"), ("1e9", OK), ("0.5", OK)]:
        with_fpc = D.format(', fpc="f"')
        cases.append((f"df = df.assign(f={fpc}); {with_fpc}.mean('covered')", expect))
    cases += [
        ("ssc.Design(None)", "data"),
        ("ssc.Design(df.iloc[:0], ids='psu', weights='weight')", "no rows|empty|rows"),
        ("ssc.Design([1, 2, 3])", "data"),
        ("ssc.Design(df, ids='psu', weights='weight', probs='weight')", "weights or probs"),
        ("ssc.Design(df.rename(columns={'psu': 1}), ids=1, weights='weight').mean('covered')", OK),
        ("ssc.Design(df, ids=['psu', 'nope'], weights='weight')", "'nope'"),
        ("ssc.Design(df, ids='psu', strata='stratum', weights='weight', nest=True).mean('covered')", OK),
    ]
    return cases


def estimator_cases() -> list[tuple[str, str | None]]:
    cases = []
    for call, expect in [
        ("d.mean('nope')", "'nope'"), ("d.mean('covered', by='nope')", "'nope'"),
        ("d.mean(3)", "3|column"), ("d.mean(['covered', 'nope'])", "'nope'"),
        ("d.mean('covered', level=1.5)", "level"), ("d.mean('covered', level='x')", "level"),
        ("d.mean('covered', level=0)", "level"), ("d.mean('covered', df=-1)", "df"),
        ("d.mean('covered', df='weird')", "df"), ("d.mean('covered', deff='yes')", "deff"),
        ("d.total('nope')", "'nope'"), ("d.ratio('covered', 'nope')", "'nope'"),
        ("d.ratio('covered', 'covered')", OK),
        ("d.ratio('covered', np.zeros(len(df)))", "denominator|column|zero"),
        ("d.with_columns({'z': np.zeros(len(df))}).ratio('covered', 'z')", "'z'|zero"),
        ("d.quantile('monthly_income', 1.5)", "quantile"), ("d.quantile('monthly_income', -0.1)", "quantile"),
        ("d.quantile('monthly_income', 'half')", "quantile"), ("d.quantile('nope', 0.5)", "'nope'"),
        ("d.quantile('population_type', 0.5)", "population_type.*numeric|numeric"),
        ("d.quantile('monthly_income', 0.5, qrule='hf99')", "rule|hf99"),
        ("d.quantile('monthly_income', 0.5, interval_type='nope')", "nope|interval"),
        ("d.ciprop('covered', method='nope')", "method|nope"), ("d.ciprop('nope')", "'nope'"),
        ("d.ciprop('monthly_income')", "monthly_income|0 and 1|proportion"),
        ("d.chisq('covered', 'nope')", "'nope'"), ("d.chisq('covered', 'covered')", OK),
        ("d.chisq('covered', 'population_type', statistic='nope')", "statistic|nope"),
        ("d.contrast('covered', [1, -1], by='population_type')", "contrast|levels|domains"),
        ("d.contrast('covered', 'x', by='population_type')", "contrast"),
        ("d.mean('population_type')", OK), ("d.total('population_type', by='population_type')", OK),
        ("d.subset(df.covered > 5)", "no rows|subset"), ("d.subset(np.ones(3, bool))", "3 values"),
        ("d.subset('covered')", "subset|mask"), ("d.subset({'column': 'nope', 'op': '==', 'value': 1})", "'nope'"),
        ("d.subset({'column': 'covered', 'op': '~', 'value': 1})", "op"),
        ("d.subset(pd.Series(df.covered.to_numpy() == 1, index=df.index + 1000))", "index does not match"),
        ("d.subset(df.covered == 1).mean('covered', by='population_type')", OK),
        ("d.subset(df.stratum == 2).mean('covered', df='design')", OK),
        ("d.with_columns({'x': [1, 2]})", "'x' has 2 values"),
        ("d.with_columns({'x': np.full(len(df), np.inf)}).mean('x')", "'x'.*infinite"),
        ("d.with_columns({'x': np.full(len(df), np.nan)}).mean('x')", "'x'.*missing|na_rm"),
        ("d.with_columns({'x': np.full(len(df), np.nan)}).mean('x', na_rm=True)", "'x'|no rows|missing"),
        ("d.with_columns({'x': np.where(df.index == 2, np.nan, 1.0)}).mean('x')", "missing|na_rm"),
        ("d.with_columns({'x': np.array(['a'] * len(df), dtype=object)}).mean('x')", OK),
        ("d.with_columns({'x': [None] * len(df)}).mean('x')", "'x'|missing"),
        ("d.with_columns({'x': np.full(len(df), 1e308)}).total('x')", OK),
        ("d.with_columns({'big': np.full(len(df), 2**63 + 5, dtype=np.uint64)}).mean('covered', by='big')", OK),
        ("d.mean('covered', by=np.zeros(3))", "3 values"),
        ("d.mean('covered', by=['population_type', 'nope'])", "'nope'"),
        ("d.mean('covered', na_rm='maybe')", "na_rm"),
        ("d.total('covered', by='covered')", OK),
    ]:
        cases.append((call, expect))
    for kind, expect in [("JK1", "JK1.*JKn"), ("JKn", OK), ("bootstrap", OK), ("BRR", "BRR|two PSUs|PSU"),
                         ("Fay", "BRR|two PSUs|PSU|rho"), ("nope", "nope|type"), ("subbootstrap", OK)]:
        cases.append((f"d.as_replicates({kind!r}, replicates=20, seed=1).mean('covered')", expect))
    cases += [
        ("d.as_replicates('bootstrap', replicates=0)", "replicates"),
        ("d.as_replicates('bootstrap', replicates=-3)", "replicates"),
        ("d.as_replicates('bootstrap', replicates=10**12)", "replicates|GiB"),
        ("d.as_replicates('bootstrap', replicates=2.5)", "replicates"),
        ("d.as_replicates('bootstrap', replicates=20, seed=-1)", "seed"),
        ("d.as_replicates('bootstrap', replicates=20, seed=2**70)", "seed"),
        ("d.as_replicates('Fay', rho=1.5)", "rho|BRR|PSU"),
        ("d.as_replicates('JKn').as_replicates('JKn')", "already"),
        ("d.as_replicates('JKn').subset(df.covered == 1).mean('covered')", OK),
        ("d.as_replicates('JKn').quantile('monthly_income', 0.5)", OK),
        ("d.as_replicates('JKn').glm('covered ~ age', family='quasibinomial')", OK),
        ("ssc.ReplicateDesign(df, repweights='nope', weights='weight')", "nope|replicate"),
        ("ssc.ReplicateDesign(df, repweights=['weight'], weights='weight', type='nope')", "nope|type"),
        ("ssc.ReplicateDesign(df.assign(r1=np.nan), repweights=['r1'], weights='weight')", "r1.*missing"),
        ("ssc.ReplicateDesign(df.assign(r1='a'), repweights=['r1'], weights='weight')", "r1.*numeric"),
    ]
    return cases


def model_and_weighting_cases() -> list[tuple[str, str | None]]:
    cases = []
    for formula, expect in [
        ("covered ~ nope", "'nope'"), ("covered ~", "formula"), ("~ age", "outcome"), ("covered ~ age +", "formula"),
        ("covered ~ log(age)", OK), ("covered ~ I(age > 40)", OK), ("covered ~ C(stratum)", OK),
        ("covered ~ age ** 2", OK), ("covered ~ (age + monthly_income)^2", OK),
        ("covered ~ age * population_type", OK), ("covered ~ I(age", "formula"),
        ("covered ~ os.system('ls')", "os.system|formula"), ("covered ~ age[0]", "formula"),
        ("population_type ~ age", OK), ("monthly_income ~ population_type", "between 0 and 1"),
        ("covered ~ age + age", OK), ("covered ~ 1", OK), ("covered ~ 0", "no coefficients"),
        (3, "formula"), ("covered ~ `age", "backquote"), ("covered ~ poly(age, 2)", OK),
    ]:
        cases.append((f"d.glm({formula!r}, family='quasibinomial')", expect))
    cases += [
        ("d.glm('covered ~ age', family='nope')", "family|nope"),
        ("d.glm('covered ~ age', family='binomial', link='nope')", "link|nope"),
        ("d.glm('covered ~ age', maxit=0)", "maxit|converge|iteration"),
        ("d.glm('covered ~ age', level=2)", "level"),
        ("d.glm('population_type ~ age', family='gaussian')", "outcome|numeric"),
        ("d.glm('covered ~ age', family='poisson')", OK),
        ("d.glm('covered ~ age', family='Gamma')", "Gamma|positive|outcome|range|zero|converge"),
        ("d.with_columns({'sep': (df.age > 40).astype(float)}).glm('sep ~ age', family='binomial')",
         "separat|converge"),
        ("d.glm('covered ~ age').wald_test('nope')", "nope"),
        ("d.glm('covered ~ age').predict(pd.DataFrame({'x': [1]}))", "age"),
        ("d.threshold_glm('covered ~ age', 'nope')", "'nope'"),
        ("d.threshold_glm('covered ~ age + monthly_income', 'monthly_income', grid=[-1e9])", "grid|range|candidate"),
        ("d.threshold_glm('covered ~ age', 'monthly_income', kind='nope')", "kind|nope"),
        ("d.with_columns({'t': 1.0 + df.age, 'e': 1}).km('t', 'e')", OK),
        ("d.with_columns({'t': -1.0, 'e': 1}).km('t', 'e')", "'t'.*negative|negative"),
        ("d.with_columns({'t': 1.0, 'e': 3}).km('t', 'e')", "'e'|event"),
        ("d.km('nope', 'covered')", "'nope'"),
        ("d.with_columns({'t': 1.0 + df.age, 'e': df.covered}).coxph('Surv(t, e) ~ nope')", "'nope'"),
        ("d.with_columns({'t': 1.0 + df.age, 'e': df.covered}).coxph('t ~ age')", "Surv"),
        ("d.with_columns({'t': 1.0 + df.age, 'e': df.covered}).coxph('Surv(t, e) ~ age', ties='nope')", "ties"),
        ("d.poststratify('nope', {1: 1})", "'nope'"),
        ("d.poststratify('population_type', {'x': 10})", "population|categor|level|target"),
        ("d.poststratify('population_type', {k: -1.0 for k in df.population_type.unique()})",
         "negative|population|count"),
        ("d.poststratify('population_type', pd.DataFrame({'population_type': ['a'], 'Freq': [1.0]}))",
         "population|level|target|Freq"),
        ("d.poststratify('population_type', 'x')", "population|total"),
        ("d.rake([])", "margin"), ("d.rake({'nope': {1: 1}})", "'nope'|margin"),
        ("d.rake([('population_type', {'x': 1.0})])", "population|level|target|margin"),
        ("d.calibrate('~age', {'(Intercept)': 1e4, 'age': np.nan})", "age|total|finite|missing"),
        ("d.calibrate('~age', {'(Intercept)': 1e4})", "age|total"),
        ("d.calibrate('~nope', {'(Intercept)': 1e4})", "'nope'"),
        ("d.calibrate('~age', {'(Intercept)': 1e4, 'age': 1e5}, calfun='nope')", "calfun|nope"),
        ("d.calibrate('~age', {'(Intercept)': 1e4, 'age': 1e5}, bounds=(2, 1))", "bounds|feasible|converge"),
        ("d.calibrate('~age', {'(Intercept)': -1e4, 'age': 1e5})", "negative|Intercept|converge|feasible"),
        ("d.trim_weights(upper=-1)", "upper|bounds|trim|lower"),
        ("d.trim_weights(lower=10, upper=1)", "lower|upper"),
        ("d.trim_weights(upper=np.nan)", "upper|NaN|bound"),
        ("d.adjust_nonresponse('nope', classes='stratum')", "'nope'"),
        ("d.adjust_nonresponse('covered', classes='nope')", "'nope'"),
        ("d.with_columns({'r': 2}).adjust_nonresponse('r', classes='stratum')", "'r'|0 or 1|respond"),
    ]
    return cases


def io_cases() -> list[tuple[str, str | None]]:
    return [
        ("ssc.load('{\"a\": 1}')", "not sscoverage output"),
        ("ssc.load('not json')", "no file|JSON"),
        ("ssc.load('{bad json')", "not JSON"),
        ("ssc.load(3)", "path|JSON"),
        ("ssc.load('/nonexistent/file.json')", "no file"),
        ("ssc.load('{\"sscoverage\": 1, \"kind\": \"sscoverage.cli:main\"}')", "not a kind"),
        ("ssc.load('{\"sscoverage\": 1, \"kind\": \"design\", \"design\": {}}')", "data="),
        ("ssc.load(d.to_json(), data=df.iloc[:5])", "not the design's|PSU"),
        ("ssc.load(d.to_json(), data=None)", "data="),
        ("ssc.load(d.mean('covered').to_json().replace('\"level\": 0.95', '\"level\": \"x\"'))", "level"),
        ("ssc.read_survey('/nonexistent.csv')", "nonexistent|file"),
        ("ssc.read_survey('/etc/hostname.xyz')", "xyz|format|file"),
        ("ssc.coverage_table(d, schemes=['nope'])", "nope"),
        ("ssc.lapse_indicators(df)", "column|lapse|missing|'"),
        ("ssc.population_type(df, 'nope', 'nope2')", "is not in the data"),
        ("ssc.Design(pl.from_pandas(df).lazy(), ids='psu', strata='stratum', weights='weight')"
         ".quantile('age', 0.5, qrule='hf7')", "collect"),
        ("ssc.Design(pl.from_pandas(df).lazy(), ids='psu', weights='weight').quantile('age', 0.5, "
         "interval_type='score')", "collect"),
        ("ssc.Design(pl.from_pandas(df).lazy(), ids='psu', weights='weight').quantile('nope', 0.5)", "'nope'"),
        ("ssc.Design(pl.from_pandas(df.assign(age=np.inf)).lazy(), ids='psu', weights='weight').quantile('age', 0.5)",
         "infinite"),
        ("ssc.Design(pl.from_pandas(df).lazy(), ids='psu', weights='weight').quantile('population_type', 0.5)",
         "numeric"),
        ("ssc.Design(pl.from_pandas(df.assign(weight=-1.0)).lazy(), ids='psu', weights='weight')", "negative"),
        ("ssc.Design(pl.from_pandas(df.assign(weight=np.nan)).lazy(), ids='psu', weights='weight')", "missing"),
        ("ssc.Design(pl.from_pandas(df.assign(age=np.inf)).lazy(), ids='psu', weights='weight').mean('age')",
         "infinite"),
        ("ssc.Design(pl.from_pandas(df).lazy(), ids='psu', weights='nope')", "'nope'"),
        ("ssc.Design(pl.from_pandas(df).lazy(), ids='psu', weights='weight').mean('nope')", "'nope'"),
        ("ssc.Design(pl.from_pandas(df).lazy(), ids='psu', weights='weight').glm('covered ~ os.system(1)')",
         "formula"),
    ]


CASES = design_cases() + estimator_cases() + model_and_weighting_cases() + io_cases()


def run(code: str) -> dict:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([sys.executable, str(HARNESS), code], capture_output=True, text=True, env=env,
                          timeout=300)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"outcome": "crash", "type": f"exit {proc.returncode}", "message": proc.stderr[-800:]}
    return json.loads(lines[-1])


@pytest.fixture(scope="module")
def outcomes() -> dict[str, dict]:
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        return dict(zip((c for c, _ in CASES), pool.map(run, (c for c, _ in CASES))))


def test_there_are_at_least_150_cases():
    assert len(CASES) >= 150 and len({c for c, _ in CASES}) == len(CASES)


@pytest.mark.parametrize("code, expect", CASES, ids=[f"{i:03d}" for i in range(len(CASES))])
def test_bad_input_gets_a_clear_survey_error(outcomes, code, expect):
    got = outcomes[code]
    assert got["outcome"] in ("ok", "survey_error"), f"{code}\n{got}"
    if expect is OK:
        assert got["outcome"] == "ok", f"{code} should give a result\n{got}"
    else:
        assert got["outcome"] == "survey_error", f"{code} was accepted"
        assert re.search(expect, got["message"], re.I), f"{code}: {got['message']!r} does not name {expect!r}"
