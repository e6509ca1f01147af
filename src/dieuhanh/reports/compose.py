"""A definition, a unit and a period made into a document: header, numbered sections, tables, the
figures missing, recipients and signer. Renderers (render.py) turn the document into DOCX, PDF, HTML
or Markdown; nothing here knows the output format.

Texts are Jinja templates in a sandbox (an admin writes them; they cannot reach Python). What they may
call, each reading the figure of an indicator, data element or event count at the report's unit:

    value(code, pe="", scale=None, unit=None, decimals=2)  24.500 tỷ · 126,34 triệu thuê bao
    reached(code, pe="")      "ước đạt" for an estimate, "đạt" for a final figure
    estimated(code, pe="")    "ước" for an estimate, "" otherwise
    change(code, pe="", against="so với cùng kỳ")   tăng 10% so với cùng kỳ · bằng cùng kỳ
    progress(code, pe="", of="kế hoạch năm")         đạt 43,78% kế hoạch năm
    has(code, pe="")          whether there is a figure (for {% if %})
    period_label(pe="")       tháng 8/2021 · 8 tháng đầu năm 2021
    number(x, decimals=2) · percent(x) · year · unit_name

`pe` is a period id ('2021YTD07') or a word relative to the report's period: '' (the period itself),
'ytd', 'previous', 'previous_ytd', 'year', 'last_year', 'next'. A missing figure is written "chưa có số liệu",
marked so that renderers show it, and listed at the end of the report; it is never written as 0.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from django.utils.translation import gettext_lazy as _
from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment

from dieuhanh import vnformat
from dieuhanh.directives.assignments import STATUS_LABELS
from dieuhanh.directives.models import TaskStatus
from dieuhanh.indicators import periods
from dieuhanh.indicators.analytics import AnalyticsError, dimension
from dieuhanh.indicators.approval.figures import UNAPPROVED
from dieuhanh.indicators.periods import Period, PeriodError
from dieuhanh.reports.definition import (
    Body,
    DefinitionError,
    SectionSpec,
    TableBlock,
    TableSpec,
    TextBlock,
    walk,
)
from dieuhanh.reports.facts import Facts
from dieuhanh.units.models import Unit

# Missing figures travel through the text between these private-use characters, so that every renderer
# can set them apart (italic, highlighted) without parsing sentences.
MISSING_OPEN, MISSING_CLOSE = "\ue000", "\ue001"
MISSING_TEXT = MISSING_OPEN + vnformat.MISSING + MISSING_CLOSE
# A figure not yet approved at the report's level (issue 19) is set apart the same way.
UNAPPROVED_TEXT = f" {MISSING_OPEN}({UNAPPROVED}){MISSING_CLOSE}"
_MARKED = re.compile(f"({MISSING_OPEN}[^{MISSING_CLOSE}]*{MISSING_CLOSE})")
NBSP = "\u00a0"  # the number is written in by hand at signing; the gap must survive HTML
_SPACES = re.compile(r"[ \t]{2,}")
_SCALE_WORDS = tuple(word for word, _ in vnformat.SCALES)

# The order a report names the task counts in; their words are the tasks' own labels.
TASK_STATUSES = (TaskStatus.DONE, TaskStatus.IN_PROGRESS, TaskStatus.NOT_STARTED, TaskStatus.OVERDUE)


@dataclass
class Heading:
    number: str  # "I.", "1.", "a)", "Phần I"
    title: str
    depth: int  # 0 for a part, 1–3 for sections


@dataclass
class Paragraph:
    text: str

    def runs(self) -> list[tuple[str, bool]]:
        """(text, is_missing) pieces, for renderers to set missing figures apart."""
        out = []
        for piece in _MARKED.split(self.text):
            if piece:
                missing = piece.startswith(MISSING_OPEN)
                out.append((piece.strip(MISSING_OPEN + MISSING_CLOSE), missing))
        return out

    @property
    def plain(self) -> str:
        return "".join(text for text, _ in self.runs())


@dataclass
class Table:
    title: str
    header: list[str]
    rows: list[list[str]]  # cells may hold MISSING_TEXT

    def cell_runs(self, cell: str) -> list[tuple[str, bool]]:
        return Paragraph(cell).runs()


Item = Heading | Paragraph | Table


@dataclass
class Document:
    governing_body: str
    issuing_body: str
    number_line: str  # "Số:      /BC-BTTTT"
    place_date: str
    subject: str
    items: list[Item]
    missing: list[str]
    recipients: list[str]
    signer_title: str
    signer_name: str
    unit_name: str
    period_label: str
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Missing:
    """Figures missing, grouped by what and when, each with the units that lack it."""

    found: dict[tuple[str, str], list[str]] = field(default_factory=dict)

    def add(self, name: str, label: str, unit: str) -> None:
        units = self.found.setdefault((name, label), [])
        if unit not in units:
            units.append(unit)

    def lines(self) -> list[str]:
        out = []
        for (name, label), units in self.found.items():
            shown = ", ".join(units[:10]) + (f" và {len(units) - 10} đơn vị khác" if len(units) > 10 else "")
            out.append(f"{name}, {label}: {shown}")
        return out


class Composer:
    """Builds the document for one unit and period, reading through `facts`."""

    def __init__(self, body: Body, unit: Unit, period: Period, facts: Facts) -> None:
        self.body, self.unit, self.period, self.facts = body, unit, period, facts
        self.missing = Missing()
        self.env = SandboxedEnvironment(
            undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False
        )
        self.env.globals.update(self._functions())
        self._names: dict[str, tuple[str, str]] = {}

    # What the templates may call

    def _functions(self) -> dict[str, Any]:
        return {
            "value": self.value, "reached": self.reached, "estimated": self.estimated,
            "change": self.change, "progress": self.progress, "has": self.has,
            "period_label": self.period_label, "number": vnformat.number, "percent": vnformat.percent,
            "year": self.period.end.year, "unit_name": self.unit.name,
        }  # fmt: skip

    def resolve(self, pe: str = "") -> Period:
        """A period word relative to the report's period, or a period id."""
        p = self.period
        words = {
            "": p, "ytd": p.ytd(), "previous": p.previous(), "previous_ytd": p.previous().ytd(),
            "year": periods.period_of("yearly", p.end), "last_year": p.last_year(),
            "next": periods.period_of(p.type, p.end + timedelta(days=1)),
        }  # fmt: skip
        if pe in words:
            return words[pe]
        try:
            return periods.parse(pe)
        except PeriodError:
            raise DefinitionError(
                "",
                _("'%(period)s' is neither a period nor one of %(words)s")
                % {"period": pe, "words": ", ".join(words)},
            ) from None

    def _figure(self, code: str, pe: str, unit: Unit | None = None) -> dict | None:
        self.name(code)  # an unknown code is the definition's fault, named as such
        period, unit = self.resolve(pe), unit or self.unit
        row = self.facts.figures(code, period, [unit])[0]
        if row is None or row["value"] is None:
            self.missing.add(self.name(code), period.label(), unit.name)
            return None
        return row

    def name(self, code: str) -> str:
        if code not in self._names:
            try:
                dim = dimension(code)
            except AnalyticsError as exc:
                raise DefinitionError("", str(exc)) from None
            self._names[code] = (dim.name, dim.unit)
        return self._names[code][0]

    def _unit_of(self, code: str) -> str:
        self.name(code)
        return self._names[code][1]

    def value(
        self, code: str, pe: str = "", scale: str | None = None, unit: str | None = None, decimals: int = 2
    ) -> str:
        row = self._figure(code, pe)
        if row is None:
            return MISSING_TEXT
        shown_unit = self._unit_of(code) if unit is None else unit
        mark = UNAPPROVED_TEXT if row.get("approved") is False else ""
        if shown_unit == "%":
            return vnformat.percent(row["value"], decimals) + mark
        if scale is None and shown_unit.startswith(_SCALE_WORDS):
            scale = ""  # '24.500 tỷ đồng', not '24,5 nghìn tỷ đồng': the unit already carries its scale
        return vnformat.scaled(row["value"], shown_unit, scale=scale, decimals=decimals) + mark

    def reached(self, code: str, pe: str = "") -> str:
        row = self._figure(code, pe)
        return "" if row is None else vnformat.reached(row["status"] == "estimate")

    def estimated(self, code: str, pe: str = "") -> str:
        row = self._figure(code, pe)
        return "ước" if row is not None and row["status"] == "estimate" else ""

    def change(self, code: str, pe: str = "", against: str = "so với cùng kỳ", decimals: int = 2) -> str:
        row = self._figure(code, pe)
        if row is None:
            return ""
        if row["change_pct"] is None:
            self.missing.add(
                f"{self.name(code)} (cùng kỳ)", self.resolve(pe).last_year().label(), self.unit.name
            )
            return "so với cùng kỳ: " + MISSING_TEXT
        return vnformat.change(row["change_pct"], against=against, decimals=decimals)

    def progress(self, code: str, pe: str = "", of: str = "kế hoạch năm") -> str:
        row = self._figure(code, pe)
        return "" if row is None else vnformat.progress(row["target_pct"], of=of)

    def has(self, code: str, pe: str = "") -> bool:
        row = self.facts.figures(code, self.resolve(pe), [self.unit])[0]
        return row is not None and row["value"] is not None

    def period_label(self, pe: str = "") -> str:
        return self.resolve(pe).label()

    # The document

    def text(self, template: str, where: str) -> str:
        try:
            out = self.env.from_string(template).render()
        except DefinitionError as exc:
            raise DefinitionError(where, str(exc)) from None
        except TemplateError as exc:
            raise DefinitionError(where, template_error(exc, getattr(exc, "lineno", None))) from None
        return _SPACES.sub(" ", out).strip()

    def document(self, *, number: str = "", dated: date) -> Document:
        body = self.body
        items: list[Item] = []
        self._sections(body.sections, "sections", 1, items)
        return Document(
            governing_body=body.governing_body,
            issuing_body=body.issuing_body,
            number_line=f"Số: {number or NBSP * 8}/{body.document_code}",
            place_date=vnformat.place_date(body.place, dated),
            subject=self.text(body.subject, "subject"),
            items=items,
            missing=self.missing.lines(),
            recipients=body.recipients,
            signer_title=body.signer_title,
            signer_name=body.signer_name,
            unit_name=self.unit.name,
            period_label=self.period.label(),
        )

    def _sections(self, sections: list[SectionSpec], path: str, depth: int, items: list[Item]) -> None:
        parts = 0
        numbered = 0
        for i, section in enumerate(sections):
            where = f"{path}.{i}"
            if section.part:
                parts += 1
                items.append(Heading(f"Phần {vnformat.roman(parts)}", self.text(section.title, where), 0))
                self._blocks(section, where, items)
                self._sections(section.sections, f"{where}.sections", depth, items)
                continue
            numbered += 1
            items.append(Heading(_numbering(depth, numbered), self.text(section.title, where), depth))
            self._blocks(section, where, items)
            self._sections(section.sections, f"{where}.sections", depth + 1, items)

    def _blocks(self, section: SectionSpec, where: str, items: list[Item]) -> None:
        for j, block in enumerate(section.blocks):
            at = f"{where}.blocks.{j}"
            if hasattr(block, "text"):
                for paragraph in self.text(block.text, at).split("\n\n"):
                    if paragraph.strip():
                        items.append(Paragraph(" ".join(paragraph.split())))
            elif hasattr(block, "table"):
                items.append(self._table(block.table, at))
            elif hasattr(block, "tasks"):
                items.extend(self._tasks(block.tasks.title))
            else:
                items.extend(self._directives(block.directives.title))

    def _table(self, spec: TableSpec, where: str) -> Table:
        period = self.resolve(spec.period)
        units = self._rows_units(spec)
        header = ["STT", "Đơn vị"]
        columns = []
        for code in spec.indicators:
            measure = self._unit_of(code)
            header.append(f"{self.name(code)} ({measure})" if measure else self.name(code))
            columns.append((code, self.facts.figures(code, period, units)))
            if spec.change:
                header.append("So với cùng kỳ (%)")
        rows = []
        for n, unit in enumerate(units, 1):
            row = [str(n), unit.name]
            for code, figures in columns:
                figure = figures[n - 1]
                if figure is None or figure["value"] is None:
                    self.missing.add(self.name(code), period.label(), unit.name)
                    row.append(MISSING_TEXT)
                else:
                    mark = UNAPPROVED_TEXT if figure.get("approved") is False else ""
                    row.append(vnformat.number(figure["value"]) + mark)
                if spec.change:
                    pct = None if figure is None else figure["change_pct"]
                    row.append("–" if pct is None else vnformat.number(pct, decimals=2))
            rows.append(row)
        return Table(self.text(spec.title, where) if spec.title else "", header, rows)

    def _rows_units(self, spec: TableSpec) -> list[Unit]:
        if spec.rows == "self":
            return [self.unit]
        return list(Unit.objects.filter(parent=self.unit).within(self.facts.area).order_by("code"))

    def _tasks(self, title: str) -> list[Item]:
        found = self.facts.tasks(self.unit)
        counts = found["counts"]
        total = sum(counts.values())
        if total == 0:
            return [Paragraph(title or "Nhiệm vụ: không có nhiệm vụ nào trong kỳ.")]
        parts = [f"{STATUS_LABELS[code]} {vnformat.number(counts.get(code, 0))}" for code in TASK_STATUSES]
        out: list[Item] = [
            Paragraph(
                f"{title or 'Tổng số nhiệm vụ'}: {vnformat.number(total)}, trong đó " + ", ".join(parts) + "."
            )
        ]
        if found["overdue"]:
            rows = [
                [str(n), t["title"], t["owner"], vnformat.short_date(date.fromisoformat(t["due"]))]
                for n, t in enumerate(found["overdue"], 1)
            ]
            out.append(Table("Nhiệm vụ quá hạn", ["STT", "Nhiệm vụ", "Đơn vị chủ trì", "Hạn"], rows))
        return out

    def _directives(self, title: str) -> list[Item]:
        issued = self.facts.directives(self.unit, self.period)
        if not issued:
            return [
                Paragraph(f"{title or 'Văn bản chỉ đạo'}: không có văn bản chỉ đạo nào ban hành trong kỳ.")
            ]
        rows = []
        for n, d in enumerate(issued, 1):
            total = d["total"] or 1
            name = " ".join(p for p in (d["number"], d["title"]) if p)
            rows.append([
                str(n), name + (" (đã hủy)" if d["cancelled"] else ""),
                vnformat.short_date(date.fromisoformat(d["issued"])), vnformat.number(d["total"]),
                vnformat.percent(100 * d["acknowledged"] / total, 1),
                vnformat.percent(100 * d["responded"] / total, 1),
            ])  # fmt: skip
        lead = Paragraph(
            f"{title or 'Văn bản chỉ đạo đã ban hành trong kỳ'}: {vnformat.number(len(issued))} văn bản."
        )
        header = ["STT", "Văn bản", "Ngày ban hành", "Số đơn vị nhận", "Tỷ lệ xác nhận", "Tỷ lệ phản hồi"]
        return [lead, Table("", header, rows)]


def check_templates(body: Body) -> None:
    """Every text of the definition parses as a template; DefinitionError names the first that does not.
    (Unknown codes and periods show only when the report is made: they depend on the catalogue.)"""
    env = SandboxedEnvironment()
    texts = [("subject", body.subject)]
    for path, section, _depth in walk(body.sections):
        texts.append((path, section.title))
        for j, block in enumerate(section.blocks):
            if isinstance(block, TextBlock):
                texts.append((f"{path}.blocks.{j}", block.text))
            elif isinstance(block, TableBlock) and block.table.title:
                texts.append((f"{path}.blocks.{j}", block.table.title))
    for where, text in texts:
        try:
            env.parse(text)
        except TemplateSyntaxError as exc:
            raise DefinitionError(where, template_error(exc.message, exc.lineno)) from None


def template_error(error: object, line: int | None) -> str:
    """A template's fault, Jinja's own words (English: they name the template's syntax) after ours."""
    if line:
        return _("the template cannot be used (line %(line)s): %(error)s") % {"line": line, "error": error}
    return _("the template cannot be used: %(error)s") % {"error": error}


def _numbering(depth: int, n: int) -> str:
    """I. / 1. / a) as Decree 30/2020/NĐ-CP numbers a report's sections."""
    if depth == 1:
        return f"{vnformat.roman(n)}."
    if depth == 2:
        return f"{n}."
    return f"{_LETTERS[(n - 1) % len(_LETTERS)]})"


# Vietnamese lists run a, b, c, d, đ, e, g … (no f, j, w, z).
_LETTERS = [
    "a",
    "b",
    "c",
    "d",
    "đ",
    "e",
    "g",
    "h",
    "i",
    "k",
    "l",
    "m",
    "n",
    "o",
    "p",
    "q",
    "r",
    "s",
    "t",
    "u",
    "v",
    "x",
    "y",
]
