from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("indicators", "0003_owner_unit_required"),
    ]

    operations = [
        migrations.CreateModel(
            name="DataVersion",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("source", models.CharField(max_length=16)),
                ("slot", models.PositiveSmallIntegerField()),
                ("n", models.BigIntegerField(default=0)),
            ],
            options={
                "constraints": [models.UniqueConstraint(fields=("source", "slot"), name="dataversion_slot")],
            },
        ),
    ]
