"""A report's snapshot keeps the task counts it read, keyed by status (facts.tasks): the statuses'
codes became English (directives 0002, issue 15 point 7), so a replayed report finds its counts under
the new codes. Forward and backward; snapshots without tasks are not touched."""

from django.db import migrations

CODES = {
    "chua_thuc_hien": "not_started",
    "dang_thuc_hien": "in_progress",
    "hoan_thanh": "done",
    "qua_han": "overdue",
}


def _rename(apps, codes: dict[str, str]) -> None:
    Report = apps.get_model("reports", "Report")
    for report in Report.objects.filter(snapshot__has_key="facts").only("snapshot").iterator(chunk_size=500):
        facts = report.snapshot.get("facts") or {}
        changed = False
        for key, found in facts.items():
            if key.startswith("tasks|") and isinstance(found, dict) and isinstance(found.get("counts"), dict):
                renamed = {codes.get(code, code): n for code, n in found["counts"].items()}
                changed = changed or renamed != found["counts"]
                found["counts"] = renamed
        if changed:
            report.save(update_fields=["snapshot"])


def forwards(apps, schema_editor) -> None:
    _rename(apps, CODES)


def backwards(apps, schema_editor) -> None:
    _rename(apps, {new: old for old, new in CODES.items()})


class Migration(migrations.Migration):
    dependencies = [
        ("reports", "0003_owner_unit_required"),
        ("directives", "0002_english_codes"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
