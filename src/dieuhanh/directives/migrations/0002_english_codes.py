"""Stored codes in English, with Vietnamese labels, as every other stored code (issue 15, point 7):
a directive's priority (and its revisions' record of a changed priority) and a task's and a progress
report's status. One UPDATE per code each way; input still accepts the old codes for one release
(directives.models.OLD_CODES)."""

from django.db import migrations, models

PRIORITY = {"khan": "urgent", "thuong": "normal"}
TASK_STATUS = {
    "chua_thuc_hien": "not_started",
    "dang_thuc_hien": "in_progress",
    "hoan_thanh": "done",
    "qua_han": "overdue",  # never stored (it is computed when read), mapped all the same
}
RENAMED = (
    ("Directive", "priority", PRIORITY),
    ("Task", "status", TASK_STATUS),
    ("TaskProgress", "status", TASK_STATUS),
)


def _rename(apps, backwards: bool) -> None:
    for model, field, codes in RENAMED:
        rows = apps.get_model("directives", model).objects
        for old, new in codes.items():
            before, after = (new, old) if backwards else (old, new)
            rows.filter(**{field: before}).update(**{field: after})
    # A revision that changed the priority keeps [before, after] in its changes, which the API shows.
    codes = {new: old for old, new in PRIORITY.items()} if backwards else PRIORITY
    revisions = apps.get_model("directives", "Revision").objects.filter(changes__has_key="priority")
    for revision in revisions.only("changes").iterator(chunk_size=500):
        revision.changes["priority"] = [codes.get(code, code) for code in revision.changes["priority"]]
        revision.save(update_fields=["changes"])


def forwards(apps, schema_editor) -> None:
    _rename(apps, backwards=False)


def backwards(apps, schema_editor) -> None:
    _rename(apps, backwards=True)


class Migration(migrations.Migration):
    dependencies = [
        ("directives", "0001_directives_tasks"),
    ]

    operations = [
        migrations.AlterField(
            model_name="directive",
            name="priority",
            field=models.CharField(
                choices=[("urgent", "Urgent"), ("normal", "Normal")], default="normal", max_length=8
            ),
        ),
        migrations.AlterField(
            model_name="task",
            name="status",
            field=models.CharField(
                choices=[
                    ("not_started", "Not started"),
                    ("in_progress", "In progress"),
                    ("done", "Done"),
                    ("overdue", "Overdue"),
                ],
                default="not_started",
                max_length=16,
            ),
        ),
        migrations.AlterField(
            model_name="taskprogress",
            name="status",
            field=models.CharField(
                choices=[
                    ("not_started", "Not started"),
                    ("in_progress", "In progress"),
                    ("done", "Done"),
                    ("overdue", "Overdue"),
                ],
                max_length=16,
            ),
        ),
        migrations.RunPython(forwards, backwards),
    ]
