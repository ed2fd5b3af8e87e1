"""Slow, obviously correct numpy versions of the estimators, used as test oracles.

One stage, stratified, clusters sampled with replacement or with an fpc per stratum:
    var = sum_h (1 - f_h) n_h / (n_h - 1) sum_i (z_hi - zbar_h)^2,
z_hi the PSU totals of the influence values (Sarndal, Swensson & Wretman 1992, ch. 4).
"""

from __future__ import annotations

import numpy as np


def stratified_variance(z: np.ndarray, strata: np.ndarray, psu: np.ndarray, popsize: dict | None = None) -> float:
    total = 0.0
    for h in np.unique(strata):
        in_h = strata == h
        psus = np.unique(psu[in_h])
        zh = np.array([z[in_h & (psu == i)].sum() for i in psus])
        n = len(psus)
        f = 0.0 if popsize is None else n / popsize[h]
        total += (1 - f) * n / (n - 1) * ((zh - zh.mean()) ** 2).sum()
    return total


def domain_mean(y, w, strata, psu, domain, popsize=None) -> tuple[float, float]:
    d = domain.astype(float)
    wd = w * d
    est = (wd * y).sum() / wd.sum()
    z = wd * (y - est) / wd.sum()
    return est, np.sqrt(stratified_variance(z, strata, psu, popsize))


def domain_total(y, w, strata, psu, domain, popsize=None) -> tuple[float, float]:
    z = w * y * domain
    return z.sum(), np.sqrt(stratified_variance(z, strata, psu, popsize))


def ratio(num, den, w, strata, psu, popsize=None) -> tuple[float, float]:
    r = (w * num).sum() / (w * den).sum()
    z = w * (num - r * den) / (w * den).sum()
    return r, np.sqrt(stratified_variance(z, strata, psu, popsize))
