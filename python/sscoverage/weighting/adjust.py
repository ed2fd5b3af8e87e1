"""Weighting a design to population figures: post-stratification, raking, calibration,
trimming and nonresponse adjustment, each returning a new design whose variance carries
the adjustment.

Mirrors R's ``survey::postStratify``, ``rake``, ``calibrate`` and ``trimWeights``
(Stata: ``svycal`` / ``ipfraking``, and ``svyset ..., poststrata() postweight()``).  The
numerics run in the Rust core; here the user's names, levels and totals are matched to
the data, and the core's diagnostics become a :class:`WeightingReport`.

On a linearisation design the variance uses the adjustment as R's ``svyrecvar`` does:
the influence values are replaced by their residuals from the calibration (a weighted
regression on the calibration variables, or post-stratum means).  On a replicate design
every replicate's weights are adjusted the way the full-sample weights are.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
import pandas as pd
import polars as pl

from .. import _core

from ..results import display as _display
from .._frames import Coded, as_pandas
from ..exceptions import (
    OptionError,
    CalibrationError,
    ColumnError,
    ConvergenceError,
    ConvergenceWarning,
    DesignError,
    MissingValueError,
    NotSupportedError,
)
from ..formula import CONTEXT, parse_formula
from ..io.serialize import Serializable, stored_value

if TYPE_CHECKING:
    from ..protocols import SurveyDesign

CALFUNS = ("linear", "raking", "logit")
#: Largest number of level combinations looked up through a dense table.
_DENSE_COMBINATIONS = 1 << 24


@stored_value
@dataclass(frozen=True)
class Adjustment:
    """One weighting step: what was targeted and what the weights reached.

    ``table`` has one row per target: ``term`` (the margin's variables or the model
    column), ``level``, ``target``, ``before`` and ``after`` (weighted totals with the
    weights before and after the step); a step may add columns of its own (the
    nonresponse adjustment: factors and response rates per class).  ``details`` holds
    figures of the whole step (overall response rates, the propensity model).
    """

    method: str
    table: pd.DataFrame
    iterations: int
    converged: bool
    misfit: float
    replicates_not_converged: int = 0
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class WeightingReport(Serializable):
    """Diagnostics of a weighted design (:meth:`Design.weighting_report`).

    ``kish_deff`` is Kish's design effect due to unequal weighting, ``n * sum(w^2) /
    sum(w)^2`` over the rows of non-zero weight, and ``effective_n`` = n / kish_deff;
    ``weights`` summarises their distribution; ``adjustments`` lists each step with its
    achieved against target totals and the iterations used.
    """

    adjustments: list[Adjustment]
    n: int
    weight_sum: float
    kish_deff: float
    effective_n: float
    weights: dict[str, float] = field(default_factory=dict)

    def to_pandas(self) -> pd.DataFrame:
        """Every step's targets in one table, with a ``step`` and ``method`` column."""
        parts = [a.table.assign(step=i + 1, method=a.method) for i, a in enumerate(self.adjustments)]
        if not parts:
            return pd.DataFrame(columns=["step", "method", "term", "level", "target", "before", "after"])
        table = pd.concat(parts, ignore_index=True)
        return table[["step", "method", "term", "level", "target", "before", "after"]]

    def _lines(self) -> list[str]:
        w = self.weights
        lines = [
            f"<WeightingReport: n={self.n}, sum of weights={self.weight_sum:.6g}, "
            f"Kish deff={self.kish_deff:.4f}, effective n={self.effective_n:.1f}>",
            "  weights: " + ", ".join(f"{k}={v:.6g}" for k, v in w.items()),
        ]
        for i, a in enumerate(self.adjustments):
            state = "converged" if a.converged else "NOT converged"
            lines.append(f"  {i + 1}. {a.method}: {a.iterations} iterations, {state}, misfit {a.misfit:.3g}")
        return lines

    def __repr__(self) -> str:
        return "\n".join(self._lines())

    def _repr_html_(self) -> str:
        return _display.to_html(self._lines(), self.to_pandas())


def report(design: "SurveyDesign") -> WeightingReport:
    """The weighting diagnostics of `design` (see :class:`WeightingReport`).

    Parameters
    ----------
    design : the survey design (weighted or not).

    Returns
    -------
    WeightingReport
    """
    w = design.weights
    used = w[w != 0]
    n = len(used)
    total = float(used.sum())
    kish = float(n * np.square(used).sum() / total**2) if n else float("nan")
    summary = {}
    if n:
        q = np.quantile(used, [0.0, 0.25, 0.5, 0.75, 1.0])
        summary = {
            "min": q[0], "q25": q[1], "median": q[2], "q75": q[3], "max": q[4],
            "mean": float(used.mean()),
            "cv": float(used.std() / used.mean()),
            "max/min": float(q[4] / q[0]) if q[0] > 0 else float("inf"),
            "negative": float((used < 0).sum()),
        }
    return WeightingReport(
        adjustments=list(getattr(design, "adjustments", ())),
        n=n,
        weight_sum=total,
        kish_deff=kish,
        effective_n=n / kish if n else 0.0,
        weights=summary,
    )


# ---------------------------------------------------------------------- the four steps
def poststratify(design: "SurveyDesign", strata: Any, population: Any, partial: bool = False) -> "SurveyDesign":
    """Post-stratify `design`; see :meth:`sscoverage.Design.poststratify`.

    Parameters
    ----------
    design : the survey design.
    strata, population, partial : as for :meth:`sscoverage.Design.poststratify`.

    Returns
    -------
    SurveyDesign
        A new design; `design` is unchanged.
    """
    variables = margin_variables(strata, "strata")
    pop = population_counts(population, variables, "population")
    cells, targets, labels = _cells(design, variables, pop)
    if partial:
        # R's partial=TRUE: post-strata with no sample weight are left out of the targets.
        sample = np.bincount(cells, weights=design.weights, minlength=len(targets))
        targets = np.where(sample == 0, 0.0, targets)
    name = ":".join(variables)
    try:
        core, info = _core.poststratify(design.core, cells, targets)
    except CalibrationError as err:
        raise named_cell_error(err, [name], [labels], post_stratum=True) from None
    table = pd.DataFrame({"term": name, "level": labels, "target": targets, "before": info.before, "after": info.after})
    return _adjusted(design, core, Adjustment("poststratify", table, info.iterations, info.converged, info.misfit))


def rake(design: "SurveyDesign", margins: Any, control: Mapping[str, Any] | None = None, force: bool = False) -> "SurveyDesign":
    """Rake `design` to `margins`; see :meth:`sscoverage.Design.rake`.

    Parameters
    ----------
    design : the survey design.
    margins, control, force : as for :meth:`sscoverage.Design.rake`.

    Returns
    -------
    SurveyDesign
        A new design; `design` is unchanged.
    """
    control = {"maxit": 10, "epsilon": 1.0, **(control or {})}
    coded = []
    names: list[str] = []
    all_labels: list[list[str]] = []
    for strata, population in margin_pairs(margins):
        variables = margin_variables(strata, "margin")
        pop = population_counts(population, variables, "margin population")
        cells, targets, labels = _cells(design, variables, pop)
        coded.append((cells, targets))
        names.append(":".join(variables))
        all_labels.append(labels)
    try:
        core, info = _core.rake(design.core, coded, maxit=int(control["maxit"]), epsilon=float(control["epsilon"]))
    except CalibrationError as err:
        raise named_cell_error(err, names, all_labels) from None
    return _adjusted(design, core, rake_step(names, [t for _, t in coded], all_labels, info, force))


def rake_step(names: list[str], targets: list[np.ndarray], all_labels: list[list[str]], info: "_core.WeightingReport",
               force: bool) -> Adjustment:
    """A rake's record (targets against totals before and after, margin by margin), or
    its refusal when the sweeps did not converge (unless `force`)."""
    table = pd.DataFrame({
        "term": [names[m] for m, t in enumerate(targets) for _ in t],
        "level": [lv for labels in all_labels for lv in labels],
        "target": np.concatenate(targets),
        "before": info.before,
        "after": info.after,
    })
    if not info.converged:
        worst = _furthest(table)
        message = (
            f"raking did not converge in {info.iterations} sweeps (a cell still changed by "
            f"{info.misfit:.4g}); margin {worst['term']} is furthest from its targets: level "
            f"{worst['level']!r} reached {worst['after']:.6g} for a target of {worst['target']:.6g}. "
            "Raise control['maxit'], or check that the margins can be met together"
        )
        _not_converged(message, info, force)
    return Adjustment("rake", table, info.iterations, info.converged, info.misfit)


def calibrate(
    design: "SurveyDesign",
    formula: str,
    population: Any,
    calfun: str = "linear",
    bounds: Sequence[float] | None = None,
    epsilon: float = 1e-7,
    maxit: int = 50,
    force: bool = False,
) -> "SurveyDesign":
    """Calibrate `design`; see :meth:`sscoverage.Design.calibrate`.

    Parameters
    ----------
    design : the survey design.
    formula, population, calfun, bounds, epsilon, maxit, force : as for :meth:`sscoverage.Design.calibrate`.

    Returns
    -------
    SurveyDesign
        A new design; `design` is unchanged.
    """
    if calfun not in CALFUNS:
        raise OptionError(f"calfun={calfun!r}; use one of {', '.join(CALFUNS)}")
    lower, upper = (-np.inf, np.inf) if bounds is None else (float(bounds[0]), float(bounds[1]))
    x, terms = _model_matrix(design, formula)
    targets = _totals(population, terms, formula)
    w = design.weights
    sample = w @ x
    for j, term in enumerate(terms):
        if sample[j] == 0 and targets[j] != 0:
            raise CalibrationError(
                f"{term!r} has a population total of {targets[j]:.6g} but no sample weight: "
                "a category in the targets is absent from the sample"
            )
        if targets[j] < 0 and (x[:, j] >= 0).all():
            raise CalibrationError(
                f"{term!r} has a negative population total ({targets[j]:.6g}), but its values "
                "are never negative"
            )
    try:
        core, info = _core.calibrate(
            design.core, x, targets, calfun, lower=lower, upper=upper, epsilon=float(epsilon), maxit=int(maxit)
        )
    except CalibrationError as err:
        if len(err.args) < 4 or err.args[1] != "columns":
            raise
        _, _, columns, problem = err.args
        names = ", ".join(repr(terms[j]) for j in columns)
        raise CalibrationError(f"{'term' if len(columns) == 1 else 'terms'} {names}: {problem}") from None
    table = pd.DataFrame({"term": terms, "level": None, "target": targets, "before": info.before, "after": info.after})
    if not info.converged:
        worst = _furthest(table)
        hint = " or the bounds may be infeasible" if bounds is not None else ""
        _not_converged(
            f"calibration ({calfun}) did not converge in {info.iterations} iterations: the largest "
            f"|misfit|/(1+|target|) is {info.misfit:.4g} (epsilon {epsilon}), for {worst['term']!r} "
            f"({worst['after']:.6g} against {worst['target']:.6g}); raise maxit{hint}",
            info,
            force,
        )
    if info.replicates_not_converged:
        warnings.warn(
            f"{info.replicates_not_converged} replicates did not converge in their own calibration; "
            "they are kept as they ended (as R)",
            ConvergenceWarning,
            stacklevel=3,
        )
    step = Adjustment("calibrate", table, info.iterations, info.converged, info.misfit,
                      int(info.replicates_not_converged))
    return _adjusted(design, core, step)


def trim_weights(design: "SurveyDesign", lower: float = -np.inf, upper: float = np.inf, strict: bool = False) -> "SurveyDesign":
    """Trim the weights of `design`; see :meth:`sscoverage.Design.trim_weights`.

    Parameters
    ----------
    design : the survey design.
    lower, upper, strict : as for :meth:`sscoverage.Design.trim_weights`.

    Returns
    -------
    SurveyDesign
        A new design; `design` is unchanged.
    """
    _whole(design)
    core, info = _core.trim_weights(design.core, lower=float(lower), upper=float(upper), strict=bool(strict))
    table = pd.DataFrame({"term": "sum of weights", "level": None, "target": info.before,
                          "before": info.before, "after": info.after})
    return _adjusted(design, core, Adjustment("trim_weights", table, info.iterations, True, 0.0))


# ---------------------------------------------------------------------- nonresponse
#: The hidden weight column a design is rebuilt on with its nonrespondents at weight 0.
_NR_WEIGHT = "__ssc_nonresponse_weight__"


def adjust_nonresponse(
    design: "SurveyDesign",
    respondent: str,
    classes: Any = None,
    propensity: str | None = None,
    n_classes: int | None = 5,
) -> "SurveyDesign":
    """Adjust `design` for unit nonresponse; see :meth:`sscoverage.Design.adjust_nonresponse`.

    Within a class the respondents are post-stratified to the class's full-sample
    weighted count.  That is R's ``postStratify(subset(design, resp == 1), ~class,
    pop)`` with ``pop`` the full-sample totals (``svytable(~class, design)``), and it is
    built as R builds it:

    1. R's ``subset`` of an uncalibrated design drops the nonrespondents' rows, and its
       variance pads their PSUs with zeros (the PSU counts are the full sample's).
       Here they stay as rows of weight exactly 0: the design is built again from its
       constructor's arguments on the weights times the respondent indicator (no step
       of the core zeroes weights without a variance term, and a calibration to 0
       leaves rounding-size weights).  Influence values of zero-weight rows are 0, so
       the variance is R's.
    2. :func:`poststratify`'s core step with the respondents in their class's cell
       (target: the class's full-sample total) and the nonrespondents in a cell of
       their own (no weight, target 0: ratio 1, and no residual term since the cell
       has no weight).  The variance uses R's post-stratification residuals (weighted
       by the old weights) over the respondents.

    Parameters
    ----------
    design : the survey design, not yet weighted.
    respondent, classes, propensity, n_classes : as for
        :meth:`sscoverage.Design.adjust_nonresponse`.

    Returns
    -------
    SurveyDesign
        A new design; `design` is unchanged.
    """
    _whole(design)
    if (classes is None) == (propensity is None):
        raise OptionError("give the weighting classes (classes=) or a response-propensity model (propensity=)")
    responded = _respondents(design, respondent)
    w = design.weights
    details: dict[str, Any] = {
        "respondent": respondent,
        "sampled": int(len(w)),
        "respondents": int(responded.sum()),
        "response_rate": float(responded.mean()) if len(w) else float("nan"),
        "weighted_response_rate": float(w[responded].sum() / w.sum()) if w.sum() > 0 else float("nan"),
    }
    extra: dict[str, np.ndarray] = {}
    if propensity is not None:
        p, model = _propensities(design, respondent, propensity)
        details.update(propensity=model.formula, coefficients=dict(zip(model.terms, map(float, model.coef))))
        if n_classes is None:
            return _divide(design, responded, p, details)
        if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) or n_classes < 1:
            raise OptionError(f"n_classes={n_classes!r}: give a positive whole number, or None to divide by the propensity")
        cells, labels = _propensity_classes(p, w, int(n_classes))
        term = "propensity class"
        details["n_classes"] = len(labels)
        k = len(labels)
        wsum = np.bincount(cells, weights=w, minlength=k)
        with np.errstate(invalid="ignore", divide="ignore"):
            extra = {
                "propensity_min": np.array([p[cells == c].min() for c in range(k)]),
                "propensity_max": np.array([p[cells == c].max() for c in range(k)]),
                "propensity_mean": np.bincount(cells, weights=w * p, minlength=k) / wsum,
            }
    else:
        variables = margin_variables(classes, "classes")
        cells, labels = _class_cells(design, variables)
        term = ":".join(variables)
    return _adjust_in_classes(design, responded, cells, labels, term, details, extra)


def _respondents(design: "SurveyDesign", respondent: str) -> np.ndarray:
    """The respondent column as booleans: a logical column, or numbers 0 / 1."""
    if not isinstance(respondent, str):
        raise OptionError("respondent must be the name of a column (1 or True for a respondent)")
    values = as_pandas(design.frame.column(respondent))
    missing = values.isna().to_numpy()
    if missing.any():
        raise MissingValueError(
            f"respondent column {respondent!r} has {int(missing.sum())} missing values (e.g. row "
            f"{int(np.argmax(missing))}); every sampled unit must be a respondent (1) or not (0)"
        )
    if pd.api.types.is_bool_dtype(values.dtype):
        return values.to_numpy(dtype=bool)
    if pd.api.types.is_numeric_dtype(values.dtype):
        x = values.to_numpy(dtype=np.float64)
        bad = (x != 0) & (x != 1)
        if not bad.any():
            return x == 1
        shown = ", ".join(map(repr, pd.unique(values[bad])[:3]))
        raise ColumnError(
            f"respondent column {respondent!r} must be 0/1 or logical; it has {int(bad.sum())} other "
            f"values ({shown})"
        )
    raise ColumnError(
        f"respondent column {respondent!r} must be 0/1 or logical, not {values.dtype} "
        f"(e.g. {values.iloc[0]!r}); recode it, e.g. to status == 'complete'"
    )


def _complete_codes(design: "SurveyDesign", variables: list[str], role: str, advice: str) -> list[Coded]:
    """The codes of each variable, refused with `advice` where a value is missing."""
    coded = []
    for v in variables:
        c = design.frame.codes(v, role)
        if c.missing is not None:
            raise MissingValueError(f"{role} {v!r} has {int(c.missing.sum())} missing values; {advice}")
        coded.append(c)
    return coded


def _class_cells(design: "SurveyDesign", variables: list[str]) -> tuple[np.ndarray, list[str]]:
    """Each row's weighting class (the combinations of `variables` present) and labels."""
    coded = _complete_codes(
        design, variables, "weighting-class variable",
        "every sampled unit, respondent or not, needs a class: recode them (e.g. to a class of their own)",
    )
    codes = np.column_stack([c.codes.astype(np.int64) for c in coded])
    present, cells = np.unique(codes, axis=0, return_inverse=True)
    labels = [":".join(level_key(c.labels[int(i)]) for c, i in zip(coded, row)) for row in present]
    return cells.reshape(-1).astype(np.uint32), labels


def _propensities(design: "SurveyDesign", respondent: str, formula: str) -> tuple[np.ndarray, Any]:
    """Fitted response propensities of every row from the design-weighted logistic model
    ``respondent ~ <formula>`` (R's ``svyglm(..., family=quasibinomial)``)."""
    text = formula.strip()
    if "~" in text:
        lhs, text = (t.strip() for t in text.split("~", 1))
        if lhs and lhs.strip("`") != respondent:
            raise OptionError(
                f"the propensity model {formula!r} has the outcome {lhs!r}; give its right-hand side "
                f"(the outcome is the respondent column {respondent!r})"
            )
    name = respondent if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", respondent) else f"`{respondent}`"
    fit = design.glm(f"{name} ~ {text}", family="quasibinomial")
    if fit.n_removed:
        raise MissingValueError(
            f"the propensity model ~{text} has missing values in {fit.n_removed} rows; every sampled "
            "unit needs a propensity: drop those variables or impute them"
        )
    pred = fit.predict(type="response", se=False).to_pandas()
    p = np.empty(design.n_rows)
    p[pred["row"].to_numpy(dtype=np.int64)] = pred["estimate"].to_numpy(dtype=np.float64)
    return p, fit


def _propensity_classes(p: np.ndarray, w: np.ndarray, k: int) -> tuple[np.ndarray, list[str]]:
    """Classes of equal weighted size by propensity: class j holds the rows with p in
    (q_{j-1}, q_j], q_j the weighted j/k quantile (the smallest p whose weighted share
    at or below it reaches j/k); rows of equal p share a class, empty classes are dropped."""
    order = np.argsort(p, kind="stable")
    share = np.cumsum(w[order]) / w.sum()
    at = np.minimum(np.searchsorted(share, np.arange(1, k) / k, side="left"), len(p) - 1)
    cuts = p[order][at]
    raw = np.searchsorted(cuts, p, side="left")
    present, cells = np.unique(raw, return_inverse=True)
    labels = [str(int(j) + 1) for j in present]
    return cells.reshape(-1).astype(np.uint32), labels


def _adjust_in_classes(
    design: "SurveyDesign",
    responded: np.ndarray,
    cells: np.ndarray,
    labels: list[str],
    term: str,
    details: dict[str, Any],
    extra: Mapping[str, np.ndarray],
) -> "SurveyDesign":
    k = len(labels)
    w = design.weights
    n = np.bincount(cells, minlength=k)
    n_resp = np.bincount(cells[responded], minlength=k)
    total = np.bincount(cells, weights=w, minlength=k)
    resp_total = np.bincount(cells[responded], weights=w[responded], minlength=k)
    empty = (resp_total <= 0) & (total > 0)
    if empty.any():
        names = ", ".join(f"{term} = {labels[c]!r} ({n[c]} sampled, {n_resp[c]} responded)" for c in np.flatnonzero(empty))
        raise CalibrationError(
            f"weighting class {names} has no respondents with positive weight, so nobody can carry "
            "its weight: merge it with a neighbouring class" + (" or use fewer propensity classes" if extra else "")
        )
    base = _reweighted(design, np.where(responded, w, 0.0)) if (~responded & (w != 0)).any() else design
    cell = np.where(responded, cells, k).astype(np.uint32)
    targets = np.append(np.where(resp_total > 0, total, 0.0), 0.0)
    try:
        core, info = _core.poststratify(base.core, np.ascontiguousarray(cell), targets)
    except CalibrationError as err:
        raise named_cell_error(err, [term], [[*labels, "nonrespondents"]], post_stratum=True) from None
    with np.errstate(invalid="ignore", divide="ignore"):
        table = pd.DataFrame({
            "term": term,
            "level": labels,
            "target": total,
            "before": resp_total,
            "after": info.after[:k],
            "factor": total / resp_total,
            "n": n,
            "n_respondents": n_resp,
            "response_rate": n_resp / n,
            "weighted_response_rate": resp_total / total,
            **extra,
        })
    method = "nonresponse (propensity classes)" if extra else "nonresponse (weighting classes)"
    step = Adjustment(method, table, info.iterations, info.converged, info.misfit, details=details)
    return _adjusted(base, core, step)


def _divide(design: "SurveyDesign", responded: np.ndarray, p: np.ndarray, details: dict[str, Any]) -> "SurveyDesign":
    """Respondents' weights divided by their propensity, nonrespondents' set to 0.

    No step with a variance term is added: the design is built again on the adjusted
    weights, which the variance then takes as sampling weights (R: ``svydesign(...,
    weights=~w_adj)``); the error in the estimated propensities is not carried into it."""
    w = design.weights
    new_w = np.where(responded, w / p, 0.0)
    new = _reweighted(design, new_w)
    total, before, after = float(w.sum()), float(w[responded].sum()), float(new_w.sum())
    details = {**details, "factor_min": float(np.min(1 / p[responded])), "factor_max": float(np.max(1 / p[responded]))}
    table = pd.DataFrame({"term": "respondents", "level": None, "target": [total], "before": [before], "after": [after]})
    step = Adjustment("nonresponse (propensity)", table, 1, True, abs(after - total) / (1 + total), details=details)
    new.adjustments = (*getattr(design, "adjustments", ()), step)
    new.spec = {**design.spec, "weighting": [a.method for a in new.adjustments]}
    return new


def _reweighted(design: "SurveyDesign", weights: np.ndarray) -> "SurveyDesign":
    """`design` built again with these sampling weights: its constructor's arguments
    (and its ``as_replicates`` call, if any) replayed on a hidden weight column."""
    recipe = getattr(design, "recipe", ())
    steps = [name for name, _ in recipe]
    if not steps or steps[0] != "Design" or steps[1:] not in ([], ["as_replicates"]):
        done = ", ".join(steps[1:]) or "a design not built by ssc.Design(...)"
        raise NotSupportedError(
            "adjust for nonresponse first: it builds the design again on the adjusted weights "
            "(nonrespondents at 0), which needs a design straight from ssc.Design(...), optionally "
            f"with .as_replicates(...); this one has {done}"
        )
    options = {**recipe[0][1], "weights": _NR_WEIGHT, "probs": None, "subset": None}
    new = type(design)(design.frame.with_columns({_NR_WEIGHT: weights}).data, **options)
    if len(steps) == 2:
        new = new.as_replicates(**recipe[1][1])
    new.frame = design.frame
    new.spec = dict(design.spec)
    return new


# ---------------------------------------------------------------------- helpers
def _whole(design: "SurveyDesign") -> None:
    if design.is_subset:
        raise DesignError(
            "weight the whole design, then take the subset: weighting a subset (a domain) is not supported"
        )


def _adjusted(design: "SurveyDesign", core: Any, step: Adjustment) -> "SurveyDesign":
    """A copy of `design` (same class) on the adjusted core design, with `step` recorded."""
    new = object.__new__(type(design))
    new.__dict__.update(design.__dict__)
    new.core = core
    new.adjustments = (*getattr(design, "adjustments", ()), step)
    new.spec = {**design.spec, "weighting": [a.method for a in new.adjustments]}
    return new


def _furthest(table: pd.DataFrame) -> pd.Series:
    """The target that the adjusted weights miss by the most (relative)."""
    gap = (table["after"] - table["target"]).abs() / (1 + table["target"].abs())
    return table.loc[gap.idxmax()]


def _not_converged(message: str, info: "_core.WeightingReport", force: bool) -> None:
    if not force:
        err = ConvergenceError(message + "; or pass force=True to keep these weights")
        err.misfit = float(info.misfit)
        err.iterations = int(info.iterations)
        raise err
    warnings.warn(message, ConvergenceWarning, stacklevel=4)


def named_cell_error(err: CalibrationError, names: list[str], labels: list[list[str]],
                     post_stratum: bool = False) -> CalibrationError:
    """The core's error at a weighting cell (margin, level) in the user's names and
    level labels: "post-stratum stype = 'H' ...", "margin sch.wide level 'No' ...".

    Parameters
    ----------
    err : the core's CalibrationError; its arguments locate the cell.
    names : each margin's name (one for post-stratification).
    labels : each margin's level labels.
    post_stratum : the cells are post-strata (one margin).
    """
    if len(err.args) != 5 or err.args[1] != "cell":
        return CalibrationError(str(err))
    _, _, margin, level, problem = err.args
    if post_stratum:
        where = f"post-stratum {names[0]}" + ("" if level is None else f" = {labels[0][level]!r}")
    else:
        where = f"margin {names[margin]}" + ("" if level is None else f" level {labels[margin][level]!r}")
    return CalibrationError(f"{where} {problem}")

def margin_variables(strata: Any, role: str) -> list[str]:
    """Column names of a strata / margin specification: ``"~a+b"``, ``"a"`` or ``["a", "b"]``."""
    if isinstance(strata, str):
        text = strata.strip()
        if text.startswith("~"):
            names = [t.strip().strip("`") for t in re.split(r"[+*:]", text[1:])]
            if not all(names):
                raise OptionError(f"cannot read the {role} formula {strata!r}: write '~a' or '~a+b'")
            return list(dict.fromkeys(names))
        return [text]
    names = list(strata)
    if not names or not all(isinstance(n, str) for n in names):
        raise OptionError(f"{role} must be a formula, a column name or a list of column names")
    return names


def population_counts(population: Any, variables: list[str], role: str) -> tuple[list[tuple[Any, ...]], np.ndarray]:
    """Population counts: the levels of each cell (one tuple per cell) and the counts.

    Accepts a pandas / polars DataFrame (the count column: ``Freq``, or the one column
    that is not a variable, as R), a list of rows ``{"<var>": level, ..., "Freq": n}``, a
    dict level -> count (one variable) or tuple of levels -> count, or a Series indexed
    by the levels.
    """
    if isinstance(population, pl.DataFrame):
        population = population.to_pandas()
    if isinstance(population, pd.Series):
        population = dict(population.items())
    if isinstance(population, Mapping):
        levels = [k if isinstance(k, tuple) else (k,) for k in population]
        counts = list(population.values())
        if any(len(k) != len(variables) for k in levels):
            raise CalibrationError(f"{role}: a dict of counts needs keys with one level per variable of {variables}")
    else:
        frame = population if isinstance(population, pd.DataFrame) else pd.DataFrame(list(population))
        missing = [v for v in variables if v not in frame.columns]
        if missing:
            raise ColumnError(f"{role} has no column {missing[0]!r}: it needs one column per variable of {variables}")
        others = [c for c in frame.columns if c not in variables]
        count = "Freq" if "Freq" in others else (others[0] if len(others) == 1 else None)
        if count is None:
            raise ColumnError(f"{role} needs a count column 'Freq' besides the variables {variables}")
        levels = list(zip(*(frame[v].tolist() for v in variables)))
        counts = frame[count].tolist()
    values = np.array([float(c) if isinstance(c, (int, float, np.number)) else np.nan for c in counts])
    bad = ~(values >= 0) | ~np.isfinite(values)
    if bad.any():
        r = int(np.argmax(bad))
        raise CalibrationError(
            f"{role}: the count for {describe_levels(variables, list(levels[r]))} is {counts[r]}; "
            "population counts must be non-negative numbers"
        )
    return levels, values


def level_key(value: Any) -> str:
    """A level as R's as.character writes it, so that 1, 1.0 and "1" match."""
    if isinstance(value, (bool, np.bool_)):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def describe_levels(variables: list[str], levels: list[Any]) -> str:
    return ", ".join(f"{v} = {lv}" for v, lv in zip(variables, levels))


def _cells(
    design: "SurveyDesign", variables: list[str], pop: tuple[list[tuple[Any, ...]], np.ndarray]
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Each row's cell (a cell of the population `pop`, as :func:`population_counts` gives
    it), the cells' counts and labels.

    A category in the sample but not among the targets is an error here, and so is a
    target with a positive count for a level the data never take; a category with rows
    but no sample weight is found by the core.
    """
    _whole(design)
    coded = _complete_codes(
        design, variables, "weighting variable",
        "every row needs a category (R's na.fail): drop or impute them first",
    )
    levels, targets = pop
    keys = [tuple(level_key(v) for v in row) for row in levels]
    seen: set[tuple[str, ...]] = set()
    for k in keys:
        if k in seen:
            raise CalibrationError(f"the targets list {describe_levels(variables, list(k))} twice")
        seen.add(k)
    sizes = [len(c.labels) for c in coded]
    strides = np.cumprod([1, *sizes[::-1]])[::-1][1:]
    index = [{level_key(lv): i for i, lv in enumerate(c.labels)} for c in coded]
    labels = [":".join(k) for k in keys]
    # The mixed-radix number of each population row's levels among the data's levels.
    combos = np.full(len(keys), -1, dtype=np.int64)
    for r, k in enumerate(keys):
        pos = [ix.get(lv) for ix, lv in zip(index, k)]
        if None in pos:
            if targets[r] > 0:
                raise CalibrationError(
                    f"the targets give {describe_levels(variables, list(k))} a count of {targets[r]:.6g}, "
                    "but no row of the sample is in that category"
                )
            continue
        combos[r] = int(np.dot(pos, strides))
    if len(coded) == 1:
        code = coded[0].codes
    else:
        code = np.zeros(design.n_rows, dtype=np.int64)
        for c, s in zip(coded, strides):
            code += c.codes.astype(np.int64) * int(s)
    total = int(np.prod(sizes, dtype=np.float64))
    absent = np.iinfo(np.uint32).max
    listed = combos >= 0
    if total <= _DENSE_COMBINATIONS and listed.sum() == total:
        # Every combination of the data's levels has a target: the cells are the
        # combinations themselves, the targets put in their order (no pass over rows).
        row_of = np.empty(total, dtype=np.int64)
        row_of[combos[listed]] = np.flatnonzero(listed)
        cells = code.astype(np.uint32, copy=False)
        return np.ascontiguousarray(cells), np.ascontiguousarray(targets[row_of]), [labels[i] for i in row_of]
    if total <= _DENSE_COMBINATIONS:
        lookup = np.full(total, absent, dtype=np.uint32)
        lookup[combos[combos >= 0]] = np.flatnonzero(combos >= 0)
        cells = lookup[code]
    else:
        order = np.argsort(combos)
        pos = np.searchsorted(combos[order], code).clip(0, len(combos) - 1)
        cells = np.where(combos[order][pos] == code, order[pos], absent).astype(np.uint32)
    unlisted = cells == absent
    if unlisted.any():
        r = int(np.argmax(unlisted))
        levels = [c.labels[int(c.codes[r])] for c in coded]
        raise CalibrationError(
            f"{int(unlisted.sum())} sample rows are in a category the targets do not list, e.g. "
            f"{describe_levels(variables, levels)} (row {r}): give its population count"
        )
    return cells, np.ascontiguousarray(targets), labels


def margin_pairs(margins: Any) -> list[tuple[Any, Any]]:
    """(strata, population) pairs from a list of pairs, a list of
    ``{"formula", "population"}`` dicts, or a dict variable -> population."""
    if isinstance(margins, Mapping):
        return list(margins.items())
    out = []
    for m in margins:
        if isinstance(m, Mapping):
            out.append((m["formula"], m["population"]))
        else:
            strata, population = m
            out.append((strata, population))
    if not out:
        raise CalibrationError("rake needs at least one margin")
    return out


def _model_matrix(design: "SurveyDesign", formula: str) -> tuple[np.ndarray, list[str]]:
    """R's ``model.matrix(formula)`` on every row of the design, with R's column names."""
    from formulaic import model_matrix

    from ..models.glm import as_model_variable, r_names

    _whole(design)
    frame = design.frame
    checked = parse_formula(formula, list(frame.columns), lhs="none")
    data = pd.DataFrame(index=range(frame.n_rows))
    factors = []
    for name, column in zip(checked.names, checked.variables):
        values = as_pandas(frame.column(column)).reset_index(drop=True)
        if values.isna().any():
            raise MissingValueError(
                f"calibration variable {column!r} has {int(values.isna().sum())} missing values; "
                "every row of the design needs a value"
            )
        data[name] = as_model_variable(values, column, None)
        if isinstance(data[name].dtype, pd.CategoricalDtype):
            factors.append(name)
    try:
        mm = model_matrix(checked.text, data, na_action="raise", context=CONTEXT)
    except Exception as err:  # formulaic's errors have many classes
        raise OptionError(f"cannot build the model matrix of {formula!r}: {err}") from None
    terms = r_names(list(mm.columns), data, factors, checked.aliases, checked.logical_terms)
    return np.ascontiguousarray(mm.to_numpy(dtype=np.float64)), terms


def _totals(population: Any, terms: list[str], formula: str) -> np.ndarray:
    """Population totals in model-matrix column order, from a dict / Series name ->
    total or a DataFrame (one row with a column per name, or name and total columns)."""
    if isinstance(population, pl.DataFrame):
        population = population.to_pandas()
    if isinstance(population, pd.DataFrame):
        if len(population) == 1:
            population = population.iloc[0].to_dict()
        elif population.shape[1] == 2:
            population = dict(zip(population.iloc[:, 0], population.iloc[:, 1]))
        else:
            raise CalibrationError("population totals: give one row of totals, or a name and a total column")
    totals = dict(population.items()) if isinstance(population, (Mapping, pd.Series)) else None
    if totals is None:
        values = np.asarray(population, dtype=np.float64)
        if values.shape != (len(terms),):
            raise CalibrationError(
                f"{len(values)} population totals for the {len(terms)} columns {terms} of {formula!r}"
            )
        return values
    unknown = [k for k in totals if k not in terms]
    if unknown:
        raise CalibrationError(
            f"population totals name {unknown}, which are not columns of the model matrix of "
            f"{formula!r} ({terms}): a category in the targets is absent from the sample, or misnamed"
        )
    lacking = [t for t in terms if t not in totals]
    if lacking:
        raise CalibrationError(
            f"no population total for {lacking} (model matrix of {formula!r}): a category in the "
            "sample is absent from the targets"
        )
    return np.array([float(totals[t]) for t in terms])
