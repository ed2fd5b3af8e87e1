"""Smoke test of an installed wheel: one design mean against the number R's survey printed.

Run from outside the checkout (so the installed package is imported, not the source tree):
``python .ci/wheel_smoke.py ../shared/reference``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

import sscoverage as ssc

CASE_ID = "apistrat/mean/api00"


def main(reference: Path) -> None:
    case = next(c for c in json.loads((reference / "cases" / "taylor.json").read_text()) if c["id"] == CASE_ID)
    data = pd.read_csv(reference / "data" / case["data"])
    design = ssc.Design(data, **case["design"])
    result = design.mean(case["args"]["y"][0]).to_pandas()
    tol = case["tolerance"]
    for key in ("estimate", "se"):
        np.testing.assert_allclose(result[key].to_numpy(), case["expected"][key], rtol=tol["rel"], atol=tol["abs"])
    installed = Path(ssc.__file__).resolve()
    assert Path(sys.prefix).resolve() in installed.parents, f"imported sscoverage from {installed}, not this venv's wheel"
    print(f"{CASE_ID}: estimate {result['estimate'].iloc[0]:.6f}, se {result['se'].iloc[0]:.6f} as R ({case['r_call']})")
    print(f"sscoverage {ssc.__version__} from {installed.parent}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
