"""After a map change, an enterprise moves with its commune's succession (units load's hook)."""

from __future__ import annotations

from dieuhanh.units.models import Unit
from dieuhanh.units.services import get_unit, load_units, successors
from dieuhanh.warehouse.enterprises.models import Profile
from tests.factories import make_caller
from tests.factories import register_enterprise as register


def test_an_enterprise_registered_on_the_old_map_moves_with_its_commune(world):
    old = get_unit("VN-2021:26734")  # Tân Định, District 1, on the 2021 map
    park = register("industrial_park", "0300000101", "KCN cũ Quận 1", commune=old.ref)
    factory = register("enterprise", "0300000102", "Nhà máy Tân Định", commune=old.ref, park=park.ref)
    assert factory.path == "/VN/79/760/26734/0300000101/0300000102/"
    officer = make_caller("tan-dinh-officer", factory, "enterprise")

    load_units()  # a map (re)load: the units_loaded hook moves what stands on an old commune

    new = max(successors(old), key=lambda s: s.weight).new
    park.refresh_from_db()
    factory.refresh_from_db()
    assert (park.edition_id, park.parent_id) == ("VN-2025", new.pk)
    assert park.path == f"{new.path}0300000101/"
    assert factory.parent_id == park.pk and factory.path == f"{park.path}0300000102/"
    assert Profile.objects.get(unit=factory).commune == new
    # The same rows: the officer's grant follows, and the new ward's operator now sees the factory.
    assert officer.client().get("/api/v1/units/VN-2025/0300000102").status_code == 200
    ward = make_caller("new-ward-operator", new, "operator")
    assert ward.client().get("/api/v1/units/VN-2025/0300000102").status_code == 200
    assert not Unit.objects.filter(edition_id="VN-2021", kind__in=["enterprise", "industrial_park"]).exists()
    # A second load changes nothing more.
    load_units()
    factory.refresh_from_db()
    assert factory.path == f"{park.path}0300000102/"


def test_a_path_left_stale_by_a_reload_is_repaired(firms):
    from dieuhanh.warehouse.enterprises.services import follow_succession

    Unit.objects.filter(pk=firms.one.pk).update(path="/VN/79/stale/")
    report = follow_succession()
    firms.one.refresh_from_db()
    assert firms.one.path == f"{firms.park.path}{firms.one.code}/" and report.repathed == 1
