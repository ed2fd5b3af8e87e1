"""R's numerical building blocks, ported so that results match R to the last digit.

R sums in extended precision (``sum``, ``cumsum``, ``mean`` accumulate in a C
``long double``), finds roots with Brent's ``zeroin`` (``uniroot``), interpolates with
``approx`` and ``spline(method="fmm")``.  Where a survey estimate lands on a step of a
weighted distribution function (quantiles) or depends on the path of a root finder,
numpy's pairwise sums or scipy's ``brentq`` can give a different data value; these
ports follow R's C code step by step.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from scipy import stats

from .exceptions import EstimationError

DBL_EPSILON = float(np.finfo(np.float64).eps)


def r_sum(x: np.ndarray) -> float:
    """R's ``sum``: sequential accumulation in long double, rounded to double."""
    return float(np.cumsum(np.asarray(x, dtype=np.longdouble))[-1]) if len(x) else 0.0


def r_cumsum(x: np.ndarray) -> np.ndarray:
    """R's ``cumsum``: a long-double running sum, each step rounded to double."""
    return np.cumsum(np.asarray(x, dtype=np.longdouble)).astype(np.float64)


def r_mean(x: np.ndarray) -> float:
    """R's ``mean`` of doubles: long-double sum / n, then one refining pass."""
    xl = np.asarray(x, dtype=np.longdouble)
    n = len(xl)
    s = np.cumsum(xl)[-1] / n
    if np.isfinite(s):
        s += np.cumsum(xl - s)[-1] / n
    return float(s)


def qt(p: float | np.ndarray, df: float | np.ndarray, lower_tail: bool = True) -> float | np.ndarray:
    """R's ``qt(p, df, lower.tail)``; ``df=Inf`` is the normal quantile, as in R.  p and
    df broadcast."""
    if np.ndim(df) == 0:
        if np.isinf(df):
            return stats.norm.ppf(p) if lower_tail else stats.norm.isf(p)
        # Not a frozen stats.t(df): freezing costs a millisecond a call, the numbers are the same.
        return stats.t.ppf(p, df) if lower_tail else stats.t.isf(p, df)
    infinite = np.isinf(df)
    finite_df = np.where(infinite, 1.0, df)
    t = stats.t.ppf(p, finite_df) if lower_tail else stats.t.isf(p, finite_df)
    z = stats.norm.ppf(p) if lower_tail else stats.norm.isf(p)
    return np.where(infinite, z, t)


def iqr(x: np.ndarray) -> float:
    """R's ``IQR(x)``: difference of the type-7 quartiles, with R's interpolation."""
    xs = np.sort(x)
    n = len(xs)
    out = []
    for prob in (0.25, 0.75):
        index = 1 + (n - 1) * prob
        lo, hi = int(np.floor(index)), int(np.ceil(index))
        q = xs[lo - 1]
        if index > lo and xs[hi - 1] != q:
            h = index - lo
            q = (1 - h) * q + h * xs[hi - 1]
        out.append(q)
    return float(out[1] - out[0])


def uniroot(f: Callable[[float], float], lower: float, upper: float, tol: float, maxiter: int = 1000) -> float:
    """R's ``uniroot(f, c(lower, upper), tol=tol)$root`` (Brent's zeroin, R_zeroin2)."""
    fa, fb = f(lower), f(upper)
    if np.isnan(fa) or np.isnan(fb):
        raise EstimationError(f"the function to solve is undefined at an end of [{lower:g}, {upper:g}]")
    if fa * fb > 0:
        raise EstimationError(f"no root in [{lower:g}, {upper:g}]: the function has the same sign at both ends")
    a, b = lower, upper
    c, fc = a, fa
    if fa == 0.0:
        return a
    if fb == 0.0:
        return b
    for _ in range(maxiter + 1):
        prev_step = b - a
        if abs(fc) < abs(fb):
            a, b, c = b, c, b
            fa, fb, fc = fb, fc, fb
        tol_act = 2 * DBL_EPSILON * abs(b) + tol / 2
        new_step = (c - b) / 2
        if abs(new_step) <= tol_act or fb == 0.0:
            return b
        if abs(prev_step) >= tol_act and abs(fa) > abs(fb):
            cb = c - b
            if a == c:
                t1 = fb / fa
                p = cb * t1
                q = 1.0 - t1
            else:
                q, t1, t2 = fa / fc, fb / fc, fb / fa
                p = t2 * (cb * q * (q - t1) - (b - a) * (t1 - 1.0))
                q = (q - 1.0) * (t1 - 1.0) * (t2 - 1.0)
            if p > 0:
                q = -q
            else:
                p = -p
            if p < (0.75 * cb * q - abs(tol_act * q) / 2) and p < abs(prev_step * q / 2):
                new_step = p / q
        if abs(new_step) < tol_act:
            new_step = tol_act if new_step > 0 else -tol_act
        a, fa = b, fb
        b += new_step
        fb = f(b)
        if (fb > 0 and fc > 0) or (fb < 0 and fc < 0):
            c, fc = a, fa
    raise EstimationError(f"the root finder did not converge in {maxiter} iterations")


def _regularize(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """R's ``regularize.values(x, y, mean)``: sort by x, average y over tied x."""
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    if len(x) > 1 and np.any(x[1:] == x[:-1]):
        ux, start = np.unique(x, return_index=True)
        y = np.array([r_mean(g) for g in np.split(y, start[1:])])
        x = ux
    return x, y


def approx(x: np.ndarray, y: np.ndarray, v: float, method: str = "linear", rule: int = 1) -> float:
    """R's ``approx(x, y, xout=v, method, rule, f=0)$y`` at one point.

    ``rule=1``: NaN outside the range of x (R's NA); ``rule=2``: the nearest end value.
    """
    x, y = _regularize(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64))
    i, j = 0, len(x) - 1
    if v < x[i]:
        return float(y[i]) if rule == 2 else float("nan")
    if v > x[j]:
        return float(y[j]) if rule == 2 else float("nan")
    while i < j - 1:
        ij = (i + j) // 2
        if v < x[ij]:
            j = ij
        else:
            i = ij
    if v == x[j]:
        return float(y[j])
    if v == x[i]:
        return float(y[i])
    if method == "constant":
        return float(y[i])
    return float(y[i] + (y[j] - y[i]) * ((v - x[i]) / (x[j] - x[i])))


def spline_fmm(x: np.ndarray, y: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """R's ``spline(x, y, n, method="fmm")``: the Forsythe-Malcolm-Moler cubic spline
    through (x, y) evaluated at n equally spaced points from min(x) to max(x)."""
    x, y = _regularize(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64))
    b, c, d = _fmm_coefficients(x, y)
    xout = _seq_length_out(x[0], x[-1], n)
    out = np.empty(n)
    i = 0
    last = len(x) - 1
    for k, u in enumerate(xout):
        if u < x[i] or (i < last and x[i + 1] < u):
            i, j = 0, len(x)
            while j > i + 1:
                m = (i + j) // 2
                if u < x[m]:
                    j = m
                else:
                    i = m
        dx = u - x[i]
        out[k] = y[i] + dx * (b[i] + dx * (c[i] + dx * d[i]))
    return xout, out


def _seq_length_out(start: float, stop: float, n: int) -> np.ndarray:
    """R's ``seq.int(start, stop, length.out=n)``: exact ends, the first half counted
    from the start and the second from the stop."""
    out = np.empty(n)
    out[0] = start
    if n > 1:
        out[-1] = stop
    if n > 2:
        by = (stop - start) / (n - 1)
        for i in range(1, n - 1):
            out[i] = start + i * by if i < n // 2 else stop - (n - 1 - i) * by
    return out


def _fmm_coefficients(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Coefficients b, c, d of R's ``fmm_spline`` (splines.c), 0-based."""
    n = len(x)
    b, c, d = np.zeros(n), np.zeros(n), np.zeros(n)
    if n < 2:
        raise EstimationError("a spline needs at least two points")
    if n < 3:
        b[0] = b[1] = (y[1] - y[0]) / (x[1] - x[0])
        return b, c, d
    nm1 = n - 1
    # Tridiagonal system: b diagonal, d off-diagonal, c right-hand side.
    d[0] = x[1] - x[0]
    c[1] = (y[1] - y[0]) / d[0]
    for i in range(1, nm1):
        d[i] = x[i + 1] - x[i]
        b[i] = 2.0 * (d[i - 1] + d[i])
        c[i + 1] = (y[i + 1] - y[i]) / d[i]
        c[i] = c[i + 1] - c[i]
    # End conditions: third derivatives at the ends from divided differences.
    b[0] = -d[0]
    b[nm1] = -d[n - 2]
    c[0] = c[nm1] = 0.0
    if n > 3:
        c[0] = c[2] / (x[3] - x[1]) - c[1] / (x[2] - x[0])
        c[nm1] = c[n - 2] / (x[nm1] - x[n - 3]) - c[n - 3] / (x[n - 2] - x[n - 4])
        c[0] = c[0] * d[0] * d[0] / (x[3] - x[0])
        c[nm1] = -c[nm1] * d[n - 2] * d[n - 2] / (x[nm1] - x[n - 4])
    for i in range(1, n):
        t = d[i - 1] / b[i - 1]
        b[i] = b[i] - t * d[i - 1]
        c[i] = c[i] - t * c[i - 1]
    c[nm1] = c[nm1] / b[nm1]
    for i in range(n - 2, -1, -1):
        c[i] = (c[i] - d[i] * c[i + 1]) / b[i]
    b[nm1] = (y[nm1] - y[n - 2]) / d[n - 2] + d[n - 2] * (c[n - 2] + 2.0 * c[nm1])
    for i in range(nm1):
        b[i] = (y[i + 1] - y[i]) / d[i] - d[i] * (c[i + 1] + 2.0 * c[i])
        d[i] = (c[i + 1] - c[i]) / d[i]
        c[i] = 3.0 * c[i]
    c[nm1] = 3.0 * c[nm1]
    d[nm1] = d[n - 2]
    return b, c, d
