"""Result objects: tidy tables of estimates with standard errors, intervals and labels."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import polars as pl
from scipy import stats

from . import display as _display
from .._provenance import Provenance
from ..exceptions import SurveyWarning, OptionError
from ..io.serialize import Serializable, encode

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from .publication import ReliabilityRules, SuppressedTable


def standard_errors(variances: np.ndarray) -> np.ndarray:
    """Square roots of variances; a negative variance (replicate scales of mixed sign, a
    Horvitz-Thompson variance) gives NaN with a warning, as R's ``SE`` ("NaNs produced")."""
    variances = np.asarray(variances, dtype=np.float64)
    negative = variances < 0
    if negative.any():
        warnings.warn(
            f"NaNs produced: {int(negative.sum())} variance estimate(s) are negative (the smallest "
            f"{variances[negative].min():.6g}); their standard errors are NaN, as in R",
            SurveyWarning,
            stacklevel=3,
        )
    return np.sqrt(np.where(negative, np.nan, variances))


def critical_value(level: float, df: float | None) -> float:
    """Two-sided quantile: normal (R's default, df=Inf) or t on `df` degrees of freedom."""
    if isinstance(level, bool) or not isinstance(level, (int, float, np.floating)) or not 0 < level < 1:
        raise OptionError(f"level={level!r}: the confidence level is a number between 0 and 1, as 0.95")
    if df is not None and (isinstance(df, bool) or not isinstance(df, (int, float, np.integer, np.floating))
                           or np.isnan(df) or df <= 0):
        raise OptionError(
            f"df={df!r}: intervals need positive degrees of freedom (None or 'design' for the design's, or a "
            "number above 0); a design or domain with 0 degrees of freedom cannot give a t interval: use df=None "
            "for normal intervals"
        )
    return _two_sided_quantile(float(level), None if df is None else float(df))


@lru_cache(maxsize=256)
def _two_sided_quantile(level: float, df: float | None) -> float:
    # Cached: scipy's ppf costs milliseconds a call, and each estimate asks for one.
    q = 1 - (1 - level) / 2
    if df is None or np.isinf(df):
        return float(stats.norm.ppf(q))
    return float(stats.t.ppf(q, df))


@dataclass(frozen=True)
class Estimates(Serializable):
    """Estimates from a design: one row per domain x variable (x level).

    Columns of :meth:`to_pandas`: the ``by`` columns (if any), ``variable``, ``level``
    (factor outcomes), ``estimate``, ``se``, ``ci_low``, ``ci_high``, ``cv``, ``deff``
    (when asked for), ``n`` (rows used) and ``weight_sum`` (the estimated population
    size of the domain).  Printing shows the estimates with their reliability
    :meth:`flags`; :meth:`plot` draws them, :meth:`suppress` prepares a table for
    publication and :meth:`to_json` stores them.
    """

    statistic: str
    table: pd.DataFrame
    vcov: list[np.ndarray]
    by: list[str]
    level: float
    df: float | None
    n_removed: int = 0
    notes: list[str] = field(default_factory=list)
    #: The call that made these estimates (set by the Design methods).
    provenance: Provenance | None = field(default=None, repr=False, compare=False)

    @property
    def estimate(self) -> np.ndarray:
        """The estimates, in the row order of :meth:`to_pandas` (R's ``coef``)."""
        return self.table["estimate"].to_numpy()

    @property
    def se(self) -> np.ndarray:
        """Their standard errors (R's ``SE``)."""
        return self.table["se"].to_numpy()

    @property
    def labels(self) -> list[str]:
        """R's names of the estimates (``api00``, ``stypeE``, ``api.stu/enroll``)."""
        return self.table["label"].tolist()

    def conf_int(self, level: float = 0.95, df: float | None = None) -> pd.DataFrame:
        """Intervals estimate +- q * se at another level.

        R's ``confint``; Stata's ``level()`` option on replay.

        Parameters
        ----------
        level : confidence level.
        df : degrees of freedom of a t quantile q; None: normal (R's default).

        Returns
        -------
        pandas.DataFrame
            The ``by`` columns, ``variable``, ``level``, ``ci_low``, ``ci_high``.

        Examples
        --------
        >>> design.mean("covered").conf_int(level=0.9).round(4)
          variable level  ci_low  ci_high
        0  covered  None  0.8951   0.9541
        """
        q = critical_value(level, df)
        out = self.table[self.by + ["variable", "level"]].copy()
        out["ci_low"] = self.estimate - q * self.se
        out["ci_high"] = self.estimate + q * self.se
        return out

    def to_pandas(self) -> pd.DataFrame:
        """The table of estimates (columns as in the class notes), a copy."""
        return self.table.drop(columns=["label"]).copy()

    def to_polars(self) -> pl.DataFrame:
        """:meth:`to_pandas` as a polars DataFrame."""
        return pl.from_pandas(self.to_pandas())

    def _header(self) -> list[str]:
        what = f"{self.statistic}" + (f" by {', '.join(self.by)}" if self.by else "")
        ci = f"{self.level:.0%} CI" + ("" if self.df is None else f", t on {self.df:g} df")
        lines = [f"Survey {what} ({ci})"]
        if self.n_removed:
            lines.append(f"{self.n_removed} rows with missing values left out (na_rm=True)")
        lines.extend(self.notes)
        return lines

    @cached_property
    def _flag_codes(self) -> pd.Series:
        """The flags under the default rules, worked out once for printing."""
        from .publication import flags

        return flags(self)["flags"]

    def _shown(self) -> pd.DataFrame:
        """The compact table: labels, estimate, SE, interval, CV / deff, n and flags."""
        shown = self.to_pandas().drop(columns=["weight_sum", "df"], errors="ignore")
        if shown["level"].isna().all():
            shown = shown.drop(columns=["level"])
        else:
            shown["level"] = shown["level"].astype(object).where(shown["level"].notna(), "")
        if "n" in shown and self._flag_codes.str.len().any():
            shown["flags"] = self._flag_codes.to_numpy()
        return shown

    def _footer(self) -> list[str]:
        """The meaning of the flags shown, and the variable labels of the data file."""
        from ..io.labels import label_lines
        from .publication import legend

        lines = legend(self._flag_codes) if "n" in self.table else []
        if self.provenance is not None:
            lines += label_lines(self.provenance.design, [*self.by, *self.table["variable"]])
        return lines

    def __repr__(self) -> str:
        return _display.text(self._header(), self._shown(), self._footer())

    def _repr_html_(self) -> str:
        return _display.to_html(self._header(), self._shown(), self._footer())

    def plot(self, ax: "Axes | None" = None, sort: bool = True, group: str | None = None) -> "Axes":
        """Point estimates with confidence-interval bars; see :func:`sscoverage.plots.estimates`.

        Parameters
        ----------
        ax : matplotlib Axes to draw on; None: a new figure.
        sort : order the rows by estimate.
        group : a ``by`` column whose values colour the points.

        Returns
        -------
        matplotlib.axes.Axes
        """
        from .plots import estimates

        return estimates(self, ax, sort, group)

    def _design_record(self, design: dict[str, Any]) -> dict[str, Any]:
        # Flags of a loaded result need each domain's df, which only the data give.
        if "domain_df" in design:
            return design
        from .publication import domain_df

        return {**design, "domain_df": encode(domain_df(self))}

    def flags(self, rules: "ReliabilityRules | None" = None, proportion: bool | None = None) -> pd.DataFrame:
        """NCHS-style reliability of each estimate.

        Parameters
        ----------
        rules : thresholds (:class:`sscoverage.ReliabilityRules`); default NCHS's.
        proportion : treat the estimates as proportions (Korn-Graubard interval rules)
            or not (coefficient-of-variation rule); default: a mean or proportion
            between 0 and 1 is one.

        Returns
        -------
        pandas.DataFrame
            The labels, ``n``, ``df`` (design degrees of freedom of the domain),
            ``effective_n``, ``kg_low`` / ``kg_high`` (Korn-Graubard interval), ``cv``,
            ``flags`` (codes of the rules broken, see
            :data:`sscoverage.publication.FLAG_MEANINGS`) and ``suppress`` (a rule other
            than ``df`` is broken).
        """
        from .publication import flags

        return flags(self, rules, proportion)

    def suppress(self, min_count: int = 30, rows: str | None = None, columns: str | None = None,
                 margins: bool | None = None) -> "SuppressedTable":
        """The estimates as a one- or two-way table with small cells suppressed.

        Cells with fewer than `min_count` rows are hidden (primary suppression), and so
        are other cells until no hidden cell can be worked out from the published
        cells and the row and column totals (complementary suppression); see
        :func:`sscoverage.suppress`.

        Parameters
        ----------
        min_count : smallest number of rows of a published cell.
        rows, columns : the columns of the table that label its rows and columns;
            default the ``by`` columns (then ``level``).
        margins : add row, column and grand totals; default for totals.
        """
        from .publication import suppress_estimates

        return suppress_estimates(self, min_count, rows, columns, margins)

    def __len__(self) -> int:
        return len(self.table)

    def __getitem__(self, key: Any) -> Any:
        return self.table[key]


class CoefficientModel:
    """What every fitted model result shares: ``coef`` and its design-based ``vcov``
    give ``estimate`` and ``se``; each model's own ``_coefficients()`` table is what
    ``to_pandas`` / ``to_polars`` return."""

    coef: np.ndarray
    vcov: np.ndarray

    @property
    def estimate(self) -> np.ndarray:
        """The coefficients (``coef``), as on every result."""
        return self.coef

    @property
    def se(self) -> np.ndarray:
        """Design-based standard errors of the coefficients (R's ``SE``)."""
        return np.sqrt(np.clip(np.diag(self.vcov), 0.0, None))

    def to_pandas(self) -> pd.DataFrame:
        """The coefficient table: one row per term, with its estimate, standard error,
        test statistic and p-value."""
        return self._coefficients()

    def to_polars(self) -> pl.DataFrame:
        """:meth:`to_pandas` as a polars DataFrame."""
        return pl.from_pandas(self._coefficients())
