from django.db import migrations, models


def widen(apps, schema_editor):
    # PostgreSQL enforces varchar(n). SQLite does not, and altering a column there rebuilds the table,
    # which its triggers (indicators.versions, on every watched table) name: the rebuild's rename then
    # fails with "no such table". So SQLite changes the model's state only.
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE indicators_dataversion ALTER COLUMN source TYPE varchar(32)")


def narrow(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "DELETE FROM indicators_dataversion WHERE length(source) > 16;"
            " ALTER TABLE indicators_dataversion ALTER COLUMN source TYPE varchar(16)"
        )


class Migration(migrations.Migration):
    """A source may name a rollup kind's month (`kind#YYYYMM`, up to 19 characters): indicators.versions."""

    dependencies = [
        ("indicators", "0004_dataversion"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="dataversion",
                    name="source",
                    field=models.CharField(max_length=32),
                ),
            ],
            database_operations=[migrations.RunPython(widen, narrow)],
        ),
    ]
