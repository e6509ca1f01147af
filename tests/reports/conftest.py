import pytest

from dieuhanh.reports.services import load_shipped
from tests.conftest import ict_catalogue


@pytest.fixture
def ict(world):
    """The ICT catalogue with the seeds' figures, and the shipped report definitions owned by the leader."""
    ict_catalogue()
    return {d.code: d for d in load_shipped(owner=world.leader.user)}


@pytest.fixture
def hcm_report(world, ict):
    """The demo's monthly report of Hồ Chí Minh City's communes, on its commune data element."""
    from dieuhanh.demo import _HCM_REPORT
    from dieuhanh.indicators.services import save_data_element
    from dieuhanh.reports.services import save_definition

    save_data_element(
        actor=None, code="online_dossiers", name="Hồ sơ nộp trực tuyến", unit="hồ sơ", period_type="monthly"
    )
    return save_definition(
        actor=None, code="hcm", name="HCM", period_type="monthly", unit=world.province, body=_HCM_REPORT
    )
