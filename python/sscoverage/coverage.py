"""The study's vocabulary on top of the generic estimators: scheme trees, population
types, lapse, profiles, contribution histories, reasons and the employment presumption.

Every number here is a composition of :meth:`Design.mean` / :meth:`Design.total`
(with ``by``), :meth:`Design.subset` and, for quantities the fused pass does not form,
:meth:`Design._influence_vcov`: there is no variance formula of its own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd

#: The four population types of the study, from hukou location and hukou type.
POPULATION_TYPES = ["local_urban", "local_rural", "urban_to_urban_migrant", "rural_to_urban_migrant"]


@lru_cache(maxsize=1)
def _figures_text() -> str:
    return resources.files("sscoverage").joinpath("data", "figures.json").read_text(encoding="utf-8")


def published_figures() -> dict[str, Any]:
    """The study's published figures (WP No.212-20251117, SSL/CISS, CASS), as shipped
    with the package: Table 1, lapse, interruption, reasons and model facts.

    Returns
    -------
    dict
        A fresh copy of ``figures.json`` (editing it changes nothing else).
    """
    return json.loads(_figures_text())


@dataclass(frozen=True)
class Bands:
    """Named bands of a numeric variable, as the study tabulates them.

    Parameters
    ----------
    edges : increasing band edges (``len(labels) + 1`` of them).
    labels : one label per band.
    right : bands closed on the right, ``(a, b]``; otherwise ``[a, b)``.
    """

    edges: tuple[float, ...]
    labels: tuple[str, ...]
    right: bool = False

    def cut(self, values: Any) -> pd.Categorical:
        """The band of each value; a value outside every band is missing."""
        return pd.cut(np.asarray(values, dtype=np.float64), self.edges, right=self.right, labels=list(self.labels))


#: Age bands of the lapser profile (completed years).
AGE_BANDS = Bands((20, 30, 40, 50, 61), ("20-29", "30-39", "40-49", "50-60"))
#: Usual weekly working hours bands of the lapser profile.
HOURS_BANDS = Bands((1, 10, 25, 40, 60, np.inf), ("[1,10)", "[10,25)", "[25,40)", "[40,60)", "60+"))
#: Monthly after-tax income bands (yuan), with the study's 3,001-5,000 band of typical lapsers.
INCOME_BANDS = Bands(
    (-np.inf, 3000, 5000, 8000, 12000, np.inf),
    ("<=3000", "3001-5000", "5001-8000", "8001-12000", ">12000"),
    right=True,
)
