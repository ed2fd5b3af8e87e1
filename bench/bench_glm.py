#!/usr/bin/env python
"""Benchmark: a quasibinomial survey GLM with 20 model-matrix columns on a stratified
cluster sample.

Times, on the same synthetic data and in the same process:

  a   ``design.glm(formula, family="quasibinomial")`` end to end: the model matrix from
      the formula (formulaic), R's IRLS in the Rust core, the influence values and
      their design-based covariance; split into
      a_mm   building the model matrix alone (``ModelFrame``)
      a_fit  the core's IRLS alone on the built model columns (``_core.glm_fit``)
      a_var  the design covariance of the influence values (``design.influence_vcov``)
  b   one IRLS pass by hand in numpy (linear predictor, means, working weights and
      response, X'WX and X'Wz, one solve) from R's starting values: the unit of work an
      IRLS repeats until convergence
  b*  numpy to convergence (R's rule) plus the with-replacement linearisation variance
      by bincount over PSUs; ssc's coefficients and SEs are asserted to match it
  d   the ``svy`` package (PyPI): a new ``svy.Sample`` and ``sample.glm.fit`` with the
      same predictors (family binomial: the survey coefficients and sandwich SEs do not
      depend on the quasi- family), from a ready polars frame

and prints medians over ``--repeats`` runs and the ratios a/b, a/b*, a_fit/b*, d/a.

    python bench/bench_glm.py                         # 1e6 rows, 5 repeats
    python bench/bench_glm.py --sizes 1e5 --repeats 2 # smoke test
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys

import numpy as np
import pandas as pd

import sscoverage as ssc
from _common import timed, peak_rss_gib, max_rel, fmt_s, parse_sizes  # bench/, the script's own folder, is on sys.path
from sscoverage import _core
from sscoverage.models.glm import ModelFrame

N_STRATA = 50
PSUS_PER_STRATUM = 20
N_NUMERIC = 14
REGIONS = ["central", "east", "north", "south", "west"]
FORMULA = "y ~ " + " + ".join(f"x{j}" for j in range(1, N_NUMERIC + 1)) + " + region + hukou"
N_COLUMNS = 1 + N_NUMERIC + (len(REGIONS) - 1) + 1  # intercept, numeric, region dummies, hukou
RTOL = 1e-6  # ssc vs numpy to convergence: both stop by R's deviance rule


# --------------------------------------------------------------------------- data
def make_data(n: int, seed: int = 20240602) -> pd.DataFrame:
    """50 strata x 20 PSUs (ids unique across strata), rows in random order; weights
    constant within PSU; 14 numeric predictors, a 5-level text factor and a 2-level
    one; a 0/1 outcome from a logistic model with a PSU effect."""
    rng = np.random.default_rng(seed)
    n_psu = N_STRATA * PSUS_PER_STRATUM
    psu = rng.integers(0, n_psu, n, dtype=np.int64)
    data: dict[str, np.ndarray] = {
        "stratum": (psu // PSUS_PER_STRATUM).astype(np.int32),
        "psu": psu,
        "w": rng.uniform(1.0, 50.0, n_psu)[psu],
    }
    x = rng.normal(0.0, 1.0, (n, N_NUMERIC))
    region = rng.integers(0, len(REGIONS), n)
    hukou = rng.integers(0, 2, n)
    beta = np.linspace(-0.4, 0.4, N_NUMERIC)
    eta = -0.5 + x @ beta + 0.15 * region - 0.3 * hukou + rng.normal(0.0, 0.3, n_psu)[psu]
    data["y"] = (rng.random(n) < 1.0 / (1.0 + np.exp(-eta))).astype(np.float64)
    for j in range(N_NUMERIC):
        data[f"x{j + 1}"] = x[:, j]
    data["region"] = np.asarray(REGIONS, dtype=object)[region]
    data["hukou"] = np.where(hukou == 1, "rural", "urban")
    return pd.DataFrame(data)




# --------------------------------------------------------------------------- (b) numpy
class NumpyIrls:
    """Logistic IRLS by hand on a prebuilt matrix, as R's glm.fit does it."""

    def __init__(self, x: np.ndarray, y: np.ndarray, w: np.ndarray, psu: np.ndarray, stratum: np.ndarray):
        self.x, self.y = x, y
        self.w = w / w.mean()
        # R's binomial initialize: mustart = (w y + 0.5) / (w + 1).
        self.mu0 = (self.w * y + 0.5) / (self.w + 1.0)
        self.psu_code = np.unique(psu, return_inverse=True)[1]
        n_psu = int(self.psu_code.max()) + 1
        psu_stratum = np.empty(n_psu, np.int64)
        psu_stratum[self.psu_code] = stratum
        self.psu_stratum = np.unique(psu_stratum, return_inverse=True)[1]
        self.n_h = np.bincount(self.psu_stratum).astype(np.float64)

    def one_pass(self, mu: np.ndarray | None = None) -> np.ndarray:
        """One IRLS step from the means `mu` (default R's start): new coefficients."""
        mu = self.mu0 if mu is None else mu
        eta = np.log(mu / (1.0 - mu))
        var = mu * (1.0 - mu)  # = d mu / d eta for the logit
        z = eta + (self.y - mu) / var
        ww = self.w * var
        xw = self.x * ww[:, None]
        return np.linalg.solve(xw.T @ self.x, xw.T @ z)

    def deviance(self, mu: np.ndarray) -> float:
        y, w = self.y, self.w
        with np.errstate(divide="ignore", invalid="ignore"):
            d = np.where(y == 1, -np.log(mu), -np.log(1.0 - mu))
        return float(2.0 * (w * d).sum())

    def converge(self, epsilon: float = 1e-8, maxit: int = 25) -> tuple[np.ndarray, np.ndarray]:
        """IRLS until |dev - dev_old| / (|dev| + 0.1) < epsilon, then the with-replacement
        linearisation covariance of the coefficients (influence values summed by PSU)."""
        mu, dev_old = self.mu0, np.inf
        for _ in range(maxit):
            beta = self.one_pass(mu)
            mu = 1.0 / (1.0 + np.exp(-(self.x @ beta)))
            dev = self.deviance(mu)
            if abs(dev - dev_old) / (abs(dev) + 0.1) < epsilon:
                break
            dev_old = dev
        var = mu * (1.0 - mu)
        info_inv = np.linalg.inv((self.x * (self.w * var)[:, None]).T @ self.x)
        score = self.x * (self.w * (self.y - mu))[:, None]
        psu_tot = np.stack([np.bincount(self.psu_code, weights=score[:, j]) for j in range(score.shape[1])], 1)
        h = self.psu_stratum
        mean_h = np.stack([np.bincount(h, weights=psu_tot[:, j]) for j in range(psu_tot.shape[1])], 1)
        mean_h /= self.n_h[:, None]
        dev_psu = psu_tot - mean_h[h]
        scale = (self.n_h / (self.n_h - 1.0))[h]
        meat = (dev_psu * scale[:, None]).T @ dev_psu
        return beta, info_inv @ meat @ info_inv


# --------------------------------------------------------------------------- (d) svy
def svy_runner(df: pd.DataFrame):
    import polars as pl
    import svy

    pdf = pl.from_pandas(df)
    design = svy.Design(stratum="stratum", psu="psu", wgt="w", wr=True)
    xs = [f"x{j}" for j in range(1, N_NUMERIC + 1)] + [svy.Cat("region"), svy.Cat("hukou", ref="urban")]

    def run():
        sample = svy.Sample(pdf, design)
        return sample.glm.fit("y", x=xs, family="binomial").fitted

    return run



def bench_size(n: int, repeats: int, svy_repeats: int | None, svy_budget: float) -> dict[str, object]:
    t_gen, df = timed(lambda: make_data(n))
    print(f"\n== n = {n:,} rows, {N_COLUMNS} model-matrix columns ({FORMULA}); data built in {t_gen:.1f}s",
          flush=True)
    design = ssc.Design(df, ids="psu", strata="stratum", weights="w")
    model = ModelFrame(design, FORMULA, "quasibinomial", {})
    assert model.x.shape[1] == N_COLUMNS, model.terms
    w = design.weights
    prior = w / w.mean()
    base = NumpyIrls(model.x, model.y, design.weights, df["psu"].to_numpy(), df["stratum"].to_numpy())

    times: dict[str, list[float]] = {k: [] for k in ("a", "a_mm", "a_fit", "a_var", "b", "b_full")}
    fit = None
    for _ in range(repeats):
        t, fit = timed(lambda: design.glm(FORMULA, family="quasibinomial"))
        times["a"].append(t)
        times["a_mm"].append(timed(lambda: ModelFrame(design, FORMULA, "quasibinomial", {}))[0])
        t, core = timed(lambda: _core.glm_fit(model.columns, model.y, prior, "quasibinomial", None))
        times["a_fit"].append(t)
        infl = np.asarray(core.influence)
        times["a_var"].append(timed(lambda: design.influence_vcov(infl))[0])
        times["b"].append(timed(base.one_pass)[0])
        t, (beta, vcov) = timed(base.converge)
        times["b_full"].append(t)
    out: dict[str, object] = {k: statistics.median(v) for k, v in times.items()}
    # svyglm's variance uses the with-replacement formula times n_h/(n_h-1), as numpy here.
    err_b = max_rel(fit.coef, beta)
    err_se = max_rel(fit.se, np.sqrt(np.diag(vcov)))
    assert err_b <= RTOL and err_se <= RTOL, (err_b, err_se)
    print(f"   ssc matches numpy IRLS + linearisation: coefficients {err_b:.1e}, SEs {err_se:.1e} "
          f"max relative difference ({fit.iterations} IRLS iterations)")
    out.update(n=n, iterations=fit.iterations)

    if svy_repeats != 0:
        try:
            run = svy_runner(df)
        except ImportError as exc:
            print(f"   svy skipped: {exc}")
        else:
            d = []
            for _ in range(svy_repeats or repeats):
                t, svy_fit = timed(run)
                d.append(t)
                if sum(d) > svy_budget:
                    break
            coefs = svy_fit.to_polars().to_pandas() if hasattr(svy_fit, "to_polars") else None
            out.update(d=statistics.median(d), d_runs=len(d))
            if coefs is not None and "est" in coefs.columns:
                out["svy_err"] = max_rel(coefs["est"].to_numpy()[: N_COLUMNS], fit.coef)
            print(f"   svy: {len(d)} run(s)")
    out["rss"] = peak_rss_gib()
    return out



def report(rows: list[dict[str, object]]) -> None:
    print("\nMedian wall times:")
    cols = [("a", "a ssc glm"), ("a_mm", "a_mm matrix"), ("a_fit", "a_fit IRLS"), ("a_var", "a_var vcov"),
            ("b", "b 1 pass"), ("b_full", "b* numpy"), ("d", "d svy")]
    print(f"{'rows':>10} " + " ".join(f"{h:>12}" for _, h in cols) + f" {'peak RSS':>9}")
    for r in rows:
        print(f"{r['n']:>10,} " + " ".join(f"{fmt_s(r.get(k)):>12}" for k, _ in cols) + f" {r['rss']:>7.2f}Gi")
    print("\nRatios:")
    for r in rows:
        parts = [f"a/b = {r['a'] / r['b']:.2f}", f"a/b* = {r['a'] / r['b_full']:.2f}",
                 f"(a_fit+a_var)/b* = {(r['a_fit'] + r['a_var']) / r['b_full']:.2f}",
                 f"a_fit/b = {r['a_fit'] / r['b']:.2f} ({r['iterations']} iterations)"]
        if "d" in r:
            parts.append(f"d/a = {r['d'] / r['a']:.2f}")
        print(f"{r['n']:>10,}  " + "   ".join(parts))



def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=parse_sizes, default=parse_sizes("1e6"))
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--svy-repeats", type=int, default=None, help="default --repeats; 0 skips svy")
    ap.add_argument("--svy-budget", type=float, default=180.0)
    args = ap.parse_args(argv)
    try:
        import svy
        svy_version = svy.__version__
    except ImportError:
        svy_version = "not installed"
    print(f"python {platform.python_version()}, numpy {np.__version__}, pandas {pd.__version__}, "
          f"sscoverage {ssc.__version__}, svy {svy_version}")
    small = make_data(20_000)
    ssc.Design(small, ids="psu", strata="stratum", weights="w").glm(FORMULA, family="quasibinomial")
    if args.svy_repeats != 0:
        try:
            svy_runner(small)()
        except ImportError:
            pass
    del small
    rows = [bench_size(n, args.repeats, args.svy_repeats, args.svy_budget) for n in args.sizes]
    report(rows)


if __name__ == "__main__":
    sys.exit(main())
