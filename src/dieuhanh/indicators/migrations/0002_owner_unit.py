"""Metadata gets an owner unit; what exists already (catalogue-loaded or made by hand) is the nation's."""

import django.db.models.deletion
from django.db import migrations, models

OWNER_HELP = "the unit whose admins (and those above it) may change or delete this; the nation's by default"
MODELS = ("dataelement", "dataset", "indicator", "target")


def national_owner(apps):
    """The nation of the 2025 map (any map's nation otherwise); None when no unit is loaded."""
    unit = apps.get_model("units", "Unit")
    found = unit.objects.filter(edition_id="VN-2025", code="VN").first()
    return found or unit.objects.filter(level=0).order_by("edition_id").first()


def to_the_nation(apps, schema_editor):
    rows = [apps.get_model("indicators", name).objects.filter(owner_unit=None) for name in MODELS]
    if not any(r.exists() for r in rows):
        return
    nation = national_owner(apps)
    if nation is None:
        raise RuntimeError(
            "metadata exists but no nation unit does: run `dieuhanh units load`, then migrate again"
        )
    for r in rows:
        r.update(owner_unit=nation)


class Migration(migrations.Migration):
    dependencies = [
        ("indicators", "0001_initial"),
        ("units", "0001_initial"),
    ]

    operations = [
        *[
            migrations.AddField(
                model_name=name,
                name="owner_unit",
                field=models.ForeignKey(
                    null=True,
                    help_text=OWNER_HELP,
                    on_delete=django.db.models.deletion.PROTECT,
                    related_name="+",
                    to="units.unit",
                ),
            )
            for name in MODELS
        ],
        migrations.RunPython(to_the_nation, migrations.RunPython.noop),
    ]
