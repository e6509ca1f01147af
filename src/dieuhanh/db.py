"""Database helpers below every app: fast bulk insert of plain rows; a busy pool answered 503."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from django.db import OperationalError, connection, models
from django.http import HttpResponse

RETRY_AFTER = 2  # seconds a client is asked to wait when every connection is taken
BUSY = "Hệ thống đang bận: mọi kết nối cơ sở dữ liệu đều đang được dùng. Vui lòng thử lại sau giây lát."


def pool_exhausted(error: BaseException) -> bool:
    """Whether a database error is the pool's timeout (every pooled connection taken), not a fault."""
    from psycopg_pool import PoolTimeout

    while error is not None:
        if isinstance(error, PoolTimeout):
            return True
        error = error.__cause__ or error.__context__  # type: ignore[assignment]
    return False


def busy_body(path: str) -> tuple[bytes, str]:
    """The 503 answer's body: problem+json (RFC 9457), in Vietnamese."""
    problem = {"type": "about:blank", "title": "Service Unavailable", "status": 503, "detail": BUSY}
    return json.dumps(problem | {"instance": path}, ensure_ascii=False).encode(), "application/problem+json"


def busy_response(path: str) -> HttpResponse:
    body, content_type = busy_body(path)
    response = HttpResponse(body, status=503, content_type=content_type)
    response["Retry-After"] = str(RETRY_AFTER)
    return response


class BusyMiddleware:
    """A request that found every pooled connection taken gets 503 with Retry-After, never a 500."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        return self.get_response(request)

    def process_exception(self, request: Any, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, OperationalError) and pool_exhausted(exception):
            return busy_response(request.path)
        return None


def insert_rows(
    model: type[models.Model],
    fields: Sequence[str],
    rows: Iterable[Sequence],
    *,
    binary: bool = False,
    or_ignore: bool = False,
) -> int | None:
    """INSERT plain rows (values in `fields` order, by attribute name) without building model instances.

    The caller validates the rows first: nothing here converts or checks values. PostgreSQL gets
    COPY, the fastest path it has; SQLite gets executemany of one prepared statement. Both run in
    the caller's transaction. `binary` (PostgreSQL): COPY in binary format, typed by the fields' column
    types, which spares the server parsing text (times above all) and the client formatting it; the
    values must then be of the columns' Python types exactly (an int for an integer column, an aware
    datetime for a time), as the event pipeline's are. `or_ignore` (SQLite): INSERT OR IGNORE, and
    how many rows went in is returned (COPY has no such verb).
    """
    meta = model._meta
    concrete = {f.attname: f for f in meta.concrete_fields}
    columns = [concrete[f].column for f in fields]
    quote = connection.ops.quote_name
    table, column_list = quote(meta.db_table), ", ".join(quote(c) for c in columns)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            if or_ignore:
                raise ValueError("insert_rows: or_ignore is SQLite's (COPY ignores no row)")
            from psycopg.copy import QueuedLibpqWriter

            options = " (FORMAT binary)" if binary else ""
            raw = cursor.cursor
            # The driver's own cursor bypasses Django's error translation: restore it, so that a
            # unique violation is an IntegrityError on every backend. The queued writer sends the data
            # from a thread of its own: the caller goes on formatting (and validating) rows while the
            # socket waits for the server, instead of waiting with it.
            with (
                connection.wrap_database_errors,
                raw.copy(
                    f"COPY {table} ({column_list}) FROM STDIN{options}", writer=QueuedLibpqWriter(raw)
                ) as copy,
            ):
                if binary:
                    copy.set_types([_copy_type(concrete[f]) for f in fields])
                for row in rows:
                    copy.write_row(row)
            return None
        placeholders = ", ".join(["%s"] * len(columns))
        verb = "INSERT OR IGNORE" if or_ignore else "INSERT"
        sql = f"{verb} INTO {table} ({column_list}) VALUES ({placeholders})"
        cursor.executemany(sql, list(rows))
        return cursor.rowcount


def _copy_type(field: models.Field) -> str:
    """A column's type as the driver names it for a binary COPY: 'varchar(100)' → 'varchar'."""
    return str(field.db_type(connection)).split("(")[0]  # a foreign key's is its target's


def db_datetime(value):
    """An aware datetime in the form the backend stores (naive UTC text on SQLite), for raw rows."""
    return connection.ops.adapt_datetimefield_value(value)
