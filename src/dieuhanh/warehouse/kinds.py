"""Event kinds: their JSON contract (msgspec structs), and how a valid record becomes a row.

The JSON names are the contract with source platforms. Each kind also names the two small
dimensions its rollups are counted by (e.g. test: result, method).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Annotated, Any, Literal

import msgspec
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from dieuhanh.warehouse import models

if TYPE_CHECKING:
    from dieuhanh.warehouse.ingest import Context

# Every text field has a cap (the test suite checks it): the column's own where it has one, else a
# bound well above any real value, so that one record cannot fill a batch's memory or a screen.
SeId = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
Ref = Annotated[str, msgspec.Meta(max_length=100)]  # a commune reference, a venue code or QR payload
PersonId = Annotated[str, msgspec.Meta(max_length=40)]  # '+84 (0) 912 345 678' and the like
Text = Annotated[str, msgspec.Meta(max_length=4000)]
Symptom = Literal["fever", "cough", "breath", "taste_smell", "fatigue"]
SYMPTOMS: tuple[str, ...] = ("fever", "cough", "breath", "taste_smell", "fatigue")
PROSE = frozenset({"text"})  # free text, which may keep its line breaks and tabs


class FieldError(ValueError):
    """A record's value that cannot be used: names the field and why."""

    def __init__(self, field: str | None, message: str | Promise):
        super().__init__(message)
        self.field = field

    def __reduce__(self):  # a reader's FieldError goes to the validating process (ingest._Validator)
        return type(self), (self.field, str(self))


# Control characters (C0, DEL, C1) and lone surrogates. PostgreSQL refuses NUL in text, the others
# garble screens, CSV and spreadsheets; a surrogate is what bytes that are not UTF-8 become when a
# CSV line is read (surrogateescape), and no database column can store one.
_UNFIT = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_UNFIT_IN_PROSE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
# A rejected record's reasons, translated when the rejection is written (rejected rows only).
NOT_UTF8_TEXT = _("is not valid UTF-8 text")
BEFORE = _("is before %(other)s")


def check_text(record: msgspec.Struct) -> None:
    """FieldError for the first text field holding a character no column should store."""
    for name in text_fields(type(record)):
        value = getattr(record, name)
        if value is None:
            continue
        char = unfit_character(value, prose=name in PROSE)
        if char is not None:
            if "\ud800" <= char <= "\udfff":
                raise FieldError(name, NOT_UTF8_TEXT)
            raise FieldError(name, _("contains a control character (U+%(code)04X)") % {"code": ord(char)})


def unfit_character(value: str, *, prose: bool = False) -> str | None:
    """The first character of `value` no text column should store (prose keeps line breaks and tabs):
    the one rule for text that people and platforms send, here and in the other apps."""
    bad = (_UNFIT_IN_PROSE if prose else _UNFIT).search(value)
    return None if bad is None else bad.group()


@cache
def text_fields(struct: type[msgspec.Struct]) -> tuple[str, ...]:
    """The struct's fields that hold free strings (not literals), with or without None."""

    def is_text(t: Any) -> bool:
        if isinstance(t, msgspec.inspect.UnionType):
            return any(is_text(member) for member in t.types)
        return isinstance(t, msgspec.inspect.StrType)

    info = msgspec.inspect.type_info(struct)
    assert isinstance(info, msgspec.inspect.StructType)
    return tuple(f.name for f in info.fields if is_text(f.type))


class CheckinIn(msgspec.Struct):
    source_event_id: SeId
    venue: Ref
    person_id: PersonId
    time_in: datetime
    time_out: datetime | None = None


class HealthIn(msgspec.Struct):
    source_event_id: SeId
    person_id: PersonId
    commune: Ref
    declared_at: datetime
    exposure: bool
    symptoms: Annotated[list[Symptom], msgspec.Meta(max_length=10)] = []


class TravelIn(msgspec.Struct):
    source_event_id: SeId
    person_id: PersonId
    from_commune: Ref
    to_commune: Ref
    depart_at: datetime
    mode: Literal["road", "rail", "air", "water"]
    arrive_at: datetime | None = None


class TestIn(msgspec.Struct):
    source_event_id: SeId
    person_id: PersonId
    commune: Ref
    sampled_at: datetime
    method: Literal["pcr", "rapid"]
    result: Literal["positive", "negative", "invalid"]


class VaccinationIn(msgspec.Struct):
    source_event_id: SeId
    person_id: PersonId
    commune: Ref
    vaccinated_at: datetime
    dose: Annotated[int, msgspec.Meta(ge=1, le=4)]
    vaccine: Annotated[str, msgspec.Meta(min_length=1, max_length=60)]


class QuarantineIn(msgspec.Struct):
    source_event_id: SeId
    person_id: PersonId
    commune: Ref
    start: datetime
    place: Literal["home", "facility"]
    end: datetime | None = None


class ReportIn(msgspec.Struct):
    source_event_id: SeId
    commune: Ref
    reported_at: datetime
    category: Annotated[str, msgspec.Meta(min_length=1, max_length=40)]
    text: Text
    person_id: PersonId | None = None


Prepared = tuple[int, datetime, bytes | None, tuple, str, str]
"""(commune id, time, person key, kind-specific values, dim1, dim2)"""


def _checkin(r: CheckinIn, ctx: Context) -> Prepared:
    venue = ctx.venue(r.venue)
    time_in = ctx.time(r.time_in, "time_in")
    time_out = ctx.time(r.time_out, "time_out") if r.time_out else None
    if time_out is not None and time_out < time_in:
        raise FieldError("time_out", BEFORE % {"other": "time_in"})
    return venue.commune_id, time_in, ctx.person(r.person_id), (venue.id, time_out), venue.kind, ""


def _health(r: HealthIn, ctx: Context) -> Prepared:
    bits = sum(1 << SYMPTOMS.index(s) for s in set(r.symptoms))
    symptomatic = "yes" if bits else "no"
    return (
        ctx.commune(r.commune, "commune"),
        ctx.time(r.declared_at, "declared_at"),
        ctx.person(r.person_id),
        (bits, r.exposure),
        symptomatic,
        "",
    )


def _travel(r: TravelIn, ctx: Context) -> Prepared:
    depart = ctx.time(r.depart_at, "depart_at")
    arrive = ctx.time(r.arrive_at, "arrive_at") if r.arrive_at else None
    if arrive is not None and arrive < depart:
        raise FieldError("arrive_at", BEFORE % {"other": "depart_at"})
    origin = ctx.commune(r.from_commune, "from_commune")
    return (
        ctx.commune(r.to_commune, "to_commune"),
        depart,
        ctx.person(r.person_id),
        (origin, arrive, r.mode),
        r.mode,
        "",
    )


def _test(r: TestIn, ctx: Context) -> Prepared:
    return (
        ctx.commune(r.commune, "commune"),
        ctx.time(r.sampled_at, "sampled_at"),
        ctx.person(r.person_id),
        (r.method, r.result),
        r.result,
        r.method,
    )


def _vaccination(r: VaccinationIn, ctx: Context) -> Prepared:
    return (
        ctx.commune(r.commune, "commune"),
        ctx.time(r.vaccinated_at, "vaccinated_at"),
        ctx.person(r.person_id),
        (r.dose, r.vaccine.strip()),
        str(r.dose),
        "",
    )


def _quarantine(r: QuarantineIn, ctx: Context) -> Prepared:
    start = ctx.time(r.start, "start")
    end = ctx.time(r.end, "end") if r.end else None
    if end is not None and end < start:
        raise FieldError("end", BEFORE % {"other": "start"})
    return ctx.commune(r.commune, "commune"), start, ctx.person(r.person_id), (end, r.place), r.place, ""


def _report(r: ReportIn, ctx: Context) -> Prepared:
    key = ctx.person(r.person_id) if r.person_id else None
    category = r.category.strip().lower()
    return (
        ctx.commune(r.commune, "commune"),
        ctx.time(r.reported_at, "reported_at"),
        key,
        (category, r.text),
        category,
        "",
    )


@dataclass(frozen=True)
class Kind:
    name: str
    label: str
    model: type[models.Event]
    struct: type[msgspec.Struct]
    time_field: str
    fields: tuple[str, ...]  # the model's own columns, in the order `prepare` returns them
    json_fields: tuple[str, ...]  # the same values' names in the contract (for reading events back)
    dims: tuple[str, str]  # what dim1 and dim2 of its rollups mean ('' when unused)
    prepare: Callable[[Any, Context], Prepared]
    list_fields: tuple[str, ...] = ()


KINDS: dict[str, Kind] = {
    k.name: k
    for k in [
        Kind(
            "checkin",
            "Quét mã QR",
            models.CheckIn,
            CheckinIn,
            "time_in",
            ("venue_id", "time_out"),
            ("venue", "time_out"),
            ("venue_kind", ""),
            _checkin,
        ),
        Kind(
            "health",
            "Khai báo y tế",
            models.HealthDeclaration,
            HealthIn,
            "declared_at",
            ("symptoms", "exposure"),
            ("symptoms", "exposure"),
            ("symptomatic", ""),
            _health,
            list_fields=("symptoms",),
        ),
        Kind(
            "travel",
            "Khai báo di chuyển nội địa",
            models.TravelDeclaration,
            TravelIn,
            "depart_at",
            ("from_commune_id", "arrive_at", "mode"),
            ("from_commune", "arrive_at", "mode"),
            ("mode", ""),
            _travel,
        ),
        Kind(
            "test",
            "Xét nghiệm",
            models.TestResult,
            TestIn,
            "sampled_at",
            ("method", "result"),
            ("method", "result"),
            ("result", "method"),
            _test,
        ),
        Kind(
            "vaccination",
            "Tiêm chủng",
            models.Vaccination,
            VaccinationIn,
            "vaccinated_at",
            ("dose", "vaccine"),
            ("dose", "vaccine"),
            ("dose", ""),
            _vaccination,
        ),
        Kind(
            "quarantine",
            "Cách ly",
            models.Quarantine,
            QuarantineIn,
            "start",
            ("end", "place"),
            ("end", "place"),
            ("place", ""),
            _quarantine,
        ),
        Kind(
            "report",
            "Phản ánh",
            models.IncidentReport,
            ReportIn,
            "reported_at",
            ("category", "text"),
            ("category", "text"),
            ("category", ""),
            _report,
        ),
    ]
}


def symptom_codes(bits: int) -> list[str]:
    return [s for i, s in enumerate(SYMPTOMS) if bits & (1 << i)]
