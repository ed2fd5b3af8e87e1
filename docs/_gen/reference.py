"""The R reference battery, run by ``tests/reference/run_cases.py``, as counts per case file.

``python docs/_gen/reference.py`` prints the Markdown; the docs build calls
:func:`markdown`.  The runner runs in a subprocess, exactly as a user would run it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT.parent / "shared" / "reference"
RUNNER = ROOT / "tests" / "reference" / "run_cases.py"


def markdown() -> str:
    if not REFERENCE.is_dir():
        raise FileNotFoundError(f"the R reference battery is not at {REFERENCE}")
    run = subprocess.run([sys.executable, str(RUNNER), str(REFERENCE)], capture_output=True, text=True)
    lines = run.stdout.splitlines()
    if not lines or " passed, " not in lines[-1]:
        raise RuntimeError(f"run_cases.py printed no summary (exit {run.returncode}):\n{run.stderr[-2000:]}")
    outcome = {}
    for line in lines[:-1]:
        status, _, rest = line.partition(" ")
        outcome[rest.split(": ", 1)[0]] = status
    rows, totals, tolerances = [], Counter(), Counter()
    for path in sorted((REFERENCE / "cases").glob("*.json")):
        cases = json.loads(path.read_text())
        counts = Counter(outcome.get(case["id"], "missing") for case in cases)
        tolerances.update(case["tolerance"].get("rel", 0.0) for case in cases)
        totals.update(counts)
        rows.append(f"| `{path.name}` | {sum(counts.values())} | {counts['PASS']} | {counts['FAIL']} |")
    failures = [line for line in lines[:-1] if line.startswith("FAIL")]
    out = [
        f"**{lines[-1]}** (`python tests/reference/run_cases.py ../shared/reference`, run for this build).",
        "",
        "| case file | cases | pass | fail |",
        "| --- | --- | --- | --- |",
        *rows,
        f"| **all** | **{sum(totals.values())}** | **{totals['PASS']}** | **{totals['FAIL']}** |",
        "",
        "Relative tolerances of the cases (each also allows 1e-9 absolute): "
        + ", ".join(f"{rel:g} for {n}" for rel, n in sorted(tolerances.items())) + ".",
        "",
    ]
    if failures:
        out += ["Failing cases:", "", *(f"- `{line}`" for line in failures), ""]
    return "\n".join(out)


if __name__ == "__main__":
    print(markdown())
