"""Model formulas, read by sscoverage's own restricted grammar before anything evaluates
them.

formulaic evaluates every factor of a formula as Python code; a formula from a file or
a colleague's notebook must not be able to run code.  So each formula is first parsed
here into a tree that can hold only:

- column names (R's dotted names such as ``api.stu`` and backquoted names included);
- numbers; in ``C(x, levels=[...])`` a list of numbers or quoted strings;
- term operators ``+ - * / : ^`` and parentheses, the intercept ``0``, ``1`` and ``-1``;
- the calls ``C(x)``, ``I(expression)``, the transforms ``scale``, ``center``,
  ``poly(x, degree)`` and the functions of :data:`FUNCTIONS`;
- inside a call: arithmetic (``+ - * / % ** ^``), comparisons, ``&`` and ``|``;
- on the left of a Cox model: ``Surv(time, event)``.

Anything else (attribute access, subscripts, strings outside ``levels``, unknown
functions, lambdas, keywords) raises :class:`~sscoverage.FormulaError` naming the
offending text.  formulaic then sees only the formula as re-written from the tree,
with every column that is not a plain Python name replaced by an alias
(``__ssc0__``), so what it evaluates is exactly what was checked.
"""

from __future__ import annotations

import difflib
import keyword
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .exceptions import ColumnError, FormulaError

#: Functions a formula may call on numbers: name -> numpy function formulaic is given.
FUNCTIONS: Mapping[str, Any] = {
    "log": np.log,
    "log2": np.log2,
    "log10": np.log10,
    "log1p": np.log1p,
    "exp": np.exp,
    "sqrt": np.sqrt,
    "abs": np.abs,
    "pmax": np.maximum,
    "pmin": np.minimum,
}
#: formulaic's stateful transforms a formula may use on a variable (they learn a centre,
#: a scale or a basis from the data).
TRANSFORMS = ("scale", "center", "poly")
#: The evaluation context handed to formulaic: only the functions above.
CONTEXT: Mapping[str, Any] = dict(FUNCTIONS)

_ALIAS = re.compile(r"__ssc(\d+)__")


# ---------------------------------------------------------------------------- tokens
@dataclass(frozen=True)
class _Token:
    kind: str  # name, number, string, op, end
    text: str
    pos: int


_OPS = ("**", "<=", ">=", "==", "!=", "%in%", "~", "+", "-", "*", "/", ":", "^", "(", ")", ",", "=",
        "[", "]", "<", ">", "&", "|", "%")
_NUMBER = re.compile(r"(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def _tokens(text: str) -> list[_Token]:
    out: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        if ch == "`":
            end = text.find("`", i + 1)
            if end < 0:
                raise FormulaError(f"unclosed backquote at position {i} of the formula {text!r}")
            out.append(_Token("name", text[i + 1:end], i))
            i = end + 1
            continue
        if ch in "'\"":
            end = text.find(ch, i + 1)
            if end < 0 or "\\" in text[i + 1:end]:
                raise FormulaError(f"unclosed or escaped string at position {i} of the formula {text!r}")
            out.append(_Token("string", text[i + 1:end], i))
            i = end + 1
            continue
        number = _NUMBER.match(text, i)
        if number and (ch.isdigit() or (ch == "." and number.end() > i + 1)):
            out.append(_Token("number", number.group(0), i))
            i = number.end()
            continue
        if ch.isalpha() or ch in "_.":
            j = i + 1
            while j < n and (text[j].isalnum() or text[j] in "_."):
                j += 1
            out.append(_Token("name", text[i:j], i))
            i = j
            continue
        op = next((o for o in _OPS if text.startswith(o, i)), None)
        if op is None:
            raise FormulaError(f"the formula {text!r} has {ch!r} at position {i}, which formulas cannot hold")
        out.append(_Token("op", op, i))
        i += len(op)
    out.append(_Token("end", "", n))
    return out


# ---------------------------------------------------------------------------- tree
@dataclass(frozen=True)
class Node:
    """One node of a parsed formula: ``kind`` is one of name, number, string, list,
    call, binary, unary; ``value`` the name, number, operator or function."""

    kind: str
    value: Any
    args: tuple["Node", ...] = ()
    keywords: tuple[tuple[str, "Node"], ...] = ()


class _Parser:
    """Recursive descent over the tokens: term algebra outside calls, arithmetic inside."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.i = 0

    # -- helpers
    @property
    def token(self) -> _Token:
        return self.tokens[self.i]

    def take(self) -> _Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def at(self, *ops: str) -> bool:
        return self.token.kind == "op" and self.token.text in ops

    def expect(self, op: str) -> None:
        if not self.at(op):
            self.fail(f"expected {op!r}")
        self.i += 1

    def fail(self, what: str) -> None:
        tok = self.token
        found = "the end" if tok.kind == "end" else repr(tok.text)
        raise FormulaError(f"cannot read the formula {self.text!r}: {what} at position {tok.pos}, found {found}")

    # -- the formula
    def formula(self, lhs: str) -> tuple[Node | None, Node]:
        left = None
        if not self.at("~"):
            if lhs == "none":
                self.fail("a one-sided formula starts with '~'")
            left = self.surv() if lhs == "surv" else self.expr()
        elif lhs in ("required", "surv"):
            self.fail("the formula needs an outcome on the left of '~' (write 'y ~ x1 + x2')")
        self.expect("~")
        right = self.terms()
        if self.token.kind != "end":
            self.fail("expected the end of the formula")
        return left, right

    def surv(self) -> Node:
        tok = self.take()
        if tok.kind != "name" or tok.text != "Surv" or not self.at("("):
            self.i -= 1
            self.fail("a Cox model's outcome is written Surv(time, event)")
        self.expect("(")
        time = self.column()
        self.expect(",")
        event = self.column()
        self.expect(")")
        return Node("call", "Surv", (time, event))

    def column(self) -> Node:
        tok = self.take()
        if tok.kind != "name":
            self.i -= 1
            self.fail("expected a column name")
        return Node("name", tok.text)

    # -- term algebra (R's precedence: ^ > %in% > : > * / > + -)
    def terms(self) -> Node:
        if self.at("-", "+"):
            op = self.take().text
            node = Node("unary", op, (self.term_product(),))
        else:
            node = self.term_product()
        while self.at("+", "-"):
            op = self.take().text
            node = Node("binary", op, (node, self.term_product()))
        return node

    def term_product(self) -> Node:
        node = self.term_interaction()
        while self.at("*", "/"):
            op = self.take().text
            node = Node("binary", op, (node, self.term_interaction()))
        return node

    def term_interaction(self) -> Node:
        node = self.term_in()
        while self.at(":"):
            self.take()
            node = Node("binary", ":", (node, self.term_in()))
        return node

    def term_in(self) -> Node:
        node = self.term_power()
        while self.at("%in%"):
            self.take()
            node = Node("binary", "%in%", (node, self.term_power()))
        return node

    def term_power(self) -> Node:
        node = self.term_atom()
        if self.at("^", "**"):
            self.take()
            tok = self.take()
            if tok.kind != "number" or not tok.text.isdigit():
                self.i -= 1
                self.fail("a term power is a whole number, as (a + b)^2")
            node = Node("binary", "^", (node, Node("number", int(tok.text))))
        return node

    def term_atom(self) -> Node:
        tok = self.token
        if self.at("("):
            self.take()
            node = self.terms()
            self.expect(")")
            return Node("unary", "()", (node,))
        if tok.kind == "number":
            if tok.text not in ("0", "1"):
                self.fail("a number in the term list is 0 or 1 (the intercept)")
            self.take()
            return Node("number", int(tok.text))
        if tok.kind == "name":
            self.take()
            if self.at("("):
                return self.call(tok.text, term=True)
            return Node("name", tok.text)
        self.fail("expected a term")
        raise AssertionError  # unreachable: fail raises

    def call(self, name: str, term: bool) -> Node:
        allowed = ("C", "I", *TRANSFORMS, *FUNCTIONS) if term else tuple(FUNCTIONS)
        if name not in allowed:
            hint = ", ".join(allowed)
            self.i -= 1
            self.fail(f"{name}() is not a function a formula may call here (these are: {hint})")
        self.expect("(")
        if name == "C":
            node = self.factor_call()
        elif name == "poly":
            x = self.expr()
            self.expect(",")
            tok = self.take()
            if tok.kind != "number" or not tok.text.isdigit():
                self.i -= 1
                self.fail("poly(x, degree) takes a whole-number degree")
            node = Node("call", "poly", (x, Node("number", int(tok.text))))
        else:
            args = [self.expr()]
            while self.at(","):
                self.take()
                args.append(self.expr())
            arity = {"pmax": 2, "pmin": 2}.get(name, 1)
            if len(args) != arity:
                self.fail(f"{name}() takes {arity} argument{'s' if arity > 1 else ''}")
            node = Node("call", name, tuple(args))
        self.expect(")")
        return node

    def factor_call(self) -> Node:
        x = self.expr()
        keywords: list[tuple[str, Node]] = []
        if self.at(","):
            self.take()
            tok = self.take()
            if tok.kind != "name" or tok.text != "levels" or not self.at("="):
                self.i -= 1
                self.fail("C() takes a variable and optionally levels=[...]")
            self.expect("=")
            keywords.append(("levels", self.literal_list()))
        return Node("call", "C", (x,), tuple(keywords))

    def literal_list(self) -> Node:
        self.expect("[")
        items: list[Node] = []
        while not self.at("]"):
            sign = -1 if self.at("-") and self.take() else 1
            tok = self.take()
            if tok.kind == "string" and sign == 1:
                items.append(Node("string", tok.text))
            elif tok.kind == "number":
                items.append(Node("number", sign * _number(tok.text)))
            else:
                self.i -= 1
                self.fail("levels=[...] holds numbers and quoted strings")
            if not self.at("]"):
                self.expect(",")
        self.expect("]")
        return Node("list", None, tuple(items))

    # -- arithmetic inside calls (R's precedence: comparisons bind tighter than & and |)
    def expr(self) -> Node:
        node = self.conjunction()
        while self.at("|"):
            self.take()
            node = Node("binary", "|", (node, self.conjunction()))
        return node

    def conjunction(self) -> Node:
        node = self.comparison()
        while self.at("&"):
            self.take()
            node = Node("binary", "&", (node, self.comparison()))
        return node

    def comparison(self) -> Node:
        node = self.sum()
        if self.at("<", "<=", ">", ">=", "==", "!="):
            op = self.take().text
            node = Node("binary", op, (node, self.sum()))
        return node

    def sum(self) -> Node:
        node = self.product()
        while self.at("+", "-"):
            op = self.take().text
            node = Node("binary", op, (node, self.product()))
        return node

    def product(self) -> Node:
        node = self.signed()
        while self.at("*", "/", "%"):
            op = self.take().text
            node = Node("binary", op, (node, self.signed()))
        return node

    def signed(self) -> Node:
        if self.at("-", "+"):
            op = self.take().text
            return Node("unary", op, (self.signed(),))
        return self.power()

    def power(self) -> Node:
        node = self.atom()
        if self.at("**", "^"):
            self.take()
            node = Node("binary", "**", (node, self.signed()))
        return node

    def atom(self) -> Node:
        tok = self.token
        if self.at("("):
            self.take()
            node = self.expr()
            self.expect(")")
            return node
        if tok.kind == "number":
            self.take()
            return Node("number", _number(tok.text))
        if tok.kind == "name":
            self.take()
            if self.at("("):
                return self.call(tok.text, term=False)
            return Node("name", tok.text)
        self.fail("expected a column, a number or a function of them")
        raise AssertionError  # unreachable: fail raises


def _number(text: str) -> float | int:
    value = float(text)
    if not math.isfinite(value):
        raise FormulaError(f"the number {text} in a formula is not finite")
    return int(text) if text.isdigit() else value


# ---------------------------------------------------------------------------- rendering
# Python's binding strength, for the parentheses of the text formulaic evaluates.
# (Python binds & and | tighter than comparisons, R looser: the tree keeps R's reading.)
_PY_PRECEDENCE = {"<": 1, "<=": 1, ">": 1, ">=": 1, "==": 1, "!=": 1, "|": 2, "&": 3,
                  "+": 4, "-": 4, "*": 5, "/": 5, "%": 5, "**": 7}
# R's term algebra, rendered in formulaic's (the same operators and order).
_TERM_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2, ":": 3, "%in%": 4, "^": 5}


@dataclass
class ParsedFormula:
    """A formula that passed the grammar, ready for formulaic.

    Attributes
    ----------
    formula : the formula as the user wrote it.
    text : the formula as formulaic is to read it (aliases for non-Python names).
    aliases : alias -> column, for the columns that are not Python names.
    variables : the columns the formula uses, in order of appearance.
    outcome : the left-hand side's tree (None for a one-sided formula).
    logical_terms : rendered ``C(I(...))`` factors of comparisons -> R's term name
        ``I(...)``: R codes a logical ``I(x > 4)`` as a two-level factor.
    """

    formula: str
    text: str
    aliases: dict[str, Any]
    variables: list[Any]
    outcome: Node | None
    logical_terms: dict[str, str] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        """The formula's names of :attr:`variables` (the alias where there is one)."""
        alias_of = {column: alias for alias, column in self.aliases.items()}
        return [alias_of.get(c, str(c)) for c in self.variables]


class _Renderer:
    def __init__(self, columns: Sequence[Any], formula: str) -> None:
        self.wanted = {str(c): c for c in columns}
        self.formula = formula
        self.aliases: dict[str, Any] = {}
        self.by_column: dict[str, str] = {}
        self.variables: list[Any] = []
        self.logical_terms: dict[str, str] = {}

    def name(self, text: str) -> str:
        if text not in self.wanted:
            close = difflib.get_close_matches(text, list(self.wanted), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ColumnError(f"column {text!r} in the formula {self.formula!r} is not in the data.{hint}")
        column = self.wanted[text]
        if column not in self.variables:
            self.variables.append(column)
        if text.isidentifier() and not keyword.iskeyword(text) and not _ALIAS.fullmatch(text) \
                and text not in CONTEXT and text not in ("C", "I", *TRANSFORMS, "np"):
            return text
        if text not in self.by_column:
            alias = f"__ssc{len(self.by_column)}__"
            self.by_column[text] = alias
            self.aliases[alias] = column
        return self.by_column[text]

    def terms(self, node: Node, parent: int = 0) -> str:
        if node.kind == "binary":
            prec = _TERM_PRECEDENCE[node.value]
            left = self.terms(node.args[0], prec)
            right = self.terms(node.args[1], prec + 1)
            text = f"{left} {node.value} {right}" if node.value != "^" else f"{left}^{right}"
            return f"({text})" if prec < parent else text
        if node.kind == "unary":
            inner = self.terms(node.args[0], 0 if node.value == "()" else 10)
            return f"({inner})" if node.value == "()" else f"{node.value}{inner}"
        if node.kind == "number":
            return str(node.value)
        if node.kind == "name":
            return self.name(node.value)
        if node.value == "I" and _is_logical(node.args[0]):
            inner = f"I({self.expr(node.args[0])})"
            factor = f"C({inner})"
            self.logical_terms[factor] = inner
            return factor
        return self.call(node)

    def call(self, node: Node) -> str:
        args = [self.expr(a) for a in node.args]
        args += [f"{k}={self.expr(v)}" for k, v in node.keywords]
        return f"{node.value}({', '.join(args)})"

    def expr(self, node: Node, parent: int = 0) -> str:
        if node.kind == "name":
            return self.name(node.value)
        if node.kind == "number":
            return repr(node.value)
        if node.kind == "string":
            return repr(str(node.value))
        if node.kind == "list":
            return "[" + ", ".join(self.expr(a) for a in node.args) + "]"
        if node.kind == "call":
            return self.call(node)
        if node.kind == "unary":
            return f"({node.value}{self.expr(node.args[0], 6)})" if parent > 6 else f"{node.value}{self.expr(node.args[0], 6)}"
        prec = _PY_PRECEDENCE[node.value]
        # ** is right-associative; the others left-associative.
        left = self.expr(node.args[0], prec + (node.value == "**"))
        right = self.expr(node.args[1], prec + (node.value != "**"))
        text = f"{left} {node.value} {right}"
        # Python chains comparisons (a < b < c): a comparison inside one is parenthesised.
        return f"({text})" if prec < parent or (prec == 1 and parent == 1) else text


def _is_logical(node: Node) -> bool:
    return node.kind == "binary" and node.value in ("<", "<=", ">", ">=", "==", "!=", "&", "|")


def parse_formula(formula: Any, columns: Sequence[Any], lhs: str = "required") -> ParsedFormula:
    """Check `formula` against the grammar and the data's `columns`; nothing is evaluated.

    Parameters
    ----------
    formula : the formula text, e.g. ``"lapse ~ log(income) + C(province) + age * hukou"``.
    columns : the data's column names; every name in the formula must be one of them.
    lhs : ``"required"`` (a model: ``y ~ ...``), ``"none"`` (calibration: ``~ x1 + x2``),
        ``"optional"``, or ``"surv"`` (``Surv(time, event) ~ ...``).

    Returns
    -------
    ParsedFormula

    Raises
    ------
    FormulaError : text outside the grammar (an unknown function, attribute access, ...).
    ColumnError : a name that is not a column of the data.

    Examples
    --------
    >>> parse_formula("y ~ I(x > 4) + log(z)", ["y", "x", "z"]).variables
    ['y', 'x', 'z']
    >>> parse_formula("y ~ I(os.system('ls'))", ["y"])
    Traceback (most recent call last):
    ...
    sscoverage.exceptions.FormulaError: cannot read the formula "y ~ I(os.system('ls'))": os.system() is not a function a formula may call here (these are: log, log2, log10, log1p, exp, sqrt, abs, pmax, pmin) at position 6, found 'os.system'
    """
    if not isinstance(formula, str):
        raise FormulaError(f"a formula is text such as 'y ~ x1 + x2', not {type(formula).__name__}")
    if len(formula) > 10_000:
        raise FormulaError(f"a formula of {len(formula)} characters is too long to be one (at most 10,000)")
    text = formula if lhs != "none" or formula.lstrip().startswith("~") else f"~{formula}"
    try:
        left, right = _Parser(text).formula(lhs)
    except RecursionError:
        raise FormulaError(f"the formula {formula[:60]!r}... nests too deeply") from None
    renderer = _Renderer(columns, formula)
    if left is None:
        rendered = f"~ {renderer.terms(right)}"
    elif left.kind == "call" and left.value == "Surv":
        rendered = f"Surv({renderer.name(left.args[0].value)}, {renderer.name(left.args[1].value)})"
        rendered += f" ~ {renderer.terms(right)}"
    else:
        rendered = f"{renderer.expr(left)} ~ {renderer.terms(right)}"
    return ParsedFormula(formula, rendered, renderer.aliases, renderer.variables, left, renderer.logical_terms)


def column_of(token: str, aliases: Mapping[str, Any]) -> str:
    """A formulaic term or column name with aliases replaced by their column names."""
    return _ALIAS.sub(lambda m: str(aliases[m.group(0)]), token)


def term_name(term: str, parsed: ParsedFormula) -> str:
    """formulaic's name of a term in R's words: columns for aliases, ``I(x > 4)`` for the
    factor ``C(I(x > 4))`` that codes a logical as R does."""
    for factor, inner in parsed.logical_terms.items():
        term = term.replace(factor, inner)
    return column_of(term, parsed.aliases)


__all__ = ["parse_formula", "ParsedFormula", "FUNCTIONS", "TRANSFORMS", "CONTEXT", "column_of", "term_name"]
