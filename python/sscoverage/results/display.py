"""How result objects print: a compact text table for ``repr`` and an HTML table for
Jupyter, from the same header lines, table and footer lines.

Written once so that every result looks alike: numbers to six significant digits,
long tables cut to their first and last rows (``to_pandas()`` has them all), and the
header and notes escaped in HTML.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import pandas as pd

#: Rows shown before a table is cut to its first and last rows.
MAX_ROWS = 30
#: Characters per line of the text tables (pandas wraps wider tables).
WIDTH = 120


def number(x: float) -> str:
    """A number to six significant digits, as R prints estimates; large ones (totals)
    in full rather than with an exponent."""
    return f"{x:.0f}" if 1e6 <= abs(x) < 1e15 else f"{x:.6g}"


def text(header: Sequence[str], table: pd.DataFrame | None = None, footer: Sequence[str] = (),
         index: bool = False) -> str:
    """Header lines, the table (cut to :data:`MAX_ROWS`) and footer lines as plain text."""
    lines = list(header)
    if table is not None:
        with pd.option_context("display.width", WIDTH, "display.max_columns", 30):
            lines.append(table.to_string(index=index, max_rows=MAX_ROWS, float_format=number, na_rep=""))
    lines.extend(footer)
    return "\n".join(lines)


def to_html(header: Sequence[str], table: pd.DataFrame | None = None, footer: Sequence[str] = (),
            index: bool = False) -> str:
    """The same content as :func:`text`, as an HTML fragment for Jupyter's ``_repr_html_``."""
    parts = ["<div>"]
    if header:
        parts.append("<p><b>" + "<br>".join(html.escape(h) for h in header) + "</b></p>")
    if table is not None:
        parts.append(table.to_html(index=index, max_rows=MAX_ROWS, float_format=number, na_rep=""))
    if footer:
        parts.append("<p>" + "<br>".join(html.escape(f) for f in footer) + "</p>")
    parts.append("</div>")
    return "".join(parts)


def design_line(facts: dict | None) -> list[str]:
    """The design facts of a model's summary header (R's "Survey design" lines)."""
    if facts is None:
        return []
    if facts["n_psu"] is None:
        where = f"{facts['replicates']} replicate weights"
    else:
        where = f"{facts['n_psu']} PSUs in {facts['n_strata']} strata"
        if facts["replicates"]:
            where += f", {facts['replicates']} replicates"
    return [f"Design: {facts['n_rows']} rows, {where}; {facts['degf']} design df"]


#: R's significance codes (``printCoefmat``), largest p-value first.
SIGNIF = ((0.001, "***"), (0.01, "**"), (0.05, "*"), (0.1, "."))
SIGNIF_LEGEND = "Signif. codes:  0 '***' 0.001 '**' 0.01 '*' 0.05 '.' 0.1 ' ' 1"


def stars(p: float) -> str:
    """R's significance code of a p-value."""
    return next((code for cut, code in SIGNIF if p < cut), "")


class SummaryFrame(pd.DataFrame):
    """A model's coefficient table that prints with a header and a footer, as R's
    ``summary`` does (p-values get R's significance codes).

    It is a pandas DataFrame in every other respect; frames derived from it (a column,
    a rounding) are plain DataFrames.
    """

    _metadata = ["header", "footer"]

    @property
    def _constructor(self) -> type[pd.DataFrame]:
        return pd.DataFrame

    def _shown(self) -> pd.DataFrame:
        shown = pd.DataFrame(self)
        if "p_value" in shown:
            shown[""] = [stars(p) for p in shown["p_value"]]
        return shown

    def _lines(self) -> tuple[list[str], list[str]]:
        return list(self.header), ([SIGNIF_LEGEND] if "p_value" in self else []) + list(self.footer)

    def __repr__(self) -> str:
        header, footer = self._lines()
        return text(header, self._shown(), footer)

    def _repr_html_(self) -> str:
        header, footer = self._lines()
        return to_html(header, self._shown(), footer)


def summary_frame(table: pd.DataFrame, header: Sequence[str], footer: Sequence[str] = ()) -> SummaryFrame:
    """`table` as a :class:`SummaryFrame` with these header and footer lines."""
    out = SummaryFrame(table)
    out.header = list(header)
    out.footer = list(footer)
    return out
