"""The migration that gives metadata an owner: what existed before it belongs to the nation afterwards.

Run in a process of its own on a database of its own (SQLite, or a scratch PostgreSQL database on the
PostgreSQL pass): the schema is migrated back before the owner existed, rows are written as they were
then, and the migrations run forward over them.
"""

from __future__ import annotations

from tests.factories import run_on_scratch

SCRIPT = r"""
import json
from datetime import date

import django

django.setup()
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("indicators", "0001_initial"), ("reports", "0001_initial")]
for app, name in BEFORE:
    call_command("migrate", app, name, verbosity=0)
old = MigrationExecutor(connection).loader.project_state(BEFORE).apps
Edition, Unit = old.get_model("units", "Edition"), old.get_model("units", "Unit")
edition = Edition.objects.create(
    code="VN-2025", name="2025", effective_from=date(2025, 7, 1), levels=[], source="t")
nation = Unit.objects.create(
    edition=edition, code="VN", name="Việt Nam", kind="nation", level=0, path="/VN/", search_name="viet nam")
city = Unit.objects.create(
    edition=edition, code="79", name="TP.HCM", kind="province", level=1, path="/VN/79/", parent=nation,
    search_name="tp hcm")
element = old.get_model("indicators", "DataElement").objects.create(code="postal_revenue", name="Doanh thu")
indicator = old.get_model("indicators", "Indicator").objects.create(
    code="postal_revenue", name="Doanh thu", formula="#{postal_revenue}")
data_set = old.get_model("indicators", "DataSet").objects.create(code="ict", name="ICT", unit_kind="nation")
data_set.elements.set([element])
old.get_model("indicators", "Target").objects.create(indicator=indicator, unit=city, period="2021", value=1)
old.get_model("reports", "ReportDefinition").objects.create(
    code="ict_monthly", name="ICT", period_type="monthly", unit=city, body={})

call_command("migrate", verbosity=0)

from dieuhanh.indicators.models import DataElement, DataSet, Indicator, Target
from dieuhanh.reports.models import ReportDefinition

print(json.dumps({
    m.__name__: sorted({o.owner_unit.ref for o in m.objects.select_related("owner_unit")})
    for m in (DataElement, DataSet, Indicator, Target, ReportDefinition)
}))
"""


def test_metadata_made_before_owners_existed_is_the_nations(tmp_path, scratch_database):
    owners = run_on_scratch(SCRIPT, tmp_path, scratch_database)
    assert owners == {
        "DataElement": ["VN-2025:VN"],
        "DataSet": ["VN-2025:VN"],
        "Indicator": ["VN-2025:VN"],
        "Target": ["VN-2025:VN"],  # the city's target too: set by the nation, before owners existed
        "ReportDefinition": ["VN-2025:VN"],
    }
