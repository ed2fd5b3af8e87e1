"""A user's survey file for the report tests: five provinces of the bundled survey
whose county labels repeat across provinces (C1, C2, ... in each), with one
local/non-local column instead of the two county columns, reasons under other names,
label overrides and contribution records, and its mapping (``"nest": true``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

import sscoverage as ssc


def nested_survey(folder: Path) -> tuple[Path, Path, dict]:
    """Write ``survey.csv``, ``years.csv`` and ``map.json`` into `folder`; return the
    data path, the mapping path and the mapping."""
    survey = ssc.datasets.coverage_survey()
    persons = survey.persons[survey.persons["province"].isin(["P01", "P02", "P03", "P04", "P05"])].copy()
    number = persons.groupby("province")["county"].transform(lambda c: pd.factorize(c)[0])
    persons["county"] = "C" + (number + 1).astype(str)
    persons["hukou_here"] = np.where(persons["hukou_county"] == persons["residence_county"], "yes", "no")
    reasons = {c: "why_" + c.removeprefix("never_reason_") for c in persons.columns if c.startswith("never_reason_")}
    persons = persons.drop(columns=["population_type", "age_band", "weekly_hours_band", "income_band",
                                    "hukou_county", "residence_county"]).rename(columns={**reasons, "weight": "wt"})
    persons.to_csv(folder / "survey.csv", index=False)
    survey.histories[survey.histories["person_id"].isin(persons["person_id"])].to_csv(folder / "years.csv", index=False)
    mapping = {
        "design": {"ids": "county", "strata": "province", "weights": "wt", "nest": True},
        "population": {"local": "hukou_here", "local_values": ["yes"]},
        "reasons": {"never_insured": list(reasons.values())},
        "labels": {"zh": {"why_income_too_tight": "收入太紧"}, "en": {"why_income_too_tight": "Money is tight"}},
        "histories": {"file": "years.csv"},
    }
    (folder / "map.json").write_text(json.dumps(mapping, ensure_ascii=False), encoding="utf-8")
    return folder / "survey.csv", folder / "map.json", mapping
