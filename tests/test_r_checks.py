"""Every quantile rule and interval type, and every proportion interval, on each kind of
design, against the numbers R's survey 4.1.1 printed.

The data, the replicate weights R drew and R's results are in ``tests/data/r_checks/``
beside the script that wrote them (``r_checks.R``); R is not needed to run these tests.
"""

from __future__ import annotations

import json
import math
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from scipy import stats

import sscoverage as ssc

HERE = Path(__file__).resolve().parent / "data" / "r_checks"
EXPECTED = json.loads((HERE / "expected.json").read_text())
QRULES = ["math", "school", "shahvaish"] + [f"hf{i}" for i in range(1, 10)]
REPLICATE_KINDS = ("jk1", "brr", "bootstrap")
KINDS = ("stratclus", "pps", *REPLICATE_KINDS, "calibrated")
CIPROP_METHODS = ("logit", "likelihood", "asin", "beta", "mean", "xlogit")
# R's glm stops within 1e-8 relative change of the deviance; the "logit" and
# "likelihood" intervals inherit that (see proportions._fit_intercept), the others are
# closed forms of R's own sums.
RTOL = 1e-10


@cache
def data() -> pd.DataFrame:
    frame = pd.read_csv(HERE / "data.csv")
    return frame.join(pd.read_csv(HERE / "repweights.csv", dtype=np.float64))


@cache
def design(kind: str) -> ssc.Design:
    df = data()
    if kind == "stratclus":
        return ssc.Design(df, ids="psu", strata="h", weights="w", fpc="N_h")
    if kind == "pps":
        return ssc.Design(df, strata="h", fpc="prob", pps="brewer")
    if kind == "calibrated":
        return design("stratclus").calibrate("~z + grp", EXPECTED["population"])
    info = EXPECTED["replicates"][kind]
    return ssc.ReplicateDesign(df, repweights=info["columns"], weights="w", type=info["type"],
                               scale=info["scale"], rscales=info["rscales"], mse=info["mse"],
                               combined_weights=info["combined_weights"])


def subset(kind: str) -> ssc.Design:
    return design(kind).subset(data()["grp"].to_numpy() == "b")


def _values(record: dict, keys: tuple[str, ...]) -> np.ndarray:
    return np.array([[np.nan if v is None else v for v in np.atleast_1d(record[k])] for k in keys], dtype=float)


def quantile_cases(table: str = "quantile") -> list:
    cases = []
    for kind in KINDS:
        for rule, intervals in (EXPECTED["designs"][kind][table] or {}).items():
            for interval in intervals:
                if "/" not in interval:
                    cases.append(pytest.param(kind, rule, interval, id=f"{kind}-{rule}-{interval}"))
    return cases


def ciprop_cases() -> list:
    cases = []
    for kind in KINDS:
        for key in EXPECTED["designs"][kind]["ciprop"]:
            cases.append(pytest.param(kind, key, id=f"{kind}-{key}"))
    return cases


def test_the_files_are_r_s_and_every_combination_is_there():
    assert EXPECTED["survey_version"] == "4.1.1"
    assert len(quantile_cases()) == 6 * 12 * 5
    assert len(quantile_cases("quantile_sub")) == 3 * 3 * 5
    assert len(ciprop_cases()) == 6 * 12
    for kind in KINDS:
        assert design(kind).degf == EXPECTED["designs"][kind]["degf"], kind


@pytest.mark.parametrize("kind", ["jk1", "brr"])
def test_replicate_designs_built_here_are_r_s(kind):
    """``as_replicates`` gives R's JK1 and BRR weights (the bootstrap draws are R's own;
    R stores the replicate weights as multipliers of the sampling weights)."""
    df = data()
    base = {"jk1": ssc.Design(df, ids="psu", weights="w"),
            "brr": ssc.Design(df, ids="psu", strata="pair", weights="w")}[kind]
    ours = base.as_replicates(kind.upper())
    assert not EXPECTED["replicates"][kind]["combined_weights"]
    multipliers = df[EXPECTED["replicates"][kind]["columns"]].to_numpy()
    assert_allclose(ours.replicate_weights(), multipliers * df[["w"]].to_numpy(), rtol=1e-14)
    want = EXPECTED["designs"][kind]["quantile"]["hf7"]["quantile"]
    got = ours.quantile("x", EXPECTED["probs"], qrule="hf7", interval_type="quantile", progress=False).table
    assert_allclose(got[["estimate", "ci_low", "ci_high", "se"]].to_numpy().T,
                    _values(want, ("estimate", "ci_low", "ci_high", "se")), rtol=RTOL)


@pytest.mark.parametrize("kind,rule,interval", quantile_cases())
def test_quantile_matches_r(kind, rule, interval):
    want = EXPECTED["designs"][kind]["quantile"][rule][interval]
    call = lambda: design(kind).quantile(  # noqa: E731
        "x", EXPECTED["probs"], qrule=rule, interval_type=interval, progress=False
    )
    if "error" in want:
        with pytest.raises(ssc.SurveyError):
            call()
        return
    got = call().table
    keys = ("estimate", "ci_low", "ci_high", "se")
    assert_allclose(got[list(keys)].to_numpy().T, _values(want, keys), rtol=RTOL, equal_nan=True)


@pytest.mark.parametrize("kind,rule,interval", quantile_cases("quantile_sub"))
def test_domain_quantile_matches_r(kind, rule, interval):
    """R keeps the rows of a calibrated or PPS design outside a domain (at zero
    weight): the "beta" interval counts them as R does."""
    want = EXPECTED["designs"][kind]["quantile_sub"][rule][interval]
    got = subset(kind).quantile("x", EXPECTED["probs"], qrule=rule, interval_type=interval).table
    keys = ("estimate", "ci_low", "ci_high", "se")
    assert_allclose(got[list(keys)].to_numpy().T, _values(want, keys), rtol=RTOL, equal_nan=True)


@pytest.mark.parametrize("kind", REPLICATE_KINDS)
def test_r_s_svyquantile_ignores_the_interval_type_on_replicate_designs(kind):
    """survey 4.1.1 does not hand ``interval.type`` to ``woodruffCI`` for a replicate
    design: its "beta", "xlogit" and "asin" are the "mean" interval.  Ours are the
    intervals asked for (``woodruffCI(method=...)`` in R, checked above), so they differ."""
    table = EXPECTED["designs"][kind]["quantile"]["hf7"]
    keys = ("estimate", "ci_low", "ci_high", "se")
    ours = design(kind).quantile("x", EXPECTED["probs"], qrule="hf7", interval_type="beta").table
    for interval in ("beta", "xlogit", "asin"):
        assert table[f"{interval}/svyquantile"] == table["mean"]
    assert not np.allclose(ours[list(keys)].to_numpy().T, _values(table["mean"], keys))


@pytest.mark.parametrize("kind,key", ciprop_cases())
def test_ciprop_matches_r(kind, key):
    method, _, domain = key.partition("/")
    want = EXPECTED["designs"][kind]["ciprop"][key]
    target = subset(kind) if domain else design(kind)
    if "error" in want:
        with pytest.raises(ssc.SurveyError):
            target.ciprop("y", method)
        return
    keys = ("estimate", "ci_low", "ci_high")
    if want["ci_low"] is None:
        # R's limits are NA (the profile never reaches its cut-off): NaN with a warning.
        with pytest.warns(ssc.SurveyWarning, match="limits are NaN, as R's svyciprop gives NA"):
            got = target.ciprop("y", method).table
        assert_allclose(got["estimate"], want["estimate"], rtol=RTOL)
        assert got[["ci_low", "ci_high"]].isna().all().all()
        return
    got = target.ciprop("y", method).table
    assert_allclose(got[list(keys)].to_numpy().T, _values(want, keys), rtol=RTOL)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("domain", [False, True])
def test_wilson_by_hand_from_r_s_mean(kind, domain):
    """Wilson's score interval (R has none) on the effective sample size p(1-p)/SE^2 of
    R's svymean, with t on the design df: Stata's ``citype(wilson)``."""
    mean = EXPECTED["designs"][kind]["mean_y_sub" if domain else "mean_y"]
    p, se, df = mean["estimate"], mean["se"], mean["degf"]
    n = p * (1 - p) / se**2
    z = stats.t.ppf(0.975, df)
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z / (1 + z**2 / n) * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2))
    target = subset(kind) if domain else design(kind)
    got = target.ciprop("y", "wilson").table.iloc[0]
    assert_allclose([got.estimate, got.se, got.ci_low, got.ci_high], [p, se, centre - half, centre + half],
                    rtol=RTOL)


@pytest.mark.parametrize("weighting", ["raked", "poststratified"])
def test_beta_interval_in_a_domain_of_a_raked_or_post_stratified_design(weighting):
    """R keeps the rows outside a domain of any calibrated design (raked, post-
    stratified too) and counts them in the beta interval's n."""
    margins = EXPECTED["streamed"]["rake_margins"]
    h = pd.DataFrame(margins["h"])
    base = design("stratclus")
    weighted = base.rake([("~grp", pd.DataFrame(margins["grp"])), ("~h", h)]) if weighting == "raked" \
        else base.poststratify("h", h)
    got = weighted.subset(data()["grp"].to_numpy() == "b").ciprop("y", "beta").table.iloc[0]
    want = EXPECTED["weighted_domains"][weighting]
    assert_allclose([got.estimate, got.se, got.ci_low, got.ci_high],
                    [want["estimate"], want["se"], want["ci_low"], want["ci_high"]], rtol=RTOL)
