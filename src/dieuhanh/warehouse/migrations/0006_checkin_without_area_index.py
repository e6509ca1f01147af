"""Check-ins lose their (commune, at) index (issue 18, point 3): no reader takes check-ins by commune
(their counts are the rollups', tracing reads by person and by venue), and on PostgreSQL it was about a
fifth of the raw insert's time. Dropped on the partitioned table, it goes from every partition."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("warehouse", "0005_partitioned_events"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="checkin",
            name="checkin_area_time",
        ),
    ]
