from django.db import migrations, models


class Migration(migrations.Migration):
    """A source may name a rollup kind's month (`kind#YYYYMM`, up to 19 characters): indicators.versions."""

    dependencies = [
        ("indicators", "0004_dataversion"),
    ]

    operations = [
        migrations.AlterField(
            model_name="dataversion",
            name="source",
            field=models.CharField(max_length=32),
        ),
    ]
