"""MkDocs hooks: fill the generated parts of the pages once per build.

``<!-- generated:NAME -->`` in a page is replaced by the Markdown that the generator of
that name writes: the capability table (``capabilities.py``), the R / Stata / samplics
table (``equivalents.py``) and the reference-battery counts (``reference.py``).
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent
MARKER = re.compile(r"<!-- generated:([a-z_]+) -->")

_generated: dict[str, str] = {}


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"ssc_docs_{name}", HERE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def on_pre_build(config: Any) -> None:
    for name in ("capabilities", "equivalents", "reference"):
        _generated[name] = _load(name).markdown()


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in _generated:
            raise KeyError(f"{page.file.src_path}: no generator named {name!r}")
        return _generated[name]

    return MARKER.sub(fill, markdown)
