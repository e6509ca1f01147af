"""POST /api/v1/units: enterprises and parks as units, for admins and the province's operators, in
their area; their paths put them under every existing area rule."""

from __future__ import annotations

from dieuhanh.units.models import Unit
from dieuhanh.warehouse.enterprises.models import Profile
from tests.factories import make_caller


def _post(caller, **body):
    return caller.client().post("/api/v1/units", body, content_type="application/json")


def test_a_province_operator_registers_a_park_and_a_factory_in_it(world):
    park = _post(
        world.province_operator,
        kind="industrial_park",
        tax_code="0301234567",
        name="Khu công nghiệp Tân Thuận",
        address="Phường Tân Thuận",
        commune="VN-2025:26743",
    )
    assert park.status_code == 201, park.content
    assert park.json()["path"] == "/VN/79/26743/0301234567/"
    factory = _post(
        world.province_operator,
        kind="enterprise",
        tax_code="0301234568-001",
        name="Công ty May Sài Gòn — chi nhánh 1",
        address="Lô A1, KCN Tân Thuận",
        commune="26743",
        park="VN-2025:0301234567",
    )
    assert factory.status_code == 201, factory.content
    body = factory.json()
    assert body["parent"] == "VN-2025:0301234567"
    assert body["path"] == "/VN/79/26743/0301234567/0301234568-001/"
    assert body["commune"] == "VN-2025:26743" and body["tax_code"] == "0301234568-001"
    assert Profile.objects.get(unit__code="0301234568-001").address == "Lô A1, KCN Tân Thuận"
    # The commune still counts as a commune of the map (a leaf where figures are recorded).
    assert Unit.objects.leaves().filter(code="26743").exists()
    assert not Unit.objects.leaves().filter(kind__in=["enterprise", "industrial_park"]).exists()


def test_a_park_may_stand_under_its_province(world):
    r = _post(
        world.province_operator, kind="industrial_park", tax_code="0301234500", name="KCN Hiệp Phước",
        province="VN-2025:79",
    )  # fmt: skip
    assert r.status_code == 201 and r.json()["path"] == "/VN/79/0301234500/"


def test_commune_operators_and_leaders_below_admin_may_not_register(world):
    r = _post(world.operator_a, kind="enterprise", tax_code="0301234569", name="X", commune="26743")
    assert r.status_code == 403
    assert r["Content-Type"] == "application/problem+json"
    assert not Unit.objects.filter(code="0301234569").exists()


def test_a_commune_outside_the_area_is_refused_as_if_unknown(world):
    outside = _post(
        world.province_operator, kind="enterprise", tax_code="0301234570", name="X", commune="00004"
    )
    unknown = _post(
        world.province_operator, kind="enterprise", tax_code="0301234570", name="X", commune="99999"
    )
    assert outside.status_code == unknown.status_code == 404
    assert outside.json()["field"] == "commune"
    assert outside.json()["detail"].replace("00004", "?") == unknown.json()["detail"].replace("99999", "?")


def test_a_national_admin_registers_anywhere(world):
    admin = make_caller("national-admin", world.nation, "admin")
    r = _post(admin, kind="enterprise", tax_code="0101234567", name="Nhà máy Hà Nội", commune="VN-2025:00004")
    assert r.status_code == 201, r.content


def test_bad_input_names_the_field(world):
    cases = [
        ({"tax_code": "12345"}, "tax_code"),
        ({"commune": ""}, "commune"),
        ({"park": "VN-2025:26743"}, "park"),  # a commune, not a park
        ({"province": "VN-2025:79"}, "province"),
    ]
    for override, field in cases:
        body = {"kind": "enterprise", "tax_code": "0301234571", "name": "X", "commune": "26743", **override}
        r = _post(world.province_operator, **body)
        assert r.status_code == 422, (override, r.content)
        assert r.json()["field"] == field


def test_a_tax_code_is_registered_once(world):
    body = {"kind": "enterprise", "tax_code": "0301234572", "name": "X", "commune": "26743"}
    assert _post(world.province_operator, **body).status_code == 201
    again = _post(world.province_operator, **body)
    assert again.status_code == 409 and again.json()["field"] == "tax_code"


def test_a_park_and_its_factory_must_share_a_province(world):
    admin = make_caller("national-admin", world.nation, "admin")
    assert (
        _post(
            admin, kind="industrial_park", tax_code="0101000001", name="KCN Bắc", commune="00004"
        ).status_code
        == 201
    )
    r = _post(
        admin, kind="enterprise", tax_code="0301000002", name="X", commune="26743", park="VN-2025:0101000001"
    )
    assert r.status_code == 422 and r.json()["field"] == "park"


def test_area_rules_apply_unchanged(firms):
    w = firms.world
    one, two = firms.one, firms.two

    def sees(caller, unit) -> bool:
        return caller.client().get(f"/api/v1/units/{unit.edition_id}/{unit.code}").status_code == 200

    assert sees(firms.officer_one, one) and not sees(firms.officer_one, two)
    assert not sees(firms.officer_one, firms.park) and not sees(firms.officer_one, w.commune_a)
    assert sees(firms.park_officer, one) and sees(firms.park_officer, two)
    assert not sees(firms.park_officer, firms.alone)
    assert sees(w.operator_a, one) and sees(w.operator_a, firms.park) and not sees(w.operator_a, firms.alone)
    assert sees(w.operator_b, firms.alone) and not sees(w.operator_b, one)
    assert all(sees(w.province_operator, u) for u in (one, two, firms.alone, firms.park))
    listed = w.operator_a.client().get("/api/v1/units", {"parent": firms.park.ref}).json()
    assert {i["ref"] for i in listed["items"]} == {one.ref, two.ref}
