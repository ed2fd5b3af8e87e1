"""Every example in the package's docstrings runs, and prints what it says it prints."""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import sscoverage as ssc

PACKAGE = Path(ssc.__file__).parent


def _modules() -> list[str]:
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).with_suffix("").as_posix().replace("/", ".")
        names.append("sscoverage" + ("." + rel.removesuffix("__init__").rstrip(".") if rel != "__init__" else ""))
    return names


def _examples() -> list[tuple[str, doctest.DocTest]]:
    finder = doctest.DocTestFinder(exclude_empty=True)
    found = []
    for name in _modules():
        module = importlib.import_module(name)
        found += [(test.name, test) for test in finder.find(module) if test.examples]
    return found


EXAMPLES = _examples()


def test_the_docstrings_have_examples():
    # Design, Estimates, the formula grammar, sampling, the datasets and the coverage layer at least.
    assert len(EXAMPLES) >= 10


@pytest.mark.parametrize("test", [t for _, t in EXAMPLES], ids=[n for n, _ in EXAMPLES])
def test_example_runs(test: doctest.DocTest):
    # The names an example may take as given: the package, numpy, pandas, and a small
    # survey (`df`) with its design (`design`), as in the README.
    df = ssc.demo_sample(n_strata=4, psus_per_stratum=5, persons_per_psu=20, seed=1)
    test.globs.update(ssc=ssc, np=np, pd=pd, df=df, design=ssc.Design(df, ids="psu", strata="stratum", weights="weight"))
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    runner.run(test, out=lambda text: pytest.fail(text, pytrace=False))
    assert runner.failures == 0
