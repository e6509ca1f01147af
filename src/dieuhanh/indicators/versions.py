"""Data versions: what analytics' answer cache is keyed by (issue 18).

Every table an analytics answer reads belongs to one source below. A database trigger on each table
bumps its source's counter in `indicators_dataversion` on every write (PostgreSQL: once per statement,
TRUNCATE included; SQLite: once per row, the only kind of trigger it has). An answer computed after
reading the counters is current for as long as they read the same.

Why this holds across processes and machines: the counters are rows of the same database, written in
the writer's transaction. A reader reads them BEFORE the data; a write committed in between makes the
answer newer than its key, never older, and the next reader sees the new counters and computes again.
A write that rolls back rolls its bump back too, so a version number can come again with other data
inside a transaction that is later rolled back: answers are therefore neither cached nor served inside
an atomic block (see analytics.AnswerCache).

**Areas and months** (PostgreSQL): the rollups' writes also bump a counter per kind and area,
`kind@area`, the area being the province segment of the written leaf's path (`area_of`; the same on
both maps, so a province of 2021 and the 2025 one of the same code share an area, which only coarsens
it), and one per kind and month of the written rows, `kind#YYYYMM` (`month_source`). Statement triggers
with transition tables see the written rows' kind, leaf and day or month; a leaf the units table does
not know bumps `kind@*`, and a TRUNCATE bumps `*`: both mean "anything may have changed". An answer
kept with the counters it was computed under is then brought up to date by re-reading only the areas,
or only the months, whose counters moved (analytics.AnswerCache), and an answer over none of them is
simply current: a morning's batches write today's month in every province, and a national answer
then re-reads one month of its 24, not the country. The area triggers fire after the source's own
(trigger names sort so), so a writer takes its `events` slot row before any area or month row of that
slot, and sorting the bumped names keeps two writers from locking them in opposite orders.

**Across servers** (analytics.SharedMonths): a month's rows packed on the primary under its counter
are taken on a replica under the same counter. A sum over slots could name two states on two servers
(the primary shows committed writes in the order they leave its list of running transactions, a
replica in the order their commit records were written), but a pack reaches a replica only with its
own commit record, written after those of every write it read or did not yet see: by then the replica
shows them all, and its counter has moved past the pack's.

The triggers are (re)installed after every `migrate` (post_migrate, indicators/apps.py) rather than
by a migration, because SQLite's schema editor rebuilds a table to alter it, which drops its triggers.
A slot row starts at the clock's microseconds, so a table emptied by a test's flush never repeats a
sum it held before; `install` writes each source's first slot, and a source whose rows are gone (a
flush) has no version, under which nothing is cached.
"""

# ruff: noqa: S608 - the tables, triggers and sources named in these statements are this module's constants

from __future__ import annotations

from datetime import date

from django.db import connections

from dieuhanh.indicators.models import DataVersion

# source → the tables whose writes change answers of that source
WATCHED: dict[str, tuple[str, ...]] = {
    "events": ("warehouse_rollup", "warehouse_rollupmonth"),
    "firms": (
        "enterprises_enterpriserollup",
        "enterprises_enterpriserollupmonth",
        "enterprises_profile",
        "enterprises_venuelink",
    ),
    "values": ("indicators_datavalue",),
    "catalog": (
        "indicators_dataelement",
        "indicators_dataset",
        "indicators_dataset_elements",
        "approval_approval",
        "approval_datasetapproval",
    ),
    "targets": ("indicators_target",),
    "units": ("units_unit", "units_succession", "units_edition"),
    "feedback": ("feedback_category",),  # the intake's categories (feedback.services.kept_now)
}
SLOTS = 8  # per source on PostgreSQL (by backend pid); SQLite has one writer at a time and uses slot 0
TABLE = DataVersion._meta.db_table

_PG_NOW = "(extract(epoch FROM clock_timestamp()) * 1e6)::bigint"
_PG_FUNCTION = f"""
CREATE OR REPLACE FUNCTION dieuhanh_bump_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO {TABLE} (source, slot, n)
  VALUES (TG_ARGV[0], pg_backend_pid() % {SLOTS}, {_PG_NOW})
  ON CONFLICT (source, slot) DO UPDATE SET n = {TABLE}.n + 1;
  RETURN NULL;
END $$;
"""
AREA_TABLES = WATCHED["events"]  # the rollups, whose rows name their kind and leaf
EVERYTHING = "*"  # a TRUNCATE of a rollup: no rows to name their areas


def area_of(path: str) -> str:
    """The area of a unit by its path, as the triggers compute it: its province's code ('' for the nation)."""
    parts = path.split("/")
    return parts[2] if len(parts) > 3 else ""


def month_source(kind: str, month: date) -> str:
    """The counter of a kind's month, as the triggers name it."""
    return f"{kind}#{month:%Y%m}"


def month_of(source: str) -> date | None:
    """The month (its first day) a `kind#YYYYMM` counter counts, None for any other source."""
    _, mark, month = source.partition("#")
    if not mark or len(month) != 6 or not month.isdigit():
        return None
    return date(int(month[:4]), int(month[4:]), 1)


# The written rows' distinct (kind, area), a leaf unknown to the units table in area '*', and their
# distinct (kind, month), each bumped once for the writer's slot; the transition tables are named by
# the triggers below. The rows are first made distinct by kind, leaf and month (a batch's daily rows
# are some communes × days × dimensions), so the units are joined and the months formatted once each:
# the statement runs inside every ingest batch's rollup write.
_PG_AREAS = """
CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  WITH w AS (SELECT DISTINCT r.kind, r.commune_id, {month} AS month FROM ({rows}) AS r)
  INSERT INTO {table} (source, slot, n)
  SELECT a.source, pg_backend_pid() % {slots}, {now} FROM (
    SELECT DISTINCT left(w.kind || '@' || coalesce(split_part(u.path, '/', 3), '*'), 32) AS source
    FROM w LEFT JOIN units_unit u ON u.id = w.commune_id
    UNION ALL
    SELECT m.kind || '#' || to_char(m.month, 'YYYYMM') FROM (SELECT DISTINCT kind, month FROM w) AS m
  ) AS a ORDER BY a.source
  ON CONFLICT (source, slot) DO UPDATE SET n = {table}.n + 1;
  RETURN NULL;
END $$;
"""
# Each area table's rows and the month of each: the daily rollup's day, the monthly one's month.
_MONTH_OF = {
    "warehouse_rollup": "date_trunc('month', r.day::timestamp)::date",  # as a date: no time zone's
    "warehouse_rollupmonth": "r.month",
}
_BUCKET = {"warehouse_rollup": "day", "warehouse_rollupmonth": "month"}
_AREA_ROWS = {  # trigger event → (function name, its rows, REFERENCING clause)
    "INSERT": ("new", "SELECT kind, commune_id, {b} FROM dieuhanh_new", "NEW TABLE AS dieuhanh_new"),
    "DELETE": ("old", "SELECT kind, commune_id, {b} FROM dieuhanh_old", "OLD TABLE AS dieuhanh_old"),
    "UPDATE": (
        "both",
        "SELECT kind, commune_id, {b} FROM dieuhanh_new"
        " UNION ALL SELECT kind, commune_id, {b} FROM dieuhanh_old",  # made distinct after (_PG_AREAS)
        "OLD TABLE AS dieuhanh_old NEW TABLE AS dieuhanh_new",
    ),
}
_OLD_FUNCTIONS = [f"dieuhanh_bump_areas_{name}" for name, _, _ in _AREA_ROWS.values()]  # before months
_SQLITE_NOW = "CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER)"


def _trigger_name(table: str, event: str = "") -> str:
    return f"dieuhanh_version_{table}{'_' + event.lower() if event else ''}"


def install(using: str = "default") -> None:
    """Create the bump triggers on every watched table that exists (idempotent)."""
    connection = connections[using]
    existing = set(connection.introspection.table_names())
    if TABLE not in existing:  # migrated back before the counters existed: no trigger may write them
        uninstall(using)
        return
    with connection.cursor() as cursor:
        now = _PG_NOW if connection.vendor == "postgresql" else _SQLITE_NOW
        for source in WATCHED:  # a source never written yet has a version too (else nothing is cached)
            cursor.execute(
                f"INSERT INTO {TABLE} (source, slot, n) VALUES (%s, 0, {now})"
                " ON CONFLICT (source, slot) DO NOTHING",
                [source],
            )
        if connection.vendor == "postgresql":
            cursor.execute(_PG_FUNCTION)
            for table in AREA_TABLES:
                for name, rows, _ in _AREA_ROWS.values():
                    cursor.execute(
                        _PG_AREAS.format(
                            name=_area_function(table, name),
                            table=TABLE,
                            slots=SLOTS,
                            now=_PG_NOW,
                            rows=rows.format(b=_BUCKET[table]),
                            month=_MONTH_OF[table],
                        )
                    )
        for source, tables in WATCHED.items():
            for table in tables:
                if table not in existing:
                    continue
                if connection.vendor == "postgresql":
                    cursor.execute(
                        f"CREATE OR REPLACE TRIGGER {_trigger_name(table)} AFTER INSERT OR UPDATE OR DELETE"
                        f" OR TRUNCATE ON {table} FOR EACH STATEMENT"
                        f" EXECUTE FUNCTION dieuhanh_bump_version('{source}')"
                    )
                    if table in AREA_TABLES:
                        _install_areas(cursor, table)
                    continue
                for event in ("INSERT", "UPDATE", "DELETE"):
                    cursor.execute(
                        f"CREATE TRIGGER IF NOT EXISTS {_trigger_name(table, event)} AFTER {event} ON {table}"
                        f" BEGIN INSERT INTO {TABLE} (source, slot, n) VALUES ('{source}', 0, {_SQLITE_NOW})"
                        f" ON CONFLICT (source, slot) DO UPDATE SET n = n + 1; END"
                    )
        if connection.vendor == "postgresql":
            # The functions of a database installed before months were counted, once no trigger uses them.
            for name in _OLD_FUNCTIONS:
                cursor.execute(f"DROP FUNCTION IF EXISTS {name}()")


def _area_function(table: str, name: str) -> str:
    """A rollup's area function: one per table (its bucket column is its own) and event."""
    return f"dieuhanh_bump_areas_{_BUCKET[table]}_{name}"


def _install_areas(cursor, table: str) -> None:
    """A rollup's area triggers (PostgreSQL): one per event, as transition tables require."""
    for event, (name, _, referencing) in _AREA_ROWS.items():
        cursor.execute(
            f"CREATE OR REPLACE TRIGGER {_trigger_name(table, 'areas_' + name)} AFTER {event} ON {table}"
            f" REFERENCING {referencing} FOR EACH STATEMENT EXECUTE FUNCTION {_area_function(table, name)}()"
        )
    cursor.execute(
        f"CREATE OR REPLACE TRIGGER {_trigger_name(table, 'areas_all')} AFTER TRUNCATE ON {table}"
        f" FOR EACH STATEMENT EXECUTE FUNCTION dieuhanh_bump_version('{EVERYTHING}')"
    )


def _area_triggers(table: str) -> list[str]:
    return [_trigger_name(table, "areas_" + name) for name in ("new", "old", "both", "all")]


def uninstall(using: str = "default") -> None:
    connection = connections[using]
    existing = set(connection.introspection.table_names())
    with connection.cursor() as cursor:
        for tables in WATCHED.values():
            for table in tables:
                if connection.vendor == "postgresql":
                    if table in existing:
                        for trigger in [_trigger_name(table), *_area_triggers(table)]:
                            cursor.execute(f"DROP TRIGGER IF EXISTS {trigger} ON {table}")
                    continue
                for event in ("INSERT", "UPDATE", "DELETE"):
                    cursor.execute(f"DROP TRIGGER IF EXISTS {_trigger_name(table, event)}")


def installed(using: str = "default") -> set[str]:
    """The watched tables that carry the trigger (for the checks)."""
    connection = connections[using]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
                " WHERE t.tgname LIKE 'dieuhanh_version_%%'"
            )
        else:
            cursor.execute(
                "SELECT tbl_name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'dieuhanh_version_%'"
            )
        return {row[0] for row in cursor.fetchall()}


def current(sources: frozenset[str], using: str = "default") -> tuple[int, ...] | None:
    """The sources' versions (in name order), or None where one has never been written (then nothing may
    be cached under it: an empty count says nothing)."""
    with connections[using].cursor() as cursor:
        cursor.execute(*current_statement(sources))
        return versions_of(sources, cursor.fetchall())


def current_statement(sources: frozenset[str]) -> tuple[str, list[str]]:
    """current()'s query (sql, params), for a caller that sends it with others in one round trip."""
    names = sorted(sources)
    return (
        f"SELECT source, SUM(n) FROM {TABLE} WHERE source IN ({', '.join(['%s'] * len(names))})"
        " GROUP BY source",
        names,
    )


def versions_of(sources: frozenset[str], rows: list[tuple]) -> tuple[int, ...] | None:
    """current()'s answer from its query's rows."""
    found = dict(rows)
    if len(found) < len(sources):
        return None
    return tuple(int(found[name]) for name in sorted(sources))


def areas(kinds: frozenset[str], using: str = "default") -> dict[str, int] | None:
    """The area and month counters of these kinds (`kind@area`, `kind#YYYYMM` → version) and `*` where
    a rollup was emptied, or None where writes are not counted by area (SQLite: its row triggers bump
    the sources only)."""
    connection = connections[using]
    if connection.vendor != "postgresql" or not kinds:
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT source, SUM(n) FROM {TABLE} WHERE source LIKE ANY(%s) OR source = %s GROUP BY source",
            [[f"{kind}{mark}%" for kind in sorted(kinds) for mark in ("@", "#")], EVERYTHING],
        )
        return {source: int(n) for source, n in cursor.fetchall()}


def in_transaction(alias: str = "default") -> bool:
    """Whether a transaction of the code's own is open, under which nothing may be kept by version (its
    writes are not yet anyone else's, and a rollback brings their version numbers back). A test case's
    outer atomic blocks do not count: a test runs as one request would, and the tests clear what is
    kept between them."""
    return any(not getattr(block, "_from_testcase", False) for block in connections[alias].atomic_blocks)
