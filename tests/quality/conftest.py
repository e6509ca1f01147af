"""The data quality world: a commune data set of online public services, with its rules."""

from __future__ import annotations

import pytest

from dieuhanh.indicators.quality.rules import save_rule
from dieuhanh.indicators.services import save_data_element, save_data_set


@pytest.fixture
def services(world):
    """Dossiers received and filed online (online ≤ received: refused), and staff (warned when 0)."""
    for code, name in [
        ("dossiers_received", "Hồ sơ tiếp nhận"),
        ("dossiers_online", "Hồ sơ nộp trực tuyến"),
        ("staff", "Cán bộ một cửa"),
    ]:
        save_data_element(actor=None, code=code, name=name, unit="hồ sơ", value_type="integer")
    data_set = save_data_set(
        actor=None,
        code="dvc_xa",
        name="Dịch vụ công cấp xã",
        elements=["dossiers_received", "dossiers_online", "staff"],
        period_type="monthly",
        unit_kind="commune",
        due_day=5,
    )
    save_rule(
        actor=None,
        code="online_within_received",
        name="Hồ sơ trực tuyến không vượt hồ sơ tiếp nhận",
        left="#{dossiers_online}",
        operator="<=",
        right="#{dossiers_received}",
        importance="high",
        strictness="refuse",
        data_set="dvc_xa",
        levels=[2],
    )
    save_rule(
        actor=None,
        code="staff_present",
        name="Có cán bộ một cửa",
        left="#{staff}",
        operator=">",
        right="0",
        strictness="warn",
        data_set="dvc_xa",
    )
    return data_set
