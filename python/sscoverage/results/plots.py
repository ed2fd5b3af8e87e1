"""Plots of survey results, drawn with matplotlib (imported only when a plot is asked
for).  Each function draws on the Axes given, or on a new figure's, and returns it.

The result objects call these from their ``plot()`` methods: estimates by domain
(:meth:`Estimates.plot`), coverage tables, model coefficients, survival curves and
threshold profiles (titled, proportions on % axes, many categories as horizontal dots
with intervals: :func:`dot_interval`);
:func:`weights` shows a design's weights, before and after an adjustment.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from ..exceptions import OptionError

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from ..protocols import SurveyDesign
    from ..protocols import EstimateTable


def get_axes(ax: Axes | None) -> Axes:
    """The Axes to draw on: `ax` itself, or those of a new figure.

    Parameters
    ----------
    ax : matplotlib Axes, or None for a new figure (``plt.subplots()``).

    Returns
    -------
    matplotlib.axes.Axes
    """
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    return plt.subplots()[1]


def dot_interval(
    ax: Axes,
    labels: Sequence[str],
    estimate: Any,
    low: Any,
    high: Any,
    title: str | None = None,
    percent: bool = True,
    groups: Sequence[str] | None = None,
    xlabel: str | None = None,
) -> Axes:
    """Horizontal dots with interval lines, one row per label (read top down): the
    published form for many categories.

    Parameters
    ----------
    ax : Axes to draw on.
    labels : one row label per estimate; rows with the same label share a line.
    estimate, low, high : the estimates and interval limits.
    title : the chart's title.
    percent : estimates are proportions: a 0-100 % axis.
    groups : one group per estimate (dodged within a row, one colour each, legend
        below the plot); None for one series.
    xlabel : axis label.

    Returns
    -------
    matplotlib.axes.Axes
        One errorbar container per group.
    """
    e, lo, hi = (np.asarray(v, dtype=np.float64) for v in (estimate, low, high))
    rows = list(dict.fromkeys(labels))
    at = {name: i for i, name in enumerate(rows)}
    y = np.array([at[name] for name in labels], dtype=np.float64)
    names = list(dict.fromkeys(groups)) if groups is not None else [None]
    step = 0.7 / max(len(names), 1)
    for k, g in enumerate(names):
        sel = np.ones(len(e), bool) if g is None else np.asarray([x == g for x in groups])
        offset = (k - (len(names) - 1) / 2) * step
        err = np.clip(np.vstack([e[sel] - lo[sel], hi[sel] - e[sel]]), 0, None)
        ax.errorbar(e[sel], y[sel] + offset, xerr=err, fmt="o", markersize=4, capsize=0, elinewidth=1.2,
                    label=None if g is None else str(g))
    ax.set_yticks(np.arange(len(rows)), rows)
    ax.set_ylim(len(rows) - 0.5, -0.5)  # first row at the top
    ax.grid(axis="x", color="#e5e5e5", linewidth=0.8)
    ax.set_axisbelow(True)
    ax.spines[["top", "right", "left"]].set_visible(False)
    ax.tick_params(axis="y", length=0)
    if percent:
        from matplotlib.ticker import PercentFormatter

        ax.xaxis.set_major_formatter(PercentFormatter(xmax=1, decimals=0))
        ax.set_xlim(0, min(1.0, max(0.05, float(np.nanmax(hi)) * 1.08)) if np.isfinite(hi).any() else 1.0)
    if xlabel:
        ax.set_xlabel(xlabel)
    if title:
        ax.set_title(title, fontsize=10, loc="left")
    if groups is not None:
        wide = sum(len(str(n)) for n in names) > 60
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.06 if not xlabel else -0.12),
                  ncol=min(len(names), 3 if wide else 5), frameon=False, fontsize=8)
    return ax


def estimates(est: EstimateTable, ax: Axes | None = None, sort: bool = True, group: str | None = None) -> Axes:
    """Point estimates with their confidence intervals, one row per estimate.

    Parameters
    ----------
    est : the estimates (``ci_low`` and ``ci_high`` give the bars).
    ax : Axes to draw on; default a new figure's.
    sort : order the rows of each group by their estimate.
    group : a label column (a ``by`` column, ``variable`` or ``level``) whose values
        get one colour each, in a legend; default the first ``by`` column when the rows
        have more than one label column.

    Returns
    -------
    matplotlib.axes.Axes
        One errorbar container per group (points and interval lines).
    """
    ax = get_axes(ax)
    t = est.table.reset_index(drop=True)
    labels = [c for c in est.by if c in t]
    for inner in ("level", "variable", "quantile"):
        if inner in t and t[inner].notna().any() and t[inner].nunique() > 1:
            labels.append(inner)
    if group is None and len(labels) > 1:
        group = labels[0]
    if group is not None and group not in t:
        raise OptionError(f"group={group!r} is not a column of the estimates ({', '.join(labels)})")
    shown = [c for c in labels if c != group]
    groups = list(pd.unique(t[group])) if group is not None else [None]
    ticks: list[float] = []
    names: list[str] = []
    y = 0.0
    for g in groups:
        part = t if g is None else t[t[group] == g]
        if sort:
            part = part.sort_values("estimate", kind="stable")
        pos = y + np.arange(len(part))
        e = part["estimate"].to_numpy(dtype=np.float64)
        err = np.vstack([e - part["ci_low"].to_numpy(dtype=np.float64), part["ci_high"].to_numpy(dtype=np.float64) - e])
        # An interval read from a step function (a quantile's) may end at the estimate or
        # just short of it; matplotlib refuses negative bar lengths.
        ax.errorbar(e, pos, xerr=np.clip(err, 0, None), fmt="o", capsize=3, label=None if g is None else str(g))
        ticks.extend(pos)
        names.extend(part[shown].astype(str).agg(", ".join, axis=1) if shown else part["label"].astype(str))
        y = pos[-1] + 2 if len(pos) else y  # a blank row between groups
    ax.set_yticks(ticks, names)
    ax.invert_yaxis()  # read top down: the first row (the smallest, sorted) at the top
    _style(ax)
    variables = ", ".join(dict.fromkeys(str(v) for v in t["variable"])) if "variable" in t else ""
    by = f" by {', '.join(est.by)}" if est.by else ""
    ax.set_title(f"{est.statistic} of {variables}{by} ({est.level:.0%} CI)", fontsize=10, loc="left")
    if _is_share(est):
        ax.xaxis.set_major_formatter(_percent_axis())
        ax.set_xlabel(f"% ({est.level:.0%} CI)")
    else:
        ax.set_xlabel(f"{est.statistic} ({est.level:.0%} CI)")
    if group is not None:
        ax.legend(title=group, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=min(len(groups), 4), frameon=False)
    return ax


def _is_share(est: EstimateTable) -> bool:
    """Proportions (levels of a factor, or a proportion statistic) get a % axis."""
    t = est.table
    levels = "level" in t and t["level"].notna().any()
    return est.statistic.startswith("proportion") or (est.statistic.startswith("mean") and bool(levels))


def _percent_axis() -> Any:
    from matplotlib.ticker import PercentFormatter

    return PercentFormatter(xmax=1, decimals=0)


def _style(ax: Axes) -> None:
    ax.grid(axis="x", color="#e5e5e5", linewidth=0.8)
    ax.set_axisbelow(True)
    ax.spines[["top", "right"]].set_visible(False)


def coverage_table(table: Any, ax: Axes | None = None, lang: str = "en") -> Axes:
    """Coverage rates as horizontal dots with intervals: one row per scheme (in the
    tree's order, with its label), one colour per population group (legend below), on
    a % axis.

    Parameters
    ----------
    table : a :class:`sscoverage.coverage.CoverageTable`.
    ax : Axes to draw on; default a new figure's, tall enough for every scheme.
    lang : language of the labels, ``"en"`` or ``"zh"`` (needs a CJK font).

    Returns
    -------
    matplotlib.axes.Axes
        One errorbar container per group, one point per scheme in each.
    """
    from .._labels import Labels

    label = Labels(lang)
    t = table.table
    schemes = list(pd.unique(t["scheme"]))
    if ax is None:
        import matplotlib.pyplot as plt

        ax = plt.subplots(figsize=(7.5, 1.4 + 0.42 * len(schemes)), layout="constrained")[1]
    names = [label(s) for s in t["scheme"]]
    groups = [label(g) for g in t["group"]] if len(table.groups) > 1 else None
    title = f"Coverage rate by scheme ({table.level:.0%} CI)" if lang == "en" else label("t1_chart")
    return dot_interval(ax, names, t["estimate"], t["ci_low"], t["ci_high"], title=title, percent=True, groups=groups)


def survival_curves(curves: Any, ax: Axes | None = None, ci: bool = True) -> Axes:
    """Survival curves as step functions, with pointwise confidence bands.

    Parameters
    ----------
    curves : a :class:`sscoverage.SurvivalCurves`.
    ax : Axes to draw on; default a new figure's.
    ci : draw the bands (curves estimated with ``se=True``; each band costs the
        variance at every tabulated time).

    Returns
    -------
    matplotlib.axes.Axes
        One line per curve, and one band per curve with `ci`.
    """
    ax = get_axes(ax)
    groups = curves.groups if curves.by is not None else [None]
    for g in groups:
        tab = curves.curve(g)
        (line,) = ax.step(np.r_[0.0, tab["time"]], np.r_[1.0, tab["survival"]], where="post",
                          label=None if g is None else str(g))
        if ci and curves.se:
            band = curves.confint(times=np.unique(tab["time"]))
            if g is not None:
                band = band[band[curves.by] == g]
            ax.fill_between(band["time"], band["ci_low"], band["ci_high"], step="post", alpha=0.2,
                            color=line.get_color())
    ax.set_xlabel(curves.time_column)
    ax.set_ylabel("survival (%)")
    ax.yaxis.set_major_formatter(_percent_axis())
    ax.set_title(f"Survival by {curves.time_column}" + (" (95% CI)" if ci and curves.se else ""), fontsize=10, loc="left")
    ax.set_ylim(0, 1.02)
    if curves.by is not None:
        ax.legend(title=curves.by)
    return ax


def coefficients(fit: Any, ax: Axes | None = None, intercept: bool = False) -> Axes:
    """A model's coefficients as dots with intervals (a forest plot): odds ratios on a
    log axis for a logit link, coefficients otherwise, with the line of no effect.

    Parameters
    ----------
    fit : a :class:`sscoverage.models.GLMResult`.
    ax : Axes to draw on; default a new figure's.
    intercept : show the intercept (its odds are on another scale; left out by default).

    Returns
    -------
    matplotlib.axes.Axes
        One errorbar container, one point per term.
    """
    odds = fit.link == "logit"
    table = fit.odds_ratios() if odds else fit.conf_int().assign(term=fit.terms, odds_ratio=fit.coef)
    if not intercept:
        table = table[table["term"] != "(Intercept)"]
    if ax is None:
        import matplotlib.pyplot as plt

        ax = plt.subplots(figsize=(7, 1.2 + 0.4 * len(table)), layout="constrained")[1]
    what = "Odds ratio" if odds else "Coefficient"
    dot_interval(ax, list(table["term"]), table["odds_ratio"], table["ci_low"], table["ci_high"],
                 title=f"{what}s of {fit.formula} ({fit.level:.0%} CI, n = {fit.n:,})", percent=False, xlabel=what)
    ax.axvline(1.0 if odds else 0.0, color="grey", linewidth=1, linestyle="--")
    if odds:
        ax.set_xscale("log")
    return ax


def threshold_profile(result: Any, ax: Axes | None = None) -> Axes:
    """The threshold model's profile: the design-corrected likelihood-ratio statistic at
    each candidate threshold, the critical value of the interval, and the estimate.

    Parameters
    ----------
    result : a :class:`sscoverage.ThresholdResult`.
    ax : Axes to draw on; default a new figure's.

    Returns
    -------
    matplotlib.axes.Axes
        The profile line, a horizontal line at the critical value and a vertical one at
        the threshold.
    """
    ax = get_axes(ax)
    p = result.profile
    ax.plot(p["threshold"], p["lr"], marker=".")
    ax.axhline(result.critical_value, linestyle="--", color="grey")
    ax.axvline(result.threshold, linestyle=":", color="black")
    ax.set_xlabel(f"threshold in {result.variable}")
    ax.set_ylabel("likelihood ratio (design-corrected)")
    return ax


def weights(design: SurveyDesign, before: SurveyDesign | Sequence[float] | None = None, ax: Axes | None = None,
            bins: int = 30) -> Axes:
    """The distribution of a design's weights, and of the weights before an adjustment.

    Parameters
    ----------
    design : the design (after calibration, raking, trimming...).
    before : the design before the adjustment, or its weights.
    ax : Axes to draw on; default a new figure's.
    bins : number of histogram bins (shared by both distributions).

    Returns
    -------
    matplotlib.axes.Axes
        One histogram (`bins` bars) per distribution, labelled with Kish's design
        effect due to weighting, n sum(w^2) / sum(w)^2.
    """
    ax = get_axes(ax)
    series = [("after" if before is not None else "weights", _used_weights(design))]
    if before is not None:
        series.insert(0, ("before", _used_weights(before)))
    edges = np.histogram_bin_edges(np.concatenate([w for _, w in series]), bins=bins)
    for name, w in series:
        kish = len(w) * np.square(w).sum() / w.sum() ** 2
        ax.hist(w, bins=list(edges), alpha=0.5, label=f"{name} (Kish deff {kish:.3f})")
    ax.set_xlabel("weight")
    ax.set_ylabel("rows")
    ax.legend()
    return ax


def _used_weights(source: Any) -> np.ndarray:
    """Non-zero weights of a design's rows (zero marks rows outside a subset), or the
    weights given."""
    w = source.weights if hasattr(source, "weights") else np.asarray(source, dtype=np.float64)
    return w[w != 0]
