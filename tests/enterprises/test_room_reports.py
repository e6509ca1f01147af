"""The room and the periodic reports take an enterprise or a park as their unit."""

from __future__ import annotations

from datetime import date

import pytest

from dieuhanh.errors import DomainError
from dieuhanh.reports import services as reports
from dieuhanh.reports.services import save_definition
from tests.factories import stored_files

PARK_REPORT = {
    "issuing_body": "Ban quản lý các khu công nghiệp",
    "governing_body": "",
    "document_code": "BC-BQL",
    "place": "Thành phố Hồ Chí Minh",
    "subject": "Xét nghiệm của người lao động {{ period_label() }}",
    "sections": [
        {
            "title": "Kết quả",
            "blocks": [
                {"text": "Người lao động của {{ unit_name }}: {{ value('ev.test', scale='') }}."},
                {"table": {"indicators": ["ev.test", "ev.test.positive"], "rows": "children"}},
            ],
        }
    ],
}


pytestmark = pytest.mark.usefixtures("media")


def test_a_parks_room_shows_its_workers_figures(tested):
    client = tested.park_officer.browser()
    page = client.get("/room/", {"unit": tested.park.ref})
    assert page.status_code == 200, page.content[:300]
    assert "KCN Thử nghiệm" in page.content.decode()
    assert client.get("/room/parts", {"unit": tested.park.ref}).status_code == 200
    # A factory's officer has no room on the park, nor on the other factory.
    officer = tested.officer_one.browser()
    assert officer.get("/room/", {"unit": tested.park.ref}).status_code == 404
    assert officer.get("/room/", {"unit": tested.two.ref}).status_code == 404


def test_a_parks_periodic_report_counts_its_factories(tested, media):
    save_definition(
        actor=None, code="kcn", name="KCN", period_type="monthly", unit=tested.park, body=PARK_REPORT
    )
    request = reports.prepare(
        actor=tested.park_officer.user, definition="kcn", period="202108", unit=tested.park.ref, fmt="md"
    )
    report = reports.generate(actor=tested.park_officer.user, request=request, dated=date(2021, 9, 15))
    assert stored_files(media) == [reports.file_path(report)]
    text = reports.file_path(report).read_text(encoding="utf-8")
    assert "Người lao động của KCN Thử nghiệm: 2 lượt." in text
    assert "| 1 | Nhà máy Một | 1 | – | 1 | – |" in text
    assert "| 2 | Nhà máy Hai | 1 | – | *chưa có số liệu* | – |" in text
    assert "Xưởng Sài Gòn" not in text
    with pytest.raises(DomainError) as refused:
        reports.prepare(
            actor=tested.officer_one.user, definition="kcn", period="202108", unit=tested.two.ref, fmt="md"
        )
    assert refused.value.status == 404
