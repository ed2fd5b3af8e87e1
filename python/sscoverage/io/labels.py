"""Reading survey files: Stata ``.dta`` and SPSS ``.sav`` / ``.zsav`` (with pyreadstat,
the ``files`` extra), CSV (with polars) and parquet.

Stata and SPSS files carry labels.  A column whose every value has a value label
becomes a pandas categorical with the labels as its levels, in the order of their
codes (R's ``haven::as_factor``); a column labelled only in part (codes for
"refused" or "don't know" beside real numbers) keeps its numbers.  Variable labels,
and every value-label set, are kept in ``DataFrame.attrs`` and shown under printed
results.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

from ..exceptions import ColumnError, SurveyError

FORMATS = ("dta", "sav", "zsav", "csv", "parquet")


def read_survey(
    path: str | os.PathLike[str],
    format: str | None = None,
    columns: Sequence[str] | None = None,
    value_labels: bool = True,
    options: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Read a survey data file into a pandas DataFrame.

    Parameters
    ----------
    path : the file.
    format : ``"dta"``, ``"sav"``, ``"zsav"``, ``"csv"`` or ``"parquet"``; default from
        the file's suffix.
    columns : read only these columns.
    value_labels : turn fully labelled columns into categoricals (Stata, SPSS).
    options : keyword arguments of the reader (pyreadstat's ``read_dta`` /
        ``read_sav``, polars' ``read_csv``, pandas' ``read_parquet``), e.g.
        ``{"encoding": "gbk"}`` or ``{"separator": ";"}``.

    Returns
    -------
    pandas.DataFrame
        With ``attrs["variable_labels"]`` (column -> label) and
        ``attrs["value_labels"]`` (column -> {code: label}) for Stata and SPSS files.

    Raises
    ------
    SurveyError : an unknown format, or pyreadstat missing for Stata / SPSS files.
    ColumnError : a column in `columns` that the file does not have.

    Examples
    --------
    >>> df = ssc.read_survey("cfps2020.dta", columns=["pid", "provcd", "qa301"])  # doctest: +SKIP
    >>> design = ssc.Design(df, ids="psu", strata="provcd", weights="rswt")  # doctest: +SKIP
    """
    path = Path(path)
    if not path.is_file():
        raise SurveyError(f"no file {str(path)!r} to read: check the path (the working directory is {os.getcwd()!r})")
    kind = (format or path.suffix.lstrip(".")).lower()
    if kind not in FORMATS:
        raise SurveyError(f"cannot tell the format of {path.name!r}; pass format= one of {', '.join(FORMATS)}")
    wanted = list(columns) if columns is not None else None
    options = dict(options or {})
    if wanted is not None:
        known = _column_names(path, kind, options)
        unknown = [c for c in wanted if c not in known]
        if unknown:
            raise ColumnError(f"{path.name} has no column {unknown[0]!r}")
    if kind == "csv":
        return pl.read_csv(path, columns=wanted, **options).to_pandas()
    if kind == "parquet":
        # pandas reads the level order of categoricals that pandas wrote (polars would
        # put the levels in order of appearance, and so change the reference level).
        return pd.read_parquet(path, columns=wanted, **options)
    frame, meta = _readstat(kind)(str(path), usecols=wanted, **options)
    labels = meta.variable_value_labels
    if value_labels:
        for name, codes in labels.items():
            frame[name] = _as_factor(frame[name], codes)
    frame.attrs["variable_labels"] = {k: v for k, v in meta.column_names_to_labels.items() if v}
    frame.attrs["value_labels"] = {k: dict(v) for k, v in labels.items()}
    return frame


def _readstat(kind: str) -> Any:
    """pyreadstat's reader of Stata (dta) or SPSS (sav, zsav) files."""
    try:
        import pyreadstat
    except ImportError:
        raise SurveyError("reading Stata and SPSS files needs pyreadstat: pip install 'sscoverage[files]'") from None
    return pyreadstat.read_dta if kind == "dta" else pyreadstat.read_sav


def _column_names(path: Path, kind: str, options: Mapping[str, Any]) -> list[str]:
    """The columns of a file, read from its header (schema, metadata) only."""
    if kind == "csv":
        return pl.scan_csv(path, **options).collect_schema().names()
    if kind == "parquet":
        import pyarrow.parquet as pq

        return list(pq.read_schema(path).names)
    return list(_readstat(kind)(str(path), metadataonly=True)[1].column_names)


def _as_factor(values: pd.Series, codes: Mapping[Any, str]) -> pd.Series:
    """A categorical of the value labels (levels in code order) if every value has one;
    otherwise the values unchanged."""
    present = values.dropna().unique()
    if not all(v in codes for v in present):
        return values
    ordered = sorted(codes)
    levels = list(dict.fromkeys(codes[c] for c in ordered))  # two codes may share a label
    mapped = values.map(lambda v: codes.get(v, np.nan) if pd.notna(v) else np.nan)
    return pd.Series(pd.Categorical(mapped, categories=levels), index=values.index, name=values.name)


def label_lines(design: Any, names: Sequence[Any]) -> list[str]:
    """``name: label`` for each of `names` that has a variable label in the design's
    data (as :func:`read_survey` leaves them in ``attrs``)."""
    frame = getattr(design, "frame", None)
    labels = getattr(getattr(frame, "data", None), "attrs", {}).get("variable_labels", {})
    return [f"{name}: {labels[name]}" for name in dict.fromkeys(names) if name in labels]
