"""Replicate designs: weights as R builds them, the replicate variance, the bootstrap."""

from __future__ import annotations


import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

import sscoverage as ssc
from run_cases import SHARED_REFERENCE as REFERENCE
from run_cases import build_design, load_cases, load_data
from _threads import outputs_by_threads

AS_REPLICATES = [
    (c, d) for c, d in (load_cases([str(REFERENCE)]) if REFERENCE.is_dir() else [])
    if "as_replicates" in c["design"] and "subset" not in c["design"]
]
# One case per distinct R replicate-weight file.
BY_FILE = {c["design"]["as_replicates"]["r_repweights"]: (c, d) for c, d in AS_REPLICATES}


def _sorted_columns(m: np.ndarray) -> np.ndarray:
    return m[:, np.lexsort(m[::-1])]


@pytest.mark.parametrize("name", sorted(BY_FILE))
def test_replicate_weights_are_r_s(name):
    """Our multipliers equal those R generated (up to the order of the replicates)."""
    case, data_dir = BY_FILE[name]
    design = build_design(case, data_dir, load_data(case, data_dir))
    r_mult = pd.read_csv(data_dir / name).to_numpy(dtype=float)
    w = design.weights
    ours = design.replicate_weights() / np.where(w == 0, 1, w)[:, None]
    assert ours.shape == r_mult.shape
    if case["design"]["as_replicates"]["type"] in ("BRR", "Fay"):
        assert_allclose(ours, r_mult, rtol=1e-12)  # R's Hadamard matrix, R's order
    else:
        assert_allclose(_sorted_columns(ours), _sorted_columns(r_mult), rtol=1e-12)
    conv = case["design"]["as_replicates"]
    assert_allclose(design.scale, conv["r_scale"], rtol=1e-12)
    assert_allclose(np.sort(design.rscales), np.sort(conv["r_rscales"]), rtol=1e-12)


def strat_sample(seed=0, n_strata=6, psus=4, per=5):
    rng = np.random.default_rng(seed)
    n = n_strata * psus * per
    return pd.DataFrame({
        "h": np.repeat(np.arange(n_strata), psus * per),
        "psu": np.repeat(np.arange(n_strata * psus), per),
        "w": np.repeat(rng.uniform(1, 4, n_strata * psus), per),
        "y": rng.normal(5, 2, n) + np.repeat(rng.normal(0, 1, n_strata * psus), per),
    })


def test_jk1_degf_and_hand_variance():
    df = strat_sample(1).drop(columns="h")
    design = ssc.Design(df, ids="psu", weights="w")
    jk = design.as_replicates("JK1")
    assert jk.n_replicates == 24 and jk.degf == 23
    # Jackknife of a total is exactly the linearisation variance: (n-1)/n sum (t_(i) - t_bar)^2.
    assert_allclose(jk.total("y").se, design.total("y").se, rtol=1e-12)


def test_bootstrap_converges_to_linearisation():
    df = strat_sample(2, n_strata=8, psus=10)
    design = ssc.Design(df, ids="psu", strata="h", weights="w")
    lin = design.mean("y").se[0]
    boot = design.as_replicates("bootstrap", replicates=4000, seed=11).mean("y").se[0]
    # The bootstrap variance is the with-replacement variance up to n_h/(n_h-1) and
    # Monte-Carlo error of about 1/sqrt(2 * 4000): well within 5 %.
    assert abs(boot / lin - 1) < 0.05


def test_bootstrap_same_seed_same_weights_any_thread_count():
    code = (
        "import numpy as np, pandas as pd, sscoverage as ssc\n"
        "df = pd.DataFrame({'h': np.repeat([0, 1], 50), 'p': np.arange(100) // 5, 'w': 1.0, 'y': np.arange(100.0)})\n"
        "d = ssc.Design(df, ids='p', strata='h', weights='w').as_replicates('bootstrap', replicates=30, seed=5)\n"
        "print(d.replicate_weights().sum(axis=0).tolist(), d.mean('y').se[0])\n"
    )
    outs = outputs_by_threads(code)
    assert outs[0] == outs[1]


def test_user_replicate_weights_match_the_converted_design():
    df = strat_sample(3)
    design = ssc.Design(df, ids="psu", strata="h", weights="w").as_replicates("JKn")
    reps = pd.DataFrame(design.replicate_weights(), columns=[f"rw{i}" for i in range(design.n_replicates)])
    data = pd.concat([df, reps], axis=1)
    user = ssc.ReplicateDesign(data, repweights="^rw[0-9]+$", weights="w", type="JKn", rscales=design.rscales)
    assert_allclose(user.mean("y", by="h").se, design.mean("y", by="h").se, rtol=1e-12)
    mse = ssc.ReplicateDesign(data, repweights="^rw", weights="w", type="other", scale=1.0, rscales=design.rscales, mse=True)
    assert mse.mean("y").se[0] >= user.mean("y").se[0]


def test_bad_replicate_input():
    df = strat_sample(4)
    design = ssc.Design(df, ids="psu", strata="h", weights="w")
    # Four PSUs a stratum split into two pairs (R's large="split"); three cannot be.
    with pytest.raises(ssc.DesignError, match="stratum 0 has 4; set large='split' or 'merge'"):
        design.as_replicates("BRR", large="fail")
    odd = ssc.Design(strat_sample(4, psus=3), ids="psu", strata="h", weights="w")
    with pytest.raises(ssc.DesignError, match="stratum 0 has 3 PSUs, an odd number"):
        odd.as_replicates("BRR")
    with pytest.raises(ssc.DesignError, match="JK1 is for unstratified"):
        design.as_replicates("JK1")
    data = df.assign(r1=df.w, r2=df.w)
    data.loc[3, "r2"] = np.nan
    with pytest.raises(ssc.MissingValueError, match="'r2' has 1 missing"):
        ssc.ReplicateDesign(data, repweights=["r1", "r2"], weights="w")
    with pytest.raises(ssc.ColumnError, match="no column name matches"):
        ssc.ReplicateDesign(data, repweights="^zz")
    with pytest.raises(ssc.DesignError, match="needs rho"):
        ssc.ReplicateDesign(data, repweights=["r1"], type="Fay")
    with pytest.raises(ssc.DesignError, match="no linearisation variance"):
        design.as_replicates("JKn").influence_vcov(np.zeros(len(df)))
