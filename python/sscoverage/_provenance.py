"""Where a result or a design came from: the call that made it, its arguments and the
design it was asked of.

:func:`recorded` wraps the public methods of :class:`~sscoverage.Design`.  A method that
returns a new design appends its call to the design's recipe (the constructor first,
then ``subset``, ``as_replicates``, ``calibrate``, ...), from which
:func:`sscoverage.load` rebuilds the design on the same data; a method that returns a
result attaches a :class:`Provenance`, which printing (design df, PSUs, strata),
reliability flags (per-domain degrees of freedom) and JSON output read.  Arguments are
kept as given; they become JSON only when the result is written.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

@dataclass(frozen=True)
class Provenance:
    """The call behind a result.

    Attributes
    ----------
    estimator : the :class:`~sscoverage.Design` method (``"mean"``, ``"glm"``, ...).
    options : its arguments, by name.
    design : the design it was asked of; after :func:`sscoverage.load`, the stored
        description of that design (a dict, see :func:`sscoverage.serialize.describe`).
    """

    estimator: str
    options: Mapping[str, Any]
    design: Any = field(repr=False)

    def facts(self) -> dict[str, Any]:
        """Size facts of the design: ``kind``, ``n_rows``, ``degf``, ``n_psu``, ``n_strata``,
        ``replicates`` (None for a linearisation design)."""
        if isinstance(self.design, Mapping):
            return {k: self.design.get(k) for k in FACTS}
        return design_facts(self.design)


FACTS = ("kind", "n_rows", "degf", "n_psu", "n_strata", "replicates")


def design_facts(design: Any) -> dict[str, Any]:
    """The :data:`FACTS` of a live design."""
    return {
        "kind": type(design).__name__,
        "n_rows": int(design.n_rows),
        "degf": int(design.degf),
        "n_psu": design.n_psu,
        "n_strata": design.n_strata,
        "replicates": design.n_replicates if design.is_replicate else None,
    }


def recorded(method: F) -> F:
    """Record calls of a :class:`~sscoverage.Design` method (see the module notes).

    ``__init__`` starts the recipe with the constructor's arguments (without the data);
    a method returning a design extends it; a method returning a result dataclass with a
    ``provenance`` field gets that field filled.
    """
    signature = inspect.signature(method)

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        out = method(self, *args, **kwargs)
        options = _arguments(signature, self, args, kwargs)
        if method.__name__ == "__init__":
            options.pop("data")
            self.recipe = ((type(self).__name__, options),)
        elif hasattr(out, "recipe"):
            # An argument left None ("choose for me", as a bootstrap seed) is stored as the
            # value the new design chose, so that the recipe rebuilds the same design.
            spec = getattr(out, "spec", {})
            chosen = {k: spec[k] for k, v in options.items() if v is None and spec.get(k) is not None}
            out.recipe = (*self.recipe, (method.__name__, {**options, **chosen}))
        elif _has_provenance(out):
            out = dataclasses.replace(out, provenance=Provenance(method.__name__, options, self))
        return out

    return wrapper  # type: ignore[return-value]


def _has_provenance(out: Any) -> bool:
    """A result dataclass instance with a ``provenance`` field."""
    return (
        dataclasses.is_dataclass(out)
        and not isinstance(out, type)
        and "provenance" in {f.name for f in dataclasses.fields(out)}
    )


def _arguments(signature: inspect.Signature, self: Any, args: tuple, kwargs: dict) -> dict[str, Any]:
    """The call's arguments by name, defaults included (so that a stored call does not
    depend on the defaults of a later version), ``**kw`` spread out, without ``self``."""
    bound = signature.bind(self, *args, **kwargs)
    bound.apply_defaults()
    out: dict[str, Any] = {}
    for name, value in list(bound.arguments.items())[1:]:
        if signature.parameters[name].kind is inspect.Parameter.VAR_KEYWORD:
            out.update(value)
        else:
            out[name] = value
    return out
