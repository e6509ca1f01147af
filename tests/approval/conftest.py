"""A monthly commune data set with approval on (commune → province → nation; on VN-2021 with districts)."""

from __future__ import annotations

import pytest

from dieuhanh.indicators.approval.services import configure
from dieuhanh.indicators.services import save_data_element, save_data_set

PERIOD = "202108"


@pytest.fixture
def telecom(world):
    save_data_element(actor=None, code="postal_revenue", name="Doanh thu bưu chính", unit="triệu đồng")
    save_data_element(actor=None, code="subscribers", name="Thuê bao di động", unit="thuê bao")
    data_set = save_data_set(
        actor=None,
        code="telecom",
        name="Báo cáo viễn thông",
        elements=["postal_revenue", "subscribers"],
        period_type="monthly",
        unit_kind="commune",
    )
    configure(actor=None, data_set=data_set)
    return data_set


def act(caller, action: str, *units: str, reason: str = "", period: str = PERIOD, data_set: str = "telecom"):
    body = {"action": action, "dataSet": data_set, "period": period, "units": list(units), "reason": reason}
    return caller.client().post("/api/v1/approvals", body, content_type="application/json")


def state(caller, unit: str, period: str = PERIOD, children: bool = True) -> dict:
    url = f"/api/v1/approvals?dataSet=telecom&period={period}&unit={unit}&children={str(children).lower()}"
    response = caller.client().get(url)
    assert response.status_code == 200, response.content
    return response.json()


def values(caller, *rows: tuple[str, str, float], period: str = PERIOD):
    body = {
        "dataValues": [{"dataElement": e, "period": period, "orgUnit": u, "value": v} for e, u, v in rows]
    }
    return caller.client().post("/api/v1/datavalues", body, content_type="application/json")
