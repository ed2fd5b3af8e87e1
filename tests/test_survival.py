"""Survival analysis (design.km, design.coxph, person_period) against what an outsider
can check by hand or with a few lines of numpy: the product-limit and Nelson-Aalen
estimates, an unweighted Efron Cox fit and its robust variance, replicate variances,
the discrete hazard; R's figures for the median; and the errors."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pytest
from numpy.testing import assert_allclose

import sscoverage as ssc
from _threads import outputs_by_threads


@pytest.fixture
def tiny() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "t": [2.0, 3.0, 3.0, 5.0, 6.0, 6.0, 8.0, 9.0],
            "dead": [1, 1, 0, 1, 0, 1, 1, 0],
            "w": 2.0,
        }
    )


@pytest.fixture
def cohort() -> pd.DataFrame:
    """Persons with many tied event times, a numeric and a binary covariate."""
    rng = np.random.default_rng(11)
    n = 60
    x = rng.normal(size=n)
    g = rng.integers(0, 2, n)
    return pd.DataFrame(
        {
            "time": rng.integers(1, 15, n).astype(float),
            "status": (rng.uniform(size=n) < 0.7).astype(int),
            "x": x,
            "g": g.astype(float),
            "w": 3.0,
            "stratum": np.repeat([0, 1, 2], n // 3),
            "psu": np.arange(n) // 4,
            "wv": rng.uniform(1, 4, n),
        }
    )


# ---------------------------------------------------------------------------- km
def test_unweighted_km_is_the_hand_product_limit(tiny):
    design = ssc.Design(tiny, weights="w")
    got = design.km("t", "dead", times=[0, 1, 2, 2.5, 3, 5, 6, 8, 9, 20]).to_pandas()
    s2 = 7 / 8
    s3 = s2 * 6 / 7
    s5 = s3 * 4 / 5
    s6 = s5 * 3 / 4
    s8 = s6 * 1 / 2
    assert_allclose(got["survival"], [1, 1, s2, s2, s3, s5, s6, s8, s8, s8], rtol=1e-15)
    # Without times: every tabulated time, 0 included (R's svykm.fit).
    assert design.km("t", "dead").to_pandas()["time"].tolist() == [0, 2, 3, 5, 6, 8, 9]


def test_se_curve_is_exp_minus_nelson_aalen(tiny):
    design = ssc.Design(tiny, weights="w")
    res = design.km("t", "dead", times=[1, 2, 3, 6, 9], se=True).to_pandas()
    h2 = 1 / 8
    h3 = h2 + 1 / 7
    h6 = h3 + 1 / 5 + 1 / 4
    h9 = h6 + 1 / 2
    assert_allclose(res["survival"], np.exp(-np.array([0, h2, h3, h6, h9])), rtol=1e-14)
    # Before the first event S = 1 with no variance; elsewhere the interval is around log S.
    assert res["se_log"].iloc[0] == 0 and (res["se_log"].iloc[1:] > 0).all()
    z = 1.959963984540054
    assert_allclose(res["ci_low"], np.exp(np.log(res["survival"]) - z * res["se_log"]), rtol=1e-12)
    assert (res["ci_high"] <= 1).all()


def test_replicate_standard_errors_are_the_spread_of_the_replicate_hazards(tiny):
    design = ssc.Design(tiny, weights="w").as_replicates("JK1")
    res = design.km("t", "dead", se=True)
    curve = res.curve()
    t, d = tiny["t"].to_numpy(), tiny["dead"].to_numpy() == 1
    reps = design.replicate_weights()
    event_rows = np.flatnonzero(d)  # already in time order
    thetas = []
    for r in range(reps.shape[1]):
        w = reps[:, r]
        thetas.append(-np.cumsum([w[j] / w[t >= t[j]].sum() for j in event_rows]))
    thetas = np.array(thetas)
    var = design.scale * (design.rscales[:, None] * (thetas - thetas.mean(axis=0)) ** 2).sum(axis=0)
    assert_allclose(curve["se_log"], np.sqrt(var), rtol=1e-12)


def test_km_by_group_uses_each_groups_rows(cohort):
    design = ssc.Design(cohort, ids="psu", strata="stratum", weights="wv")
    both = design.km("time", "status", by="g", times=[3, 7]).to_pandas()
    for g in (0.0, 1.0):
        alone = ssc.Design(cohort[cohort.g == g], weights="wv").km("time", "status", times=[3, 7]).to_pandas()
        assert_allclose(both.loc[both.g == g, "survival"], alone["survival"], rtol=1e-15)


def test_median_survival_matches_r(reference_dir):
    vet = pd.read_csv(reference_dir / "data" / "veteran_x.csv")
    design = ssc.Design(vet, ids="sv_psu", strata="celltype", weights="sv_wt", nest=True)
    # R: quantile(svykm(Surv(time, status) ~ trt, des, se = TRUE)[[g]], 0.5, ci = TRUE)
    got = design.median_survival("time", "status", by="trt")
    assert got.to_numpy().tolist() == [[1, 105, 92, 143], [2, 53, 48, 111]]
    q = design.km("time", "status", by="trt", se=True).quantile([0.75, 0.25])
    assert q[q.trt == 2][["estimate", "ci_low", "ci_high"]].to_numpy().tolist() == [[25, 19, 45], [186, 95, 357]]


def test_quantile_without_standard_errors_warns(tiny):
    res = ssc.Design(tiny, weights="w").km("t", "dead")
    with pytest.warns(UserWarning, match="no confidence interval"):
        q = res.quantile([0.5])
    assert q["estimate"].tolist() == [6.0] and np.isnan(q["ci_low"]).all()


def test_km_results_render_and_convert(tiny):
    res = ssc.Design(pl.from_pandas(tiny), weights="w").km("t", "dead", times=[3, 6], se=True)
    assert "exp(-cumulative hazard)" in repr(res) and "<table" in res._repr_html_()
    assert res.to_polars().columns == ["time", "survival", "se_log", "ci_low", "ci_high"]


# ---------------------------------------------------------------------------- coxph
def _efron(x: np.ndarray, time: np.ndarray, status: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unweighted Efron fit by Newton's method: coefficients, information, score residuals."""
    n, p = x.shape
    beta = np.zeros(p)
    event_times = np.unique(time[status == 1])

    def terms(beta):
        r = np.exp(x @ beta)
        grad, info = np.zeros(p), np.zeros((p, p))
        for t in event_times:
            risk, dead = time >= t, (time == t) & (status == 1)
            d = dead.sum()
            grad += x[dead].sum(axis=0)
            for k in range(d):
                c = risk - (k / d) * dead
                s0 = (c * r).sum()
                s1 = (c * r) @ x
                s2 = (x * (c * r)[:, None]).T @ x
                grad -= s1 / s0
                info += s2 / s0 - np.outer(s1, s1) / s0**2
        return r, grad, info

    for _ in range(50):
        _, grad, info = terms(beta)
        step = np.linalg.solve(info, grad)
        beta += step
        if np.abs(step).max() < 1e-13:
            break
    r, _, info = terms(beta)
    resid = np.zeros((n, p))
    for t in event_times:
        risk, dead = time >= t, (time == t) & (status == 1)
        d = dead.sum()
        for k in range(d):
            c = risk - (k / d) * dead
            s0 = (c * r).sum()
            mean = (c * r) @ x / s0
            resid[dead] += (x[dead] - mean) / d
            resid -= (c * r)[:, None] * (x - mean) / s0
    return beta, info, resid


def test_equal_weights_one_row_per_psu_is_the_unweighted_efron_fit(cohort):
    design = ssc.Design(cohort, weights="w")
    fit = design.coxph("Surv(time, status) ~ x + g")
    x = cohort[["x", "g"]].to_numpy()
    beta, info, resid = _efron(x, cohort["time"].to_numpy(), cohort["status"].to_numpy())
    assert_allclose(fit.coef, beta, rtol=1e-7)
    assert_allclose(fit.vcov_model, np.linalg.inv(info), rtol=1e-6)
    # With replacement, one row per PSU: n/(n-1) times the sum of squares of the
    # centred dfbeta values, the robust (sandwich) variance.
    z = resid @ np.linalg.inv(info)
    n = len(z)
    z -= z.mean(axis=0)
    assert_allclose(fit.vcov, n / (n - 1) * z.T @ z, rtol=1e-6)


def test_cox_on_a_subset_is_the_engine_on_the_domains_dfbeta_values(cohort):
    # Equal weights, a domain of the clustered design: the coefficients are the
    # unweighted Efron fit of the domain's rows, and the covariance the engine's on its
    # dfbeta values (zero outside the domain, the domain's PSUs present), which the core
    # sums to PSUs as it makes them.
    design = ssc.Design(cohort, ids="psu", strata="stratum", weights="w").subset(cohort.x > -0.5)
    fit = design.coxph("Surv(time, status) ~ x + g")
    rows = (cohort.x > -0.5).to_numpy()
    beta, info, resid = _efron(cohort.loc[rows, ["x", "g"]].to_numpy(), cohort.time[rows].to_numpy(),
                               cohort.status[rows].to_numpy())
    z = np.zeros((len(cohort), 2))
    z[rows] = resid @ np.linalg.inv(info)
    assert_allclose(fit.coef, beta, rtol=1e-7)
    assert_allclose(fit.vcov, design.influence_vcov(z, rows), rtol=1e-6)


def test_cox_on_a_calibrated_design_reads_the_rows(cohort):
    # A post-stratified design needs every row's influence value (the engine takes their
    # residuals from the post-strata): the same covariance as the rows' own route.
    design = ssc.Design(cohort, ids="psu", strata="stratum", weights="wv").poststratify(
        "g", {0.0: 100.0, 1.0: 120.0})
    fit = design.coxph("Surv(time, status) ~ x")
    w = design.weights
    x = ssc._core.ModelColumns(len(cohort), [cohort.x.to_numpy(dtype=np.float64)], [], [[(0, None)]])
    by_rows = ssc._core.cox_fit(x, [0], None, cohort.time.to_numpy(), cohort.status.to_numpy() == 1, w / w.mean())
    assert by_rows.vcov is None
    assert_allclose(fit.vcov, design.influence_vcov(by_rows.influence), rtol=1e-12)


def test_weights_scale_does_not_matter_and_breslow_differs(cohort):
    design = ssc.Design(cohort, ids="psu", strata="stratum", weights="wv")
    scaled = ssc.Design(cohort.assign(wv=cohort.wv * 7), ids="psu", strata="stratum", weights="wv")
    a = design.coxph("Surv(time, status) ~ x + g")
    b = scaled.coxph("Surv(time, status) ~ x + g")
    assert_allclose(a.coef, b.coef, rtol=1e-10)
    assert_allclose(a.se, b.se, rtol=1e-10)
    breslow = design.coxph("Surv(time, status) ~ x + g", ties="breslow")
    assert np.abs(breslow.coef - a.coef).max() > 1e-3


def test_coxph_on_replicates_refits_each_replicate(cohort):
    design = ssc.Design(cohort, ids="psu", strata="stratum", weights="wv").as_replicates("JKn")
    fit = design.coxph("Surv(time, status) ~ x + g")
    reps = design.replicate_weights()
    thetas = []
    for r in range(reps.shape[1]):
        w = reps[:, r]
        # R's svycoxph.svyrep.design: the replicate weights over the mean sampling
        # weight, plus 1e-10 so that no row leaves Efron's tied sets.
        one = ssc.Design(cohort.assign(wr=w / cohort.wv.mean() + 1e-10), weights="wr")
        thetas.append(one.coxph("Surv(time, status) ~ x + g").coef)
    thetas = np.array(thetas)
    var = design.scale * ((design.rscales[:, None] * (thetas - thetas.mean(axis=0)) ** 2)).sum(axis=0)
    assert_allclose(fit.se, np.sqrt(var), rtol=1e-6)


def test_cox_summary_is_rs_table(cohort):
    fit = ssc.Design(cohort, weights="wv").coxph("Surv(time, status) ~ x + g")
    s = fit.summary()
    assert s.columns.tolist() == [
        "term", "coef", "exp_coef", "se_model", "se", "z", "p_value", "exp_ci_low", "exp_ci_high"
    ]
    assert s["term"].tolist() == ["x", "g"]
    assert_allclose(s["exp_coef"], np.exp(fit.coef))
    assert "Wald test" in repr(fit) and "<table" in fit._repr_html_()
    assert fit.to_polars().shape == (2, 9)


def test_factor_terms_follow_r_names(cohort):
    df = cohort.assign(arm=np.where(cohort.g == 1, "treated", "control"))
    fit = ssc.Design(df, weights="wv").coxph("Surv(time, status) ~ x + arm")
    assert fit.terms == ["x", "armtreated"]


# ---------------------------------------------------------------------------- errors
def test_bad_survival_data_is_refused(tiny):
    design = ssc.Design(tiny.assign(t=tiny.t - 3), weights="w")
    with pytest.raises(ssc.ColumnError, match="1 negative survival time"):
        design.km("t", "dead")
    with pytest.raises(ssc.ColumnError, match="values other than 0 and 1"):
        ssc.Design(tiny.assign(dead=tiny.dead + 1), weights="w").km("t", "dead")
    with pytest.raises(ssc.ColumnError, match="0/1"):
        ssc.Design(tiny.assign(dead="yes"), weights="w").km("t", "dead")
    # The census counts what is wrong in one pass; each count gets its own message.
    with pytest.raises(ssc.ColumnError, match=r"'t' \(survival time\) has 1 infinite values"):
        ssc.Design(tiny.assign(t=tiny.t.where(tiny.index != 0, np.inf)), weights="w").km("t", "dead")
    with pytest.raises(ssc.ColumnError, match=r"2 values other than 0 and 1 \(inf\)"):
        ssc.Design(tiny.assign(dead=tiny.dead.where(tiny.index > 1, np.inf)), weights="w").km("t", "dead")
    census = ssc._core.survival_census(np.array([1.0, np.nan, -2.0, np.inf]), np.array([1.0, 0.0, np.nan, 2.0]))
    assert (census.missing_time, census.infinite_time, census.negative_time) == (1, 1, 1)
    assert (census.missing_event, census.non_binary_event) == (1, 1)
    with pytest.raises(ssc.ColumnError, match="'tt'"):
        ssc.Design(tiny, weights="w").coxph("Surv(tt, dead) ~ w")


def test_missing_values_are_counted_then_left_out(cohort):
    df = cohort.copy()
    df.loc[[1, 5], "time"] = np.nan
    df.loc[[8], "x"] = np.nan
    design = ssc.Design(df, weights="wv")
    with pytest.raises(ssc.MissingValueError, match="2 rows"):
        design.km("time", "status")
    with pytest.raises(ssc.MissingValueError, match="3 rows"):
        design.coxph("Surv(time, status) ~ x + g")
    fit = design.coxph("Surv(time, status) ~ x + g", na_rm=True)
    complete = ssc.Design(df.dropna(), weights="wv").coxph("Surv(time, status) ~ x + g")
    assert fit.n_removed == 3
    assert_allclose(fit.coef, complete.coef, rtol=1e-12)
    assert design.km("time", "status", na_rm=True).n_removed == 2


def test_model_errors(cohort):
    design = ssc.Design(cohort, weights="wv")
    with pytest.raises(ssc.ColumnError, match="'xx'"):
        design.coxph("Surv(time, status) ~ xx")
    with pytest.raises(ValueError, match="Surv"):
        design.coxph("time ~ x")
    with pytest.raises(ssc.EstimationError, match="aliased"):
        design.coxph("Surv(time, status) ~ x + I(2 * x)")
    # Every event in the group g = 1 before any in g = 0: the coefficient is infinite.
    separated = cohort.assign(time=np.where(cohort.g == 1, 1.0, 5.0) + cohort.index * 1e-3, status=1)
    with pytest.raises(ssc.ConvergenceError):
        ssc.Design(separated, weights="wv").coxph("Surv(time, status) ~ g")
    with pytest.raises(ssc.ConvergenceError, match="did not converge"):
        design.coxph("Surv(time, status) ~ x + g", maxit=1)


# ---------------------------------------------------------------------------- discrete time
def test_person_period_expands_and_the_cloglog_hazard_is_the_discrete_hazard():
    people = pd.DataFrame(
        {
            "pid": [1, 2, 3, 4, 5, 6],
            "years": [1, 3, 2, 3, 2, 1],
            "lapsed": [1, 0, 1, 1, 0, 0],
            "w": [1.0, 2.0, 1.5, 3.0, 1.0, 2.5],
        }
    )
    pp = ssc.person_period(people, "pid", "years", "lapsed")
    assert len(pp) == people.years.sum()
    assert pp["period"].tolist() == [1, 1, 2, 3, 1, 2, 1, 2, 3, 1, 2, 1]
    assert pp["lapsed"].tolist() == [1, 0, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0]
    pp["period"] = pp["period"].astype("category")
    fit = ssc.Design(pp, ids="pid", weights="w").glm("lapsed ~ period", family="binomial", link="cloglog")
    eta = fit.coef[0] + np.r_[0.0, fit.coef[1:]]
    for k, h in enumerate(1 - np.exp(-np.exp(eta)), start=1):
        at_risk = pp[pp.period == k]
        assert h == pytest.approx((at_risk.w * at_risk.lapsed).sum() / at_risk.w.sum(), rel=1e-7)
    # polars in, polars out
    assert ssc.person_period(pl.from_pandas(people), "pid", "years", "lapsed").height == len(pp)


def test_person_period_refuses_bad_input():
    people = pd.DataFrame({"pid": [1, 1], "years": [1, 2], "lapsed": [0, 1]})
    with pytest.raises(ssc.ColumnError, match="repeats"):
        ssc.person_period(people, "pid", "years", "lapsed")
    with pytest.raises(ssc.ColumnError, match="whole numbers"):
        ssc.person_period(people.assign(pid=[1, 2], years=[0.5, 2]), "pid", "years", "lapsed")
    with pytest.raises(ssc.MissingValueError):
        ssc.person_period(people.assign(pid=[1, 2], lapsed=[np.nan, 1]), "pid", "years", "lapsed")


# ---------------------------------------------------------------------------- km at scale
def _influence_oracle(t: np.ndarray, dead: np.ndarray, w: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nelson-Aalen entries of the rows `rows` by brute force (one per event of non-zero
    weight, in time then row order) and each row's influence on log S at every entry:
    w_k (-1{k is entry j <= a} / Y_j + sum_{j <= a, t_j <= t_k} dN_j / Y_j^2)."""
    ev = np.flatnonzero(rows & (dead == 1) & (w > 0))
    ev = ev[np.argsort(t[ev], kind="stable")]
    y = np.array([w[rows & (t >= t[j])].sum() for j in ev])
    c = np.cumsum(w[ev] / y**2)
    infl = np.zeros((len(t), len(ev)))
    for a in range(len(ev)):
        for k in np.flatnonzero(rows):
            seen = np.flatnonzero(t[ev[: a + 1]] <= t[k])
            v = c[seen[-1]] if len(seen) else 0.0
            own = np.flatnonzero(ev[: a + 1] == k)
            infl[k, a] = w[k] * (v - (1 / y[own[0]] if len(own) else 0.0))
    return ev, infl


def test_se_curve_variance_is_the_engine_on_the_influence_values(cohort):
    # Each curve of a by= call, on a subset, with ties and a zero-weight event: its
    # variance at every entry (mid-tie ones too) is the engine's on the brute-force
    # influence values of that curve's rows.
    df = cohort.assign(wv=np.where(np.arange(len(cohort)) == 7, 0.0, cohort.wv))
    design = ssc.Design(df, ids="psu", strata="stratum", weights="wv").subset(df.x > -1)
    res = design.km("time", "status", by="g", se=True)
    t, dead, w = df.time.to_numpy(), df.status.to_numpy(), df.wv.to_numpy()
    for g in (0.0, 1.0):
        rows = (df.g == g).to_numpy() & (df.x > -1).to_numpy()
        ev, infl = _influence_oracle(t, dead, w, rows)
        curve = res.curve(g)
        assert_allclose(curve["time"], t[ev], rtol=0)
        expected = np.diag(design.influence_vcov(infl, rows))
        assert_allclose(curve["se_log"] ** 2, expected, rtol=1e-11, atol=1e-15)


def test_se_curve_on_a_calibrated_design_uses_the_calibration_residuals(cohort):
    # A post-stratified design: the engine replaces the rows' influence values by their
    # residuals from the post-strata, in the core as for the brute-force values.
    design = ssc.Design(cohort, ids="psu", strata="stratum", weights="wv").poststratify(
        "g", {0.0: 100.0, 1.0: 120.0})
    res = design.km("time", "status", se=True)
    rows = np.ones(len(cohort), bool)
    w = design.weights
    ev, infl = _influence_oracle(cohort.time.to_numpy(), cohort.status.to_numpy(), w, rows)
    expected = np.diag(design.influence_vcov(infl))
    assert_allclose(res.curve()["se_log"] ** 2, expected, rtol=1e-11, atol=1e-15)


def test_product_limit_by_group_in_one_pass_is_each_groups_curve():
    # Several chunks of rows, many distinct times in one group (sorted) and few in the
    # other (hashed): each curve equals the hand product limit of its own rows.
    rng = np.random.default_rng(3)
    n = 150_000
    g = rng.integers(0, 2, n)
    t = np.where(g == 0, rng.integers(1, 30, n).astype(float), rng.exponential(10.0, n))
    df = pd.DataFrame({"t": t, "e": (rng.uniform(size=n) < 0.6).astype(float), "w": rng.uniform(1, 3, n), "g": g})
    res = ssc.Design(df, weights="w").km("t", "e", by="g")
    for level in (0, 1):
        part = df[df.g == level]
        times, inverse = np.unique(part.t.to_numpy(), return_inverse=True)
        weight = np.bincount(inverse, part.w.to_numpy())
        died = np.bincount(inverse, part.w.to_numpy() * part.e.to_numpy())
        at_risk = weight.sum() - np.concatenate([[0.0], np.cumsum(weight)[:-1]])
        curve = res.curve(level)
        assert_allclose(curve["time"], np.concatenate([[0.0], times]), rtol=0)
        # 75,000 factors: rounding of the sums in another order moves the tail by ~1e-10.
        assert_allclose(curve["survival"], np.concatenate([[1.0], np.cumprod(1 - died / at_risk)]), rtol=1e-9)


THREADS_CODE = """
import numpy as np, pandas as pd, sscoverage as ssc
rng = np.random.default_rng(5); n = 300_000
df = pd.DataFrame({'s': rng.integers(0, 10, n), 'g': rng.integers(0, 3, n)})
df['p'] = df.s * 100 + rng.integers(0, 20, n)
df['w'] = rng.uniform(1, 3, n)
df['t'] = np.where(df.g == 2, rng.exponential(20.0, n), np.ceil(rng.exponential(20.0, n)))
df['e'] = (rng.uniform(size=n) < 0.7).astype(float)
design = ssc.Design(df, ids='p', strata='s', weights='w')
out = design.km('t', 'e', by='g').to_pandas()['survival'].tolist()
se = design.km('t', 'e', by='g', times=[1, 5, 20, 60], se=True).to_pandas()
out += se['survival'].tolist() + se['se_log'].tolist()
# Many entries: blocks of them go to the engine in parallel.
out += design.km('t', 'e', times=list(range(1, 120)), se=True).to_pandas()['se_log'].tolist()
jk = ssc.Design(df.assign(p=df.p % 30), ids='p', weights='w').as_replicates('JK1')
out += jk.km('t', 'e', times=[2, 10, 40], se=True).to_pandas()['se_log'].tolist()
print([float(v).hex() for v in out])
"""


def test_km_is_the_same_whatever_the_thread_count():
    outs = outputs_by_threads(THREADS_CODE)
    assert outs[0] == outs[1]
    assert len(eval(outs[0])) > 1000


# ---------------------------------------------------------------------------- streamed km
@pytest.fixture(scope="module")
def survey_rows() -> pd.DataFrame:
    rng = np.random.default_rng(8)
    n = 30_000
    df = pd.DataFrame({"h": rng.integers(0, 6, n), "w": rng.uniform(1, 4, n), "d": rng.integers(0, 4, n)})
    df["psu"] = df.h * 100 + rng.integers(0, 25, n)
    # Few distinct times in domains 0-2 (hashed), all distinct in domain 3 (sorted).
    df["t"] = np.where(df.d == 3, rng.exponential(10.0, n), np.ceil(rng.exponential(10.0, n)))
    df["e"] = (rng.uniform(size=n) < 0.6).astype(float)
    df.loc[::97, "t"] = np.nan
    return df


@pytest.fixture(scope="module")
def survey_lazy(survey_rows, tmp_path_factory) -> pl.LazyFrame:
    folder = tmp_path_factory.mktemp("km")
    n = len(survey_rows)
    for i in range(3):
        pl.from_pandas(survey_rows.iloc[i * n // 3:(i + 1) * n // 3]).write_parquet(folder / f"part{i}.parquet")
    return pl.scan_parquet(folder / "*.parquet")


KM_CALLS = [dict(by="d", na_rm=True), dict(na_rm=True, times=[0.5, 1, 5, 12, 40])]


def _same_curves(memory: Any, streamed: Any) -> None:
    a, b = memory.to_pandas(), streamed.to_pandas()
    assert list(a.columns) == list(b.columns) and len(a) == len(b)
    assert_allclose(b.to_numpy(float), a.to_numpy(float), rtol=1e-12, atol=1e-12)
    assert (streamed.n, streamed.n_removed, streamed.groups) == (memory.n, memory.n_removed, memory.groups)


@pytest.mark.parametrize("kw", KM_CALLS)
def test_streamed_km_is_the_in_memory_km(survey_rows, survey_lazy, kw):
    memory = ssc.Design(survey_rows, ids="psu", strata="h", weights="w")
    streamed = ssc.Design(survey_lazy, ids="psu", strata="h", weights="w", batch_rows=4_000, progress=False)
    _same_curves(memory.km("t", "e", **kw), streamed.km("t", "e", **kw))
    low = {"column": "h", "op": "<", "value": 3}
    _same_curves(memory.subset(low).km("t", "e", **kw), streamed.subset(low).km("t", "e", **kw))


def test_streamed_km_on_dask_is_the_in_memory_km(survey_rows):
    dd = pytest.importorskip("dask.dataframe")
    distributed = pytest.importorskip("dask.distributed")
    memory = ssc.Design(survey_rows, ids="psu", strata="h", weights="w")
    with distributed.LocalCluster(n_workers=2, processes=False, dashboard_address=":0") as cluster, \
            distributed.Client(cluster):
        streamed = ssc.Design(dd.from_pandas(survey_rows, npartitions=5), ids="psu", strata="h", weights="w")
        for kw in KM_CALLS:
            _same_curves(memory.km("t", "e", **kw), streamed.km("t", "e", **kw))
        kw = dict(by="d", times=[1, 3, 10, 30], se=True, na_rm=True)
        _same_curves(memory.km("t", "e", **kw), streamed.km("t", "e", **kw))


def test_streamed_km_refuses_as_in_memory(survey_rows, survey_lazy):
    streamed = ssc.Design(survey_lazy, ids="psu", strata="h", weights="w", progress=False)
    with pytest.raises(ssc.MissingValueError, match=r"310 rows .*'t': 310"):
        streamed.km("t", "e")
    raked = streamed.rake([("d", {0: 2e4, 1: 2e4, 2: 2e4, 3: 2e4})])
    with pytest.raises(ssc.NotSupportedError, match="raked"):
        raked.km("t", "e", na_rm=True)
    negative = survey_lazy.with_row_index("row").with_columns(
        t=pl.when(pl.col("row").is_in([3, 20_000])).then(-1.0).otherwise(pl.col("t")))
    with pytest.raises(ssc.ColumnError, match="2 negative"):
        ssc.Design(negative, ids="psu", strata="h", weights="w", progress=False).km("t", "e")


def test_streamed_se_curves_are_the_in_memory_ones(survey_rows, survey_lazy):
    # The Nelson-Aalen curves (an entry per event, ties across batches in row order),
    # the variance at the times asked for, and the quantiles (every entry's variance).
    memory = ssc.Design(survey_rows, ids="psu", strata="h", weights="w")
    streamed = ssc.Design(survey_lazy, ids="psu", strata="h", weights="w", batch_rows=4_000, progress=False)
    low = {"column": "h", "op": "<", "value": 3}
    for m, s in ((memory, streamed), (memory.subset(low), streamed.subset(low))):
        a = m.km("t", "e", by="d", times=[1, 3, 10, 30], se=True, na_rm=True)
        b = s.km("t", "e", by="d", times=[1, 3, 10, 30], se=True, na_rm=True)
        _same_curves(a, b)
        assert_allclose(b.curve(2).to_numpy(float)[:, :2], a.curve(2).to_numpy(float)[:, :2], rtol=1e-12)
    a = memory.median_survival("t", "e", by="d", na_rm=True)
    b = streamed.median_survival("t", "e", by="d", na_rm=True)
    assert_allclose(b.to_numpy(float), a.to_numpy(float), rtol=1e-12)
