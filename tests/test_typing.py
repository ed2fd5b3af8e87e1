"""Types: the stubs of the compiled module match it (mypy's stubtest), the package is
marked typed, and every public function and method is annotated."""

from __future__ import annotations

import inspect
import subprocess
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import sscoverage as ssc

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = Path(ssc.__file__).parent


def test_stubs_match_the_compiled_module():
    pytest.importorskip("mypy")
    run = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "sscoverage._core"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert run.returncode == 0, f"_core.pyi is out of date with src/bindings:\n{run.stdout}{run.stderr}"


def test_package_is_marked_typed():
    assert (PACKAGE / "py.typed").is_file() and (PACKAGE / "_core.pyi").is_file()


def _unannotated(fn: Callable[..., Any], where: str) -> list[str]:
    sig = inspect.signature(fn)
    out = [f"{where}({name})" for name, p in sig.parameters.items()
           if name not in ("self", "cls") and p.annotation is inspect.Parameter.empty]
    if sig.return_annotation is inspect.Signature.empty and fn.__name__ != "__init__":
        out.append(f"{where} -> ?")
    return out


def _public_api() -> list[tuple[str, Callable[..., Any]]]:
    """Functions of the public modules and the public methods and properties of the
    public classes (those defined in sscoverage)."""
    found: list[tuple[str, Callable[..., Any]]] = []
    seen: set[int] = set()

    def ours(obj: Any) -> bool:
        name = obj.__name__ if isinstance(obj, types.ModuleType) else getattr(obj, "__module__", "")
        return str(name).startswith("sscoverage")

    def visit(obj: Any, where: str) -> None:
        if id(obj) in seen or not ours(obj):
            return
        seen.add(id(obj))
        if isinstance(obj, types.ModuleType):
            for name in getattr(obj, "__all__", [n for n in dir(obj) if not n.startswith("_")]):
                visit(getattr(obj, name), f"{where}.{name}")
        elif inspect.isclass(obj) and not issubclass(obj, BaseException):
            for name, member in vars(obj).items():
                if name.startswith("_") and name != "__init__":
                    continue
                if isinstance(member, property) and member.fget is not None:
                    found.append((f"{where}.{name}", member.fget))
                elif isinstance(member, (staticmethod, classmethod)):
                    found.append((f"{where}.{name}", member.__func__))
                elif inspect.isfunction(member):
                    found.append((f"{where}.{name}", member))
        elif inspect.isfunction(obj):
            found.append((where, obj))

    visit(ssc, "ssc")
    return found


def test_public_api_is_annotated():
    api = _public_api()
    assert len(api) > 100
    missing = [m for where, fn in api for m in _unannotated(fn, where)]
    assert not missing, "unannotated public API:\n" + "\n".join(missing)
