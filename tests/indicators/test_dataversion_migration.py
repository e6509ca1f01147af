"""The migration that widens the data versions' source (a month's counter, `kind#YYYYMM`) runs on a
database in use: migrated to the step before it, its version triggers installed on every watched
table (as every `migrate` leaves them), then migrated forward. Run in a process of its own on a database
of its own (SQLite, or a scratch PostgreSQL database on the PostgreSQL pass)."""

from __future__ import annotations

from dieuhanh.indicators import versions
from tests.factories import run_on_scratch

SCRIPT = r"""
import json
from datetime import date

import django

django.setup()
from django.core.management import call_command
from django.db import connection

from dieuhanh.indicators import versions

call_command("migrate", verbosity=0)
call_command("migrate", "indicators", "0004_dataversion", verbosity=0)  # back, the triggers in place
versions.install()
assert versions.installed(), "no trigger to be in the way"
call_command("migrate", verbosity=0)
with connection.cursor() as cursor:  # a write through every trigger, then a month's counter
    cursor.execute(
        "INSERT INTO warehouse_rollupmonth (commune_id, month, kind, dim1, dim2, count)"
        " VALUES (1, %s, 'longest_kind', '', '', 1)", [date(2026, 12, 1)])  # 12, a kind's most
    cursor.execute("SELECT source FROM indicators_dataversion ORDER BY source")
    sources = sorted({row[0] for row in cursor.fetchall()})
print(json.dumps({"installed": sorted(versions.installed()), "sources": sources}))
"""


def test_the_widened_source_migrates_a_database_whose_triggers_are_installed(tmp_path, scratch_database):
    found = run_on_scratch(SCRIPT, tmp_path, scratch_database)
    assert found["installed"] == sorted({t for tables in versions.WATCHED.values() for t in tables})
    assert "events" in found["sources"]
    if scratch_database.startswith("postgresql"):  # the month's counter: 19 characters, past the old 16
        assert "longest_kind#202612" in found["sources"]
