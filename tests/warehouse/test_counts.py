"""Counts come from rollups, at any level of either map, and equal a recount of the raw events."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dieuhanh.units.models import Unit
from dieuhanh.warehouse.ingest import Pipeline, local_day
from dieuhanh.warehouse.models import Rollup
from dieuhanh.warehouse.models import TestResult as LabTest
from dieuhanh.warehouse.services import CountQuery, counts, create_source
from tests.factories import Platform, record


def _counts(unit: str, by="none", kind="test", **dims):
    from datetime import date

    return counts(CountQuery(kind, Unit.objects.ref(unit), date(2021, 1, 1), date(2021, 12, 31), by, dims))


def test_old_map_figures_count_on_the_new_map_by_succession_weights(world):
    source, token = create_source(actor=None, name="lab-2021", kinds=["test"], edition="VN-2021")
    old = Platform(source, token)
    # Cầu Ông Lãnh (old District 1) was divided between new wards; Bến Thành (old) merged whole.
    batch = [record("test", i, commune="26752") for i in range(10)] + [record("test", 99, commune="26743")]
    assert old.send("test", batch).json()["accepted"] == 11
    new_ben_thanh = _counts("VN-2025:26743")["total"]
    share = Unit.objects.ref("VN-2021:26752").successions.get(new__code="26743").weight
    assert abs(new_ben_thanh - (1 + 10 * share)) < 0.01
    assert _counts("VN-2025:79")["total"] == 11  # the whole city: nothing lost, nothing added
    assert _counts("VN-2025:VN")["total"] == 11
    assert _counts("VN-2021:760")["total"] == 11  # Quận 1 on the old map, exactly


def test_new_map_figures_count_on_the_old_map(platform, world):
    platform.send("test", [record("test", i) for i in range(4)])  # Bến Thành, 2025 map
    assert _counts("VN-2021:79")["total"] == 4
    by_unit = _counts("VN-2021:760", by="unit")
    assert abs(sum(r["count"] for r in by_unit["rows"]) - 4) < 0.05
    assert {r["unit"] for r in by_unit["rows"]} <= {
        f"VN-2021:{c}" for c in ("26743", "26749", "26752", "26746")
    }


def test_by_unit_at_the_nation_gives_provinces(platform, venues):
    platform.send("test", [record("test", 1), record("test", 2, commune="VN-2025:00004")])  # HCMC, Hà Nội
    rows = _counts("VN-2025:VN", by="unit")["rows"]
    assert {r["unit"]: r["count"] for r in rows} == {"VN-2025:79": 1, "VN-2025:01": 1}


def _recount() -> Counter:
    recount: Counter = Counter()
    for commune_id, at, result, method in LabTest.objects.values_list("commune_id", "at", "result", "method"):
        recount[(commune_id, local_day(at), result, method)] += 1
    return recount


def _rollups() -> Counter:
    return Counter(
        {
            (c, d, r, m): n
            for c, d, r, m, n in Rollup.objects.filter(kind="test").values_list(
                "commune_id", "day", "dim1", "dim2", "count"
            )
        }
    )


events = st.lists(
    st.tuples(
        st.integers(0, 30),
        st.sampled_from(["26743", "26740", "00004"]),
        st.integers(0, 96),
        st.sampled_from(["positive", "negative", "invalid"]),
        st.sampled_from(["pcr", "rapid"]),
    ),
    max_size=40,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(events, min_size=1, max_size=4))
def test_rollups_equal_a_recount_of_the_raw_events(platform, batches):
    """Whatever the batches, duplicates and hours around midnight, rollups = a recount of raw events."""
    with transaction.atomic():
        pipeline = Pipeline(platform.source, "test")
        for batch in batches:
            lines = []
            for i, (seid, commune, quarter_hours, result, method) in enumerate(batch, start=1):
                at = platform.source.created_at.replace(
                    year=2021, month=8, day=25, hour=12, minute=0
                ) + timedelta(minutes=15 * quarter_hours)
                lines.append(
                    (
                        i,
                        record(
                            "test",
                            seid,
                            commune=commune,
                            result=result,
                            method=method,
                            sampled_at=at.isoformat(),
                        ),
                    )
                )
            pipeline.ingest(lines)
        assert _rollups() == _recount()
        assert LabTest.objects.count() == len({e[0] for b in batches for e in b})
        transaction.set_rollback(True)
