"""The room's charts' data (room/charts/NAME.json and .csv) and the wall (/wall/): what they show, their
CSV's safety, and the caller's area (404 outside it, as the room answers)."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.utils import timezone

from dieuhanh.commandroom import room
from dieuhanh.indicators import analytics
from dieuhanh.indicators import services as indicators
from dieuhanh.vnformat import VN_TZ
from tests.factories import HCM, TAY_NINH, element, positives, store


@pytest.fixture
def figures(world, platform):
    """Bến Thành: 4 positives and 3 negatives today, 1 positive 3 days ago, 2 positives a year ago."""
    now = timezone.now().astimezone(VN_TZ).replace(microsecond=0)
    positives(platform, "26743", 4, now)
    positives(platform, "26743", 3, now, prefix="n", result="negative")
    positives(platform, "26743", 1, now - timedelta(days=3), prefix="before")
    positives(platform, "26743", 2, now - timedelta(days=365), prefix="last-year")
    return now


def chart(client, name: str, **params):
    response = client.get(f"/room/charts/{name}.json", params)
    assert response.status_code == 200, response.content
    return response.json()


def test_the_epidemic_curve_counts_tests_and_positives_with_their_7_day_average(world, leaders, figures):
    curve = chart(leaders[0].browser(), "curve")
    assert [c["key"] for c in curve["columns"]] == ["day", "test", "positive", "test_avg", "positive_avg"]
    assert [c["label"] for c in curve["columns"]][:3] == ["Ngày", "Mẫu xét nghiệm", "Ca dương tính"]
    assert len(curve["rows"]) == 60 and len(curve["text"]) == 60
    today = figures.date()
    last = curve["rows"][-1]
    assert last[:3] == [today.isoformat(), 7, 4]  # every test, and its positives
    assert last[3:] == [round(8 / 7, 1), round(5 / 7, 1)]  # the 7 days to today: 8 tests, 5 positives
    assert curve["text"][-1] == [f"{today.day}/{today.month}/{today.year}", "7", "4", "1,1", "0,7"]
    three_days_ago = curve["rows"][-4]
    assert three_days_ago[1:3] == [1, 1]
    # The neighbouring province's curve has none of it.
    theirs = chart(leaders[1].browser(), "curve")
    assert sum(r[2] for r in theirs["rows"]) == 0


def test_the_curve_skips_the_year_before_and_counts_the_same(world, figures):
    # The curve reads its 66 days without cùng kỳ (analytics.rows(last_year=False): half the work);
    # the counts are those the tiles read with it.
    day = figures.date()
    periods = room.days_to(day, 3)
    dims = [analytics.dimension("ev.test.positive")]
    with_it = analytics.rows(dims, periods, [world.province], empty=True)
    without = analytics.rows(dims, periods, [world.province], empty=True, last_year=False)
    assert [r["value"] for r in without] == [r["value"] for r in with_it] == [None, None, 4]
    assert {r["same_period_last_year"] for r in without} == {None}
    assert with_it[-1]["same_period_last_year"] == 2


def test_the_ranking_takes_the_maps_week_highest_and_lowest(world, leaders, figures):
    rank = chart(leaders[0].browser(), "rank", figure="positive")
    top = [r for r in rank["rows"] if r[0] == "Cao nhất"]
    bottom = [r for r in rank["rows"] if r[0] == "Thấp nhất"]
    assert len(top) == 10 and len(bottom) == 10
    assert top[0][1:] == [1, "Phường Bến Thành", 5]  # 4 today and 1 three days ago
    assert all(r[3] == 0 for r in bottom)
    assert bottom[0][1] == 168  # the lowest of the city's 168 communes
    assert not {r[2] for r in top} & {r[2] for r in bottom}
    assert rank["refs"][0] == world.commune_a.ref
    # The nation ranks its provinces.
    national = chart(world.leader.browser(), "rank", figure="positive")
    assert national["rows"][0][2] == "Thành phố Hồ Chí Minh" and national["rows"][0][3] == 5


def test_the_series_sets_each_month_beside_the_same_month_last_year(world, leaders, figures):
    series = chart(leaders[0].browser(), "series")
    assert series["choice"] == "positive"  # no indicator yet: the room's first figure, by month
    assert {c["code"] for c in series["choices"]} >= {"positive", "test", "report"}
    assert len(series["rows"]) == 12
    period, value, last_year, _change = series["rows"][-1]
    this_month = figures.strftime("%Y%m")
    assert period == f"tháng {figures.month}/{figures.year}"
    # 4 today, and 1 three days ago if that was this month; 2 a year ago if 365 days back is this month.
    before = figures - timedelta(days=3)
    assert value == 4 + (before.strftime("%Y%m") == this_month)
    a_year_ago = figures - timedelta(days=365)
    assert last_year == (2 if a_year_ago.month == figures.month else 0)
    tests = chart(leaders[0].browser(), "series", dx="test")
    assert tests["choice"] == "test" and tests["rows"][-1][1] >= 7


@pytest.fixture
def target(world):
    element("dvc4")
    indicators.save_indicator(
        actor=None, code="dvc4_pct", name="=Tỷ lệ DVC mức 4", formula="#{dvc4}", unit="%"
    )
    store("dvc4", [("VN-2025:79", "202108", 45)])
    indicators.save_target(actor=None, indicator="dvc4_pct", unit=world.province, period="2021", value=60)


def test_targets_as_bullets_and_the_indicator_series(world, leaders, target):
    bullets = chart(leaders[0].browser(), "targets")
    # At the period of its target (the year): 45 of 60.
    assert bullets["rows"] == [["=Tỷ lệ DVC mức 4", "năm 2021", 45, 60, 75.0]]
    assert bullets["text"] == [["=Tỷ lệ DVC mức 4", "năm 2021", "45", "60", "75"]]
    series = chart(leaders[0].browser(), "series")
    assert series["choice"] == "dvc4_pct"
    assert series["rows"][-1][:2] == ["năm 2021", 45]
    assert series["rows"][0][0] == "năm 2010"


def test_the_csv_keeps_text_out_of_formulas_and_numbers_as_numbers(world, leaders, target):
    response = leaders[0].browser().get("/room/charts/targets.csv", {"unit": HCM})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="bieu-do-targets-VN-2025-79.csv"'
    assert response.content.startswith(b"\xef\xbb\xbf")  # the BOM: Excel reads UTF-8
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0] == ["Chỉ tiêu", "Kỳ", "Giá trị", "Kế hoạch", "Tỷ lệ đạt kế hoạch (%)"]
    assert rows[1] == ["'=Tỷ lệ DVC mức 4", "năm 2021", "45", "60.0", "75.0"]


def test_charts_and_the_wall_stay_inside_the_callers_area(world, leaders, figures):
    hcm, tay_ninh = leaders
    for who, other in [(hcm, TAY_NINH), (tay_ninh, HCM)]:
        for path in [
            *(f"/room/charts/{n}.json" for n in ("curve", "series", "rank", "targets")),
            "/room/charts/curve.csv",
            "/wall/",
            "/wall/parts",
            "/wall/views.json",
        ]:
            response = who.browser().get(path, {"unit": other})
            assert response.status_code == 404, (who.user, path)
            assert b"26743" not in response.content and "Bến Thành" not in response.content.decode()
    # A ward's operator: its own ward, never the neighbour's.
    own = world.operator_a.browser()
    assert own.get("/room/charts/curve.json", {"unit": world.commune_a.ref}).status_code == 200
    assert own.get("/room/charts/curve.json", {"unit": world.commune_b.ref}).status_code == 404
    assert own.get("/room/charts/curve.csv", {"unit": world.commune_b.ref}).status_code == 404
    assert hcm.browser().get("/room/charts/pie.json").status_code == 404
    anonymous = world.leader.browser()
    anonymous.logout()
    assert anonymous.get("/room/charts/curve.json").status_code == 302  # to the login page
    assert anonymous.get("/wall/").status_code == 302


def test_the_wall_turns_from_the_city_to_its_wards_over_threshold(world, leaders, figures, settings):
    hcm = leaders[0].browser()
    page = hcm.get("/wall/", HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9")
    assert page.status_code == 200
    html = page.content.decode()
    assert '<html lang="vi" class="wall">' in html  # Vietnamese whatever the browser asks
    assert "<script>" not in html and " style=" not in html  # the CSP: no inline script or style
    config = page.context["config"]
    assert config["seconds"] == settings.WALL_ROTATE_SECONDS
    assert [v["ref"] for v in config["views"]] == [HCM, world.commune_a.ref]
    assert config["views"][1]["reason"] == "Ca dương tính 4 (ngưỡng 0,2)"
    assert 'data-figure="positive"' in html and "Vượt ngưỡng" not in html.split("wall-tiles")[0]
    assert hcm.get("/wall/", {"seconds": "7"}).context["config"]["seconds"] == 7
    assert hcm.get("/wall/", {"seconds": "1"}).context["config"]["seconds"] == 5
    settings.WALL_MAX_VIEWS = 0
    assert [v["ref"] for v in hcm.get("/wall/views.json").json()["views"]] == [HCM]
    parts = hcm.get("/wall/parts", {"unit": world.commune_a.ref}).json()
    assert set(parts) == {"tiles", "alerts", "directives"}
    assert '<span class="value">4</span>' in parts["tiles"]
    # The room has a button to it.
    assert f'href="/wall/?unit={HCM}"' in hcm.get("/room/").content.decode()
