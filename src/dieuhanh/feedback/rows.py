"""A new row, the rows that point at it and a few others, written in one round trip; several
statements' rows read in one round trip (issue 20's intake speed).

A citizen's report is three rows: the report, its first history step and its audit entry. Through
the ORM they are three INSERTs, each waiting for its answer; on PostgreSQL they go here as one
execute of three statements — Django's own INSERTs, compiled by its compiler, so every field,
default and conversion is the ORM's — inside the caller's transaction. The history step's report id
is the report's sequence value just taken by the same session (`currval`). On SQLite, in the same
process, a round trip costs nothing: the ORM saves them one by one.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import models, transaction
from django.db.models.expressions import RawSQL
from django.db.models.sql import InsertQuery


def _insert(obj: models.Model, connection, returning: bool) -> tuple[str, tuple]:
    meta = obj._meta
    fields = [f for f in meta.local_concrete_fields if not (f is meta.auto_field and obj.pk is None)]
    query = InsertQuery(type(obj))
    query.insert_values(fields, [obj])
    compiler = query.get_compiler(connection=connection)
    if returning:
        compiler.returning_fields = [meta.pk]
    [(sql, params)] = compiler.as_sql()
    return sql, tuple(params)


def _one_execute(connection) -> bool:
    """Whether several statements can go in one execute: PostgreSQL with client-side binding (psycopg's
    default for Django; server-side binding takes one statement per execute)."""
    return connection.vendor == "postgresql" and not connection.settings_dict.get("OPTIONS", {}).get(
        "server_side_binding"
    )


def run_together(statements: Sequence[tuple[str, Sequence]]) -> list[list[tuple]]:
    """Each statement's rows (each must return rows: a SELECT, or a write with RETURNING), the
    statements sent in one round trip where the connection allows it, else one by one; in the
    current transaction, in order."""
    connection = transaction.get_connection()
    found: list[list[tuple]] = []
    if not statements:
        return found
    with connection.cursor() as cursor:
        if not _one_execute(connection):
            for sql, params in statements:
                cursor.execute(sql, params)
                found.append(cursor.fetchall())
            return found
        params = [value for _, values in statements for value in values]
        cursor.execute("; ".join(sql for sql, _ in statements), params)
        raw = cursor.cursor  # psycopg's cursor: each statement's result is a set of its own
        found.append(raw.fetchall())
        while raw.nextset():
            found.append(raw.fetchall())
    return found


def insert_together(
    first: models.Model,
    *,
    linked: Sequence[models.Model],
    link: str,
    others: Sequence[models.Model] = (),
    also: Sequence[tuple[str, Sequence]] = (),
) -> None:
    """Insert `first` (its id from its table's sequence), `linked` (whose foreign key `link` points at
    `first`) and `others`, then run the statements `also` (sql, params: an update that goes with
    them), in the current transaction. Afterwards all are saved objects; `first` has its id (the
    others have theirs on SQLite only: nothing here reads them)."""
    connection = transaction.get_connection()
    if not _one_execute(connection):
        first.save(force_insert=True)
        for obj in linked:
            setattr(obj, link, first)
        for obj in [*linked, *others]:
            obj.save(force_insert=True)
        with connection.cursor() as cursor:
            for statement in also:
                cursor.execute(*statement)
        return
    meta = first._meta
    # The table and column are the model's own names, not input.
    pending = RawSQL(f"currval(pg_get_serial_sequence('{meta.db_table}', '{meta.pk.column}'))", ())  # noqa: S611
    for obj in linked:
        setattr(obj, f"{link}_id", pending)
    statements: list[str] = []
    params: list = []
    for n, obj in enumerate([first, *linked, *others]):
        sql, values = _insert(obj, connection, returning=n == 0)
        statements.append(sql)
        params.extend(values)
    for sql, more in also:
        statements.append(sql)
        params.extend(more)
    with connection.cursor() as cursor:
        cursor.execute("; ".join(statements), params)
        first.pk = cursor.fetchone()[0]
    for obj in [first, *linked, *others]:
        obj._state.adding, obj._state.db = False, connection.alias
    for obj in linked:
        setattr(obj, link, first)
