"""DataFrame columns -> contiguous numpy arrays: f64 values and u32 codes with labels.

pandas, polars (eager or lazy) and pyarrow tables are accepted; nothing is copied that
is already a contiguous float64 or integer column.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import polars as pl

from . import _core
from .exceptions import ColumnError, DesignError, MissingValueError, ShapeError, OptionError


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
            raise OptionError(
                "data must be a pandas or polars DataFrame, a polars LazyFrame or a pyarrow Table, "
                f"not {type(data).__name__}"
            )
        # A snapshot, as R's design copies its variables: with pandas' copy-on-write a
        # shallow copy costs nothing and later changes to the user's frame do not reach
        # it (polars frames are immutable).  That is what makes caching codes safe.
        self.data = data.copy(deep=False) if isinstance(data, pd.DataFrame) else data
        self.n_rows = data.shape[0]
        self.columns = list(data.columns)
        self._codes: dict[str, Coded] = {}

    def with_columns(self, columns: Mapping[str, Any]) -> "Frame":
        """A new frame with `columns` (name -> one value per row) added or replaced."""
        arrays = {}
        for name, values in columns.items():
            # A pandas Series is matched to the rows by its index, as pandas assigns.
            values = self._aligned(values, f"column {name!r}").array if isinstance(values, pd.Series) else values
            if np.ndim(values) == 0:  # one value for every row, as R's update(design, x = 1)
                values = np.full(self.n_rows, values)
            if len(values) != self.n_rows:
                raise ShapeError(f"column {name!r} has {len(values)} values, the data {self.n_rows} rows")
            arrays[name] = values
        if isinstance(self.data, pd.DataFrame):
            data = self.data.assign(**arrays)
        else:
            data = self.data.with_columns([pl.Series(name, np.asarray(v)) for name, v in arrays.items()])
        new = Frame(data)
        new._codes = {k: v for k, v in self._codes.items() if k not in arrays}
        return new

    def column(self, name: str) -> pd.Series | pl.Series:
        if name not in self.columns:
            close = difflib.get_close_matches(str(name), [str(c) for c in self.columns], n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ColumnError(f"column {name!r} is not in the data.{hint}")
        return self.data[name]

    def is_numeric(self, name: str) -> bool:
        col = self.column(name)
        if isinstance(col, pl.Series):
            return col.dtype.is_numeric()
        return pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(col.dtype)

    def is_factor(self, name: str) -> bool:
        """A column R would treat as a factor: strings, categoricals and logicals."""
        col = self.column(name)
        if isinstance(col, pl.Series):
            return col.dtype in (pl.String, pl.Categorical, pl.Enum, pl.Boolean)
        dtype = col.dtype
        if isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_string_dtype(dtype):
            return dtype != np.dtype("O") or col.dropna().map(lambda v: isinstance(v, (str, bool))).all()
        return False

    def numeric(self, name: str, role: str) -> np.ndarray:
        """Float64 values (NaN where missing); a ColumnError names the role if not numeric
        or infinite somewhere."""
        values = self.floats(name, role)
        # One pass with no temporary when all is finite; otherwise (NaN or an infinity)
        # look value by value.
        if not _core.all_finite(values):
            reject_infinite(values, name, role)
        return values

    def floats(self, name: str, role: str) -> np.ndarray:
        """Float64 values (NaN where missing), not checked for infinities (for callers
        that check them in a pass of their own); a ColumnError names the role if not
        numeric."""
        col = self.column(name)
        if not self.is_numeric(name):
            raise ColumnError(
                f"column {name!r} ({role}) must be numeric, but holds {col.dtype}; "
                "convert it to numbers, or to strings or a categorical to estimate proportions"
            )
        if isinstance(col, pl.Series):
            values = col.cast(pl.Float64).to_numpy()
        else:
            values = col.to_numpy(dtype=np.float64, na_value=np.nan)
        return np.ascontiguousarray(values, dtype=np.float64)

    def int_labels(self, name: str) -> np.ndarray | None:
        """The column's integers, read in place, when it is an integer column without
        missing values that has not been coded yet (it can go to the core as it is)."""
        if name in self._codes or name not in self.columns:
            return None
        col = self.data[name]
        if isinstance(col, pl.Series):
            if not col.dtype.is_integer() or col.null_count():
                return None
        elif not (isinstance(col.dtype, np.dtype) and col.dtype.kind in "iu"):
            return None
        values = col.to_numpy()
        usable = values.dtype.kind == "i" or values.dtype.itemsize <= 4  # the core reads int8..int64, uint8..uint32
        return values if usable and values.flags.c_contiguous else None

    def plain_floats(self, name: str) -> np.ndarray | None:
        """The column read in place when it is float64 with no null (NaN may be there),
        else None."""
        col = self.column(name)
        if isinstance(col, pl.Series):
            if col.dtype != pl.Float64 or col.null_count():
                return None
        elif col.dtype != np.float64:
            return None
        values = col.to_numpy()
        return values if values.dtype == np.float64 and values.flags.c_contiguous else None

    def codes(self, name: str, role: str) -> Coded:
        """Dense u32 codes of a column; levels sorted (R's factor order) or a categorical's own.

        Computed once per column: a by-variable used in many calls is encoded once."""
        if name not in self._codes:
            self._codes[name] = codes_of(self.column(name), name, role)
        return self._codes[name]

    def values(self, values: Any, role: str) -> pd.Series | pl.Series:
        """A user's array-like of one value per row, checked for length; a pandas Series
        is aligned on the data's index, as pandas aligns (never applied by position)."""
        if isinstance(values, pd.Series):
            return self._aligned(values, role)
        if not isinstance(values, pl.Series):
            values = pd.Series(np.asarray(values))
        if len(values) != self.n_rows:
            raise ShapeError(f"{role} has {len(values)} values, the data {self.n_rows} rows")
        return values

    def _aligned(self, values: pd.Series, role: str) -> pd.Series:
        """`values` in the data's row order, matched by index label."""
        index = self.data.index if isinstance(self.data, pd.DataFrame) else pd.RangeIndex(self.n_rows)
        if values.index.equals(index):
            return values.reset_index(drop=True)
        fix = ("build it from the same DataFrame, or pass .to_numpy() to apply it by position"
               if isinstance(self.data, pd.DataFrame) else
               "the polars data have no index: pass .to_numpy() to apply it by position")
        if len(values) == self.n_rows and values.index.is_unique and index.is_unique \
                and values.index.isin(index).all():
            return values.reindex(index).reset_index(drop=True)
        missing = int((~index.isin(values.index)).sum())
        raise ShapeError(
            f"{role} is a pandas Series whose index does not match the data's ({len(values)} values, "
            f"{missing} of the data's {self.n_rows} row labels absent"
            + (", labels repeated" if not values.index.is_unique or not index.is_unique else "")
            + f"): {fix}"
        )

    def isna(self, name: str) -> np.ndarray | None:
        return isna(self.column(name))

    def mask(self, values: Any, role: str) -> np.ndarray:
        """A boolean row mask from a user's array-like; missing counts as False."""
        values = self.values(values, role)
        if isinstance(values, pl.Series):
            values = values.to_pandas()
        if not (pd.api.types.is_bool_dtype(values.dtype) or values.dtype == object):
            raise ShapeError(f"{role} must be boolean, not {values.dtype}")
        return values.fillna(False).to_numpy(dtype=bool)


def reject_infinite(values: np.ndarray, name: str, role: str) -> None:
    """Refuse infinite values of a numeric variable, in memory and in a streamed batch
    alike: sums would silently give inf or NaN estimates and standard errors."""
    infinite = int(np.isinf(values).sum())
    if infinite:
        raise ColumnError(
            f"column {name!r} ({role}) has {infinite} infinite values; "
            "recode them as missing (NaN) or as finite numbers"
        )


def check_weight_counts(name: str, role: str, missing: int, infinite: int, invalid: int, positive: int) -> None:
    """The one check of a design's weights (or selection probabilities), from counts that
    an in-memory column or a pass over streamed batches gives: complete, finite,
    non-negative weights (positive probabilities), not all zero."""
    if missing:
        raise MissingValueError(
            f"column {name!r} ({role}) has {missing} missing values; a design variable "
            "must be complete: drop or impute those rows first"
        )
    if infinite:
        raise DesignError(f"{role} column {name!r} has {infinite} infinite values; {role} must be finite")
    if invalid and role == "probs":
        raise DesignError(f"probs column {name!r} must be positive; {invalid} rows are not")
    if invalid:
        raise DesignError(
            f"weights column {name!r} has {invalid} negative values; sampling weights must be non-negative"
        )
    if not positive:
        raise DesignError(f"weights sum to zero: column {name!r} is zero in every row; at least one row "
                          "needs a positive weight")


def never_missing(col: pd.Series | pl.Series) -> bool:
    """True when the column's type cannot hold a missing value, or polars counts none,
    so no mask need be built."""
    if isinstance(col, pl.Series):
        return not col.dtype.is_float() and col.null_count() == 0
    return isinstance(col.dtype, np.dtype) and col.dtype.kind in "iub"


def isna(col: pd.Series | pl.Series) -> np.ndarray:
    if isinstance(col, pl.Series):
        mask = col.is_null().to_numpy()
        if col.dtype.is_float():
            mask = mask | col.is_nan().fill_null(False).to_numpy()
        return mask
    return col.isna().to_numpy()


def as_pandas(col: pd.Series | pl.Series) -> pd.Series:
    """A column as pandas.  A polars Enum keeps its declared level order; a polars
    Categorical's levels are its text sorted, as polars sorts it (and as a streamed design
    over the same column orders its domains), not the order the text first appeared."""
    if not isinstance(col, pl.Series):
        return col
    ordered = col.dtype == pl.Enum
    out = col.to_pandas()
    if isinstance(out.dtype, pd.CategoricalDtype) and not ordered:
        out = out.cat.reorder_categories(sorted(out.cat.categories))
    return out


def codes_of(col: pd.Series | pl.Series, name: str, role: str) -> Coded:
    """Dense u32 codes of a column (OUTSIDE where missing) and its level labels."""
    missing = None if never_missing(col) else isna(col)
    if missing is not None and not missing.any():
        missing = None
    numeric = col.dtype.is_numeric() if isinstance(col, pl.Series) else (
        pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(col.dtype)
    )
    if numeric and missing is None:
        values = col.to_numpy()
        # Integer labels that int64 holds exactly (not uint64 beyond 2^63, nor floats
        # beyond 2^53, which would wrap or round): the rest are coded as general labels.
        if values.dtype.kind == "u" and values.dtype.itemsize == 8:
            exact = len(values) == 0 or int(values.max()) <= np.iinfo(np.int64).max
        elif values.dtype.kind == "f":
            # Two reductions instead of a modulo per value (the slow part of a 0/1 column).
            exact = len(values) == 0 or bool(
                max(-values.min(), values.max()) <= 2.0**53 and np.array_equal(np.trunc(values), values)
            )
        else:
            exact = np.issubdtype(values.dtype, np.integer)
        if exact:
            # Integer labels: one pass in Rust, no sort of the rows.
            # The core reads int8..int64 and uint8..uint32 in place; others become int64.
            narrow = values.dtype.kind == "i" or (values.dtype.kind == "u" and values.dtype.itemsize <= 4)
            codes, distinct = _core.dense_codes(np.ascontiguousarray(values, dtype=values.dtype if narrow else np.int64))
            labels = distinct.tolist()
            if not np.issubdtype(values.dtype, np.integer):
                labels = [float(v) for v in labels]
            return Coded(codes, labels, None)
    col = as_pandas(col)
    if isinstance(col.dtype, pd.CategoricalDtype):
        levels = list(col.cat.categories)
    else:
        try:
            levels = sorted(col.dropna().unique().tolist())
        except TypeError:
            raise ColumnError(f"column {name!r} ({role}) mixes types that cannot be ordered as factor levels") from None
    # A categorical is already coded by its levels (-1: missing); other values are coded here.
    raw = col.cat.codes if isinstance(col.dtype, pd.CategoricalDtype) else pd.Categorical(col, categories=levels).codes
    raw = np.asarray(raw, dtype=np.int64)
    codes = np.where(raw < 0, np.iinfo(np.uint32).max, raw).astype(np.uint32)
    return Coded(np.ascontiguousarray(codes), levels, missing)


def require_no_missing(frame: Frame, name: str, role: str) -> None:
    if never_missing(frame.column(name)):
        return
    miss = frame.isna(name)
    if miss is not None and miss.any():
        raise MissingValueError(
            f"column {name!r} ({role}) has {int(miss.sum())} missing values; a design variable "
            "must be complete: drop or impute those rows first"
        )


#: The code of a row outside every domain (or of a missing value).
OUTSIDE = np.iinfo(np.uint32).max
#: Comparisons a subset condition may use.
SUBSET_OPS = ("==", "!=", "<", "<=", ">", ">=", "in", "not_na")


def column_names(value: str | Sequence[str] | None, role: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str) or (isinstance(value, (int, np.integer)) and not isinstance(value, bool)):
        return [value]  # a name, or an integer column label of a pandas frame
    if not isinstance(value, (list, tuple)):
        raise OptionError(f"{role}={value!r}: {role} is a column name or a list of column names")
    names = list(value)
    if not all(isinstance(v, (str, int, np.integer)) and not isinstance(v, bool) for v in names):
        raise OptionError(f"{role} must be a column name or a list of column names")
    return names


#: Largest number of level combinations of several by columns used as domain codes;
#: beyond it the by columns must be combined into one first.
MAX_DIRECT_DOMAINS = 1 << 16


def domain_codes(by_coded: list[Coded], n_rows: int) -> tuple[np.ndarray, int]:
    """u32 domain code per row from the by columns (first column slowest), and how many
    codes there are.  One by column is used as it is, without a copy."""
    if not by_coded:
        return np.zeros(n_rows, dtype=np.uint32), 1
    if len(by_coded) == 1:
        c = by_coded[0]
        return c.codes, len(c.labels)
    sizes = [len(c.labels) for c in by_coded]
    total = int(np.prod(sizes, dtype=np.float64))
    codes = np.zeros(n_rows, dtype=np.int64)
    for c, k in zip(by_coded, sizes):
        codes = codes * k + np.where(c.codes == OUTSIDE, 0, c.codes)
    if total <= MAX_DIRECT_DOMAINS:
        return codes.astype(np.uint32), total
    raise DesignError(
        f"the by columns have {total} level combinations; combine them into one column first"
    )


def domain_values(
    codes: np.ndarray, by_names: list[str], by_coded: list[Coded], domain_labels: "pl.DataFrame | None"
) -> dict[str, list[Any]]:
    """The by columns' labels of domain `codes`: from a table of the level combinations
    (a streamed design's), or the codes' mixed radix (first column slowest)."""
    if domain_labels is not None:
        return {name: [domain_labels.get_column(name)[int(i)] for i in codes] for name in by_names}
    by_values: dict[str, list[Any]] = {}
    rest = np.asarray(codes).copy()
    for name, c in reversed(list(zip(by_names, by_coded))):
        k = len(c.labels)
        by_values[name] = [c.labels[i] for i in (rest % k)]
        rest //= k
    return by_values
