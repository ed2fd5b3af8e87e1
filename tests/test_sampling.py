"""Selection: many samples drawn with a fixed seed include each unit as often as its
inclusion probability says (and each pair, where the joint probabilities are known);
certainty units, multi-stage weights, sample sizes, allocation and errors."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

import sscoverage as ssc
import sscoverage.design.sampling as ss

SIZES = np.array([3.0, 9, 1, 4, 12, 2, 7, 5, 6, 2, 8, 3])
N_PICK = 4
REPS = 40_000


def _many(method, size=SIZES, n=N_PICK, reps=REPS, seed=2024, **kw):
    """`reps` independent samples in one call: the frame repeated as `reps` strata."""
    units, pi = ss.draw(n, np.tile(size, reps), method=method, strata=np.repeat(np.arange(reps), len(size)),
                        seed=seed, **kw)
    sample = (units // len(size)).astype(np.int64), units % len(size)
    return sample, pi[: len(size)]


def _within(freq, p, reps):
    """Every frequency within 4.5 binomial standard errors of its probability."""
    sd = np.sqrt(p * (1 - p) / reps)
    return np.all(np.abs(freq - p) <= 4.5 * sd + 1e-12)


@pytest.mark.parametrize("method,kw", [
    ("systematic", {}), ("systematic", {"random_order": True}), ("brewer", {}), ("sampford", {}), ("srs", {}),
])
def test_inclusion_frequencies_match_pi(method, kw):
    (rep, unit), pi = _many(method, **kw)
    assert len(unit) == REPS * N_PICK
    # Fixed size and no unit twice in one sample.
    assert len(np.unique(rep * 100 + unit)) == len(unit)
    want = ss.inclusion_probabilities(SIZES, N_PICK) if method != "srs" else np.full(len(SIZES), N_PICK / len(SIZES))
    assert_allclose(pi, want)
    assert_allclose(want.sum(), N_PICK)
    freq = np.bincount(unit, minlength=len(SIZES)) / REPS
    assert _within(freq, want, REPS), (freq, want)


@pytest.mark.parametrize("method", ["sampford", "systematic"])
def test_joint_frequencies_match_joint_probabilities(method):
    (rep, unit), pi = _many(method)
    joint = ss.joint_inclusion_probabilities(pi, method)
    assert_allclose(np.diag(joint), pi)
    pairs = np.zeros((len(SIZES), len(SIZES)))
    order = np.argsort(rep, kind="stable")
    for sample in unit[order].reshape(REPS, N_PICK):
        for i, j in combinations(sample, 2):
            pairs[i, j] += 1
            pairs[j, i] += 1
    off = ~np.eye(len(SIZES), dtype=bool)
    assert _within(pairs[off] / REPS, joint[off], REPS)


def test_sampford_joint_probabilities_by_enumeration():
    """Sampford's design gives a sample s probability proportional to
    prod_{k in s} pi_k/(1-pi_k) * (n - sum_{k in s} pi_k) (Sampford 1967)."""
    pi = ss.inclusion_probabilities(SIZES[:7], 3)
    lam = pi / (1 - pi)
    p_s = {s: np.prod(lam[list(s)]) * (3 - pi[list(s)].sum()) for s in combinations(range(7), 3)}
    total = sum(p_s.values())
    exact = np.zeros((7, 7))
    for s, p in p_s.items():
        for i, j in combinations(s, 2):
            exact[i, j] += p / total
            exact[j, i] += p / total
    np.fill_diagonal(exact, pi)
    assert_allclose(ss.joint_inclusion_probabilities(pi, "sampford"), exact, atol=1e-14)


def test_pps_with_replacement_draws_in_proportion():
    (rep, unit), expected = _many("pps_wr")
    assert_allclose(expected, N_PICK * SIZES / SIZES.sum())
    counts = np.bincount(unit, minlength=len(SIZES)) / REPS
    p = SIZES / SIZES.sum()
    assert np.all(np.abs(counts - expected) <= 4.5 * np.sqrt(N_PICK * p * (1 - p) / REPS))


def test_certainty_units():
    pi = ss.inclusion_probabilities([50, 10, 10, 20, 10], 3)
    assert_allclose(pi, [1, 0.4, 0.4, 0.8, 0.4])
    frame = pd.DataFrame({"id": range(5), "size": [50, 10, 10, 20, 10]})
    for seed in range(20):
        s = ss.select(frame, 3, method="brewer", size="size", seed=seed)
        assert 0 in s["id"].tolist() and len(s) == 3
    with pytest.raises(ssc.SamplingError, match="sampling interval"):
        ss.select(frame, 3, method="systematic", size="size", certainty=False)


def test_seeds_are_reproducible():
    frame = pd.DataFrame({"size": SIZES, "h": np.arange(len(SIZES)) % 2})
    a = ss.select(frame, 2, method="sampford", size="size", strata="h", seed=7)
    b = ss.select(frame, 2, method="sampford", size="size", strata="h", seed=7)
    pd.testing.assert_frame_equal(a, b)
    assert_allclose(a["weight"], 1 / a["pi"])
    draws = {tuple(ss.select(frame, 2, method="sampford", size="size", strata="h", seed=s).index) for s in range(30)}
    assert len(draws) > 5


def test_self_weighting_two_stage_sample():
    """Counties by PPS on their population, then m people by SRS in each: every person's
    weight is M / (n m) (a self-weighting design), and their sum is M."""
    rng = np.random.default_rng(3)
    county_pop = rng.integers(20, 200, size=30)
    people = pd.DataFrame({"county": np.repeat(np.arange(30), county_pop), "prov": np.repeat(np.arange(30) % 3, county_pop)})
    people["county_pop"] = people.groupby("county")["county"].transform("size").astype(float)
    stages = [ss.Stage("county", n=2, method="sampford", size="county_pop", strata="prov"),
              ss.Stage(None, n=10, method="srs")]
    sample = ss.multistage(people, stages, seed=1)
    assert len(sample) == 3 * 2 * 10
    prov_pop = people.groupby("prov").size()
    want = prov_pop[sample["prov"]].to_numpy() / (2 * 10)
    assert_allclose(sample["weight"], want)
    assert_allclose(sample["pi_1"] * sample["pi_2"], 1 / want)
    assert_allclose(sample["weight"].sum(), len(people))
    again = ss.multistage(people, stages, seed=1)
    pd.testing.assert_frame_equal(sample, again)


def test_sample_size_and_allocation():
    # n0 = 1.96^2 * 0.25 / 0.03^2 = 1067.1, times deff 1.5 = 1600.7; fpc for N = 1e5: 1575.4.
    assert ss.sample_size_proportion(0.03) == 1068
    assert ss.sample_size_proportion(0.03, deff=1.5, population=100_000) == 1576
    assert ss.sample_size_proportion(0.03, response_rate=0.5) == 2135
    prop = ss.allocate(100, {"a": 600, "b": 300, "c": 100})
    assert prop.tolist() == [60, 30, 10]
    # Neyman: N_h S_h = 600, 900, 500 of 2000.
    ney = ss.allocate(100, {"a": 600, "b": 300, "c": 100}, "neyman", sd={"a": 1, "b": 3, "c": 5})
    assert ney.tolist() == [30, 45, 25] and ney.sum() == 100
    # A stratum cannot take more than its size; the rest goes to the others.
    capped = ss.allocate(100, {"a": 1000, "b": 10}, "neyman", sd={"a": 1, "b": 1000})
    assert capped.tolist() == [90, 10]


def test_sampling_errors():
    with pytest.raises(ssc.SamplingError, match="inclusion probability 0"):
        ss.design_weights([0.5, 0.0, 0.2])
    with pytest.raises(ssc.SamplingError, match="non-negative"):
        ss.draw(2, [1.0, -2.0, 3.0], method="brewer")
    with pytest.raises(ssc.SamplingError, match="cannot select 4"):
        ss.draw(4, [1.0, 0.0, 3.0, 2.0], method="sampford")
    with pytest.raises(ssc.SamplingError, match="no sample size"):
        ss.draw({"x": 1}, [1.0, 2.0], method="brewer", strata=["x", "y"])
