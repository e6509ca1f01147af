# A migration of its own: on PostgreSQL, NOT NULL cannot be set in the transaction that filled the
# column while its foreign-key checks are still pending.

import django.db.models.deletion
from django.db import migrations, models

OWNER_HELP = "the unit whose admins (and those above it) may change or delete this; the nation's by default"


class Migration(migrations.Migration):
    dependencies = [
        ("reports", "0002_owner_unit"),
    ]

    operations = [
        migrations.AlterField(
            model_name="reportdefinition",
            name="owner_unit",
            field=models.ForeignKey(
                help_text=OWNER_HELP,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="units.unit",
            ),
        ),
    ]
