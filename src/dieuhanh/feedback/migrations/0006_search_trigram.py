"""PostgreSQL: trigram indexes for the public page's search (text and answer, as `icontains` reads
them: UPPER(column) LIKE UPPER('%…%')), so that searching a million answers is an index look-up, not a
scan. Needs the pg_trgm extension (PostgreSQL's contrib): a server without it, or a role that may not
create it, keeps working without these indexes (the search is then a scan), and the log says so.
Nothing on SQLite."""

import logging

from django.db import migrations, transaction

log = logging.getLogger(__name__)

INDEXES = {
    "feedback_text_trgm": "text",
    "feedback_answer_trgm": "answer",
}


def create(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    try:
        with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
            cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except Exception as exc:  # noqa: BLE001 (no contrib, or no right to create it)
        log.warning("feedback: no pg_trgm (%s): the public search scans instead of using an index", exc)
        return
    with connection.cursor() as cursor:
        for name, column in INDEXES.items():
            cursor.execute(
                f'CREATE INDEX IF NOT EXISTS {name} ON feedback_feedback USING gin (UPPER("{column}") gin_trgm_ops)'
            )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        for name in INDEXES:
            cursor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("feedback", "0005_merge_followup_sessions")]

    operations = [migrations.RunPython(create, drop)]
