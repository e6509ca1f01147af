"""Report definitions get an owner unit; those already saved (the shipped ones) are the nation's."""

import django.db.models.deletion
from django.db import migrations, models

OWNER_HELP = "the unit whose admins (and those above it) may change or delete this; the nation's by default"


def to_the_nation(apps, schema_editor):
    rows = apps.get_model("reports", "ReportDefinition").objects.filter(owner_unit=None)
    if not rows.exists():
        return
    unit = apps.get_model("units", "Unit")
    nation = unit.objects.filter(edition_id="VN-2025", code="VN").first()
    nation = nation or unit.objects.filter(level=0).order_by("edition_id").first()
    if nation is None:  # a definition names a unit, so units are loaded; guard all the same
        raise RuntimeError("report definitions exist but no nation unit does: run `dieuhanh units load`")
    rows.update(owner_unit=nation)


class Migration(migrations.Migration):
    dependencies = [
        ("reports", "0001_initial"),
        ("units", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="reportdefinition",
            name="owner_unit",
            field=models.ForeignKey(
                null=True,
                help_text=OWNER_HELP,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="units.unit",
            ),
        ),
        migrations.RunPython(to_the_nation, migrations.RunPython.noop),
    ]
