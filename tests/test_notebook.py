"""The worked example in docs/ runs: every code cell, in order, in one namespace (as a
kernel would), with matplotlib drawing off screen.  No Jupyter is needed."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "docs" / "worked-example.ipynb"


def test_worked_example_runs():
    notebook = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    cells = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    assert cells and all(not c["outputs"] for c in cells), "commit the notebook without outputs"
    namespace: dict[str, object] = {"__name__": "__main__"}
    for number, cell in enumerate(cells, 1):
        source = "".join(cell["source"])
        exec(compile(source, f"{NOTEBOOK.name}, code cell {number}", "exec"), namespace)
    plt.close("all")


def test_readme_links_the_worked_example():
    assert "docs/worked-example.ipynb" in (ROOT / "README.md").read_text(encoding="utf-8")
