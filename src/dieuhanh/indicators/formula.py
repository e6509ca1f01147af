"""Indicator formulas: a small arithmetic language over references to reported figures.

    yoy(#{postal_revenue}) · #{subscribers.viettel} / #{subscribers} * 100 · round(share(#{ev.checkin}), 1)

Formulas are typed by people, so the text is read by a hand-written tokenizer and recursive-descent
parser (never eval or the ast module): anything it does not understand is a FormulaError naming what
was expected and where. A parsed formula is a tree of frozen nodes, evaluated against an Env that
supplies values, targets and the shifted periods or units that yoy/ytd/share and friends look at.
A missing figure is None and stays None through arithmetic, as does division by zero: an indicator
with no data is shown as such rather than as 0.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import NoReturn, Protocol, TypeAlias, assert_never

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from dieuhanh.errors import DomainError, lazy_format

MAX_DEPTH = 100
"""How deeply a formula may nest (parentheses, calls, signs, chained operators): far beyond any real
indicator, and shallow enough that the recursive parser and tree walks stay clear of Python's
recursion limit."""

ARITY: dict[str, tuple[int, int | None]] = {
    "yoy": (1, 1),
    "ytd": (1, 1),
    "share": (1, 1),
    "target": (1, 1),
    "last_year": (1, 1),
    "previous": (1, 1),
    "abs": (1, 1),
    "round": (2, 2),
    "min": (1, None),
    "max": (1, None),
    "coalesce": (1, None),
}
"""The functions a formula may call: name → (fewest, most arguments; None = no limit)."""


class FormulaError(DomainError):
    """A formula that cannot be read, with the 0-based offset in the text where reading failed.

    The reason is translatable and formatted only when read: a formula may be read where no language
    is active yet (at import, in the catalogue's load) and in loops that try one reading after another."""

    def __init__(self, reason: str | Promise, position: int) -> None:
        message = lazy_format(_("%(reason)s at position %(position)s"), reason=reason, position=position + 1)
        super().__init__("formula", message, position=position)
        self.reason = reason
        self.position = position

    def __str__(self) -> str:
        return str(self.message)

    def pointer(self, text: str) -> str:
        """The line of text holding the error and, under it, a caret at the error's position."""
        start = text.rfind("\n", 0, self.position) + 1
        end = text.find("\n", self.position)
        line = text[start:] if end == -1 else text[start:end]
        # Tabs are kept so that the caret lines up however wide the terminal draws them.
        indent = "".join("\t" if char == "\t" else " " for char in text[start : self.position])
        return f"{line}\n{indent}^"


# Nodes compare by structure: pos only says where the node came from, so the same formula typed with
# different spacing gives equal trees.
@dataclass(frozen=True, slots=True)
class Number:
    value: float
    pos: int = field(default=0, compare=False, kw_only=True)


@dataclass(frozen=True, slots=True)
class Ref:
    name: str
    pos: int = field(default=0, compare=False, kw_only=True)


@dataclass(frozen=True, slots=True)
class Unary:
    op: str
    operand: Node
    pos: int = field(default=0, compare=False, kw_only=True)


@dataclass(frozen=True, slots=True)
class Binary:
    """pos is the operator's position, the most telling place to point at."""

    op: str
    left: Node
    right: Node
    pos: int = field(default=0, compare=False, kw_only=True)


@dataclass(frozen=True, slots=True)
class Call:
    name: str
    args: tuple[Node, ...]
    pos: int = field(default=0, compare=False, kw_only=True)


Node: TypeAlias = Number | Ref | Unary | Binary | Call


# --- Reading ---------------------------------------------------------------------------------------

_NUMBER = re.compile(r"(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_REF_PART = re.compile(r"[A-Za-z0-9_]+")
_PUNCTUATION = frozenset("+-*/(),")
_WORD_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.")


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # "num", "ref", "name", "end", or the punctuation character itself
    pos: int
    end: int
    text: str  # for a reference, its normalised name


# What the reader is told; constants, so that reading a formula that has no error builds none of them.
_END = _("end of formula")
_EXPECTED_OPERATOR = _("expected an operator or the end of the formula")
_EXPECTED_CLOSE = _("expected ')'")
_EXPECTED_OPERAND = _("expected a number, a reference, a function call or '('")
_EXPECTED_OPEN = _("expected '(' after %(name)s")
_EXPECTED_NEXT_ARGUMENT = _("expected ',' or ')'")
_TOO_COMPLEX = _("formula is too complex")


def _at(text: str, pos: int) -> str | Promise:
    """What is at pos, for a message."""
    return _END if pos >= len(text) else repr(text[pos])


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos].isspace():
        pos += 1
    return pos


def _tokens(text: str) -> Iterator[_Token]:
    """The tokens of text, ending with an "end" token; lazily, so the parser reports the first error."""
    pos = _skip_space(text, 0)
    while pos < len(text):
        token = _token_at(text, pos)
        yield token
        pos = _skip_space(text, token.end)
    yield _Token("end", pos, pos, "")


def _token_at(text: str, pos: int) -> _Token:
    char = text[pos]
    if char in _PUNCTUATION:
        return _Token(char, pos, pos + 1, char)
    if char == "#":
        return _reference(text, pos)
    if number := _NUMBER.match(text, pos):
        # "1.2.3", "2x" or "1e" would otherwise split into two tokens and fail later, less clearly.
        if number.end() < len(text) and text[number.end()] in _WORD_CHARS:
            raise FormulaError(_("malformed number"), pos)
        return _Token("num", pos, number.end(), number.group())
    if name := _NAME.match(text, pos):
        return _Token("name", pos, name.end(), name.group())
    raise FormulaError(lazy_format(_("unexpected character %(char)s"), char=repr(char)), pos)


def _reference(text: str, start: int) -> _Token:
    """#{a.b.c}: parts of letters, digits and _, joined by single dots, spaces allowed inside the braces."""
    if not text.startswith("{", start + 1):
        found = _at(text, start + 1)
        raise FormulaError(
            lazy_format(_("expected '{' after '#' but found %(found)s"), found=found), start + 1
        )
    pos = _skip_space(text, start + 2)
    parts: list[str] = []
    while True:
        part = _REF_PART.match(text, pos)
        if part is None:
            raise FormulaError(_missing_part(text, pos, first=not parts), pos)
        parts.append(part.group().lower())
        pos = part.end()
        if not text.startswith(".", pos):
            break
        pos += 1
    pos = _skip_space(text, pos)
    if not text.startswith("}", pos):
        found = _at(text, pos)
        raise FormulaError(
            lazy_format(_("expected '}' to close the reference but found %(found)s"), found=found), pos
        )
    return _Token("ref", start, pos + 1, ".".join(parts))


def _missing_part(text: str, pos: int, *, first: bool) -> Promise:
    if first and text.startswith("}", pos):
        return _("empty reference")
    if first:
        return lazy_format(_("expected a reference name but found %(found)s"), found=_at(text, pos))
    return lazy_format(
        _("expected a name after '.' in the reference but found %(found)s"), found=_at(text, pos)
    )


class _Parser:
    """sum := product (('+' | '-') product)*;  product := unary (('*' | '/') unary)*;
    unary := ('+' | '-') unary | primary;  primary := number | reference | name '(' args ')' | '(' sum ')'
    """

    def __init__(self, text: str) -> None:
        self._tokens = _tokens(text)
        self._current = next(self._tokens)
        self._depth = 0

    def parse(self) -> Node:
        if self._current.kind == "end":
            raise FormulaError(_("formula is empty"), self._current.pos)
        node = self._sum()
        if self._current.kind != "end":
            self._fail(_EXPECTED_OPERATOR)
        return node

    def _advance(self) -> _Token:
        token = self._current
        if token.kind != "end":
            self._current = next(self._tokens)
        return token

    def _fail(self, expected: Promise, **params: str) -> NoReturn:
        """Refuses the current token: what was expected (formatted with params), what was found."""
        wanted = lazy_format(expected, **params) if params else expected
        reason = lazy_format(
            _("%(expected)s but found %(found)s"), expected=wanted, found=_describe(self._current)
        )
        raise FormulaError(reason, self._current.pos)

    def _expect(self, kind: str, expected: Promise, **params: str) -> None:
        if self._current.kind != kind:
            self._fail(expected, **params)
        self._advance()

    def _sum(self) -> Node:
        node = self._product()
        while self._current.kind in ("+", "-"):
            op = self._advance()
            node = Binary(op.kind, node, self._product(), pos=op.pos)
        return node

    def _product(self) -> Node:
        node = self._unary()
        while self._current.kind in ("*", "/"):
            op = self._advance()
            node = Binary(op.kind, node, self._unary(), pos=op.pos)
        return node

    def _unary(self) -> Node:
        # Every nesting (parentheses, call arguments, signs) passes through here: the one place to count.
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise FormulaError(_TOO_COMPLEX, self._current.pos)
        node: Node
        if self._current.kind in ("+", "-"):
            sign = self._advance()
            node = Unary(sign.kind, self._unary(), pos=sign.pos)
        else:
            node = self._primary()
        self._depth -= 1
        return node

    def _primary(self) -> Node:
        token = self._current
        if token.kind == "num":
            # Converted before advancing, so that a bad number is reported before anything after it.
            number = self._number(token)
            self._advance()
            return number
        if token.kind == "ref":
            return Ref(self._advance().text, pos=token.pos)
        if token.kind == "name":
            return self._call(self._advance())
        if token.kind == "(":
            self._advance()
            node = self._sum()
            self._expect(")", _EXPECTED_CLOSE)
            return node
        self._fail(_EXPECTED_OPERAND)

    def _number(self, token: _Token) -> Number:
        value = float(token.text)
        if not math.isfinite(value):
            raise FormulaError(_("number is too large"), token.pos)
        return Number(value, pos=token.pos)

    def _call(self, name: _Token) -> Call:
        if name.text not in ARITY:
            if self._current.kind == "(":
                raise FormulaError(
                    lazy_format(_("unknown function %(name)s"), name=repr(name.text)), name.pos
                )
            hint = _("unknown name %(name)s (a reference is written #{%(ref)s})")
            raise FormulaError(lazy_format(hint, name=repr(name.text), ref=name.text.lower()), name.pos)
        self._expect("(", _EXPECTED_OPEN, name=repr(name.text))
        args: list[tuple[int, Node]] = []
        if self._current.kind != ")":
            args.append((self._current.pos, self._sum()))
            while self._current.kind == ",":
                self._advance()
                args.append((self._current.pos, self._sum()))
        self._expect(")", _EXPECTED_NEXT_ARGUMENT)
        _check_call(name, args)
        return Call(name.text, tuple(arg for _, arg in args), pos=name.pos)


def _describe(token: _Token) -> str | Promise:
    if token.kind == "end":
        return _END
    return (
        lazy_format(_("reference #{%(name)s}"), name=token.text) if token.kind == "ref" else repr(token.text)
    )


def _check_call(name: _Token, args: list[tuple[int, Node]]) -> None:
    """What the grammar cannot say: argument counts, and the arguments that must be literal.

    args are the arguments with the positions where they start.
    """
    fewest, most = ARITY[name.text]
    if len(args) < fewest or (most is not None and len(args) > most):
        if most is None:
            takes = _("%(name)s() takes at least %(n)s argument, got %(got)s")
        elif fewest == 1:
            takes = _("%(name)s() takes %(n)s argument, got %(got)s")
        else:
            takes = _("%(name)s() takes %(n)s arguments, got %(got)s")
        raise FormulaError(lazy_format(takes, name=name.text, n=fewest, got=len(args)), name.pos)
    # A target belongs to an indicator or element, not to a value computed from one.
    if name.text == "target" and not isinstance(args[0][1], Ref):
        raise FormulaError(_("target() takes a single reference such as #{name}"), args[0][0])
    if name.text == "round" and not _is_whole_number(args[1][1]):
        raise FormulaError(_("round() takes a whole number of decimals, such as round(x, 1)"), args[1][0])


def _is_whole_number(node: Node) -> bool:
    return isinstance(node, Number) and node.value.is_integer()


def _children(node: Node) -> tuple[Node, ...]:
    match node:
        case Number() | Ref():
            return ()
        case Unary():
            return (node.operand,)
        case Binary():
            return (node.left, node.right)
        case Call():
            return node.args
        case _:
            assert_never(node)


def _check_depth(root: Node) -> None:
    # Chains like 1 + 2 + ... + 500 parse iteratively yet build a tree as deep as they are long,
    # which the recursive walks (evaluate, unparse) could not descend; hence this iterative check.
    stack = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise FormulaError(_TOO_COMPLEX, node.pos)
        stack.extend((child, depth + 1) for child in _children(node))


def parse(text: str) -> Node:
    """The tree of a formula; FormulaError when the text is not one."""
    tree = _Parser(text).parse()
    _check_depth(tree)
    return tree


def refs(node: Node) -> set[str]:
    """Every name the formula references."""
    found: set[str] = set()
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, Ref):
            found.add(current.name)
        stack.extend(_children(current))
    return found


# --- Writing ---------------------------------------------------------------------------------------

_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2}
_TIGHTEST = 3


def unparse(node: Node) -> str:
    """The formula's canonical text: single spaces around operators, only the parentheses needed.

    parse() reads it back to an equal tree; a negative Number (which parse never builds: the sign is a
    Unary) would read back as a Unary.
    """
    match node:
        case Number():
            return _number_text(node.value)
        case Ref():
            return f"#{{{node.name}}}"
        case Unary():
            return node.op + _operand(node.operand, _TIGHTEST)
        case Binary():
            level = _PRECEDENCE[node.op]
            # Operators associate to the left, so an equal-precedence right operand needs parentheses.
            return f"{_operand(node.left, level)} {node.op} {_operand(node.right, level + 1)}"
        case Call():
            return f"{node.name}({', '.join(unparse(arg) for arg in node.args)})"
        case _:
            assert_never(node)


def _operand(node: Node, needed: int) -> str:
    text = unparse(node)
    level = _PRECEDENCE[node.op] if isinstance(node, Binary) else _TIGHTEST
    return f"({text})" if level < needed else text


def _number_text(value: float) -> str:
    # repr is the shortest text that reads back as the same float; whole numbers drop their ".0".
    text = repr(value)
    return text.removesuffix(".0")


# --- Evaluating ------------------------------------------------------------------------------------


class Env(Protocol):
    """Where a formula is evaluated: one unit in one period, say."""

    def value(self, ref: str) -> float | None:
        """The reference's value here; None when missing."""
        ...

    def shifted(self, how: str) -> Env | None:
        """The env for "last_year", "previous", "ytd" or "parent"; None when there is none."""
        ...

    def target(self, ref: str) -> float | None:
        """The target of the referenced indicator or element here; None when it has none."""
        ...


Result: TypeAlias = float | None
_Args: TypeAlias = tuple[Node, ...]


def evaluate(node: Node, env: Env) -> Result:
    """The formula's value in env; None when a figure it needs is missing or it divides by zero.

    A shift evaluates its argument in the shifted env, so shifts apply from the outside in:
    yoy(ytd(#{a})) reads last year's figure from env.shifted("last_year").shifted("ytd").
    """
    match node:
        case Number():
            return node.value
        case Ref():
            return _finite(env.value(node.name))
        case Unary():
            operand = evaluate(node.operand, env)
            if operand is None:
                return None
            return -operand if node.op == "-" else operand
        case Binary():
            return _arithmetic(node.op, evaluate(node.left, env), evaluate(node.right, env))
        case Call():
            return _EVALUATORS[node.name](node.args, env)
        case _:
            assert_never(node)


def _finite(value: Result) -> Result:
    # An overflow to inf (or inf - inf = nan) is no figure anyone can report: treat it as missing.
    return value if value is not None and math.isfinite(value) else None


def _arithmetic(op: str, left: Result, right: Result) -> Result:
    if left is None or right is None:
        return None
    if op == "+":
        return _finite(left + right)
    if op == "-":
        return _finite(left - right)
    if op == "*":
        return _finite(left * right)
    return None if right == 0 else _finite(left / right)


def _percent(part: Result, whole: Result) -> Result:
    if part is None or whole is None or whole == 0:
        return None
    return _finite(part / whole * 100)


def _in(how: str, node: Node, env: Env) -> Result:
    other = env.shifted(how)
    return None if other is None else evaluate(node, other)


def _yoy(args: _Args, env: Env) -> Result:
    now, before = evaluate(args[0], env), _in("last_year", args[0], env)
    if now is None or before is None:
        return None
    return _percent(now - before, abs(before))


def _share(args: _Args, env: Env) -> Result:
    return _percent(evaluate(args[0], env), _in("parent", args[0], env))


def _target(args: _Args, env: Env) -> Result:
    ref = args[0]
    if not isinstance(ref, Ref):
        raise TypeError("target() takes a reference")  # only a hand-built tree gets here
    return _finite(env.target(ref.name))


def _coalesce(args: _Args, env: Env) -> Result:
    # Lazily: the fallbacks are not evaluated once a value is found.
    for arg in args:
        value = evaluate(arg, env)
        if value is not None:
            return value
    return None


def _round(args: _Args, env: Env) -> Result:
    value, digits = evaluate(args[0], env), evaluate(args[1], env)
    if value is None or digits is None or not float(digits).is_integer():
        return None
    # Rounding the shortest decimal text of the float, so 2.675 (really 2.67499999…) gives 2.68 as a
    # reader expects; quantize is skipped when there is nothing to round, which also keeps it in range.
    exact = Decimal(repr(value))
    exponent = exact.as_tuple().exponent
    if isinstance(exponent, int) and exponent >= -digits:
        return value
    rounded = exact.quantize(Decimal(1).scaleb(-int(digits)), rounding=ROUND_HALF_UP)
    return float(rounded) + 0.0  # + 0.0 turns the -0.0 of round(-0.001, 2) into 0.0


def _extreme(pick: Callable[[list[float]], float]) -> Callable[[_Args, Env], Result]:
    def extreme(args: _Args, env: Env) -> Result:
        present = [value for value in (evaluate(arg, env) for arg in args) if value is not None]
        return pick(present) if present else None

    return extreme


def _shift(how: str) -> Callable[[_Args, Env], Result]:
    return lambda args, env: _in(how, args[0], env)


def _absolute(args: _Args, env: Env) -> Result:
    value = evaluate(args[0], env)
    return None if value is None else abs(value)


_EVALUATORS: dict[str, Callable[[_Args, Env], Result]] = {
    "yoy": _yoy,
    "ytd": _shift("ytd"),
    "share": _share,
    "target": _target,
    "last_year": _shift("last_year"),
    "previous": _shift("previous"),
    "abs": _absolute,
    "round": _round,
    "min": _extreme(min),
    "max": _extreme(max),
    "coalesce": _coalesce,
}
