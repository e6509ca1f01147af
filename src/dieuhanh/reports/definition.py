"""The shape of a report definition's body, checked before it is stored.

    {
      "governing_body": "",                       # cơ quan chủ quản (may be empty)
      "issuing_body": "BỘ THÔNG TIN VÀ TRUYỀN THÔNG",
      "document_code": "BC-BTTTT",                # "Số: …/BC-BTTTT"
      "place": "Hà Nội",
      "subject": "Tình hình phát triển ngành TT&TT {{ period_label }}",
      "sections": [ {"title": "…", "blocks": [ {"text": "…"}, {"table": {…}}, {"tasks": {…}} ],
                     "sections": [ … ]} ],
      "recipients": ["Thủ tướng Chính phủ (để b/c);", "Lưu: VT, KHTC."],
      "signer_title": "BỘ TRƯỞNG", "signer_name": ""
    }

Sections nest up to three levels and are numbered as Decree 30/2020/NĐ-CP numbers a report's parts:
I., II. · 1., 2. · a), b). A section with "part": true (top level only) is a "Phần I", "Phần II" above
them. Texts are Jinja templates (sandboxed) whose placeholders read the figures: see compose.py.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from django.utils.translation import gettext_lazy as _
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dieuhanh.errors import DomainError

MAX_DEPTH = 3


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TableSpec(_Strict):
    """Indicators (columns) by unit (rows): the report's unit itself, or its children on its map."""

    title: str = ""
    indicators: list[str] = Field(min_length=1)
    rows: Literal["children", "self"] = "children"
    period: str = ""  # a relative period (see compose.PERIOD_WORDS) or an id; the report's by default
    change: bool = True  # a "so với cùng kỳ" column per indicator


class TasksSpec(_Strict):
    """The tasks of the report's unit and those below it: counts by status and the overdue ones listed."""

    title: str = ""
    list_overdue: bool = True


class DirectivesSpec(_Strict):
    """The directives issued in the period within the report's unit, with their acknowledgement and
    response rates."""

    title: str = ""


class TextBlock(_Strict):
    text: str


class TableBlock(_Strict):
    table: TableSpec


class TasksBlock(_Strict):
    tasks: TasksSpec


class DirectivesBlock(_Strict):
    directives: DirectivesSpec


Block = TextBlock | TableBlock | TasksBlock | DirectivesBlock


class SectionSpec(_Strict):
    title: str
    part: bool = False
    blocks: list[Block] = []
    sections: list[SectionSpec] = []


class Body(_Strict):
    governing_body: str = ""
    issuing_body: str = Field(min_length=1)
    document_code: str = Field(min_length=1, pattern=r"^BC-[A-ZĐ0-9&.-]+$")
    place: str = Field(min_length=1)
    subject: str = Field(min_length=1)
    sections: Annotated[list[SectionSpec], Field(min_length=1)]
    recipients: list[str] = []
    signer_title: str = ""
    signer_name: str = ""


class DefinitionError(DomainError):
    """A definition that cannot be used; `field` is the path to the faulty part ('sections.0.title')."""

    @property
    def where(self) -> str:
        return self.field or ""


def check(body: Any) -> Body:
    """The body as a Body, or DefinitionError naming the first faulty field by its path."""
    try:
        parsed = Body.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise DefinitionError(".".join(str(p) for p in first["loc"]), first["msg"]) from None
    for path, section, depth in walk(parsed.sections):
        if depth > MAX_DEPTH:
            raise DefinitionError(
                path, _("sections nest at most %(n)s levels (I. / 1. / a))") % {"n": MAX_DEPTH}
            )
        if section.part and depth > 1:
            raise DefinitionError(path, _("only a top-level section can be a part (Phần)"))
    return parsed


def walk(sections: list[SectionSpec], prefix: str = "sections", depth: int = 1):
    """Every section with its path and depth, parts not counted as a level."""
    for i, section in enumerate(sections):
        path = f"{prefix}.{i}"
        yield path, section, depth
        yield from walk(section.sections, f"{path}.sections", depth if section.part else depth + 1)
