"""Synthetic survey data that the package generates itself (no download).

Everything here is **synthetic**: made for learning and testing the package, never for
conclusions about China or any real population.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pandas as pd
from scipy import special

from .coverage import (
    AGE_BANDS,
    HOURS_BANDS,
    INCOME_BANDS,
    PLATFORM_CONTROLS,
    POPULATION_TYPES,
    SchemeTree,
    published_figures,
)
from ..design.design import Design

SURVEY_YEAR = 2024
JOB_TYPES = [
    "collective_enterprise",
    "private_enterprise",
    "individual_business",
    "social_organisation",
    "new_employment_form",
    "other_flexible",
]
WORK_STATUS = ["working", "not_working", "suspended"]
CONTRACT_TYPES = ["labour_contract", "service_agreement", "no_contract"]
PENSION_SCHEMES = ["employee", "resident", "none"]
SCHOOLING_YEARS = np.array([6, 9, 12, 15, 16, 19])
#: The Table 1 children that only an employer provides: held by employee-scheme members only.
EMPLOYER_SCHEMES = {
    "supplementary_pension": "enterprise_or_occupational_annuity",
    "supplementary_medical": "enterprise_supplementary_or_public_medical",
}

# What the study does not publish but a complete survey needs.  Shares of people who are
# not pension lapsers (the lapsers' are published), chosen so that with the published
# lapser figures the whole sample has the published profile.
_OTHERS = {
    "age_band": [0.22, 0.31, 0.27, 0.20],
    "weekly_hours": [0.02, 0.04, 0.20, 0.60, 0.14],
    "work_status": [0.95, 0.03, 0.02],
    "schooling": [0.05, 0.26, 0.30, 0.19, 0.17, 0.03],
}
_LAPSER_SCHOOLING = [0.10, 0.34, 0.30, 0.15, 0.10, 0.01]
# Non-flexible job types (collective, private, individual business, social organisation)
# of employee- and resident-scheme members, and the flexible share of the latter.
_NON_FLEXIBLE_JOBS = {"employee": [0.135, 0.745, 0.055, 0.065], "resident": [0.07, 0.37, 0.48, 0.08]}
_FLEXIBLE_SHARE_RESIDENT = 0.46
# Labour-contract shares; the two cells the published figures fix are solved for.
_CONTRACT = {"employee_flexible": 0.80, "resident": 0.18, "resident_flexible": 0.45, "lapser": 0.95}
_SERVICE_AGREEMENT = {"flexible": 0.60, "other": 0.25}
# Lapser income: below 3,000 yuan, in the published typical band, above 5,000 (the rest).
_LAPSER_INCOME = {"floor": 1500.0, "below": 0.12, "typical": 0.60}
_INCOME_SIGMA = 0.55
# How much more schooling platform workers who keep contributing have (a key shift).
_SCHOOLED_PLATFORM_MEMBERS = 0.6
_NEVER_INSURED_SHARE_OF_LAPSERS = 0.38
_REASON_SHARES = {"never": [0.58, 0.45, 0.33, 0.21, 0.06], "interrupt": [0.45, 0.37, 0.12, 0.08]}
_PLATFORM_CONTROL_SHARES = [0.80, 0.58, 0.72, 0.45, 0.38]
_EMPLOYEE_CONTRIBUTION = {"edges": [250.0, 400.0, 700.0, 1600.0], "below": 0.13}
_RESIDENT_GRADES = ([200, 300, 500, 700, 1000, 1500, 2000, 3000], [0.12, 0.12, 0.21, 0.15, 0.14, 0.10, 0.09, 0.07])
_PREVIOUS_RESIDENT_OF_EMPLOYEE_CHOOSERS = 0.15
_URBAN_EMPLOYED = 4.0e8
# Pension/medical status codes, in key order: employee-scheme member, resident-scheme
# member, pension lapser with resident medical insurance, and (3) lapser of both.
_EMPLOYEE, _RESIDENT, _LAPSE_PENSION = 0, 1, 2
_COUNTIES_IN_CHINA = 2851


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

    Parameters
    ----------
    n_strata : number of strata (provinces).
    psus_per_stratum : PSUs (counties) sampled in each stratum.
    persons_per_psu : persons sampled in each PSU.
    seed : seed of the random draws: the same sample on any machine.

    Returns
    -------
    pandas.DataFrame
        One row per person: ``stratum``, ``psu``, ``weight``, ``population_type``,
        ``monthly_income``, ``covered`` (0/1).

    Examples
    --------
    >>> ssc.demo_sample(n_strata=2, psus_per_stratum=3, persons_per_psu=4, seed=1).shape
    (24, 6)
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


@dataclass(frozen=True)
class CoverageSurvey:
    """The bundled synthetic coverage survey: a person table and a person-year table.

    Attributes
    ----------
    persons : one row per respondent (see :func:`coverage_survey` for the columns).
    histories : one row per respondent and year from the first job to the survey year:
        ``person_id``, ``year``, ``contributed`` (paid a basic-pension contribution).
    survey_year : the year of the survey, the last year of every history.
    """

    persons: pd.DataFrame
    histories: pd.DataFrame
    survey_year: int = SURVEY_YEAR

    def design(self) -> Design:
        """The survey's design: provinces as strata, counties as PSUs, ``weight``."""
        return Design(self.persons, ids="county", strata="province", weights="weight")


def coverage_survey(seed: int = 2024) -> CoverageSurvey:
    """A synthetic national coverage survey shaped like the study's (**synthetic data**).

    15,080 employed urban residents aged 20-60 in 31 provinces, with what the study
    asked: hukou and residence, participation in every scheme of its Table 1, job and
    contract, work, income, reasons for never insuring or interrupting, the five
    platform-control indicators, contribution levels and scheme switching, and a
    person-year history of pension contributions.  It is generated here, deterministically
    from `seed`, and is for learning and testing only: it reproduces the study's
    published aggregates (``ssc.coverage.published_figures()``) by construction, and says
    nothing about China beyond them.

    Parameters
    ----------
    seed : seed of the generator; the same seed always gives the same data.

    Returns
    -------
    CoverageSurvey
        ``persons`` and ``histories`` tables and ``design()``.

    Notes
    -----
    *Sample.* Provinces are strata; in each, counties (the PSUs) are drawn by simple
    random sampling from a synthetic county frame and persons by simple random sampling
    within each county.  ``weight`` is the plain inverse of the two selection
    probabilities: no PPS selection and no calibration (raking) are applied.

    *Calibration by construction.* Each variable is drawn within cells (population
    type, pension/medical status, job type, ...): rows of a cell are ordered by a key
    (county effects, age, income, noise) and each row's weighted rank is read through
    the quantile function of the published distribution for that cell.  The weighted
    shares and means of every published figure therefore hold up to half a person's
    weight, and the keys carry the associations (county clustering, income and
    schooling, the income threshold near 5,000 yuan) without disturbing them.  Table 1
    rates are reproduced within 0.5 percentage points (weighted), lapse and
    flexible-worker figures within 1 point, interruption figures within 10 %.

    Columns of ``persons``: ``person_id``; ``province`` (stratum), ``county`` (PSU),
    ``weight``; ``residence_county``, ``hukou_county``, ``hukou_type``,
    ``population_type``; ``sex``, ``age``, ``age_band``, ``schooling_years``,
    ``monthly_income`` (after tax, yuan), ``income_band``; ``job_type``,
    ``work_status``, ``weekly_hours``, ``weekly_hours_band``, ``contract_type``; the
    twelve scheme columns of Table 1's leaves (0/1; parents come from the scheme
    tree); ``first_job_year``; the ``control_*`` indicators (new-employment-form
    workers only); ``never_reason_*`` (asked of the never insured) and
    ``interrupt_reason_*`` (asked of those who ever interrupted contributions);
    ``employee_contribution_monthly``, ``resident_contribution_yearly``;
    ``pension_scheme`` and ``previous_pension_scheme`` (people free to choose).

    Examples
    --------
    >>> import sscoverage as ssc
    >>> survey = ssc.datasets.coverage_survey()
    >>> len(survey.persons)
    15080
    """
    figures = published_figures()
    rng = np.random.default_rng(seed)
    sample = _sample_frame(rng, figures["sample"]["n"], figures["sample"]["provinces"])
    draw = _Draw(rng, sample["weight"], sample["county_index"])
    people = _population(draw, figures)
    traits = _traits(draw, figures, people)
    schemes = _schemes(draw, figures, people, np.log(traits["monthly_income"]))
    history = _histories(draw, figures, traits, people["status"])
    answers = _answers(draw, figures, people, traits, history)
    persons = _persons_table(sample, people, traits, schemes, history, answers, rng)
    return CoverageSurvey(persons=persons, histories=history["records"])


class _Draw:
    """Weighted positions within cells, and the county effects and noise that key them.

    A row's position is its weighted rank within its cell when the cell's rows are
    ordered by a key: the midpoint of its share of the cell's weight.  Reading a target
    distribution off positions through its quantile function reproduces it exactly in
    the weighted cell (up to half a row's weight) whatever the weights, while the key
    decides *who* gets which value, so it carries the associations.
    """

    def __init__(self, rng: np.random.Generator, weight: np.ndarray, county: np.ndarray) -> None:
        self.rng = rng
        self.weight = weight
        self.county_index = county
        self.n = len(weight)

    def noise(self) -> np.ndarray:
        return self.rng.standard_normal(self.n)

    def county(self, sd: float) -> np.ndarray:
        """A county random effect with standard deviation `sd`, per row."""
        return self.rng.normal(0.0, sd, self.county_index.max() + 1)[self.county_index]

    def position(self, cell: np.ndarray, key: np.ndarray) -> np.ndarray:
        """Weighted rank in (0, 1) of each row within its cell (cell < 0 or False: NaN)."""
        cell = _cell_codes(cell)
        rows = np.flatnonzero(cell >= 0)
        c, k, w = cell[rows], key[rows], self.weight[rows]
        order = np.lexsort((k, c))
        c, w = c[order], w[order]
        cum = np.cumsum(w)
        starts = np.flatnonzero(np.r_[True, c[1:] != c[:-1]])
        sizes = np.diff(np.r_[starts, len(c)])
        before = np.r_[0.0, cum][starts]
        total = np.r_[cum[starts[1:] - 1], cum[-1]] - before
        u = np.full(self.n, np.nan)
        u[rows[order]] = (cum - w / 2 - np.repeat(before, sizes)) / np.repeat(total, sizes)
        return u

    def pick(self, cell: np.ndarray, key: np.ndarray, shares: Any) -> np.ndarray:
        """Category of each row with the given shares within its cell (one row of shares
        per cell code, or one for all); -1 outside every cell."""
        cell = _cell_codes(cell)
        shares = np.asarray(shares, dtype=np.float64)
        u = self.position(cell, key)
        out = np.full(self.n, -1)
        rows = cell >= 0
        table = shares[cell[rows]] if shares.ndim == 2 else shares
        out[rows] = _quantile_index(u[rows], table)
        return out


def _cell_codes(cell: np.ndarray) -> np.ndarray:
    cell = np.asarray(cell)
    return np.where(cell, 0, -1) if cell.dtype == bool else cell.astype(np.int64)


def _quantile_index(u: np.ndarray, shares: np.ndarray) -> np.ndarray:
    """Index of the category whose share of the cumulative distribution holds each u."""
    cum = np.cumsum(shares, axis=-1)
    cum = cum / cum[..., -1:]
    bounds = np.broadcast_to(cum[..., :-1], (len(u), cum.shape[-1] - 1))
    return (u[:, None] >= bounds).sum(axis=1)


def _tilted(support: np.ndarray, base: np.ndarray, mean: float, band: np.ndarray | None = None) -> np.ndarray:
    """The distribution on `support` nearest `base` (an exponential tilt) with the given
    mean; with `band` (each support point's band) every band keeps its base mass."""
    support = np.asarray(support, dtype=np.float64)
    band = np.zeros(len(support), dtype=np.int64) if band is None else band
    mass = np.bincount(band, weights=base)
    centred = support - support.mean()

    def probs(theta: float) -> np.ndarray:
        x = base * np.exp(theta * centred)
        return x * (mass / np.bincount(band, weights=x))[band]

    return probs(_solve(lambda theta: probs(theta) @ support, mean, -2.0, 2.0))


def _solve(f: Callable[[float], float], target: float, lo: float, hi: float) -> float:
    """The x in [lo, hi] where an increasing `f` meets `target` (bisection, to 1e-12 of
    the range: far below what a weighted rank can resolve)."""
    for _ in range(40):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if f(mid) < target else (lo, mid)
    return (lo + hi) / 2


def _banded(support: np.ndarray, bands: Any, shares: Any, mean: float | None = None) -> np.ndarray:
    """Probabilities on integer `support` with the given band shares, flat within each
    band or tilted to `mean`."""
    band = np.asarray(bands.cut(support).codes)
    shares = np.asarray(shares, dtype=np.float64) / np.sum(shares)
    base = shares[band] / np.bincount(band)[band]
    return base if mean is None else _tilted(support, base, mean, band)


def _rest(overall: float, lapsers: float, lapse_rate: float) -> float:
    """What the non-lapsers must average for the whole sample to average `overall`."""
    return (overall - lapse_rate * lapsers) / (1 - lapse_rate)


def _apportion(total: int, sizes: np.ndarray) -> np.ndarray:
    """Integers proportional to `sizes` that sum to `total` (largest remainder)."""
    quota = total * sizes / sizes.sum()
    out = np.floor(quota).astype(np.int64)
    out[np.argsort(out - quota)[: total - out.sum()]] += 1
    return out


def _sample_frame(rng: np.random.Generator, n: int, n_provinces: int) -> dict[str, np.ndarray]:
    """Provinces, sampled counties and persons, with inverse-probability weights.

    Counties are drawn by simple random sampling within province and persons by simple
    random sampling within county; the weight is (counties in frame / counties drawn) x
    (county population / persons drawn there).
    """
    employed = rng.lognormal(0.0, 0.6, n_provinces)
    employed *= _URBAN_EMPLOYED / employed.sum()
    persons = _apportion(n, np.sqrt(employed))  # square-root allocation across provinces
    in_frame = rng.integers(30, 140, n_provinces)
    drawn = np.clip(np.rint(persons / 55), 3, in_frame).astype(np.int64)
    province_of_county = np.repeat(np.arange(n_provinces), drawn)
    county_size = employed[province_of_county] / in_frame[province_of_county]
    county_size *= rng.lognormal(-0.125, 0.5, len(county_size))
    per_county = np.concatenate([_apportion(int(p), np.ones(k)) for p, k in zip(persons, drawn)])
    county_index = np.repeat(np.arange(len(per_county)), per_county)
    province = province_of_county[county_index]
    weight = (in_frame / drawn)[province] * (county_size / per_county)[county_index]
    codes = np.sort(rng.choice(np.arange(1, _COUNTIES_IN_CHINA + 1), len(per_county), replace=False))
    return {
        "province": province,
        "county_index": county_index,
        "county": codes[county_index],
        "weight": weight,
    }


def _population(draw: _Draw, figures: dict[str, Any]) -> dict[str, np.ndarray]:
    """Population type, pension/medical status, job type and contract of each person."""
    table1, lapse = figures["table1"], figures["lapse"]
    flex, contract = lapse["flexible_workers"], lapse["contract_employees"]
    share = np.array(table1["n"][1:], dtype=np.float64)
    share /= share.sum()
    everyone = np.zeros(draw.n, dtype=np.int64)
    migrant = draw.pick(everyone, draw.county(0.45) + draw.noise(), [share[:2].sum(), share[2:].sum()])
    rural = draw.pick(migrant, draw.county(0.45) + draw.noise(), share.reshape(2, 2))
    ptype = 2 * migrant + rural  # the order of POPULATION_TYPES

    def groups(row: str) -> np.ndarray:
        return np.array(table1["rows"][row][1:])

    employee, basic, medical = groups("employee_pension"), groups("basic_pension"), groups("basic_medical")
    # Employee-scheme members hold employee medical insurance too; pension lapsers whose
    # medical insurance holds are in the resident medical scheme: Table 1's near
    # equalities (employee medical = employee pension, resident medical = resident
    # pension + the difference of the two lapse rates).
    status_shares = np.column_stack([employee, basic - employee, medical - basic, 1 - medical])
    status = draw.pick(ptype, draw.county(0.35) + draw.noise(), status_shares)

    p_lapse = lapse["pension_lapse_rate"]
    all_employee = table1["rows"]["employee_pension"][0]
    all_resident = table1["rows"]["basic_pension"][0] - all_employee
    flexible_of_lapsers = flex["pension_lapsers"] / lapse["pension_lapsers"]
    # Medical lapsers are pension lapsers ("both" = medical among flexible workers).
    flexible_lapse_both = flex["both_lapsers"] / lapse["medical_lapsers"]
    flexible_lapse_pension = (flex["pension_lapsers"] - flex["both_lapsers"]) / (
        lapse["pension_lapsers"] - lapse["medical_lapsers"]
    )
    flexible_employee = (
        flex["share_of_sample"] - p_lapse * flexible_of_lapsers - all_resident * _FLEXIBLE_SHARE_RESIDENT
    ) / all_employee
    new_form_lapsers = flex["new_form_share_of_flexible_lapsers"]
    new_form_others = (flex["new_employment_form"] - new_form_lapsers * flex["pension_lapsers"]) / (
        flex["n"] - flex["pension_lapsers"]
    )
    lapser_jobs = np.array([lapse["job_type"][j] for j in JOB_TYPES[:4]])

    def jobs(non_flexible: Any, flexible: float, new_form: float) -> np.ndarray:
        non_flexible = np.asarray(non_flexible) / np.sum(non_flexible)
        return np.r_[(1 - flexible) * non_flexible, flexible * new_form, flexible * (1 - new_form)]

    job_shares = np.array(
        [
            jobs(_NON_FLEXIBLE_JOBS["employee"], flexible_employee, new_form_others),
            jobs(_NON_FLEXIBLE_JOBS["resident"], _FLEXIBLE_SHARE_RESIDENT, new_form_others),
            jobs(lapser_jobs, flexible_lapse_pension, new_form_lapsers),
            jobs(lapser_jobs, flexible_lapse_both, new_form_lapsers),
        ]
    )
    job = draw.pick(status, draw.county(0.3) + draw.noise(), job_shares)
    flexible = job >= JOB_TYPES.index("new_employment_form")

    # Labour contracts: the published share among lapsers fixes the flexible lapsers'
    # share, the published overall share fixes the non-flexible employee members'.
    contract_lapsers = contract["lapsers"] / lapse["pension_lapsers"]
    lapser_flexible = (contract_lapsers - (1 - flexible_of_lapsers) * _CONTRACT["lapser"]) / flexible_of_lapsers
    others = (
        contract["n"] / figures["sample"]["n"]
        - p_lapse * contract_lapsers
        - all_employee * flexible_employee * _CONTRACT["employee_flexible"]
        - all_resident * (1 - _FLEXIBLE_SHARE_RESIDENT) * _CONTRACT["resident"]
        - all_resident * _FLEXIBLE_SHARE_RESIDENT * _CONTRACT["resident_flexible"]
    )
    employee_non_flexible = others / (all_employee * (1 - flexible_employee))
    by_cell = [  # cell = 2 * status + flexible
        employee_non_flexible,
        _CONTRACT["employee_flexible"],
        _CONTRACT["resident"],
        _CONTRACT["resident_flexible"],
        _CONTRACT["lapser"],
        lapser_flexible,
        _CONTRACT["lapser"],
        lapser_flexible,
    ]
    labour = draw.pick(2 * status + flexible, draw.noise(), [[c, 1 - c] for c in by_cell]) == 0
    service = [[s, 1 - s] for s in (_SERVICE_AGREEMENT["other"], _SERVICE_AGREEMENT["flexible"])]
    agreement = draw.pick(np.where(labour, -1, flexible), draw.noise(), service) == 0
    contract_type = np.where(labour, 0, np.where(agreement, 1, 2))
    return {"ptype": ptype, "status": status, "job": job, "flexible": flexible, "contract": contract_type}


def _traits(draw: _Draw, figures: dict[str, Any], people: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Sex, age, schooling, income, hours and work status: pension lapsers from the
    published lapser profile, everyone else so that the whole sample has the published
    profile."""
    lapse, sample = figures["lapse"], figures["sample"]
    profile, p_lapse = lapse["lapser_profile"], lapse["pension_lapse_rate"]
    lapser = people["status"] >= _LAPSE_PENSION
    cell = lapser.astype(np.int64)  # 0: not a pension lapser, 1: lapser

    male = [_rest(sample["male"], profile["male"], p_lapse), profile["male"]]
    sex = draw.pick(cell, draw.noise(), [[m, 1 - m] for m in male])

    ages = np.arange(AGE_BANDS.edges[0], AGE_BANDS.edges[-1])
    age_mean = [_rest(sample["mean_age"], profile["mean_age"], p_lapse), profile["mean_age"]]
    age_shares = [_OTHERS["age_band"], [lapse["age_band"][b] for b in AGE_BANDS.labels]]
    age_probs = np.array([_banded(ages, AGE_BANDS, s, m) for s, m in zip(age_shares, age_mean)])
    age = ages[draw.pick(cell, draw.noise(), age_probs)]

    school_mean = [_rest(sample["mean_schooling_years"], profile["mean_schooling_years"], p_lapse)]
    school_mean.append(profile["mean_schooling_years"])
    school_base = (_OTHERS["schooling"], _LAPSER_SCHOOLING)
    school_probs = [_tilted(SCHOOLING_YEARS, np.array(b), m) for b, m in zip(school_base, school_mean)]
    # The young have more schooling, as in every recent cohort; platform workers who
    # keep up their contributions have more than others.
    key = -0.04 * age + _SCHOOLED_PLATFORM_MEMBERS * (people["job"] == JOB_TYPES.index("new_employment_form")) * ~lapser
    schooling = SCHOOLING_YEARS[draw.pick(cell, key + draw.noise(), np.array(school_probs))]

    income_mean = _rest(sample["mean_after_tax_wage_yuan"], profile["mean_after_tax_wage_yuan"], p_lapse)
    u = draw.position(cell, 0.05 * schooling + draw.noise())  # income rises with schooling
    typical = figures["models"]["lapser_typical_income_band_yuan"]
    income = np.where(
        lapser,
        _lapser_income(u, profile["mean_after_tax_wage_yuan"], typical),
        np.exp(np.log(income_mean) - _INCOME_SIGMA**2 / 2 + _INCOME_SIGMA * special.ndtri(u)),
    )

    hours = np.arange(1, 85)
    hour_shares = [_OTHERS["weekly_hours"], [lapse["weekly_hours"][b] for b in HOURS_BANDS.labels]]
    hour_probs = np.array([_banded(hours, HOURS_BANDS, s) for s in hour_shares])
    weekly_hours = hours[draw.pick(cell, draw.noise(), hour_probs)]

    status_shares = [_OTHERS["work_status"], [lapse["work_status"][s] for s in WORK_STATUS]]
    work_status = draw.pick(cell, draw.noise(), status_shares)
    return {
        "sex": sex,
        "age": age,
        "schooling_years": schooling,
        "monthly_income": np.round(income, -1),
        "weekly_hours": weekly_hours,
        "work_status": work_status,
    }


def _lapser_income(u: np.ndarray, mean: float, typical: list[int]) -> np.ndarray:
    """Quantile function of lapsers' income: flat below the typical band, flat in it,
    an exponential tail above its top (the threshold), with the published mean."""
    low, high = typical
    floor, below, band = _LAPSER_INCOME["floor"], _LAPSER_INCOME["below"], _LAPSER_INCOME["typical"]
    tail = 1 - below - band
    tail_mean = (mean - below * (floor + low - 1) / 2 - band * (low + high) / 2) / tail
    in_tail = np.clip((u - below - band) / tail, 0.0, 1.0 - 1e-12)
    return np.select(
        [u < below, u < below + band],
        [floor + u / below * (low - 1 - floor), low + (u - below) / band * (high - low)],
        high - (tail_mean - high) * np.log1p(-in_tail),
    )


def _schemes(
    draw: _Draw, figures: dict[str, Any], people: dict[str, np.ndarray], log_income: np.ndarray
) -> dict[str, np.ndarray]:
    """Participation in each leaf scheme of Table 1, by population type."""
    table1 = figures["table1"]
    ptype, status = people["ptype"], people["status"]
    employee = status == _EMPLOYEE

    def groups(row: str) -> np.ndarray:
        return np.array(table1["rows"][row][1:])

    out = {
        "employee_pension": employee,
        "resident_pension": status == _RESIDENT,
        "employee_medical": employee,
        "resident_medical": (status == _RESIDENT) | (status == _LAPSE_PENSION),
    }
    # Work-injury and unemployment insurance come with employee-scheme membership, the
    # latter only with the former; labour-contract holders first.
    e = groups("employee_pension")
    injury, unemployment = groups("work_injury") / e, groups("unemployment") / e
    shares = np.column_stack([unemployment, injury - unemployment, 1 - injury])
    level = draw.pick(np.where(employee, ptype, -1), 2.0 * (people["contract"] > 0) + draw.noise(), shares)
    out["work_injury"] = (level == 0) | (level == 1)
    out["unemployment"] = level == 0

    # Supplementary schemes: a child's rate and the parent's ("covered by any child") by
    # group, the employer's child held by employee-scheme members only; the overlap of
    # the children is the same in both cells, so the group's parent rate holds.
    cell = 2 * ptype + employee
    for parent, employer in EMPLOYER_SCHEMES.items():
        children = table1["tree"][parent]
        rates = np.column_stack([groups(c) for c in children])
        overlap = rates.sum(axis=1) - groups(parent)
        j = children.index(employer)
        cells = np.repeat(rates, 2, axis=0)  # rows: 2 * group + employee
        cells[0::2, j] = 0.0
        cells[1::2, j] = rates[:, j] / e
        union = cells.sum(axis=1) - np.repeat(overlap, 2)
        # Higher incomes buy more supplementary cover.
        u = draw.position(cell, -log_income + draw.noise())
        member = _wrapped(u, cells[cell], union[cell])
        out.update({c: member[:, k] for k, c in enumerate(children)})
    return {k: v.astype(np.float64) for k, v in out.items()}


def _wrapped(u: np.ndarray, rates: np.ndarray, union: np.ndarray) -> np.ndarray:
    """Membership of children laid end to end on a circle of circumference `union`.

    A position below `union` is covered by the parent; child k holds an arc of length
    `rates[k]` starting where child k-1 ended.  Each child gets exactly its rate, the
    parent exactly `union`, and the arcs overlap as much as their sum exceeds `union`
    (which needs max(rates) <= union <= sum(rates)).
    """
    start = (np.cumsum(rates, axis=1) - rates) % union[:, None]
    inside = u[:, None] < union[:, None]
    return inside & ((u[:, None] - start) % union[:, None] < rates)


def _histories(
    draw: _Draw, figures: dict[str, Any], traits: dict[str, np.ndarray], status: np.ndarray
) -> dict[str, Any]:
    """First-job years and contribution histories with the published interruption figures.

    Interrupted are the lapsers who once contributed (the interruption still running)
    and some members who came back; never-insured lapsers never contributed.  The
    interrupted are chosen so that their mean years since first job is the published
    mean length over the published mean density, and their interrupted years are scaled
    to the published mean length: the mean density follows.
    """
    rng, weight = draw.rng, draw.weight
    target = figures["interruption"]
    p_lapse = figures["lapse"]["pension_lapse_rate"]
    age = traits["age"]
    start_age = np.minimum(np.maximum(6 + traits["schooling_years"] + rng.integers(0, 4, draw.n), 16), age)
    first_job = SURVEY_YEAR - (age - start_age)
    years = age - start_age + 1  # first-job year to survey year, both counted

    lapser = status >= _LAPSE_PENSION
    reentry = (target["ever_interrupted_rate"] - p_lapse * (1 - _NEVER_INSURED_SHARE_OF_LAPSERS)) / (1 - p_lapse)
    # Room for an interruption between paid years; the short histories go last.
    too_short = np.where(lapser, years < 3, years < 6) * 1e6
    noise = draw.noise()
    mean_years = target["mean_years_interrupted"] / target["mean_density"]

    def interrupted_with(slope: float) -> tuple[np.ndarray, np.ndarray]:
        key = too_short - slope * years + noise
        ongoing = draw.pick(lapser, key, [1 - _NEVER_INSURED_SHARE_OF_LAPSERS, _NEVER_INSURED_SHARE_OF_LAPSERS]) == 0
        back = draw.pick(~lapser, key, [reentry, 1 - reentry]) == 0
        return ongoing, back

    def mean_history(slope: float) -> float:  # rises with the slope
        ever = np.logical_or(*interrupted_with(slope))
        return float(np.average(years[ever], weights=weight[ever]))

    ongoing, back = interrupted_with(_solve(mean_history, mean_years, -1.0, 1.0))
    ever = ongoing | back

    # Interrupted years: a Beta(2, 12) share of the history, scaled to the mean length;
    # at least one paid year before (and, after a return, after) the interruptions.
    share = special.betaincinv(2.0, 12.0, draw.position(ever, draw.noise()))
    cap = years - np.where(ongoing, 1, 2)

    def lengths(scale: float) -> np.ndarray:
        return np.where(ever, np.clip(np.rint(scale * share * years), 1, np.maximum(cap, 1)), 0).astype(np.int64)

    def mean_length(scale: float) -> float:
        return float(np.average(lengths(scale)[ever], weights=weight[ever]))

    gap = lengths(_solve(mean_length, target["mean_years_interrupted"], 0.0, 5.0))
    spells = _lay_out(rng, years, gap, ongoing, back, never=lapser & ~ongoing)
    records = _records(first_job, years, spells)
    paid = years - spells["enrolment"] - gap
    return {
        "first_job_year": first_job,
        "ongoing": ongoing,
        "ever": ever,
        "never_insured": lapser & ~ongoing,
        "paid_years": np.where(lapser & ~ongoing, 0, paid),
        "records": records,
    }


def _lay_out(
    rng: np.random.Generator,
    years: np.ndarray,
    gap: np.ndarray,
    ongoing: np.ndarray,
    back: np.ndarray,
    never: np.ndarray,
) -> dict[str, np.ndarray]:
    """Enrolment offset and up to two interruption spells (offset, length) per person.

    Offsets count years from the first job.  A running interruption ends in the survey
    year; an interruption after which the person came back ends before it, with a paid
    year on each side of every spell.
    """
    n = len(years)
    two = (gap >= 2) & (years - gap >= 5) & (rng.random(n) < 0.25)
    first_len = np.where(two, rng.integers(1, np.maximum(gap, 2)), gap)
    second_len = np.where(two, gap - first_len, 0)
    room = years - gap - np.where(two, 2, 1) - back  # latest enrolment offset
    enrolment = np.minimum(rng.integers(0, 6, n), np.maximum(room, 0))
    enrolment = np.where(gap > 0, enrolment, np.minimum(rng.integers(0, 6, n), years - 1))
    enrolment = np.where(never, years, enrolment)
    # The last spell: ends in the survey year if still running, else somewhere before.
    last_len = np.where(two, second_len, first_len)
    earliest_last = enrolment + 1 + np.where(two, first_len + 1, 0)
    latest_last = years - last_len - np.where(ongoing, 0, 1)
    last = np.where(ongoing, latest_last, _between(rng, earliest_last, latest_last))
    first = np.where(two, _between(rng, enrolment + 1, last - first_len - 1), last)
    has = gap > 0
    return {
        "enrolment": enrolment,
        "first_start": np.where(has, first, -1),
        "first_len": np.where(has, first_len, 0),
        "second_start": np.where(two, last, -1),
        "second_len": second_len,
    }


def _between(rng: np.random.Generator, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """A uniform integer in [low, high] per row (low where the range is empty)."""
    return low + np.floor(rng.random(len(low)) * np.maximum(high - low + 1, 1)).astype(np.int64)


def _records(first_job: np.ndarray, years: np.ndarray, spells: dict[str, np.ndarray]) -> pd.DataFrame:
    """The person-year table: every year from first job to the survey year."""
    person = np.repeat(np.arange(len(years)), years)
    t = np.arange(len(person)) - np.repeat(np.cumsum(years) - years, years)
    s = {k: v[person] for k, v in spells.items()}
    in_first = (t >= s["first_start"]) & (t < s["first_start"] + s["first_len"])
    in_second = (t >= s["second_start"]) & (t < s["second_start"] + s["second_len"])
    return pd.DataFrame(
        {
            "person_id": person + 1,
            "year": (first_job[person] + t).astype(np.int64),
            "contributed": (t >= s["enrolment"]) & ~in_first & ~in_second,
        }
    )


def _answers(
    draw: _Draw,
    figures: dict[str, Any],
    people: dict[str, np.ndarray],
    traits: dict[str, np.ndarray],
    history: dict[str, Any],
) -> dict[str, Any]:
    """Reasons, platform-control indicators, contribution levels and scheme switching."""
    out: dict[str, Any] = {}
    reasons = figures["reasons"]
    income = traits["monthly_income"]
    # Reasons, each a yes/no answer of the people asked; income-related reasons are
    # given more often by lower incomes.
    asked = {
        "never": (history["never_insured"], reasons["never_insured_top4"] + ["other"]),
        "interrupt": (history["ever"], reasons["interrupted_top2"] + reasons["interrupted_other"] + ["other"]),
    }
    waiting = history["ongoing"] & (history["paid_years"] >= 15)
    for prefix, (cell, names) in asked.items():
        for name, share in zip(names, _REASON_SHARES[prefix]):
            key = draw.noise()
            if "income" in name or "burden" in name:
                key = key + np.log(income)
            if name == "stopped_after_15_paid_years_waiting_to_retire":
                key = key + 1e6 * ~waiting  # only those who paid 15 years and stopped
            chosen = draw.pick(cell, key, [share, 1 - share])
            out[f"{prefix}_reason_{name}"] = np.where(chosen < 0, np.nan, (chosen == 0).astype(np.float64))

    new_form = people["job"] == JOB_TYPES.index("new_employment_form")
    control = draw.noise() + 0.7 * (people["status"] >= _LAPSE_PENSION)
    control = (control - control[new_form].mean()) / control[new_form].std()
    for name, share in zip(PLATFORM_CONTROLS, _PLATFORM_CONTROL_SHARES):
        met = 0.7 * control + np.sqrt(0.51) * draw.noise() > special.ndtri(1 - share)
        out[name] = np.where(new_form, met.astype(np.float64), np.nan)

    status = people["status"]
    edges, below = _EMPLOYEE_CONTRIBUTION["edges"], _EMPLOYEE_CONTRIBUTION["below"]
    band = figures["contribution_levels"]["employee_scheme_monthly_400_700_share"]
    u = draw.position(status == _EMPLOYEE, np.log(income) + draw.noise())
    monthly = np.interp(u, [0.0, below, below + band, 1.0], edges)
    out["employee_contribution_monthly"] = np.round(monthly)
    grades, probs = _RESIDENT_GRADES
    grade = draw.pick(status == _RESIDENT, np.log(income) + draw.noise(), probs)
    out["resident_contribution_yearly"] = np.where(grade < 0, np.nan, np.asarray(grades, dtype=np.float64)[grade])

    # Scheme switching among people free to choose between the two schemes: the
    # switchers from the employee scheme are resident-scheme members now.
    switching, n = figures["scheme_switching"], figures["sample"]["n"]
    resident_share = figures["table1"]["rows"]["basic_pension"][0] - figures["table1"]["rows"]["employee_pension"][0]
    to_resident = switching["employee_to_resident"] / n
    free = draw.noise() - people["flexible"] - (people["ptype"] % 2)  # flexible and rural first
    switched_share = to_resident / resident_share
    switched = draw.pick(status == _RESIDENT, free, [switched_share, 1 - switched_share]) == 0
    others = (switching["migrants_with_choice"] / n - to_resident) / (1 - to_resident)
    chooser = switched | (draw.pick(~switched, free, [others, 1 - others]) == 0)
    was_resident = draw.rng.random(draw.n) < np.where(
        status == _EMPLOYEE, _PREVIOUS_RESIDENT_OF_EMPLOYEE_CHOOSERS, np.where(status == _RESIDENT, 1.0, 0.5)
    )
    previous = np.where(switched, 0, np.where(was_resident, 1, 0))
    out["pension_scheme"] = pd.Categorical.from_codes(np.minimum(status, 2), PENSION_SCHEMES)
    out["previous_pension_scheme"] = pd.Categorical.from_codes(np.where(chooser, previous, -1), PENSION_SCHEMES[:2])
    return out


def _persons_table(
    sample: dict[str, np.ndarray],
    people: dict[str, np.ndarray],
    traits: dict[str, np.ndarray],
    schemes: dict[str, np.ndarray],
    history: dict[str, Any],
    answers: dict[str, Any],
    rng: np.random.Generator,
) -> pd.DataFrame:
    """The person table, columns in the order of :func:`coverage_survey`'s list."""
    n, n_provinces = len(sample["weight"]), sample["province"].max() + 1
    ptype = people["ptype"]
    migrant = ptype >= 2
    # A migrant's hukou is registered in some other county of the country.
    elsewhere = rng.integers(1, _COUNTIES_IN_CHINA, n)
    elsewhere = np.where(elsewhere >= sample["county"], elsewhere + 1, elsewhere)
    return pd.DataFrame(
        {
            "person_id": np.arange(1, n + 1),
            "province": pd.Categorical.from_codes(sample["province"], [f"P{i + 1:02d}" for i in range(n_provinces)]),
            "county": sample["county"],
            "weight": sample["weight"],
            "residence_county": sample["county"],
            "hukou_county": np.where(migrant, elsewhere, sample["county"]),
            "hukou_type": pd.Categorical.from_codes(ptype % 2, ["non_agricultural", "agricultural"]),
            "population_type": pd.Categorical.from_codes(ptype, POPULATION_TYPES),
            "sex": pd.Categorical.from_codes(traits["sex"], ["male", "female"]),
            "age": traits["age"],
            "age_band": AGE_BANDS.cut(traits["age"]),
            "schooling_years": traits["schooling_years"],
            "monthly_income": traits["monthly_income"],
            "income_band": INCOME_BANDS.cut(traits["monthly_income"]),
            "job_type": pd.Categorical.from_codes(people["job"], JOB_TYPES),
            "work_status": pd.Categorical.from_codes(traits["work_status"], WORK_STATUS),
            "weekly_hours": traits["weekly_hours"],
            "weekly_hours_band": HOURS_BANDS.cut(traits["weekly_hours"]),
            "contract_type": pd.Categorical.from_codes(people["contract"], CONTRACT_TYPES),
            **{leaf: schemes[leaf] for leaf in SchemeTree.study().leaves},
            "first_job_year": history["first_job_year"],
            **answers,
        }
    )


# ---------------------------------------------------------------------------- provinces
#: Job types counted as flexible workers (the report's ``flexible_jobs``).
FLEXIBLE_JOBS = ("new_employment_form", "other_flexible")


def provincial_covariates() -> pd.DataFrame:
    """Provincial covariates for small-area estimation (**synthetic data**).

    One row per province ``P01`` ... ``P31`` of :func:`coverage_survey` (whose strata
    are the provinces), shipped as ``data/provincial_covariates.csv``.  They stand in for
    census and administrative figures, and are made deterministically from the survey
    itself (``make_provincial_covariates(coverage_survey())``): each province's
    weighted figures, perturbed by seeded noise as a census would differ from a sample.
    They say nothing about any real province.

    Returns
    -------
    pandas.DataFrame
        ``province``; ``employed`` and ``flexible_workers`` (population counts: the
        survey's weighted counts times 1 + N(0, 0.02)); ``urbanisation`` (uniform on
        0.45 to 0.90, unrelated to the survey); ``agricultural_hukou_share``,
        ``platform_share`` (new-employment-form workers among the flexible) and
        ``flexible_low_income_share`` (flexible workers earning under 5,000 yuan a
        month), each the weighted share plus N(0, 0.02); ``mean_wage`` (weighted mean
        monthly income times exp(N(0, 0.03)), yuan).
    """
    from importlib import resources

    path = resources.files("sscoverage").joinpath("data", "provincial_covariates.csv")
    with path.open("r", encoding="utf-8") as f:
        return pd.read_csv(f)


def make_provincial_covariates(survey: CoverageSurvey, seed: int = 17) -> pd.DataFrame:
    """Make the shipped :func:`provincial_covariates` from `survey` (see there).

    Parameters
    ----------
    survey : the bundled survey, :func:`coverage_survey` with its default seed.
    seed : seed of the noise.

    Returns
    -------
    pandas.DataFrame
        The table, rounded as it is stored.
    """
    p = survey.persons
    rng = np.random.default_rng(seed)
    w = p["weight"].to_numpy(dtype=float)
    flexible = p["job_type"].isin(FLEXIBLE_JOBS).to_numpy()
    province = p["province"].cat.codes.to_numpy()
    k = len(p["province"].cat.categories)

    def total(mask: np.ndarray) -> np.ndarray:
        return np.bincount(province, weights=w * mask, minlength=k)

    def share(mask: np.ndarray, among: np.ndarray) -> np.ndarray:
        return total(mask & among) / total(among)

    everyone = np.ones(len(p), dtype=bool)
    income = p["monthly_income"].to_numpy(dtype=float)
    out = pd.DataFrame({
        "province": list(p["province"].cat.categories),
        "employed": np.round(total(everyone) * (1 + rng.normal(0, 0.02, k))),
        "flexible_workers": np.round(total(flexible) * (1 + rng.normal(0, 0.02, k))),
        "urbanisation": rng.uniform(0.45, 0.90, k),
        "agricultural_hukou_share": share((p["hukou_type"] == "agricultural").to_numpy(), everyone)
        + rng.normal(0, 0.02, k),
        "platform_share": share((p["job_type"] == "new_employment_form").to_numpy(), flexible)
        + rng.normal(0, 0.02, k),
        "flexible_low_income_share": share(income < 5000, flexible) + rng.normal(0, 0.02, k),
        "mean_wage": np.bincount(province, weights=w * income, minlength=k) / total(everyone)
        * np.exp(rng.normal(0, 0.03, k)),
    })
    shares = ["urbanisation", "agricultural_hukou_share", "platform_share", "flexible_low_income_share"]
    out[shares] = out[shares].clip(0, 1).round(4)
    counts = ["employed", "flexible_workers", "mean_wage"]
    out[counts] = out[counts].round(0).astype("int64")
    return out
