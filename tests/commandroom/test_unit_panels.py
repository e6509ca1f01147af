"""The unit page's panels: children with the same figures (sortable), directives and tasks of the
area, reporting completeness; a commune sees none of its neighbour's."""

from __future__ import annotations

import re
from datetime import date

from dieuhanh.directives.assignments import TaskInput, create_task
from dieuhanh.indicators.datavalues import import_values
from dieuhanh.units.scoping import Area
from tests.factories import issue, record

CITY, A, B = "/units/VN-2025/79/", "/units/VN-2025/26743/", "/units/VN-2025/26740/"


def child_row(page: str, name: str) -> list[str]:
    """The cells' data-value of the children table's row for `name`."""
    row = re.search(rf"<tr><td><a href=\"[^\"]+\">{re.escape(name)}</a>.*?</tr>", page, re.S)
    assert row, f"no row for {name}"
    return re.findall(r'data-value="([^"]*)"', row.group(0))


def test_children_carry_the_same_figures_as_their_parent(world, platform, venues):
    platform.send("test", [record("test", i) for i in range(3)])
    platform.send("test", [record("test", 9, commune="26740")])
    page = world.province_operator.browser().get(CITY).content.decode()
    assert re.search(r'<table class="units children" data-sortable>', page)
    header = re.search(r'<table class="units children".*?</thead>', page, re.S).group(0)
    kinds = re.findall(r'<th scope="col" class="num" data-type="number">([^<]+)</th>', header)
    column = kinds.index("Xét nghiệm")  # the first numeric column is "Units below", as in data-value
    assert child_row(page, "Phường Bến Thành")[column] == "3"
    assert child_row(page, "Phường Sài Gòn")[column] == "1"
    assert child_row(page, "Phường Tân Định")[column] == "0"


def test_the_directives_of_the_area_with_their_status(world):
    both = issue(world.leader, title="Gửi hai phường").json()
    issue(world.leader, title="Chỉ gửi Sài Gòn", targets={"units": ["VN-2025:26740"]})
    own = world.operator_a.browser()
    delivery = own.get("/inbox/").content.decode()
    delivery_id = re.search(r'href="/inbox/(\d+)/"', delivery).group(1)
    own.post(f"/inbox/{delivery_id}/ack/")
    page = world.leader.browser().get(A).content.decode()
    assert "Chỉ đạo gửi tới địa bàn" in page and f'href="/directives/{both["id"]}/"' in page
    row = re.search(r"Gửi hai phường</a>.*?</tr>", page, re.S).group(0)
    assert re.findall(r'<td class="num">(\d+)</td>', row)[:2] == ["1", "1"]  # one unit, acknowledged
    assert "Chỉ gửi Sài Gòn" not in page
    city = world.province_operator.browser().get(CITY).content.decode()
    city_row = re.search(r"Gửi hai phường</a>.*?</tr>", city, re.S).group(0)
    assert re.findall(r'<td class="num">(\d+)</td>', city_row)[:2] == ["2", "1"]
    assert "Chỉ gửi Sài Gòn" in city
    assert "Gửi hai phường" not in world.operator_b.browser().get(A).content.decode()  # 404 page


def test_tasks_of_the_unit_and_below(world):
    create_task(
        actor=world.leader.user,
        data=TaskInput("Số hoá hồ sơ một cửa", "VN-2025:26743", basis="QĐ 942", due=date(2021, 1, 1)),
    )
    page = world.operator_a.browser().get(A).content.decode()
    assert "Số hoá hồ sơ một cửa" in page and "Quá hạn" in page
    assert "Số hoá hồ sơ một cửa" in world.province_operator.browser().get(CITY).content.decode()
    assert "Số hoá hồ sơ một cửa" not in world.operator_b.browser().get(B).content.decode()


def test_reporting_completeness_of_the_area(world, telecom):
    records = [{"dataElement": "postal_revenue", "period": "202108", "orgUnit": "VN-2025:26743", "value": 5}]
    assert not import_values(records, actor=None, area=Area(True, frozenset())).conflicts
    city = world.province_operator.browser().get(CITY).content.decode()
    assert "Báo cáo viễn thông — tháng 8/2021" in city  # the latest period with values
    assert "1/168 đơn vị đã báo cáo" in city
    own = world.operator_a.browser().get(A).content.decode()
    assert "1/1 đơn vị đã báo cáo (0 đúng hạn, hạn 15/9/2021)" in own  # entered today: late
    neighbour = world.operator_b.browser().get(B, {"period": "202108"}).content.decode()
    assert "0/1 đơn vị đã báo cáo" in neighbour and "Chưa báo cáo" in neighbour
    assert "Phường Bến Thành" not in neighbour
