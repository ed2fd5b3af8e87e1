"""Human labels of codes, column names and report text, in English and Simplified
Chinese, from the labels file shipped with the package (``data/labels.json``)."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any

from .exceptions import MappingError

LANGUAGES = ("en", "zh")


@lru_cache(maxsize=1)
def _shipped() -> dict[str, dict[str, str]]:
    text = resources.files("sscoverage").joinpath("data", "labels.json").read_text(encoding="utf-8")
    return json.loads(text)


class Labels:
    """Human labels of the report's keys, codes and column names in one language: the
    shipped labels, English where a language lacks one, then `overrides`; a key without
    a label is shown with spaces for underscores.

    Parameters
    ----------
    lang : ``"en"`` or ``"zh"``.
    overrides : language (or ``"*"`` for every language) -> key -> text.
    """

    def __init__(self, lang: str = "en", overrides: dict[str, dict[str, str]] | None = None) -> None:
        if lang not in LANGUAGES:
            raise MappingError(f"language {lang!r}; use one of {', '.join(LANGUAGES)}")
        shipped = _shipped()
        overrides = overrides or {}
        self.lang = lang
        self.text = {**shipped["en"], **shipped[lang], **overrides.get("*", {}), **overrides.get(lang, {})}

    def __call__(self, key: Any, **fields: Any) -> str:
        text = self.text.get(str(key))
        if text is None:
            return str(key).replace("_", " ")
        return text.format(**fields) if fields else text
