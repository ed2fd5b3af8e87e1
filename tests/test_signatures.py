"""Signatures a notebook can show (issue 13): every public function, method and property
of the package has a docstring; every parameter is annotated and named in a numpydoc
``Parameters`` section; no public signature takes ``**kwargs``; the confidence level is
called ``level`` everywhere.

The public API is what ``sscoverage.__all__`` names: its classes with their public
methods and properties (inherited ones included), its functions, and the public
functions and classes of the modules it re-exports (``plots``, ``margins``,
``sampling``, ``coverage``, ``datasets``, ``simulate``, ``small_area``, ``weighting``).
"""

from __future__ import annotations

import inspect
import re
from types import ModuleType
from typing import Any

import sscoverage as ssc

#: Names other packages give the confidence level; this one says ``level`` (R, Stata).
LEVEL_ALIASES = {"alpha", "conf_level", "ci_level", "confidence", "confidence_level", "conf", "cl", "conf_int_level"}

#: The numpydoc section headers (a title line over a line of dashes).
SECTION = re.compile(r"^\s*([A-Z][A-Za-z ]+)\n\s*-{3,}\s*$", re.MULTILINE)


def _is_ours(obj: Any) -> bool:
    return (getattr(obj, "__module__", None) or "").startswith("sscoverage")


def _refuses(func: Any) -> bool:
    """A method a streamed design only refuses (generated in ``stream/design.py``): it
    shows the in-memory method's signature and says it is not served."""
    return (func.__doc__ or "").startswith("Not served by a streamed design")


def _members(cls: type) -> list[tuple[str, Any]]:
    """The public methods and properties of `cls` (inherited ones from the package's own
    classes included), with the class itself standing for its ``__init__``."""
    out: list[tuple[str, Any]] = [(cls.__qualname__, cls)]
    for name in sorted(dir(cls)):
        if name.startswith("_"):
            continue
        for klass in cls.__mro__:
            if name in vars(klass):
                raw = vars(klass)[name]
                break
        else:  # pragma: no cover - dir() lists what the MRO holds
            continue
        if not _is_ours(klass):
            continue
        if isinstance(raw, property):
            out.append((f"{cls.__qualname__}.{name}", raw))
        elif isinstance(raw, (staticmethod, classmethod)):
            out.append((f"{cls.__qualname__}.{name}", raw.__func__))
        elif inspect.isfunction(raw) and not _refuses(raw):
            out.append((f"{cls.__qualname__}.{name}", raw))
    return out


def _public_api() -> dict[str, Any]:
    """Qualified name -> function, property or class (standing for its ``__init__``),
    each object once (under the first name the walk meets it by)."""
    api: dict[str, Any] = {}
    seen: set[int] = set()

    def add(name: str, obj: Any) -> None:
        if id(obj) not in seen:
            seen.add(id(obj))
            api[name] = obj

    def add_class(cls: type, prefix: str) -> None:
        for name, obj in _members(cls):
            add(f"{prefix}{name}", obj)

    def add_module(module: ModuleType) -> None:
        # Its __all__, else what it defines itself (not what it imports).
        listed = getattr(module, "__all__", None)
        names = listed or [n for n in vars(module) if not n.startswith("_")]
        for name in names:
            obj = getattr(module, name)
            if not (inspect.isfunction(obj) or isinstance(obj, type)) or not _is_ours(obj):
                continue
            if listed is None and obj.__module__ != module.__name__:
                continue
            if isinstance(obj, type):
                add_class(obj, f"{module.__name__}.")
            else:
                add(f"{module.__name__}.{name}", obj)

    for name in ssc.__all__:
        obj = getattr(ssc, name)
        if isinstance(obj, ModuleType):
            add_module(obj)
        elif isinstance(obj, type):
            add_class(obj, "sscoverage.")
        elif callable(obj):
            add(f"sscoverage.{name}", obj)
    return api


API = _public_api()


def _signature(obj: Any) -> inspect.Signature | None:
    """The parameters a caller passes (a class: its ``__init__``'s), or None for a
    property, a class without an ``__init__`` of the package's, or a result dataclass's
    generated ``__init__`` (its fields are the class's documented attributes)."""
    if isinstance(obj, property):
        return None
    if isinstance(obj, type):
        init = obj.__init__
        if not _is_ours(init) or not init.__code__.co_filename.endswith(".py"):
            return None
        obj = init
    return inspect.signature(obj)


def _parameters(obj: Any) -> list[inspect.Parameter]:
    sig = _signature(obj)
    if sig is None:
        return []
    params = list(sig.parameters.values())
    if params and params[0].name in ("self", "cls") and not isinstance(obj, staticmethod):
        params = params[1:]
    return params


def _doc(obj: Any) -> str:
    raw = obj.fget.__doc__ if isinstance(obj, property) else obj.__doc__
    return inspect.cleandoc(raw or "")


def documented_parameters(doc: str) -> set[str]:
    """The names a numpydoc ``Parameters`` section documents: ``name : type`` lines (also
    ``a, b : ...`` for parameters documented together) at the section's own indent."""
    headers = list(SECTION.finditer(doc))
    for i, header in enumerate(headers):
        if header.group(1).strip() != "Parameters":
            continue
        end = headers[i + 1].start() if i + 1 < len(headers) else len(doc)
        names: set[str] = set()
        for line in doc[header.end():end].splitlines():
            if not line.strip() or line[0].isspace():
                continue
            head = line.split(" : ")[0].rstrip(":").strip()
            names.update(n.strip().lstrip("*") for n in head.split(","))
        return names
    return set()


def test_the_walk_finds_the_public_api():
    # The classes, their methods and the sub-modules' functions: a walk that found
    # nothing would pass every test below.  (About 200 names: the audit of issue 13
    # found 23 without a docstring and some 70 with undocumented parameters.)
    for name in ("sscoverage.Design", "sscoverage.Design.mean", "sscoverage.Design.n_rows",
                 "sscoverage.Estimates.conf_int", "sscoverage.GLMResult.summary", "sscoverage.SurvivalCurves.curve",
                 "sscoverage.design.sampling.allocate", "sscoverage.band_shares",
                 "sscoverage.read_survey", "sscoverage.StreamedDesign.glm", "sscoverage.StreamedDesign.quantile",
                 "sscoverage.StreamedDesign.ciprop", "sscoverage.StreamedDesign.coxph", "sscoverage.ReplicateDesign"):
        assert name in API, name
    # The methods a streamed design refuses are not its API.
    assert "sscoverage.StreamedDesign.threshold_glm" not in API
    # Each function once: Design.mean is not listed again as ReplicateDesign.mean.
    assert "sscoverage.ReplicateDesign.mean" not in API
    assert len(API) > 150


def test_the_parameters_section_is_read():
    doc = inspect.cleandoc("""Summary.

    Parameters
    ----------
    y : str
        The column.
    level, df : float
        As for :meth:`mean`.
    *columns : str
    flag
        A switch.

    Returns
    -------
    out : Estimates
    """)
    assert documented_parameters(doc) == {"y", "level", "df", "columns", "flag"}
    assert documented_parameters("No sections.") == set()


def problems(obj: Any) -> dict[str, list[str]]:
    """What keeps `obj` from showing a notebook its signature, by check: ``docstring``,
    ``documented`` (parameters missing from the Parameters section), ``annotated``
    (parameters without a type), ``kwargs`` and ``level`` (another name for it)."""
    params = _parameters(obj)
    named = documented_parameters(_doc(obj))
    return {
        "docstring": [] if _doc(obj) else ["no docstring"],
        "documented": [p.name for p in params if p.name not in named],
        "annotated": [p.name for p in params if p.annotation is inspect.Parameter.empty],
        "kwargs": [p.name for p in params if p.kind is inspect.Parameter.VAR_KEYWORD],
        "level": [p.name for p in params if p.name in LEVEL_ALIASES],
    }


PROBLEMS = {name: problems(obj) for name, obj in API.items()}


def offenders(check: str) -> dict[str, list[str]]:
    """The public names that fail `check`, with what fails."""
    return {name: found[check] for name, found in PROBLEMS.items() if found[check]}


def test_every_public_name_has_a_docstring():
    assert offenders("docstring") == {}


def test_every_parameter_is_in_a_numpydoc_parameters_section():
    # For a class, its docstring documents __init__'s parameters.
    assert offenders("documented") == {}


def test_every_parameter_has_a_type():
    assert offenders("annotated") == {}


def test_no_keyword_pass_through():
    # Every option is a named parameter a notebook can show and a typo cannot slip past
    # (read_survey's reader options are one `options` mapping).  No exception remains.
    assert offenders("kwargs") == {}


def test_the_confidence_level_is_called_level():
    assert offenders("level") == {}


def test_the_checks_can_fail():
    def bare(y, alpha=0.05, **kw):
        return y

    def good(y: str, level: float = 0.95) -> str:
        """A mean.

        Parameters
        ----------
        y : str
            The column.
        level : float
            Confidence level.
        """
        return y

    assert problems(bare) == {"docstring": ["no docstring"], "documented": ["y", "alpha", "kw"],
                              "annotated": ["y", "alpha", "kw"], "kwargs": ["kw"], "level": ["alpha"]}
    assert not any(problems(good).values())
