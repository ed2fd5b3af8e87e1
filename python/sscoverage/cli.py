"""The ``sscoverage`` command line."""

from __future__ import annotations

import argparse
import sys

from .datasets import demo_sample
from .design import Design


def report(args: argparse.Namespace) -> int:
    """Coverage by population type on the package's own synthetic sample (until the
    coverage report lands, this demonstrates the estimation core end to end)."""
    df = demo_sample(seed=args.seed)
    design = Design(df, ids="psu", strata="stratum", weights="weight")
    print(f"Synthetic coverage survey: {len(df)} persons, {design.degf} design df\n")
    print(design.mean("covered", deff=True))
    print()
    print(design.mean("covered", by="population_type", df="design"))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sscoverage", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    rep = sub.add_parser("report", help="coverage estimates on the built-in synthetic sample")
    rep.add_argument("--seed", type=int, default=2024)
    rep.set_defaults(func=report)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
