"""Who may change a report definition (issue 16, point 1): it belongs to a unit; only admins of that unit
or above change or delete it, in the admin site or through the verbs, each change audited with its
state before and after."""

from __future__ import annotations

import pytest

from dieuhanh.accounts.models import AuditEntry
from dieuhanh.demo import _HCM_REPORT
from dieuhanh.reports import services
from dieuhanh.reports.models import ReportDefinition
from dieuhanh.reports.services import ReportError
from tests.factories import make_caller

NATION, HCMC = "VN-2025:VN", "VN-2025:79"


@pytest.fixture
def admins(world, ict):
    return {
        "nation": make_caller("quantri-tw", world.nation, "admin"),
        "province": make_caller("quantri-hcm", world.province, "admin"),
        "ward": make_caller("quantri-benthanh", world.commune_a, "admin"),
    }


def city_report(actor, unit, **more):
    fields = {"name": "Báo cáo TP.HCM", "period_type": "monthly", "body": _HCM_REPORT} | more
    return services.save_definition(actor=actor, code="hcm_monthly", unit=unit, **fields)


def test_shipped_definitions_are_the_nations_and_the_list_says_whose_each_is(world, admins):
    city_report(admins["province"].user, unit=world.province)
    listed = world.leader.client().get("/api/v1/report-definitions").json()
    assert {d["code"]: d["owner_unit"] for d in listed} == {
        "hcm_monthly": HCMC,
        "ict_halfyear": NATION,
        "ict_monthly": NATION,
    }


@pytest.mark.parametrize("who", ["ward", "province"])
def test_no_admin_below_the_nation_rewrites_the_national_report(world, admins, who):
    national = ReportDefinition.objects.get(code="ict_monthly")
    body = {**national.body, "subject": "Báo cáo đã bị sửa"}
    with pytest.raises(ReportError) as refused:
        services.save_definition(
            actor=admins[who].user, code="ict_monthly", name="x", period_type="monthly",
            unit=world.province, body=body,
        )  # fmt: skip
    assert refused.value.status == 403
    assert "không được sửa" in refused.value.message and NATION not in refused.value.message
    national.refresh_from_db()
    assert national.body["subject"] != "Báo cáo đã bị sửa" and national.unit.ref == NATION
    with pytest.raises(ReportError) as refused:
        services.delete_definition(actor=admins[who].user, definition=national)
    assert refused.value.status == 403
    assert (
        not AuditEntry.objects.filter(action__startswith="report_definition.")
        .exclude(action="report_definition.create")
        .exists()
    )


def test_a_province_admin_keeps_its_own_definition_and_the_audit_has_before_and_after(world, admins):
    hcm = admins["province"].user
    made = city_report(hcm, unit=world.province)
    assert made.owner_unit.ref == HCMC
    city_report(hcm, unit=world.province, name="Báo cáo TP.HCM hằng tháng")

    entries = AuditEntry.objects.filter(target="hcm_monthly").order_by("id")
    assert [e.action for e in entries] == ["report_definition.create", "report_definition.update"]
    created, updated = entries
    assert created.detail["before"] is None and created.detail["after"]["owner_unit"] == HCMC
    assert updated.actor_name == "quantri-hcm"
    assert updated.detail["before"]["name"] == "Báo cáo TP.HCM"
    assert updated.detail["after"]["name"] == "Báo cáo TP.HCM hằng tháng"

    with pytest.raises(ReportError) as refused:
        city_report(admins["ward"].user, unit=world.province, name="Phường sửa")
    assert refused.value.status == 403
    assert ReportDefinition.objects.get(code="hcm_monthly").name == "Báo cáo TP.HCM hằng tháng"


def test_a_definition_reports_inside_its_owner_unit(world, admins):
    with pytest.raises(ReportError) as refused:
        city_report(admins["province"].user, unit=world.nation)
    assert refused.value.field == "unit"
    assert not ReportDefinition.objects.filter(code="hcm_monthly").exists()


def test_the_admin_site_deletes_through_the_verb_and_audits_it(world, admins):
    city_report(admins["province"].user, unit=world.province)
    quantri = admins["nation"]
    quantri.user.is_staff = quantri.user.is_superuser = True
    quantri.user.save()
    definition = ReportDefinition.objects.get(code="hcm_monthly")
    answer = quantri.browser().post(
        f"/admin/reports/reportdefinition/{definition.pk}/delete/", {"post": "yes"}
    )
    assert answer.status_code == 302
    assert not ReportDefinition.objects.filter(code="hcm_monthly").exists()
    entry = AuditEntry.objects.get(action="report_definition.delete")
    assert entry.actor_name == "quantri-tw" and entry.detail["after"] is None
    assert entry.detail["before"]["owner_unit"] == HCMC and entry.detail["before"]["unit"] == HCMC
