#!/usr/bin/env python
"""Benchmark: estimates on data read from parquet, in memory versus streamed (a polars
LazyFrame in batches) versus Dask partitions — time and peak resident memory of each,
every run in its own process measured by ``/usr/bin/time -v``.  The estimates
(``--estimates``): ``table``, domain proportions with Taylor SEs; ``glm``, the
quasibinomial model ``y ~ C(domain)`` (one pass per IRLS iteration when streamed);
``rake``, raking to the domain margin and a second margin, then the table; ``ciprop``,
the logit intervals of the domain proportions (streamed: two passes and a check of the
values); ``chisq``, the Rao-Scott F test of y by domain (streamed: the levels, then the
cells); ``contrast``, the difference of two domain means with its joint covariance.

    python bench/bench_stream.py --rows 1e7            # writes the parquet files once
    python bench/bench_stream.py --rows 1e6 --files 4   # smoke test
    python bench/bench_stream.py --rows 2.4e8 --files 48 --paths streamed   # 8 GiB of columns

The streamed path's memory is bounded by one batch (``--batch-rows``) plus the table
of n_domains x n_PSUs sums; the in-memory path holds every column it reads.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).parent))
from bench_mean import make_data  # noqa: E402  (the same synthetic design)

RUN = {
    "memory": "d = ssc.Design(pl.scan_parquet(src).collect().to_pandas(), ids='psu', strata='stratum', weights='w')",
    "streamed": "d = ssc.Design(pl.scan_parquet(src), ids='psu', strata='stratum', weights='w', batch_rows={batch})",
    "dask": "import dask.dataframe as dd; d = ssc.Design(dd.read_parquet(src), ids='psu', strata='stratum', weights='w')",
}


def write_files(folder: Path, rows: int, files: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    if len(list(folder.glob("*.parquet"))) == files:
        return
    per = rows // files
    for i in range(files):
        pl.from_pandas(make_data(per, seed=1000 + i)).write_parquet(folder / f"part{i:03d}.parquet")


#: Each estimate, and the first of its numbers and standard errors to print.
ESTIMATE = {
    "table": "r = d.mean('y', by='domain'); first = (r.estimate[0], r.se[0])",
    "glm": "r = d.glm('y ~ C(domain)', family='quasibinomial', progress=False); first = (r.coef[1], r.se[1])",
    "rake": (
        "r = d.rake([('domain', dict(zip(range(8), [1e8] * 8))), ('stratum', dict(zip(range(50), [1.6e7] * 50)))])"
        ".mean('y', by='domain'); first = (r.estimate[0], r.se[0])"
    ),
    "ciprop": "r = d.ciprop('y', method='logit', by='domain'); first = (r.estimate[0], r.se[0])",
    "chisq": "r = d.chisq('y', 'domain'); first = (r.statistic, r.p_value)",
    "contrast": "r = d.contrast('y', [1, -1, 0, 0, 0, 0, 0, 0], by='domain'); first = (r.estimate[0], r.se[0])",
}


def measure(kind: str, estimate: str, src: str, batch: int) -> tuple[float, float, str]:
    code = (
        "import time, polars as pl, sscoverage as ssc\n"
        f"src = {src!r}\n"
        + RUN[kind].format(batch=batch) + "\n"
        "t = time.perf_counter()\n"
        + ESTIMATE[estimate] + "\n"
        "t = time.perf_counter() - t\n"
        "print('RESULT', t, *first)\n"
    )
    out = subprocess.run(["/usr/bin/time", "-v", sys.executable, "-c", code], capture_output=True, text=True, check=True)
    rss_kib = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", out.stderr).group(1))
    seconds, est, se = out.stdout.split("RESULT")[1].split()
    return float(seconds), rss_kib / 2**20, f"{float(est):.12g} ± {float(se):.6g}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=float, default=1e7)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--batch-rows", type=int, default=1_000_000)
    parser.add_argument("--folder", default="/tmp/ssc-bench-parquet")
    parser.add_argument("--paths", default=",".join(RUN), help="comma-separated: memory, streamed, dask")
    parser.add_argument("--estimates", default="table", help="comma-separated: " + ", ".join(ESTIMATE))
    args = parser.parse_args()
    rows = int(args.rows)
    folder = Path(args.folder) / f"{rows}"
    write_files(folder, rows, args.files)
    src = str(folder / "*.parquet")
    columns_gib = rows * (4 + 8 + 8 + 8 + 8) / 2**30  # stratum, psu, w, y, domain
    print(f"{rows:,} rows in {args.files} parquet files; columns read: {columns_gib:.2f} GiB uncompressed")
    print(f"{'estimate':>9} {'path':>10} {'time':>10} {'peak RSS':>10}   first number (estimate ± se)")
    for estimate in args.estimates.split(","):
        for kind in args.paths.split(","):
            seconds, rss, first = measure(kind, estimate, src, args.batch_rows)
            print(f"{estimate:>9} {kind:>10} {seconds:>9.2f}s {rss:>8.2f}Gi   {first}", flush=True)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
