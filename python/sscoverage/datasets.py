"""Small synthetic samples that the package generates itself (no external data)."""

from __future__ import annotations

import numpy as np
import pandas as pd

POPULATION_TYPES = ["local_urban", "local_rural", "urban_to_urban_migrant", "rural_to_urban_migrant"]


def demo_sample(
    n_strata: int = 10,
    psus_per_stratum: int = 8,
    persons_per_psu: int = 25,
    seed: int = 2024,
) -> pd.DataFrame:
    """A stratified two-stage sample of workers with pension coverage, for demos and docs.

    Strata are provinces, PSUs counties drawn with replacement, persons drawn within
    each county; ``weight`` is the inverse of the selection probability.  Coverage
    (``covered``: basic pension) depends on the population type and on income, with a
    county effect, so the design effect is above one as in real coverage surveys.
    """
    rng = np.random.default_rng(seed)
    n_psu = n_strata * psus_per_stratum
    n = n_psu * persons_per_psu
    stratum = np.repeat(np.arange(1, n_strata + 1), psus_per_stratum * persons_per_psu)
    psu = np.repeat(np.arange(1, n_psu + 1), persons_per_psu)
    county_pop = rng.integers(20_000, 400_000, size=n_psu)
    weight = np.repeat(county_pop / persons_per_psu * n_strata / 4, persons_per_psu)
    ptype = rng.choice(4, size=n, p=[0.45, 0.31, 0.13, 0.11])
    income = np.round(rng.lognormal(mean=8.8, sigma=0.5, size=n), -1)
    county_effect = np.repeat(rng.normal(0, 0.6, size=n_psu), persons_per_psu)
    base = np.array([2.9, 1.9, 3.2, 2.1])[ptype]
    logit = base + 0.8 * (income > 5000) + county_effect
    covered = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)
    return pd.DataFrame(
        {
            "stratum": stratum,
            "psu": psu,
            "weight": weight,
            "population_type": pd.Categorical.from_codes(ptype, POPULATION_TYPES),
            "monthly_income": income,
            "covered": covered,
        }
    )
