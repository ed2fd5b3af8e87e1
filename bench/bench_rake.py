#!/usr/bin/env python
"""Benchmark: raking a large sample to four categorical margins.

Times, on the same synthetic data and in the same process:

  a   ``design.rake(margins, control={"maxit": 100, "epsilon": EPS})`` on a built
      ``ssc.Design(df, weights="w")`` (the design build is timed separately, a0)
  b   a numpy IPF on the collapsed cell table: one bincount of the weights into the
      cells of the margins' cross-classification, the sweeps on that table with R's
      stopping rule, then each row's weight times its cell's factor
  c   the ``svy`` package (PyPI): ``Sample.weighting.rake(controls=..., tol=EPS)`` on a
      ``svy.Sample`` built untimed (its construction is printed as c0)

ssc's weights are asserted to equal the numpy baseline's to 1e-9 relative; svy's
largest relative difference is printed.  See bench/README.md.

    python bench/bench_rake.py                          # 1e6 and 1e7 rows, 3 repeats
    python bench/bench_rake.py --sizes 1e5 --repeats 2  # smoke test
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys

import numpy as np
import pandas as pd

import sscoverage as ssc
from _common import timed, peak_rss_gib  # bench/, the script's own folder, is on sys.path

#: The margins: column -> number of levels (8 x 2 x 10 x 5 = 800 cells).
MARGINS = {"age": 8, "sex": 2, "region": 10, "edu": 5}
EPS = 1e-9  # ssc / numpy: no cell changes by EPS * sum(w) in a sweep; svy: relative margin misfit
MAXIT = 100
RTOL = 1e-9  # ssc vs numpy weights

# (label, target, True if the ratio must be <= target else >=)
TARGETS = [("a/b", 2.0, True), ("c/a", 10.0, False)]


def make_data(n: int, seed: int = 1) -> tuple[pd.DataFrame, dict[str, dict[int, float]]]:
    """Rows with skewed margins and lognormal weights; population margins that differ
    from the sample's and agree on one total."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        name: rng.choice(k, size=n, p=rng.dirichlet(np.full(k, 3.0))).astype(np.int32)
        for name, k in MARGINS.items()
    })
    df["w"] = rng.lognormal(4.0, 0.6, size=n)
    total = df["w"].sum() * 1.15
    targets = {}
    for name, k in MARGINS.items():
        share = rng.dirichlet(np.full(k, 8.0))
        targets[name] = {level: total * s for level, s in enumerate(share)}
    return df, targets


def numpy_rake(codes: list[np.ndarray], w: np.ndarray, targets: list[np.ndarray]) -> tuple[np.ndarray, int]:
    """IPF on the collapsed cell table with R's rule: stop when no cell changes by
    EPS * sum(w) between sweeps.  Returns the raked row weights and the sweeps used."""
    shape = tuple(len(t) for t in targets)
    code = codes[0].astype(np.int64)
    for c, k in zip(codes[1:], shape[1:]):
        code = code * k + c
    table = np.bincount(code, weights=w, minlength=int(np.prod(shape))).reshape(shape)
    factor = np.ones(shape)
    epsilon = EPS * w.sum()
    old = table
    for sweep in range(1, MAXIT + 1):  # noqa: B007 (the count is returned)
        for m, target in enumerate(targets):
            axes = tuple(a for a in range(len(shape)) if a != m)
            current = (table * factor).sum(axis=axes)
            ratio = np.where(current > 0, target / np.where(current > 0, current, 1), 1.0)
            factor *= ratio.reshape([-1 if a == m else 1 for a in range(len(shape))])
        new = table * factor
        if np.abs(new - old).max() < epsilon:
            break
        old = new
    return w * factor.ravel()[code], sweep




def run(n: int, repeats: int, svy_repeats: int, svy_budget: float) -> dict[str, float]:
    df, targets = make_data(n)
    codes = [df[name].to_numpy() for name in MARGINS]
    target_arrays = [np.array([targets[name][k] for k in range(MARGINS[name])]) for name in MARGINS]
    w = df["w"].to_numpy()
    times: dict[str, list[float]] = {"a0": [], "a": [], "b": [], "c0": [], "c": []}
    ssc_weights = base_weights = svy_weights = None
    for _ in range(repeats):
        t, design = timed(lambda: ssc.Design(df, weights="w"))
        times["a0"].append(t)
        t, raked = timed(lambda: design.rake(targets, control={"maxit": MAXIT, "epsilon": EPS}))
        times["a"].append(t)
        ssc_weights = raked.weights
        t, (base_weights, sweeps) = timed(lambda: numpy_rake(codes, w, target_arrays))
        times["b"].append(t)
        del design, raked
    np.testing.assert_allclose(ssc_weights, base_weights, rtol=RTOL)
    try:
        import polars as pl
        import svy
    except ImportError:
        svy = None
    if svy is not None and svy_repeats > 0:
        pdf = pl.from_pandas(df)
        spent = 0.0
        for _ in range(svy_repeats):
            t, sample = timed(lambda: svy.Sample(pdf, svy.Design(wgt="w")))
            times["c0"].append(t)
            t, out = timed(lambda: sample.weighting.rake(controls=targets, tol=EPS, max_iter=MAXIT, wgt_name="rk"))
            times["c"].append(t)
            svy_weights = out.data["rk"].to_numpy()
            spent += t
            del sample, out
            if spent > svy_budget:
                break
    med = {k: statistics.median(v) if v else float("nan") for k, v in times.items()}
    med["sweeps"] = sweeps
    med["svy_diff"] = float(np.max(np.abs(svy_weights / base_weights - 1))) if svy_weights is not None else float("nan")
    return med


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1e6,1e7")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--svy-repeats", type=int, default=None)
    parser.add_argument("--svy-budget", type=float, default=120.0)
    args = parser.parse_args(argv)
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    svy_repeats = args.repeats if args.svy_repeats is None else args.svy_repeats
    try:
        import svy
        svy_version = svy.__version__
    except ImportError:
        svy_version = "not installed"
    print(f"Python {platform.python_version()}, numpy {np.__version__}, pandas {pd.__version__}, "
          f"sscoverage {ssc.__version__}, svy {svy_version}")
    run(20_000, 1, min(svy_repeats, 1), args.svy_budget)  # warm-up: imports and lazy initialisation
    header = "| rows | a0 Design | a rake | b numpy | c0 svy Sample | c svy rake | sweeps | a/b (<= 2) | c/a (>= 10) | svy vs b |"
    print(header)
    print("|" + " --- |" * (header.count("|") - 1))
    for n in sizes:
        m = run(n, args.repeats, svy_repeats, args.svy_budget)
        ratios = []
        for label, target, at_most in TARGETS:
            num, den = label.split("/")
            r = m[num] / m[den]
            ok = r <= target if at_most else r >= target
            ratios.append(f"{r:.2f} {'ok' if ok else 'MISS'}")
        print(f"| {n:.0e} | {m['a0'] * 1e3:.0f} ms | {m['a'] * 1e3:.0f} ms | {m['b'] * 1e3:.0f} ms | "
              f"{m['c0'] * 1e3:.0f} ms | {m['c'] * 1e3:.0f} ms | {m['sweeps']} | {ratios[0]} | {ratios[1]} | "
              f"{m['svy_diff']:.1e} |", flush=True)
    print(f"peak RSS {peak_rss_gib():.1f} GiB")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
