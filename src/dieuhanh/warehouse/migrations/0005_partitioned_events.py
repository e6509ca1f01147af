"""Event tables partitioned by time on PostgreSQL (issue 14); SQLite keeps its plain tables.

The models do not change (Django's state is the same): on PostgreSQL each event table becomes a
range-partitioned table of the same name, columns, ids and indexes, by ISO week for check-ins and by
month for the other kinds, with a default partition; the rows already there are moved in the same
transaction. The unique constraint (source, source_event_id) moves to the key table beside it
(`<table>_key`, same constraint name), written by a trigger: see warehouse.partitions.
"""

from django.db import migrations

from dieuhanh.warehouse import partitions

GRAINS = {
    "CheckIn": "week",
    "HealthDeclaration": "month",
    "TravelDeclaration": "month",
    "TestResult": "month",
    "Vaccination": "month",
    "Quarantine": "month",
    "IncidentReport": "month",
}


def partition(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, grain in GRAINS.items():
        partitions.partition_table(schema_editor, apps.get_model("warehouse", name), grain)
    partitions.ensure()  # the current period and the next ones, as `dieuhanh partitions` makes them


def unpartition(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in GRAINS:
        partitions.unpartition_table(schema_editor, apps.get_model("warehouse", name))
    partitions.drop_key_functions(schema_editor)


class Migration(migrations.Migration):

    dependencies = [
        ('warehouse', '0004_rollupmonth_analytics_index'),
    ]

    operations = [
        migrations.RunPython(partition, unpartition),
    ]
