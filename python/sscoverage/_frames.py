"""DataFrame columns -> contiguous numpy arrays: f64 values and u32 codes with labels.

pandas, polars (eager or lazy) and pyarrow tables are accepted; nothing is copied that
is already a contiguous float64 or integer column.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd
import polars as pl

from . import _core
from .exceptions import ColumnError, MissingValueError, ShapeError


@dataclass(frozen=True)
class Coded:
    """A factor: u32 codes (``missing`` marks a missing value) and level labels."""

    codes: np.ndarray
    labels: list[Any]
    missing: np.ndarray | None  # bool mask of missing rows, None when there are none


class Frame:
    """Read-only access to the columns of a user's data set."""

    def __init__(self, data: Any) -> None:
        if isinstance(data, pl.LazyFrame):
            data = data.collect()
        elif not isinstance(data, (pd.DataFrame, pl.DataFrame)):
            try:
                import pyarrow as pa

                if isinstance(data, pa.Table):
                    data = pl.from_arrow(data)
            except ImportError:  # pragma: no cover - pyarrow is a dependency
                pass
        if not isinstance(data, (pd.DataFrame, pl.DataFrame)):
            raise TypeError(
                "data must be a pandas or polars DataFrame, a polars LazyFrame or a pyarrow Table, "
                f"not {type(data).__name__}"
            )
        self.data = data
        self.n_rows = data.shape[0]
        self.columns = list(data.columns)

    def _column(self, name: str) -> pd.Series | pl.Series:
        if name not in self.columns:
            close = [c for c in self.columns if c.lower() == str(name).lower()]
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ColumnError(f"column {name!r} is not in the data.{hint}")
        return self.data[name]

    def is_numeric(self, name: str) -> bool:
        col = self._column(name)
        if isinstance(col, pl.Series):
            return col.dtype.is_numeric()
        return pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(col.dtype)

    def is_factor(self, name: str) -> bool:
        """A column R would treat as a factor: strings, categoricals and logicals."""
        return not self.is_numeric(name)

    def numeric(self, name: str, role: str) -> np.ndarray:
        """Float64 values (NaN where missing); a ColumnError names the role if not numeric."""
        col = self._column(name)
        if not self.is_numeric(name):
            raise ColumnError(
                f"column {name!r} ({role}) must be numeric, but holds {col.dtype}; "
                "convert it, or use it as a factor outcome"
            )
        if isinstance(col, pl.Series):
            values = col.cast(pl.Float64).to_numpy()
        else:
            values = col.to_numpy(dtype=np.float64, na_value=np.nan)
        return np.ascontiguousarray(values, dtype=np.float64)

    def codes(self, name: str, role: str, levels: Sequence[Any] | None = None) -> Coded:
        """Dense u32 codes of a column; levels sorted (R's factor order) unless given."""
        col = self._column(name)
        missing = self.isna(name)
        if missing is not None and not missing.any():
            missing = None
        if levels is None and self.is_numeric(name) and missing is None:
            values = col.to_numpy() if isinstance(col, pl.Series) else col.to_numpy()
            if np.issubdtype(values.dtype, np.integer) or np.all(np.mod(values, 1) == 0):
                as_int = np.ascontiguousarray(values, dtype=np.int64)
                codes, distinct = _core.dense_codes(as_int)
                return Coded(codes, distinct.tolist(), None)
        if isinstance(col, pl.Series):
            col = col.to_pandas()
        if levels is None:
            if isinstance(col.dtype, pd.CategoricalDtype):
                levels = list(col.cat.categories)
            else:
                levels = sorted(col.dropna().unique().tolist())
        cat = pd.Categorical(col, categories=list(levels))
        raw = cat.codes.astype(np.int64)
        unknown = (raw < 0) & ~(missing if missing is not None else np.zeros(len(raw), bool))
        if unknown.any():
            bad = col[unknown].iloc[0]
            raise ColumnError(f"column {name!r} ({role}) has value {bad!r}, which is not among its levels")
        codes = np.where(raw < 0, np.iinfo(np.uint32).max, raw).astype(np.uint32)
        return Coded(np.ascontiguousarray(codes), list(levels), missing)

    def isna(self, name: str) -> np.ndarray | None:
        col = self._column(name)
        if isinstance(col, pl.Series):
            mask = col.is_null().to_numpy()
            if col.dtype.is_float():
                mask = mask | col.is_nan().fill_null(False).to_numpy()
            return mask
        return col.isna().to_numpy()

    def mask(self, values: Any, role: str) -> np.ndarray:
        """A boolean row mask from a user's array-like; missing counts as False."""
        if isinstance(values, pl.Series):
            values = values.fill_null(False).to_numpy()
        elif isinstance(values, pd.Series):
            values = values.fillna(False).to_numpy()
        arr = np.asarray(values)
        if arr.shape != (self.n_rows,):
            raise ShapeError(f"{role} has {arr.shape[0] if arr.ndim else 1} values, the data {self.n_rows} rows")
        if arr.dtype != bool:
            if arr.dtype == object:
                arr = np.array([bool(v) if v is not None and v == v else False for v in arr])
            else:
                raise ShapeError(f"{role} must be boolean, not {arr.dtype}")
        return arr


def require_no_missing(frame: Frame, name: str, role: str) -> None:
    miss = frame.isna(name)
    if miss is not None and miss.any():
        raise MissingValueError(
            f"column {name!r} ({role}) has {int(miss.sum())} missing values; a design variable "
            "must be complete: drop or impute those rows first"
        )
