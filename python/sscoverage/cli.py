"""The ``sscoverage`` command line: ``sscoverage report``, the package's main job, and
``sscoverage init``, which writes a mapping template for your data."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ._core import __version__
from .exceptions import SurveyError


def report(args: argparse.Namespace) -> int:
    """Write the coverage report (HTML, and JSON with ``--json``)."""
    from .report.report import build_report, bundled_study, study_from_files

    if (args.data is None) != (args.mapping is None):
        raise SystemExit("sscoverage report: give --data and --mapping together (or neither, for the bundled survey)")
    study = bundled_study(args.seed) if args.data is None else study_from_files(args.data, args.mapping)
    result = build_report(study, progress=not args.no_progress, lang=args.lang, flags=args.flags)
    Path(args.out).write_text(result.html(), encoding="utf-8")
    written = [args.out]
    if args.json is not None:
        Path(args.json).write_text(json.dumps(result.to_json(), indent=1, ensure_ascii=False), encoding="utf-8")
        written.append(args.json)
    if args.xlsx is not None:
        result.to_excel(args.xlsx)
        written.append(args.xlsx)
    print(f"wrote {', '.join(written)}")
    return 0


def init(args: argparse.Namespace) -> int:
    """Write a commented mapping template for a data file."""
    from .report.report import mapping_template

    out = Path(args.out)
    if out.exists() and not args.force:
        raise SystemExit(f"sscoverage init: {out} exists; pass --force to overwrite it")
    out.write_text(mapping_template(args.data), encoding="utf-8")
    print(f"wrote {out}; edit it, then: sscoverage report --data {args.data} --mapping {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sscoverage", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    rep = sub.add_parser(
        "report",
        help="coverage report (HTML and JSON) on the bundled synthetic survey or on your data",
        description="Coverage report: Table 1 with intervals, lapse, lapser profile, interruptions, reasons, "
        "employment presumption, contribution levels, lapse model.  Without --data: the bundled synthetic "
        "survey, with the study's published figures beside the estimates.",
    )
    rep.add_argument("--data", help="your survey: a .csv, .parquet or .dta file")
    rep.add_argument("--mapping", help="JSON column mapping for --data (see sscoverage.report.study_from_files)")
    rep.add_argument("--out", default="sscoverage-report.html", help="HTML file to write (default %(default)s)")
    rep.add_argument("--json", help="also write the report's numbers to this JSON file")
    rep.add_argument("--xlsx", help="also write the tables to this Excel workbook (a sheet per table)")
    rep.add_argument("--lang", choices=["en", "zh"], default="en", help="language of the report (default %(default)s)")
    rep.add_argument("--flags", choices=["nchs", "none"], help="reliability flags (default: the mapping's, else nchs)")
    rep.add_argument("--seed", type=int, default=2024, help="seed of the bundled survey (default %(default)s)")
    rep.add_argument("--no-progress", action="store_true", help="do not show progress")
    rep.set_defaults(func=report)
    ini = sub.add_parser(
        "init",
        help="write a commented mapping template for your data file",
        description="Write a JSON mapping for --data with the design columns guessed from their names.",
    )
    ini.add_argument("data", help="your survey: a .csv, .parquet or .dta file")
    ini.add_argument("--out", default="mapping.json", help="mapping file to write (default %(default)s)")
    ini.add_argument("--force", action="store_true", help="overwrite an existing file")
    ini.set_defaults(func=init)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except SurveyError as err:
        print(f"sscoverage {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
