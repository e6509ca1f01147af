from __future__ import annotations

import math
import operator
import pickle
from dataclasses import dataclass, field

import pytest
from django.utils import translation
from hypothesis import given, settings
from hypothesis import strategies as st

from dieuhanh.indicators.formula import (
    ARITY,
    MAX_DEPTH,
    Binary,
    Call,
    FormulaError,
    Node,
    Number,
    Ref,
    Unary,
    evaluate,
    parse,
    refs,
    unparse,
)

SHIFTS = ("last_year", "previous", "ytd", "parent")


@dataclass
class DictEnv:
    """An Env from dicts; records the references it was asked for."""

    values: dict[str, float | None] = field(default_factory=dict)
    shifts: dict[str, DictEnv] = field(default_factory=dict)
    targets: dict[str, float] = field(default_factory=dict)
    asked: list[str] = field(default_factory=list)

    def value(self, ref: str) -> float | None:
        self.asked.append(ref)
        return self.values.get(ref)

    def shifted(self, how: str) -> DictEnv | None:
        assert how in SHIFTS
        return self.shifts.get(how)

    def target(self, ref: str) -> float | None:
        return self.targets.get(ref)


EMPTY = DictEnv()


def value_of(text: str, env: DictEnv = EMPTY) -> float | None:
    return evaluate(parse(text), env)


# --- Parsing ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 - 2 - 3", -4),
        ("(1 - 2) - 3", -4),
        ("1 - (2 - 3)", 2),
        ("2 * 3 + 4", 10),
        ("2 + 3 * 4", 14),
        ("2 * (3 + 4)", 14),
        ("-2 * 3", -6),
        ("2 * -3", -6),
        ("-(2 + 3)", -5),
        ("--2", 2),
        ("+2 - +1", 1),
        ("8 / 2 / 2", 2),
        ("8 / (2 / 2)", 8),
        ("1 - 2 * 3 - 4 / 2", -7),
    ],
)
def test_precedence_and_associativity(text, expected):
    assert value_of(text) == expected


def test_operators_associate_to_the_left_and_signs_bind_tightest():
    assert parse("1 - 2 - 3") == Binary("-", Binary("-", Number(1), Number(2)), Number(3))
    assert parse("8 / 2 / 2") == Binary("/", Binary("/", Number(8), Number(2)), Number(2))
    assert parse("2 * 3 + 4") == Binary("+", Binary("*", Number(2), Number(3)), Number(4))
    assert parse("-2 * 3") == Binary("*", Unary("-", Number(2)), Number(3))


@pytest.mark.parametrize(
    ("text", "value"),
    [("12", 12), ("3.5", 3.5), (".5", 0.5), ("1e6", 1e6), ("1E-3", 0.001), ("2.5e+2", 250), ("7.", 7)],
)
def test_numbers(text, value):
    assert parse(text) == Number(value)


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("#{postal_revenue}", "postal_revenue"),
        ("#{subscribers.viettel}", "subscribers.viettel"),
        ("#{ev.test.positive}", "ev.test.positive"),
        ("#{ ev.checkin\t}", "ev.checkin"),
        ("#{Subscribers.VIETTEL}", "subscribers.viettel"),
        ("#{2025_q1}", "2025_q1"),
    ],
)
def test_references(text, name):
    assert parse(text) == Ref(name)


def test_whitespace_between_tokens_is_ignored():
    spaced = " \tyoy ( #{a} )\n+\r\n round ( #{b} , 2 ) * - 3 "
    assert parse(spaced) == parse("yoy(#{a})+round(#{b},2)*-3")


def test_nodes_know_where_they_came_from():
    tree = parse("1 + yoy( #{a})")
    assert isinstance(tree, Binary)
    assert isinstance(tree.right, Call)
    assert (tree.pos, tree.left.pos, tree.right.pos, tree.right.args[0].pos) == (2, 0, 4, 9)


def test_functions():
    assert parse("min(#{a}, 2, -#{b})") == Call("min", (Ref("a"), Number(2), Unary("-", Ref("b"))))
    assert parse("target((#{a}))") == Call("target", (Ref("a"),))
    assert parse("round(#{a}, 0)") == Call("round", (Ref("a"), Number(0)))


@pytest.mark.parametrize(
    ("text", "position", "reason"),
    [
        ("", 0, "công thức trống"),
        ("  ", 2, "công thức trống"),
        ("1 +", 3, "cần một số, một tham chiếu, một lời gọi hàm hoặc '(' nhưng gặp hết công thức"),
        ("1 + * 2", 4, "cần một số, một tham chiếu, một lời gọi hàm hoặc '(' nhưng gặp '*'"),
        ("()", 1, "cần một số, một tham chiếu, một lời gọi hàm hoặc '(' nhưng gặp ')'"),
        ("(1", 2, "cần ')' nhưng gặp hết công thức"),
        ("(1 + 2))", 7, "cần một phép toán hoặc kết thúc công thức nhưng gặp ')'"),
        ("1 2", 2, "cần một phép toán hoặc kết thúc công thức nhưng gặp '2'"),
        ("1 #{a}", 2, "cần một phép toán hoặc kết thúc công thức nhưng gặp tham chiếu #{a}"),
        ("1,2", 1, "cần một phép toán hoặc kết thúc công thức nhưng gặp ','"),
        ("#{", 2, "cần tên tham chiếu nhưng gặp hết công thức"),
        ("#{}", 2, "tham chiếu rỗng"),
        ("#{  }", 4, "tham chiếu rỗng"),
        ("#{.a}", 2, "cần tên tham chiếu nhưng gặp '.'"),
        ("#{é}", 2, "cần tên tham chiếu nhưng gặp 'é'"),
        ("#{a..b}", 4, "cần một tên sau dấu '.' trong tham chiếu nhưng gặp '.'"),
        ("#{a.}", 4, "cần một tên sau dấu '.' trong tham chiếu nhưng gặp '}'"),
        ("#{a", 3, "cần '}' để đóng tham chiếu nhưng gặp hết công thức"),
        ("#{a b}", 4, "cần '}' để đóng tham chiếu nhưng gặp 'b'"),
        ("#{a . b}", 4, "cần '}' để đóng tham chiếu nhưng gặp '.'"),
        ("#{a-b}", 3, "cần '}' để đóng tham chiếu nhưng gặp '-'"),
        ("#a", 1, "cần '{' sau '#' nhưng gặp 'a'"),
        ("2 $ 3", 2, "ký tự không hợp lệ '$'"),
        ("2 ^ 3", 2, "ký tự không hợp lệ '^'"),
        ("1.2.3", 0, "số viết sai"),
        ("2x", 0, "số viết sai"),
        ("1e", 0, "số viết sai"),
        ("1 + 1e999", 4, "số quá lớn"),
        ("foo(1)", 0, "không có hàm 'foo'"),
        ("1 + YOY(#{a})", 4, "không có hàm 'YOY'"),
        ("revenue + 1", 0, "không rõ tên 'revenue' (tham chiếu viết là #{revenue})"),
        ("yoy #{a}", 4, "cần '(' sau 'yoy' nhưng gặp tham chiếu #{a}"),
        ("yoy()", 0, "yoy() cần 1 tham số, nhận được 0"),
        ("yoy(1,2)", 0, "yoy() cần 1 tham số, nhận được 2"),
        ("2 * round(#{a})", 4, "round() cần 2 tham số, nhận được 1"),
        ("max()", 0, "max() cần ít nhất 1 tham số, nhận được 0"),
        ("yoy(#{a}", 8, "cần ',' hoặc ')' nhưng gặp hết công thức"),
        ("yoy(#{a} #{b})", 9, "cần ',' hoặc ')' nhưng gặp tham chiếu #{b}"),
        ("min(1,)", 6, "cần một số, một tham chiếu, một lời gọi hàm hoặc '(' nhưng gặp ')'"),
        ("target(1)", 7, "target() chỉ nhận một tham chiếu, ví dụ #{name}"),
        ("target( #{a} + 1)", 8, "target() chỉ nhận một tham chiếu, ví dụ #{name}"),
        ("target(yoy(#{a}))", 7, "target() chỉ nhận một tham chiếu, ví dụ #{name}"),
        ("round(#{a}, 1.5)", 12, "round() cần số chữ số thập phân là số nguyên, ví dụ round(x, 1)"),
        ("round(#{a}, #{n})", 12, "round() cần số chữ số thập phân là số nguyên, ví dụ round(x, 1)"),
        ("round(#{a}, -1)", 12, "round() cần số chữ số thập phân là số nguyên, ví dụ round(x, 1)"),
    ],
)
def test_errors_say_what_was_expected_and_where(text, position, reason):
    with pytest.raises(FormulaError) as caught:
        parse(text)
    assert (caught.value.reason, caught.value.position) == (reason, position)
    assert str(caught.value) == f"{reason} (vị trí {position + 1})"


def test_a_formula_error_reads_english_when_english_is_chosen():
    """The reason is formatted when read, in the reader's language (the API's language cookie)."""
    with pytest.raises(FormulaError) as caught:
        parse("yoy(#{a}")
    with translation.override("en"):
        assert str(caught.value) == "expected ',' or ')' but found end of formula at position 9"
    assert str(caught.value) == "cần ',' hoặc ')' nhưng gặp hết công thức (vị trí 9)"


def test_the_first_error_in_the_text_is_reported():
    with pytest.raises(FormulaError) as caught:
        parse("1 + * $")
    assert caught.value.position == 4


def test_formula_error_is_a_value_error_that_pickles():
    error = FormulaError("expected ')' but found end of formula", 2)
    assert isinstance(error, ValueError)
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 (our own bytes)
    assert (copy.reason, copy.position, str(copy)) == (error.reason, error.position, str(error))


def test_pointer_puts_a_caret_under_the_position():
    with pytest.raises(FormulaError) as caught:
        parse("1 + * 2")
    assert caught.value.pointer("1 + * 2") == "1 + * 2\n    ^"
    assert FormulaError("x", 3).pointer("1 +") == "1 +\n   ^"  # at the end of the text
    assert FormulaError("x", 0).pointer("") == "\n^"


def test_pointer_shows_the_line_of_the_error_and_keeps_tabs():
    text = "#{a}\n\t+ * 2\n- 1"
    with pytest.raises(FormulaError) as caught:
        parse(text)
    assert caught.value.position == 8
    assert caught.value.pointer(text) == "\t+ * 2\n\t  ^"


def test_deep_nesting_is_an_error_not_a_crash():
    assert value_of("(" * (MAX_DEPTH - 1) + "1" + ")" * (MAX_DEPTH - 1)) == 1
    assert value_of(" + ".join(["1"] * (MAX_DEPTH - 1))) == MAX_DEPTH - 1
    for text in [
        "(" * 5000 + "1" + ")" * 5000,
        "-" * 5000 + "1",
        "abs(" * 5000 + "1" + ")" * 5000,
        " + ".join(["1"] * 5000),
        " * ".join(["#{a}"] * 5000),
    ]:
        with pytest.raises(FormulaError, match="công thức quá phức tạp"):
            parse(text)


def test_refs():
    tree = parse("yoy(#{a}) + share(#{b.c}) / coalesce(#{a}, #{d.e.f}, 1) - target(#{G})")
    assert refs(tree) == {"a", "b.c", "d.e.f", "g"}
    assert refs(parse("1 + 2")) == set()


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("(2*3)+4", "2 * 3 + 4"),
        ("(1 - 2) - 3", "1 - 2 - 3"),
        ("1 - (2 - 3)", "1 - (2 - 3)"),
        ("1 - (2 + 3)", "1 - (2 + 3)"),
        ("1 + (2 - 3)", "1 + (2 - 3)"),  # not (1 + 2) - 3: the tree keeps what was written
        ("8 / (2 * 2)", "8 / (2 * 2)"),
        ("(2 + 3) * 4", "(2 + 3) * 4"),
        ("-(1 + 2) * -#{a}", "-(1 + 2) * -#{a}"),
        ("1 - -2", "1 - -2"),
        ("- - 2", "--2"),
        ("((#{ A.b }))", "#{a.b}"),
        ("1e20 + .5 + 3.0 + 1e-5", "1e+20 + 0.5 + 3 + 1e-05"),
        ("round( yoy(#{a}) ,2)+min(1,2 , 3)", "round(yoy(#{a}), 2) + min(1, 2, 3)"),
    ],
)
def test_unparse_is_canonical(text, canonical):
    assert unparse(parse(text)) == canonical


def height(node: Node) -> int:
    children: tuple[Node, ...] = ()
    if isinstance(node, Unary):
        children = (node.operand,)
    elif isinstance(node, Binary):
        children = (node.left, node.right)
    elif isinstance(node, Call):
        children = node.args
    return 1 + max((height(child) for child in children), default=0)


names = st.from_regex(r"[a-z0-9_]{1,8}(\.[a-z0-9_]{1,8}){0,2}", fullmatch=True)
references = names.map(Ref)
# parse never builds a negative Number (the sign is a Unary); floats(min_value=0.0) has no -0.0.
numbers = st.floats(min_value=0.0, allow_infinity=False).map(Number)
decimals = st.integers(min_value=0, max_value=6).map(lambda n: Number(float(n)))


def branches(children: st.SearchStrategy[Node]) -> st.SearchStrategy[Node]:
    single = st.sampled_from(["yoy", "ytd", "share", "last_year", "previous", "abs"])
    several = st.sampled_from(["min", "max", "coalesce"])
    return st.one_of(
        st.builds(Unary, st.sampled_from("+-"), children),
        st.builds(Binary, st.sampled_from("+-*/"), children, children),
        st.builds(Call, single, st.tuples(children)),
        st.builds(Call, st.just("target"), st.tuples(references)),
        st.builds(Call, st.just("round"), st.tuples(children, decimals)),
        st.builds(Call, several, st.lists(children, min_size=1, max_size=3).map(tuple)),
    )


trees = st.recursive(numbers | references, branches, max_leaves=25).filter(lambda t: height(t) <= 50)


@given(trees)
def test_unparse_reads_back_as_the_same_tree(tree):
    text = unparse(tree)
    assert parse(text) == tree  # nodes compare without pos
    assert unparse(parse(text)) == text


# --- Evaluating ------------------------------------------------------------------------------------


@pytest.fixture
def env() -> DictEnv:
    last_year = DictEnv(
        {"a": 100, "z": 0},
        shifts={"ytd": DictEnv({"a": 960}), "parent": DictEnv({"a": 400})},
        targets={"a": 140},
    )
    ytd = DictEnv({"a": 1200}, shifts={"last_year": DictEnv({"a": 960})})
    parent = DictEnv({"a": 480, "z": 0})
    return DictEnv(
        {"a": 120, "b": 0, "m": None, "z": 5},
        shifts={"last_year": last_year, "previous": DictEnv({"a": 110}), "ytd": ytd, "parent": parent},
        targets={"a": 150},
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("#{a}", 120),
        ("#{a} * 2 - 40", 200),
        ("#{nowhere}", None),
        ("#{m}", None),
        ("#{a} + #{m}", None),
        ("-#{m}", None),
        ("#{a} / #{b}", None),
        ("#{a} / 0", None),
        ("#{a} / (1 - 1) + 1", None),
        ("1e308 * 10", None),
        ("last_year(#{a})", 100),
        ("previous(#{a})", 110),
        ("ytd(#{a})", 1200),
        ("previous(previous(#{a}))", None),
        ("yoy(#{a})", 20),
        ("yoy(ytd(#{a}))", 25),
        ("ytd(yoy(#{a}))", 25),
        ("yoy(#{z})", None),
        ("yoy(#{m})", None),
        ("yoy(previous(#{a}))", None),
        ("share(#{a})", 25),
        ("share(#{z})", None),
        ("share(#{m})", None),
        ("share(share(#{a}))", None),
        ("yoy(share(#{a}))", 0),
        ("target(#{a})", 150),
        ("target(#{b})", None),
        ("last_year(target(#{a}))", 140),
        ("#{a} / target(#{a}) * 100", 80),
        ("coalesce(#{m}, #{a})", 120),
        ("coalesce(#{m}, #{a} / 0, 0, 7)", 0),
        ("coalesce(#{m})", None),
        ("abs(-3.5)", 3.5),
        ("abs(#{m})", None),
        ("min(#{a}, #{m}, 7)", 7),
        ("max(#{m}, #{a}, 7)", 120),
        ("min(#{m}, #{nowhere})", None),
        ("round(2.675, 2)", 2.68),
        ("round(0.125, 2)", 0.13),
        ("round(-2.5, 0)", -3),
        ("round(1234.5678, 1)", 1234.6),
        ("round(12, 3)", 12),
        ("round(1e300, 2)", 1e300),
        ("round(#{m}, 1)", None),
    ],
)
def test_evaluate(env, text, expected):
    result = evaluate(parse(text), env)
    if expected is None:
        assert result is None
    else:
        assert result == pytest.approx(expected)


def test_shifts_apply_outermost_first():
    # yoy(x) compares x with last_year(x), x evaluated in last year's env: a shift inside x then
    # shifts that env further (the order analytics.needs() reads the cells in).
    env = DictEnv(
        {"a": 1},
        shifts={
            "ytd": DictEnv({"a": 1200}, shifts={"last_year": DictEnv({"a": 1000})}),
            "last_year": DictEnv({"a": 2}, shifts={"ytd": DictEnv({"a": 960})}),
        },
    )
    assert value_of("last_year(ytd(#{a}))", env) == 960
    assert value_of("ytd(last_year(#{a}))", env) == 1000
    assert value_of("yoy(ytd(#{a}))", env) == pytest.approx(25)
    assert value_of("ytd(yoy(#{a}))", env) == pytest.approx(20)


def test_yoy_divides_by_the_size_of_last_year():
    env = DictEnv({"a": 120}, shifts={"last_year": DictEnv({"a": -100})})
    assert value_of("yoy(#{a})", env) == pytest.approx(220)


def test_functions_of_nothing_at_the_top_are_missing():
    for name in ["yoy", "ytd", "share", "last_year", "previous"]:
        assert value_of(f"{name}(1)") is None


def test_round_gives_no_negative_zero():
    result = value_of("round(-0.001, 2)")
    assert result == 0
    assert math.copysign(1, result or 0) == 1


def test_coalesce_stops_at_the_first_value(env):
    assert evaluate(parse("coalesce(#{a}, #{b})"), env) == 120
    assert env.asked == ["a"]


@pytest.mark.parametrize("name", sorted(ARITY))
def test_every_function_evaluates(name):
    fewest, _ = ARITY[name]
    args = ["#{a}", "1"][:fewest]
    env = DictEnv({"a": 3}, shifts={how: DictEnv({"a": 2}) for how in SHIFTS})
    result = value_of(f"{name}({', '.join(args)})", env)
    assert result is None or isinstance(result, float | int)


arithmetic = st.recursive(
    st.floats(min_value=0.0, max_value=1e6).map(Number),
    lambda children: (
        st.builds(Binary, st.sampled_from("+-*"), children, children)
        | st.builds(Unary, st.just("-"), children)
    ),
    max_leaves=30,
).filter(lambda t: height(t) <= 50)

OPERATORS = {"+": operator.add, "-": operator.sub, "*": operator.mul}


def python_value(node: Node) -> float:
    if isinstance(node, Number):
        return node.value
    if isinstance(node, Unary):
        return -python_value(node.operand)
    assert isinstance(node, Binary)
    return OPERATORS[node.op](python_value(node.left), python_value(node.right))


@given(arithmetic)
def test_evaluate_agrees_with_python_arithmetic(tree):
    expected = python_value(tree)
    assert evaluate(tree, EMPTY) == expected
    assert evaluate(parse(unparse(tree)), EMPTY) == expected


# --- Anything at all -------------------------------------------------------------------------------

FRAGMENTS = [
    *"0123456789.eE+-*/(),#{}_ \t\n$",
    "1.5",
    ".5",
    "1e3",
    "#{a}",
    "#{b.c}",
    "#{",
    "a",
    "yoy(",
    "round(",
    "target(",
    "min(",
    "share(",
    "coalesce(",
    "foo(",
]
RICH = DictEnv(
    {"a": 3.0, "b.c": 0.0},
    shifts={how: DictEnv({"a": 2.0, "b.c": 1e308}) for how in SHIFTS},
    targets={"a": 4.0},
)


def check_any_text(text: str) -> None:
    try:
        tree = parse(text)
    except FormulaError as error:
        assert 0 <= error.position <= len(text)
        return
    assert parse(unparse(tree)) == tree
    result = evaluate(tree, RICH)
    assert result is None or math.isfinite(result)


@given(st.text())
def test_parse_raises_only_formula_errors(text):
    check_any_text(text)


@settings(max_examples=500)
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=30).map("".join))
def test_formula_like_text_parses_or_fails_cleanly(text):
    check_any_text(text)
