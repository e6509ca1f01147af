# Made reports were written under DIEUHANH_HOME/files; they are now in the default storage with the
# attachments and photos (DIEUHANH_FILES, by default DIEUHANH_HOME/media). This moves the files already
# made there, under the same names, so that every archived report can still be downloaded.

from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import migrations, models


def move_made_reports(apps, schema_editor):
    old_root = Path(settings.HOME) / "files"
    if not old_root.is_dir():
        return
    Report = apps.get_model("reports", "Report")
    for report in Report.objects.exclude(file="").only("pk", "file").iterator():
        old = old_root / report.file
        # Files are moved outside the transaction: a second run finds them moved and goes on.
        if not old.is_file() or default_storage.exists(report.file):
            continue
        with old.open("rb") as fh:
            name = default_storage.save(report.file, File(fh))
        if name != report.file:
            Report.objects.filter(pk=report.pk).update(file=name)
        old.unlink()


class Migration(migrations.Migration):
    dependencies = [
        ("reports", "0004_snapshot_task_codes"),
    ]

    operations = [
        migrations.AlterField(
            model_name="report",
            name="file",
            field=models.CharField(
                blank=True, help_text="its name among the stored files (DIEUHANH_FILES)", max_length=300
            ),
        ),
        migrations.RunPython(move_made_reports, migrations.RunPython.noop),
    ]
