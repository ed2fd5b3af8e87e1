"""The capability table: every public design method on every kind of design.

Builds each kind of design (pandas, polars, polars LazyFrame, Dask, replicate weights,
calibrated) on the same small data set, calls each method on it and records what happened:
``yes`` (a result), ``no`` (a ``SurveyError``: the design says it cannot do that, and the
message says why) or ``error`` (anything else: a bug).  ``python docs/_gen/capabilities.py``
prints the Markdown; the docs build calls :func:`markdown`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

import sscoverage as ssc

DESIGN = {"ids": "psu", "strata": "stratum", "weights": "weight"}


def sample() -> pd.DataFrame:
    """``ssc.demo_sample()`` (2,000 persons) with a survival time and an event."""
    df = ssc.demo_sample()
    rng = np.random.default_rng(7)
    df["years"] = np.round(rng.exponential(8.0, size=len(df)), 1) + 0.1
    df["lapsed"] = (rng.random(len(df)) < 0.6).astype(float)
    # Levels in the order polars gives a categorical (its text sorted), so that every
    # kind of design has the same reference level and the same domain order.
    df["population_type"] = df["population_type"].cat.reorder_categories(sorted(df["population_type"].cat.categories))
    return df


def _population(df: pd.DataFrame, column: str) -> dict[str, float]:
    """Population counts 5% above the sample's weighted counts (a plausible target)."""
    return {str(k): 1.05 * float(v) for k, v in df.groupby(column, observed=True)["weight"].sum().items()}


def kinds(df: pd.DataFrame) -> dict[str, Callable[[], Any]]:
    """How to build each kind of design (called lazily, so a failure is recorded too)."""
    import dask.dataframe as dd

    def calibrated() -> Any:
        pop = _population(df, "population_type")
        levels = list(df["population_type"].cat.categories)
        totals = {"(Intercept)": sum(pop.values()), **{f"population_type{lv}": pop[lv] for lv in levels[1:]}}
        return ssc.Design(df, **DESIGN).calibrate("~population_type", totals)

    return {
        "pandas": lambda: ssc.Design(df, **DESIGN),
        "polars": lambda: ssc.Design(pl.from_pandas(df), **DESIGN),
        "LazyFrame": lambda: ssc.Design(pl.from_pandas(df).lazy(), **DESIGN, batch_rows=700, progress=False),
        "Dask": lambda: ssc.Design(dd.from_pandas(df, npartitions=3), **DESIGN, progress=False),
        "replicate (JKn)": lambda: ssc.Design(df, **DESIGN).as_replicates("JKn"),
        "calibrated": calibrated,
    }


def methods(df: pd.DataFrame) -> dict[str, Callable[[Any], Any]]:
    """One call of each public method, named as the table shows it."""
    pop_type = _population(df, "population_type")
    pop_stratum = _population(df, "stratum")
    low_income = {"column": "monthly_income", "op": "<", "value": 6000.0}
    return {
        "`mean`": lambda d: d.mean("covered"),
        "`mean(by=)`": lambda d: d.mean("covered", by="population_type"),
        "`mean` of a factor (proportions)": lambda d: d.mean("population_type"),
        "`total`": lambda d: d.total("covered"),
        "`ratio`": lambda d: d.ratio("covered", "lapsed"),
        "`subset`": lambda d: d.subset(low_income).mean("covered"),
        "`quantile`": lambda d: d.quantile("monthly_income", [0.5]),
        "`quantile(by=)`": lambda d: d.quantile("monthly_income", [0.25, 0.75], by="population_type"),
        "`ciprop`": lambda d: d.ciprop("covered"),
        "`chisq`": lambda d: d.chisq("population_type", "stratum"),
        "`contrast`": lambda d: d.contrast("covered", [1, -1, 0, 0], "mean", by="population_type"),
        "`glm`": lambda d: d.glm("covered ~ monthly_income + population_type", family="quasibinomial"),
        "`glm(...).wald_test`": lambda d: d.glm("covered ~ monthly_income + population_type",
                                                family="quasibinomial").wald_test("population_type"),
        "`km`": lambda d: d.km("years", "lapsed", times=[1.0, 5.0]),
        "`km(se=True)`": lambda d: d.km("years", "lapsed", times=[1.0, 5.0], se=True),
        "`coxph`": lambda d: d.coxph("Surv(years, lapsed) ~ monthly_income"),
        "`poststratify`": lambda d: d.poststratify("population_type", pop_type).mean("covered"),
        "`rake`": lambda d: d.rake({"population_type": pop_type, "stratum": pop_stratum}).mean("covered"),
        "`calibrate`": lambda d: d.calibrate("~monthly_income", {"(Intercept)": float(sum(pop_type.values())),
                                                                  "monthly_income": 1.05 * float(
                                                                      (df.weight * df.monthly_income).sum())}
                                             ).mean("covered"),
        "`trim_weights`": lambda d: d.trim_weights(upper=float(df.weight.quantile(0.9))).mean("covered"),
        "`adjust_nonresponse`": lambda d: d.adjust_nonresponse("lapsed", classes="population_type").mean(
            "covered", na_rm=True),
        "`as_replicates`": lambda d: d.as_replicates("JKn").mean("covered"),
    }


def run() -> tuple[list[str], dict[str, dict[str, str]], list[str]]:
    """(kinds, {method: {kind: cell}}, notes)."""
    df = sample()
    notes: list[str] = []
    note_of: dict[str, int] = {}

    def outcome(call: Callable[[], Any]) -> str:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                call()
        except ssc.SurveyError as err:
            return _noted("no", f"{type(err).__name__}: {err}")
        except Exception as err:  # recorded, not hidden: the table says "error"
            return _noted("error", f"{type(err).__name__}: {err}")
        return "yes"

    def _noted(word: str, message: str) -> str:
        message = " ".join(message.split())
        if message not in note_of:
            notes.append(message)
            note_of[message] = len(notes)
        return f"{word} ({note_of[message]})"

    designs: dict[str, Any] = {}
    built: dict[str, str] = {}
    for kind, build in kinds(df).items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                designs[kind] = build()
        except Exception as err:
            built[kind] = _noted("error" if not isinstance(err, ssc.SurveyError) else "no",
                                 f"building the design: {type(err).__name__}: {err}")
    table: dict[str, dict[str, str]] = {}
    for name, call in methods(df).items():
        table[name] = {
            kind: built.get(kind) or outcome(lambda d=designs[kind], c=call: c(d)) for kind in kinds(df)
        }
    return list(kinds(df)), table, notes


def markdown() -> str:
    kind_names, table, notes = run()
    out = [
        "| method | " + " | ".join(kind_names) + " |",
        "| --- |" + " --- |" * len(kind_names),
    ]
    for name, row in table.items():
        out.append(f"| {name} | " + " | ".join(row[k] for k in kind_names) + " |")
    counts = {word: sum(cell.startswith(word) for row in table.values() for cell in row.values())
              for word in ("yes", "no", "error")}
    out += ["", f"{counts['yes']} yes, {counts['no']} no, {counts['error']} error "
                f"({len(table)} methods on {len(kind_names)} kinds of design, sscoverage {ssc.__version__}).", ""]
    if notes:
        out += ["Notes:", ""]
        out += [f"{i}. {message.replace('|', '&#124;')}" for i, message in enumerate(notes, 1)]
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    print(markdown())
