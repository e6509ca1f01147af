"""One pipeline for every way in: parse → validate → dedupe → pseudonymise → write events and rollups.

A batch is one transaction: its valid records and their rollup counts are written together or not
at all, and a bad record never stops its neighbours. Every value goes through one validation path
(`Pipeline._prepare`): the kind's struct (types, lengths), `kinds.check_text` (no control characters,
valid UTF-8), `Context.time` (dates within EARLIEST … now + FUTURE_SLACK), then the kind's own checks;
a record failing any of them is rejected by its line number, with the field and the reason.
Re-sending a batch is harmless: a record whose (source, source_event_id) is already stored counts as
a duplicate and changes nothing.

Health declarations also fill the identity vault (warehouse.vault) with their persons, in the same
transaction; no other kind does, so check-ins pay nothing for it.
"""

from __future__ import annotations

import contextlib
import csv
import gc
import hmac
import io
import multiprocessing
import re
import signal
import weakref
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from functools import partial
from typing import Any, NamedTuple

import msgspec
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import DateTimeField, Q
from django.utils import timezone as dj_timezone
from django.utils.translation import gettext_lazy as _

from dieuhanh.accounts.services import audit
from dieuhanh.db import insert_rows
from dieuhanh.live import BUS, area_keys, publish_on_commit
from dieuhanh.units.models import Succession, Unit
from dieuhanh.vnformat import VN_TZ
from dieuhanh.warehouse import partitions, vault
from dieuhanh.warehouse.enterprises import rollups as enterprise_rollups
from dieuhanh.warehouse.kinds import KINDS, FieldError, Kind, check_text
from dieuhanh.warehouse.models import Rollup, RollupMonth, Source, Venue
from dieuhanh.warehouse.persons import PersonIdError, normalise
from dieuhanh.warehouse.qr import QrError, is_payload, venue_code
from dieuhanh.warehouse.reasons import csv_reason, decode_reason, json_reason

FUTURE_SLACK = timedelta(days=1)
# The earliest time an event may carry. The sources are the digital platforms of the 2020s, so an
# older time is a typo ('0021' for '2021') or a platform's unset value (0001-01-01, 1900-01-01, the
# Unix epoch), which would otherwise count on a day long before any data; refusing it also keeps every
# time within what Vietnam time, UTC and both databases can hold (year 1 at +07:00 is before UTC's).
EARLIEST = datetime(2000, 1, 1, tzinfo=VN_TZ)
BATCH_SIZE = 20_000
_PERSON_CACHE = 1_000_000  # raw ID → key entries kept in memory by one pipeline
# Health declarations are the channel where people give their contact details: only they fill the vault.
_VAULT_KINDS = frozenset({"health"})
_PERSON = 4  # the person key's place in a prepared event row
_VN_OFFSET = timedelta(hours=7)
_AT = re.compile(r" - at `\$\.([A-Za-z_]+)")
_MISSING = re.compile(r"missing required field `([^`]+)`")
_UNREADABLE = re.compile("[\ud800-\udfff]")  # what bytes that are not UTF-8 become (surrogateescape)

Record = bytes | str | dict[str, Any] | FieldError
"""An NDJSON line, a row already split into fields (CSV, Parquet), or why a reader could not read it."""


@dataclass(frozen=True)
class Rejection:
    line: int
    field: str | None
    error: str


@dataclass
class Summary:
    accepted: int = 0
    duplicates: int = 0
    rejected: list[Rejection] = field(default_factory=list)

    def add(self, other: Summary) -> None:
        self.accepted += other.accepted
        self.duplicates += other.duplicates
        self.rejected += other.rejected

    def as_dict(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": [{"line": r.line, "field": r.field, "error": r.error} for r in self.rejected],
        }


class VenueRef(NamedTuple):
    id: int
    commune_id: int
    kind: str


class Context:
    """What validating a record needs: units, venues, the pseudonym key, the clock. Cached per pipeline."""

    def __init__(self, source: Source, *, vault: bool = False):
        self.edition = source.edition_id
        self._communes: dict[str, int] = {}
        self._venues: dict[str, VenueRef | None] = {}
        self._key = settings.PSEUDONYM_KEY
        self._persons: dict[str, bytes] = {}
        # Persons this pipeline has put in the vault (committed), and the normalised IDs of those it
        # has yet to, by key. Every cached key is in one of them; None when the kind fills no vault.
        self.sealed: set[bytes] = set()
        self.unsealed: dict[bytes, str] | None = {} if vault else None
        self.latest = dj_timezone.now() + FUTURE_SLACK
        # While a batch streams into the database (`Pipeline.stream`) the connection is busy: a venue
        # not in `_venues` is then unknown, not looked up (the list is brought up to date per batch).
        self.offline = False
        self._bounds: dict[Any, tuple[datetime, datetime]] = {}
        self._venues_seen = 0  # the highest venue id loaded
        self._load_communes()

    def _load_communes(self) -> None:
        for edition, code, pk in Unit.objects.leaves().values_list("edition_id", "code", "id"):
            self._communes[f"{edition}:{code}"] = pk
            if edition == self.edition:
                self._communes[code] = pk

    def commune(self, ref: str, name: str) -> int:
        pk = self._communes.get(ref.strip())
        if pk is None:
            raise FieldError(
                name,
                _("'%(ref)s' is not a commune of %(edition)s (nor EDITION:CODE of one)")
                % {"ref": ref, "edition": self.edition},
            )
        return pk

    def venue(self, value: str) -> VenueRef:
        found = self._venues.get(value)  # a code as the venue list has it: nearly every check-in
        if found is not None:
            return found
        try:
            code = venue_code(value) if is_payload(value) else value.strip()
        except QrError as e:
            raise FieldError("venue", str(e)) from None
        if code not in self._venues and not self.offline:
            row = Venue.objects.filter(code=code).values_list("id", "commune_id", "kind").first()
            self._venues[code] = VenueRef(*row) if row else None
        venue = self._venues.get(code)
        if venue is None:
            raise FieldError("venue", _("unknown venue '%(code)s'") % {"code": code})
        return venue

    def preload_venues(self) -> dict[str, VenueRef]:
        """Every venue at first; then those created since (one query a batch, `Pipeline.stream`).
        Returns those it loaded, which the validating process (`_Validator`) is sent."""
        rows = Venue.objects.filter(id__gt=self._venues_seen).values_list("code", "id", "commune_id", "kind")
        loaded = {c: VenueRef(i, u, k) for c, i, u, k in rows}
        self._venues.update(loaded)
        self._venues_seen = max((v.id for v in loaded.values()), default=self._venues_seen)
        return loaded

    def person(self, raw: str) -> bytes:
        # People come back: a check-in app sends the same person many times a day, so keys are kept.
        key = self._persons.get(raw)
        if key is None:
            try:
                normalised = normalise(raw)
            except PersonIdError as e:
                raise FieldError("person_id", str(e)) from None
            key = hmac.digest(self._key, normalised.encode(), "sha256")
            if len(self._persons) >= _PERSON_CACHE:
                self._persons.clear()
            self._persons[raw] = key
            if self.unsealed is not None and key not in self.sealed:
                self.unsealed[key] = normalised
        return key

    def mark_sealed(self, keys: list[bytes]) -> None:
        """Once the batch that sealed them commits: these persons need no second vault write."""
        if self.unsealed is None:
            return
        for key in keys:
            self.unsealed.pop(key, None)
            self.sealed.add(key)
        if len(self.sealed) >= _PERSON_CACHE:
            # Both go together, so that a cached key is never in neither: it is recomputed instead.
            self.sealed.clear()
            self._persons.clear()

    def time(self, value: datetime, name: str) -> datetime:
        if value.tzinfo is None:
            value = value.replace(tzinfo=VN_TZ)
        earliest, latest = self._bounds.get(value.tzinfo) or self._bounds_in(value.tzinfo)
        if value > latest:
            raise FieldError(name, _("is in the future"))
        if value < earliest:
            raise FieldError(name, _("is before 2000-01-01 (Vietnam time): not a time any source records"))
        # As it came: its offset gives the local day at once (`local_day`); SQLite's text is made in UTC
        # when the row is (`_time_adapter`).
        return value

    def _bounds_in(self, tz: Any) -> tuple[datetime, datetime]:
        """EARLIEST and `latest` in a time's own fixed offset (the decoder gives every time of one
        offset the same one): aware times of one tzinfo compare without computing offsets."""
        bounds = (EARLIEST.astimezone(tz), self.latest.astimezone(tz))
        if isinstance(tz, timezone):
            self._bounds[tz] = bounds
        return bounds


def _decode_error(e: msgspec.MsgspecError) -> FieldError:
    text = str(e)
    if m := _MISSING.search(text):
        return FieldError(m.group(1), _("is required"))
    if m := _AT.search(text):
        return FieldError(m.group(1), decode_reason(text[: m.start()]))
    if isinstance(e, msgspec.DecodeError):
        return FieldError(None, json_reason(text))
    return FieldError(None, decode_reason(text))


def _not_utf8(line: Record) -> FieldError:
    """Where in the line the first byte that is not UTF-8 is."""
    if isinstance(line, bytes):
        try:
            line.decode()
        except UnicodeDecodeError as e:
            return FieldError(
                None,
                _("not valid UTF-8 (byte 0x%(byte)02x at byte %(at)s)")
                % {"byte": line[e.start], "at": e.start + 1},
            )
    return FieldError(None, _("not valid UTF-8"))


class Pipeline:
    """Ingests batches of one kind from one source."""

    def __init__(self, source: Source, kind: str, *, actor_name: str | None = None):
        self.source, self.kind = source, KINDS[kind]
        self.ctx = Context(source, vault=kind in _VAULT_KINDS)
        self._venues = kind == "checkin"
        if self._venues:
            self.ctx.preload_venues()
        self._decoder = msgspec.json.Decoder(self.kind.struct)
        self._field_names = frozenset(f.name for f in msgspec.structs.fields(self.kind.struct))
        self._time_fields = [
            f.name for f in msgspec.structs.fields(self.kind.struct) if "datetime" in repr(f.type)
        ]
        self._to_db_time = _time_adapter()
        # Where the kind's own values hold times (check-ins' time_out, …): SQLite wants them as text too.
        columns = [self.kind.model._meta.get_field(name) for name in self.kind.fields]
        self._extra_times = [i for i, column in enumerate(columns) if isinstance(column, DateTimeField)]
        self._to_db_day = _day_adapter()
        self._source_id = source.pk
        self._fields = ("source_id", "source_event_id", "commune_id", "at", "person_key", *self.kind.fields)
        self._rooms: dict[int, frozenset] = {}  # commune → the rooms its figures concern (`announce`)
        # On PostgreSQL a batch is validated while it is copied in (`stream`), unless its persons go to
        # the vault, which happens before the batch is written.
        self.streams = connection.vendor == "postgresql" and self.ctx.unsealed is None
        self._sqlite = connection.vendor == "sqlite"  # SQLite wants its times as text, PostgreSQL not
        self._validator: _Validator | None = None  # started by the first large batch on SQLite (`prepare`)
        # The last streamed batch, freed during the next (`_meanwhile`): a pipeline kept between calls
        # of `ingest` holds its last batch's lines and records until its next batch.
        self._spent: tuple | None = None

    def ingest(self, records: Iterable[tuple[int, Record]]) -> Summary:
        """One batch: (line number, record) pairs. Returns what was accepted, duplicated, rejected."""
        if self.streams:
            return self.stream(records)
        return self.write(*self.prepare(records))

    def prepare(self, records: Iterable[tuple[int, Record]]) -> tuple[dict[str, tuple], Summary]:
        """Validate a batch, writing nothing: its rows by source_event_id, and what was rejected.

        On SQLite a batch of at least `_SECOND_PROCESS_FROM` records of a kind that fills no vault is
        validated by a second process (`_Validator`) while `write` writes what it has sent so far: the
        rows and the rejections are then complete once `write` has taken them all."""
        summary = Summary()
        venues = self.ctx.preload_venues() if self._venues else {}  # those registered since the last batch
        if self._in_second_process(records):
            assert isinstance(records, list)
            if self._validator is None:
                self._validator = _Validator(self)
            return self._validator.validate(records, venues, summary), summary
        prepared: dict[str, tuple] = {}
        deque(self._validated(records, prepared, summary), maxlen=0)
        return prepared, summary

    def _in_second_process(self, records: Iterable[tuple[int, Record]]) -> bool:
        """Whether a second process validates this batch: SQLite, which validates before it writes (on
        PostgreSQL the server writes while Python validates, `stream`), a batch large enough to pay for
        the process (a file's, not a request's), and no vault, which is written before the events."""
        return (
            self._sqlite
            and self.ctx.unsealed is None
            and isinstance(records, list)
            and len(records) >= _SECOND_PROCESS_FROM
        )

    def _validated(
        self,
        records: Iterable[tuple[int, Record]],
        prepared: dict[str, tuple],
        summary: Summary,
        cells: Counter | None = None,
    ) -> Iterator[tuple]:
        """Validate records one at a time: each new one is kept in `prepared` (by source_event_id),
        counted in `cells` (its rollup cell) when given, and its event row yielded; a rejected or
        repeated one is counted in `summary`."""
        for line, record in records:
            try:
                seid, item = self._prepare(record)
            except FieldError as e:
                summary.rejected.append(Rejection(line, e.field, str(e)))
                continue
            if seid in prepared:
                summary.duplicates += 1
            else:
                prepared[seid] = item
                if cells is not None:
                    cells[item[1]] += 1
                yield item[0]

    def stream(
        self, records: Iterable[tuple[int, Record]], ahead: Callable[[], None] | None = None
    ) -> Summary:
        """One batch on PostgreSQL, in one transaction: each record is validated as the COPY of the
        event rows takes it, so the server stores rows while the next ones are validated (the two
        took turns before, and validation was about half of the time). The guarantees are `write`'s:
        a rejected record is left out, and a batch holding a record already stored is refused by the
        dedupe key, rolled back to its savepoint, validated to its end and written without the
        stored records. Kinds that fill the vault are not streamed (`streams`). `ahead`: called once
        the batch is validated, while the server ends the COPY (`_meanwhile`)."""
        summary, prepared = Summary(), dict[str, tuple]()
        cells: Counter = Counter()
        if self._venues:
            self.ctx.preload_venues()  # those registered since the last batch: no look-up while copying
        # The rollup cells are counted as the rows go out: the COPY waits for the server then, while
        # after it the server has the key table, the rollups and the commit to write, and Python waits.
        made: dict[str, Any] = {}  # what `_meanwhile` makes for the batch's tail
        meanwhile = partial(self._meanwhile, cells, made, ahead)
        rows = _then(self._releasing(self._validated(records, prepared, summary, cells)), meanwhile)
        with transaction.atomic():
            self._lock_source()
            self.ctx.offline = True
            try:
                with transaction.atomic():  # a savepoint: a refused copy leaves nothing behind
                    insert_rows(self.kind.model, self._fields, rows, binary=True)
                refused = False
            except IntegrityError:
                deque(rows, maxlen=0)  # the records after the refusal are validated all the same
                refused = True
            finally:
                self.ctx.offline = False
            communes = None  # refused: _written reads them off the records left, as _count did
            if refused:
                summary.duplicates += self._write_unstored(prepared)
            else:
                self._count(list(prepared.values()), cells, made.get("columns"))
                communes = made.get("communes") or {commune for commune, *_ in cells}
            self._written(prepared, summary, communes)
        # Freed during the next batch's COPY (`_releasing`, `_meanwhile`), not now: the server waits now.
        self._spent = (records, prepared)
        return summary

    def _releasing(self, rows: Iterator[tuple]) -> Iterator[tuple]:
        """The rows, while the last batch's prepared records are freed a slice at a time: freeing
        them whole took about 40 ms a batch of 100,000 with the server idle, and two batches kept
        whole would both be in memory. Its lines go in `_meanwhile` (the caller may hold them)."""
        prepared = self._spent[1] if self._spent is not None else {}
        n = 0
        for row in rows:
            yield row
            n += 1
            if n == _RELEASE and prepared:
                n = 0
                for _ in range(min(_RELEASE, len(prepared))):
                    prepared.popitem()

    def _meanwhile(self, cells: Counter, made: dict[str, Any], ahead: Callable[[], None] | None) -> None:
        """Once a batch's last record is validated, while the server still copies the rows queued
        for it (Python validates faster than the server stores): Python work that went between two
        batches or into the batch's tail, with the server idle, is done here. The last batch's lines
        and what is left of its records are freed; the batch's rollup arrays and communes are made
        (into `made`), which hold if the COPY is not refused (a refused batch counts its cells
        again); and the next batch is read (`ahead`, `BatchesAhead.fill`)."""
        if self._spent is not None:
            self._spent[1].clear()
            self._spent = None
        if cells:
            made["columns"] = rollup_columns(cells)
            made["communes"] = {commune for commune, *_ in cells}
        if ahead is not None:
            ahead()

    def write(self, prepared: dict[str, tuple], summary: Summary) -> Summary:
        """Store a prepared batch in one transaction (on PostgreSQL a savepoint within the caller's, if
        any; on SQLite part of the caller's, which an error rolls back whole: see `_write_new_sqlite`)."""
        with transaction.atomic(savepoint=not self._sqlite):
            self._lock_source()
            self._fill_vault(prepared)  # before dedupe: a re-sent declaration still vaults its person
            summary.duplicates += self._write_new(prepared)
            self._written(prepared, summary)
        return summary

    def _written(
        self, prepared: dict[str, tuple], summary: Summary, communes: set[int] | None = None
    ) -> None:
        """In the batch's transaction, once its events are stored: the live event and the audit row.
        `communes`: those of the stored events, when the caller has them already."""
        summary.accepted = len(prepared)
        if prepared:  # the rooms watching these communes hear of it once the batch is stored
            if communes is None:
                communes = {cell[0] for _, cell in prepared.values()}
            announce(self.kind.name, communes, self._rooms)
        if prepared or summary.rejected:
            audit(
                self.source.user,
                "events.ingest",
                self.source.name,
                rows=summary.accepted,
                kind=self.kind.name,
                duplicates=summary.duplicates,
                rejected=len(summary.rejected),
            )

    def _fill_vault(self, prepared: dict[str, tuple]) -> None:
        """Seal the batch's persons this pipeline has not vaulted yet (insert-if-absent)."""
        unsealed = self.ctx.unsealed
        if unsealed is None:
            return
        keys = list({row[_PERSON] for row, _ in prepared.values()} - self.ctx.sealed)
        vault.store((key, vault.seal_known(key, unsealed[key])) for key in keys)
        # Only a commit makes them stored: a batch rolled back must seal them again.
        transaction.on_commit(partial(self.ctx.mark_sealed, keys))

    def _prepare(self, record: Record) -> tuple[str, tuple]:
        if isinstance(record, FieldError):  # a line its reader could not read
            raise record
        struct = self._decode(record)
        if not _plain(record):
            check_text(struct)
        commune, at, key, extra, dim1, dim2 = self.kind.prepare(struct, self.ctx)
        seid = struct.source_event_id  # type: ignore[attr-defined]
        if not self._sqlite:
            row = (self._source_id, seid, commune, at, key, *extra)
        else:
            values = list(extra)
            for i in self._extra_times:
                if values[i] is not None:
                    values[i] = self._to_db_time(values[i])
            row = (self._source_id, seid, commune, self._to_db_time(at), key, *values)
        return seid, (row, (commune, local_day(at), dim1, dim2))

    def _decode(self, record: bytes | str | dict[str, Any]) -> msgspec.Struct:
        try:
            if isinstance(record, dict):
                return msgspec.convert(self._tidy_row(record), self.kind.struct, strict=False)
            return self._decoder.decode(record)
        except (msgspec.ValidationError, msgspec.DecodeError) as e:
            raise _decode_error(e) from None
        except UnicodeDecodeError:  # raised for a string's bytes, whose place in the line it does not give
            raise _not_utf8(record) from None

    def _tidy_row(self, row: dict[str, Any]) -> dict[str, Any]:
        """A spreadsheet's row: empty cells are absent, lists are split, times as spreadsheets write them.

        Only the kind's own columns are kept; one holding bytes that were not UTF-8 is refused by name.
        """
        row = {k: v for k, v in row.items() if v not in ("", None) and k in self._field_names}
        for name, value in row.items():
            if isinstance(value, str) and _UNREADABLE.search(value):
                raise FieldError(name, _("is not valid UTF-8 text"))
        for name in self.kind.list_fields:
            if isinstance(row.get(name), str):
                row[name] = [s for s in re.split(r"[;,| ]+", row[name]) if s]
        for name in self._time_fields:
            if isinstance(row.get(name), str):
                with contextlib.suppress(ValueError):  # left as text: the struct names the field
                    row[name] = datetime.fromisoformat(row[name].strip())
        return row

    def _lock_source(self) -> None:
        """Batches of one source and kind run one at a time, so the duplicate check below is exact."""
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_advisory_xact_lock(%s, %s)", [self.source.pk, _kind_number(self.kind)]
                )
        # SQLite: the transaction already holds the database's write lock (transaction_mode IMMEDIATE).

    def _write_new(self, prepared: dict[str, tuple]) -> int:
        """Write the records not stored yet; returns how many were (re-sent ones), removing them.

        Most batches are new: they are written straight away, and only when the unique index
        refuses one is the batch looked up and written again without the stored ones.
        """
        if self._sqlite:
            return self._write_new_sqlite(prepared)
        try:
            with transaction.atomic():  # a savepoint: a refused write leaves nothing behind
                self._write(list(prepared.values()))
            return 0
        except IntegrityError:
            return self._write_unstored(prepared)

    def _write_unstored(self, prepared: dict[str, tuple]) -> int:
        """Write the records of a refused batch not stored yet; returns how many were, removing them."""
        stored = self._stored(list(prepared))
        for seid in stored:
            del prepared[seid]
        self._write(list(prepared.values()))
        return len(stored)

    def _write_new_sqlite(self, prepared: dict[str, tuple]) -> int:
        """`_write_new` on SQLite, in no savepoint: INSERT OR IGNORE, and only when fewer rows went in
        than were sent are the stored ones looked up (an id at most the highest before the batch: ids
        only grow, and the write lock keeps other writers out), taken out and counted as duplicates.

        In a savepoint SQLite keeps a copy of every page the batch changes in a sub-journal, and each
        rollup upsert after the insert walked that whole journal when it ended: the rollups of a batch of
        100,000 check-ins took 0.2 s into an empty table and 346 s at 1M (docs/decisions.md, Warehouse).
        """
        pending = prepared if isinstance(prepared, _Validating) else None
        if not prepared and pending is None:
            return 0
        model = self.kind.model
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT max(id) FROM {connection.ops.quote_name(model._meta.db_table)}")  # noqa: S608
            (before,) = cursor.fetchone()
        # A batch the second process validates is written a chunk at a time, as the chunks come.
        chunks = pending.chunks() if pending is not None else iter([[row for row, _ in prepared.values()]])
        written = 0
        try:
            for rows in chunks:
                if rows:
                    went_in = insert_rows(model, self._fields, rows, or_ignore=True)
                    assert went_in is not None  # SQLite's INSERT OR IGNORE tells how many went in
                    written += went_in
        except BaseException as e:
            if pending is not None:
                self._after_failed_chunks(pending, e)
            raise
        repeats = 0 if pending is None else pending.repeats  # duplicates too, as `_validated` counts them
        if not prepared:
            return repeats
        stored: list[str] = []
        if written < len(prepared) and before is not None:
            seids = list(prepared)
            for start in range(0, len(seids), 900):
                stored += model.objects.filter(
                    source=self.source, source_event_id__in=seids[start : start + 900], pk__lte=before
                ).values_list("source_event_id", flat=True)
            for seid in stored:
                del prepared[seid]
        if written != len(prepared):  # IGNORE also skips a NULL in a NOT NULL column: never half-write
            raise IntegrityError(f"{model._meta.db_table}: {len(prepared) - written} valid rows not stored")
        # The second process counted the batch's rollup cells; they hold as long as no record was stored.
        counts = pending.counts if pending is not None and not stored else None
        self._count(list(prepared.values()), counts)
        return repeats + len(stored)

    def _after_failed_chunks(self, pending: _Validating, error: BaseException) -> None:
        """A write that failed while the second process sent the batch: after an ordinary error the rest
        of the batch's chunks are taken, so that the next batch's follow; after Ctrl-C, a stop or a
        broken pipe the pipe may be out of step (an interrupt can land inside a chunk's receipt), so
        the process is ended instead, and the next large batch forks a new one."""
        if isinstance(error, Exception) and not pending.broken:
            try:
                pending.finish()
                return
            except Exception:  # noqa: S110 — the batch's own error is the one to tell; the process is ended
                pass
        if self._validator is not None:
            self._validator.end()
            self._validator = None

    def _stored(self, seids: list[str]) -> list[str]:
        # The events are partitioned by time: their keys are apart (SQLite has _write_new_sqlite).
        return partitions.stored_ids(self.kind.model._meta.db_table, self.source.pk, seids)

    def _write(self, prepared: list[tuple]) -> None:
        if not prepared:
            return
        insert_rows(self.kind.model, self._fields, [row for row, _ in prepared], binary=True)  # PostgreSQL
        self._count(prepared)

    def _count(
        self, prepared: list[tuple], counts: Counter | None = None, columns: list[str] | None = None
    ) -> None:
        """Add the stored records to the rollups (`counts`: their cells, when counted already, and
        `columns` those cells' `rollup_columns`)."""
        if not prepared:
            return
        if counts is None:
            counts = Counter(cell for _, cell in prepared)
        _add_to_rollups(self.kind.name, counts, self._to_db_day, columns)
        # Workers' events count for their enterprises, gates' check-ins for theirs (issue 21).
        enterprise_rollups.on_ingest(self.kind.name, prepared, self._to_db_day)


def _add_to_rollups(kind: str, counts: Counter, to_db_day, columns: list[str] | None = None) -> None:
    """Add a batch's counts to the daily rollups and to the monthly ones (what analytics reads).
    `columns`: their `rollup_columns` on PostgreSQL, when made already."""
    if connection.vendor == "postgresql":
        _add_to_rollups_pg(kind, counts, columns)
        return
    months: Counter = Counter()
    for (commune, day, d1, d2), n in counts.items():
        months[(commune, day.replace(day=1), d1, d2)] += n
    for table, time_column, cells in [
        (Rollup._meta.db_table, "day", counts),
        (RollupMonth._meta.db_table, "month", months),
    ]:
        rows = [(commune, to_db_day(day), kind, d1, d2, n) for (commune, day, d1, d2), n in cells.items()]
        _upsert_counts(table, f"commune_id, {time_column}, kind, dim1, dim2", rows)


# PostgreSQL: a batch's daily cells go in once, and the server adds them up by month for the monthly
# rollups in the same statement. A day minus its day of the month (less one) is the month's first day,
# whatever the session's time zone.
_ROLLUPS_PG = """
WITH cells (commune_id, day, kind, dim1, dim2, count) AS (
  SELECT c, d, %s::text, d1, d2, n FROM unnest(%s::bigint[], %s::date[], %s::text[], %s::text[], %s::bigint[])
    AS u (c, d, d1, d2, n)
), daily AS (
  INSERT INTO {day_table} (commune_id, day, kind, dim1, dim2, count) SELECT * FROM cells
  ON CONFLICT (commune_id, day, kind, dim1, dim2) DO UPDATE SET count = {day_table}.count + excluded.count
)
INSERT INTO {month_table} (commune_id, month, kind, dim1, dim2, count)
SELECT commune_id, day - (extract(day FROM day)::int - 1), kind, dim1, dim2, sum(count)::bigint
FROM cells GROUP BY 1, 2, 3, 4, 5
ON CONFLICT (commune_id, month, kind, dim1, dim2) DO UPDATE SET count = {month_table}.count + excluded.count
"""


def _add_to_rollups_pg(kind: str, counts: Counter, columns: list[str] | None = None) -> None:
    """`_add_to_rollups` on PostgreSQL in one statement: the batch's tail, where Python waits for the
    server, loses a round trip and the client's month sums and second set of arrays. `columns`: the
    counts' `rollup_columns`, when made already (`Pipeline._meanwhile`)."""
    if not counts:
        return
    if columns is None:
        columns = rollup_columns(counts)
    sql = _ROLLUPS_PG.format(day_table=Rollup._meta.db_table, month_table=RollupMonth._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(sql, [kind, *columns])


def rollup_columns(counts: Counter) -> list[str]:
    """The cells and counts of `_ROLLUPS_PG` as array literals, which the server reads as the driver's
    own arrays. The driver's dumper escapes each element through a regular expression: 30–40 ms of
    Python per batch of 100,000 check-ins after the COPY, with the server idle; these take 3 ms, and
    on PostgreSQL are made while the server ends the COPY."""
    cells, numbers = zip(*counts.items(), strict=True)
    communes, days, dims1, dims2 = zip(*cells, strict=True)
    return [_array(communes), _array(days), _text_array(dims1), _text_array(dims2), _array(numbers)]


def _array(values: Iterable[int | date]) -> str:
    """Integers or dates (ISO, whatever the session's DateStyle) need no quoting."""
    return "{" + ",".join(map(str, values)) + "}"


def _text_array(values: Iterable[str | None]) -> str:
    """Every element quoted, with `\\` and `"` escaped, so that none reads as NULL or splits."""
    quoted: dict[str | None, str] = {None: "NULL"}
    out = []
    for value in values:
        text = quoted.get(value)
        if text is None:
            assert value is not None
            text = quoted[value] = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
        out.append(text)
    return "{" + ",".join(out) + "}"


def _upsert_counts(table: str, cell: str, rows: list[tuple]) -> None:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":  # one statement, not a round trip per cell
            columns = [list(column) for column in zip(*rows, strict=True)]
            cursor.execute(
                f"INSERT INTO {table} ({cell}, count) SELECT * FROM unnest(%s::bigint[], %s::date[], "  # noqa: S608
                f"%s::text[], %s::text[], %s::text[], %s::bigint[]) "
                f"ON CONFLICT ({cell}) DO UPDATE SET count = {table}.count + excluded.count",
                columns,
            )
        else:
            cursor.executemany(
                f"INSERT INTO {table} ({cell}, count) VALUES (%s, %s, %s, %s, %s, %s) "  # noqa: S608
                f"ON CONFLICT ({cell}) DO UPDATE SET count = {table}.count + excluded.count",
                rows,
            )


upsert_counts = _upsert_counts  # the enterprises' rollups are added to the same way


def announce(kind: str, communes: set[int], rooms: dict[int, frozenset] | None = None) -> None:
    """In the batch's transaction: a `figures` event to the rooms above these communes, on both maps,
    sent when it commits. `rooms`: the rooms of communes already looked up, kept by the caller (a
    pipeline's batches come back to the same communes; looking their rooms up again took about 1.7 µs of
    CPU per check-in, after the COPY, while the server waited)."""
    if not BUS.listening_to_areas():
        return
    rooms = {} if rooms is None else rooms
    if missing := communes - rooms.keys():
        rooms.update(_rooms_of(missing))
    keys = set().union(*(rooms[commune] for commune in communes))
    publish_on_commit(keys, "figures", {"kind": kind, "communes": len(communes)})


def _rooms_of(communes: set[int]) -> dict[int, frozenset]:
    """Each commune's rooms: its own and its ancestors', and those of the communes it succeeds or
    is succeeded by on the other map."""
    linked: dict[int, set[int]] = {commune: {commune} for commune in communes}
    other_map = Succession.objects.filter(Q(old_id__in=communes) | Q(new_id__in=communes))
    for old, new in other_map.values_list("old_id", "new_id"):
        if old in linked:
            linked[old].add(new)
        if new in linked:
            linked[new].add(old)
    ids = set().union(*linked.values())
    places = Unit.objects.filter(pk__in=ids).values_list("id", "edition_id", "path")
    keys = {pk: area_keys(edition, path) for pk, edition, path in places}
    return {c: frozenset().union(*(keys.get(unit, ()) for unit in units)) for c, units in linked.items()}


# A batch at least this large is validated by a second process on SQLite (`Pipeline.prepare`): the
# CLI's (100,000), not a request's. It goes back in chunks of _CHUNK, each written as it comes.
_SECOND_PROCESS_FROM = 50_000
_CHUNK = 5_000
_FIRST_CHUNK = 1_000


class _Validating(dict):
    """A batch that the validating process is validating: filled (source_event_id → row and cell), its
    summary given its rejections, `repeats` counted (records repeated within it) and `counts` (its
    rollup cells), chunk by chunk as `chunks` takes them."""

    def __init__(self, conn: Any, summary: Summary):
        super().__init__()
        self._conn, self._summary, self._done = conn, summary, False
        self.broken = False  # a receipt failed: the pipe may be out of step, and nothing more is read
        self.repeats = 0
        self.counts: Counter = Counter()

    def chunks(self) -> Iterator[list[tuple]]:
        """Each chunk's event rows, once it is validated (the validating process goes on with the next)."""
        while not self._done:
            try:
                message = self._conn.recv()
            except EOFError:
                self._done = self.broken = True
                raise RuntimeError("the validating process ended before the batch was validated") from None
            except BaseException:
                self._done = self.broken = True
                raise
            if message[0] == "done":
                self._done = True
                return
            if message[0] == "error":
                self._done = True
                raise message[1]
            _, chunk, counts, rejected, repeats = message
            self._summary.rejected += rejected
            self.repeats += repeats
            self.counts.update(counts)
            self.update(chunk)
            yield [row for row, _ in chunk.values()]

    def finish(self) -> None:
        """Take what is left of the batch."""
        deque(self.chunks(), maxlen=0)


class _Validator:
    """A second process, forked from the pipeline's, that validates its batches (`_validate_batches`)
    while this one writes: SQLite validates a batch before writing it, and one thread cannot do both at
    once. Forked, it has the pipeline's key, units and venues without being sent them; it keeps its own
    caches (person keys, the bounds of time) from batch to batch, and never touches the database: the
    venues registered since the last batch come with the batch. It ends when the pipeline goes."""

    def __init__(self, pipeline: Pipeline):
        fork = multiprocessing.get_context("fork")
        self._conn, child = fork.Pipe()
        args = (pipeline, child, self._conn)
        process = fork.Process(target=_validate_batches, args=args, name="dieuhanh-validate", daemon=True)
        process.start()
        child.close()
        self._process = process
        self._pending: _Validating | None = None
        self._stop = weakref.finalize(pipeline, _stop_validator, self._conn, process)
        _PARENT_ENDS.add(self._conn)

    def end(self) -> None:
        """End the process now (Ctrl-C, a stop, a broken pipe): nothing it would still send is wanted."""
        self._process.terminate()
        self._stop()

    def validate(self, records: list[tuple[int, Record]], venues: dict[str, VenueRef], summary: Summary):
        if self._pending is not None:  # a batch prepared and never written: its chunks are dropped
            self._pending.finish()
        self._conn.send((venues, records))
        self._pending = _Validating(self._conn, summary)
        return self._pending


def _validate_batches(pipeline: Pipeline, conn: Any, parent_end: Any) -> None:
    """The validating process: each batch it is sent goes back in chunks of event rows with their rollup
    cells, rejections and repeats, as `Pipeline.prepare` would make them, then "done"."""
    parent_end.close()  # the pipe ends (EOFError below) when the pipeline's process closes its end
    # A fork holds every descriptor of its parent: the ends of other pipelines' pipes are closed here,
    # or their processes would never see their pipe end when their pipeline goes.
    for other in list(_PARENT_ENDS):
        other.close()
    # Ctrl-C and a stop are the pipeline's process's to handle (the CLI tells where to resume); this one
    # ends with it, silently, when the pipe closes or when it is terminated.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    # What was forked is kept as it is: the collector does not walk it again, nor copy its pages.
    gc.freeze()
    pipeline.ctx.offline = True  # the database is the other process's: its venues come with each batch
    shared: dict[tuple, tuple] = {}  # one object per rollup cell: sent once per chunk, not once per row
    while True:
        try:
            venues, records = conn.recv()
        except (EOFError, ConnectionResetError):  # the pipeline is gone
            return
        pipeline.ctx._venues.update(venues)
        prepared: dict[str, tuple] = {}
        summary = Summary()
        try:
            first = 0
            while first < len(records):
                # A small first chunk: the other process, which waits for it, starts writing sooner.
                last = first + (_CHUNK if first else _FIRST_CHUNK)
                rejected, duplicates = len(summary.rejected), summary.duplicates
                chunk: dict[str, tuple] = {}  # as `prepared`, sent as a dict: unpickled, it is one
                counts: Counter = Counter()
                for row in pipeline._validated(records[first:last], prepared, summary, counts):
                    cell = prepared[row[1]][1]
                    chunk[row[1]] = (row, shared.setdefault(cell, cell))
                repeats = summary.duplicates - duplicates
                conn.send(("rows", chunk, counts, summary.rejected[rejected:], repeats))
                first = last
            if len(shared) > _PERSON_CACHE:
                shared.clear()
            conn.send(("done",))
        except (BrokenPipeError, ConnectionResetError):  # the pipeline is gone
            return
        except Exception as e:  # as in one process: the batch fails with it
            _send_error(conn, e)


def _send_error(conn: Any, error: Exception) -> None:
    try:
        conn.send(("error", error))
    except (BrokenPipeError, ConnectionResetError):
        pass  # the pipeline is gone: the next `recv` ends this process
    except Exception:  # an error that cannot be pickled is named
        conn.send(("error", RuntimeError(f"{type(error).__name__} while validating the batch")))


# The pipeline's end of each live validating process's pipe (closed in a newly forked one).
_PARENT_ENDS: weakref.WeakSet = weakref.WeakSet()


def _stop_validator(conn: Any, process: Any) -> None:
    _PARENT_ENDS.discard(conn)
    conn.close()
    process.join(timeout=10)
    if process.is_alive():
        process.terminate()
        process.join()


def _kind_number(kind: Kind) -> int:
    return list(KINDS).index(kind.name)


def _time_adapter():
    """Datetimes as the backend stores them: SQLite keeps naive UTC text, as Django writes it."""
    if connection.vendor == "sqlite":
        return lambda dt: dt.astimezone(UTC).isoformat(" ")[:-6]  # without its "+00:00"
    return lambda dt: dt


def _day_adapter():
    if connection.vendor == "sqlite":
        return lambda day: day.isoformat()
    return lambda day: day


# Readers: each yields (line number, record); line numbers are those of the file a person opens.


def ndjson_records(lines: Iterable[bytes]) -> Iterator[tuple[int, Record]]:
    for number, line in enumerate(lines, start=1):
        if line.strip():
            yield number, line


def csv_records(lines: Iterable[bytes]) -> Iterator[tuple[int, Record]]:
    """CSV rows (a header row first) from a file's or a body's lines, kept with their line ends.

    Bytes that are not UTF-8 become lone surrogates (surrogateescape), which the validation of the
    row's fields refuses by name; a row the CSV reader cannot parse is rejected alone. A header that
    cannot be read leaves no row readable, and is rejected as line 1.
    """
    text = (line.decode("utf-8", "surrogateescape") for line in lines)
    reader = csv.reader(_without_bom(text))
    try:
        header = [name.strip() for name in next(reader)]
    except StopIteration:
        return
    except csv.Error:
        yield reader.line_num, FieldError(None, _("the header row is not valid CSV: no row was read"))
        return
    if any(_UNREADABLE.search(name) for name in header):
        yield 1, FieldError(None, _("the header row is not valid UTF-8: no row was read"))
        return
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as e:  # the reader starts afresh on the next line
            yield reader.line_num, FieldError(None, csv_reason(e))
            continue
        if row:
            # As csv.DictReader: missing cells are absent, extra cells (no column name) are dropped.
            yield reader.line_num, {name: value for name, value in zip(header, row, strict=False) if name}


def _without_bom(lines: Iterator[str]) -> Iterator[str]:
    first = next(lines, None)
    if first is not None:
        yield first.removeprefix("\ufeff")
        yield from lines


def parquet_records(path: str, batch_rows: int = BATCH_SIZE) -> Iterator[tuple[int, Record]]:
    import pyarrow.parquet as pq

    number = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_rows):
        for row in batch.to_pylist():
            number += 1
            yield number, row


def batches(
    records: Iterable[tuple[int, Record]], size: int = BATCH_SIZE
) -> Iterator[list[tuple[int, Record]]]:
    batch: list[tuple[int, Record]] = []
    for item in records:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


class BatchesAhead:
    """`batches`, of which the next one may be read early (`fill`): on PostgreSQL while the server
    ends the current batch's COPY (`Pipeline._meanwhile`), where it was read with the server idle. An
    error reading it, or an interrupt (Ctrl-C, or SIGTERM as the command takes it), is raised where
    the batch is asked for: the batch being written commits first, as it would have before."""

    def __init__(self, batches: Iterator[list[tuple[int, Record]]]):
        self._batches = batches
        self._next: list[tuple[int, Record]] | None = None
        self._error: BaseException | None = None

    def __iter__(self) -> BatchesAhead:
        return self

    def __next__(self) -> list[tuple[int, Record]]:
        if self._next is not None:
            batch, self._next = self._next, None
            return batch
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        return next(self._batches)

    def fill(self) -> None:
        if self._next is not None or self._error is not None:
            return
        try:
            self._next = next(self._batches, None)
        except (Exception, KeyboardInterrupt) as e:  # not the current batch's: the next one fails with it
            self._error = e


_RELEASE = 1_000  # records of the last batch freed each time as many of this one's are copied (`_releasing`)


def _then(rows: Iterator[tuple], after: Callable[[], None]) -> Iterator[tuple]:
    yield from rows
    after()


def body_records(body: bytes, content_type: str) -> Iterator[tuple[int, Record]]:
    """Records of an HTTP body: CSV when the content type says so, NDJSON otherwise."""
    if "csv" in content_type:
        return csv_records(io.BytesIO(body))
    return ndjson_records(body.splitlines())


def local_day(value: datetime) -> date:
    if value.utcoffset() == _VN_OFFSET:  # already Vietnam time, as nearly every source writes it
        return value.date()
    return value.astimezone(VN_TZ).date()


def _plain(record: Record) -> bool:
    """An NDJSON line of ASCII without escapes or DEL: its strings can hold no character `check_text`
    refuses (the JSON decoder refuses raw control characters; others need bytes above 0x7f or `\\`)."""
    return type(record) is bytes and record.isascii() and b"\\" not in record and b"\x7f" not in record
