"""Who may change indicator metadata (issue 16, point 1): every element, data set, indicator and target
belongs to a unit; only admins of that unit or above it change or delete it, through the API, the
admin site or a catalogue, and every change leaves an audit row with the state before and after."""

from __future__ import annotations

import json

import pytest

from dieuhanh.accounts.models import AuditEntry
from dieuhanh.accounts.services import grant_role
from dieuhanh.indicators import services
from dieuhanh.indicators.catalog import load as load_catalog
from dieuhanh.indicators.models import DataElement, DataSet, Indicator, Target
from dieuhanh.indicators.services import IndicatorError
from tests.factories import Caller, ict_catalogue, make_caller

NATION, HCMC, A, B = "VN-2025:VN", "VN-2025:79", "VN-2025:26743", "VN-2025:26740"
SEED_POSTAL_REVENUE = 24500  # tỷ đồng, 8 months of 2021: the seeds' figure


@pytest.fixture
def admins(world):
    """An admin on each unit of the world, and the ICT catalogue (the nation's) with the seeds' figures."""
    ict_catalogue()
    return {
        "nation": make_caller("quantri-tw", world.nation, "admin"),
        "province": make_caller("quantri-hcm", world.province, "admin"),
        "ward": make_caller("quantri-benthanh", world.commune_a, "admin"),
        "neighbour": make_caller("quantri-saigon", world.commune_b, "admin"),
    }


def post(caller: Caller, route: str, body: dict):
    return caller.client().post(f"/api/v1/{route}", body, content_type="application/json")


def postal_revenue_seen_by(caller: Caller) -> float:
    answer = caller.client().get(
        "/api/v1/analytics", {"dx": "postal_revenue", "pe": "2021YTD08", "ou": NATION}
    )
    assert answer.status_code == 200, answer.content
    (row,) = answer.json()["rows"]
    return row["value"]


def grant(caller: Caller, unit, role: str) -> None:
    grant_role(actor=None, user=caller.user, unit=unit, role=role)


def audits(action: str) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(action=action).order_by("id"))


def refused_without_a_leak(answer) -> str:
    """A 403 problem in Vietnamese that names neither the owner unit nor anything else of its owner."""
    assert answer.status_code == 403, answer.content
    assert answer["Content-Type"] == "application/problem+json"
    detail = answer.json()["detail"]
    assert "không được" in detail
    for outside in (NATION, "Việt Nam", HCMC, "Hồ Chí Minh", "quantri"):
        assert outside not in detail
    return detail


# The attack of the issue, and its siblings on every route


def test_a_ward_admin_cannot_rewrite_the_national_postal_revenue(world, admins):
    assert postal_revenue_seen_by(world.leader) == SEED_POSTAL_REVENUE
    attack = {"code": "postal_revenue", "name": "Doanh thu bưu chính", "formula": "#{postal_revenue} * 1000"}

    refused_without_a_leak(post(admins["ward"], "indicators", attack))

    assert Indicator.objects.get(code="postal_revenue").formula == "#{postal_revenue}"
    assert postal_revenue_seen_by(world.leader) == SEED_POSTAL_REVENUE
    assert audits("indicator.update") == []


NATIONAL_CHANGES = {
    "dataelements": {"code": "postal_revenue", "name": "Doanh thu bưu chính", "aggregation": "average"},
    "indicators": {"code": "postal_revenue", "name": "x", "formula": "#{postal_revenue} * 1000"},
}


@pytest.mark.parametrize("who", ["ward", "province"])
@pytest.mark.parametrize("route", sorted(NATIONAL_CHANGES))
def test_no_admin_below_the_nation_overwrites_national_metadata(world, admins, who, route):
    before = (
        DataElement.objects.values().get(code="postal_revenue"),
        Indicator.objects.values().get(code="postal_revenue"),
    )
    refused_without_a_leak(post(admins[who], route, NATIONAL_CHANGES[route]))
    after = (
        DataElement.objects.values().get(code="postal_revenue"),
        Indicator.objects.values().get(code="postal_revenue"),
    )
    assert after == before
    assert postal_revenue_seen_by(world.leader) == SEED_POSTAL_REVENUE
    assert not AuditEntry.objects.filter(action__endswith=".update").exists()


@pytest.mark.parametrize("who", ["ward", "province"])
def test_no_admin_below_the_nation_overwrites_a_target_the_nation_set_for_them(world, admins, who):
    plan = {"indicator": "postal_revenue", "unit": A, "period": "2021", "value": 300}
    assert post(admins["nation"], "targets", plan).status_code == 201

    refused_without_a_leak(post(admins[who], "targets", {**plan, "value": 1}))

    target = Target.objects.get(indicator__code="postal_revenue", unit=world.commune_a, period="2021")
    assert (target.value, target.owner_unit.ref) == (300, NATION)


def test_a_target_outside_the_callers_admin_area_is_refused_or_not_found(world, admins):
    plan = {"indicator": "postal_revenue", "unit": B, "period": "2021", "value": 5}
    assert post(admins["ward"], "targets", plan).status_code == 404  # the neighbour: as if absent
    # A ward admin who also leads the city sees the neighbour, but does not administer it.
    both = make_caller("quantri-va-lanhdao", world.commune_a, "admin")
    grant(both, world.province, "leader")
    answer = post(both, "targets", plan)
    assert answer.status_code == 403 and answer.json()["field"] == "unit"
    assert not Target.objects.filter(unit=world.commune_b).exists()


@pytest.mark.parametrize("who", ["ward", "province"])
def test_data_sets_of_the_nation_are_not_changed_below_it(world, admins, who):
    national = DataSet.objects.get(code="ict_monthly")
    elements = sorted(national.elements.values_list("code", flat=True))
    with pytest.raises(IndicatorError) as refused:
        services.save_data_set(
            actor=admins[who].user, code="ict_monthly", name="x", elements=["postal_revenue"]
        )
    assert refused.value.status == 403
    national.refresh_from_db()
    assert national.name != "x"
    assert sorted(national.elements.values_list("code", flat=True)) == elements


@pytest.mark.parametrize(
    ("verb", "item"),
    [
        (services.delete_data_element, lambda: {"element": DataElement.objects.get(code="postal_revenue")}),
        (services.delete_indicator, lambda: {"indicator": Indicator.objects.get(code="postal_revenue")}),
        (services.delete_data_set, lambda: {"data_set": DataSet.objects.get(code="ict_monthly")}),
    ],
)
def test_nor_deleted_below_it(world, admins, verb, item):
    with pytest.raises(IndicatorError) as refused:
        verb(actor=admins["province"].user, **item())
    assert refused.value.status == 403
    assert "không được xóa" in refused.value.message
    assert DataElement.objects.filter(code="postal_revenue").exists()
    assert DataSet.objects.filter(code="ict_monthly").exists()
    assert Indicator.objects.filter(code="postal_revenue").exists()


# What a national admin and a province admin may do, audited with before and after


def test_a_national_admin_changes_national_metadata_and_the_audit_keeps_before_and_after(world, admins):
    change = {"code": "postal_revenue", "name": "Doanh thu bưu chính", "formula": "#{postal_revenue} * 2"}
    answer = post(admins["nation"], "indicators", change)
    assert answer.status_code == 201, answer.content
    assert answer.json()["owner_unit"] == NATION
    assert postal_revenue_seen_by(world.leader) == 2 * SEED_POSTAL_REVENUE

    (entry,) = audits("indicator.update")
    assert (entry.actor_name, entry.target) == ("quantri-tw", "postal_revenue")
    assert entry.detail["before"]["formula"] == "#{postal_revenue}"
    assert entry.detail["after"]["formula"] == "#{postal_revenue} * 2"
    assert entry.detail["before"]["owner_unit"] == entry.detail["after"]["owner_unit"] == NATION


def test_a_province_admin_manages_its_own_metadata_but_not_the_nations(world, admins):
    hcm = admins["province"]
    element = {"code": "hcm_bts", "name": "Số trạm BTS TP.HCM", "unit": "trạm", "aggregation": "last"}
    created = post(hcm, "dataelements", element)
    assert created.status_code == 201, created.content
    assert created.json()["owner_unit"] == HCMC
    ratio = {"code": "hcm_bts_share", "name": "Tỷ trọng trạm BTS", "formula": "share(#{hcm_bts})"}
    assert post(hcm, "indicators", ratio).status_code == 201

    changed = post(hcm, "indicators", {**ratio, "formula": "round(share(#{hcm_bts}), 1)"})
    assert changed.status_code == 201, changed.content
    (entry,) = audits("indicator.update")
    assert entry.detail["before"]["formula"] == "share(#{hcm_bts})"
    assert entry.detail["after"]["formula"] == "round(share(#{hcm_bts}), 1)"
    assert audits("dataelement.create")[-1].detail == {
        "before": None,
        "after": {
            "name": "Số trạm BTS TP.HCM",
            "name_en": "",
            "unit": "trạm",
            "value_type": "number",
            "aggregation": "last",
            "period_type": "monthly",
            "options": [],
            "description": "",
            "owner_unit": HCMC,
        },
    }

    refused_without_a_leak(post(hcm, "indicators", {**ratio, "code": "postal_revenue"}))
    listed = {i["code"]: i["owner_unit"] for i in world.leader.client().get("/api/v1/indicators").json()}
    assert (listed["hcm_bts_share"], listed["postal_revenue"]) == (HCMC, NATION)


def test_a_wards_own_element_is_the_wards_the_provinces_and_the_nations_not_the_neighbours(world, admins):
    element = {"code": "bt_dossiers", "name": "Hồ sơ trực tuyến Bến Thành"}
    assert post(admins["ward"], "dataelements", element).json()["owner_unit"] == A

    refused_without_a_leak(post(admins["neighbour"], "dataelements", {**element, "name": "Sài Gòn"}))
    assert post(admins["ward"], "dataelements", {**element, "name": "Bến Thành 2"}).status_code == 201
    assert post(admins["province"], "dataelements", {**element, "name": "Bến Thành 3"}).status_code == 201
    assert DataElement.objects.get(code="bt_dossiers").name == "Bến Thành 3"
    assert [e.actor_name for e in audits("dataelement.update")] == ["quantri-benthanh", "quantri-hcm"]


def test_an_owner_outside_the_callers_admin_area_is_refused_or_not_found(world, admins):
    element = {"code": "bt_x", "name": "x"}
    answer = post(admins["ward"], "dataelements", {**element, "owner_unit": HCMC})
    assert answer.status_code == 404  # the city lies outside a ward's area: it is not named
    answer = post(admins["ward"], "dataelements", {**element, "owner_unit": B})
    assert answer.status_code == 404
    # Inside the caller's area but not administered by them: refused.
    both = make_caller("quantri-va-lanhdao", world.commune_a, "admin")
    grant(both, world.province, "leader")
    answer = post(both, "dataelements", {**element, "owner_unit": HCMC})
    assert answer.status_code == 403
    assert answer.json()["field"] == "owner_unit"
    assert not DataElement.objects.filter(code="bt_x").exists()


def test_ownership_moves_up_never_down(world, admins):
    element = {"code": "bt_dossiers", "name": "Hồ sơ trực tuyến Bến Thành"}
    post(admins["ward"], "dataelements", element)
    answer = post(admins["nation"], "dataelements", {**element, "owner_unit": HCMC})
    assert answer.status_code == 201 and answer.json()["owner_unit"] == HCMC
    answer = post(admins["nation"], "dataelements", {**element, "owner_unit": A})
    assert answer.status_code == 422 and answer.json()["field"] == "owner_unit"
    refused_without_a_leak(post(admins["ward"], "dataelements", element))  # the city's now


# Through what national metadata reads


def test_national_metadata_never_reads_a_lower_units_metadata(world, admins):
    post(admins["ward"], "dataelements", {"code": "bt_dossiers", "name": "Hồ sơ Bến Thành"})
    answer = post(
        admins["nation"], "indicators", {"code": "n_x", "name": "x", "formula": "#{bt_dossiers} * 2"}
    )
    assert answer.status_code == 422
    assert answer.json()["field"] == "formula" and "bt_dossiers" in answer.json()["detail"]
    with pytest.raises(IndicatorError) as refused:
        services.save_data_set(
            actor=admins["nation"].user, code="n_set", name="x", elements=["postal_revenue", "bt_dossiers"]
        )
    assert refused.value.field == "elements"
    assert not Indicator.objects.filter(code="n_x").exists()
    assert not DataSet.objects.filter(code="n_set").exists()
    # The ward's own indicator may read the nation's element and its own.
    own = {"code": "bt_share", "name": "x", "formula": "#{bt_dossiers} / #{postal_revenue}"}
    assert post(admins["ward"], "indicators", own).status_code == 201


def test_a_lower_element_cannot_take_the_code_a_national_formula_reads_as_an_indicator(world, admins):
    """#{code} reads an element before an indicator of that code: a ward's element named as the
    nation's growth indicator would have replaced it in every formula."""
    before = Indicator.objects.values().get(code="postal_revenue_yoy")
    refused_without_a_leak(post(admins["ward"], "dataelements", {"code": "postal_revenue_yoy", "name": "x"}))
    assert not DataElement.objects.filter(code="postal_revenue_yoy").exists()
    assert Indicator.objects.values().get(code="postal_revenue_yoy") == before


# The admin site and the catalogue


@pytest.fixture
def site_admin(world, admins):
    """The national admin, as staff of the admin site."""
    caller = admins["nation"]
    caller.user.is_staff = caller.user.is_superuser = True
    caller.user.save()
    return caller.browser()


def test_the_admin_site_saves_through_the_same_rules_and_audits(world, admins, site_admin):
    indicator = Indicator.objects.get(code="postal_revenue")
    fields = {
        "name": indicator.name, "name_en": indicator.name_en, "formula": "#{postal_revenue} + 1",
        "unit": indicator.unit, "decimals": indicator.decimals, "description": "",
    }  # fmt: skip
    answer = site_admin.post(f"/admin/indicators/indicator/{indicator.pk}/change/", fields)
    assert answer.status_code == 302, answer.content.decode()[:2000]
    assert postal_revenue_seen_by(world.leader) == SEED_POSTAL_REVENUE + 1
    (entry,) = audits("indicator.update")
    assert entry.actor_name == "quantri-tw"
    assert (entry.detail["before"]["formula"], entry.detail["after"]["formula"]) == (
        "#{postal_revenue}",
        "#{postal_revenue} + 1",
    )


def test_the_admin_site_shows_a_refused_reference_on_the_form(world, admins, site_admin):
    post(admins["ward"], "dataelements", {"code": "bt_dossiers", "name": "Hồ sơ Bến Thành"})
    indicator = Indicator.objects.get(code="postal_revenue")
    fields = {"name": "x", "formula": "#{bt_dossiers}", "unit": "", "decimals": 0, "description": ""}
    answer = site_admin.post(f"/admin/indicators/indicator/{indicator.pk}/change/", fields)
    assert answer.status_code == 200  # the form again, with the reason
    assert "bt_dossiers" in answer.content.decode()
    assert Indicator.objects.get(code="postal_revenue").formula == "#{postal_revenue}"
    assert audits("indicator.update") == []


def test_deleting_in_the_admin_site_is_audited_with_what_was_there(world, admins, site_admin):
    services.save_indicator(actor=None, code="tmp_ratio", name="Tạm", formula="#{postal_revenue} / 2")
    pk = Indicator.objects.get(code="tmp_ratio").pk
    answer = site_admin.post(f"/admin/indicators/indicator/{pk}/delete/", {"post": "yes"})
    assert answer.status_code == 302
    assert not Indicator.objects.filter(code="tmp_ratio").exists()
    (entry,) = audits("indicator.delete")
    assert entry.actor_name == "quantri-tw" and entry.detail["after"] is None
    assert entry.detail["before"]["formula"] == "#{postal_revenue} / 2"


def test_a_national_leader_on_the_admin_site_does_not_change_metadata(world, admins):
    world.leader.user.is_staff = world.leader.user.is_superuser = True
    world.leader.user.save()
    indicator = Indicator.objects.get(code="postal_revenue")
    fields = {"name": "x", "formula": "#{postal_revenue} * 1000", "unit": "", "decimals": 0}
    answer = world.leader.browser().post(f"/admin/indicators/indicator/{indicator.pk}/change/", fields)
    assert answer.status_code == 403
    assert Indicator.objects.get(code="postal_revenue").formula == "#{postal_revenue}"


def test_a_catalogue_is_the_nations_and_loading_it_again_writes_no_audit(world, admins):
    assert {e.owner_unit.ref for e in DataElement.objects.select_related("owner_unit")} == {NATION}
    assert {t.owner_unit_id for t in Target.objects.all()} == {world.nation.pk}
    created = audits("dataelement.create")
    assert len(created) == DataElement.objects.count() and created[0].actor_name == "system"
    assert created[0].detail["before"] is None and created[0].detail["after"]["owner_unit"] == NATION
    count = AuditEntry.objects.count()
    load_catalog("ict", actor=None, with_seed_values=True)
    assert AuditEntry.objects.count() == count


def test_a_catalogue_takes_back_a_code_a_lower_unit_made(world, admins, tmp_path):
    post(admins["ward"], "dataelements", {"code": "bt_dossiers", "name": "Hồ sơ Bến Thành"})
    catalogue = tmp_path / "c.json"
    catalogue.write_text(
        json.dumps({
            "data_elements": [{"code": "bt_dossiers", "name": "Hồ sơ trực tuyến"}],
            "indicators": [{"code": "n_dossiers", "name": "Hồ sơ", "formula": "#{bt_dossiers}"}],
        }),
        encoding="utf-8",
    )  # fmt: skip
    load_catalog(str(catalogue), actor=None)
    assert DataElement.objects.get(code="bt_dossiers").owner_unit.ref == NATION
    assert Indicator.objects.get(code="n_dossiers").owner_unit.ref == NATION
    (entry,) = audits("dataelement.update")
    assert (entry.detail["before"]["owner_unit"], entry.detail["after"]["owner_unit"]) == (A, NATION)
