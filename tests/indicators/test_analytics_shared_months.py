"""Monthly rollup rows shared between processes (issue 18, analytics.SharedMonths, indicators.MonthPack):
what one process read of a month is left in the database as a pack under the month's counters, and a
process that kept nothing takes it instead of summing the month's rollup rows again. A month written
since (its counter moved), an emptied rollup, or a transaction of the code's own never takes a pack; a
pack that cannot be written costs only the saving. PostgreSQL only: SQLite counts no months.

Expected figures are the test's own arithmetic on the rows it wrote."""

from __future__ import annotations

import json
import logging
import os
import struct
import subprocess
import sys
from datetime import date

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from dieuhanh.indicators import analytics
from dieuhanh.indicators.analytics import ANSWERS
from dieuhanh.indicators.models import MonthPack
from dieuhanh.indicators.periods import parse
from dieuhanh.units.models import Unit
from tests.factories import ensure_units
from tests.indicators.test_analytics_cache import add_rollup
from tests.indicators.test_analytics_kept_months import YOY, value

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="months are counted on PostgreSQL only"
)

PLAIN = analytics.Dimension("positives", "x", "ca", 0, analytics.f.parse("#{ev.test.positive}"), None)
PERIODS = ["202107", "202108"]
WRITTEN = [date(2021, 7, 1), date(2021, 8, 1), date(2020, 7, 1), date(2020, 8, 1)]


def communes() -> list[Unit]:
    return list(Unit.objects.filter(edition_id="VN-2025", kind="commune").order_by("path"))


def two_communes() -> tuple[Unit, Unit]:
    return Unit.objects.get(edition_id="VN-2025", code="26743"), Unit.objects.get(
        edition_id="VN-2025", code="26740"
    )


def write() -> tuple[Unit, Unit]:
    """Counts in two communes in July and August of 2021 and of 2020 (their cùng kỳ)."""
    a, b = two_communes()
    for unit, month, n in ((a, WRITTEN[0], 6), (a, WRITTEN[2], 3), (b, WRITTEN[1], 5), (b, WRITTEN[3], 10)):
        add_rollup(unit, month, n)
    return a, b


def ask(dims: list | None = None) -> list[dict]:
    return analytics.rows(dims or [PLAIN, YOY], [parse(p) for p in PERIODS], communes())


def as_new_process() -> None:
    """What a process that has kept nothing starts from: no answer and no month in memory."""
    ANSWERS.clear()


def packs() -> dict[date, tuple[int, bytes]]:
    return {
        p.month: (p.version, bytes(p.packed))
        for p in MonthPack.objects.filter(kind="test", dims='["positive"]')
    }


def counter(month: date) -> int:
    return analytics.versions.areas(frozenset({"test"}))[analytics.versions.month_source("test", month)]


@pytest.mark.django_db
def test_a_process_that_kept_nothing_takes_every_month_another_read_and_answers_the_same():
    a, b = write()
    as_new_process()
    first = ask()
    # Each month written has its pack under its counter; 2019 (yoy's cùng kỳ) was never written: none.
    made = packs()
    assert sorted(made) == sorted(WRITTEN)
    assert {m: v for m, (v, _) in made.items()} == {m: counter(m) for m in WRITTEN}
    assert struct.unpack(">qq", made[date(2021, 7, 1)][1]) == (a.pk, 6)

    as_new_process()
    taken = ANSWERS.months.shared
    with CaptureQueriesContext(connection) as queries:
        again = ask()
    assert again == first
    assert ANSWERS.months.shared - taken == 4
    assert not [q for q in queries.captured_queries if "INSERT INTO" in q["sql"]]  # nothing made anew
    assert value(again, "positives", a, "202107") == 6
    assert value(again, "yoy", b, "202108") == -50  # (5 - 10) / 10


def packs_made_and_july_changed_by_hand(a: Unit) -> date:
    """The packs of an answer made, then July's changed by hand under the same counter: 99 in `a`."""
    as_new_process()
    ask()
    july = date(2021, 7, 1)
    MonthPack.objects.filter(kind="test", month=july).update(packed=struct.pack(">qq", a.pk, 99))
    return july


@pytest.mark.django_db
def test_the_pack_is_what_is_read_until_its_month_is_written_again():
    a, _ = write()
    july = packs_made_and_july_changed_by_hand(a)
    # Taken as it is: the rows are not summed again.
    as_new_process()
    assert value(ask(), "positives", a, "202107") == 99

    add_rollup(a, july, 1)  # July written: its counter moves, its pack is passed over and made again
    as_new_process()
    found = ask()
    assert value(found, "positives", a, "202107") == 7
    assert packs()[july] == (counter(july), struct.pack(">qq", a.pk, 7))
    as_new_process()
    assert ask() == found


@pytest.mark.django_db
def test_a_patch_by_month_after_a_write_over_the_country_makes_no_pack():
    a, _ = write()
    as_new_process()
    ask()
    before = packs()
    # One commune in each of 20 provinces (more areas than a patch by area takes): a patch by July.
    provinces = Unit.objects.filter(edition_id="VN-2025", kind="province").order_by("path")[:20]
    written = [
        Unit.objects.filter(path__startswith=province.path, kind="commune").order_by("path").first()
        for province in provinces
    ]
    for commune in written:
        add_rollup(commune, WRITTEN[0], 1)
    patched = ANSWERS.month_patches
    with CaptureQueriesContext(connection) as queries:
        found = ask()
    assert ANSWERS.month_patches == patched + 1
    assert value(found, "positives", written[0], "202107") == 1 + (written[0] == a) * 6
    assert value(found, "positives", a, "202107") == 6 + (a in written)
    # July was just written: a pack of it would be stale at the next batch, so none is made.
    assert packs() == before
    assert not [q for q in queries.captured_queries if "indicators_monthpack" in q["sql"]]


@pytest.mark.django_db
def test_an_emptied_rollup_takes_no_pack():
    write()
    as_new_process()
    assert ask() != []
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE warehouse_rollupmonth")  # no rows to name their months: `*` moves
    assert len(packs()) == 4
    as_new_process()
    assert ask() == []


@pytest.mark.django_db
def test_a_transaction_of_its_own_neither_takes_nor_makes_a_pack():
    a, _ = write()
    packs_made_and_july_changed_by_hand(a)
    before = packs()
    with transaction.atomic():
        add_rollup(a, date(2021, 6, 1), 2)
        as_new_process()
        inside = analytics.rows([PLAIN], [parse("202106"), parse("202107")], communes())
        assert value(inside, "positives", a, "202107") == 6  # summed: the pack is not the transaction's
        assert value(inside, "positives", a, "202106") == 2
        assert packs() == before  # none made under counters it may roll back
        transaction.set_rollback(True)


@pytest.mark.django_db
def test_a_pack_is_the_count_s_own_and_never_goes_back_to_older_counters():
    a, _ = write()
    add_rollup(a, date(2021, 7, 1), 1)
    with connection.cursor() as cursor:  # the same kind's negatives: another count, other packs
        cursor.execute(
            "INSERT INTO warehouse_rollupmonth (commune_id, month, kind, dim1, dim2, count)"
            " VALUES (%s, '2021-07-01', 'test', 'negative', 'pcr', 40)",
            [a.pk],
        )
    negatives = analytics.Dimension("negatives", "x", "ca", 0, analytics.f.parse("#{ev.test.negative}"), None)
    as_new_process()
    assert value(ask([PLAIN]), "positives", a, "202107") == 7
    as_new_process()
    assert value(ask([negatives]), "negatives", a, "202107") == 40
    as_new_process()
    assert value(ask([PLAIN]), "positives", a, "202107") == 7  # its own pack, not the negatives'
    july = date(2021, 7, 1)
    kept = packs()[july]
    older = analytics.SharedMonths("test", '["positive"]', {july: kept[0] - 1}, None)
    older.made = [(july, kept[0] - 1, struct.pack(">qq", a.pk, 1))]
    older.share("default")  # a slower process that read the month before the last write
    assert packs()[july] == kept
    on_replica = analytics.SharedMonths("test", '["positive"]', {july: kept[0] + 1}, None)
    on_replica.made = [(july, kept[0] + 1, struct.pack(">qq", a.pk, 1))]
    on_replica.share("replica")  # a replica's reads make no pack: the primary's are replayed there
    assert packs()[july] == kept


@pytest.mark.django_db
def test_a_pack_that_cannot_be_written_costs_the_saving_and_nothing_else(caplog):
    a, b = write()
    with connection.cursor() as cursor:  # the server refuses every pack
        cursor.execute("ALTER TABLE indicators_monthpack ADD CONSTRAINT refused CHECK (false) NOT VALID")
    as_new_process()
    with caplog.at_level(logging.WARNING, logger="dieuhanh.indicators.analytics"):
        found = ask()
    assert value(found, "positives", a, "202107") == 6 and value(found, "yoy", b, "202108") == -50
    assert "not shared" in caplog.text
    assert not MonthPack.objects.exists()
    as_new_process()
    assert ask() == found  # the connection and the test's transaction are still usable


# Another process, as a second worker of the room: it keeps nothing of this one's, and answers the same
# question from the packs this process left (argv[1]: the periods).
OTHER = """
import json, sys
import django
django.setup()
from dieuhanh.indicators import analytics
from dieuhanh.indicators.analytics import ANSWERS
from dieuhanh.indicators.periods import parse
from dieuhanh.units.models import Unit
from dieuhanh.indicators import formula as f
dims = [analytics.Dimension("positives", "x", "ca", 0, f.parse("#{ev.test.positive}"), None)]
units = list(Unit.objects.filter(edition_id="VN-2025", kind="commune").order_by("path"))
found = analytics.rows(dims, [parse(p) for p in sys.argv[1].split(";")], units)
print(json.dumps({"shared": ANSWERS.months.shared, "read": ANSWERS.months.read_months, "rows": found}))
"""


@pytest.mark.django_db(transaction=True)
def test_a_second_process_answers_from_the_months_the_first_one_read():
    ensure_units()  # a transactional test's flush removes them
    a, b = write()
    as_new_process()
    here = analytics.rows([PLAIN], [parse(p) for p in PERIODS], communes())
    database = connection.settings_dict
    env = os.environ | {
        "DJANGO_SETTINGS_MODULE": "dieuhanh.settings",
        "DIEUHANH_DATABASE_URL": (
            f"postgresql://{database['USER']}@{database['HOST'] or '127.0.0.1'}:{database['PORT'] or 5432}"
            f"/{database['NAME']}"
        ),
    }
    done = subprocess.run(
        [sys.executable, "-c", OTHER, ";".join(PERIODS)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    other = json.loads(done.stdout.strip().splitlines()[-1])
    assert (other["shared"], other["read"]) == (4, 4)  # both months and their cùng kỳ, all from packs
    assert other["rows"] == json.loads(json.dumps(here))
    assert value(other["rows"], "positives", a, "202107") == 6
    assert value(other["rows"], "positives", b, "202108") == 5
