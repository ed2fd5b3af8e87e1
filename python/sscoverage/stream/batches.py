"""The batches of a streamed design: what reducing them needs, shared by the estimates,
the streamed GLM and the streamed rake (each reduces every batch to small sums, added
in batch order)."""

from __future__ import annotations

from typing import Any, Callable, Iterable, Protocol, Sequence, TypeVar

import numpy as np
import pandas as pd
import polars as pl

from ..exceptions import DesignError
from ..protocols import SurveyDesign

#: The column of a batch's PSU codes (joined from the design's PSU table).
UNIT = "__ssc_unit"
T = TypeVar("T")


def is_dask(data: Any) -> bool:
    """A Dask DataFrame (recognised without importing dask)."""
    return type(data).__module__.split(".")[0] == "dask"


def streams(data: Any) -> bool:
    """Data a design streams rather than holds: a polars LazyFrame or a Dask DataFrame."""
    return isinstance(data, pl.LazyFrame) or is_dask(data)


class BatchSource(SurveyDesign, Protocol):
    """What the streamed GLM and rake read of a streamed design."""

    #: The strata and PSU columns that key the PSU table.
    psu_keys: list[str]
    #: One row per first-stage PSU: its keys and its code (column ``UNIT``).
    psu_table: pl.DataFrame
    #: The rows' sampling weight as a polars expression.
    weight_expr: pl.Expr
    #: The rake done on the streamed design (None before one).
    raked: Any
    #: The weighting steps done, for the weighting report.
    adjustments: tuple[Any, ...]

    def map_batches(self, columns: list[str], reduce: Callable[..., T], *args: Any, label: str = ...,
                    progress: bool | None = ...) -> Iterable[T]:
        """`reduce(*args, batch)` of every batch, in batch order."""
        ...

    def reduce_batches(self, columns: list[str], reduce: Callable[..., T], combine: Callable[[T, T], T], *args: Any,
                       label: str = ..., progress: bool | None = ...) -> T:
        """Every batch reduced and the results combined into one, in a fixed order."""
        ...


def add_parts(a: Sequence[np.ndarray], b: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Two batches' arrays of sums added element-wise (``combine`` of
    :meth:`~sscoverage.StreamedDesign.reduce_batches`)."""
    return [np.asarray(x, dtype=np.float64) + y for x, y in zip(a, b)]


def on_polars(reduce: Callable[..., T], args: tuple[Any, ...], part: pd.DataFrame) -> T:
    """`reduce` of a Dask partition, as a polars frame."""
    return reduce(*args, pl.from_pandas(part))


def with_units(keys: list[str], psus: pl.DataFrame, batch: pl.DataFrame) -> pl.DataFrame:
    """The batch with each row's PSU code (column ``UNIT``) from the PSU table."""
    batch = batch.join(psus, on=keys, how="left", nulls_equal=True, maintain_order="left")
    if batch.get_column(UNIT).null_count():
        raise DesignError("a batch holds a PSU that was not in the design's first pass: the data changed")
    return batch


def expression_columns(expr: pl.Expr | None) -> list[str]:
    return [] if expr is None else expr.meta.root_names()
