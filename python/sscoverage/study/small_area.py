"""Small-area estimation: the Fay–Herriot area-level model (R's ``sae::eblupFH`` and
``sae::mseFH``; ``emdi::fh``; samplics' ``EblupAreaModel``).

Direct estimates of areas (provinces) with their design variances, from a by-domain
result (``design.mean(..., by="province")``) or a table, are combined with area
covariates: each area's EBLUP shrinks its direct estimate towards a regression
(synthetic) estimate, the more so the noisier the direct estimate.  The numerics (Fisher
scoring for the model variance, EBLUP, Prasad–Rao MSE, parametric bootstrap) run in the
Rust core.

>>> import sscoverage as ssc
>>> result = ssc.small_area.provincial_lapse()      # the bundled survey's provinces
>>> result.to_pandas()[["province", "direct", "eblup", "cv"]].head(3).round(3)
  province  direct  eblup     cv
0      P01   0.310  0.277  0.121
1      P02   0.221  0.239  0.151
2      P03   0.366  0.325  0.121
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import polars as pl
from scipy import stats

from .. import _core

from ..results import display as _display
from .._progress import track
from ..formula import CONTEXT, parse_formula, term_name
from ..exceptions import ColumnError, ConvergenceError, EstimationError, MissingValueError, ShapeError, OptionError
from ..results.estimates import Estimates, critical_value
from ..io.serialize import Serializable

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from .datasets import CoverageSurvey

__all__ = ["FayHerriotResult", "fay_herriot", "provincial_lapse"]

_METHODS = ("REML", "ML", "FH")
_MSE = ("prasad_rao", "bootstrap")
_TRANSFORMS = (None, "arcsin", "logit")
#: Bootstrap replicates per call of the core: the progress bar's step.  The sums do not
#: depend on it beyond rounding, and each replicate's draws are fixed by (seed, number).
_BOOTSTRAP_CHUNK = 100


@dataclass(frozen=True)
class FayHerriotResult(Serializable):
    """A fitted Fay–Herriot model: EBLUPs of the areas, with their MSE.

    Columns of ``table`` (:meth:`to_pandas`): the area column; ``in_sample`` (the area
    has a direct estimate); ``direct``, ``direct_se``, ``direct_cv``, ``n`` (rows behind
    the direct estimate, when known); ``variance`` (the design variance the model used:
    smoothed and on the model's scale when asked for); ``synthetic`` (x'β̂,
    back-transformed); ``gamma`` (the shrinkage factor Â / (Â + ψ): the EBLUP's weight
    on the direct estimate, zero out of sample); ``eblup``; ``mse``, ``rmse``, ``cv``;
    ``ci_low`` / ``ci_high``; ``benchmarked`` (when a benchmark was given).  Out-of-sample
    areas have the synthetic estimate as their EBLUP.
    """

    area: str
    method: str
    mse_method: str
    transform: str | None
    level: float
    table: pd.DataFrame
    coefficients: pd.DataFrame
    model_variance: float
    iterations: int
    at_zero: bool
    loglik: float
    replicates: int = 0
    failed_replicates: int = 0
    seed: int | None = None
    benchmark: float | None = None
    benchmark_method: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def estimate(self) -> np.ndarray:
        """The EBLUPs (benchmarked, when a benchmark was given)."""
        column = "benchmarked" if "benchmarked" in self.table else "eblup"
        return self.table[column].to_numpy()

    @property
    def mse(self) -> np.ndarray:
        """The EBLUPs' estimated mean squared errors (by ``mse_method``)."""
        return self.table["mse"].to_numpy()

    @property
    def labels(self) -> list[Any]:
        """The areas, in the row order of :attr:`estimate`."""
        return self.table[self.area].tolist()

    def to_pandas(self) -> pd.DataFrame:
        """The area table (columns as in the class notes), a copy."""
        return self.table.copy()

    def to_polars(self) -> pl.DataFrame:
        """:meth:`to_pandas` as a polars DataFrame."""
        return pl.from_pandas(self.table)

    def _header(self) -> list[str]:
        scale = f", {self.transform} scale" if self.transform else ""
        mse = "Prasad-Rao" if self.mse_method == "prasad_rao" else f"parametric bootstrap ({self.replicates} replicates)"
        lines = [
            f"Fay-Herriot EBLUP by {self.area} ({self.method}{scale}; MSE: {mse}; {self.level:.0%} intervals)",
            f"model variance {_display.number(self.model_variance)}"
            + (" (estimate at zero: every area gets its synthetic estimate)" if self.at_zero else "")
            + f", {self.iterations} Fisher-scoring iterations, log-likelihood {_display.number(self.loglik)}",
        ]
        if self.benchmark is not None:
            lines.append(f"benchmarked ({self.benchmark_method}) to {_display.number(self.benchmark)}")
        return lines + list(self.notes)

    def _shown(self) -> pd.DataFrame:
        keep = [self.area, "direct", "direct_cv", "eblup", "benchmarked", "rmse", "cv", "ci_low", "ci_high", "gamma"]
        return self.table[[c for c in keep if c in self.table]]

    def _footer(self) -> list[str]:
        coef = self.coefficients.copy()
        return ["Coefficients:", coef.to_string(index=False, float_format=_display.number)]

    def __repr__(self) -> str:
        return _display.text(self._header(), self._shown(), self._footer())

    def _repr_html_(self) -> str:
        return _display.to_html(self._header(), self._shown(), self._footer())

    def plot(self, ax: "Axes | None" = None) -> "Axes":
        """Direct estimates and EBLUPs with their intervals, one row per area, sorted by
        the direct estimate's CV (most reliable at the top; out-of-sample areas last).

        Parameters
        ----------
        ax : Axes to draw on; default a new figure's.

        Returns
        -------
        matplotlib.axes.Axes
        """
        from ..results.plots import get_axes

        ax = get_axes(ax)
        t = self.table.assign(_cv=self.table["direct_cv"].fillna(np.inf)).sort_values("_cv", kind="stable")
        rows = np.arange(len(t))[::-1]
        q = critical_value(self.level, None)
        direct = t["direct"].to_numpy()
        half = q * t["direct_se"].to_numpy()
        ax.errorbar(direct, rows + 0.15, xerr=half, fmt="o", color="0.55", capsize=2, label="direct")
        est = t["eblup"].to_numpy()
        err = np.vstack([est - t["ci_low"].to_numpy(), t["ci_high"].to_numpy() - est])
        ax.errorbar(est, rows - 0.15, xerr=err, fmt="s", color="C0", capsize=2, label="EBLUP")
        ax.set_yticks(rows, [str(a) for a in t[self.area]])
        ax.set_ylabel(f"{self.area} (by direct CV)")
        ax.set_xlabel(f"estimate ({self.level:.0%} interval)")
        ax.legend(loc="best")
        return ax

    def __len__(self) -> int:
        return len(self.table)


# ---------------------------------------------------------------------------- inputs
def _frame(data: Any, what: str) -> pd.DataFrame:
    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, pl.DataFrame):
        return data.to_pandas()
    raise OptionError(f"{what} must be a pandas or polars DataFrame, not {type(data).__name__}")


def _direct_table(direct: Any, area: str | None, variable: str | None, estimate: str,
                  variance: str) -> tuple[str, pd.DataFrame]:
    """(area column, frame of area, estimate, variance, n) from a by-domain result or a table."""
    if isinstance(direct, Estimates):
        if len(direct.by) != 1:
            raise ShapeError(f"direct estimates must be by one area column, not by {direct.by or 'none'}")
        area = area or direct.by[0]
        t = direct.table
        if variable is not None:
            t = t[t["variable"] == variable]
            if t.empty:
                raise ColumnError(f"variable={variable!r} is not among the estimates ({', '.join(pd.unique(direct.table['variable']))})")
        if t[direct.by[0]].duplicated().any():
            raise ShapeError(
                "the direct estimates have several rows per area (variables or factor levels): "
                "pass variable=..., or estimate a 0/1 indicator"
            )
        out = pd.DataFrame({area: t[direct.by[0]].astype(object).to_numpy(), "direct": t["estimate"].to_numpy(float),
                            "variance": t["se"].to_numpy(float) ** 2, "n": t["n"].to_numpy(float)})
        return area, out
    frame = _frame(direct, "direct")
    if area is None:
        raise ColumnError("area=... must name the area column of a table of direct estimates")
    missing = [c for c in (area, estimate) if c not in frame]
    if variance not in frame and "se" not in frame:
        missing.append(variance)
    if missing:
        raise ColumnError(f"direct estimates have no column {', '.join(map(repr, missing))} "
                          f"(columns: {', '.join(map(str, frame.columns))})")
    var = frame[variance] if variance in frame else frame["se"] ** 2
    out = pd.DataFrame({area: frame[area].astype(object).to_numpy(),
                        "direct": pd.to_numeric(frame[estimate]).to_numpy(float),
                        "variance": pd.to_numeric(var).to_numpy(float),
                        "n": frame["n"].to_numpy(float) if "n" in frame else np.nan})
    return area, out


def _check_direct(d: pd.DataFrame, area: str) -> None:
    labels = d[area].to_numpy()
    dup = pd.Index(labels).duplicated()
    if dup.any():
        raise ShapeError(f"area {labels[dup][0]!r} has more than one direct estimate")
    for column, name in (("direct", "direct estimate"), ("variance", "design variance")):
        bad = ~np.isfinite(d[column].to_numpy())
        if bad.any():
            raise MissingValueError(f"the {name} of area {labels[bad][0]!r} is missing or not finite; "
                                    "leave the area out (it then gets a synthetic estimate)")
    v = d["variance"].to_numpy()
    if (v <= 0).any():
        raise EstimationError(
            f"the design variance of area {labels[v <= 0][0]!r} is {v[v <= 0][0]:g}: "
            "it must be positive; smooth the variances (smooth_variances=True) or pool the area"
        )


def _design_matrix(cov: pd.DataFrame, area: str, formula: str | None, exclude: list[str]) -> tuple[np.ndarray, list[str]]:
    rhs = None if formula is None else (formula.split("~", 1)[1] if "~" in formula else formula)
    terms = None if rhs is None else [t.strip() for t in rhs.split("+")]
    if terms is None or all(t in cov.columns for t in terms):
        # No formula, or plain column names: no need for formulaic's parser (milliseconds).
        columns = terms or [c for c in cov.columns if c != area and c not in exclude]
        non_numeric = [c for c in columns if not pd.api.types.is_numeric_dtype(cov[c])]
        if non_numeric:
            raise ColumnError(f"covariate column {non_numeric[0]!r} is not numeric: give a formula "
                              "(it codes categories) or leave the column out")
        x = np.column_stack([np.ones(len(cov)), cov[columns].to_numpy(float)]) if columns else np.ones((len(cov), 1))
        names = ["(Intercept)", *columns]
    else:
        from formulaic import model_matrix

        # The package's grammar reads the formula before formulaic evaluates anything.
        checked = parse_formula(rhs, list(cov.columns), lhs="none")
        data = cov.rename(columns={column: alias for alias, column in checked.aliases.items()})
        try:
            mm = model_matrix(checked.text, data, na_action="ignore", context=CONTEXT)
        except Exception as err:  # formulaic raises its own classes
            raise ColumnError(f"formula {formula!r} cannot be evaluated on the covariates: {err}") from err
        x = np.asarray(mm, dtype=float)
        names = [term_name(str(c), checked) for c in mm.columns]
    bad_rows, bad_cols = np.nonzero(~np.isfinite(x))
    if len(bad_rows):
        raise MissingValueError(
            f"covariate {names[bad_cols[0]]!r} is missing for area {cov[area].iloc[bad_rows[0]]!r}; "
            "every area needs every covariate"
        )
    return np.ascontiguousarray(x), names


def _smooth(d: pd.DataFrame) -> np.ndarray:
    """Generalised variance function: log ψ_d = a + b log n_d by least squares, smoothed
    ψ_d = exp(a + b log n_d + s²/2) (s² the residual variance: the lognormal mean)."""
    n = d["n"].to_numpy(float)
    v = d["variance"].to_numpy(float)
    ok = np.isfinite(n) & (n > 0) & np.isfinite(v) & (v > 0)
    if ok.sum() < 3 or not np.isfinite(n).all() or (n <= 0).any():
        raise EstimationError("smooth_variances needs the rows behind each direct estimate (column 'n', "
                              "as by-domain results carry) and at least 3 areas with a positive variance")
    design = np.column_stack([np.ones(ok.sum()), np.log(n[ok])])
    coef, *_ = np.linalg.lstsq(design, np.log(v[ok]), rcond=None)
    resid = np.log(v[ok]) - design @ coef
    s2 = resid @ resid / max(ok.sum() - 2, 1)
    return np.exp(coef[0] + coef[1] * np.log(n) + s2 / 2)


def _to_model_scale(p: np.ndarray, v: np.ndarray, transform: str | None, labels: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Direct estimates and variances on the model's scale (delta method for ψ)."""
    if transform is None:
        return p, v
    inside = (p > 0) & (p < 1)
    if not inside.all():
        raise EstimationError(
            f"transform={transform!r} needs proportions strictly between 0 and 1; area "
            f"{labels[~inside].iloc[0]!r} has {p[~inside][0]:g}: use transform=None"
        )
    if transform == "arcsin":
        return np.arcsin(np.sqrt(p)), v / (4 * p * (1 - p))
    return np.log(p / (1 - p)), v / (p * (1 - p)) ** 2


def _back(t: np.ndarray, transform: str | None) -> np.ndarray:
    if transform == "arcsin":
        return np.sin(np.clip(t, 0, np.pi / 2)) ** 2
    if transform == "logit":
        return 1 / (1 + np.exp(-t))
    return t


def _back_slope(t: np.ndarray, transform: str | None) -> np.ndarray:
    """d h(θ)/dθ of the back-transformation h, for the delta-method MSE."""
    if transform == "arcsin":
        return np.where((t > 0) & (t < np.pi / 2), np.sin(2 * t), 0.0)
    if transform == "logit":
        p = _back(t, transform)
        return p * (1 - p)
    return np.ones_like(t)


# ---------------------------------------------------------------------------- the model
def fay_herriot(
    direct: Estimates | pd.DataFrame | pl.DataFrame,
    covariates: pd.DataFrame | pl.DataFrame,
    *,
    area: str | None = None,
    formula: str | None = None,
    method: str = "REML",
    mse: str = "prasad_rao",
    transform: str | None = None,
    benchmark: float | Estimates | None = None,
    population: str | None = None,
    benchmark_method: str = "ratio",
    smooth_variances: bool = False,
    variable: str | None = None,
    estimate: str = "estimate",
    variance: str = "variance",
    replicates: int = 500,
    seed: int = 0,
    level: float = 0.95,
    max_iter: int = 100,
    precision: float = 1e-4,
    progress: bool = True,
) -> FayHerriotResult:
    """Fay–Herriot EBLUPs of area means or proportions, with their MSE.

    Mirrors R's ``sae::eblupFH`` and ``sae::mseFH`` (same Fisher scoring, same stopping
    rule and the same numbers), ``emdi::fh`` for transformations and benchmarking;
    Stata has no official command (``fhsae`` is user-written).

    Parameters
    ----------
    direct : the direct estimates: a by-domain result with one ``by`` column
        (``design.mean("lapse", by="province")``; its SEs squared are the design
        variances and its ``n`` the rows behind each), or a DataFrame with columns
        `area`, `estimate` and `variance` (or ``se``), optionally ``n``.
    covariates : area covariates, one row per area, keyed by the `area` column.  Areas
        here without a direct estimate are out of sample: they get the synthetic
        estimate x'β̂ and its MSE.
    area : the area column (default: the ``by`` column of `direct`).
    formula : right-hand side over `covariates` ("urbanisation + mean_wage",
        formulaic syntax; an intercept is added).  Default: every column of
        `covariates` but `area` and `population`, plus an intercept.
    method : model variance by "REML" (default), "ML" or "FH" (the Fay–Herriot moment
        estimator).  Where its estimate falls at or below zero it is set to zero (see
        Notes).
    mse : "prasad_rao" (default; Datta–Lahiri terms for ML and FH, as ``mseFH``) or
        "bootstrap" (parametric, seeded).
    transform : None, "arcsin" (arcsine square root) or "logit", for proportions: the
        model is fitted on that scale with the delta-method variances
        ψ = v / (4p(1 − p)) or v / (p(1 − p))², and the estimates are transformed back.
    benchmark : a national estimate (a number, or a one-row result of ``design.mean``)
        that the population-weighted EBLUPs must add up to; needs `population`.
    population : the column of `covariates` with each area's population (weights of
        the benchmark).
    benchmark_method : "ratio" (EBLUPs times one factor) or "difference" (one amount
        added to every EBLUP).
    smooth_variances : replace the direct variances by a generalised variance
        function, log ψ = a + b log n (needs ``n``), where they are unstable.
    variable : which variable of a by-domain result with several.
    estimate, variance : column names of a table of direct estimates.
    replicates : bootstrap replicates (``mse="bootstrap"``).
    seed : seed of the bootstrap: the same seed gives the same MSE on any thread count.
    level : confidence level of the intervals.
    max_iter, precision : Fisher scoring stops once the relative change of the model
        variance is at most `precision` (sae's ``MAXITER`` and ``PRECISION``).
    progress : show a progress bar for a long bootstrap.

    Returns
    -------
    FayHerriotResult

    Raises
    ------
    ColumnError : a named column is missing or not numeric.
    MissingValueError : a missing or non-finite direct estimate, variance or covariate
        (the message names the area and column).
    ShapeError : areas given twice, or several rows per area.
    EstimationError : a non-positive design variance, an area with a direct estimate but
        no covariates, proportions at 0 or 1 under a transformation, too few areas.
    ConvergenceError : Fisher scoring did not converge in `max_iter` steps.

    Notes
    -----
    *At or below zero.* Fisher scoring starts at the median of ψ and steps
    A ← A + s(A)/F(A), as ``sae``.  A step that lands at or below zero is set to zero;
    when the step from zero is again not positive, the likelihood (or, for FH, the moment
    equation) has its solution on the boundary and the fit stops there: Â = 0, and
    every area gets its synthetic estimate (``at_zero``).  sae instead steps into
    negative values and, with few areas or small variances, may never meet its
    stopping rule (no estimates); wherever its iterates stay positive both give the
    same numbers.

    *MSE.* Prasad–Rao: g₁ + g₂ + 2g₃ (REML), less b(Â)·B² for ML and FH (the bias of
    Â).  Out of sample: max(Â − b, 0) + x'(X'V⁻¹X)⁻¹x.  The parametric bootstrap draws
    u* ~ N(0, Â), e* ~ N(0, ψ), refits by the same method and averages the squared
    errors on the original scale; replicates whose refit does not converge are left out
    (counted in ``failed_replicates``).  Under a transformation, Prasad–Rao MSEs are
    taken to the original scale by the delta method, and the intervals are the model
    scale's EBLUP ± z·√MSE transformed back (so they stay within 0 and 1).

    *Benchmarking* adjusts the estimates only; the MSE is that of the EBLUP.

    References
    ----------
    Fay & Herriot (1979), JASA 74, 269–277.  Prasad & Rao (1990), JASA 85, 163–171.
    Datta & Lahiri (2000), Statistica Sinica 10, 613–627.  Rao & Molina (2015), *Small
    Area Estimation*, 2nd ed., ch. 6.  González-Manteiga et al. (2008), JSPI 138.
    """
    if method not in _METHODS:
        raise EstimationError(f"method={method!r} is not one of {', '.join(_METHODS)}")
    if mse not in _MSE:
        raise EstimationError(f"mse={mse!r} is not 'prasad_rao' or 'bootstrap'")
    if transform not in _TRANSFORMS:
        raise EstimationError(f"transform={transform!r} is not None, 'arcsin' or 'logit'")
    if benchmark_method not in ("ratio", "difference"):
        raise EstimationError(f"benchmark_method={benchmark_method!r} is not 'ratio' or 'difference'")
    area, d = _direct_table(direct, area, variable, estimate, variance)
    cov = _frame(covariates, "covariates")
    if area not in cov:
        raise ColumnError(f"the covariates have no area column {area!r}")
    if population is not None and population not in cov:
        raise ColumnError(f"population={population!r} is not a column of the covariates")
    _check_direct(d, area)
    if cov[area].duplicated().any():
        raise ShapeError(f"area {cov[area][cov[area].duplicated()].iloc[0]!r} appears twice in the covariates")
    known = set(cov[area].astype(object))
    absent = [a for a in d[area] if a not in known]
    if absent:
        raise EstimationError(f"area {absent[0]!r} has a direct estimate but no covariates "
                              f"({len(absent)} such areas)")
    # Sampled areas first, in the direct estimates' order; then the others.
    position = {a: i for i, a in enumerate(d[area])}
    order = np.argsort([position.get(a, len(position) + i) for i, a in enumerate(cov[area].astype(object))],
                       kind="stable")
    cov = cov.iloc[order].reset_index(drop=True)
    x_all, names = _design_matrix(cov, area, formula, [population] if population else [])
    m = len(d)
    x_in, x_out = x_all[:m], np.ascontiguousarray(x_all[m:])

    v = _smooth(d) if smooth_variances else d["variance"].to_numpy(float)
    y, psi = _to_model_scale(d["direct"].to_numpy(float), v, transform, d[area])
    y, psi = np.ascontiguousarray(y), np.ascontiguousarray(psi)
    try:
        fit = _core.fay_herriot_fit(y, x_in, psi, x_out, method, max_iter, precision)
    except EstimationError as err:
        if len(err.args) > 1:  # the core's positions of aliased columns
            aliased = ", ".join(repr(names[j]) for j in err.args[1])
            raise EstimationError(f"covariate(s) {aliased} are linear combinations of the others (aliased) "
                                  "over the areas with direct estimates: leave them out") from err
        raise
    if not fit.converged:
        raise ConvergenceError(f"Fisher scoring for the model variance ({method}) did not converge in "
                               f"{fit.iterations} iterations; raise max_iter or try method='FH'")

    theta = np.concatenate([fit.eblup, fit.synthetic_out])
    mse_model = np.concatenate([fit.mse, fit.mse_out])
    failed = 0
    if mse == "bootstrap":
        sums = np.zeros(len(theta))
        scale = transform or "identity"
        chunks = range(0, replicates, _BOOTSTRAP_CHUNK)
        for first in track(chunks, len(chunks), "Fay-Herriot bootstrap", progress):
            count = min(_BOOTSTRAP_CHUNK, replicates - first)
            part, bad = _core.fay_herriot_bootstrap(fit, y, x_in, psi, x_out, scale, seed, first, count,
                                                    max_iter, precision)
            sums += part
            failed += bad
        if failed == replicates:
            raise ConvergenceError("no bootstrap replicate converged")
        mse_out = sums / (replicates - failed)
    else:
        mse_out = mse_model * _back_slope(theta, transform) ** 2

    q = critical_value(level, None)
    eblup = _back(theta, transform)
    if transform is None:
        low, high = eblup - q * np.sqrt(mse_out), eblup + q * np.sqrt(mse_out)
    else:
        low, high = _back(theta - q * np.sqrt(mse_model), transform), _back(theta + q * np.sqrt(mse_model), transform)
    n_out = len(x_out)
    pad = np.full(n_out, np.nan)
    direct_v = np.concatenate([d["variance"].to_numpy(float), pad])
    direct_est = np.concatenate([d["direct"].to_numpy(float), pad])
    table = pd.DataFrame({
        area: cov[area].to_numpy(),
        "in_sample": np.arange(m + n_out) < m,
        "direct": direct_est,
        "direct_se": np.sqrt(direct_v),
        "direct_cv": np.sqrt(direct_v) / np.abs(direct_est),
        "n": np.concatenate([d["n"].to_numpy(float), pad]),
        "variance": np.concatenate([psi, pad]),
        "synthetic": _back(np.concatenate([fit.synthetic, fit.synthetic_out]), transform),
        "gamma": np.concatenate([fit.gamma, np.zeros(n_out)]),
        "eblup": eblup,
        "mse": mse_out,
        "rmse": np.sqrt(mse_out),
        "cv": np.sqrt(mse_out) / np.abs(eblup),
        "ci_low": low,
        "ci_high": high,
    })
    if table["n"].isna().all():
        table = table.drop(columns=["n"])

    national = None
    notes: list[str] = []
    if benchmark is not None:
        national = _national(benchmark)
        if population is None:
            raise ColumnError("benchmark needs population=..., the covariates' column of area populations")
        share = cov[population].to_numpy(float)
        if not (np.isfinite(share).all() and (share >= 0).all() and share.sum() > 0):
            raise MissingValueError(f"population column {population!r} needs non-negative numbers for every area")
        share = share / share.sum()
        weighted = share @ eblup
        table["benchmarked"] = eblup * (national / weighted) if benchmark_method == "ratio" else eblup + (national - weighted)
        notes.append("MSE and intervals are the EBLUP's, before benchmarking")
    if fit.at_zero:
        notes.append("model variance estimated at zero: EBLUP = synthetic estimate")
    if failed:
        notes.append(f"{failed} bootstrap replicates did not converge and were left out")

    beta, se = fit.beta, np.sqrt(np.diag(fit.beta_vcov))
    z = beta / se
    coefficients = pd.DataFrame({"term": names, "estimate": beta, "se": se, "statistic": z,
                                 "p_value": 2 * stats.norm.sf(np.abs(z))})
    return FayHerriotResult(
        area=area, method=method, mse_method=mse, transform=transform, level=level, table=table,
        coefficients=coefficients, model_variance=float(fit.variance), iterations=int(fit.iterations),
        at_zero=bool(fit.at_zero), loglik=float(fit.loglik),
        replicates=replicates if mse == "bootstrap" else 0, failed_replicates=failed,
        seed=seed if mse == "bootstrap" else None, benchmark=national,
        benchmark_method=benchmark_method if national is not None else None, notes=notes,
    )


def _national(benchmark: float | Estimates) -> float:
    if isinstance(benchmark, Estimates):
        if len(benchmark) != 1:
            raise ShapeError(f"benchmark must be one national estimate, not {len(benchmark)}")
        return float(benchmark.estimate[0])
    value = float(benchmark)
    if not np.isfinite(value):
        raise MissingValueError("benchmark is not a finite number")
    return value


# ---------------------------------------------------------------------------- worked example
def provincial_lapse(
    survey: "CoverageSurvey | None" = None,
    *,
    method: str = "REML",
    mse: str = "prasad_rao",
    formula: str = "platform_share + flexible_low_income_share + urbanisation",
    benchmark: bool = True,
) -> FayHerriotResult:
    """Flexible workers' pension lapse by province: Fay–Herriot EBLUPs from the bundled
    survey and the shipped provincial covariates (**synthetic data**).

    Direct estimates are ``design.subset(flexible).mean("lapse_pension",
    by="province")`` (flexible workers: new-employment-form and other flexible jobs);
    covariates come from :func:`sscoverage.datasets.provincial_covariates`; the EBLUPs
    are benchmarked (ratio) to the national direct estimate with the provinces' numbers
    of flexible workers as weights.  ``sscoverage report`` can call this for its
    provincial section.

    Parameters
    ----------
    survey : the survey (default :func:`sscoverage.datasets.coverage_survey`).
    method : model variance: "REML", "ML" or "FH".
    mse : "prasad_rao" or "bootstrap".
    formula : covariates of the model.
    benchmark : benchmark to the national direct estimate.

    Returns
    -------
    FayHerriotResult
    """
    from .coverage import lapse_indicators
    from .datasets import FLEXIBLE_JOBS, coverage_survey, provincial_covariates
    from ..design.design import Design

    survey = survey if survey is not None else coverage_survey()
    persons = survey.persons.assign(lapse_pension=lapse_indicators(survey.persons)["lapse_pension"].to_numpy())
    design = Design(persons, ids="county", strata="province", weights="weight")
    flexible = design.subset(persons["job_type"].isin(FLEXIBLE_JOBS).to_numpy())
    by_province = flexible.mean("lapse_pension", by="province")
    return fay_herriot(
        by_province, provincial_covariates(), formula=formula, method=method, mse=mse,
        benchmark=flexible.mean("lapse_pension") if benchmark else None,
        population="flexible_workers" if benchmark else None,
    )
