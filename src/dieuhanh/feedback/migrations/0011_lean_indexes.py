"""Issue 20's intake speed: the reports' indexes that a new report writes and no query of it reads
are gone or partial (see Feedback.Meta). The public page reads answered reports only, so its indexes
— the ordering ones here and the search's trigram indexes of 0006 — hold the answered ones alone
(WHERE status = 'answered'): a citizen's new report never writes them; an answer enters it (one
update among many fewer). The trigram indexes are PostgreSQL's (0006's pattern): recreated partial
where pg_trgm is there, nothing elsewhere."""

import django.db.models.deletion
from django.db import migrations, models

TRIGRAM = {"feedback_text_trgm": "text", "feedback_answer_trgm": "answer"}


def _trigram(schema_editor, where: str) -> None:
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")
        if cursor.fetchone() is None:  # 0006 could not create it: the search scans, as before
            return
        for name, column in TRIGRAM.items():
            cursor.execute(f"DROP INDEX IF EXISTS {name}")
            cursor.execute(
                f'CREATE INDEX {name} ON feedback_feedback USING gin (UPPER("{column}") gin_trgm_ops){where}'
            )


def answered_only(apps, schema_editor):
    _trigram(schema_editor, " WHERE status = 'answered'")


def every_report(apps, schema_editor):
    _trigram(schema_editor, "")


class Migration(migrations.Migration):
    dependencies = [
        ("directives", "0002_english_codes"),
        ("feedback", "0010_post_photos"),
        ("units", "0001_initial"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="feedback",
            name="feedback_public",
        ),
        migrations.RemoveIndex(
            model_name="feedback",
            name="feedback_public_category",
        ),
        migrations.AlterField(
            model_name="feedback",
            name="category",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="feedback.category",
            ),
        ),
        migrations.AlterField(
            model_name="feedback",
            name="code",
            field=models.CharField(help_text="the citizen's tracking code", max_length=12),
        ),
        migrations.AlterField(
            model_name="feedback",
            name="directive",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                help_text="the directive this report became",
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="feedback_items",
                to="directives.directive",
            ),
        ),
        migrations.AlterField(
            model_name="feedback",
            name="incident_id",
            field=models.BigIntegerField(
                blank=True, help_text="the source platform's incident report it came from", null=True
            ),
        ),
        migrations.AlterField(
            model_name="feedback",
            name="merged_into",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                help_text="the item this duplicate follows: its reporter sees that item's status",
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="duplicates",
                to="feedback.feedback",
            ),
        ),
        migrations.AlterField(
            model_name="feedback",
            name="task",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                help_text="the task this report became",
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="feedback_items",
                to="directives.task",
            ),
        ),
        migrations.AlterField(
            model_name="feedback",
            name="unit",
            field=models.ForeignKey(
                db_index=False,
                help_text="handles it now",
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="units.unit",
            ),
        ),
        migrations.AddIndex(
            model_name="feedback",
            index=models.Index(
                condition=models.Q(("status", "answered")),
                fields=["answered_at", "id"],
                name="feedback_public",
            ),
        ),
        migrations.AddIndex(
            model_name="feedback",
            index=models.Index(
                condition=models.Q(("status", "answered")),
                fields=["category", "answered_at", "id"],
                name="feedback_public_category",
            ),
        ),
        migrations.AddIndex(
            model_name="feedback",
            index=models.Index(
                condition=models.Q(("merged_into__isnull", False)),
                fields=["merged_into"],
                name="feedback_merged_into",
            ),
        ),
        migrations.AddIndex(
            model_name="feedback",
            index=models.Index(
                condition=models.Q(("directive__isnull", False)),
                fields=["directive"],
                name="feedback_directive",
            ),
        ),
        migrations.AddIndex(
            model_name="feedback",
            index=models.Index(
                condition=models.Q(("task__isnull", False)), fields=["task"], name="feedback_task"
            ),
        ),
        migrations.AddConstraint(
            model_name="feedback",
            constraint=models.UniqueConstraint(fields=("code",), name="feedback_code_unique"),
        ),
        migrations.AddConstraint(
            model_name="feedback",
            constraint=models.UniqueConstraint(
                condition=models.Q(("incident_id__isnull", False)),
                fields=("incident_id",),
                name="feedback_incident_unique",
            ),
        ),
        migrations.RunPython(answered_only, every_report),
    ]
