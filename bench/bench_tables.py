#!/usr/bin/env python
"""ciprop and chisq at scale, against the domain mean on the same design, and against
R's survey: ``mean("y", by="domain")``, ``ciprop("y", "logit", by="domain")`` and
``chisq("y", "domain")`` (a 2 x 8 table, Rao-Scott F) on bench_mean's data (50 strata x 20
PSUs, 8 domains), each on a fresh design, in one run.

    python bench/bench_tables.py                    # 1e6 rows, 5 repeats, R if present
    python bench/bench_tables.py --sizes 1e5 --repeats 2 --r-repeats 0
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

import sscoverage as ssc
from _common import fmt_s, max_rel, parse_sizes, repeat_timed  # bench/ is on sys.path
from bench_mean import make_data

R_SCRIPT = r"""
suppressMessages({library(survey); library(jsonlite)})
a <- commandArgs(TRUE)
dir <- a[1]; n <- as.integer(a[2]); repeats <- as.integer(a[3])
col <- function(name, what, size) {
  con <- file(file.path(dir, name), "rb"); on.exit(close(con)); readBin(con, what, n, size = size)
}
df <- data.frame(y = col("y", "double", 8), w = col("w", "double", 8), stratum = col("stratum", "integer", 4),
                 psu = col("psu", "integer", 4), domain = col("domain", "integer", 4))
des <- svydesign(ids = ~psu, strata = ~stratum, weights = ~w, data = df)
bench <- function(op, f, out) {
  times <- c()
  for (i in seq_len(repeats)) times <- c(times, system.time(res <- f())[["elapsed"]])
  cat(toJSON(c(list(op = op, times = I(times)), out(res)), digits = NA, auto_unbox = TRUE), "\n", sep = "")
}
bench("mean", function() svyby(~y, ~domain, des, svymean), function(r) list(est = unname(coef(r))))
bench("ciprop", function() svyby(~y, ~domain, des, svyciprop, method = "logit", vartype = "ci"),
      function(r) list(est = unname(coef(r)), low = unname(r[["ci_l"]]), high = unname(r[["ci_u"]])))
bench("chisq", function() svychisq(~y + domain, des, statistic = "F"),
      function(r) list(est = unname(r$statistic)))
"""


def run_r(df, repeats: int) -> dict[str, dict]:
    with tempfile.TemporaryDirectory() as tmp:
        for name, dtype in {"y": np.float64, "w": np.float64, "stratum": np.int32, "psu": np.int32,
                            "domain": np.int32}.items():
            df[name].to_numpy().astype(dtype).tofile(Path(tmp, name))
        Path(tmp, "bench.R").write_text(R_SCRIPT)
        proc = subprocess.run(["Rscript", str(Path(tmp, "bench.R")), tmp, str(len(df)), str(repeats)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            print(f"   R failed: {proc.stderr.strip()[-500:]}")
        return {rec.pop("op"): rec for rec in map(json.loads, filter(None, proc.stdout.splitlines()))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1e6")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--r-repeats", type=int, default=1, help="runs of R per estimate (0: no R)")
    args = parser.parse_args()
    print(f"sscoverage {ssc.__version__}, numpy {np.__version__}, python {sys.version.split()[0]}")
    for n in parse_sizes(args.sizes):
        df = make_data(n)
        df["y01"] = df["y"].astype(np.int64)  # the table's row variable, 0/1

        def design() -> ssc.Design:
            return ssc.Design(df, ids="psu", strata="stratum", weights="w")

        ops = {
            "mean": lambda d: d.mean("y", by="domain"),
            "ciprop": lambda d: d.ciprop("y", "logit", by="domain"),
            "chisq": lambda d: d.chisq("y01", "domain", "F"),
        }
        small = ssc.Design(df.head(20_000), ids="psu", strata="stratum", weights="w")
        for op in ops.values():  # imports and lazy set-up are not timed
            op(small)
        times, outs = {}, {}
        for name, op in ops.items():
            times[name], _, outs[name] = repeat_timed(op, args.repeats, setup=design)
        r = run_r(df, args.r_repeats) if args.r_repeats and shutil.which("Rscript") else {}
        print(f"\n{n:,} rows: median of {args.repeats} (fresh design each time)")
        print(f"{'estimate':10} {'ssc':>11} {'/ mean':>8} {'R':>11} {'R / ssc':>9}  max rel. diff. to R")
        for name in ops:
            t = times[name]
            line = f"{name:10} {fmt_s(t)} {t / times['mean']:7.1f}x"
            if name in r:
                r_t = float(np.median(r[name]["times"]))
                ours = outs[name]
                got = ([ours.statistic] if name == "chisq" else
                       np.r_[ours.table["estimate"], ours.table.get("ci_low", []), ours.table.get("ci_high", [])]
                       if name == "ciprop" else ours.table["estimate"])
                want = np.r_[r[name]["est"], r[name].get("low", []), r[name].get("high", [])]
                line += f" {fmt_s(r_t)} {r_t / t:8.0f}x  {max_rel(np.asarray(got, float), want):.1e}"
            print(line)


if __name__ == "__main__":
    main()
