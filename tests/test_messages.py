"""Every refusal a user reads is translatable, and translated (issue 15, point 2).

Read from the source, not from a list: a new `raise …Error(field, "English")` or a new `_("…")` with
no Vietnamese beside it fails here, in the module and line that wrote it, before an official reads an
English reason inside a Vietnamese page.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator
from pathlib import Path

from babel.messages.pofile import read_po

import dieuhanh
from tests.factories import ONCE_IN_THE_SQLITE_PASS

pytestmark = ONCE_IN_THE_SQLITE_PASS  # the source and the catalogue, read the same in either pass
SRC = Path(dieuhanh.__file__).parent
CATALOGUE = SRC / "locale" / "vi" / "LC_MESSAGES" / "django.po"
GETTEXT = {"_", "gettext", "gettext_lazy", "ngettext", "ngettext_lazy", "pgettext", "pgettext_lazy"}


@functools.cache  # parsed once for every check here: the checks only read the trees
def _modules() -> tuple[tuple[Path, ast.Module], ...]:
    return tuple(
        (path, ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
        for path in sorted(SRC.rglob("*.py"))
        if "migrations" not in path.parts
    )


def _name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _domain_errors(modules: list[tuple[Path, ast.Module]]) -> set[str]:
    """DomainError and every class that derives from it, by name, across the source."""
    bases: dict[str, set[str]] = {}
    for _path, tree in modules:
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                bases.setdefault(node.name, set()).update(n for n in map(_name, node.bases) if n)
    found = {"DomainError"}
    while True:
        more = {cls for cls, parents in bases.items() if parents & found} - found
        if not more:
            return found
        found |= more


def _is_literal_text(node: ast.expr) -> bool:
    """A sentence written in the code's own language: a string or f-string not passed through gettext.
    A field's name ("units", f"rows[{i}].unit") has no space, so only words with a space between count."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str) and " " in node.value.strip()
    if isinstance(node, ast.JoinedStr):
        return " " in "".join(v.value for v in node.values if isinstance(v, ast.Constant)).strip()
    if isinstance(node, ast.BinOp):  # "…%s" % x, "a" + "b"
        return _is_literal_text(node.left)
    if isinstance(node, ast.IfExp):
        return _is_literal_text(node.body) or _is_literal_text(node.orelse)
    return False


def test_every_domain_error_message_goes_through_gettext() -> None:
    modules = list(_modules())
    errors = _domain_errors(modules)
    english = []
    for path, tree in modules:
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and _name(node.func) in errors):
                continue
            # Any argument but the first (the field, or a status): a message is never the field.
            given = node.args[1:] + [k.value for k in node.keywords if k.arg == "message"]
            english.extend(
                f"{path.relative_to(SRC.parent)}:{node.lineno} {ast.unparse(arg)[:70]}"
                for arg in given
                if _is_literal_text(arg)
            )
    assert not english, "messages not passed through gettext:\n" + "\n".join(english)


def _msgids(modules: list[tuple[Path, ast.Module]]) -> Iterator[tuple[str, str]]:
    for path, tree in modules:
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _name(node.func) in GETTEXT and node.args:
                first = node.args[0]
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    yield f"{path.relative_to(SRC.parent)}:{node.lineno}", first.value


# A page's 404 and 403 say their reason too: errors.not_found(message=…), Http404(…), PermissionDenied(…).
PAGE_REFUSALS = {"not_found", "Http404", "PermissionDenied"}


def test_every_page_refusal_goes_through_gettext() -> None:
    literal = []
    for path, tree in _modules():
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and _name(node.func) in PAGE_REFUSALS):
                continue
            given = [k.value for k in node.keywords if k.arg == "message"]
            if _name(node.func) != "not_found":
                given += node.args[:1]
            literal.extend(
                f"{path.relative_to(SRC.parent)}:{node.lineno} {ast.unparse(arg)[:70]}"
                for arg in given
                if _is_literal_text(arg)
            )
    assert not literal, "page refusals not passed through gettext:\n" + "\n".join(literal)


def test_every_message_in_the_code_has_its_vietnamese() -> None:
    with CATALOGUE.open("rb") as po:
        catalogue = read_po(po)
    translated = {
        (m.id[0] if isinstance(m.id, tuple) else m.id)
        for m in catalogue
        if m.id and (any(m.string) if isinstance(m.string, tuple) else m.string)
    }
    missing = [f"{where} {msgid!r}" for where, msgid in _msgids(list(_modules())) if msgid not in translated]
    assert not missing, "no Vietnamese in django.po for:\n" + "\n".join(missing)


def test_the_checks_catch_an_english_message(tmp_path: Path) -> None:
    """The walk is not vacuous: an English raise and an untranslated _() are both seen."""
    tree = ast.parse(
        "class ShopError(DomainError): pass\n"
        "def f():\n"
        "    raise ShopError('qty', f'needs {n} items')\n"
        "def g():\n"
        "    raise ShopError('qty', _('a sentence no catalogue holds'))\n"
    )
    modules = [(SRC / "shop.py", tree)]
    calls = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and _name(node.func) in _domain_errors(modules)
    ]
    assert [_is_literal_text(call.args[1]) for call in calls] == [True, False]
    assert [msgid for _where, msgid in _msgids(modules)] == ["a sentence no catalogue holds"]
