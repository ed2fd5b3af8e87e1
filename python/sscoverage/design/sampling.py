"""Drawing samples: simple random sampling, PPS without replacement (systematic, Brewer,
Sampford), PPS with replacement and certainty units, within strata and over several
stages, with the inclusion probabilities and design weights of the units selected;
sample sizes for a proportion and allocation across strata.

Mirrors R's ``sampling`` package (``inclusionprobabilities``, ``UPsystematic``,
``UPbrewer``, ``UPsampford``, ``UPmultinomial``, ``srswor``, ``strata``) and Stata's
``sample`` / ``gsample`` / ``samplepps``.  Selection runs in the Rust core from a seed,
so a seed gives the same sample on any machine.

>>> import numpy as np, sscoverage.design.sampling as ss
>>> units, pi = ss.draw(3, size=np.array([5.0, 1, 2, 8, 4]), method="sampford", seed=1)
>>> len(units), round(float(pi.sum()), 6)
(3, 3.0)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import polars as pl
from scipy import stats

from .. import _core
from .._frames import codes_of
from ..exceptions import ColumnError, SamplingError

METHODS = ("srs", "systematic", "brewer", "sampford", "pps_wr")


def _seed(seed: int | None) -> int:
    return int(np.random.SeedSequence().entropy % (2**63)) if seed is None else int(seed) % (2**64)


def _per_stratum(n: int | Mapping[Any, int], labels: list[Any]) -> list[int]:
    """Sample size of each stratum: one number for all, or a mapping label -> n."""
    if isinstance(n, Mapping):
        missing = [lv for lv in labels if lv not in n]
        if missing:
            raise SamplingError(f"no sample size given for strata {missing}")
        sizes = [n[lv] for lv in labels]
    else:
        sizes = [n] * len(labels)
    if any(int(v) != v or v < 0 for v in sizes):
        raise SamplingError(f"sample sizes must be non-negative whole numbers, not {sizes}")
    return [int(v) for v in sizes]


def draw(
    n: int | Mapping[Any, int],
    size: Any = None,
    *,
    population: int | None = None,
    method: str = "srs",
    strata: Any = None,
    seed: int | None = None,
    random_order: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Select units; the array-level core of :func:`select`.

    Parameters
    ----------
    n : units per stratum, or a mapping stratum label -> units.
    size : size measure of each unit (PPS methods); with ``"srs"`` it only gives the
        number of units.
    population : the number of units, for ``"srs"`` without `size`.
    method : ``"srs"``, ``"systematic"``, ``"brewer"``, ``"sampford"`` (the rejective
        method) or ``"pps_wr"`` (with replacement).  Units whose size would give an
        inclusion probability of 1 or more are taken with certainty.
    strata : stratum label of each unit.
    seed : makes the selection reproducible; each stratum draws from its own stream.
    random_order : systematic selection in a random order instead of the frame's.

    Returns
    -------
    units : positions of the selected units (sorted within strata; for ``"pps_wr"`` one
        entry per draw).
    pi : every unit's inclusion probability (``"pps_wr"``: expected number of draws).
    """
    if method not in METHODS:
        raise SamplingError(f"method={method!r}; use one of {', '.join(METHODS)}")
    sizes = None if size is None else np.ascontiguousarray(np.asarray(size, dtype=np.float64))
    count = len(sizes) if sizes is not None else population
    if count is None:
        raise SamplingError("give the units' sizes, or population= for simple random sampling")
    if method != "srs" and sizes is None:
        raise SamplingError(f"method={method!r} needs a size measure")
    if strata is None:
        codes, labels = np.zeros(count, np.uint32), [None]
    else:
        coded = codes_of(pd.Series(np.asarray(strata)), "strata", "strata")
        if coded.missing is not None:
            raise SamplingError("strata must not be missing")
        codes, labels = coded.codes, coded.labels
    if len(codes) != count:
        raise SamplingError(f"strata have {len(codes)} values for {count} units")
    core_method = "systematic_random" if method == "systematic" and random_order else method
    return _core.select(sizes if method != "srs" else None, np.ascontiguousarray(codes, np.uint32),
                        _per_stratum(n, labels), core_method, _seed(seed))


def inclusion_probabilities(size: Any, n: int) -> np.ndarray:
    """Inclusion probabilities proportional to `size` for a sample of `n`, with units
    whose probability would reach 1 taken with certainty (R's
    ``sampling::inclusionprobabilities``; Stata's ``samplepps`` certainty rule).

    Parameters
    ----------
    size : size measure of each unit (non-negative).
    n : sample size.

    Returns
    -------
    numpy.ndarray
        One probability per unit; they add up to `n`.

    Examples
    --------
    >>> ssc.sampling.inclusion_probabilities([5.0, 1, 2, 8, 4], 3).round(4)
    array([0.8333, 0.1667, 0.3333, 1.    , 0.6667])
    """
    return _core.pps_probabilities(np.ascontiguousarray(np.asarray(size, dtype=np.float64)), int(n))


def joint_inclusion_probabilities(pi: Any, method: str) -> np.ndarray:
    """Joint inclusion probabilities of a PPS selection without replacement.

    R's ``sampling::UPsystematicpi2`` / ``UPsampfordpi2``.  For variance estimation
    with ``Design(pps={"method": "ppsmat", ...})``.

    Parameters
    ----------
    pi : inclusion probability of each of the N units.
    method : ``"systematic"`` (selection in the given order) or ``"sampford"``.

    Returns
    -------
    numpy.ndarray
        N x N, pi_i on the diagonal.

    Examples
    --------
    >>> ssc.sampling.joint_inclusion_probabilities([0.5, 0.5, 0.5, 0.5], "systematic")
    array([[0.5, 0. , 0.5, 0. ],
           [0. , 0.5, 0. , 0.5],
           [0.5, 0. , 0.5, 0. ],
           [0. , 0.5, 0. , 0.5]])
    """
    return _core.joint_probabilities(np.ascontiguousarray(np.asarray(pi, dtype=np.float64)), method)


def design_weights(*probabilities: Any) -> np.ndarray:
    """Design weights 1 / (pi_1 pi_2 ...) from the inclusion probabilities of each stage.

    Parameters
    ----------
    *probabilities : one array per stage: each selected unit's inclusion probability
        at that stage (given its units of the stage above).

    Returns
    -------
    numpy.ndarray
        The weight of each selected unit.

    Examples
    --------
    >>> ssc.sampling.design_weights(np.array([0.1, 0.5]), np.array([0.2, 0.2]))
    array([50., 10.])

    Raises
    ------
    SamplingError : a selected unit has a probability that is not in (0, 1]: a unit
        that could not have been selected is in the sample.
    """
    if not probabilities:
        raise SamplingError("give the inclusion probabilities of at least one stage")
    total = np.ones_like(np.asarray(probabilities[0], dtype=np.float64))
    for stage, p in enumerate(probabilities, start=1):
        p = np.asarray(p, dtype=np.float64)
        bad = ~((p > 0) & (p <= 1))
        if bad.any():
            r = int(np.argmax(bad))
            raise SamplingError(
                f"selected unit {r} has inclusion probability {p[r]} at stage {stage}: a unit that "
                "could not have been selected is in the sample"
            )
        total = total * p
    return 1.0 / total


def select(
    frame: Any,
    n: int | Mapping[Any, int],
    method: str = "srs",
    size: str | None = None,
    strata: str | None = None,
    seed: int | None = None,
    random_order: bool = False,
    certainty: bool = True,
) -> pd.DataFrame:
    """Select rows of a frame (one row per unit).

    Parameters
    ----------
    frame : pandas or polars DataFrame of the population's units.
    n, method, seed, random_order : as for :func:`draw`.
    size : column of the size measure (PPS methods).
    strata : column of the strata; `n` per stratum, or a mapping label -> n.
    certainty : take units whose size exceeds the sampling interval with certainty
        (probability 1); ``False`` refuses such a frame instead.

    Returns
    -------
    pandas.DataFrame
        The selected rows with ``pi`` (inclusion probability; for ``"pps_wr"`` the
        expected number of draws, one row per draw with a ``draw`` number) and
        ``weight`` = 1 / pi.
    """
    df = frame.to_pandas() if isinstance(frame, pl.DataFrame) else frame
    sizes = None
    if size is not None:
        if size not in df.columns:
            raise ColumnError(f"size column {size!r} is not in the frame")
        sizes = df[size].to_numpy(dtype=np.float64)
    if strata is not None and strata not in df.columns:
        raise ColumnError(f"strata column {strata!r} is not in the frame")
    units, pi = draw(
        n, sizes, population=len(df), method=method, strata=None if strata is None else df[strata].to_numpy(),
        seed=seed, random_order=random_order,
    )
    if not certainty and method not in ("srs", "pps_wr") and (pi >= 1).any():
        big = df.index[pi >= 1].tolist()
        raise SamplingError(
            f"{len(big)} units (e.g. row {big[0]!r}) have a size beyond the sampling interval; "
            "pass certainty=True to take them with certainty, or enlarge their stratum"
        )
    out = df.iloc[units].copy()
    out["pi"] = pi[units]
    if method == "pps_wr":
        out["draw"] = np.arange(1, len(units) + 1)
    out["weight"] = design_weights(out["pi"].to_numpy())
    return out


@dataclass(frozen=True)
class Stage:
    """One stage of a multi-stage selection (see :func:`multistage`).

    ``unit``: column naming this stage's units (``None``: each row is a unit);
    ``n``: units per stratum within each unit selected at the stage before (or a
    mapping stratum label -> n); ``method``, ``size`` (size column, constant within a
    unit), ``strata`` (column of strata within the parent units), ``random_order``.
    """

    unit: str | None
    n: int | Mapping[Any, int]
    method: str = "srs"
    size: str | None = None
    strata: str | None = None
    random_order: bool = False


def multistage(frame: Any, stages: Sequence[Stage], seed: int | None = None) -> pd.DataFrame:
    """Multi-stage selection, e.g. counties within provinces, then people within counties.

    Each stage selects its units within every unit selected at the stage before (and
    within its own strata); units selected with replacement are subsampled once per draw.

    Parameters
    ----------
    frame : pandas or polars DataFrame with one row per final-stage unit and columns
        naming the units of the earlier stages.
    stages : the :class:`Stage` list, outermost first.
    seed : makes the whole selection reproducible.

    Returns
    -------
    pandas.DataFrame
        The rows of the final sample with ``pi_1``, ``pi_2``, ... (each stage's
        inclusion probability, conditional on the stages before), ``draw_s`` for a
        stage sampled with replacement, and ``weight`` = 1 / (pi_1 pi_2 ...).

    Notes
    -----
    R: ``sampling::mstage``; Stata: successive ``gsample`` / ``samplepps`` calls.
    """
    df = (frame.to_pandas() if isinstance(frame, pl.DataFrame) else frame).reset_index(drop=True)
    if not stages:
        raise SamplingError("give at least one stage")
    seeds = np.random.SeedSequence(_seed(seed)).generate_state(len(stages), dtype=np.uint64)
    rows = np.arange(len(df))
    path = np.zeros(len(df), dtype=np.int64)  # the selected unit each row descends from
    probs: list[np.ndarray] = []
    draws: dict[str, np.ndarray] = {}
    for s, stage in enumerate(stages, start=1):
        for col in (stage.unit, stage.size, stage.strata):
            if col is not None and col not in df.columns:
                raise ColumnError(f"stage {s}: column {col!r} is not in the frame")
        sub = df.iloc[rows]
        unit = np.arange(len(rows)) if stage.unit is None else codes_of(sub[stage.unit], stage.unit, "unit").codes
        stratum = np.zeros(len(rows), np.int64) if stage.strata is None else codes_of(
            sub[stage.strata], stage.strata, "strata").codes.astype(np.int64)
        # A unit of this stage: (parent path, stratum, unit); its first row stands for it.
        unit_id = pd.factorize(pd.MultiIndex.from_arrays([path, stratum, unit]))[0]
        first = np.unique(unit_id, return_index=True)[1]
        group = pd.factorize(pd.MultiIndex.from_arrays([path[first], stratum[first]]))[0]
        sizes = None
        if stage.size is not None:
            values = sub[stage.size].to_numpy(dtype=np.float64)
            if not np.array_equal(values, values[first][unit_id], equal_nan=True):
                raise SamplingError(f"stage {s}: size column {stage.size!r} varies within a unit of {stage.unit!r}")
            sizes = values[first]
        if isinstance(stage.n, Mapping):
            if stage.strata is None:
                raise SamplingError(f"stage {s}: sample sizes per stratum need strata=")
            labels = sub[stage.strata].to_numpy()[first]
            missing = sorted({lv for lv in labels if lv not in stage.n}, key=str)
            if missing:
                raise SamplingError(f"stage {s}: no sample size given for strata {missing}")
            n: int | dict[int, int] = {int(g): stage.n[lv] for g, lv in zip(group, labels)}
        else:
            n = stage.n
        units, pi = draw(n, sizes, population=len(first), method=stage.method, strata=group,
                         seed=int(seeds[s - 1]), random_order=stage.random_order)
        # Rows of each selected unit, once per draw; the path becomes the draw.
        order = np.argsort(unit_id, kind="stable")
        members = np.split(order, np.flatnonzero(np.diff(unit_id[order])) + 1)
        picked = [members[u] for u in units]
        keep = np.concatenate(picked) if picked else np.zeros(0, np.int64)
        new_path = np.repeat(np.arange(len(units)), [len(p) for p in picked])
        probs = [p[keep] for p in probs] + [pi[unit_id[keep]]]
        draws = {k: v[keep] for k, v in draws.items()}
        if stage.method == "pps_wr":
            draws[f"draw_{s}"] = new_path + 1
        rows, path = rows[keep], new_path
    out = df.iloc[rows].copy()
    for s, p in enumerate(probs, start=1):
        out[f"pi_{s}"] = p
    for k, v in draws.items():
        out[k] = v
    out["weight"] = design_weights(*probs)
    return out


def sample_size_proportion(
    margin: float,
    p: float = 0.5,
    deff: float = 1.0,
    level: float = 0.95,
    population: float | None = None,
    response_rate: float = 1.0,
) -> int:
    """Sample size to estimate a proportion within +- `margin` at confidence `level`.

    ``n0 = z^2 p (1 - p) / margin^2`` times the design effect `deff`; with a finite
    `population` N, ``n = n0 / (1 + (n0 - 1) / N)`` (Cochran 1977, 4.2); divided by the
    expected `response_rate` and rounded up.  Stata: ``power oneproportion`` (SRS) with
    a design effect; R: ``samplingbook::sample.size.prop``.

    Parameters
    ----------
    margin : half-width of the interval, as a proportion (0.03 for +- 3 points).
    p : the expected proportion (0.5, the default, is the most conservative).
    deff : expected design effect.
    level : confidence level.
    population : population size N for the finite-population correction; None: none.
    response_rate : expected response rate; the sample is enlarged by its inverse.

    Returns
    -------
    int
        The number of units to sample.

    Examples
    --------
    >>> ssc.sampling.sample_size_proportion(0.03), ssc.sampling.sample_size_proportion(0.03, deff=1.5, response_rate=0.8)
    (1068, 2001)
    """
    if not 0 < margin < 1 or not 0 < p < 1 or deff <= 0 or not 0 < response_rate <= 1:
        raise SamplingError("need 0 < margin < 1, 0 < p < 1, deff > 0 and 0 < response_rate <= 1")
    z = stats.norm.ppf(1 - (1 - level) / 2)
    n = z * z * p * (1 - p) / margin**2 * deff
    if population is not None:
        n = n / (1 + (n - 1) / population)
    return int(math.ceil(n / response_rate - 1e-9))


def allocate(
    n: int,
    population: Mapping[Any, float] | pd.Series,
    method: str = "proportional",
    sd: Mapping[Any, float] | pd.Series | None = None,
    minimum: int = 0,
) -> pd.Series:
    """Allocate a sample of `n` across strata.

    ``"proportional"``: n_h proportional to N_h; ``"neyman"``: to N_h S_h (`sd` the
    strata's standard deviations), which minimises the variance of the estimated
    mean.  No stratum gets more than N_h or fewer than `minimum` units (the rest is
    reallocated), and the whole numbers add up to `n` (largest remainders).  R:
    ``sampling``/``stratification`` allocation; Stata: ``samplesize``-style helpers.

    Parameters
    ----------
    n : total sample size.
    population : stratum label -> population size N_h.
    method : ``"proportional"`` or ``"neyman"``.
    sd : stratum label -> standard deviation S_h (``"neyman"``).
    minimum : fewest units in a stratum (or all its N_h, if fewer).

    Returns
    -------
    pandas.Series
        n_h by stratum label, named ``n``.

    Examples
    --------
    >>> ssc.sampling.allocate(100, {"A": 5000, "B": 3000, "C": 2000}, method="neyman", sd={"A": 1, "B": 2, "C": 4}).tolist()
    [26, 32, 42]
    """
    pop = pd.Series(population, dtype=np.float64)
    if method == "proportional":
        weight = pop.copy()
    elif method == "neyman":
        if sd is None:
            raise SamplingError("Neyman allocation needs the strata's standard deviations (sd=)")
        s = pd.Series(sd, dtype=np.float64).reindex(pop.index)
        if s.isna().any() or (s < 0).any():
            raise SamplingError("sd must give a non-negative standard deviation for every stratum")
        weight = pop * s
    else:
        raise SamplingError(f"method={method!r}; use 'proportional' or 'neyman'")
    if (pop < 0).any() or n > pop.sum() or n < minimum * len(pop):
        raise SamplingError(f"cannot allocate {n} units to strata of sizes {pop.tolist()} (minimum {minimum})")
    low = np.minimum(pop.to_numpy(), minimum)
    high = pop.to_numpy()
    w = weight.to_numpy()
    share = low.astype(float)
    # Fix the strata at a bound, spread the rest by weight, until none crosses a bound.
    fixed = np.zeros(len(pop), bool)
    while True:
        rest = n - share[fixed].sum()
        free = ~fixed
        total = w[free].sum()
        share[free] = rest * w[free] / total if total > 0 else rest / free.sum()
        over = free & (share > high)
        under = free & (share < low)
        if not over.any() and not under.any():
            break
        share[over], share[under] = high[over], low[under]
        fixed |= over | under
    whole = np.floor(share + 1e-9)
    left = int(round(n - whole.sum()))
    order = np.argsort(-(share - whole), kind="stable")
    for i in order:
        if left == 0:
            break
        if whole[i] < high[i]:
            whole[i] += 1
            left -= 1
    return pd.Series(whole.astype(int), index=pop.index, name="n")
