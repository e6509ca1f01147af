"""Data values in and out, in DHIS2's dataValueSets forms (JSON and CSV), with its import summary.

An import validates every row first, then writes the good ones in one transaction: a bad row is a
conflict naming its index, field and reason, and never stops or half-writes the good rows. Resending
the same values changes nothing ("ignored"); an empty value deletes the stored one (DHIS2's rule),
which is how a mistaken figure is taken back. Every change leaves a DataValueAudit row.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from dieuhanh.accounts.models import User
from dieuhanh.accounts.services import audit
from dieuhanh.errors import DomainError
from dieuhanh.indicators.approval.locks import locked
from dieuhanh.indicators.models import DataElement, DataValue, DataValueAudit, Status
from dieuhanh.indicators.periods import Period, PeriodError, parse
from dieuhanh.indicators.quality.rules import screen
from dieuhanh.sheets import csv_cell
from dieuhanh.units.models import Unit
from dieuhanh.units.scoping import Area
from dieuhanh.units.services import unit_in_area

FIELDS = ("dataElement", "period", "orgUnit", "categoryOptionCombo", "value", "comment", "status")
DEFAULT_OPTIONS = {"", "default", "HllvX50cXC0"}  # DHIS2's name and UID of the default combination
PERIOD_RANK = {"daily": 0, "weekly": 1, "monthly": 2, "quarterly": 3, "sixmonthly": 4, "yearly": 5, "ytd": 3}


class ImportFormatError(DomainError):
    """The body as a whole cannot be read (not JSON, no dataValues, no CSV header): 422, no field."""

    def __init__(self, message: str | Promise) -> None:
        super().__init__(None, message)


@dataclass
class Conflict:
    index: int
    field: str
    object: str
    value: str | Promise  # the reason, as DHIS2 names it (in the reader's language when answered)
    error_code: str
    line: int | None = None  # the row in the file a person opens (CSV, Excel)

    def as_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "line": self.line,
            "field": self.field,
            "object": self.object,
            "value": str(self.value),
            "errorCode": self.error_code,
        }


@dataclass
class ImportSummary:
    dry_run: bool
    imported: int = 0
    updated: int = 0
    ignored: int = 0
    deleted: int = 0
    conflicts: list[Conflict] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)  # broken `warn` validation rules

    @property
    def status(self) -> str:
        if not self.conflicts:
            return "SUCCESS"
        return "WARNING" if self.imported + self.updated + self.deleted + self.ignored else "ERROR"

    def as_dict(self) -> dict[str, Any]:
        counts = {"imported": self.imported, "updated": self.updated, "ignored": self.ignored}
        return {
            "responseType": "ImportSummary",
            "status": self.status,
            "description": _description(self),
            "dryRun": self.dry_run,
            "importCount": {**counts, "deleted": self.deleted},
            "conflicts": [c.as_dict() for c in self.conflicts],
            "validationViolations": self.warnings,
        }


def _description(summary: ImportSummary) -> str:
    what = str(_("Dry run: nothing was written.") if summary.dry_run else _("Import complete."))
    if summary.conflicts:
        what += " " + _("%(n)s row(s) refused; see conflicts.") % {"n": len(summary.conflicts)}
    return what


@dataclass(frozen=True)
class Row:
    """A validated row, ready to write."""

    index: int
    element: DataElement
    unit: Unit
    period: str
    option: str
    value: float | None  # None deletes
    status: str
    comment: str

    @property
    def cell(self) -> tuple[int, int, str, str]:
        return (self.element.pk, self.unit.pk, self.period, self.option)


# Reading the body


def records_of(body: bytes, content_type: str) -> list[dict[str, Any]]:
    """The rows of a dataValueSets body: JSON (with DHIS2's set-level defaults) or CSV with a header."""
    text = body.decode("utf-8-sig")
    if "csv" in content_type:
        return csv_records(text)
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ImportFormatError(
            _("the body is not JSON (line %(line)s, column %(column)s: %(reason)s)")
            % {"line": exc.lineno, "column": exc.colno, "reason": exc.msg}
        ) from None
    return json_records(document)


def json_records(document: Any) -> list[dict[str, Any]]:
    if not isinstance(document, dict) or not isinstance(document.get("dataValues"), list):
        raise ImportFormatError(_('a dataValueSets document is an object with a "dataValues" list'))
    defaults = {k: document[k] for k in ("period", "orgUnit", "status") if k in document}
    return [{**defaults, **row} if isinstance(row, dict) else {"_bad": row} for row in document["dataValues"]]


def csv_records(text: str) -> list[dict[str, Any]]:
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [f for f in ("dataElement", "period", "orgUnit", "value") if f not in header]
    if missing:
        raise ImportFormatError(
            _("the CSV header lacks %(missing)s (columns: %(columns)s)")
            % {"missing": ", ".join(missing), "columns": ", ".join(FIELDS)}
        )
    return [
        {"_line": reader.line_num, **{(k or "").strip(): (v or "").strip() for k, v in row.items()}}
        for row in reader
    ]


# Validation


class Resolver:
    """Looks up the elements and units a batch names, each once."""

    def __init__(self, edition: str) -> None:
        self.edition = edition
        self.elements = {e.code: e for e in DataElement.objects.all()}
        self._units: dict[str, Unit | DomainError] = {}

    def unit(self, ref: str, area: Area) -> Unit | DomainError:
        """The unit inside the caller's area, or why not (the same for no unit and another area's)."""
        if ref not in self._units:
            try:
                self._units[ref] = unit_in_area(ref, area, field="orgUnit", edition=self.edition)
            except DomainError as refused:
                self._units[ref] = refused
        return self._units[ref]


def validate(index: int, record: dict[str, Any], resolver: Resolver, area: Area) -> Row | Conflict:
    if "_bad" in record:
        return Conflict(
            index, "dataValues", str(record["_bad"])[:80], _("a data value is an object"), "E7600"
        )
    text = {f: _text(record.get(f)) for f in FIELDS}
    element = resolver.elements.get(text["dataElement"])
    if element is None:
        return Conflict(
            index, "dataElement", text["dataElement"], _("no data element with this code"), "E7610"
        )
    period = _period(index, text["period"], element)
    if isinstance(period, Conflict):
        return period
    unit = resolver.unit(text["orgUnit"], area)
    if isinstance(unit, DomainError):
        return Conflict(index, "orgUnit", text["orgUnit"], unit.message, "E7612")
    option = "" if text["categoryOptionCombo"] in DEFAULT_OPTIONS else text["categoryOptionCombo"]
    if option and option not in element.option_codes():
        known = ", ".join(element.option_codes()) or "—"
        reason = _("'%(code)s' has no option '%(option)s' (options: %(known)s)") % {
            "code": element.code,
            "option": option,
            "known": known,
        }
        return Conflict(index, "categoryOptionCombo", option, reason, "E7615")
    status = text["status"] or Status.FINAL
    if status not in Status.values:
        return Conflict(index, "status", status, _("status is 'estimate' or 'final'"), "E7619")
    value = _value(index, record.get("value"), element)
    if isinstance(value, Conflict):
        return value
    return Row(index, element, unit, period.id, option, value, status, text["comment"])


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _period(index: int, pid: str, element: DataElement) -> Period | Conflict:
    try:
        period = parse(pid)
    except PeriodError as exc:
        return Conflict(index, "period", pid, exc.message, "E7611")
    if PERIOD_RANK[period.type] < PERIOD_RANK[element.period_type]:
        reason = _("'%(code)s' is reported %(type)s; a %(finer)s period is finer than that") % {
            "code": element.code,
            "type": element.period_type,
            "finer": period.type,
        }
        return Conflict(index, "period", pid, reason, "E7611")
    return period


NOT_A_NUMBER = _("not a number (write digits with a dot for decimals, no thousands separators: 24500.5)")


def _value(index: int, raw: Any, element: DataElement) -> float | Conflict | None:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    try:
        value = float(raw.strip() if isinstance(raw, str) else raw)
    except (TypeError, ValueError):
        return Conflict(index, "value", str(raw), NOT_A_NUMBER, "E7619")
    if not math.isfinite(value):
        return Conflict(index, "value", str(raw), _("not a finite number"), "E7619")
    if element.value_type == "integer" and not value.is_integer():
        reason = _("'%(code)s' takes whole numbers") % {"code": element.code}
        return Conflict(index, "value", str(raw), reason, "E7619")
    if element.value_type == "percent" and not 0 <= value <= 100:
        reason = _("'%(code)s' is a percentage (0 to 100)") % {"code": element.code}
        return Conflict(index, "value", str(raw), reason, "E7619")
    return value


# Import


def import_values(
    records: Iterable[dict[str, Any]],
    *,
    actor: User | None,
    area: Area,
    edition: str = "VN-2025",
    dry_run: bool = False,
) -> ImportSummary:
    """Validate every record, then write the good ones (unless a dry run); the DHIS2 import summary."""
    summary = ImportSummary(dry_run)
    resolver = Resolver(edition)
    rows: dict[tuple, Row] = {}
    lines: dict[int, int | None] = {}  # row index → line in the file, for conflicts found later
    for index, record in enumerate(records):
        lines[index] = record.get("_line")
        checked = validate(index, record, resolver, area)
        if isinstance(checked, Row) and checked.cell in rows:
            first = rows[checked.cell].index
            reason = _("the same cell as row %(first)s; only row %(first)s counts") % {"first": first}
            checked = Conflict(index, "dataValues", "", reason, "E7617")
        if isinstance(checked, Conflict):
            checked.line = record.get("_line")
            summary.conflicts.append(checked)
        else:
            rows[checked.cell] = checked
    rows = refuse_locked(rows, summary, lines)  # approved or past the expiry days (issue 19): 409 per row
    with transaction.atomic():
        rows = screen(rows, summary, actor=actor, lines=lines)  # validation rules (issue 19)
        _write(list(rows.values()), summary, actor)
        if dry_run:
            transaction.set_rollback(True)
        elif summary.imported + summary.updated + summary.deleted:
            audit(
                actor,
                "datavalues.import",
                rows=summary.imported + summary.updated + summary.deleted,
                **{k: v for k, v in summary.as_dict()["importCount"].items()},
            )
    return summary


def refuse_locked(
    rows: dict[tuple, Row], summary: ImportSummary, lines: dict[int, int | None]
) -> dict[tuple, Row]:
    """The rows whose cells are not locked; a locked one becomes a conflict naming why (the others stay)."""
    found = locked((cell, row.element.pk, row.unit, row.period) for cell, row in rows.items())
    for cell, lock in found.items():
        row = rows[cell]
        conflict = Conflict(row.index, "period", row.period, lock.reason, lock.code)
        conflict.line = lines.get(row.index)
        summary.conflicts.append(conflict)
    if found:
        summary.conflicts.sort(key=lambda c: c.index)
    return {cell: row for cell, row in rows.items() if cell not in found}


def _write(rows: list[Row], summary: ImportSummary, actor: User | None) -> None:
    stored = _stored(rows)
    now = timezone.now()
    new, changed, gone, trail = [], [], [], []
    for row in rows:
        old = stored.get(row.cell)
        if row.value is None:
            if old is None:
                summary.ignored += 1
                continue
            gone.append(old.pk)
            trail.append(_audit_row(row, actor, "delete", old))
        elif old is None:
            new.append(
                DataValue(
                    element=row.element,
                    unit=row.unit,
                    period=row.period,
                    option=row.option,
                    value=row.value,
                    status=row.status,
                    comment=row.comment,
                    stored_by=actor,
                )
            )
            trail.append(_audit_row(row, actor, "create", None))
        elif (old.value, old.status, old.comment) == (row.value, row.status, row.comment):
            summary.ignored += 1
        else:
            trail.append(_audit_row(row, actor, "update", old))
            old.value, old.status, old.comment, old.stored_by = row.value, row.status, row.comment, actor
            old.updated_at = now  # bulk_update does not apply auto_now
            changed.append(old)
    DataValue.objects.bulk_create(new, batch_size=1000)
    DataValue.objects.bulk_update(
        changed, ["value", "status", "comment", "stored_by", "updated_at"], batch_size=1000
    )
    DataValue.objects.filter(pk__in=gone).delete()
    DataValueAudit.objects.bulk_create(trail, batch_size=1000)
    summary.imported += len(new)
    summary.updated += len(changed)
    summary.deleted += len(gone)


def _stored(rows: list[Row]) -> dict[tuple, DataValue]:
    """The stored values of the rows' cells, by cell, in a few queries."""
    found: dict[tuple, DataValue] = {}
    by_element: dict[int, set[str]] = {}
    for row in rows:
        by_element.setdefault(row.element.pk, set()).add(row.period)
    unit_ids = {row.unit.pk for row in rows}
    for element_id, periods in by_element.items():
        for value in DataValue.objects.filter(
            element_id=element_id, period__in=periods, unit_id__in=unit_ids
        ):
            found[(value.element_id, value.unit_id, value.period, value.option)] = value
    return found


def _audit_row(row: Row, actor: User | None, action: str, old: DataValue | None) -> DataValueAudit:
    return DataValueAudit(
        element=row.element,
        unit=row.unit,
        period=row.period,
        option=row.option,
        action=action,
        old_value=old.value if old else None,
        new_value=row.value,
        old_status=old.status if old else "",
        new_status=row.status if row.value is not None else "",
        actor=actor,
        actor_name=actor.username if actor else "system",
    )


# Export


def export_rows(values: Iterable[DataValue]) -> list[dict[str, Any]]:
    """Stored values as DHIS2 dataValues rows (values select_related element, unit and stored_by)."""
    return [
        {
            "dataElement": v.element.code,
            "period": v.period,
            "orgUnit": v.unit.ref,
            "categoryOptionCombo": v.option or "default",
            "value": _plain(v.value),
            "comment": v.comment,
            "status": v.status,
            "storedBy": v.stored_by.username if v.stored_by else "",
            "lastUpdated": v.updated_at.isoformat(),
        }
        for v in values
    ]


def _plain(value: float) -> str:
    """DHIS2 sends values as strings; whole numbers without '.0'."""
    return str(int(value)) if value.is_integer() else repr(value)


def rows_as_csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=[*FIELDS, "storedBy", "lastUpdated"], lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: csv_cell(v) for k, v in r.items()} for r in rows)
    return out.getvalue()


def history(value: DataValue) -> list[dict[str, Any]]:
    """Every change of the value's cell, newest first."""
    rows = DataValueAudit.objects.filter(
        element_id=value.element_id, unit_id=value.unit_id, period=value.period, option=value.option
    )
    return [
        {
            "at": a.at.isoformat(),
            "actor": a.actor_name,
            "action": a.action,
            "old_value": a.old_value,
            "new_value": a.new_value,
            "old_status": a.old_status,
            "new_status": a.new_status,
        }
        for a in rows
    ]
