"""Analytics as a user reads it: GET /api/v1/analytics over data values and event rollups.

Every expected figure is computed here from the data the test wrote (and, across maps, from the
Succession rows), never by calling the code under test.
"""

from __future__ import annotations

import json
from collections import defaultdict

import pytest

from dieuhanh.indicators import services
from dieuhanh.units.models import Succession, Unit
from dieuhanh.units.scoping import Area
from tests.factories import Caller, element, ict_catalogue, record, store

EVERYWHERE = Area(True, frozenset())
A, B = "VN-2025:26743", "VN-2025:26740"  # Bến Thành, Sài Gòn (the world's two wards)
HCMC, HANOI, NATION = "VN-2025:79", "VN-2025:01", "VN-2025:VN"
ROUNDING = 0.005  # an element's row is rounded to 2 decimals


# Helpers


def indicator(code: str, formula: str, *, unit: str = "", decimals: int = 2) -> None:
    services.save_indicator(
        actor=None, code=code, name=f"Chỉ số {code}", formula=formula, unit=unit, decimals=decimals
    )


def ask(caller: Caller, dx: str, pe: str, ou: str, **more):
    return caller.client().get("/api/v1/analytics", {"dx": dx, "pe": pe, "ou": ou, **more})


def table(caller: Caller, dx: str, pe: str, ou: str, **more) -> dict[tuple[str, str, str], dict]:
    """The rows of a successful answer by (dx, pe, ou)."""
    response = ask(caller, dx, pe, ou, **more)
    assert response.status_code == 200, response.content
    rows = response.json()["rows"]
    found = {(r["dx"], r["pe"], r["ou"]): r for r in rows}
    assert len(found) == len(rows), "one row per dx × pe × ou"
    return found


def values_by_unit(rows: dict[tuple[str, str, str], dict]) -> dict[str, float]:
    return {ou: r["value"] for (_, _, ou), r in rows.items()}


def problem(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    return response.json()


def leaves_under(ref: str) -> list[Unit]:
    return list(Unit.objects.under(Unit.objects.ref(ref)).leaves().order_by("path"))


def smallest_merged_old_province() -> Unit:
    """An old province that merged in 2025: its new province has two or more old predecessors."""
    merged = [
        s.old
        for s in Succession.objects.filter(old__edition_id="VN-2021", old__kind="province").select_related(
            "old", "new"
        )
        if s.new.precessions.count() >= 2
    ]
    assert merged, "the 2025 map merged provinces"
    return min(merged, key=lambda u: Unit.objects.under(u).leaves().count())


# 1. Both maps, sum: totals conserved


@pytest.mark.parametrize("which", ["smallest", "VN-2021:77"])  # 77, Bà Rịa - Vũng Tàu, has island Côn Đảo
def test_an_old_provinces_communes_add_up_on_the_new_map(world, which):
    old = smallest_merged_old_province() if which == "smallest" else Unit.objects.ref(which)
    (merge,) = old.successions.select_related("new")
    assert merge.weight == 1 and merge.new.precessions.count() >= 2
    new = merge.new
    element("households")
    leaves = leaves_under(old.ref)
    values = {u.pk: u.pk % 97 + 1 for u in leaves}
    store("households", [(u.ref, "202108", values[u.pk]) for u in leaves], edition="VN-2021")
    total = sum(values.values())

    (row,) = table(world.leader, "households", "202108", new.ref).values()
    assert row["ou"] == new.ref and row["ou_name"] == new.name
    assert row["value"] == pytest.approx(total, abs=1e-6)
    assert row["carried"] is True

    communes = table(world.leader, "households", "202108", f"{new.ref};LEVEL-2")
    successors = set(
        Succession.objects.filter(old__in=leaves).values_list("new__edition_id", "new__code").distinct()
    )
    assert {ou for _, _, ou in communes} == {f"{e}:{c}" for e, c in successors}
    assert all(r["carried"] for r in communes.values())
    assert sum(values_by_unit(communes).values()) == pytest.approx(total, abs=ROUNDING * len(communes))


def test_new_communes_add_up_on_the_old_map(world):
    element("households")
    leaves = leaves_under(HCMC)  # the new city: old HCMC, Bình Dương and Bà Rịa - Vũng Tàu
    values = {u.pk: u.pk % 97 + 1 for u in leaves}
    store("households", [(u.ref, "202108", values[u.pk]) for u in leaves])
    total = sum(values.values())

    # Independently: each new commune's value goes to its old communes in proportion to the weights.
    links: dict[int, list[tuple[str, float]]] = defaultdict(list)
    for new_id, old_path, weight in Succession.objects.filter(new__in=leaves).values_list(
        "new_id", "old__path", "weight"
    ):
        links[new_id].append((old_path, weight))
    old_hcmc = Unit.objects.ref("VN-2021:79")
    in_old_hcmc = sum(
        values[new_id] * sum(w for p, w in olds if p.startswith(old_hcmc.path)) / sum(w for _, w in olds)
        for new_id, olds in links.items()
    )
    assert 0 < in_old_hcmc < total

    old_provinces = table(
        world.leader, "households", "202108", "VN-2021:74;VN-2021:77;VN-2021:79", edition="VN-2021"
    )
    assert set(values_by_unit(old_provinces)) == {"VN-2021:74", "VN-2021:77", "VN-2021:79"}
    assert all(r["carried"] for r in old_provinces.values())
    assert sum(values_by_unit(old_provinces).values()) == pytest.approx(total, abs=3 * ROUNDING)
    assert values_by_unit(old_provinces)["VN-2021:79"] == pytest.approx(in_old_hcmc, abs=ROUNDING)

    districts = table(world.leader, "households", "202108", "VN-2021:79;LEVEL-2", edition="VN-2021")
    assert districts and all(ou.startswith("VN-2021:") for _, _, ou in districts)
    assert all(r["carried"] for r in districts.values())
    assert sum(values_by_unit(districts).values()) == pytest.approx(
        in_old_hcmc, abs=ROUNDING * (len(districts) + 1)
    )

    (nation,) = table(world.leader, "households", "202108", "VN-2021:VN", edition="VN-2021").values()
    assert nation["value"] == pytest.approx(total, abs=ROUNDING)


# 2. Average, last and none


def test_an_average_element_gives_the_mean_over_communes_and_months(world):
    element("coverage", "average")
    store("coverage", [(A, "202107", 70), (A, "202108", 80), (B, "202108", 90)])
    by_month = table(world.leader, "coverage", "202108", f"{HCMC};{NATION}")
    assert values_by_unit(by_month) == {HCMC: 85, NATION: 85}
    (quarter,) = table(world.leader, "coverage", "2021Q3", A).values()
    assert quarter["value"] == 75  # the mean of July and August


def test_a_last_element_gives_the_latest_month_stored(world):
    element("subscribers", "last")
    store("subscribers", [(A, "202107", 100), (A, "202108", 120), (B, "202107", 50)])
    quarter = table(world.leader, "subscribers", "2021Q3", f"{A};{B};{HCMC}")
    # Each ward its latest month (no September stored); the city the sum of those.
    assert values_by_unit(quarter) == {A: 120, B: 50, HCMC: 170}


def test_a_none_element_is_not_added_up(world):
    element("rank", "none")
    store("rank", [(A, "202108", 3), (B, "202108", 7)])
    assert values_by_unit(table(world.leader, "rank", "202108", f"{A};{HCMC}")) == {A: 3}
    with_empty = table(world.leader, "rank", "202108", f"{A};{HCMC}", empty="true")
    assert values_by_unit(with_empty) == {A: 3, HCMC: None}


# 3. A unit's own value stands for its subtree


def test_a_provinces_own_value_stands_for_its_communes(world):
    element("revenue")
    store("revenue", [(HCMC, "202108", 1000), (A, "202108", 10), (B, "202108", 20), (HANOI, "202108", 500)])
    found = values_by_unit(table(world.leader, "revenue", "202108", f"{NATION};{HCMC};{A};{B}"))
    assert found == {NATION: 1000 + 500, HCMC: 1000, A: 10, B: 20}


# 4. Year-to-date, quarters, last year, estimates


def test_year_to_date_quarter_and_same_period_last_year(world):
    element("revenue")
    this_year = {m: 10 * m + 1 for m in range(1, 9)}  # January to August 2021; no September
    last_year = {m: 8 * m for m in range(1, 10)}  # January to September 2020
    store(
        "revenue",
        [(A, f"2021{m:02d}", v, "estimate" if m == 3 else "final") for m, v in this_year.items()]
        + [(A, f"2020{m:02d}", v) for m, v in last_year.items()],
    )
    rows = table(world.leader, "revenue", "2021YTD08;2021Q3;202108", f"{A};{HCMC}")

    ytd = sum(this_year.values())
    ytd_before = sum(last_year[m] for m in range(1, 9))
    for ou in (A, HCMC):
        row = rows[("revenue", "2021YTD08", ou)]
        assert row["value"] == ytd
        assert row["same_period_last_year"] == ytd_before
        assert row["change_pct"] == round((ytd - ytd_before) / ytd_before * 100, 2)
        assert row["status"] == "estimate"  # March is an estimate
        assert row["pe_label"] == "8 tháng đầu năm 2021"

        quarter = rows[("revenue", "2021Q3", ou)]
        assert quarter["value"] == this_year[7] + this_year[8]
        assert quarter["same_period_last_year"] == last_year[7] + last_year[8] + last_year[9]
        assert quarter["status"] == "final"
        assert quarter["pe_label"] == "quý III/2021"

        august = rows[("revenue", "202108", ou)]
        assert (august["value"], august["same_period_last_year"]) == (this_year[8], last_year[8])
        assert august["change_pct"] == round((this_year[8] - last_year[8]) / last_year[8] * 100, 2)
        assert august["carried"] is False


# 5. The seeds


SEED_PERCENTAGES = [  # (element, period, the percentage the seed report states)
    ("postal_revenue", "2021YTD08", 10),
    ("postal_volume", "2021YTD08", 15),
    ("telecom_revenue", "2021YTD07", 3.46),
    ("phone_subscribers", "202107", -0.81),
    ("cyber_attacks_incidents", "2021YTD08", 25.82),
    ("ict_revenue", "2021YTD08", 15.7),
]


@pytest.fixture
def ict(world):
    ict_catalogue()
    return world


def _seed_rows(caller: Caller, ou: str, **more) -> dict[tuple[str, str, str], dict]:
    dx = ";".join(code for code, _, _ in SEED_PERCENTAGES)
    dx += ";" + ";".join(f"{code}_yoy" for code, _, _ in SEED_PERCENTAGES)
    return table(caller, dx, "2021YTD08;2021YTD07;202107", ou, **more)


def test_the_seeds_give_the_reports_percentages(ict):
    rows = _seed_rows(ict.leader, NATION)
    for code, period, percent in SEED_PERCENTAGES:
        row = rows[(code, period, NATION)]
        assert row["change_pct"] == pytest.approx(percent, abs=0.005), code
        assert row["ou_name"] == "Việt Nam"
        assert row["carried"] is False
        assert rows[(f"{code}_yoy", period, NATION)]["value"] == pytest.approx(percent, abs=0.005), code
    assert rows[("postal_revenue", "2021YTD08", NATION)]["status"] == "estimate"
    assert rows[("postal_revenue_yoy", "2021YTD08", NATION)]["status"] == "estimate"
    assert rows[("telecom_revenue", "2021YTD07", NATION)]["status"] == "final"
    assert rows[("postal_revenue", "2021YTD08", NATION)]["pe_label"] == "8 tháng đầu năm 2021"
    assert rows[("postal_revenue", "2021YTD08", NATION)]["value"] == 24500


def test_the_seeds_read_the_same_on_the_old_map(ict):
    new = _seed_rows(ict.leader, NATION)
    old = _seed_rows(ict.leader, "VN-2021:VN", edition="VN-2021")
    assert len(old) == len(new)
    for (dx, pe, _), row in new.items():
        carried = old[(dx, pe, "VN-2021:VN")]
        for name in ("value", "same_period_last_year", "change_pct", "status", "pe_label", "ou_name"):
            assert carried[name] == row[name], (dx, pe, name)
        assert carried["carried"] is True


# 6. Formulas


@pytest.fixture
def figures(world):
    """Two elements in the two wards in August 2021: a (30, 10) and b (60, 40)."""
    element("a")
    element("b")
    store("a", [(A, "202108", 30), (B, "202108", 10)])
    store("b", [(A, "202108", 60), (B, "202108", 40)])
    return world


def test_a_ratio_indicator(figures):
    indicator("ratio", "#{a} / #{b} * 100", unit="%", decimals=1)
    rows = table(figures.leader, "ratio", "202108", f"{A};{B};{HCMC}")
    assert values_by_unit(rows) == {A: 50, B: 25, HCMC: 40}
    assert {r["unit"] for r in rows.values()} == {"%"}


def test_share_is_a_wards_part_of_its_province(figures):
    indicator("a_share", "share(#{a})")
    rows = table(figures.leader, "a_share", "202108", f"{HCMC};LEVEL-2")
    assert values_by_unit(rows) == {A: 75, B: 25}


def test_an_indicator_may_use_another(figures):
    indicator("ratio", "#{a} / #{b} * 100")
    indicator("half_ratio", "#{ratio} / 2")
    assert values_by_unit(table(figures.leader, "half_ratio", "202108", HCMC)) == {HCMC: 20}


def test_a_yearly_target_serves_a_year_to_date_period(figures):
    indicator("a_total", "#{a}")
    indicator("a_plan_pct", "#{a_total} / target(#{a_total}) * 100")
    services.save_target(actor=None, indicator="a_total", unit=figures.province, period="2021", value=160)
    rows = table(figures.leader, "a_total;a_plan_pct", "2021YTD08", HCMC)
    total = rows[("a_total", "2021YTD08", HCMC)]
    assert total["value"] == 40
    assert total["target"] == 160
    assert total["target_pct"] == 25  # "đạt 25% kế hoạch năm"
    assert rows[("a_plan_pct", "2021YTD08", HCMC)]["value"] == 25


def test_indicators_referring_to_each_other_in_a_loop_are_refused(figures):
    indicator("x", "#{a} + 1")
    indicator("y", "#{x} * 2")
    indicator("x", "#{y} + 1")  # now x → y → x
    for dx in ("x", "y"):
        body = problem(ask(figures.leader, dx, "202108", HCMC), 422)
        assert body["field"] == "dx"
        assert "tham chiếu lẫn nhau thành vòng" in body["detail"]
        assert "rows" not in body


# 7. Events from the warehouse


def _tests(platform, start: int, commune: str, day: int, results: list[str]) -> None:
    records = [
        record(
            "test",
            start + i,
            commune=commune,
            result=result,
            sampled_at=f"2021-08-{day:02d}T10:00:00+07:00",
        )
        for i, result in enumerate(results)
    ]
    response = platform.send("test", records)
    assert response.status_code == 200, response.content
    assert response.json()["accepted"] == len(records)


def test_event_counts_come_from_the_rollups_as_they_are(platform, world):
    _tests(platform, 0, "26743", 15, ["positive", "positive", "positive", "negative", "negative"])
    _tests(platform, 100, "26740", 20, ["positive", "positive", "invalid"])
    indicator("positivity", "#{ev.test.positive} / #{ev.test} * 100")

    rows = table(world.leader, "ev.test.positive;ev.test;positivity", "202108", HCMC)
    assert rows[("ev.test.positive", "202108", HCMC)]["value"] == 5
    assert rows[("ev.test", "202108", HCMC)]["value"] == 8
    assert rows[("positivity", "202108", HCMC)]["value"] == round(5 / 8 * 100, 2)
    assert values_by_unit(table(world.leader, "ev.test.positive", "202108", f"{HCMC};LEVEL-2")) == {
        A: 3,
        B: 2,
    }

    _tests(platform, 200, "26740", 21, ["positive"])  # no rebuild: the next answer has it
    assert values_by_unit(table(world.leader, "ev.test.positive", "202108", f"{HCMC};{B}")) == {
        HCMC: 6,
        B: 3,
    }

    days = table(world.leader, "ev.test.positive", "20210815;20210820;20210821;2021W33", HCMC)
    assert {pe: r["value"] for (_, pe, _), r in days.items()} == {
        "20210815": 3,
        "20210820": 2,
        "20210821": 1,
        "2021W33": 3,  # Monday 16 to Sunday 22 August
    }
    assert days[("ev.test.positive", "20210815", HCMC)]["pe_label"] == "ngày 15/8/2021"


# 8. Area and errors


def test_a_ward_operator_cannot_ask_for_the_neighbour(figures):
    response = ask(figures.operator_a, "a", "202108", B)
    body = problem(response, 404)  # as for a unit that does not exist
    assert body["field"] == "ou"
    assert B in body["detail"] and "trong phạm vi của bạn" in body["detail"]
    assert "rows" not in body and "value" not in json.dumps(body)


def test_a_ward_operators_level_question_stays_in_the_ward(figures):
    rows = table(figures.operator_a, "a;b", "202108", "LEVEL-2")
    assert {ou for _, _, ou in rows} == {A}
    assert {dx: r["value"] for (dx, _, _), r in rows.items()} == {"a": 30, "b": 60}
    assert values_by_unit(table(figures.operator_a, "a", "202108", "USER_ORGUNIT")) == {A: 30}


@pytest.mark.parametrize(
    "params, field, names",
    [
        ({"dx": "a", "pe": "2021Q5", "ou": HCMC}, "pe", "2021Q5"),
        ({"dx": "a;no_such_thing", "pe": "202108", "ou": HCMC}, "dx", "no_such_thing"),
        ({"dx": "a", "pe": "202108", "ou": f"{HCMC};VN-2021:79"}, "ou", "bản đồ"),
    ],
)
def test_bad_questions_are_422_naming_the_parameter(figures, params, field, names):
    body = problem(figures.leader.client().get("/api/v1/analytics", params), 422)
    assert body["field"] == field
    assert names in body["detail"]


def test_the_answer_is_as_of_now(figures):
    """A value entered a moment ago is in the next answer (no overnight tables)."""
    assert values_by_unit(table(figures.leader, "a", "202108", HCMC)) == {HCMC: 40}
    store("a", [("VN-2025:25747", "202108", 5)])  # Thủ Dầu Một, another ward of the city
    assert values_by_unit(table(figures.leader, "a", "202108", HCMC)) == {HCMC: 45}


# Probes beyond the brief: where the rules above meet each other


def test_an_old_provinces_own_value_does_not_hide_another_old_provinces_communes(world):
    """New HCMC = old HCMC + Bình Dương + Bà Rịa - Vũng Tàu. Old HCMC reported a city total; Bình
    Dương reported per commune. Each figure stands for its own old subtree, so the new city is both."""
    element("revenue")
    store("revenue", [("VN-2021:79", "202108", 500)], edition="VN-2021")
    binh_duong = leaves_under("VN-2021:74")
    store("revenue", [(u.ref, "202108", 2) for u in binh_duong], edition="VN-2021")
    (row,) = table(world.leader, "revenue", "202108", HCMC).values()
    assert row["value"] == pytest.approx(500 + 2 * len(binh_duong), abs=ROUNDING)


def test_a_provinces_own_value_for_one_month_does_not_hide_its_wards_next_month(world):
    """The city reported July as a whole and August per ward: the quarter is both months, with no
    figure counted twice."""
    element("revenue")
    store("revenue", [(HCMC, "202107", 1000), (A, "202108", 10), (B, "202108", 20)])
    rows = table(world.leader, "revenue", "202107;202108;2021Q3", HCMC)
    assert {pe: r["value"] for (_, pe, _), r in rows.items()} == {
        "202107": 1000,
        "202108": 30,
        "2021Q3": 1030,
    }


def test_rows_round_half_up_as_a_reader_expects(figures):
    """formula.round() rounds the decimal text half up ("2.675 gives 2.68 as a reader expects");
    the rows' own rounding to the indicator's decimals should read the same."""
    indicator("half", "#{b} / #{a}", decimals=0)  # Sài Gòn: 40 / 10 = 4; the city: 100 / 40 = 2.5
    element("price")
    store("price", [(A, "202108", 2.675)])
    half = table(figures.leader, "half", "202108", HCMC)[("half", "202108", HCMC)]["value"]
    price = table(figures.leader, "price", "202108", A)[("price", "202108", A)]["value"]
    assert (half, price) == (3, 2.68)


def test_a_ward_operator_cannot_read_the_province_through_share(figures):
    """share(#{a}) at Bến Thành is its figure over the city's: with its own figure, the operator of
    Bến Thành would have the city's total (outside their area) to the unit."""
    indicator("a_share", "share(#{a})")
    response = ask(figures.operator_a, "a;a_share", "202108", A)
    if response.status_code == 200:
        rows = {(r["dx"], r["ou"]): r["value"] for r in response.json()["rows"]}
        assert rows.get(("a", A)) == 30
        assert rows.get(("a_share", A)) is None, "30 / share × 100 = the city's total, 40"
    else:
        assert response.status_code in (403, 422)
