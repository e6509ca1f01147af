"""Database helpers below every app: fast bulk insert of plain rows."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from django.db import connection, models


def insert_rows(model: type[models.Model], fields: Sequence[str], rows: Iterable[Sequence]) -> None:
    """INSERT plain rows (values in `fields` order, by attribute name) without building model instances.

    The caller validates the rows first: nothing here converts or checks values. PostgreSQL gets
    COPY, the fastest path it has; SQLite gets executemany of one prepared statement. Both run in
    the caller's transaction.
    """
    meta = model._meta
    concrete = {f.attname: f.column for f in meta.concrete_fields}
    columns = [concrete[f] for f in fields]
    quote = connection.ops.quote_name
    table, column_list = quote(meta.db_table), ", ".join(quote(c) for c in columns)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # The driver's own cursor bypasses Django's error translation: restore it, so that a
            # unique violation is an IntegrityError on every backend.
            with (
                connection.wrap_database_errors,
                cursor.cursor.copy(f"COPY {table} ({column_list}) FROM STDIN") as copy,
            ):
                for row in rows:
                    copy.write_row(row)
        else:
            placeholders = ", ".join(["%s"] * len(columns))
            sql = f"INSERT INTO {table} ({column_list}) VALUES ({placeholders})"  # noqa: S608
            cursor.executemany(sql, list(rows))


def db_datetime(value):
    """An aware datetime in the form the backend stores (naive UTC text on SQLite), for raw rows."""
    return connection.ops.adapt_datetimefield_value(value)
