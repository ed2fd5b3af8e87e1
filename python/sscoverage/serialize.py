"""Reproducible output: results and designs as JSON, and back.

A result's JSON holds its numbers (every public field, exactly: floats are written
with Python's shortest round-trip repr), the estimator and its options, a
description of the design (its recipe, rows, PSUs, strata, degrees of freedom) and
the package version.  :func:`load` gives back a result with the same numbers.

A design's JSON holds its recipe: the constructor's arguments and each later step
(``subset``, ``as_replicates``, ``poststratify``, ``rake``, ``calibrate``,
``trim_weights``, ``with_columns``).  The data are not stored; :func:`load` replays
the recipe on the data passed in and checks that the weights come out as they were.

JSON has no NaN or infinity: they are written as the strings ``"nan"``, ``"inf"``
and ``"-inf"`` inside typed arrays and as ``{"__float__": ...}`` elsewhere; boolean
masks (subsets) are packed bits in base64.
"""

from __future__ import annotations

import base64
import dataclasses
import importlib
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

from ._core import __version__
from ._provenance import Provenance, design_facts
from .exceptions import DesignError, SurveyError


class Serializable:
    """Adds :meth:`to_json` to a result dataclass or a design."""

    def to_json(self, path: str | os.PathLike[str] | None = None, indent: int | None = 1) -> str:
        """This object as JSON text (written to `path` too, if given); :func:`sscoverage.load`
        reads it back.

        Parameters
        ----------
        path : file to write.
        indent : JSON indentation; None for one line.
        """
        text = json.dumps(record(self), indent=indent, allow_nan=False)
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text


class Unstored:
    """Stands in for a value JSON cannot hold (a function, a polars expression)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"<not stored: {self.text}>"


# ---------------------------------------------------------------------------- records
def record(obj: Any) -> dict[str, Any]:
    """The JSON-ready dict of a design or a result dataclass."""
    from .design import Design

    if isinstance(obj, Design):
        return {"sscoverage": __version__, "kind": "design", "design": describe(obj)}
    cls = type(obj)
    out: dict[str, Any] = {"sscoverage": __version__, "kind": f"{cls.__module__}:{cls.__qualname__}"}
    prov = getattr(obj, "provenance", None)
    if isinstance(prov, Provenance):
        out["estimator"] = prov.estimator
        out["options"] = encode(dict(prov.options))
        # A loaded result's description is decoded: encoded again, it is written as read.
        design = encode(dict(prov.design)) if isinstance(prov.design, Mapping) else describe(prov.design)
        if "domain_df" not in design and hasattr(obj, "flags"):
            from .publication import domain_df

            # Flags of a loaded result need each domain's df, which only the data give.
            design = {**design, "domain_df": encode(domain_df(obj))}
        out["design"] = design
    out["result"] = {f.name: encode(getattr(obj, f.name)) for f in _stored_fields(cls)}
    return out


def describe(design: Any) -> dict[str, Any]:
    """A design's facts, its recipe and the sum of its weights (to check a rebuild)."""
    out = design_facts(design)
    recipe = getattr(design, "_recipe", ())
    out["recipe"] = encode([list(step) for step in recipe])
    if recipe:  # a design without one (streamed) is not rebuilt, nor checked
        out["weight_sum"] = encode(float(np.sum(design.weights)))
    return out


def _stored_fields(cls: type) -> list[dataclasses.Field]:
    """Public init fields: the numbers.  Private ones hold live objects (a model frame,
    the design) that a loaded result does without."""
    return [f for f in dataclasses.fields(cls) if f.init and not f.name.startswith("_") and f.name != "provenance"]


def load(source: str | os.PathLike[str] | Mapping[str, Any], data: Any = None) -> Any:
    """A result or a design from its JSON (:meth:`to_json`).

    Parameters
    ----------
    source : a path to a JSON file, the JSON text, or the parsed dict.
    data : for a design: the data it was built on (a design's JSON holds its recipe,
        not its data).

    Returns
    -------
    The result, with the stored numbers (its ``provenance`` has the stored design
    description), or the design rebuilt on `data`.

    Raises
    ------
    DesignError : a design without `data`, data that give other weights than the
        saved design's, or a recipe step whose arguments could not be stored.
    SurveyError : JSON that is not sscoverage output.
    """
    rec = _parse(source)
    kind = rec.get("kind")
    if kind == "design":
        if data is None:
            raise DesignError("a design's JSON holds its recipe, not its data: load(source, data=...)")
        return _rebuild(rec["design"], data)
    cls = _result_class(kind)
    fields = {name: decode(value) for name, value in rec["result"].items()}
    if "estimator" in rec:
        fields["provenance"] = Provenance(rec["estimator"], decode(rec["options"]), decode(rec["design"]))
    return cls(**fields)


def _parse(source: str | os.PathLike[str] | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(source, Mapping):
        rec = dict(source)
    elif isinstance(source, str) and source.lstrip().startswith("{"):
        rec = json.loads(source)
    else:
        rec = json.loads(Path(source).read_text(encoding="utf-8"))
    if "sscoverage" not in rec or "kind" not in rec:
        raise SurveyError("this JSON is not sscoverage output (no 'sscoverage' version and 'kind')")
    return rec


def _result_class(kind: Any) -> type:
    """The result class named `kind` ("module:qualname"), only from this package."""
    module, _, name = str(kind).partition(":")
    if not module.startswith("sscoverage."):
        raise SurveyError(f"unknown kind of result {kind!r}")
    cls = getattr(importlib.import_module(module), name, None)
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls) and issubclass(cls, Serializable)):
        raise SurveyError(f"unknown kind of result {kind!r}")
    return cls


def _rebuild(description: Mapping[str, Any], data: Any) -> Any:
    from .design import Design
    from .replicates import ReplicateDesign

    steps = decode(description["recipe"])
    if not steps:
        raise DesignError("the stored design has no recipe to rebuild it from")
    for name, args in steps:
        unstored = [k for k, v in args.items() if isinstance(v, Unstored)]
        if unstored:
            raise DesignError(f"step {name!r} had arguments that JSON cannot hold ({', '.join(unstored)})")
    constructors = {"Design": Design, "ReplicateDesign": ReplicateDesign}
    first, args = steps[0]
    if first not in constructors:
        raise DesignError(f"cannot rebuild a {first} from JSON")
    design = constructors[first](data, **args)
    for name, args in steps[1:]:
        design = getattr(design, name)(**args)
    expected = decode(description["weight_sum"])
    if design.n_rows != description["n_rows"] or not math.isclose(
        float(np.sum(design.weights)), expected, rel_tol=1e-12
    ):
        raise DesignError(
            f"these data are not the design's: {design.n_rows} rows and weights summing to "
            f"{np.sum(design.weights):.10g}, where the saved design had {description['n_rows']} rows "
            f"and {expected:.10g}"
        )
    return design


# ---------------------------------------------------------------------------- values
_SPECIAL = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def _float(x: float) -> Any:
    """A float as JSON: itself, or the name of a non-finite value."""
    if math.isfinite(x):
        return x
    return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")


def encode(value: Any) -> Any:
    """A Python value as JSON-ready data, tagged so that :func:`decode` restores its type."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"__float__": _float(value)}
    if isinstance(value, np.generic):
        return encode(value.item())
    if isinstance(value, np.ndarray):
        return _encode_array(value)
    if isinstance(value, (pl.DataFrame, pl.Series)):
        return {"__polars__": encode(value.to_pandas())}
    if isinstance(value, pd.DataFrame):
        return {"__frame__": {
            "columns": [encode(c) for c in value.columns],
            "columns_name": encode(value.columns.name),
            "index": _encode_index(value.index),
            "data": [_encode_column(value.iloc[:, j]) for j in range(value.shape[1])],
        }}
    if isinstance(value, pd.Series):
        return {"__series__": {"name": encode(value.name), "index": _encode_index(value.index),
                               "data": _encode_column(value)}}
    if isinstance(value, pd.Categorical):
        return {"__categorical__": _encode_column(pd.Series(value))}
    if isinstance(value, Mapping):
        if all(isinstance(k, str) and not k.startswith("__") for k in value):
            return {k: encode(v) for k, v in value.items()}
        return {"__items__": [[encode(k), encode(v)] for k, v in value.items()]}
    if isinstance(value, tuple):
        return {"__tuple__": [encode(v) for v in value]}
    if isinstance(value, list):
        return [encode(v) for v in value]
    if dataclasses.is_dataclass(value) and type(value).__module__.startswith("sscoverage."):
        cls = type(value)
        return {"__dataclass__": f"{cls.__module__}:{cls.__qualname__}",
                "fields": {f.name: encode(getattr(value, f.name)) for f in _stored_fields(cls)}}
    return {"__unstored__": getattr(value, "__qualname__", None) or repr(value)}


def decode(value: Any) -> Any:
    """The inverse of :func:`encode`."""
    if isinstance(value, list):
        return [decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "__float__" in value:
        return _SPECIAL[value["__float__"]]
    if "__array__" in value or "__mask__" in value:
        return _decode_array(value)
    if "__polars__" in value:
        return pl.from_pandas(decode(value["__polars__"]))
    if "__frame__" in value:
        f = value["__frame__"]
        columns = [decode(c) for c in f["columns"]]
        data = {j: _decode_column(col) for j, col in enumerate(f["data"])}
        frame = pd.DataFrame(data, index=_decode_index(f["index"], len(data[0]) if data else 0))
        frame.columns = pd.Index(columns, name=decode(f["columns_name"]))
        return frame
    if "__series__" in value:
        s = value["__series__"]
        values = _decode_column(s["data"])
        return pd.Series(values, index=_decode_index(s["index"], len(values)), name=decode(s["name"]))
    if "__categorical__" in value:
        return pd.Categorical(_decode_column(value["__categorical__"]))
    if "__items__" in value:
        return {_hashable(decode(k)): decode(v) for k, v in value["__items__"]}
    if "__tuple__" in value:
        return tuple(decode(v) for v in value["__tuple__"])
    if "__dataclass__" in value:
        module, _, name = value["__dataclass__"].partition(":")
        if not module.startswith("sscoverage."):
            raise SurveyError(f"unknown stored type {module}:{name}")
        cls = getattr(importlib.import_module(module), name)
        return cls(**{k: decode(v) for k, v in value["fields"].items()})
    if "__unstored__" in value:
        return Unstored(value["__unstored__"])
    return {k: decode(v) for k, v in value.items()}


def _hashable(key: Any) -> Any:
    return tuple(key) if isinstance(key, list) else key


def _encode_array(a: np.ndarray) -> dict[str, Any]:
    if a.dtype == bool:
        packed = np.packbits(a.ravel())
        return {"__mask__": base64.b64encode(packed.tobytes()).decode("ascii"), "shape": list(a.shape)}
    if a.dtype.kind == "f":
        values: list[Any] = [_float(x) for x in a.ravel().tolist()]
    elif a.dtype.kind in "iu":
        values = a.ravel().tolist()
    else:
        values = [encode(x) for x in a.ravel().tolist()]
    return {"__array__": values, "dtype": a.dtype.str if a.dtype.kind in "fiu" else "object", "shape": list(a.shape)}


def _decode_array(value: Mapping[str, Any]) -> np.ndarray:
    shape = tuple(value["shape"])
    if "__mask__" in value:
        bits = np.frombuffer(base64.b64decode(value["__mask__"]), dtype=np.uint8)
        return np.unpackbits(bits, count=int(np.prod(shape))).astype(bool).reshape(shape)
    if value["dtype"] == "object":
        out = np.empty(len(value["__array__"]), dtype=object)
        out[:] = [decode(v) for v in value["__array__"]]
        return out.reshape(shape)
    return np.array(value["__array__"], dtype=object).astype(np.dtype(value["dtype"])).reshape(shape)


def _encode_column(s: pd.Series) -> dict[str, Any]:
    dtype = s.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return {"dtype": "category", "categories": [encode(c) for c in dtype.categories],
                "ordered": bool(dtype.ordered), "codes": s.cat.codes.tolist()}
    if dtype.kind in "fiub":
        return {"dtype": dtype.str if dtype.kind != "b" else "bool", **_encode_array(s.to_numpy())}
    return {"dtype": str(dtype), "values": [encode(None if _missing(v) else v) for v in s.tolist()]}


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA or v is pd.NaT


def _decode_column(col: Mapping[str, Any]) -> Any:
    dtype = col["dtype"]
    if dtype == "category":
        categories = [decode(c) for c in col["categories"]]
        return pd.Categorical.from_codes(col["codes"], categories=categories, ordered=col["ordered"])
    if "__array__" in col or "__mask__" in col:
        return _decode_array(col)
    values = [decode(v) for v in col["values"]]
    if dtype != "object":
        return pd.array(values, dtype=dtype)
    out = np.empty(len(values), dtype=object)  # filled, so that tuples stay elements
    out[:] = values
    return out


def _encode_index(index: pd.Index) -> Any:
    if isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1:
        return None
    return {"name": encode(index.name), "data": _encode_column(pd.Series(list(index), dtype=(
        index.dtype if not isinstance(index, pd.MultiIndex) else object)))}


def _decode_index(value: Any, n: int) -> pd.Index:
    if value is None:
        return pd.RangeIndex(n)
    return pd.Index(_decode_column(value["data"]), name=decode(value["name"]))
