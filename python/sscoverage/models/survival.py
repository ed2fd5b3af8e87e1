"""Survival analysis for survey data: design-weighted survival curves, Cox regression,
and person-period data for discrete-time hazard models.

:func:`km` mirrors R's ``survey::svykm`` (with ``confint.svykm`` and
``quantile.svykm``), :func:`coxph` R's ``survey::svycoxph`` (Stata's ``svy: stcox``).
The numerics are in the Rust core (``src/estimators/km.rs``, ``src/models/coxph.rs``); every
variance goes through the design's one engine: influence values for a linearisation
design, estimates recomputed with each replicate's weights for a replicate design.
"""

from __future__ import annotations

import contextlib
import difflib
import re
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping, NamedTuple, Sequence

import numpy as np
import pandas as pd
import polars as pl
from scipy import stats

from .. import _core

from ..results import display as _display
from .._frames import OUTSIDE, Frame, reject_infinite
from ..exceptions import (ColumnError, ConvergenceError, EstimationError, MissingValueError, OptionError,
                          SurveyWarning)
from .glm import ModelFrame
from .._provenance import Provenance
from ..results.estimates import CoefficientModel, critical_value
from ..io.serialize import Serializable

if TYPE_CHECKING:
    from ..protocols import SurveyDesign

TIES = ("efron", "breslow")
#: R's ``svycoxph.svyrep.design`` adds this to every replicate weight ("coxph doesn't
#: allow zero weights"), so a row a replicate drops still counts, with a negligible
#: weight, among tied events in Efron's approximation.
REPLICATE_EPSILON = 1e-10
_SURV = re.compile(r"^\s*Surv\s*\(\s*(?P<time>[^,()]+?)\s*,\s*(?P<event>[^,()]+?)\s*\)\s*~\s*(?P<rhs>.+?)\s*$", re.S)
_SPECIALS = re.compile(r"\b(strata|cluster|tt|frailty|pspline)\s*\(")


# ---------------------------------------------------------------------------- inputs
def event_values(frame: Frame, name: str) -> np.ndarray:
    """An event column as 0.0 / 1.0 (NaN where missing): numbers or booleans."""
    out = _event_floats(frame, name)
    if _core.survival_census(None, out).non_binary_event:
        _refuse_events(out, name)
    return out


def _event_floats(frame: Frame, name: str) -> np.ndarray:
    """An event column's numbers or booleans as floats (NaN where missing), unchecked."""
    col = frame.column(name)
    dtype = col.dtype
    if isinstance(col, pl.Series) and dtype == pl.Boolean:
        return col.cast(pl.Float64).to_numpy()
    if not isinstance(col, pl.Series) and pd.api.types.is_bool_dtype(dtype):
        return col.astype("Float64").to_numpy(dtype=np.float64, na_value=np.nan)
    if frame.is_numeric(name):
        return frame.floats(name, "event")
    raise ColumnError(
        f"event column {name!r} holds {dtype}; it must be 0/1 (1 = event, 0 = censored) or boolean"
    )


def _refuse_events(values: np.ndarray, name: str) -> None:
    """The error for an event column holding values other than 0, 1 and NaN."""
    bad = (values != 0) & (values != 1) & ~np.isnan(values)
    seen = ", ".join(f"{v:g}" for v in np.unique(values[bad])[:3])
    raise ColumnError(
        f"event column {name!r} has {int(bad.sum())} values other than 0 and 1 ({seen}); code an "
        "event as 1 and a censored time as 0 (R's Surv also reads 1/2, sscoverage does not guess)"
    )


def _survival_outcome(design: "SurveyDesign", time: str, event: str) -> tuple[np.ndarray, np.ndarray, bool]:
    """(time, event) as float arrays, NaN where missing, and whether neither misses a
    value; infinite times, events other than 0/1 and negative times of the domain
    refused.  One pass counts every problem; a complete outcome costs no other."""
    frame = design.frame
    t = frame.floats(time, "survival time")
    e = _event_floats(frame, event)
    census = _core.survival_census(t, e)
    if census.infinite_time:
        reject_infinite(t, time, "survival time")
    if census.non_binary_event:
        _refuse_events(e, event)
    if census.negative_time:
        # NaN compares false: the mask holds only negative times.
        negative = (t < 0) & design.in_subset()
        if negative.any():
            raise ColumnError(f"column {time!r} has {int(negative.sum())} negative survival time(s); times are "
                              "durations from the time origin and must be >= 0")
    return t, e, not (census.missing_time or census.missing_event)


def missing_error(counts: Mapping[str, int], total: int) -> MissingValueError:
    """The error for `total` rows of the domain with missing values, `counts` per column."""
    detail = ", ".join(f"{name!r}: {k}" for name, k in counts.items() if k)
    return MissingValueError(
        f"{total} rows of the domain have a missing value ({detail}); pass na_rm=True to leave "
        "them out (they stay in the design, as R's na.omit of the model frame)"
    )


def survival_times(times: Any) -> np.ndarray | None:
    """The times at which to report S(t), checked (None: every tabulated time)."""
    if times is None:
        return None
    out = np.atleast_1d(np.asarray(times, dtype=np.float64))
    if out.ndim != 1 or not np.isfinite(out).all() or (out < 0).any():
        raise OptionError("times must be finite numbers >= 0")
    return out


# ---------------------------------------------------------------------------- curves
@dataclass(frozen=True)
class Curve:
    """One survival curve as R tabulates it: ``time`` and ``surv``.  With ``se=True``
    there is one entry per event (tied events in row order, the last of them holding the
    full hazard), as R's ``svykm(se=TRUE)``, and ``variance`` gives the variance of
    log S (R's ``varlog``) at a list of entries; otherwise 0 and every distinct time,
    as R's product-limit fit.

    The variance costs a pass over the rows (in the core, for all the entries asked for
    at once), so it is computed for the entries a result needs (the requested times;
    the whole curve for quantiles) and kept."""

    time: np.ndarray
    surv: np.ndarray
    variance: Callable[[list[int]], np.ndarray] | None = None
    _known: dict[int, float] = field(default_factory=dict, repr=False, compare=False)

    def at(self, t: np.ndarray) -> np.ndarray:
        """Entry index of the last tabulated time <= each t (-1 if none)."""
        return np.searchsorted(self.time, t, side="right") - 1

    def varlog(self, entries: np.ndarray | None = None) -> np.ndarray:
        """Variance of log S at the entries (all of them if None)."""
        if self.variance is None:
            raise EstimationError("no standard errors in these curves: estimate them with se=True")
        wanted = np.arange(len(self.time)) if entries is None else np.asarray(entries)
        todo = sorted(set(wanted.tolist()) - self._known.keys())
        if todo:
            self._known.update(zip(todo, self.variance(todo)))
        return np.array([self._known[j] for j in wanted.tolist()], dtype=np.float64)


def km(
    design: "SurveyDesign",
    time: str,
    event: str,
    by: str | None = None,
    times: Any = None,
    se: bool = False,
    na_rm: bool = False,
    level: float = 0.95,
) -> "SurvivalCurves":
    """Design-weighted survival curves; see :meth:`sscoverage.Design.km`."""
    if by is not None and not isinstance(by, str):
        raise OptionError("by must be one column name (combine several into one column first)")
    at_times = survival_times(times)
    t, e, complete = _survival_outcome(design, time, event)
    coded = None if by is None else design.frame.codes(by, "by")
    curve, n_removed = _curve_codes(design, t, e, time, event, by, coded, complete, na_rm)
    n_curves = 1 if coded is None else len(coded.labels)
    labels = [None] if coded is None else coded.labels
    # Rows outside the curves (subset, missing values) are not read: their weight stays.
    w = design.core.weights
    if se:
        hazard = _core.HazardCurves(t, e, w, curve, n_curves)
        n_rows = list(hazard.n_rows)
        made = [_hazard_curve(design, hazard, d) for d in range(n_curves) if n_rows[d]]
    else:
        product_limit = _core.km_product_limit(t, e, w, curve, n_curves)
        n_rows = [c.n_rows for c in product_limit]
        made = [Curve(c.time, c.surv) for c in product_limit if c.n_rows]
    if not any(n_rows):
        raise EstimationError("no rows are left to estimate a survival curve from (subset and missing values)")
    return SurvivalCurves(
        time_column=time,
        event_column=event,
        by=by,
        groups=[labels[d] for d in range(n_curves) if n_rows[d]],
        curves=made,
        times=at_times,
        se=se,
        level=level,
        n=[int(k) for k in n_rows if k],
        n_removed=n_removed,
    )


def _curve_codes(design: "SurveyDesign", t: np.ndarray, e: np.ndarray, time: str, event: str, by: str | None,
                 coded: Any, complete: bool, na_rm: bool) -> tuple[np.ndarray | None, int]:
    """Each row's curve (the ``by`` code; OUTSIDE outside the subset and where a value is
    missing; None when every row is in the one curve) and the rows left out as missing
    (`complete`: no time or event is missing)."""
    codes = None if coded is None else coded.codes  # OUTSIDE where by is missing
    if not design.is_subset and complete and (coded is None or coded.missing is None):
        return (None if codes is None else np.ascontiguousarray(codes, dtype=np.uint32)), 0
    missing = np.isnan(t) | np.isnan(e)
    if codes is not None and coded.missing is not None:
        missing |= coded.missing
    scope = design.in_subset()
    missing &= scope
    n_removed = int(missing.sum())
    if n_removed and not na_rm:
        counts = {time: np.isnan(t) & scope, event: np.isnan(e) & scope}
        if by is not None and coded.missing is not None:
            counts[by] = coded.missing & scope
        raise missing_error({k: int(v.sum()) for k, v in counts.items()}, n_removed)
    used = scope & ~missing
    return np.where(used, 0 if codes is None else codes, OUTSIDE).astype(np.uint32), n_removed


def _hazard_curve(design: "SurveyDesign", hazard: Any, d: int) -> Curve:
    """R's ``survey:::km.stderr``: S = exp(-Nelson–Aalen hazard) at each event, and the
    design-based variance of log S there (linearisation, or the hazard recomputed with
    each replicate's weights, beyond R, which has no standard errors for ``svykm`` on
    replicate designs)."""
    entry_time, surv = hazard.curve(d)

    def variance(at: list[int]) -> np.ndarray:
        var, dropped = hazard.log_variance(design.core, d, at)
        if dropped:
            warnings.warn(f"{dropped} replicates gave undefined estimates and were left out (R: \"replicates "
                          "gave NA results and were discarded\")", SurveyWarning, stacklevel=4)
        return np.asarray(var)

    return Curve(entry_time, surv, variance)


@dataclass(frozen=True)
class SurvivalCurves:
    """Design-weighted survival curves (R's ``svykm``), one per ``by`` group.

    :meth:`to_pandas` gives S(t) at the requested ``times`` (the value at the last
    tabulated time <= t, as R's ``confint.svykm``), or at every tabulated time; with
    ``se=True`` also ``se_log`` (the standard error of log S(t)) and the interval
    exp(log S(t) -+ z se_log), its upper end capped at 1.  ``curve()`` gives the full
    tabulation, :meth:`quantile` and :meth:`median_survival` the survival times.
    """

    time_column: str
    event_column: str
    by: str | None
    groups: list[Any]
    curves: list[Curve]
    times: np.ndarray | None
    se: bool
    level: float
    n: list[int]
    n_removed: int = 0

    def _z(self, level: float | None) -> float:
        return critical_value(self.level if level is None else level, None)

    def _rows(self, curve: Curve, times: np.ndarray | None) -> dict[str, np.ndarray]:
        if times is None:
            times = np.unique(curve.time)
        idx = curve.at(times)
        before = idx < 0  # before the first event of an se=True curve: S = 1, no variance
        take = np.where(before, 0, idx)
        out = {"time": times, "survival": np.where(before, 1.0, curve.surv[take])}
        if curve.variance is not None:
            se = np.zeros(len(times))
            se[~before] = np.sqrt(curve.varlog(idx[~before]))
            out["se_log"] = se
        return out

    def confint(self, times: Any = None, level: float | None = None) -> pd.DataFrame:
        """Intervals for S(t): exp(log S(t) -+ z se_log), upper end capped at 1 (R's
        ``confint.svykm``, normal quantile z).  Needs ``se=True``.

        Parameters
        ----------
        times : times at which to report S(t) (the value at the last tabulated time
            <= t); default the curves' ``times``, else every tabulated time.
        level : confidence level; default the curves' own.

        Returns
        -------
        pandas.DataFrame
            The ``by`` column, ``time``, ``survival``, ``se_log``, ``ci_low``, ``ci_high``.
        """
        if not self.se:
            raise EstimationError("no standard errors in these curves: estimate them with se=True")
        z = self._z(level)
        frames = []
        for label, curve in zip(self.groups, self.curves):
            r = self._rows(curve, self.times if times is None else survival_times(times))
            log_s = np.log(r["survival"])
            part = pd.DataFrame(
                {
                    "time": r["time"],
                    "survival": r["survival"],
                    "se_log": r["se_log"],
                    "ci_low": np.exp(log_s - z * r["se_log"]),
                    "ci_high": np.minimum(np.exp(log_s + z * r["se_log"]), 1.0),
                }
            )
            frames.append(self._label(part, label))
        return pd.concat(frames, ignore_index=True)

    def _label(self, part: pd.DataFrame, label: Any) -> pd.DataFrame:
        if self.by is not None:
            part.insert(0, self.by, label)
        return part

    def to_pandas(self) -> pd.DataFrame:
        """S(t) at the curves' ``times`` (:meth:`confint` when estimated with ``se=True``):
        the ``by`` column, ``time``, ``survival``."""
        if self.se:
            return self.confint()
        frames = [
            self._label(pd.DataFrame(self._rows(curve, self.times)), label)
            for label, curve in zip(self.groups, self.curves)
        ]
        return pd.concat(frames, ignore_index=True)

    def to_polars(self) -> pl.DataFrame:
        """:meth:`to_pandas` as a polars DataFrame."""
        return pl.from_pandas(self.to_pandas())

    def curve(self, group: Any = None) -> pd.DataFrame:
        """The full tabulation of one curve, as R's ``svykm`` object.

        Parameters
        ----------
        group : the ``by`` level of the curve; ignored without ``by`` (one curve).

        Returns
        -------
        pandas.DataFrame
            ``time``, ``survival`` and, with ``se=True``, ``se_log``.
        """
        if self.by is None:
            curve = self.curves[0]
        else:
            if group not in self.groups:
                raise KeyError(f"group {group!r} is not one of {self.groups}")
            curve = self.curves[self.groups.index(group)]
        out = pd.DataFrame({"time": curve.time, "survival": curve.surv})
        if curve.variance is not None:
            out["se_log"] = np.sqrt(curve.varlog())
        return out

    def quantile(self, probs: float | Sequence[float] = (0.75, 0.5, 0.25), level: float | None = None) -> pd.DataFrame:
        """Survival times: the first tabulated time at which S(t) <= p (R's
        ``quantile.svykm``; Inf if the curve never gets there), with an interval from the
        times at which the pointwise limits of S(t) cross p (``ci=TRUE``).

        Without standard errors (``se=False``) the interval is NaN, with a warning, as R.

        Parameters
        ----------
        probs : survival probabilities p, each strictly between 0 and 1.
        level : confidence level; default the curves' own.

        Returns
        -------
        pandas.DataFrame
            The ``by`` column, ``prob``, ``estimate``, ``ci_low``, ``ci_high``.
        """
        probs = np.atleast_1d(np.asarray(probs, dtype=np.float64))
        if ((probs <= 0) | (probs >= 1)).any():
            raise OptionError("probs must be strictly between 0 and 1")
        if not self.se:
            warnings.warn("no confidence interval available: estimate the curves with se=True", stacklevel=2)
        z = self._z(level)
        frames = []
        for label, curve in zip(self.groups, self.curves):
            est = _first_time_below(curve.time, curve.surv, probs)
            if curve.variance is None:
                low = high = np.full(len(probs), np.nan)
            else:
                log_s, se = np.log(curve.surv), np.sqrt(curve.varlog())
                # The lower survival limit crosses p first: it gives the lower time.
                low = _first_time_below(curve.time, np.exp(log_s - z * se), probs)
                high = _first_time_below(curve.time, np.exp(log_s + z * se), probs)
            part = pd.DataFrame({"prob": probs, "estimate": est, "ci_low": low, "ci_high": high})
            frames.append(self._label(part, label))
        return pd.concat(frames, ignore_index=True)

    def median_survival(self, level: float | None = None) -> pd.DataFrame:
        """The median survival time with its interval: :meth:`quantile` at p = 0.5
        (R's ``quantile(svykm(..., se=TRUE), 0.5, ci=TRUE)``).

        Parameters
        ----------
        level : confidence level; default the curves' own.

        Returns
        -------
        pandas.DataFrame
            The ``by`` column, ``estimate``, ``ci_low``, ``ci_high``.
        """
        return self.quantile([0.5], level).drop(columns="prob")

    def _header(self) -> str:
        what = f"Surv({self.time_column}, {self.event_column})" + (f" by {self.by}" if self.by else "")
        kind = (
            f"exp(-cumulative hazard) with {self.level:.0%} CI on the log scale"
            if self.se
            else "weighted product-limit estimate"
        )
        if self.by:
            rows = ", ".join(f"{self.by} = {g}: n = {n}" for g, n in zip(self.groups, self.n))
        else:
            rows = f"n = {self.n[0]}"
        lines = [f"Survey survival curves of {what}: {kind}", rows]
        if self.n_removed:
            lines.append(f"{self.n_removed} rows with missing values left out (na_rm=True)")
        return "\n".join(lines)

    def __repr__(self) -> str:
        with pd.option_context("display.width", 120, "display.max_columns", 20, "display.max_rows", 40):
            return f"{self._header()}\n{self.to_pandas().to_string(index=False)}"

    def _repr_html_(self) -> str:
        head = self._header().replace("\n", "<br>")
        table = self.to_pandas().to_html(index=False, float_format=lambda x: f"{x:.6g}")
        return f"<div><p><b>{head}</b></p>{table}</div>"

    def plot(self, ax: Any = None, ci: bool = True) -> Any:
        """Kaplan-Meier curves as steps; see :func:`sscoverage.plots.survival_curves`.

        Parameters
        ----------
        ax : matplotlib Axes to draw on; None: a new figure.
        ci : draw the confidence bands (curves estimated with ``se=True``).

        Returns
        -------
        matplotlib.axes.Axes
        """
        from ..results.plots import survival_curves

        return survival_curves(self, ax, ci)


def _first_time_below(time: np.ndarray, surv: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """For each p, the time of the first entry with surv <= p (Inf if none)."""
    out = np.full(len(probs), np.inf)
    for i, p in enumerate(probs):
        hit = np.flatnonzero(surv <= p)
        if len(hit):
            out[i] = time[hit[0]]
    return out


# ---------------------------------------------------------------------------- Cox
def parse_surv(formula: str, columns: Sequence[Any]) -> tuple[str, str, str, str]:
    """(time column, event column, time token as written, right-hand side)."""
    match = _SURV.match(formula)
    if not match or "~" in match.group("rhs"):
        raise OptionError(f"write the formula as 'Surv(time, event) ~ x1 + x2', not {formula!r}")
    rhs = match.group("rhs")
    special = _SPECIALS.search(rhs)
    if special:
        raise OptionError(f"{formula}: {special.group(1)}() terms are not supported")
    names = []
    for role in ("time", "event"):
        token = match.group(role)
        name = token[1:-1] if token.startswith("`") and token.endswith("`") else token
        if name not in [str(c) for c in columns]:
            close = difflib.get_close_matches(name, [str(c) for c in columns], n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ColumnError(f"{role} column {name!r} in the formula {formula!r} is not in the data.{hint}")
        names.append(name)
    return names[0], names[1], match.group("time"), rhs


def coxph(
    design: "SurveyDesign",
    formula: str,
    ties: str = "efron",
    levels: Mapping[str, Sequence[Any]] | None = None,
    na_rm: bool = False,
    level: float = 0.95,
    eps: float = 1e-9,
    maxit: int = 20,
) -> "CoxResult":
    """Design-based Cox regression; see :meth:`sscoverage.Design.coxph`."""
    if ties not in TIES:
        raise OptionError(f"ties={ties!r}; use one of {', '.join(TIES)}")
    time, event, time_token, rhs = parse_surv(formula, design.frame.columns)
    t, e, complete = _survival_outcome(design, time, event)
    scope = design.in_subset()
    # The model frame of the covariates, on the rows with a time and an event (the
    # census found whether any misses one); the time stands in as its outcome.
    miss_outcome = None if complete else scope & (np.isnan(t) | np.isnan(e))
    n_miss = 0 if miss_outcome is None else int(miss_outcome.sum())
    base = design.subset(~miss_outcome) if miss_outcome is not None and n_miss else design
    model = ModelFrame(base, f"{time_token} ~ {rhs}", "gaussian", levels or {})
    n_removed = n_miss + model.n_removed
    if n_removed and not na_rm:
        raise missing_error({f"{time}/{event}": n_miss, "covariates": model.n_removed}, n_removed)
    keep = [j for j, term in enumerate(model.terms) if term != "(Intercept)"]
    if not keep:
        raise OptionError(f"{formula}: no covariates; for a survival curve use design.km")
    terms = [model.terms[j] for j in keep]
    w = design.weights
    rows_all = model.rows
    # R fits on the rows of positive weight, the weights rescaled to mean 1 over the
    # design's rows (this scale moves the model-based variance, not the coefficients).
    positive = w[rows_all] > 0
    rows = rows_all[positive]
    # The covariates: the model's columns without its intercept at these model rows,
    # which the core reads as it fits (no n x p matrix is made).
    x = CoxCovariates(model.columns, keep, None if positive.all() else np.flatnonzero(positive))
    w_fit = w[rows] / w.mean()
    t_fit, e_fit = t[rows], e[rows] == 1
    if not e_fit.any():
        raise EstimationError(f"{formula}: no events among the rows used; the model cannot be fitted")
    # A linearisation design's covariance is made in the core from the influence values
    # summed to its units, the model's rows (zero weights too) being the domain.
    on_design = {} if design.is_replicate else {"design": design.core, "rows": rows, "domain": rows_all}
    fit = _cox_fit(x, t_fit, e_fit, w_fit, ties, eps, maxit, formula, terms, **on_design)
    coef = np.asarray(fit.coefficients)
    in_fit = np.zeros(design.n_rows, bool)
    in_fit[rows_all] = True
    fit_design = design if in_fit.sum() == scope.sum() else design.subset(in_fit)
    if design.is_replicate:
        reps = design.replicate_weights()[rows] / w.mean() + REPLICATE_EPSILON
        thetas = _core.cox_replicates(
            *x, t_fit, e_fit, w_fit, np.ascontiguousarray(reps), coef.tolist(), ties, eps=eps, maxit=maxit
        )
        vcov = design.replicate_vcov(np.asarray(thetas), coef)
    else:
        vcov = np.asarray(fit.vcov)
    return CoxResult(
        formula=formula,
        ties=ties,
        terms=terms,
        coef=coef,
        vcov=vcov,
        vcov_model=np.asarray(fit.var),
        loglik=tuple(float(v) for v in fit.loglik),
        iterations=int(fit.iterations),
        n=len(rows),
        n_events=int(e_fit.sum()),
        n_removed=n_removed,
        df_residual=fit_design.degf + 1 - len(terms),
        replicate=design.is_replicate,
        level=level,
    )


class CoxCovariates(NamedTuple):
    """A Cox model's covariates as the core reads them: the model's `columns` numbered
    `which`, at the model rows `rows` (None: every row)."""

    columns: _core.ModelColumns
    which: list[int]
    rows: np.ndarray | None


def _cox_fit(x: CoxCovariates, t: np.ndarray, e: np.ndarray, w: np.ndarray, ties: str, eps: float, maxit: int,
             formula: str, terms: list[str], **on_design: Any) -> _core.CoxFit:
    """The core's fit, its errors in the model's terms; with ``design``, ``rows`` and
    ``domain``, the design-based covariance too (``vcov``)."""
    with cox_errors(formula, terms):
        fit = _core.cox_fit(*x, t, e, w, ties, eps=eps, maxit=maxit, **on_design)
    check_cox(fit, formula, terms, maxit)
    return fit


@contextlib.contextmanager
def cox_errors(formula: str, terms: Sequence[str]) -> Iterator[None]:
    """The core's errors of a Cox fit in the model's terms."""
    try:
        yield
    except EstimationError as err:
        if len(err.args) > 1:  # the core's positions of aliased columns
            names = ", ".join(terms[j] for j in err.args[1])
            raise EstimationError(
                f"{formula}: term(s) {names} are aliased (a constant covariate, or a linear "
                "combination of the terms before them); drop them from the formula"
            ) from None
        raise type(err)(f"{formula}: {err}") from None


def check_cox(fit: _core.CoxFit, formula: str, terms: Sequence[str], maxit: int) -> None:
    """R's warnings of a Cox fit as errors: no convergence, a coefficient that may be infinite."""
    if not fit.converged:
        raise ConvergenceError(
            f"{formula}: Newton-Raphson did not converge in {maxit} iterations (R warns 'Ran out "
            "of iterations'); raise maxit, and check for a covariate that separates the events"
        )
    if fit.infinite:
        names = ", ".join(terms[j] for j in fit.infinite)
        raise ConvergenceError(
            f"{formula}: the partial likelihood has no finite maximum in term(s) {names} (a group "
            "with no events, or a covariate that orders the event times perfectly); R warns that "
            "the coefficient may be infinite and returns an arbitrary value: drop or merge the terms"
        )


@dataclass(frozen=True)
class CoxResult(CoefficientModel, Serializable):
    """A design-based Cox model (R's ``svycoxph``).

    ``coef`` (also ``estimate``; log hazard ratios), ``se`` and ``vcov`` (design-based:
    linearisation of the weighted score residuals, or the replicates' spread),
    ``se_model`` and ``vcov_model`` (the inverse information of the weighted fit, R's
    ``se(coef)``), ``hazard_ratio``; z statistics and p-values against the normal, as
    R's ``summary``.  ``df_residual`` is R's ``degf.resid``.
    """

    formula: str
    ties: str
    terms: list[str]
    coef: np.ndarray
    vcov: np.ndarray
    vcov_model: np.ndarray
    loglik: tuple[float, ...]
    iterations: int
    n: int
    n_events: int
    n_removed: int
    df_residual: int
    replicate: bool = False
    level: float = 0.95
    #: The call that made the fit (set by :meth:`Design.coxph`).
    provenance: Provenance | None = field(default=None, repr=False, compare=False)

    @property
    def se_model(self) -> np.ndarray:
        """Model-based standard errors, from the inverse information of the weighted fit
        (R's ``se(coef)``)."""
        return np.sqrt(np.clip(np.diag(self.vcov_model), 0.0, None))

    @property
    def hazard_ratio(self) -> np.ndarray:
        """exp(coef) (R's ``exp(coef)``; Stata's ``stcox`` default display)."""
        return np.exp(self.coef)

    @property
    def z(self) -> np.ndarray:
        """Wald z statistics, coef / design-based se."""
        return self.coef / self.se

    @property
    def p_value(self) -> np.ndarray:
        """Two-sided p-values of the z statistics against the normal, as R's ``summary``."""
        return 2 * stats.norm.sf(np.abs(self.z))

    def wald_test(self) -> tuple[float, int, float]:
        """(statistic, df, p-value) of all coefficients being 0: coef' V^-1 coef on chi^2
        with p df (R's ``wald.test``)."""
        stat = float(self.coef @ np.linalg.solve(self.vcov, self.coef))
        p = len(self.coef)
        return stat, p, float(stats.chi2.sf(stat, p))

    def conf_int(self, level: float | None = None) -> pd.DataFrame:
        """Wald intervals for the coefficients, normal quantiles (R's ``confint``).

        Parameters
        ----------
        level : confidence level; default the fit's.

        Returns
        -------
        pandas.DataFrame
            ``term``, ``ci_low``, ``ci_high`` (log hazard-ratio scale).
        """
        q = critical_value(self.level if level is None else level, None)
        return pd.DataFrame({"term": self.terms, "ci_low": self.coef - q * self.se, "ci_high": self.coef + q * self.se})

    def summary(self, level: float | None = None) -> pd.DataFrame:
        """One row per term, as R's ``summary(svycoxph(...))``: coef, exp(coef), the
        model-based and design-based standard errors, z, p, and the interval for
        exp(coef).  A DataFrame that prints with the model and the design (rows, PSUs,
        strata, design df) above and the Wald test below.

        Parameters
        ----------
        level : confidence level of the intervals; default the fit's.

        Returns
        -------
        pandas.DataFrame
        """
        facts = None if self.provenance is None else self.provenance.facts()
        header = [*self._header().split("\n"), *_display.design_line(facts)]
        return _display.summary_frame(self._coefficients(level), header, [self._footer()])

    def _coefficients(self, level: float | None = None) -> pd.DataFrame:
        ci = self.conf_int(level)
        return pd.DataFrame(
            {
                "term": self.terms,
                "coef": self.coef,
                "exp_coef": self.hazard_ratio,
                "se_model": self.se_model,
                "se": self.se,
                "z": self.z,
                "p_value": self.p_value,
                "exp_ci_low": np.exp(ci["ci_low"]),
                "exp_ci_high": np.exp(ci["ci_high"]),
            }
        )

    def _header(self) -> str:
        removed = f", {self.n_removed} rows with missing values left out" if self.n_removed else ""
        variance = "replicate weights" if self.replicate else "linearisation"
        return (
            f"Survey Cox model {self.formula} ({self.ties} ties)\n"
            f"n = {self.n}, events = {self.n_events}{removed}; se by {variance}; "
            f"{self.level:.0%} CI for exp(coef)"
        )

    def _footer(self) -> str:
        stat, df, p = self.wald_test()
        return f"Wald test = {stat:.4g} on {df} df, p = {p:.3g}"

    def __repr__(self) -> str:
        return _display.text(self._header().split("\n"), self._coefficients(), [self._footer()])

    def _repr_html_(self) -> str:
        return _display.to_html(self._header().split("\n"), self._coefficients(), [self._footer()])


# ---------------------------------------------------------------------------- discrete time
def person_period(data: Any, id: str, time: str, event: str, period: str = "period") -> Any:
    """Person-period data for a discrete-time hazard model: one row per person and
    period at risk.

    Each person (one row of `data`, followed for `time` whole periods) becomes rows for
    periods 1 .. `time`, all other columns copied; `event` becomes the per-period
    outcome, 1 only in the last period of a person whose follow-up ended in the event.
    A binary regression of it on the period (as a factor) and covariates is the
    discrete-time hazard model: with ``link="cloglog"`` the grouped-time proportional
    hazards model.  R: ``survival::survSplit``; Stata: ``expand`` / ``stsplit`` before
    ``svy: cloglog``.

    Parameters
    ----------
    data : pandas or polars DataFrame (or pyarrow Table); the result has the same kind
        (a pyarrow Table gives a polars DataFrame).
    id : the person identifier; one row per person.
    time : whole periods followed, an integer >= 1.
    event : 1 (or True) if follow-up ended in the event, 0 if censored.
    period : name of the new period column (1, 2, ...).

    Returns
    -------
    DataFrame
        The expanded rows, persons in their original order.  Build the design on it with
        the same PSUs, strata and weights (each person's rows stay in one PSU; when
        persons are the PSUs use ``ids=id``), then, e.g.::

            pp = ssc.person_period(df, "pid", "years", "lapsed")
            pp["period"] = pp["period"].astype("category")
            design = ssc.Design(pp, ids="psu", strata="stratum", weights="w")
            design.glm("lapsed ~ period + age", family="binomial", link="cloglog")

    Raises
    ------
    ColumnError : a column is missing, `time` is not a whole number >= 1, `event` not
        0/1, `id` repeats, or `period` is already a column.
    MissingValueError : `id`, `time` or `event` has missing values.
    """
    frame = Frame(data)
    for name in (id, time, event):
        frame.column(name)
        miss = frame.isna(name)
        if miss is not None and miss.any():
            raise MissingValueError(f"column {name!r} has {int(miss.sum())} missing values; drop or impute them first")
    if period in frame.columns:
        raise ColumnError(f"column {period!r} already exists; choose another name with period=")
    t = frame.numeric(time, "time")
    if ((t < 1) | (t != np.round(t))).any():
        bad = int(((t < 1) | (t != np.round(t))).sum())
        raise ColumnError(f"column {time!r} has {bad} values that are not whole numbers of periods >= 1")
    e = event_values(frame, event)
    ids = frame.column(id)
    duplicated = ids.is_duplicated().to_numpy() if isinstance(ids, pl.Series) else ids.duplicated(keep=False).to_numpy()
    if duplicated.any():
        raise ColumnError(
            f"column {id!r} repeats {int(duplicated.sum())} values; person_period needs one row per person"
        )
    reps = t.astype(np.int64)
    starts = np.repeat(np.cumsum(reps) - reps, reps)
    per = np.arange(reps.sum()) - starts + 1
    last = per == np.repeat(reps, reps)
    outcome = (last & (np.repeat(e, reps) == 1)).astype(np.int64)
    index = np.repeat(np.arange(frame.n_rows), reps)
    if isinstance(frame.data, pl.DataFrame):
        return frame.data[index].with_columns(pl.Series(period, per), pl.Series(event, outcome))
    out = frame.data.iloc[index].reset_index(drop=True)
    out[period] = per
    out[event] = outcome
    return out


__all__ = ["SurvivalCurves", "CoxResult", "Curve", "km", "coxph", "person_period"]
