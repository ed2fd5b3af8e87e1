"""Design-based tests of association in a two-way table.

Mirrors R's ``survey::svychisq`` for linearisation designs: the Rao-Scott first- and
second-order corrections of Pearson's X^2 (``Chisq``, ``F``), the design-based Wald
tests (``Wald``, ``adjWald``) and the saddlepoint approximation to the distribution
of X^2 (``saddlepoint``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
from scipy import stats

from .._frames import OUTSIDE
from .._provenance import Provenance
from .._rmath import r_sum, uniroot
from ..exceptions import DesignError, EstimationError, MissingValueError
from ..io.serialize import Serializable
from ..results import display as _display

STATISTICS = ("F", "Chisq", "Wald", "adjWald", "saddlepoint")


@dataclass(frozen=True)
class ChisqTest(Serializable):
    """The result of :func:`chisq`: a test statistic, its degrees of freedom and p-value.

    ``ndf`` / ``ddf`` are None where R reports none (``Chisq`` has no ``ddf``;
    ``saddlepoint`` neither).  ``table`` is the weighted table scaled to the number of
    rows, the one Pearson's X^2 is computed from.
    """

    statistic: float
    ndf: float | None
    ddf: float | None
    p_value: float
    method: str
    row: str
    col: str
    table: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    #: The call that made the test (set by :meth:`Design.chisq`).
    provenance: Provenance | None = field(default=None, repr=False, compare=False)

    def to_pandas(self) -> pd.DataFrame:
        """One row: ``statistic``, ``ndf``, ``ddf``, ``p_value``, ``method``."""
        keys = ("statistic", "ndf", "ddf", "p_value", "method")
        return pd.DataFrame([{k: getattr(self, k) for k in keys}])

    def to_polars(self) -> pl.DataFrame:
        """:meth:`to_pandas` as a polars DataFrame."""
        return pl.from_pandas(self.to_pandas())

    def _lines(self) -> list[str]:
        dfs = ", ".join(f"{k} = {v:.6g}" for k, v in (("ndf", self.ndf), ("ddf", self.ddf)) if v is not None)
        return [
            f"{self.method}: {self.row} by {self.col}",
            f"statistic = {self.statistic:.6g}" + (f", {dfs}" if dfs else "") + f", p-value = {self.p_value:.4g}",
            *self.notes,
        ]

    def __repr__(self) -> str:
        return _display.text(self._lines())

    def _repr_html_(self) -> str:
        return _display.to_html(self._lines(), self.table, index=True)


def _coded(design: Any, name: str, na_rm: bool) -> tuple[np.ndarray, list[Any]]:
    """Dense u32 codes of the levels present in the design's rows (R's ``factor()``
    drops the others), ``OUTSIDE`` where missing; and those levels."""
    c = design.frame.codes(name, "table variable")
    mask = design.in_subset() if design.is_subset else None
    rows = c.codes if mask is None else c.codes[mask]
    if c.missing is not None:
        hit = c.missing if mask is None else c.missing & mask
        if hit.any() and not na_rm:
            raise MissingValueError(
                f"column {name!r} has {int(hit.sum())} missing values in the rows used; "
                "pass na_rm=True to leave those rows out of the table"
            )
        rows = rows[rows != OUTSIDE]
    if mask is None and c.missing is None and not _declares_levels(design.frame.column(name)):
        # Levels found in the column itself: every one has rows.
        present = np.arange(len(c.labels))
    else:
        present = np.flatnonzero(np.bincount(rows, minlength=len(c.labels)))
    if len(present) < 2:
        raise EstimationError(
            f"column {name!r} has {len(present)} level(s) in the rows used; a table test needs two or more"
        )
    levels = [c.labels[i] for i in present]
    if len(present) == len(c.labels):
        return c.codes, levels
    lookup = np.full(len(c.labels) + 1, OUTSIDE, dtype=np.uint32)
    lookup[present] = np.arange(len(present), dtype=np.uint32)
    return lookup[np.minimum(c.codes, len(c.labels))], levels


def _declares_levels(col: Any) -> bool:
    """A categorical column, whose levels need not all occur."""
    if isinstance(col, pl.Series):
        return col.dtype in (pl.Categorical, pl.Enum)
    return isinstance(col.dtype, pd.CategoricalDtype)


def _solve(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    try:
        return np.linalg.solve(a, b)
    except np.linalg.LinAlgError:
        raise EstimationError(
            "the covariance of the table's cells is singular (R's solve() stops here too): some "
            "cells vary together in every PSU or are empty; merge sparse levels"
        ) from None


def _indicators(index: np.ndarray, k: int) -> np.ndarray:
    """Which of k levels each of a few cells is in (cells x k)."""
    return (index[:, None] == np.arange(k)[None, :]).astype(np.float64)


def _pearson(table: np.ndarray) -> float:
    """R's ``chisq.test(table, correct=FALSE)$statistic``."""
    n = table.sum()
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / n
    return float(np.sum(np.abs(table - expected) ** 2 / expected))


def _saddle(x: float, lam: np.ndarray) -> float:
    """R's ``survey:::saddle``: upper tail of sum lam_i chi^2_1 at x (NaN where the
    approximation is singular, R's NA)."""
    d = lam.max()
    lam = lam / d
    x = x / d

    def k0(zeta: float) -> float:
        return -r_sum(np.log(1 - 2 * zeta * lam)) / 2

    def kprime0(zeta: float) -> float:
        return r_sum(lam / (1 - 2 * zeta * lam))

    def kpprime0(zeta: float) -> float:
        return 2 * r_sum(lam**2 / (1 - 2 * zeta * lam) ** 2)

    if np.any(lam < 0):
        lmin = np.max(1 / (2 * lam[lam < 0])) * 0.99999
    elif x > lam.sum():
        lmin = -0.01
    else:
        lmin = -len(lam) / (2 * x)
    lmax = np.min(1 / (2 * lam[lam > 0])) * 0.99999
    zeta = uniroot(lambda z: kprime0(z) - x, lmin, lmax, tol=1e-8)
    w = np.sign(zeta) * np.sqrt(2 * (zeta * x - k0(zeta)))
    v = zeta * np.sqrt(kpprime0(zeta))
    if abs(zeta) < 1e-4:
        return float("nan")
    return float(stats.norm.sf(w + np.log(v / w) / w))


def _p_saddlepoint(x: float, a: np.ndarray, ddf: float) -> float:
    """R's ``pFsum(x, 1, a, ddf, lower.tail=FALSE, method="saddlepoint")``: P(sum a_i
    chi^2_1 / (chi^2_ddf / ddf) > x), the Satterthwaite F where the saddlepoint fails."""
    tr = a.mean()
    tr2 = np.mean(a**2) / tr**2
    p = stats.f.sf(x / (len(a) / tr2) / (tr * tr2), len(a) / tr2, ddf)
    # R repeats -x/ddf int(ddf) times: the denominator chi^2 as ddf chi^2_1 terms.
    s = _saddle(0.0, np.concatenate([a, np.full(int(ddf), -x / ddf)]))
    return p if np.isnan(s) else s


def _wald(cells: np.ndarray, v_cells: np.ndarray, shape: tuple[int, int], nu: int, adjusted: bool):
    """R's Wald test on the interaction contrasts N_rc - N_r N_c / N of the estimated
    cell, margin and grand totals, with their design covariance (delta method).  The
    margins are sums of the cell totals, so the cells' totals and covariance are all
    the data give."""
    nr, nc = shape
    k = nr * nc
    rows_of, cols_of = _cell_levels(nr, nc)
    tr, tc = _indicators(rows_of, nr).T @ cells, _indicators(cols_of, nc).T @ cells
    total = float(cells.sum())
    expected = np.outer(tr, tc).ravel(order="F")  # column-major: the cells' order
    # d(N_rc - N_r N_c / N) / d(N_cells): the cell itself, less its row's and column's
    # shares of the margins, plus the expected count's share of the grand total.
    jac = (
        np.eye(k)
        - (tc / total)[cols_of][:, None] * (rows_of[:, None] == rows_of[None, :])
        - (tr / total)[rows_of][:, None] * (cols_of[:, None] == cols_of[None, :])
        + (expected / total**2)[:, None]
    )
    y = cells - expected / total
    v = jac @ v_cells @ jac.T
    use = (rows_of > 0) & (cols_of > 0)
    stat = float(y[use] @ _solve(v[np.ix_(use, use)], y[use]))
    ndf = (nr - 1) * (nc - 1)
    ddf = nu - ndf + 1 if adjusted else nu
    stat = stat * ddf / (ndf * nu) if adjusted else stat / ndf
    return stat, float(ndf), float(ddf), float(stats.f.sf(stat, ndf, ddf))


def _rao_scott_delta(mean: np.ndarray, v: np.ndarray, shape: tuple[int, int], n_rows: int) -> np.ndarray:
    """R's design-effect matrix Delta: the design covariance of the cell proportions
    over their multinomial covariance, on the interaction contrasts (those orthogonal
    to the main effects)."""
    nr, nc = shape
    rows_of, cols_of = _cell_levels(nr, nc)
    main = np.hstack([np.ones((nr * nc, 1)), _indicators(rows_of, nr)[:, 1:], _indicators(cols_of, nc)[:, 1:]])
    inter = np.column_stack([(rows_of == i) & (cols_of == j) for j in range(1, nc) for i in range(1, nr)]).astype(float)
    q, _ = np.linalg.qr(main)
    cmat = inter - q @ (q.T @ inter)
    inv_mean = np.where(mean == 0, 0.0, 1 / np.where(mean == 0, 1.0, mean))
    denom = cmat.T @ (cmat * (inv_mean / n_rows)[:, None])
    numr = cmat.T @ (inv_mean[:, None] * v * inv_mean[None, :]) @ cmat
    return _solve(denom, numr)


def _cell_levels(nr: int, nc: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column level of each cell, in R's order (row level fastest)."""
    return np.tile(np.arange(nr), nc), np.repeat(np.arange(nc), nr)


def chisq(design: Any, row: str, col: str, statistic: str = "F", na_rm: bool = True) -> ChisqTest:
    """Test of independence of `row` and `col`; see :meth:`Design.chisq`."""
    check_statistic(statistic)
    ri, row_levels = _coded(design, row, na_rm)
    ci, col_levels = _coded(design, col, na_rm)
    nr, nc = len(row_levels), len(col_levels)
    n_rows = int(design.in_subset().sum()) if design.is_subset else design.n_rows  # R's N counts rows with a missing value too
    # The cell of each row (R's order: row level fastest); the rows of the table are
    # domain 0, the others (outside the design's rows, or missing a level) outside.
    cell = ri + np.uint32(nr) * ci
    incomplete = ~design.in_subset() if design.is_subset else None
    for codes in (ri, ci):
        if codes.max(initial=0) == OUTSIDE:
            incomplete = (codes == OUTSIDE) if incomplete is None else incomplete | (codes == OUTSIDE)
    if incomplete is None:
        domain, n_missing = np.zeros(design.n_rows, np.uint32), 0
    else:
        domain = np.where(incomplete, OUTSIDE, 0).astype(np.uint32)
        cell[incomplete] = 0
        n_missing = n_rows - (design.n_rows - int(np.count_nonzero(incomplete)))
    # One pass: the cells' totals (Wald) or proportions (Rao-Scott) and covariance.
    res = design.core.estimate(cell_kind(statistic), domain, 1, [], [(0, cell, nr * nc)])
    return table_test(statistic, res, n_rows, design.degf, (row, row_levels), (col, col_levels), n_missing)


def check_statistic(statistic: str) -> None:
    """Raise :class:`~sscoverage.DesignError` unless `statistic` is one :func:`chisq` computes."""
    if statistic not in STATISTICS:
        hint = " (R's 'lincom' needs Davies' integration; use 'saddlepoint')" if statistic == "lincom" else ""
        raise DesignError(f"statistic={statistic!r}; use one of {', '.join(STATISTICS)}{hint}")


def cell_kind(statistic: str) -> str:
    """What the test reads of the cells' indicators: totals (Wald) or means (Rao-Scott)."""
    return "total" if statistic in ("Wald", "adjWald") else "mean"


def table_test(statistic: str, res: Any, n_rows: int, nu: int, row: tuple[str, list[Any]],
               col: tuple[str, list[Any]], n_missing: int) -> ChisqTest:
    """The test from the core's estimates `res` of the cells' indicators in one domain
    (``cell_kind(statistic)``; cells in R's order, row level fastest) and their
    covariance, by the core's ``estimate`` in memory or ``estimate_from_sums`` streamed;
    `n_rows` the table's rows with those missing a level, `nu` the design's degrees of
    freedom."""
    (row, row_levels), (col, col_levels) = row, col
    shape = nr, nc = len(row_levels), len(col_levels)
    k = nr * nc
    est, v, weight_sum = np.asarray(res.estimate), np.asarray(res.vcov).reshape(k, k), float(res.weight_sum[0])
    wald = statistic in ("Wald", "adjWald")
    counts = est if wald else est * weight_sum
    # Pearson's X^2 of the weighted table scaled to N rows (R's svytable(Ntotal=N)).
    table = (counts * n_rows / counts.sum()).reshape(nc, nr).T
    pearson = _pearson(table)
    notes = [f"{n_missing} rows with a missing value left out (na_rm=True)"] if n_missing else []
    shown = pd.DataFrame(table, index=pd.Index(row_levels, name=row), columns=pd.Index(col_levels, name=col))

    def result(stat: float, ndf: float | None, ddf: float | None, p: float, method: str) -> ChisqTest:
        return ChisqTest(stat, ndf, ddf, p, method, row, col, shown, notes)

    if wald:
        adjusted = statistic == "adjWald"
        stat, ndf, ddf, p = _wald(est, v, shape, nu, adjusted)
        return result(stat, ndf, ddf, p, "Design-based Wald test of association" + (" (adjusted)" if adjusted else ""))
    delta = _rao_scott_delta(est, v, shape, n_rows)
    trace = float(np.trace(delta))
    d0 = trace**2 / float(np.trace(delta @ delta))
    if statistic == "F":
        stat = pearson / trace
        p = float(stats.f.sf(stat, d0, d0 * nu))
        return result(stat, d0, d0 * nu, p, "Pearson's X^2: Rao & Scott adjustment (F)")
    if statistic == "Chisq":
        k = delta.shape[1]
        p = float(stats.chi2.sf(pearson / (trace / k), k))
        return result(pearson, float(k), None, p, "Pearson's X^2: Rao & Scott adjustment")
    p = _p_saddlepoint(pearson, np.real(np.linalg.eigvals(delta)), d0 * nu)
    return result(pearson, None, None, p, "Pearson's X^2: saddlepoint approximation")
