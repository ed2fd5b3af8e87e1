"""Run R-survey reference cases (shared/reference/FORMAT.md) through the public API.

Usage: python tests/reference/run_cases.py PATH [PATH ...]

Each PATH is a case file or a folder (its ``cases/*.json``, or its ``*.json``).  One
line per case, ``PASS id`` or ``FAIL id: what differed``, then ``N passed, M failed``;
the exit code is 0 only when nothing failed.  An operation not implemented yet fails.
"""

from __future__ import annotations

import json
import math
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

import sscoverage as ssc

# Operations and design kinds that later issues bring; the pytest module skips these
# by name, visibly, and this runner counts them as failures.
PENDING_OPS: dict[str, str] = {}
PENDING_DESIGNS: dict[str, str] = {}
# Operations that work on linearisation designs but not yet on replicate-weight ones.
PENDING_ON_REPLICATES: dict[str, str] = {}


# Expected keys that are labels or checked elsewhere, not numbers of the table; `df` is
# the generator's degf(design) of the design as built, informational (with na_rm R's
# interval uses the df of the rows left, which the se and limits already check).
NOT_COMPARED = ("labels", "domains", "terms", "groups", "weight_sum", "df")


# The shared battery beside the checkout (../shared/reference), as CI lays it out.
SHARED_REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference"


class NotImplementedCase(Exception):
    """The case needs an operation sscoverage does not have yet."""


def pending_reason(case: dict[str, Any]) -> str | None:
    """Why a case cannot run yet (operation or design kind of a later issue), or None."""
    op = case["op"]
    if op == "by":
        op = case["args"]["inner"]["op"]
    for key, issue in PENDING_DESIGNS.items():
        if key in case["design"]:
            return f"{key} designs arrive with {issue}"
    if op in PENDING_OPS:
        return f"op {op!r} arrives with {PENDING_OPS[op]}"
    if op in PENDING_ON_REPLICATES and ("replicates" in case["design"] or "as_replicates" in case["design"]):
        return f"op {op!r} on replicate designs arrives with {PENDING_ON_REPLICATES[op]}"
    return None


def load_cases(paths: list[str]) -> list[tuple[dict[str, Any], Path]]:
    """(case, data folder) for every case under the given files or folders."""
    out = []
    for p in map(Path, paths):
        files = sorted((p / "cases").glob("*.json")) if (p / "cases").is_dir() else (
            sorted(p.glob("*.json")) if p.is_dir() else [p]
        )
        for f in files:
            data_dir = f.parent.parent / "data"
            for case in json.loads(f.read_text()):
                out.append((case, data_dir))
    return out


@lru_cache(maxsize=None)
def _index(data_dir: Path) -> dict[str, dict[str, Any]]:
    index = data_dir / "INDEX.json"
    if not index.exists():
        return {}
    return {entry["file"]: entry for entry in json.loads(index.read_text())}


@lru_cache(maxsize=None)
def _read_csv(path: Path) -> pd.DataFrame:
    # R wrote NA as an empty field; nothing else is missing (a school may be called "NA").
    return pd.read_csv(path, keep_default_na=False, na_values=[""])


def _r_label(value: Any) -> str:
    """R's as.character of a value."""
    if isinstance(value, (bool, np.bool_)):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def load_data(case: dict[str, Any], data_dir: Path) -> pd.DataFrame:
    """The case's data as R saw it: factors with R's levels, logicals as factors."""
    df = _read_csv(data_dir / case["data"]).copy()
    factors = dict(_index(data_dir).get(case["data"], {}).get("factors", {}))
    factors.update(case.get("factors", {}))
    for col in df.columns:
        values = df[col]
        if values.dtype == bool or set(values.dropna().unique()) <= {"TRUE", "FALSE", True, False} and values.notna().any() and values.dtype == object:
            factors.setdefault(col, ["FALSE", "TRUE"])
    for col, levels in factors.items():
        if col in df.columns:
            as_text = df[col].map(lambda v: None if pd.isna(v) else _r_label(v))
            df[col] = pd.Categorical(as_text, categories=[str(lv) for lv in levels])
    return df


def build_design(case: dict[str, Any], data_dir: Path, df: pd.DataFrame) -> ssc.Design:
    spec = dict(case["design"])
    sub = spec.get("subset")
    if sub is not None and isinstance(sub.get("value"), bool):
        # load_data read logical columns as R's factor labels.
        spec["subset"] = {**sub, "value": _r_label(sub["value"])}
    if "replicates" in spec:
        rep = {k: v for k, v in spec["replicates"].items() if v is not None}
        return ssc.ReplicateDesign(df, subset=spec.get("subset"), **rep)
    conversion = spec.pop("as_replicates", None)
    pps = spec.get("pps")
    if isinstance(pps, dict) and pps.get("method") == "ppsmat":
        joint = pd.read_csv(data_dir / pps["joint_probs"]).to_numpy(dtype=float)
        spec["pps"] = {"method": "ppsmat", "joint_probs": joint}
    design = ssc.Design(df, **spec)
    if conversion is None:
        return design
    return design.as_replicates(conversion["type"], rho=conversion.get("rho") or 0.0, mse=conversion.get("mse", False))


def run_op(design: ssc.Design, op: str, args: dict[str, Any], by: list[str] | None = None) -> ssc.Estimates:
    if op in ("mean", "total"):
        return getattr(design, op)(args["y"], by=by, na_rm=args.get("na_rm", False), deff=args.get("deff", False))
    if op == "ratio":
        return design.ratio(args["numerator"], args["denominator"], by=by, na_rm=args.get("na_rm", False))
    if op == "by":
        inner = args["inner"]
        return run_op(design, inner["op"], inner["args"], by=args["by"])
    if op == "quantile":
        return design.quantile(
            args["y"],
            args["quantiles"],
            by=by,
            level=1 - args.get("alpha", 0.05),
            qrule=args.get("qrule", "math"),
            interval_type=args.get("interval_type", "mean"),
            na_rm=args.get("na_rm", False),
        )
    if op == "chisq":
        row, col = (term.strip() for term in args["formula"].lstrip("~").split("+"))
        return design.chisq(row, col, args.get("statistic", "F"))
    if op == "contrast":
        inner = args["inner"]
        by_inner = inner["args"]["by"] if inner["op"] == "by" else None
        if by_inner is not None:
            inner = inner["args"]["inner"]
        return design.contrast(
            inner["args"]["y"], args["contrast"], inner["op"], by=by_inner, na_rm=inner["args"].get("na_rm", False)
        )
    if op == "ciprop":
        return design.ciprop(
            args["y"][0], args["method"], level=args.get("level", 0.95), by=by, na_rm=args.get("na_rm", False)
        )
    if op == "glm":
        return design.glm(args["formula"], args.get("family", "gaussian"), args.get("link"), levels=args.get("levels"))
    if op == "km":
        return design.km(
            args["time"], args["event"], by=args.get("by"), times=args["times"], se=args.get("se", False),
            na_rm=args.get("na_rm", False),
        )
    if op == "coxph":
        return design.coxph(args["formula"], ties=args.get("ties", "efron"), levels=args.get("levels"))
    if op in WEIGHTING_OPS:
        adjusted = _adjust(design, op, args)
        then = args["then"]
        inner = run_op(adjusted, then["op"], then["args"], by)
        return inner if isinstance(inner, Weighted) else Weighted(inner, float(adjusted.weights.sum()))
    raise NotImplementedCase(f"op {op!r} is not implemented")


WEIGHTING_OPS = ("calibrate", "rake", "poststratify", "trim_weights")


class Weighted(NamedTuple):
    """What the `then` op gave on an adjusted design, and the sum of the final weights."""

    result: Any
    weight_sum: float


def _adjust(design: ssc.Design, op: str, args: dict[str, Any]) -> ssc.Design:
    """The design after one weighting op (R's calibrate / rake / postStratify / trimWeights)."""
    if op == "calibrate":
        return design.calibrate(
            args["formula"], args["population"], args.get("calfun", "linear"), args.get("bounds"),
            args.get("epsilon", 1e-7), args.get("maxit", 50),
        )
    if op == "rake":
        return design.rake(args["margins"], args.get("control"))
    if op == "poststratify":
        return design.poststratify(args["strata"], args["population"])
    return design.trim_weights(args.get("lower", -math.inf), args.get("upper", math.inf), args.get("strict", False))


def _close(got: float, want: float | None, tol: dict[str, float]) -> bool:
    if want is None:
        return got is None or (isinstance(got, float) and math.isnan(got))
    return abs(got - want) <= tol.get("abs", 0.0) + tol.get("rel", 0.0) * abs(want)


def compare(case: dict[str, Any], result: ssc.Estimates) -> list[str]:
    """What differs between R's expected numbers and the result (empty = pass)."""
    if isinstance(result, Weighted):
        want = case["expected"].get("weight_sum")
        problems = [] if want is None or _close(result.weight_sum, want[0], case["tolerance"]) else [
            f"weight_sum = {result.weight_sum!r}, R {want[0]!r}"
        ]
        return problems + compare(case, result.result)
    exp = case["expected"]
    tol = case["tolerance"]
    if "terms" in exp:
        return _compare_terms(exp, tol, result)
    if case["op"] == "km":
        return _compare_km(exp, tol, result)
    table = result.table
    problems = []
    if case["op"] == "by":
        by = case["args"]["by"]
        keys = [tuple(_r_label(v) for v in row) for row in table[by].itertuples(index=False)]
        rows_of: dict[tuple[str, ...], list[int]] = {}
        for i, k in enumerate(keys):
            rows_of.setdefault(k, []).append(i)
        order: list[int] = []
        for dom in exp["domains"]:
            hit = rows_of.get(tuple(dom))
            if hit is None:
                return [f"domain {dom} missing from the result (have {sorted(rows_of)})"]
            order.extend(hit)
        if len(order) != len(table):
            problems.append(f"{len(table)} rows, R has {len(order)}")
        flatten = lambda v: [x for d in v for x in (d if isinstance(d, list) else [d])]  # noqa: E731
    else:
        order = list(range(len(table)))
        flatten = lambda v: list(v)  # noqa: E731
    if "labels" in exp:
        labels = [table["label"].iloc[i] for i in order]
        per = len(exp["labels"])
        if labels[:per] != exp["labels"]:
            problems.append(f"labels {labels[:per]} != R {exp['labels']}")
    # Every number R printed: table columns (estimate, se, deff, interval limits, df)
    # or, for a test, the result's own fields (statistic, ndf, ddf, p_value).
    for key in exp:
        if key in NOT_COMPARED:
            continue
        if key in table.columns:
            got = [float(table[key].iloc[i]) for i in order]
        elif hasattr(result, key):
            value = getattr(result, key)
            got = [float("nan") if value is None else float(value)]
        else:
            problems.append(f"no {key} in the result")
            continue
        raw = exp[key] if isinstance(exp[key], list) else [exp[key]]
        want = flatten(raw) if exp[key] is not None else [None] * len(got)
        if len(want) != len(got):
            problems.append(f"{key}: {len(got)} values, R has {len(want)}")
            continue
        for i, (g, w) in enumerate(zip(got, want)):
            if not _close(g, w, tol):
                problems.append(f"{key}[{i}] = {g!r}, R {w!r}")
    return problems


def _compare_km(exp: dict[str, Any], tol: dict[str, float], result: Any) -> list[str]:
    """Survival curves: each expected key holds the values at the case's times, one list
    per group (matched by label) when there are groups."""
    table = result.to_pandas()
    if "groups" in exp:
        labels = [_r_label(v) for v in table[result.by]]
        parts = {g: table[[lab == g for lab in labels]] for g in exp["groups"]}
        missing = [g for g, part in parts.items() if part.empty]
        if missing or len(set(labels)) != len(exp["groups"]):
            return [f"groups {sorted(set(labels))} != R {exp['groups']}"]
    else:
        parts = {None: table}
    problems = []
    for key in exp:
        if key in NOT_COMPARED:
            continue
        if key not in table.columns:
            problems.append(f"no {key} in the result")
            continue
        per_group = exp[key] if "groups" in exp else [exp[key]]
        for (group, part), want in zip(parts.items(), per_group):
            got = part[key].tolist()
            if len(got) != len(want):
                problems.append(f"{key}: {len(got)} values, R has {len(want)}")
                continue
            where = "" if group is None else f"[{group}]"
            problems += [
                f"{key}{where}[{i}] = {g!r}, R {w!r}" for i, (g, w) in enumerate(zip(got, want)) if not _close(g, w, tol)
            ]
    return problems


def _compare_terms(exp: dict[str, Any], tol: dict[str, float], result: Any) -> list[str]:
    """A regression model: coefficients matched by R's term names, then its scalars."""
    got_terms = list(result.terms)
    missing = [t for t in exp["terms"] if t not in got_terms]
    if missing or len(got_terms) != len(exp["terms"]):
        return [f"terms {got_terms} != R {exp['terms']}"]
    order = [got_terms.index(t) for t in exp["terms"]]
    problems = []
    for key in ("estimate", "se"):
        got = np.asarray(getattr(result, key))[order]
        problems += [f"{key}[{t}] = {g!r}, R {w!r}" for t, g, w in zip(exp["terms"], got, exp[key]) if not _close(float(g), w, tol)]
    for key in ("dispersion", "df_residual"):
        if key in exp and not _close(float(getattr(result, key)), exp[key][0], tol):
            problems.append(f"{key} = {getattr(result, key)!r}, R {exp[key][0]!r}")
    return problems


def run_case(case: dict[str, Any], data_dir: Path) -> list[str]:
    """Problems found running one case (empty list = pass)."""
    reason = pending_reason(case)
    if reason:
        raise NotImplementedCase(reason)
    df = load_data(case, data_dir)
    design = build_design(case, data_dir, df)
    return compare(case, run_op(design, case["op"], case["args"]))


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    passed = failed = 0
    for case, data_dir in load_cases(argv):
        try:
            problems = run_case(case, data_dir)
        except NotImplementedCase as err:
            problems = [f"not implemented: {err}"]
        except Exception as err:  # a case that raises has failed; say how
            problems = [f"{type(err).__name__}: {err}"]
        if problems:
            failed += 1
            print(f"FAIL {case['id']}: {'; '.join(problems[:3])}")
        else:
            passed += 1
            print(f"PASS {case['id']}")
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
