#!/usr/bin/env python
"""Benchmark of quantiles with Woodruff intervals against the domain mean and R's survey.

Times, in one run on the same data (bench_mean's 50 strata x 20 PSUs with 8 domains,
plus a continuous, skewed ``y``):

  mean       ``design.mean("y", by="domain")``: the yardstick
  median     ``design.quantile("y", 0.5)``: the median with its Woodruff interval
  quartiles  ``design.quantile("y", [0.25, 0.5, 0.75], by="domain")``
  R          the same two quantile calls with ``svyquantile`` (and ``svyby``), if
             Rscript with the survey package is on PATH

and prints the ratios against the targets of issue 12: median <= 5 x mean, quartiles
by domain <= 10 x mean, R >= 20 x ssc for each quantile call.  Only the estimate is
timed: every ssc call gets a fresh design (built untimed), as in bench_mean.py.

    python bench/bench_quantile.py                     # 1e6 rows, 5 repeats
    python bench/bench_quantile.py --sizes 1e5 --repeats 2 --r-repeats 1
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

import sscoverage as ssc
from _common import fmt_s, max_rel, parse_sizes, repeat_timed  # bench/ is on sys.path
from bench_mean import make_data

PROBS = [0.25, 0.5, 0.75]
TARGETS = {"median": 5.0, "quartiles": 10.0}  # ssc quantile / ssc mean
R_TARGET = 20.0  # R / ssc per quantile call

R_SCRIPT = r"""
suppressMessages(library(survey))
args <- commandArgs(TRUE)
dir <- args[1]; n <- as.integer(args[2]); repeats <- as.integer(args[3])
col <- function(name, what) readBin(file.path(dir, name), what, n = n, size = if (what == "integer") 4 else 8)
df <- data.frame(stratum = col("stratum", "integer"), psu = col("psu", "integer"), w = col("w", "double"),
                 y = col("y", "double"), domain = col("domain", "integer"))
des <- svydesign(ids = ~psu, strata = ~stratum, weights = ~w, data = df)
timed <- function(f) { times <- numeric(0); for (i in seq_len(repeats)) { t0 <- proc.time()[["elapsed"]]; out <- f(); times <- c(times, proc.time()[["elapsed"]] - t0) }; list(times = times, out = out) }
m <- timed(function() svyquantile(~y, des, 0.5, ci = TRUE))
cat(sprintf('{"op": "median", "times": [%s], "est": [%s]}\n', paste(m$times, collapse = ","),
            sprintf("%.17g", m$out$y[1, 1])))
q <- timed(function() svyby(~y, ~domain, des, svyquantile, quantiles = c(0.25, 0.5, 0.75), ci = TRUE))
est <- as.vector(t(as.matrix(coef(q$out))))
cat(sprintf('{"op": "quartiles", "times": [%s], "est": [%s]}\n', paste(q$times, collapse = ","),
            paste(sprintf("%.17g", est), collapse = ",")))
"""


def make_frame(n: int, seed: int = 11) -> pd.DataFrame:
    """bench_mean's design columns with y replaced by a skewed continuous variable (an
    income-like lognormal with a PSU effect), so that quantiles have work to do."""
    df = make_data(n)
    rng = np.random.default_rng(seed)
    psu_effect = rng.normal(0.0, 0.3, int(df["psu"].max()) + 1)
    df["y"] = np.round(np.exp(8.0 + 0.1 * df["domain"] + psu_effect[df["psu"]] + rng.normal(0.0, 0.8, n)), 2)
    return df


def r_available() -> bool:
    if shutil.which("Rscript") is None:
        return False
    return subprocess.run(["Rscript", "-e", "suppressMessages(library(survey))"], capture_output=True).returncode == 0


def run_r(df: pd.DataFrame, repeats: int) -> dict[str, dict]:
    with tempfile.TemporaryDirectory() as tmp:
        for name, dtype in {"stratum": np.int32, "psu": np.int32, "w": np.float64, "y": np.float64,
                            "domain": np.int32}.items():
            df[name].to_numpy().astype(dtype).tofile(Path(tmp, name))
        Path(tmp, "bench.R").write_text(R_SCRIPT)
        proc = subprocess.run(["Rscript", str(Path(tmp, "bench.R")), tmp, str(len(df)), str(repeats)],
                              capture_output=True, text=True)
    if proc.returncode != 0:
        print(f"   R failed: {proc.stderr.strip()[-500:]}")
    return {rec.pop("op"): rec for rec in (json.loads(s) for s in proc.stdout.splitlines() if s.startswith("{"))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1e6")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--r-repeats", type=int, default=1, help="runs of each R call; 0 skips R")
    args = parser.parse_args()
    with_r = args.r_repeats > 0 and r_available()
    print(f"sscoverage {ssc.__version__}; R survey: {'yes' if with_r else 'not run'}")
    warm = make_frame(20_000)
    warm_design = ssc.Design(warm, ids="psu", strata="stratum", weights="w")
    warm_design.mean("y", by="domain")
    warm_design.quantile("y", PROBS, by="domain")
    for n in parse_sizes(args.sizes):
        df = make_frame(n)
        fresh = lambda: ssc.Design(df, ids="psu", strata="stratum", weights="w")  # noqa: E731
        calls = {
            "mean": lambda d: d.mean("y", by="domain"),
            "median": lambda d: d.quantile("y", 0.5),
            "quartiles": lambda d: d.quantile("y", PROBS, by="domain"),
        }
        times, outs = {}, {}
        for op, call in calls.items():
            times[op], _, outs[op] = repeat_timed(call, args.repeats, setup=fresh)
        print(f"\n{n:,} rows (50 strata x 20 PSUs, 8 domains), median of {args.repeats} runs")
        print(f"{'estimate':<11}{'ssc':>12}{'/ mean':>10}{'target':>9}")
        for op in calls:
            ratio = times[op] / times["mean"]
            target = TARGETS.get(op)
            mark = "" if target is None else f"<= {target:g} {'ok' if ratio <= target else 'MISS'}"
            print(f"{op:<11}{fmt_s(times[op]):>12}{ratio:>10.1f}   {mark}")
        if with_r:
            recs = run_r(df, args.r_repeats)
            print(f"{'R survey':<11}{'R':>12}{'R / ssc':>10}{'target':>9}   max rel. difference of the estimates")
            for op in ("median", "quartiles"):
                if op not in recs:
                    print(f"{op:<11}{'failed':>12}")
                    continue
                r_time = float(np.median(recs[op]["times"]))
                ratio = r_time / times[op]
                diff = max_rel(outs[op].estimate, np.asarray(recs[op]["est"], float))
                print(f"{op:<11}{fmt_s(r_time):>12}{ratio:>10.0f}   >= {R_TARGET:g} "
                      f"{'ok' if ratio >= R_TARGET else 'MISS'}   {diff:.1e}")


if __name__ == "__main__":
    main()
