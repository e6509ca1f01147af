"""Stays read from the warehouse's check-ins, in batches, on SQLite and PostgreSQL.

Both searches are one indexed range scan per window: (person_key, at) for a person's stays,
(venue_id, at) for a venue's. The windows travel as one array (PostgreSQL's unnest) or one VALUES
list (SQLite, in chunks under its parameter limit), so that an F2 search over thousands of F1s is a
few statements, not thousands.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from django.db import connection

from dieuhanh.tracing.engine import Rule, Stay, Window, new_tuple

_SQLITE_ROWS_PER_STATEMENT = 5_000  # 3 parameters a row, under SQLite's 32,766


class CheckinStore:
    """The Store that tracing runs on in production: warehouse_checkin joined with the venue's dwell."""

    def __init__(self, rule: Rule):
        self.rule = rule
        self.postgres = connection.vendor == "postgresql"
        self.queries = 0

    def stays_of(self, windows: Sequence[Window]) -> list[Stay]:
        return self._select("person_key", [(w.person, w.start, w.end) for w in windows], closed=False)

    def stays_at(self, ranges: Sequence[tuple[int, int, int]]) -> list[Stay]:
        return self._select("venue_id", list(ranges), closed=True)

    def _select(self, column: str, windows: list[tuple], *, closed: bool) -> list[Stay]:
        if not windows:
            return []
        upper = "<=" if closed else "<"
        rows: list[tuple] = []
        with connection.cursor() as cursor:
            if self.postgres:
                cursor.execute(_postgres_sql(column, upper), _as_arrays(windows))
                rows = cursor.fetchall()
                self.queries += 1
            else:
                for i in range(0, len(windows), _SQLITE_ROWS_PER_STATEMENT):
                    chunk = windows[i : i + _SQLITE_ROWS_PER_STATEMENT]
                    cursor.execute(_sqlite_sql(column, upper, len(chunk)), _as_values(chunk))
                    rows.extend(cursor.fetchall())
                    self.queries += 1
        end = self.rule.stay_end
        return [
            new_tuple(Stay, (bytes(person), venue, start, end(start, out, dwell * 60 if dwell else None)))
            for person, venue, start, out, dwell in rows
        ]


_COLUMNS = "c.person_key, c.venue_id, {epoch_at}, {epoch_out}, v.dwell_minutes"


def _postgres_sql(column: str, upper: str) -> str:
    columns = _COLUMNS.format(
        epoch_at="floor(extract(epoch from c.at))::bigint",
        epoch_out="floor(extract(epoch from c.time_out))::bigint",
    )
    key_type = "bytea" if column == "person_key" else "integer"
    # Only fixed column names and operators are formatted in; every value is a parameter.
    return (
        f"SELECT {columns}"  # noqa: S608
        f" FROM unnest(%s::{key_type}[], %s::timestamptz[], %s::timestamptz[]) AS w(k, lo, hi)"
        f" JOIN warehouse_checkin c ON c.{column} = w.k AND c.at >= w.lo AND c.at {upper} w.hi"
        " LEFT JOIN warehouse_venue v ON v.id = c.venue_id"
    )


def _sqlite_sql(column: str, upper: str, rows: int) -> str:
    columns = _COLUMNS.format(epoch_at="unixepoch(c.at)", epoch_out="unixepoch(c.time_out)")
    values = ", ".join(["(%s, %s, %s)"] * rows)
    # CROSS JOIN makes SQLite loop over the windows and probe the index for each, never the reverse.
    return (
        f"WITH w(k, lo, hi) AS (VALUES {values}) SELECT {columns} FROM w"  # noqa: S608
        f" CROSS JOIN warehouse_checkin c ON c.{column} = w.k AND c.at >= w.lo AND c.at {upper} w.hi"
        " LEFT JOIN warehouse_venue v ON v.id = c.venue_id"
    )


def _as_arrays(windows: list[tuple]) -> list[list]:
    keys, los, his = zip(*windows, strict=True)
    return [list(keys), [_utc(t) for t in los], [_utc(t) for t in his]]


def _as_values(windows: list[tuple]) -> list:
    flat: list = []
    for key, lo, hi in windows:
        flat += [key, _sqlite_time(lo), _sqlite_time(hi)]
    return flat


def _utc(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _sqlite_time(epoch: int) -> str:
    """As Django stores datetimes in SQLite: naive UTC text that sorts as time does."""
    return _utc(epoch).strftime("%Y-%m-%d %H:%M:%S")
