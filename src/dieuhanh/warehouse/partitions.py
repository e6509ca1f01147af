"""Time partitions of the person-level event tables on PostgreSQL; plain tables on SQLite.

Every event table (check-ins, declarations, tests, vaccinations, quarantine, reports: each carries a
person key) is range-partitioned on PostgreSQL by its event's time `at`, in Vietnam time: check-ins by
ISO week (`warehouse_checkin_p2021w34`), the other kinds by month (`warehouse_testresult_p202108`).
Each table also has a DEFAULT partition (`…_default`) that takes any event no other partition covers,
so an insert never fails for want of a partition; `ensure` (the `dieuhanh partitions` command, run
daily by `worker followup`) creates the partitions ahead of time and moves the default's rows into
partitions of their own.

Dedupe. A unique index on a partitioned table must contain the partition key, so (source,
source_event_id) cannot be unique on the event table itself once it is split by time: a re-delivered
event that claims another time would land in another partition, past any partition's own index. The
key moves to a narrow side table per kind, `<event table>_key` (source_id, source_event_id, at, id),
not partitioned, whose primary key is the old constraint (same name: `checkin_once_per_source`, …).
Statement-level triggers on the event table (with the rows as transition tables) keep the keys in step
with every INSERT (COPY included), UPDATE, DELETE and TRUNCATE, in the same statement: a duplicate
fails the statement with the same IntegrityError as before, whoever the writer is, and the pipeline's
write-first dedupe (warehouse.ingest) works unchanged, looking the stored ones up in the key table.

Retention (`purge_*` below): partitions wholly older than the cut-off are DETACHed and DROPped; rows
older than it in the partition that straddles it, and in the default partition, are deleted row by row.
Their keys go afterwards, in their own transaction, and only those whose event is gone: keys are
outside the partitions, so removing them costs a row each, and doing it apart keeps the event table
locked for no longer than the drop. A key that outlives its event for a while only keeps a late copy of
an event already purged from being stored and counted again.

The SQLite database keeps plain tables with the unique constraint: `ensure` does nothing there, and
`services.purge` deletes rows.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import Model, QuerySet, UniqueConstraint
from django.utils import timezone

from dieuhanh.vnformat import VN_TZ
from dieuhanh.warehouse.kinds import KINDS

WEEK, MONTH = "week", "month"
# Check-ins are by far the most numerous and kept 30 days: weekly partitions leave at most a week's rows
# to delete one by one at each purge. The other kinds are fewer, or kept for good.
GRAIN = {name: WEEK if name == "checkin" else MONTH for name in KINDS}
AHEAD = {WEEK: 8, MONTH: 3}  # periods created after the current one (`dieuhanh partitions` options)
_LOCK = 0x6468_5054  # pg_advisory_xact_lock key of partition changes: one at a time ("dhPT")
_BOUNDS = re.compile(r"FOR VALUES FROM \('([^']+)'\) TO \('([^']+)'\)")
_VN_LOCAL = "(at AT TIME ZONE INTERVAL '+07:00')"  # the event's wall-clock time in Vietnam


# Periods: local (Vietnam) days where partitions begin


def start_of(moment: date | datetime, grain: str) -> date:
    """The first day of the week (Monday, ISO) or month holding `moment` (a datetime read in Vietnam time)."""
    day = moment.astimezone(VN_TZ).date() if isinstance(moment, datetime) else moment
    if grain == WEEK:
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def next_start(start: date, grain: str) -> date:
    if grain == WEEK:
        return start + timedelta(days=7)
    return date(start.year + start.month // 12, start.month % 12 + 1, 1)


def label(start: date, grain: str) -> str:
    """`2021w34` (ISO year and week) or `202108`, as DHIS2 writes periods (lower case: a table name)."""
    if grain == WEEK:
        year, week, _ = start.isocalendar()
        return f"{year}w{week:02d}"
    return f"{start:%Y%m}"


def moment(day: date) -> datetime:
    """Midnight in Vietnam at the start of `day`: the partitions' bounds."""
    return datetime(day.year, day.month, day.day, tzinfo=VN_TZ)


# Names


def partition_name(table: str, grain: str, start: date) -> str:
    return f"{table}_p{label(start, grain)}"


def default_name(table: str) -> str:
    return f"{table}_default"


def key_table(table: str) -> str:
    """The dedupe keys of an event table (PostgreSQL only)."""
    return f"{table}_key"


@dataclass(frozen=True)
class Partition:
    name: str
    start: datetime | None  # both None: the default partition, or bounds not written by this module
    end: datetime | None
    default: bool = False


@dataclass(frozen=True)
class Made:
    name: str
    moved: int  # rows moved in from the default partition


def event_tables() -> list[tuple[str, str, type[Model]]]:
    """(kind, grain, model) of every partitioned event table."""
    return [(name, GRAIN[name], kind.model) for name, kind in KINDS.items()]


def _postgres() -> bool:
    return connection.vendor == "postgresql"


def _q(name: str) -> str:
    return connection.ops.quote_name(name)


def _literal(value: datetime) -> str:
    return f"'{value.isoformat()}'"  # built here from a datetime, never from input


# Reading the catalog


def is_partitioned(table: str) -> bool:
    if not _postgres():
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_partitioned_table WHERE partrelid = to_regclass(%s)", [table])
        return cursor.fetchone() is not None


def partitions_of(table: str) -> list[Partition]:
    """The table's partitions as the catalog holds them, in time order, the default last."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i"
            " JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = %s::regclass",
            [table],
        )
        rows = cursor.fetchall()
    found = []
    for name, bound in rows:
        match = _BOUNDS.fullmatch(bound)
        if bound == "DEFAULT":
            found.append(Partition(name, None, None, default=True))
        elif match:
            start, end = (datetime.fromisoformat(b) for b in match.groups())
            found.append(Partition(name, start, end))
        else:  # MINVALUE, several columns …: not ours; left alone but for row-wise purge
            found.append(Partition(name, None, None))
    return sorted(
        found, key=lambda p: (p.default, p.start is None, p.start or datetime.min.replace(tzinfo=VN_TZ))
    )


# Creating partitions


def ensure(*, today: date | None = None, months: int = AHEAD[MONTH], weeks: int = AHEAD[WEEK]) -> list[Made]:
    """Create, for every event table, its default partition, the current period's and the next ones
    (`weeks` for check-ins, `months` for the others), and a partition for each period that has rows in
    the default partition (moved into it). Idempotent; one transaction per partition. Nothing on SQLite."""
    if not _postgres():
        return []
    today = today or timezone.now().astimezone(VN_TZ).date()
    made: list[Made] = []
    for _, grain, model in event_tables():
        table = model._meta.db_table
        if not is_partitioned(table):
            continue
        made += ensure_table(table, grain, today=today, ahead=weeks if grain == WEEK else months)
    return made


def ensure_table(table: str, grain: str, *, today: date, ahead: int) -> list[Made]:
    made = []
    with transaction.atomic():
        _lock()
        if not any(p.default for p in partitions_of(table)):
            with connection.cursor() as cursor:
                cursor.execute(f"CREATE TABLE {_q(default_name(table))} PARTITION OF {_q(table)} DEFAULT")
            made.append(Made(default_name(table), 0))
    starts = [start_of(today, grain)]
    for _ in range(ahead):
        starts.append(next_start(starts[-1], grain))
    for start in sorted({*starts, *_periods_in_default(table, grain)}):
        with transaction.atomic():
            _lock()
            done = create_partition(table, grain, start)
        if done:
            made.append(done)
    return made


def _lock() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK])


def _periods_in_default(table: str, grain: str) -> list[date]:
    """The periods of the rows that fell into the default partition (late, or beyond those created)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT DISTINCT date_trunc(%s, {_VN_LOCAL})::date FROM {_q(default_name(table))}",  # noqa: S608
            [grain],
        )
        return [row[0] for row in cursor.fetchall()]


def create_partition(table: str, grain: str, start: date) -> Made | None:
    """The partition of one period, unless there is one (or another overlapping it): the default's rows
    of the period are moved into it before it is attached. Runs in the caller's transaction."""
    lo, hi = moment(start), moment(next_start(start, grain))
    existing = partitions_of(table)
    if any(p.start is not None and p.end is not None and p.start < hi and lo < p.end for p in existing):
        return None  # already there (or a partition of other bounds covers part of it: left as it is)
    name = partition_name(table, grain, start)
    moved = 0
    with connection.cursor() as cursor:
        # A table of the parent's shape, filled, then attached: CREATE … PARTITION OF would refuse while
        # the default holds rows of the period.
        cursor.execute(f"CREATE TABLE {_q(name)} (LIKE {_q(table)} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
        if any(p.default for p in existing):
            cursor.execute(
                f"WITH moved AS (DELETE FROM {_q(default_name(table))} WHERE at >= %s AND at < %s"  # noqa: S608
                f" RETURNING *) INSERT INTO {_q(name)} SELECT * FROM moved",
                [lo, hi],
            )
            moved = cursor.rowcount
        cursor.execute(
            f"ALTER TABLE {_q(table)} ATTACH PARTITION {_q(name)}"
            f" FOR VALUES FROM ({_literal(lo)}) TO ({_literal(hi)})"
        )
    return Made(name, moved)


# Retention


def purge_straddling(table: str, cutoff: datetime) -> int:
    """Delete, row by row, the rows older than `cutoff` in the partitions not wholly older (the one
    that straddles it, the default, any of bounds not ours). Returns how many."""
    deleted = 0
    with connection.cursor() as cursor:
        for p in partitions_of(table):
            if p.default or p.start is None or p.start < cutoff < (p.end or cutoff):
                cursor.execute(f"DELETE FROM {_q(p.name)} WHERE at < %s", [cutoff])  # noqa: S608
                deleted += cursor.rowcount
    return deleted


def expired_partitions(table: str, cutoff: datetime) -> dict[str, int]:
    """The partitions wholly older than `cutoff`, with the rows each holds (counted: a scan, taken
    before `drop_partitions` locks the table, while ingest goes on)."""
    found = {}
    with connection.cursor() as cursor:
        for p in partitions_of(table):
            if p.end is not None and p.end <= cutoff:
                cursor.execute(f"SELECT count(*) FROM {_q(p.name)}")  # noqa: S608
                found[p.name] = cursor.fetchone()[0]
    return found


def drop_partitions(table: str, names: Iterable[str]) -> None:
    """DETACH and DROP them: nothing here depends on their rows. From the first DETACH on, the table is
    locked until the commit. (An event older than the cut-off that arrived after the count goes with
    its partition uncounted.)"""
    with connection.cursor() as cursor:
        for name in names:
            cursor.execute(f"ALTER TABLE {_q(table)} DETACH PARTITION {_q(name)}")
            cursor.execute(f"DROP TABLE {_q(name)}")


def purge_keys(table: str, cutoff: datetime) -> int:
    """Delete the dedupe keys of events older than `cutoff` that are gone; returns how many.

    A key is deleted only when its event is not stored, so an old event inserted while a purge runs
    keeps its key (exactness never depends on timing). The check reads only the event rows older than
    `cutoff`, few once their partitions are dropped."""
    keys = _q(key_table(table))
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {keys} k WHERE k.at < %s AND NOT EXISTS ("  # noqa: S608
            f"SELECT 1 FROM {_q(table)} e WHERE e.at < %s AND e.id = k.id AND e.at = k.at)",
            [cutoff, cutoff],
        )
        return cursor.rowcount


# Dedupe look-ups


def stored_ids(table: str, source_id: int, seids: list[str]) -> list[str]:
    """Of these source event ids, those already stored for the source (from the key table)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT source_event_id FROM {_q(key_table(table))}"  # noqa: S608
            " WHERE source_id = %s AND source_event_id = ANY(%s)",
            [source_id, seids],
        )
        return [row[0] for row in cursor.fetchall()]


def by_source_event(model: type[Model], source_id: int, source_event_id: str) -> QuerySet[Any]:
    """A queryset of the event stored under (source, source_event_id), fast on both databases.

    On PostgreSQL the event table has no index on the pair any more: the key table gives its id and
    time, so the look-up reads one partition's primary key (a filter on the pair alone would scan
    every partition)."""
    events = model._default_manager.filter(source_id=source_id, source_event_id=source_event_id)
    table = model._meta.db_table
    if not is_partitioned(table):
        return events
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, at FROM {_q(key_table(table))} WHERE source_id = %s AND source_event_id = %s",  # noqa: S608
            [source_id, source_event_id],
        )
        found = cursor.fetchone()
    return events.filter(pk=found[0], at=found[1]) if found else events.none()


# The migration: a plain event table into a partitioned one and back (warehouse 0005)

_KEY_FUNCTION = """
CREATE OR REPLACE FUNCTION warehouse_event_keys() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'TRUNCATE' THEN
    EXECUTE format('TRUNCATE %I', TG_ARGV[0]);
  END IF;
  IF TG_OP IN ('DELETE', 'UPDATE') THEN
    EXECUTE format('DELETE FROM %I k USING old_rows o WHERE k.source_id = o.source_id'
                   ' AND k.source_event_id = o.source_event_id AND k.id = o.id', TG_ARGV[0]);
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    EXECUTE format('INSERT INTO %I (source_id, source_event_id, at, id)'
                   ' SELECT source_id, source_event_id, at, id FROM new_rows', TG_ARGV[0]);
  END IF;
  RETURN NULL;
END $$
"""
# The event table's statements that change its keys, and the transition tables each one reads. (Rows
# moved or deleted in a partition directly, as `create_partition` and `purge_*` do, fire none of them.)
_KEY_TRIGGERS = {
    "insert": "AFTER INSERT ON {table} REFERENCING NEW TABLE AS new_rows",
    "update": "AFTER UPDATE ON {table} REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows",
    "delete": "AFTER DELETE ON {table} REFERENCING OLD TABLE AS old_rows",
    "truncate": "AFTER TRUNCATE ON {table}",
}


def partition_table(schema_editor: Any, model: type[Model], grain: str) -> None:
    """Turn a plain event table into a partitioned one with its data, ids, indexes and dedupe keys.

    One transaction (the migration's): the table is renamed aside, a partitioned table of the same
    columns takes its name, with a partition for each period that has rows and the default; the rows
    are copied, the old table dropped, then the primary key (id, at), the model's indexes and the key
    table are built over the data (faster than row by row). The id sequence goes on where it was."""
    meta = model._meta
    table = meta.db_table
    old = f"{table}_unpartitioned"
    unique = next(c.name for c in meta.constraints if isinstance(c, UniqueConstraint))
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(f"LOCK TABLE {_q(table)} IN ACCESS EXCLUSIVE MODE")
        cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
        (sequence,) = cursor.fetchone()
        cursor.execute(f"ALTER TABLE {_q(table)} RENAME TO {_q(old)}")
        cursor.execute(f"ALTER SEQUENCE {sequence} RENAME TO {_q(old + '_id_seq')}")
        cursor.execute(
            f"CREATE TABLE {_q(table)} (LIKE {_q(old)} INCLUDING DEFAULTS INCLUDING CONSTRAINTS"
            " INCLUDING IDENTITY) PARTITION BY RANGE (at)"
        )
        cursor.execute(f"CREATE TABLE {_q(default_name(table))} PARTITION OF {_q(table)} DEFAULT")
        cursor.execute(f"SELECT DISTINCT date_trunc(%s, {_VN_LOCAL})::date FROM {_q(old)}", [grain])  # noqa: S608
        for (start,) in sorted(cursor.fetchall()):
            lo, hi = moment(start), moment(next_start(start, grain))
            cursor.execute(
                f"CREATE TABLE {_q(partition_name(table, grain, start))} PARTITION OF {_q(table)}"
                f" FOR VALUES FROM ({_literal(lo)}) TO ({_literal(hi)})"
            )
        cursor.execute(f"INSERT INTO {_q(table)} SELECT * FROM {_q(old)}")  # noqa: S608
        _continue_ids(cursor, table, old + "_id_seq")
        cursor.execute(f"DROP TABLE {_q(old)}")
        cursor.execute(f"ALTER TABLE {_q(table)} ADD CONSTRAINT {_q(table + '_pkey')} PRIMARY KEY (id, at)")
        column_of = {f.name: f.column for f in meta.concrete_fields}
        for index in meta.indexes:
            columns = ", ".join(_q(column_of[name]) for name in index.fields)
            cursor.execute(f"CREATE INDEX {_q(index.name)} ON {_q(table)} ({columns})")
        _create_keys(cursor, table, unique)


def _continue_ids(cursor: Any, table: str, sequence: str) -> None:
    """The table's id sequence goes on from where `sequence` (the old table's) was: no id is reused."""
    cursor.execute(
        f"SELECT setval(pg_get_serial_sequence(%s, 'id'), last_value, is_called) FROM {_q(sequence)}",  # noqa: S608
        [table],
    )


def _create_keys(cursor: Any, table: str, unique: str) -> None:
    keys = key_table(table)
    cursor.execute(
        f"CREATE TABLE {_q(keys)} (source_id bigint NOT NULL, source_event_id varchar(100) NOT NULL,"
        " at timestamptz NOT NULL, id bigint NOT NULL)"
    )
    cursor.execute(
        f"INSERT INTO {_q(keys)} SELECT source_id, source_event_id, at, id FROM {_q(table)} ORDER BY at"  # noqa: S608
    )
    cursor.execute(
        f"ALTER TABLE {_q(keys)} ADD CONSTRAINT {_q(unique)} PRIMARY KEY (source_id, source_event_id)"
    )
    # BRIN: keys arrive roughly in time order; purge_keys finds the old ones without a B-tree on every insert.
    cursor.execute(f"CREATE INDEX {_q(keys + '_at')} ON {_q(keys)} USING brin (at)")
    cursor.execute(_KEY_FUNCTION)
    for event, when in _KEY_TRIGGERS.items():
        cursor.execute(
            f"CREATE TRIGGER {_q(f'{keys}_{event}')} {when.format(table=_q(table))}"
            f" FOR EACH STATEMENT EXECUTE FUNCTION warehouse_event_keys('{keys}')"
        )


def unpartition_table(schema_editor: Any, model: type[Model]) -> None:
    """The way back: a plain table as Django creates it for the model, with the rows and ids."""
    meta = model._meta
    table = meta.db_table
    aside = f"{table}_partitioned"
    columns = ", ".join(_q(f.column) for f in meta.concrete_fields)
    with schema_editor.connection.cursor() as cursor:
        for event in _KEY_TRIGGERS:
            cursor.execute(f"DROP TRIGGER {_q(f'{key_table(table)}_{event}')} ON {_q(table)}")
        cursor.execute(f"DROP TABLE {_q(key_table(table))}")
        cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
        (sequence,) = cursor.fetchone()
        cursor.execute(f"ALTER TABLE {_q(table)} RENAME TO {_q(aside)}")
        cursor.execute(f"ALTER SEQUENCE {sequence} RENAME TO {_q(aside + '_id_seq')}")
        cursor.execute(f"ALTER TABLE {_q(aside)} DROP CONSTRAINT {_q(table + '_pkey')}")
        for index in meta.indexes:
            cursor.execute(f"DROP INDEX {_q(index.name)}")
    schema_editor.create_model(model)
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {_q(table)} ({columns}) SELECT {columns} FROM {_q(aside)}")  # noqa: S608
        _continue_ids(cursor, table, aside + "_id_seq")
        cursor.execute(f"DROP TABLE {_q(aside)} CASCADE")


def drop_key_functions(schema_editor: Any) -> None:
    schema_editor.execute("DROP FUNCTION IF EXISTS warehouse_event_keys()")
