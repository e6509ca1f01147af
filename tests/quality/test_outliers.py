"""Outliers on skewed and seasonal series, where plain min-max bounds (mean ± 2 SD) raise false alarms."""

from __future__ import annotations

from statistics import mean, stdev

import pytest

from dieuhanh.indicators.datavalues import import_values
from dieuhanh.indicators.periods import parse
from dieuhanh.indicators.quality import outliers
from dieuhanh.units.scoping import Area
from tests.factories import A, B, record
from tests.factories import quality_row as row

EVERYWHERE = Area(True, frozenset())

# A ward's monthly dossiers: right-skewed as counts are (log-normal: median 30, a long upper tail).
SKEWED_2022_2023 = [50, 37, 23, 19, 45, 41, 22, 36, 27, 25, 43, 35,
                    65, 28, 11, 31, 48, 21, 34, 81, 26, 15, 58, 20]  # fmt: skip
# 2024: two busy months from the same tail (78, 75) and one real error (a typo: 2700 for 27) in September.
SKEWED_2024 = [29, 14, 30, 24, 78, 30, 40, 18, 2700, 38, 23, 75]

# A ward's monthly households registered: flat, but every December five times busier (year's end).
SEASONAL = {2021: 10, 2022: 11, 2023: 10}


def months(year: int) -> list[str]:
    return [f"{year}{m:02d}" for m in range(1, 13)]


def store(element: str, values: dict[str, float], unit: str = A) -> None:
    import_values(
        [row(element, v, unit=unit, period=p) for p, v in values.items()], actor=None, area=EVERYWHERE
    )


def plain_min_max(history: list[float], values: list[float]) -> list[float]:
    """DHIS2-style bounds that assume normal data: mean ± 2 standard deviations of the history."""
    low, high = mean(history) - 2 * stdev(history), mean(history) + 2 * stdev(history)
    return [v for v in values if v < low or v > high]


@pytest.fixture
def skewed(world, services):
    store(
        "dossiers_received",
        dict(zip(months(2022) + months(2023) + months(2024), SKEWED_2022_2023 + SKEWED_2024, strict=True)),
    )


@pytest.fixture
def seasonal(world, services):
    values = {}
    for year in (2021, 2022, 2023, 2024):
        level = SEASONAL.get(year, 11)
        for m, pid in enumerate(months(year), start=1):
            values[pid] = level * 5 if m == 12 else level + (m % 3)
    values["202407"] = 60  # the real error: a July as busy as a December
    store("staff", values)


def judged(found) -> set[str]:
    return {o.period for o in found}


def test_plain_min_max_raises_false_alarms_on_the_skewed_series(skewed):
    alarms = plain_min_max(SKEWED_2022_2023, SKEWED_2024)
    assert alarms == [78, 2700, 75]  # two busy months flagged: false alarms


@pytest.mark.parametrize("algorithm", ["MOD_Z_SCORE", "MIN_MAX"])
def test_robust_methods_flag_only_the_real_error(world, skewed, algorithm):
    found, count = outliers.detect(
        ["dossiers_received"], [parse(p) for p in months(2024)], [world.commune_a], algorithm=algorithm
    )
    assert count == 12
    assert judged(found) == {"202409"}
    (error,) = found
    assert error.value == 2700 and error.score > outliers.DEFAULT_THRESHOLD
    assert 78 < error.upper < 2700  # the bounds leave the busy months in


def test_seasonal_keeps_december_and_flags_the_busy_july(world, seasonal):
    periods = [parse(p) for p in months(2024)]
    history = [10 + (m % 3) if m < 12 else 50 for m in range(1, 13)] * 2  # 2022–2023, Decembers in
    assert plain_min_max(history, [55]) == [55]  # plain bounds flag December 2024, as every December
    found, count = outliers.detect(["staff"], periods, [world.commune_a], algorithm="SEASONAL")
    assert count == 12
    assert judged(found) == {"202407"}
    (july,) = found
    assert july.middle == 11  # the median of July 2021–2023 (10 + 7 % 3 = 11, 12, 11)


def test_the_api_answers_outliers_inside_the_callers_area_only(world, skewed):
    store("dossiers_received", {"202409": 5000}, unit=B)
    client = world.operator_a.client()
    answer = client.get(
        "/api/v1/outliers",
        {"dx": "dossiers_received", "pe": ";".join(months(2024)), "ou": A, "algorithm": "MIN_MAX"},
    )
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert [(o["ou"], o["pe"], o["value"]) for o in body["outliers"]] == [(A, "202409", 2700)]
    assert body["outliers"][0]["upperBound"] < 2700
    outside = client.get("/api/v1/outliers", {"dx": "dossiers_received", "pe": "202409", "ou": B})
    assert outside.status_code == 404 and "trong phạm vi của bạn" in outside.json()["detail"]
    city = world.province_operator.client().get(
        "/api/v1/outliers",
        {"dx": "dossiers_received", "pe": "202409", "ou": "VN-2025:79;LEVEL-2", "history": 0},
    )
    assert city.status_code == 200  # too little history for B's single value: judged, not flagged
    bad = client.get("/api/v1/outliers", {"dx": "nothing", "pe": "202409", "ou": A})
    assert bad.status_code == 422


def test_a_whole_number_series_of_zeros_does_not_flag_small_counts(world, services):
    values = {p: 0 for p in months(2023)} | {"202305": 1, "202310": 2}
    values |= {"202401": 2, "202402": 0, "202403": 40}
    store("staff", values)
    found, _ = outliers.detect(
        ["staff"],
        [parse("202401"), parse("202402"), parse("202403")],
        [world.commune_a],
        algorithm="MOD_Z_SCORE",
    )
    assert judged(found) == {"202403"}


def test_the_entry_form_marks_an_outlier_and_the_summary_lists_a_warning(world, skewed):
    page = world.operator_a.browser().get(f"/entry/dvc_xa/?unit={A}&period=202409").content.decode()
    assert "⚠ Bất thường: 2.700" in page
    ordinary = world.operator_a.browser().get(f"/entry/dvc_xa/?unit={A}&period=202408").content.decode()
    assert "Bất thường" not in ordinary
    saved = world.operator_a.browser().post(f"/entry/dvc_xa/?unit={A}&period=202409", {"v:staff:": "0"})
    assert "vi phạm quy tắc kiểm tra &#x27;Có cán bộ một cửa&#x27;" in saved.content.decode()


def test_the_unit_page_flags_a_latest_figure_that_is_an_outlier(world, skewed):
    store("dossiers_received", {"202501": 5000})
    page = world.operator_a.browser().get("/units/VN-2025/26743/").content.decode()
    assert "⚠ Bất thường: 5.000" in page
    store("dossiers_received", {"202501": 31})
    page = world.operator_a.browser().get("/units/VN-2025/26743/").content.decode()
    assert "Bất thường" not in page


def test_the_room_flags_an_indicator_tile_whose_figure_is_an_outlier(world, skewed):
    store("dossiers_received", {"202501": 5000})
    room = world.operator_a.browser().get(f"/room/?unit={A}").content.decode()
    assert 'data-indicator="dossiers_received"' in room
    assert "⚠ Bất thường: 5.000" in room
    neighbour = world.operator_b.browser().get(f"/room/?unit={B}").content.decode()
    assert "Bất thường" not in neighbour


def test_outliers_read_the_warehouse_rollups(world, platform):
    counts = {1: 3, 2: 4, 3: 3, 4: 5, 5: 4, 6: 3, 7: 4, 8: 30}  # August: a cluster, or a double delivery
    records, n = [], 0
    for month, count in counts.items():
        for _ in range(count):
            records.append(
                record(
                    "test",
                    n,
                    commune="26743",
                    result="positive",
                    sampled_at=f"2021-{month:02d}-10T10:00:00+07:00",
                )
            )
            n += 1
    assert platform.send("test", records).json()["accepted"] == n
    answer = world.province_operator.client().get(
        "/api/v1/outliers", {"dx": "ev.test.positive", "pe": "202108", "ou": A, "history": 7}
    )
    assert answer.status_code == 200, answer.content
    (found,) = answer.json()["outliers"]
    assert (found["pe"], found["value"], found["median"]) == ("202108", 30, 4)


def test_the_matrix_way_and_the_unit_by_unit_way_find_the_same_outliers(world, services):
    """MOD_Z_SCORE judges stored series an element at a time (numpy, on PostgreSQL); _mod_z judges one
    unit's series (SQLite, and figures of analytics).
    On skewed, flat, zero-heavy, decimal and short series, with gaps, both give the same outliers with
    the same scores and bounds."""
    import random

    from dieuhanh.indicators.models import DataElement, DataValue
    from dieuhanh.indicators.quality import grid
    from dieuhanh.indicators.services import save_data_element
    from dieuhanh.units.models import Unit

    save_data_element(actor=None, code="hours", name="Giờ phục vụ", value_type="number")
    communes = list(Unit.objects.filter(edition_id="VN-2025", path__under="/VN/79/", kind="commune")[:30])
    elements = {e.code: e for e in DataElement.objects.all()}
    pick = random.Random(19)
    shapes = [
        lambda: round(pick.lognormvariate(3, 0.8)),  # skewed counts
        lambda: pick.choice([0, 0, 0, 0, 1, 2, 40]),  # mostly zeros
        lambda: 5,  # flat: MAD 0
        lambda: pick.choice([7.25, 7.5, 7.5, 7.5, 9.125, 30.5]),  # decimals, half equal
    ]
    rows = []
    for n, unit in enumerate(communes):
        shape = shapes[n % len(shapes)]
        for code in ("dossiers_received", "hours"):
            for pid in months(2023) + months(2024):
                if pick.random() < 0.85 - 0.4 * (n % 5 == 0):  # gaps; every fifth unit too short
                    rows.append(DataValue(element=elements[code], unit=unit, period=pid, value=shape()))
    DataValue.objects.bulk_create(rows)
    asked = [parse(p) for p in months(2024)]
    window = [parse(p) for p in months(2023) + months(2024)]
    found, judged, _rest = outliers.mod_z_stored(["dossiers_received", "hours"], communes, window, asked, 3.5)

    series, _rest = grid.series(["dossiers_received", "hours"], communes, window)
    by_unit, counted = [], 0
    for ref, whole in (("dossiers_received", True), ("hours", None)):
        for unit in communes:
            outs, n = outliers._mod_z(ref, unit, series[ref].get(unit.pk, {}), window, asked, 3.5, whole)
            by_unit += outs
            counted += n

    def seen(found):
        return sorted((o.dx, o.unit.pk, o.period, o.value, o.score, o.middle, o.lower, o.upper, o.history)
                      for o in found)  # fmt: skip

    assert seen(found) == seen(by_unit) and judged == counted
    assert len(found) > 10 and {o.dx for o in found} == {"dossiers_received", "hours"}
