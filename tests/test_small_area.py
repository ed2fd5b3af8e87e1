"""Fay–Herriot small-area estimation (``ssc.small_area``).

Reference numbers: R's sae 1.3 (``eblupFH``, ``mseFH``) on its ``milk`` and ``grapes``
data and on a five-area case where sae's Fisher scoring does not converge, made by
``tests/data/small_area/make_expected.R`` and stored in ``sae_expected.json``.
"""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import polars as pl
import pytest
from numpy.testing import assert_allclose

import sscoverage as ssc
from sscoverage import small_area

matplotlib.use("Agg")

HERE = Path(__file__).parent / "data" / "small_area"
EXPECTED = json.loads((HERE / "sae_expected.json").read_text())
METHODS = ["REML", "ML", "FH"]
TOL = 1e-6


def _milk() -> tuple[pd.DataFrame, pd.DataFrame]:
    milk = pd.read_csv(HERE / "milk.csv")
    direct = pd.DataFrame({"area": milk.SmallArea, "estimate": milk.yi, "variance": milk["var"]})
    covariates = pd.DataFrame({"area": milk.SmallArea, "major": milk.MajorArea.astype(str)})
    return direct, covariates


def _grapes() -> tuple[pd.DataFrame, pd.DataFrame]:
    g = pd.read_csv(HERE / "grapes.csv")
    direct = pd.DataFrame({"area": g.area_id, "estimate": g.grapehect, "variance": g["var"]})
    covariates = pd.DataFrame({"area": g.area_id, "hectares": g["area"], "workdays": g.workdays})
    return direct, covariates


def _flat() -> tuple[pd.DataFrame, pd.DataFrame]:
    f = pd.read_csv(HERE / "flat.csv")
    return (pd.DataFrame({"area": f.area, "estimate": f.y, "variance": f["var"]}),
            pd.DataFrame({"area": f.area, "x": f.x}))


PROVINCE_FORMULA = "platform_share + flexible_low_income_share + urbanisation"


def write_provinces(path: Path) -> pd.DataFrame:
    """provinces.csv, the input of make_expected.R's `provinces` case: the bundled
    survey's direct estimates of flexible workers' pension lapse by province with their
    design variances, and the shipped covariates."""
    t = small_area.provincial_lapse(benchmark=False).table
    out = ssc.datasets.provincial_covariates().merge(t[["province", "direct", "direct_se"]], on="province")
    out["estimate"] = out.pop("direct")
    out["variance"] = out.pop("direct_se") ** 2
    out = out[["province", "estimate", "variance", "flexible_workers", *PROVINCE_FORMULA.split(" + ")]]
    out.to_csv(path, index=False, float_format="%.17g")
    return out


def _provinces() -> tuple[pd.DataFrame, pd.DataFrame]:
    p = pd.read_csv(HERE / "provinces.csv").rename(columns={"province": "area"})
    return p[["area", "estimate", "variance"]], p.drop(columns=["estimate", "variance"])


# milk: yi ~ as.factor(MajorArea); grapes: grapehect ~ area + workdays - 1; flat: y ~ x;
# provinces: estimate ~ platform_share + flexible_low_income_share + urbanisation.
CASES = {
    "milk": (_milk, "C(major)"),
    "grapes": (_grapes, "hectares + workdays - 1"),
    "flat": (_flat, "x"),
    "provinces": (_provinces, PROVINCE_FORMULA),
}


@pytest.mark.parametrize(
    ("dataset", "method"),
    # sae's FH fit of `flat` does not converge: test_where_sae_does_not_converge.
    [(d, m) for d in CASES for m in METHODS if EXPECTED[f"{d}_{m}"]["converged"]],
)
def test_equals_sae(dataset: str, method: str) -> None:
    expected = EXPECTED[f"{dataset}_{method}"]
    make, formula = CASES[dataset]
    direct, covariates = make()
    r = small_area.fay_herriot(direct, covariates, area="area", formula=formula, method=method)
    if expected["refvar"] > 0:
        # Same path as sae's; at zero, sae's iterates went negative and ours stopped there.
        assert r.iterations == expected["iterations"]
    assert_allclose(r.model_variance, expected["refvar"], rtol=0, atol=TOL * max(1, expected["refvar"]))
    assert_allclose(r.table["eblup"], expected["eblup"], rtol=TOL, atol=TOL)
    assert_allclose(r.table["mse"], expected["mse"], rtol=TOL, atol=TOL)
    assert_allclose(r.coefficients["estimate"], expected["beta"], rtol=TOL, atol=TOL)
    assert_allclose(r.coefficients["se"], expected["std_error"], rtol=TOL, atol=TOL)
    assert_allclose(r.loglik, expected["loglike"], rtol=TOL)


def test_provinces_input_is_the_survey_s(tmp_path: Path) -> None:
    """The stored provinces.csv that R read is what the package computes today."""
    made = write_provinces(tmp_path / "provinces.csv")
    stored = pd.read_csv(HERE / "provinces.csv")
    pd.testing.assert_frame_equal(made, stored, rtol=1e-15, check_exact=False)


def test_where_sae_does_not_converge() -> None:
    """sae's FH moment iteration wanders below zero and stops after 100 steps without
    estimates; truncation at zero finds the boundary solution, which REML and ML (where
    sae converges, also to zero) share: EBLUP = synthetic, and REML's numbers are sae's."""
    assert EXPECTED["flat_FH"]["converged"] is False
    direct, covariates = _flat()
    fh = small_area.fay_herriot(direct, covariates, area="area", method="FH")
    reml = EXPECTED["flat_REML"]
    assert fh.at_zero and fh.model_variance == 0.0
    assert_allclose(fh.table["eblup"], fh.table["synthetic"], rtol=0, atol=0)
    assert_allclose(fh.table["eblup"], reml["eblup"], rtol=TOL)
    assert (fh.table["gamma"] == 0).all()
    assert "synthetic" in repr(fh)


def test_direct_estimates_from_a_design_and_the_worked_example() -> None:
    r = small_area.provincial_lapse()
    t = r.to_pandas()
    assert len(t) == 31 and t["in_sample"].all()
    direct = t["direct"].to_numpy()
    # The direct estimates are the design's, and the EBLUP lies between direct and synthetic.
    survey = ssc.datasets.coverage_survey()
    persons = survey.persons.assign(lapse_pension=ssc.lapse_indicators(survey.persons)["lapse_pension"].to_numpy())
    design = ssc.Design(persons, ids="county", strata="province", weights="weight")
    flexible = design.subset(persons.job_type.isin(ssc.datasets.FLEXIBLE_JOBS).to_numpy())
    by = flexible.mean("lapse_pension", by="province")
    assert_allclose(direct, by.estimate, rtol=1e-14)
    assert_allclose(t["direct_se"], by.se, rtol=1e-14)
    g = t["gamma"].to_numpy()
    assert_allclose(t["eblup"], g * direct + (1 - g) * t["synthetic"], rtol=1e-12)
    # Borrowing strength: every EBLUP's MSE is below the design variance.
    assert (t["mse"] < t["direct_se"] ** 2).all()
    # Benchmarked: population-weighted estimates add to the national direct estimate.
    pop = ssc.datasets.provincial_covariates().set_index("province").loc[t["province"], "flexible_workers"]
    national = flexible.mean("lapse_pension").estimate[0]
    assert_allclose(np.average(t["benchmarked"], weights=pop), national, rtol=1e-12)
    assert r.benchmark == pytest.approx(national)


def test_shipped_covariates_are_made_from_the_survey() -> None:
    made = ssc.datasets.make_provincial_covariates(ssc.datasets.coverage_survey())
    shipped = ssc.datasets.provincial_covariates()
    pd.testing.assert_frame_equal(made, shipped)
    survey = ssc.datasets.coverage_survey()
    assert list(shipped["province"]) == list(survey.persons["province"].cat.categories)
    # Populations are the survey's weighted counts to within the 2 % census noise (5 sd).
    weighted = survey.persons.groupby("province", observed=True)["weight"].sum().to_numpy()
    assert np.all(np.abs(shipped["employed"] / weighted - 1) < 0.1)


def test_out_of_sample_areas_get_synthetic_estimates_with_mse() -> None:
    direct, covariates = _milk()
    kept = direct[direct.area != 5]
    r = small_area.fay_herriot(kept, covariates, area="area", formula="C(major)")
    row = r.table.set_index("area").loc[5]
    assert not row["in_sample"] and row["gamma"] == 0
    assert row["eblup"] == pytest.approx(row["synthetic"])
    # REML: MSE = Â + x'Qx; area 5 is in major area 1, whose synthetic estimate is β₀.
    q00 = r.coefficients["se"].iloc[0] ** 2
    assert row["mse"] == pytest.approx(r.model_variance + q00, rel=1e-12)
    assert list(r.table["area"][:3]) == list(kept["area"][:3])
    boot = small_area.fay_herriot(kept, covariates, area="area", formula="C(major)", mse="bootstrap",
                                  replicates=1000, seed=1, progress=False)
    # E(θ̂ − θ)² = A + x'Qx for the synthetic estimate: the bootstrap agrees within 15 %.
    assert boot.table.set_index("area").loc[5, "mse"] == pytest.approx(row["mse"], rel=0.15)


def test_transforms_back_transform_into_the_unit_interval() -> None:
    r = small_area.provincial_lapse(benchmark=False)
    by = small_area.fay_herriot(
        pd.DataFrame({"province": r.table.province, "estimate": r.table.direct, "variance": r.table.direct_se ** 2}),
        ssc.datasets.provincial_covariates(), area="province",
        formula="platform_share + flexible_low_income_share + urbanisation", transform="arcsin",
    )
    t = by.table
    p = t["direct"].to_numpy()
    assert_allclose(t["variance"], t["direct_se"] ** 2 / (4 * p * (1 - p)), rtol=1e-12)
    assert ((t["ci_low"] >= 0) & (t["ci_high"] <= 1) & (t["ci_low"] < t["eblup"]) & (t["eblup"] < t["ci_high"])).all()
    # Delta method: MSE = sin(2θ̂)² · MSE(θ̂), and θ̂ = arcsin √(EBLUP).
    theta = np.arcsin(np.sqrt(t["eblup"].to_numpy()))
    q = 1.959963984540054
    mse_theta = ((np.arcsin(np.sqrt(t["ci_high"])) - theta) / q) ** 2
    assert_allclose(t["mse"], np.sin(2 * theta) ** 2 * mse_theta, rtol=1e-8)
    logit = small_area.fay_herriot(
        pd.DataFrame({"province": t.province, "estimate": t.direct, "variance": t.direct_se ** 2}),
        ssc.datasets.provincial_covariates(), area="province", formula="platform_share", transform="logit",
    )
    assert ((logit.table["eblup"] > 0) & (logit.table["eblup"] < 1)).all()
    boot = small_area.fay_herriot(
        pd.DataFrame({"province": t.province, "estimate": t.direct, "variance": t.direct_se ** 2}),
        ssc.datasets.provincial_covariates(), area="province",
        formula="platform_share + flexible_low_income_share + urbanisation", transform="arcsin",
        mse="bootstrap", replicates=500, seed=2, progress=False,
    )
    # Errors of sin²(θ̂*) on the proportion scale: the delta method's size, on average.
    assert_allclose(boot.table["eblup"], t["eblup"], rtol=0)
    assert abs(np.mean(boot.table["mse"] / t["mse"]) - 1) < 0.25


def test_bootstrap_mse_is_seeded_and_close_to_prasad_rao() -> None:
    direct, covariates = _milk()
    kw = dict(area="area", formula="C(major)", mse="bootstrap", replicates=400, progress=False)
    a = small_area.fay_herriot(direct, covariates, seed=3, **kw)
    b = small_area.fay_herriot(direct, covariates, seed=3, **kw)
    c = small_area.fay_herriot(direct, covariates, seed=4, **kw)
    assert_allclose(a.mse, b.mse, rtol=0, atol=0)
    assert not np.array_equal(a.mse, c.mse)
    pr = small_area.fay_herriot(direct, covariates, area="area", formula="C(major)")
    # 400 replicates: the bootstrap MSE is within 25 % of Prasad-Rao on average.
    assert abs(np.mean(a.mse / pr.mse) - 1) < 0.25
    assert a.failed_replicates == 0 and a.replicates == 400


def test_gvf_smoothing() -> None:
    r = small_area.provincial_lapse(benchmark=False)
    t = r.table
    smoothed = small_area.fay_herriot(
        pd.DataFrame({"p": t.province, "estimate": t.direct, "variance": t.direct_se ** 2, "n": t.n}),
        ssc.datasets.provincial_covariates().rename(columns={"province": "p"}), area="p",
        formula="platform_share", smooth_variances=True,
    )
    v, n = t["direct_se"].to_numpy() ** 2, t["n"].to_numpy()
    X = np.column_stack([np.ones(31), np.log(n)])
    coef, *_ = np.linalg.lstsq(X, np.log(v), rcond=None)
    resid = np.log(v) - X @ coef
    want = np.exp(X @ coef + resid @ resid / 29 / 2)
    assert_allclose(smoothed.table["variance"], want, rtol=1e-12)


def test_result_converts_prints_plots_and_saves(tmp_path: Path) -> None:
    r = small_area.provincial_lapse()
    assert isinstance(r.to_polars(), pl.DataFrame)
    assert "Fay-Herriot EBLUP by province" in repr(r) and "<table" in r._repr_html_()
    ax = r.plot()
    top_down = np.argsort(-ax.get_yticks())
    labels = [ax.get_yticklabels()[i].get_text() for i in top_down]
    assert labels == r.table.sort_values("direct_cv")["province"].tolist()  # most reliable at the top
    assert len(ax.containers) == 2  # direct and EBLUP, each with its interval bars
    text = r.to_json(tmp_path / "fh.json")
    back = ssc.load(text)
    assert isinstance(back, small_area.FayHerriotResult)
    pd.testing.assert_frame_equal(back.table, r.table)
    assert back.model_variance == r.model_variance


@pytest.mark.parametrize(
    ("change", "error", "words"),
    [
        (lambda d, c: (d.assign(variance=d.variance.where(d.area != 7, -0.01)), c), ssc.EstimationError, "area 7"),
        (lambda d, c: (d.assign(estimate=d.estimate.where(d.area != 9, np.nan)), c), ssc.MissingValueError, "area 9"),
        (lambda d, c: (d, c[c.area != 11]), ssc.EstimationError, "area 11"),
        (lambda d, c: (d, c.assign(x2=np.where(c.area == 4, np.nan, 1.0))), ssc.MissingValueError, "'x2'"),
        (lambda d, c: (pd.concat([d, d.iloc[:1]]), c), ssc.ShapeError, "area 1"),
        (lambda d, c: (d.drop(columns="variance"), c), ssc.ColumnError, "variance"),
        (lambda d, c: (d, c.drop(columns="area")), ssc.ColumnError, "area"),
        (lambda d, c: (d, c.assign(twice=2 * c.major)), ssc.EstimationError, "'twice'.*aliased"),
    ],
)
def test_bad_input_names_the_area_or_column(change, error, words) -> None:  # type: ignore[no-untyped-def]
    direct, covariates = _milk()
    covariates = covariates.assign(major=covariates.major.astype(int))
    d, c = change(direct, covariates)
    with pytest.raises(error, match=words):
        small_area.fay_herriot(d, c, area="area")


def test_bad_options() -> None:
    direct, covariates = _milk()
    with pytest.raises(ssc.EstimationError, match="method"):
        small_area.fay_herriot(direct, covariates, area="area", formula="C(major)", method="GLS")
    with pytest.raises(ssc.ColumnError, match="population"):
        small_area.fay_herriot(direct, covariates, area="area", formula="C(major)", benchmark=1.0)
    with pytest.raises(ssc.EstimationError, match="between 0 and 1"):
        small_area.fay_herriot(direct, covariates, area="area", formula="C(major)", transform="arcsin")
    with pytest.raises(ssc.ConvergenceError):
        small_area.fay_herriot(direct, covariates, area="area", formula="C(major)", max_iter=1)


def test_simulation_eblup_beats_direct_and_prasad_rao_is_unbiased() -> None:
    """5,000 populations of 40 areas from the Fay–Herriot model (A = 1, ψ from 0.25 to
    1.5, one covariate).  The EBLUP's empirical MSE is below the direct estimator's in
    every area, and the average Prasad–Rao MSE (REML) is within 8 % of the empirical MSE
    in every area (the Monte Carlo SE of an area's empirical MSE is about 2 %) and within
    1.5 % on average over the areas (its bias is o(1/m): Datta & Lahiri 2000).  Few areas
    or a large spread of ψ put Â at zero often, where Prasad–Rao overstates the MSE of
    the areas with the smallest ψ: hence this design."""
    rng = np.random.default_rng(20261202)
    m, reps, a = 40, 5000, 1.0
    psi = np.linspace(0.25, 1.5, m)
    x = np.column_stack([np.ones(m), np.linspace(-1, 1, m)])
    beta = np.array([2.0, 1.0])
    empty = np.zeros((0, 2))
    err_eblup = np.zeros(m)
    err_direct = np.zeros(m)
    pr = np.zeros(m)
    start = time.perf_counter()
    for _ in range(reps):  # a simulation of the estimator, not a loop inside one
        theta = x @ beta + rng.normal(0, np.sqrt(a), m)
        y = theta + rng.normal(0, np.sqrt(psi))
        f = ssc._core.fay_herriot_fit(y, x, psi, empty, "REML", 100, 1e-4)
        assert f.converged
        err_eblup += (f.eblup - theta) ** 2
        err_direct += (y - theta) ** 2
        pr += f.mse
    assert time.perf_counter() - start < 20
    emp_eblup, emp_direct, pr = err_eblup / reps, err_direct / reps, pr / reps
    assert (emp_eblup < 0.9 * emp_direct).all()
    assert np.max(np.abs(pr / emp_eblup - 1)) < 0.08
    assert abs(np.mean(pr / emp_eblup) - 1) < 0.015


def test_agrees_with_samplics() -> None:
    """samplics' EblupAreaModel on the milk data, both iterated to 1e-10: REML and FH give
    the same model variance, EBLUPs and MSEs to 1e-9.  samplics' ML stops at
    Â = 0.0155446 where the likelihood is lower than at sae's and ours (0.0155175), so ML
    is compared within 0.5 %."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # samplics warns on import that it is archived
        samplics = pytest.importorskip("samplics")
        from samplics.utils.types import FitMethod
    direct, covariates = _milk()
    x = pd.get_dummies(covariates.major, drop_first=True).to_numpy(float)  # samplics adds the intercept
    for method in METHODS:
        ours = small_area.fay_herriot(direct, covariates, area="area", formula="C(major)", method=method,
                                      precision=1e-10)
        model = samplics.EblupAreaModel(method=FitMethod(method))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(yhat=direct.estimate.to_numpy(), X=x, area=direct.area.to_numpy(),
                      error_std=np.sqrt(direct.variance.to_numpy()), tol=1e-10, maxiter=500)
            model.predict(X=x, area=direct.area.to_numpy())
        tol = 5e-3 if method == "ML" else 1e-9
        assert_allclose(float(np.squeeze(model.re_std)) ** 2, ours.model_variance, rtol=tol)
        assert_allclose(np.array(list(model.area_est.values())), ours.table["eblup"], rtol=tol)
        assert_allclose(np.array(list(model.area_mse.values())), ours.table["mse"], rtol=tol)
