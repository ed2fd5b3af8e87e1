#!/usr/bin/env python
"""Benchmark: a Fay–Herriot fit of 31 areas (the bundled survey's provinces).

Times, in the same process:

  a    ``ssc.small_area.fay_herriot`` end to end on the provinces' direct estimates and
       the shipped covariates (REML, Prasad–Rao MSE): frames in, result object out
  a_c  the core alone on prebuilt arrays (``_core.fay_herriot_fit``: Fisher scoring,
       EBLUP and MSE)
  boot ``mse="bootstrap"`` with 1,000 replicates
  s    samplics' ``EblupAreaModel`` fit + predict (REML) on the same arrays, if installed;
       its model variance is checked against ours

and prints the median and the fastest of ``--repeats`` runs (the machine may be shared).  The target is a < 10 ms for 31 areas.

    python bench/bench_small_area.py
    python bench/bench_small_area.py --repeats 50
"""

from __future__ import annotations

import argparse
import statistics
import warnings

import numpy as np

from _common import fmt_s, timed

import sscoverage as ssc
from sscoverage import _core, small_area

FORMULA = "platform_share + flexible_low_income_share + urbanisation"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()

    reference = small_area.provincial_lapse(benchmark=False)
    t = reference.table
    direct = t[["province", "direct", "direct_se"]].rename(columns={"direct": "estimate"})
    direct["variance"] = direct.pop("direct_se") ** 2
    covariates = ssc.datasets.provincial_covariates()
    cov = covariates.set_index("province").loc[t["province"]]
    x = np.ascontiguousarray(np.column_stack([np.ones(len(t)), cov[FORMULA.split(" + ")].to_numpy(float)]))
    y = np.ascontiguousarray(t["direct"].to_numpy(float))
    psi = np.ascontiguousarray(t["direct_se"].to_numpy(float) ** 2)
    empty = np.zeros((0, x.shape[1]))

    def median(fn) -> tuple[float, float]:  # type: ignore[no-untyped-def]
        fn()  # warm-up (formulaic's first parse, scipy's first quantile)
        times = [timed(fn)[0] for _ in range(args.repeats)]
        return statistics.median(times), min(times)

    rows = {
        "a    fay_herriot (end to end)": median(lambda: small_area.fay_herriot(
            direct, covariates, area="province", formula=FORMULA)),
        "a_c  core fit + MSE": median(lambda: _core.fay_herriot_fit(y, x, psi, empty, "REML", 100, 1e-4)),
        "boot bootstrap MSE, 1000 replicates": median(lambda: small_area.fay_herriot(
            direct, covariates, area="province", formula=FORMULA, mse="bootstrap", replicates=1000,
            progress=False)),
    }
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from samplics import EblupAreaModel
    except ImportError:
        EblupAreaModel = None
    if EblupAreaModel is not None:
        def samplics_fit() -> object:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = EblupAreaModel()
                model.fit(yhat=y, X=x[:, 1:], area=t["province"].to_numpy(), error_std=np.sqrt(psi))
                model.predict(X=x[:, 1:], area=t["province"].to_numpy())
            return model

        rows["s    samplics EblupAreaModel (REML)"] = median(samplics_fit)
        model = samplics_fit()
        ours = _core.fay_herriot_fit(y, x, psi, empty, "REML", 100, 1e-4)
        print(f"samplics model variance {float(np.squeeze(model.re_std)) ** 2:.6g}, ours {ours.variance:.6g}")
    print(f"31 areas, {x.shape[1]} coefficients, {args.repeats} runs: median and fastest")
    for name, (mid, best) in rows.items():
        print(f"{name:40s} {fmt_s(mid)} {fmt_s(best)}")


if __name__ == "__main__":
    main()
