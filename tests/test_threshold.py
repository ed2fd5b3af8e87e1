"""The threshold GLM (design.threshold_glm): simulations with a known threshold and with
none, on a stratified cluster design; and its errors.

All data are simulated with fixed seeds; the whole file runs in about 15 s."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import sscoverage as ssc
from _threads import outputs_by_threads

TRUE_THRESHOLD = 5.0  # income in thousands of yuan a month


def simulate(seed: int, kind: str = "slope", effect: float = 1.0, n_strata: int = 10, psus: int = 8,
             per_psu: int = 12) -> pd.DataFrame:
    """A stratified cluster sample (10 strata x 8 PSUs x 12 people) with unequal PSU
    weights and a PSU random effect; income log-normal around 6 thousand.  Coverage
    (y = 1) falls away below 5 thousand: its logit slope in income is steeper there by
    `effect` (kind="slope"), or drops by `effect` there (kind="level"); effect=0 is a
    plain logistic model in income and age, with no threshold."""
    rng = np.random.default_rng(seed)
    n_psu = n_strata * psus
    n = n_psu * per_psu
    psu = np.repeat(np.arange(n_psu), per_psu)
    income = np.exp(rng.normal(np.log(6.0), 0.5, n))
    age = rng.uniform(20, 60, n)
    u = rng.normal(0, 0.3, n_psu)[psu]
    if kind == "slope":
        eta = 1.5 - 0.1 * (income - TRUE_THRESHOLD) - effect * np.minimum(income - TRUE_THRESHOLD, 0) \
            + 0.01 * (age - 40) + u
    else:
        eta = 1.0 + 0.05 * income - effect * (income < TRUE_THRESHOLD) + u
    return pd.DataFrame({
        "stratum": psu // psus,
        "psu": psu,
        "w": np.repeat(rng.uniform(1, 4, n_psu), per_psu),
        "covered": (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(float),
        "income": income,
        "age": age,
    })


def design(df: pd.DataFrame) -> ssc.Design:
    return ssc.Design(df, ids="psu", strata="stratum", weights="w")


# ----------------------------------------------------------------------------- known threshold
def test_a_kink_is_recovered_within_its_interval():
    """Six data sets with a kink at 5: a 95 % interval may miss now and then, so the
    truth must be inside at least 5 of the 6 (P(2+ misses) = 3.3 % at exact coverage)."""
    covered = []
    for seed in range(11, 17):
        res = design(simulate(seed)).threshold_glm("covered ~ income + age", "income", kind="slope",
                                                   n_draws=99)
        assert res.ci_method == "lr" and res.ci_low <= res.threshold <= res.ci_high
        assert res.p_value < 0.05
        covered.append(res.ci_low <= TRUE_THRESHOLD <= res.ci_high)
    assert sum(covered) >= 5, covered
    # The last fit in detail.  The fitted model at the threshold is a design-based GLM
    # with the hinge term.
    assert isinstance(res.model, ssc.GLMResult)
    assert res.term == f"pmax(income - {res.threshold!r}, 0)" and res.term in res.model.terms
    slopes = res.slopes()
    assert slopes["slope"][0] < slopes["slope"][1]  # steeper (more negative) below
    # The profile: the least deviance at the threshold, LR 0 there.
    prof = res.profile
    assert prof["threshold"][prof["deviance"].idxmin()] == res.threshold
    assert prof.loc[prof["deviance"].idxmin(), "lr"] == 0.0
    assert (prof["n_below"] >= 10).all() and (prof["n_above"] >= 10).all()
    assert "threshold" in repr(res) and res.summary().shape == (1, 8)
    # The model at the threshold predicts like any GLM.
    assert np.isfinite(res.model.marginal_effects("income").se).all()


def test_a_step_is_recovered_within_its_interval():
    covered = []
    for seed in range(21, 25):
        res = design(simulate(seed, kind="level", effect=1.2)).threshold_glm(
            "covered ~ income + age", "income", kind="level", n_draws=99)
        assert res.p_value < 0.05
        covered.append(res.ci_low <= TRUE_THRESHOLD <= res.ci_high)
    assert sum(covered) >= 3, covered  # P(2+ misses of 4) = 1.4 % at exact coverage
    assert res.term == f"I(income < {res.threshold!r})TRUE"
    # Hansen's (2000) critical value for a step: -2 log(1 - sqrt(0.95)).
    assert res.critical_value == pytest.approx(7.352, abs=1e-3)
    assert set(res.confidence_set) <= set(res.profile["threshold"])


def test_replicate_design_interval_from_bootstrap_replicates():
    d = design(simulate(13)).as_replicates("bootstrap", replicates=40, seed=3)
    res = d.threshold_glm("covered ~ income + age", "income", grid=12)
    assert res.ci_method == "replicate" and len(res.replicate_thresholds) == 40
    assert res.ci_low <= TRUE_THRESHOLD <= res.ci_high
    assert res.p_value < 0.05


# ----------------------------------------------------------------------------- no threshold
def test_no_threshold_rejects_at_about_the_nominal_rate():
    """40 data sets without a threshold (20 of each kind), tests at 5 %.  Under the null
    the rejections are Binomial(40, 0.05): mean 2, P(>= 6) = 1.4 %; a test twice too
    liberal would reject 6 or more with probability 37 %.  The p-values should also
    average about 0.5 (SE 0.046 for 40 uniform values)."""
    p = []
    for rep in range(40):
        kind = "slope" if rep % 2 == 0 else "level"
        res = design(simulate(100 + rep, kind=kind, effect=0.0)).threshold_glm(
            "covered ~ income + age", "income", kind=kind, n_draws=99)
        p.append(res.p_value)
    p = np.asarray(p)
    assert (p < 0.05).sum() <= 5
    assert p.mean() > 0.5 - 3 * 0.046


# ----------------------------------------------------------------------------- fixed numbers
def fixed_data() -> pd.DataFrame:
    """6 strata x 5 PSUs x 10 people, a kink at 5.5 in a continuous score, two regions."""
    df = simulate(31, kind="slope", effect=0.8, n_strata=6, psus=5, per_psu=10)
    rng = np.random.default_rng(5)
    df["region"] = np.where(rng.random(len(df)) < 0.5, "east", "west")
    df["score"] = 2.0 + 0.3 * df["income"] - 0.4 * np.maximum(df["income"] - 5.5, 0) + rng.normal(0, 1, len(df))
    return df


def fixed_cases() -> dict[str, tuple[ssc.Design, dict]]:
    """A linearisation design's domain (age < 55), a post-stratified design and a bootstrap
    replicate design; kinds slope and level; gaussian and quasibinomial."""
    df = fixed_data()
    lin = design(df)
    dom = lin.subset(df["age"] < 55)
    counts = df.groupby("region")["w"].sum() * 1.1
    post = lin.poststratify("region", {k: float(v) for k, v in counts.items()})
    boot = lin.as_replicates("bootstrap", replicates=30, seed=4)
    return {
        "domain_slope_quasibinomial": (dom, dict(formula="covered ~ income + age", kind="slope",
                                                 family="quasibinomial", grid=9, n_draws=199)),
        "domain_level_gaussian": (dom, dict(formula="score ~ income + age", kind="level", family="gaussian",
                                            grid=7, n_draws=99)),
        "poststratified_slope_gaussian": (post, dict(formula="score ~ income + region", kind="slope",
                                                     family="gaussian", grid=8, n_draws=99)),
        "poststratified_level_quasibinomial": (post, dict(formula="covered ~ age", kind="level",
                                                          family="quasibinomial", grid=6, n_draws=99)),
        "bootstrap_slope_quasibinomial": (boot, dict(formula="covered ~ income + age", kind="slope",
                                                     family="quasibinomial", grid=7, n_draws=199)),
        "bootstrap_level_gaussian": (boot, dict(formula="score ~ income", kind="level", family="gaussian",
                                                grid=6, n_draws=199)),
    }


# Recorded from the implementation assembled in Python around the core (dense copies of
# the model matrix, n x G influence and score matrices) at main's commit
# 6d6a6dab32f047d9a8ca2e89d29126a73c46f39c, before the core took over the profile and the
# score test: the core's route must give the same numbers.
RECORDED = {
    'domain_slope_quasibinomial': {
        'threshold': 4.865919769802441,
        'ci_low': 3.4266190937712717,
        'ci_high': 11.265917025263798,
        'statistic': 5.842483128155198,
        'p_value': 0.09,
        'deff': 0.8013722475414566,
        'profile_threshold': [3.4266190937712717, 4.178788239720269, 4.865919769802441, 5.500598127471537, 6.22958218657568, 6.936128751467375, 8.001412871168368, 8.812181201104536, 11.265917025263798],
        'profile_deviance': [274.6520406030804, 275.3156613894958, 274.2537701119668, 274.91406772048185, 275.136511186604, 274.8239973676532, 274.7535394390163, 274.8773563200606, 277.11377445015904],
        'profile_lr': [0.49698562975632854, 1.3250911555607374, 0.0, 0.8239586665757442, 1.1015368667250633, 0.7115635179978023, 0.6236419199476715, 0.7781479955250613, 3.5688836829157857],
        'profile_coef': [2.13006271887692, 0.8072506135031348, 0.6439128469238888, 0.4240774700787163, 0.32254837962866567, 0.3002253440116726, 0.27347353929590135, 0.2689138414893769, 0.16094366022532894],
        'profile_se': [1.6298325508989953, 0.5195798453786826, 0.34191750657403835, 0.21158612822077769, 0.16105198841171398, 0.15186289325615282, 0.14604033527346882, 0.14409101503432456, 0.1802639620391908],
        'profile_wald': [1.7080430320817586, 2.4138605374594846, 3.5465942397973196, 4.017131214079067, 4.011045113521508, 3.908331229310798, 3.506589919550473, 3.4829922815254455, 0.7971314120352668],
        'profile_lm': [4.365272935882048, 4.268473050435609, 5.842483128155198, 5.472018090045494, 4.924249021952974, 4.7660773795438445, 3.886795700154783, 3.6029842608852247, 0.821999427790147],
        'n_below': [27, 53, 80, 106, 133, 159, 186, 212, 239],
    },
    'domain_level_gaussian': {
        'threshold': 4.438087309743217,
        'ci_low': 3.4266190937712717,
        'ci_high': 11.265917025263798,
        'statistic': 13.156349375079387,
        'p_value': 0.02,
        'deff': 0.8372098953586345,
        'profile_threshold': [3.4266190937712717, 4.438087309743217, 5.275835896239859, 6.22958218657568, 7.242188461704629, 8.466439262553333, 11.265917025263798],
        'profile_deviance': [277.5873429973981, 277.15316850344163, 284.93027003181993, 288.3022180005564, 288.1496487530304, 289.15374105083146, 277.96487377409915],
        'profile_lr': [0.5185969448801857, 0.0, 9.289309134415843, 13.31691079969723, 13.13467543868224, 14.334007055959548, 0.9695361642970107],
        'profile_coef': [-0.79890681072598, -0.631357774088332, -0.36752770821140684, -0.18207450831900318, 0.22315902857694103, -0.066332730490334, 1.0040927754892646],
        'profile_se': [0.26996728153313854, 0.1662353436544074, 0.18647126708152192, 0.16894405971832124, 0.25495439628071875, 0.26402895457193076, 0.34861886069798487],
        'profile_wald': [8.757295013631099, 14.424618431154773, 3.884689655952709, 1.1614818819283015, 0.7661325501559552, 0.06311791399557763, 8.29556415018418],
        'profile_lm': [7.472615832328093, 13.156349375079387, 3.8324889183145947, 1.1078170011178232, 0.7682085808525758, 0.061972795357434655, 7.133620678878284],
        'n_below': [27, 62, 98, 133, 168, 204, 239],
    },
    'poststratified_slope_gaussian': {
        'threshold': 5.0680236320166925,
        'ci_low': 4.539278960973638,
        'ci_high': 6.147783151606097,
        'statistic': 20.7751725981303,
        'p_value': 0.01,
        'deff': 0.8004084784506731,
        'profile_threshold': [3.4082479731734705, 4.1999727293895335, 5.0680236320166925, 5.816960758249999, 6.619937877658486, 7.743828497680387, 8.777308072975226, 11.066406726801901],
        'profile_deviance': [309.0733802449805, 305.1131410842592, 300.0652839835765, 302.2627739784208, 304.392039266278, 308.0479501266111, 308.0594679170334, 316.96198453675146],
        'profile_lr': [11.254373865255324, 6.306601237475296, 0.0, 2.7454606666560233, 5.405683971609968, 9.973240361579434, 9.987630252156999, 21.110096916866027],
        'profile_coef': [-1.0150953724884326, -0.6294818960649825, -0.4776193650231975, -0.3645736776428198, -0.3001413425298758, -0.2510458500577568, -0.25281997040292276, -0.22538771056408172],
        'profile_se': [0.2349407816770347, 0.13882477706979937, 0.08718514969357521, 0.06891585706207368, 0.06115444351429247, 0.06218734065516405, 0.06802907090160923, 0.09957673433488427],
        'profile_wald': [18.667960667898463, 20.560445427254912, 30.010886108056972, 27.98545004287185, 24.087715020266124, 16.29679200333934, 13.8112718273081, 5.123240054713613],
        'profile_lm': [6.249629125524997, 10.878238037188265, 19.839525082003036, 20.7751725981303, 18.532247090309053, 14.647732925274168, 12.125463753715728, 4.692866105608312],
        'n_below': [30, 65, 99, 133, 167, 201, 235, 270],
    },
    'poststratified_level_quasibinomial': {
        'threshold': 4.530380428597479,
        'ci_low': 3.4082479731734705,
        'ci_high': 11.066406726801901,
        'statistic': 11.282155946766789,
        'p_value': 0.02,
        'deff': 1.126127783839335,
        'profile_threshold': [3.4082479731734705, 4.530380428597479, 5.572426279402097, 6.8288128165747795, 8.313658190459725, 11.066406726801901],
        'profile_deviance': [313.24458019000684, 309.18352585763967, 309.22113715667655, 309.5316648909268, 311.2000787309942, 316.8580665336191],
        'profile_lr': [3.6062109386216594, 0.0, 0.033398784380093444, 0.30914700647931137, 1.7906963155455347, 6.814982088279907],
        'profile_coef': [1.2980227392459331, 1.056577526201353, 0.8760560178925599, 0.8107462615297857, 0.7798064168042502, 0.44654775231159227],
        'profile_se': [0.7489490124424358, 0.41424561925311143, 0.35184543176066174, 0.34201813770760836, 0.2775267331418005, 0.3313723299043265],
        'profile_wald': [3.0037244966568846, 6.505592990017734, 6.199546491415511, 5.619163044358269, 7.895215019309581, 1.8159476840584472],
        'profile_lm': [6.0042494942221545, 11.282155946766789, 8.117233848967455, 6.070934475969137, 7.380732093330605, 1.284580779767342],
        'n_below': [30, 78, 126, 174, 222, 270],
    },
    'bootstrap_slope_quasibinomial': {
        'threshold': 8.483986306820892,
        'ci_low': 4.638747997333711,
        'ci_high': 11.066406726801901,
        'statistic': 3.533690062425934,
        'p_value': 0.15,
        'deff': 0.7881635747010559,
        'profile_threshold': [3.4082479731734705, 4.412603925684269, 5.285203627810924, 6.249941379594093, 7.272163602966557, 8.483986306820892, 11.066406726801901],
        'profile_deviance': [308.37961400856483, 307.87080534990923, 307.1580011062132, 307.0074618914691, 306.62068293568757, 306.1154604710729, 308.5215815961191],
        'profile_lr': [2.8726949711558607, 2.227132711001193, 1.3227465320707568, 1.131746567626612, 0.6410121970002438, 0.0, 3.0528194936677493],
        'profile_coef': [0.6660789943019507, 0.4107168650404254, 0.3431773841677177, 0.26148109016504634, 0.24403551619234537, 0.2473626224648248, 0.12300025975819913],
        'profile_se': [math.nan, 0.7165922175353934, 0.28543159783995825, 0.18904652875326208, 0.15799581179352037, 0.131589079503069, 0.18223042271267956],
        'profile_wald': [math.nan, 0.32850417870090487, 1.4455503450927045, 1.913124173323829, 2.3856950218296364, 3.533690062425934, 0.4555859183223827],
        'profile_lm': [math.nan, math.nan, math.nan, math.nan, math.nan, math.nan, math.nan],
        'n_below': [30, 70, 110, 150, 190, 230, 270],
    },
    'bootstrap_level_gaussian': {
        'threshold': 4.530380428597479,
        'ci_low': 3.4082479731734705,
        'ci_high': 9.955237419644728,
        'statistic': 13.400855340828661,
        'p_value': 0.005,
        'deff': 1.336514331159116,
        'profile_threshold': [3.4082479731734705, 4.530380428597479, 5.572426279402097, 6.8288128165747795, 8.313658190459725, 11.066406726801901],
        'profile_deviance': [314.11936001261296, 306.4032236240169, 319.8037426589093, 323.95452933267615, 324.29611707606483, 311.1625981921044],
        'profile_lr': [5.773328582196419, 0.0, 10.0264686449494, 13.132149277769104, 13.387730333224333, 3.561035192162756],
        'profile_coef': [-0.6928377111165771, -0.7099242829337632, -0.36062934103516475, -0.1147664559873338, -0.029085340370347327, 1.0248977089532454],
        'profile_se': [0.21832891230090426, 0.1939303458206813, 0.20515013489214193, 0.15930428349550324, 0.2588906600077541, 0.2862351042949203],
        'profile_wald': [10.070256537482887, 13.400855340828661, 3.0901424698991495, 0.5190091737393441, 0.01262163263901393, 12.820803802950717],
        'profile_lm': [math.nan, math.nan, math.nan, math.nan, math.nan, math.nan],
        'n_below': [30, 78, 126, 174, 222, 270],
    },
}


@pytest.mark.parametrize("name", list(RECORDED))
def test_recorded_numbers_of_the_python_assembled_implementation(name):
    d, kw = fixed_cases()[name]
    kw = dict(kw)
    formula = kw.pop("formula")
    res = d.threshold_glm(formula, "income", progress=False, **kw)
    want = RECORDED[name]
    prof = res.profile
    for key in ("threshold", "ci_low", "ci_high", "statistic", "deff"):
        np.testing.assert_allclose(getattr(res, key), want[key], rtol=1e-12, err_msg=key)
    assert res.p_value == want["p_value"]
    for col in ("threshold", "deviance", "lr", "coef", "se", "wald", "lm"):
        np.testing.assert_allclose(prof[col], want["profile_" + col], rtol=1e-12, atol=1e-14, err_msg=col)
    assert list(prof["n_below"]) == want["n_below"]


def test_score_statistic_at_one_candidate_by_hand():
    """LM(c) of a gaussian model on a stratified cluster design, written out: the null
    fit without the hinge is weighted least squares; the hinge column h is residualised
    on the null model's columns with the weights, each row's score is w (y - x0 b) h~,
    and the statistic is the squared sum of the scores over the design-based variance of
    that sum (PSU totals, deviations from their stratum's mean, n_h / (n_h - 1))."""
    df = fixed_data()
    c = 6.0
    res = design(df).threshold_glm("score ~ income + age", "income", kind="slope", family="gaussian",
                                   grid=[4.0, c, 8.0], n_draws=9, progress=False)
    w = df["w"].to_numpy() / df["w"].mean()
    x0 = np.column_stack([np.ones(len(df)), df["income"], df["age"]])
    y = df["score"].to_numpy()
    b = np.linalg.solve(x0.T @ (w[:, None] * x0), x0.T @ (w * y))
    h = np.maximum(df["income"].to_numpy() - c, 0)
    h_res = h - x0 @ np.linalg.solve(x0.T @ (w[:, None] * x0), x0.T @ (w * h))
    score = w * (y - x0 @ b) * h_res
    psu_total = pd.Series(score).groupby(df["psu"]).sum()
    stratum = df.groupby("psu")["stratum"].first()
    dev = psu_total - psu_total.groupby(stratum).transform("mean")
    n_h = psu_total.groupby(stratum).transform("size")
    var = float((n_h / (n_h - 1) * dev**2).sum())
    lm = score.sum() ** 2 / var
    assert res.profile["lm"][1] == pytest.approx(lm, rel=1e-12)



THREADS_CODE = """
import sys
import numpy as np, sscoverage as ssc
sys.path.insert(0, sys.argv[1])
from test_threshold import simulate
df = simulate(41, n_strata=20, psus=10, per_psu=150)  # 30,000 rows: two chunks of the core's passes
d = ssc.Design(df, ids='psu', strata='stratum', weights='w')
out = []
for kind in ('slope', 'level'):
    r = d.threshold_glm('covered ~ income + age', 'income', kind=kind, grid=6, n_draws=49, progress=False)
    out += [*r.profile['deviance'], *r.profile['se'], *r.profile['lm'], r.statistic, r.p_value]
print([float(v).hex() for v in out])
"""


def test_the_same_digits_whatever_the_thread_count():
    """The candidates' fits, their unit totals and the scores' passes add their chunks in
    chunk order: one thread or two give the same bits."""
    outs = outputs_by_threads(THREADS_CODE, str(Path(__file__).resolve().parent))
    assert outs[0] == outs[1]
    assert len(eval(outs[0])) == 2 * (3 * 6 + 2)


# ----------------------------------------------------------------------------- errors
def test_grid_outside_the_data_is_refused():
    d = design(simulate(14))
    with pytest.raises(ssc.ThresholdError, match=r"grid value\(s\) 100 are outside the range of 'income'"):
        d.threshold_glm("covered ~ income + age", "income", grid=[4.0, 5.0, 100.0])


def test_too_few_rows_on_one_side_is_refused():
    df = simulate(14)
    third_lowest = np.sort(df["income"].to_numpy())[3]
    with pytest.raises(ssc.ThresholdError, match="has 3 rows below .* min_side=10"):
        design(df).threshold_glm("covered ~ income + age", "income", grid=[third_lowest, 5.0])


def test_threshold_variable_must_be_a_numeric_column():
    df = simulate(14).assign(region=lambda d: np.where(d["income"] > 6, "east", "west"))
    with pytest.raises(ssc.ColumnError, match="'incme' is not in the data. Did you mean 'income'"):
        design(df).threshold_glm("covered ~ income + age", "incme")
    with pytest.raises(ssc.ColumnError, match="must be numeric"):
        design(df).threshold_glm("covered ~ income + age", "region", kind="level")


def test_slope_kind_needs_the_variable_in_the_formula():
    with pytest.raises(ssc.ThresholdError, match="needs 'income' as a term"):
        design(simulate(14)).threshold_glm("covered ~ age", "income", kind="slope")
    # A step needs no slope.
    res = design(simulate(14, kind="level")).threshold_glm("covered ~ age", "income", kind="level",
                                                           n_draws=19, grid=5)
    assert len(res.profile) == 5


def test_missing_threshold_values_leave_the_design_as_a_domain():
    df = simulate(14, kind="level")
    df.loc[:9, "income"] = np.nan
    res = design(df).threshold_glm("covered ~ age", "income", kind="level", grid=5, n_draws=19)
    assert res.model.n == len(df) - 10
    assert "10 rows with a missing income left out" in res.notes
