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
import collections.abc
import dataclasses
import inspect
import json
import math
import os
import re
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

from .._core import __version__
from .._provenance import Provenance, design_facts
from ..exceptions import DesignError, SerializationError


#: Field metadata of what a result keeps for later work in this session (its design, its
#: model frame) but does not write to JSON: a saved result is its numbers.
UNSTORED = {"stored": False}

#: The classes :func:`load` may build, by their ``kind`` in the JSON: every subclass of
#: :class:`Serializable` (result dataclasses and designs) and every :func:`stored_value`,
#: each registered where the package defines it (so this module imports none of them).
_STORED: dict[str, type] = {}


def _kind(cls: type) -> str:
    """A stored class's name in the JSON: its public name, independent of the module
    that defines it, so that moving code never orphans a saved file."""
    return f"sscoverage:{cls.__qualname__}"


def _register(cls: type) -> None:
    kind = _kind(cls)
    if _STORED.setdefault(kind, cls) is not cls:
        raise TypeError(f"two stored classes are named {kind!r}; rename one")  # a packaging bug, caught at import


def _stored(kind: Any) -> type | None:
    """The registered class of a kind; files written before 0.2 name the defining module
    ("sscoverage.results:Estimates"), which reads as the same public name."""
    if not isinstance(kind, str) or not kind.startswith("sscoverage") or ":" not in kind:
        return None
    return _STORED.get("sscoverage:" + kind.split(":", 1)[1])


def stored_value(cls: type) -> type:
    """Register a dataclass that may stand inside a result's fields or options (a
    weighting step, reliability rules) as one :func:`load` may build."""
    _register(cls)
    return cls


class Serializable:
    """Adds :meth:`to_json` to a result dataclass or a design."""

    #: True on designs: their JSON is their recipe, rebuilt on the data by :func:`load`.
    _stored_as_design = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__module__.startswith("sscoverage."):
            _register(cls)

    def _design_record(self, design: dict[str, Any]) -> dict[str, Any]:
        """The stored description of the design this result was asked of; a result that
        needs more of the data later (per-domain df for flags) adds it."""
        return design

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
    if obj._stored_as_design:
        return {"sscoverage": __version__, "schema": SCHEMA, "kind": "design", "design": describe(obj)}
    cls = type(obj)
    out: dict[str, Any] = {"sscoverage": __version__, "schema": SCHEMA, "kind": _kind(cls)}
    prov = getattr(obj, "provenance", None)
    if isinstance(prov, Provenance):
        out["estimator"] = prov.estimator
        out["options"] = encode(dict(prov.options))
        # A loaded result's description is decoded: encoded again, it is written as read.
        design = encode(dict(prov.design)) if isinstance(prov.design, Mapping) else describe(prov.design)
        out["design"] = obj._design_record(design)
    out["result"] = {f.name: encode(getattr(obj, f.name)) for f in _stored_fields(cls)}
    return out


def describe(design: Any) -> dict[str, Any]:
    """A design's facts, its recipe and the sum of its weights (to check a rebuild)."""
    out = design_facts(design)
    recipe = getattr(design, "recipe", ())
    out["recipe"] = encode([list(step) for step in recipe])
    if recipe:  # a design without one (streamed) is not rebuilt, nor checked
        out["weight_sum"] = encode(float(np.sum(design.weights)))
    return out


def _stored_fields(cls: type) -> list[dataclasses.Field]:
    """Public init fields: the numbers.  Private ones hold live objects (a model frame,
    the design) that a loaded result does without."""
    return [f for f in dataclasses.fields(cls)
            if f.init and f.metadata.get("stored", True) and not f.name.startswith("_") and f.name != "provenance"]


def load(source: str | os.PathLike[str] | Mapping[str, Any], data: Any = None) -> Any:
    """A result or a design from its JSON (:meth:`to_json`).

    A saved file is data, never code: its kind must be one of the package's result
    types (:func:`result_types`), every field is checked against that type's fields
    and their types before the result is built, and a design's recipe may only name
    the constructor and the design steps of :data:`DESIGN_STEPS`, with their own
    parameters.  Nothing in the file is looked up as a module, class or function.

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
    SerializationError : not sscoverage output, a newer schema, an unknown kind, a
        field of the wrong type, sizes that do not match the payload; the message
        names the field.
    DesignError : a design without `data`, or data that give other weights than the
        saved design's.
    """
    rec = _parse(source)
    kind = rec["kind"]
    if kind == "design":
        if data is None:
            raise DesignError("a design's JSON holds its recipe, not its data: load(source, data=...)")
        return _rebuild(_field(rec, "design", Mapping, "the record"), data)
    cls = _stored(kind)
    cls = cls if cls in result_types().values() else None
    if cls is None:
        raise SerializationError(f"'kind': {kind!r} is not a kind of sscoverage result")
    result = _field(rec, "result", Mapping, "the record")
    fields = _checked_fields(cls, result, "result")
    if "estimator" in rec:
        estimator = _field(rec, "estimator", str, "the record")
        options = decode(_field(rec, "options", Mapping, "the record"), "options")
        design = decode(_field(rec, "design", Mapping, "the record"), "design")
        fields["provenance"] = Provenance(estimator, options, design)
    return cls(**fields)


#: The version of the JSON layout; a file of a newer one is refused by name.
SCHEMA = 1
#: Cap on the values one saved file may describe (array elements, frame cells):
#: sizes are checked against it and against the payload before anything is allocated.
MAX_VALUES = 100_000_000


def result_types() -> dict[str, type]:
    """The result classes :func:`load` builds, by their ``kind`` in the JSON."""
    return {kind: cls for kind, cls in _STORED.items()
            if issubclass(cls, Serializable) and dataclasses.is_dataclass(cls)}


#: Design steps a saved recipe may replay after the constructor (``Design`` or
#: ``ReplicateDesign``), each with the arguments of its own signature only.
DESIGN_STEPS = ("subset", "with_columns", "as_replicates", "adjust_nonresponse", "poststratify", "rake",
                "calibrate", "trim_weights")


def _parse(source: str | os.PathLike[str] | Mapping[str, Any]) -> dict[str, Any]:
    try:
        if isinstance(source, Mapping):
            rec: Any = dict(source)
        elif isinstance(source, str) and source.lstrip()[:1] in ("{", "["):
            rec = json.loads(source)
        elif isinstance(source, (str, os.PathLike)):
            path = Path(source)
            if not path.is_file():
                raise SerializationError(f"no file {str(path)!r} to load: give a path to sscoverage JSON, or its text")
            rec = json.loads(path.read_text(encoding="utf-8"))
        else:
            raise SerializationError(f"load() reads a path, JSON text or a dict, not {type(source).__name__}")
    except json.JSONDecodeError as err:
        raise SerializationError(f"not JSON: {err.msg} at line {err.lineno}, column {err.colno}") from None
    except UnicodeDecodeError:
        raise SerializationError("not JSON: the file is not UTF-8 text") from None
    except OSError as err:
        raise SerializationError(f"cannot read {str(source)[:200]!r}: {err.strerror}") from None
    except RecursionError:
        raise SerializationError("the JSON nests too deeply to be sscoverage output") from None
    if not isinstance(rec, dict) or "sscoverage" not in rec or "kind" not in rec:
        raise SerializationError("this JSON is not sscoverage output (no 'sscoverage' version and 'kind')")
    schema = rec.get("schema", SCHEMA)
    if not isinstance(schema, int) or isinstance(schema, bool) or not 1 <= schema <= SCHEMA:
        raise SerializationError(
            f"'schema': {schema!r}: this file was written by another version of sscoverage "
            f"({rec.get('sscoverage')!r}); this one ({__version__}) reads schema {SCHEMA}"
        )
    return rec


def _field(record: Mapping[str, Any], name: str, kind: type, where: str) -> Any:
    if name not in record:
        raise SerializationError(f"{where} has no {name!r}")
    value = record[name]
    if not isinstance(value, kind):
        raise SerializationError(f"{where}: {name!r} must be {_kind_name(kind)}, not {type(value).__name__}")
    return value


def _kind_name(kind: Any) -> str:
    return {Mapping: "an object", str: "text", list: "a list"}.get(kind, getattr(kind, "__name__", str(kind)))


def _checked_fields(cls: type, stored: Mapping[str, Any], path: str) -> dict[str, Any]:
    """`stored` decoded into `cls`'s stored fields, each checked against its type."""
    expected = {f.name: f for f in _stored_fields(cls)}
    unknown = sorted(set(stored) - set(expected))
    if unknown:
        raise SerializationError(f"{path}: {cls.__name__} has no field {unknown[0]!r}")
    hints = typing.get_type_hints(cls)
    out: dict[str, Any] = {}
    for name, f in expected.items():
        if name not in stored:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise SerializationError(f"{path}: the field {name!r} of {cls.__name__} is missing")
            continue
        value = decode(stored[name], f"{path}.{name}")
        if not _conforms(value, hints.get(name, Any)):
            raise SerializationError(
                f"{path}.{name}: {cls.__name__}.{name} holds {_describe_type(hints.get(name))}, "
                f"not {type(value).__name__}"
            )
        out[name] = float(value) if hints.get(name) is float and isinstance(value, int) else value
    return out


def _describe_type(hint: Any) -> str:
    return str(hint).replace("typing.", "").replace("<class '", "").replace("'>", "")


def _conforms(value: Any, hint: Any) -> bool:
    """Does a decoded value have the type of a field's annotation?"""
    if hint is Any:
        return True
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_conforms(value, a) for a in args)
    if hint is type(None):
        return value is None
    if origin is list:
        return isinstance(value, list) and all(_conforms(v, args[0]) for v in value)
    if origin is tuple:
        if not isinstance(value, tuple):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_conforms(v, args[0]) for v in value)
        return len(args) == len(value) and all(_conforms(v, a) for v, a in zip(value, args))
    if origin in (dict, Mapping, collections.abc.Mapping):
        return isinstance(value, dict) and all(_conforms(k, args[0]) and _conforms(v, args[1])
                                               for k, v in value.items())
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(hint, type) and isinstance(value, hint)


def _rebuild(description: Mapping[str, Any], data: Any) -> Any:
    # The design classes, as registered where they are defined (sscoverage imports both).
    Design, ReplicateDesign = _STORED["sscoverage:Design"], _STORED["sscoverage:ReplicateDesign"]
    steps = decode(_field(description, "recipe", list, "the design"), "design.recipe")
    if not steps:
        raise DesignError("the stored design has no recipe to rebuild it from")
    constructors = {"Design": Design, "ReplicateDesign": ReplicateDesign}
    calls = []
    for i, step in enumerate(steps):
        where = f"design.recipe[{i}]"
        if not (isinstance(step, list) and len(step) == 2 and isinstance(step[0], str) and isinstance(step[1], dict)):
            raise SerializationError(f"{where}: a step is [name, {{arguments}}]")
        name, args = step
        allowed = tuple(constructors) if i == 0 else DESIGN_STEPS
        if name not in allowed:
            raise SerializationError(f"{where}: {name!r} is not a step a saved design may hold ({', '.join(allowed)})")
        method = constructors[name].__init__ if i == 0 else getattr(Design, name)
        params = {p.name for p in inspect.signature(method).parameters.values()
                  if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)} - {"self", "data"}
        unknown = sorted(set(args) - params)
        if unknown:
            raise SerializationError(f"{where}: {name} takes no argument {unknown[0]!r}")
        unstored = [k for k, v in args.items() if isinstance(v, Unstored)]
        if unstored:
            raise DesignError(f"step {name!r} had arguments that JSON cannot hold ({', '.join(unstored)})")
        calls.append((name, args))
    first, args = calls[0]
    design = constructors[first](data, **args)
    for name, args in calls[1:]:
        design = getattr(Design, name)(design, **args)
    expected = decode(_field(description, "weight_sum", (int, float, dict), "the design"), "design.weight_sum")
    n_rows = _field(description, "n_rows", int, "the design")
    if design.n_rows != n_rows or not math.isclose(float(np.sum(design.weights)), expected, rel_tol=1e-12):
        raise DesignError(
            f"these data are not the design's: {design.n_rows} rows and weights summing to "
            f"{np.sum(design.weights):.10g}, where the saved design had {n_rows} rows "
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


_TAGS = {
    "__float__": {"__float__"},
    "__array__": {"__array__", "dtype", "shape"},
    "__mask__": {"__mask__", "shape"},
    "__polars__": {"__polars__"},
    "__frame__": {"__frame__"},
    "__series__": {"__series__"},
    "__categorical__": {"__categorical__"},
    "__items__": {"__items__"},
    "__tuple__": {"__tuple__"},
    "__dataclass__": {"__dataclass__", "fields"},
    "__unstored__": {"__unstored__"},
}


def decode(value: Any, path: str = "value") -> Any:
    """The inverse of :func:`encode`, checking every tag, type and size on the way
    (:class:`~sscoverage.SerializationError` names the field at `path`)."""
    if isinstance(value, list):
        return [decode(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, float) or value is None or isinstance(value, (bool, int, str)):
        return value
    if not isinstance(value, dict):
        raise SerializationError(f"{path}: {type(value).__name__} is not a JSON value")
    tags = [k for k in value if isinstance(k, str) and k.startswith("__")]
    if not tags:
        return {k: decode(v, f"{path}.{k}") for k, v in value.items()}
    tag = next((t for t in tags if t in _TAGS), None)
    if tag is None or set(value) != _TAGS[tag]:
        raise SerializationError(f"{path}: {sorted(value)} is not a value sscoverage writes")
    body = value[tag]
    if tag == "__float__":
        if body not in _SPECIAL:
            raise SerializationError(f"{path}: {body!r} is not 'nan', 'inf' or '-inf'")
        return _SPECIAL[body]
    if tag in ("__array__", "__mask__"):
        return _decode_array(value, path)
    if tag == "__polars__":
        frame = decode(body, f"{path}.__polars__")
        if not isinstance(frame, pd.DataFrame):
            raise SerializationError(f"{path}: a polars value holds a frame")
        return pl.from_pandas(frame)
    if tag == "__frame__":
        return _decode_frame(body, f"{path}.__frame__")
    if tag == "__series__":
        _expect(body, {"name", "index", "data"}, f"{path}.__series__")
        values = _decode_column(body["data"], f"{path}.data")
        return pd.Series(values, index=_decode_index(body["index"], len(values), f"{path}.index"),
                         name=_scalar(decode(body["name"], f"{path}.name"), f"{path}.name"))
    if tag == "__categorical__":
        return pd.Categorical(_decode_column(body, f"{path}.__categorical__"))
    if tag == "__items__":
        if not isinstance(body, list) or not all(isinstance(kv, list) and len(kv) == 2 for kv in body):
            raise SerializationError(f"{path}: items are [key, value] pairs")
        return {_scalar(_hashable(decode(k, f"{path}.key")), f"{path}.key"): decode(v, f"{path}[{i}]")
                for i, (k, v) in enumerate(body)}
    if tag == "__tuple__":
        if not isinstance(body, list):
            raise SerializationError(f"{path}: a tuple holds a list")
        return tuple(decode(v, f"{path}[{i}]") for i, v in enumerate(body))
    if tag == "__dataclass__":
        cls = _stored(body)
        cls = cls if dataclasses.is_dataclass(cls) else None
        if cls is None:
            raise SerializationError(f"{path}: {body!r} is not a type sscoverage stores")
        if not isinstance(value["fields"], dict):
            raise SerializationError(f"{path}.fields must be an object")
        return cls(**_checked_fields(cls, value["fields"], f"{path}.fields"))
    if not isinstance(body, str):
        raise SerializationError(f"{path}: an unstored value is described by text")
    return Unstored(body)


def _expect(body: Any, keys: set[str], path: str) -> None:
    if not isinstance(body, dict) or set(body) != keys:
        raise SerializationError(f"{path} must be an object with the keys {sorted(keys)}")


def _scalar(value: Any, path: str) -> Any:
    """A label (column, index or dict key): a number, text, None or a tuple of them."""
    if isinstance(value, tuple) and all(_scalar(v, path) is v for v in value):
        return value
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise SerializationError(f"{path}: a label is a number or text, not {type(value).__name__}")


def _decode_frame(body: Any, path: str) -> pd.DataFrame:
    _expect(body, {"columns", "columns_name", "index", "data"}, path)
    if not isinstance(body["columns"], list) or not isinstance(body["data"], list) \
            or len(body["columns"]) != len(body["data"]):
        raise SerializationError(f"{path}: as many columns as column names")
    columns = [_scalar(decode(c, f"{path}.columns"), f"{path}.columns") for c in body["columns"]]
    data = {j: _decode_column(col, f"{path}.data[{j}]") for j, col in enumerate(body["data"])}
    lengths = {len(v) for v in data.values()}
    if len(lengths) > 1:
        raise SerializationError(f"{path}: columns of different lengths {sorted(lengths)}")
    n = lengths.pop() if lengths else _index_length(body["index"])
    frame = pd.DataFrame(data, index=_decode_index(body["index"], n, f"{path}.index"))
    frame.columns = pd.Index(columns, name=_scalar(decode(body["columns_name"], f"{path}.columns_name"), path))
    return frame


def _index_length(index: Any) -> int:
    """Rows of a frame without columns: its index's (0 for a range index)."""
    if isinstance(index, dict) and isinstance(index.get("data"), dict):
        data = index["data"]
        for key in ("codes", "values", "__array__"):
            if isinstance(data.get(key), list):
                return len(data[key])
    return 0


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


# Numeric dtypes an array may be stored with: bool, integers and floats of 1-8 bytes.
_DTYPE = re.compile(r"[<>|=]?[biuf][1248]")


def _decode_array(value: Mapping[str, Any], path: str) -> np.ndarray:
    shape = value["shape"]
    if not (isinstance(shape, list) and len(shape) <= 8
            and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)):
        raise SerializationError(f"{path}.shape must be a list of at most 8 non-negative whole numbers")
    count = math.prod(shape)
    if count > MAX_VALUES:
        raise SerializationError(f"{path}.shape {shape} describes {count} values, more than one file may hold")
    if "__mask__" in value:
        if not isinstance(value["__mask__"], str):
            raise SerializationError(f"{path}.__mask__ must be base64 text")
        try:
            bits = np.frombuffer(base64.b64decode(value["__mask__"], validate=True), dtype=np.uint8)
        except ValueError:
            raise SerializationError(f"{path}.__mask__ is not base64") from None
        if len(bits) != (count + 7) // 8:
            raise SerializationError(f"{path}: {len(bits)} bytes of mask for the {count} values of shape {shape}")
        return np.unpackbits(bits, count=count).astype(bool).reshape(shape)
    values, dtype = value["__array__"], value["dtype"]
    if not isinstance(values, list) or len(values) != count:
        raise SerializationError(
            f"{path}: {len(values) if isinstance(values, list) else 'no list of'} values for shape {shape}")
    if dtype == "object":
        out = np.empty(count, dtype=object)
        out[:] = [decode(v, f"{path}[{i}]") for i, v in enumerate(values)]
        return out.reshape(shape)
    if not isinstance(dtype, str) or not _DTYPE.fullmatch(dtype):
        raise SerializationError(f"{path}.dtype {dtype!r} is not a numeric dtype sscoverage writes")
    numbers = [_SPECIAL.get(v, v) if isinstance(v, str) else v for v in values]
    if not all(isinstance(v, (int, float)) for v in numbers):
        raise SerializationError(f"{path}: an array of {dtype} holds numbers (or 'nan', 'inf', '-inf')")
    try:
        return np.array(numbers, dtype=np.dtype(dtype)).reshape(shape)
    except (OverflowError, ValueError) as err:
        raise SerializationError(f"{path}: {err}") from None


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


# pandas dtypes of stored non-numeric columns (what encode writes from str(dtype)).
_COLUMN_DTYPES = re.compile(
    r"object|str|string|boolean|u?int(8|16|32|64)|U?Int(8|16|32|64)|Float(32|64)|string\[(python|pyarrow)\]"
    r"|datetime64\[(s|ms|us|ns)\]"
)


def _decode_column(col: Any, path: str) -> Any:
    if not isinstance(col, dict) or not isinstance(col.get("dtype"), str):
        raise SerializationError(f"{path}: a column is an object with its 'dtype'")
    dtype = col["dtype"]
    if dtype == "category":
        _expect(col, {"dtype", "categories", "ordered", "codes"}, path)
        if not isinstance(col["categories"], list) or not isinstance(col["codes"], list):
            raise SerializationError(f"{path}: categories and codes are lists")
        if len(col["codes"]) > MAX_VALUES:
            raise SerializationError(f"{path}: more codes than one file may hold")
        categories = [_scalar(decode(c, f"{path}.categories"), f"{path}.categories") for c in col["categories"]]
        k = len(categories)
        if not all(isinstance(c, int) and not isinstance(c, bool) and -1 <= c < k for c in col["codes"]):
            raise SerializationError(f"{path}: category codes are whole numbers from -1 to {k - 1}")
        try:
            return pd.Categorical.from_codes(col["codes"], categories=categories, ordered=bool(col["ordered"]))
        except ValueError as err:  # categories repeated
            raise SerializationError(f"{path}: {err}") from None
    if "__array__" in col or "__mask__" in col:
        body = {k: v for k, v in col.items() if k != "dtype" or "__array__" in col}
        _expect(body, _TAGS["__array__"] if "__array__" in col else _TAGS["__mask__"], path)
        return _decode_array(body, path)
    _expect(col, {"dtype", "values"}, path)
    if not _COLUMN_DTYPES.fullmatch(dtype) or not isinstance(col["values"], list):
        raise SerializationError(f"{path}: {dtype!r} is not a column type sscoverage writes")
    if len(col["values"]) > MAX_VALUES:
        raise SerializationError(f"{path}: more values than one file may hold")
    values = [decode(v, f"{path}[{i}]") for i, v in enumerate(col["values"])]
    if dtype != "object":
        try:
            return pd.array(values, dtype=dtype)
        except (TypeError, ValueError) as err:
            raise SerializationError(f"{path}: the values are not of type {dtype}: {err}") from None
    out = np.empty(len(values), dtype=object)  # filled, so that tuples stay elements
    out[:] = values
    return out


def _encode_index(index: pd.Index) -> Any:
    if isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1:
        return None
    return {"name": encode(index.name), "data": _encode_column(pd.Series(list(index), dtype=(
        index.dtype if not isinstance(index, pd.MultiIndex) else object)))}


def _decode_index(value: Any, n: int, path: str) -> pd.Index:
    if value is None:
        return pd.RangeIndex(n)
    _expect(value, {"name", "data"}, path)
    labels = _decode_column(value["data"], f"{path}.data")
    if len(labels) != n:
        raise SerializationError(f"{path}: an index of {len(labels)} labels for {n} rows")
    return pd.Index(labels, name=_scalar(decode(value["name"], f"{path}.name"), f"{path}.name"))
