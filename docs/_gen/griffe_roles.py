"""Griffe extension: reST cross-reference roles in docstrings shown as Markdown code.

The docstrings are numpydoc and say ``:class:`Design``` or ``:meth:`mean```, as Sphinx
reads them; Markdown would print the role.  Each role becomes a code span of its target.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?(?:class|meth|func|attr|mod|data|exc|obj):`~?([^`]+)`")


class SphinxRoles(griffe.Extension):
    """Rewrite ``:role:`target``` as ```target``` in every docstring."""

    def on_object(self, *, obj: griffe.Object, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = ROLE.sub(r"`\1`", obj.docstring.value)
