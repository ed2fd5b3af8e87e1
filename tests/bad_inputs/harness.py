"""Runs one bad-input case in this process and prints its outcome as one JSON line:
``ok``, ``survey_error`` (a subclass of ssc.SurveyError, with its message) or ``other``
(any other exception: a Python internal that escaped).  A panic or an abort shows as
the process's exit status, which the test reads."""

from __future__ import annotations

import json
import sys
import warnings

import numpy as np
import pandas as pd
import polars as pl

import sscoverage as ssc

I64 = np.iinfo(np.int64)


def prelude() -> dict:
    df = ssc.demo_sample(n_strata=3, psus_per_stratum=3, persons_per_psu=6, seed=7)
    df["stratum"] = df["stratum"] + 1  # labels 1..3, not codes
    df["age"] = 20.0 + (np.arange(len(df)) * 7) % 40
    design = ssc.Design(df, ids="psu", strata="stratum", weights="weight")
    return {"ssc": ssc, "np": np, "pd": pd, "pl": pl, "df": df, "d": design, "I64": I64}


def main() -> None:
    code = sys.argv[1]
    scope = prelude()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            exec(code, scope)  # the test's own case text, never user input
        out = {"outcome": "ok"}
    except ssc.SurveyError as err:
        out = {"outcome": "survey_error", "type": type(err).__name__, "message": str(err)}
    except BaseException as err:  # noqa: BLE001 - a panic (PanicException) is a BaseException
        out = {"outcome": "other", "type": type(err).__name__, "message": str(err)[:500]}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
