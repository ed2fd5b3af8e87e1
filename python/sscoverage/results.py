"""Result objects: tidy tables of estimates with standard errors, intervals and labels."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
from scipy import stats


def critical_value(level: float, df: float | None) -> float:
    """Two-sided quantile: normal (R's default, df=Inf) or t on `df` degrees of freedom."""
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, not {level}")
    q = 1 - (1 - level) / 2
    if df is None or np.isinf(df):
        return float(stats.norm.ppf(q))
    return float(stats.t.ppf(q, df))


@dataclass(frozen=True)
class Estimates:
    """Estimates from a design: one row per domain x variable (x level).

    Columns of :meth:`to_pandas`: the ``by`` columns (if any), ``variable``, ``level``
    (factor outcomes), ``estimate``, ``se``, ``ci_low``, ``ci_high``, ``cv``, ``deff``
    (when asked for), ``n`` (rows used) and ``weight_sum`` (the estimated population
    size of the domain).
    """

    statistic: str
    table: pd.DataFrame
    vcov: list[np.ndarray]
    by: list[str]
    level: float
    df: float | None
    n_removed: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def estimate(self) -> np.ndarray:
        return self.table["estimate"].to_numpy()

    @property
    def se(self) -> np.ndarray:
        return self.table["se"].to_numpy()

    @property
    def labels(self) -> list[str]:
        """R's names of the estimates (``api00``, ``stypeE``, ``api.stu/enroll``)."""
        return self.table["label"].tolist()

    def conf_int(self, level: float = 0.95, df: float | None = None) -> pd.DataFrame:
        """Intervals estimate +- q * se at `level`; q normal unless `df` is given (R's confint)."""
        q = critical_value(level, df)
        out = self.table[self.by + ["variable", "level"]].copy()
        out["ci_low"] = self.estimate - q * self.se
        out["ci_high"] = self.estimate + q * self.se
        return out

    def to_pandas(self) -> pd.DataFrame:
        return self.table.drop(columns=["label"]).copy()

    def to_polars(self) -> pl.DataFrame:
        return pl.from_pandas(self.to_pandas())

    def _header(self) -> str:
        what = f"{self.statistic}" + (f" by {', '.join(self.by)}" if self.by else "")
        ci = f"{self.level:.0%} CI" + ("" if self.df is None else f", t on {self.df:g} df")
        lines = [f"Survey {what} ({ci})"]
        if self.n_removed:
            lines.append(f"{self.n_removed} rows with missing values left out (na_rm=True)")
        lines.extend(self.notes)
        return "\n".join(lines)

    def _shown(self) -> pd.DataFrame:
        shown = self.to_pandas()
        if shown["level"].isna().all():
            return shown.drop(columns=["level"])
        shown["level"] = shown["level"].astype(object).where(shown["level"].notna(), "")
        return shown

    def __repr__(self) -> str:
        shown = self._shown()
        with pd.option_context("display.width", 120, "display.max_columns", 20):
            return f"{self._header()}\n{shown.to_string(index=False)}"

    def _repr_html_(self) -> str:
        shown = self._shown()
        head = self._header().replace("\n", "<br>")
        return f"<div><p><b>{head}</b></p>{shown.to_html(index=False, float_format=lambda x: f'{x:.6g}')}</div>"

    def __len__(self) -> int:
        return len(self.table)

    def __getitem__(self, key: Any) -> Any:
        return self.table[key]
