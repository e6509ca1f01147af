"""The real units of both maps, their paths, their succession, and loading them again."""

from django.db import connection
from django.db.models import Count, Sum

from dieuhanh.units.models import Succession, Unit
from dieuhanh.units.services import load_units


def _count(caller, **params) -> int:
    response = caller.client().get("/api/v1/units", {**params, "page_size": 1})
    assert response.status_code == 200, response.content
    return response.json()["count"]


def test_counts_through_the_api(world):
    leader = world.leader
    assert _count(leader, edition="VN-2021", kind="province") == 63
    assert _count(leader, edition="VN-2021", kind="district") == 696
    communes_2021 = _count(leader, edition="VN-2021", kind="commune")
    assert 10_000 <= communes_2021 <= 10_100  # "about 10,000" (10,035 in the package)
    assert _count(leader, edition="VN-2021", level=3) == communes_2021
    assert _count(leader, edition="VN-2025", kind="province") == 34
    assert _count(leader, edition="VN-2025", kind="commune") == 3321
    assert _count(leader, edition="VN-2025", level=2) == 3321
    assert _count(leader, edition="VN-2025", kind="district") == 0


def test_official_codes_names_and_paths(world):
    ben_thanh = Unit.objects.ref("VN-2025:26743")
    assert ben_thanh.name == "Phường Bến Thành"
    assert ben_thanh.path == "/VN/79/26743/"
    assert ben_thanh.parent.name == "Thành phố Hồ Chí Minh"
    assert ben_thanh.lat is not None and 10 < ben_thanh.lat < 11
    old = Unit.objects.ref("VN-2021:26734")  # Tân Định, District 1, on the old map
    assert old.path == "/VN/79/760/26734/"
    assert old.parent.name == "Quận 1"


def test_subtree_by_path_equals_subtree_by_parent_links(world):
    """`path__under` must give exactly what walking parent links gives, on both databases."""
    table = Unit._meta.db_table
    for ref in ["VN-2021:79", "VN-2021:01", "VN-2025:79", "VN-2021:760"]:
        root = Unit.objects.ref(ref)
        by_path = set(Unit.objects.under(root).values_list("id", flat=True))
        with connection.cursor() as cur:
            cur.execute(
                f"WITH RECURSIVE t(id) AS (SELECT id FROM {table} WHERE id = %s "  # noqa: S608
                f"UNION ALL SELECT u.id FROM {table} u JOIN t ON u.parent_id = t.id) SELECT id FROM t",
                [root.id],
            )
            by_links = {row[0] for row in cur.fetchall()}
        assert by_path == by_links, ref
        assert len(by_path) > 1


def test_second_load_changes_nothing(world):
    before = Unit.objects.count(), Succession.objects.count()
    report = load_units()
    assert not report.changed
    assert report.unchanged == {"VN-2021": 10_795, "VN-2025": 3_356}
    assert (Unit.objects.count(), Succession.objects.count()) == before


def test_load_repairs_a_changed_unit(world):
    Unit.objects.filter(edition_id="VN-2025", code="26743").update(name="Sửa nhầm")
    report = load_units()
    assert report.updated == {"VN-2021": 0, "VN-2025": 1}
    assert Unit.objects.ref("VN-2025:26743").name == "Phường Bến Thành"


def test_every_old_commune_has_a_successor_and_weights_sum_to_one(world):
    communes = Unit.objects.filter(edition_id="VN-2021", kind="commune")
    without = communes.annotate(n=Count("successions")).filter(n=0)
    assert without.count() == 0
    sums = Succession.objects.values("old_id").annotate(total=Sum("weight"))
    assert sums.count() == communes.count() + 63 + 5  # communes, provinces, 5 island districts
    assert all(abs(row["total"] - 1) < 1e-9 for row in sums)


def test_province_merges(world):
    hcm = Unit.objects.ref("VN-2025:79")
    olds = {s.old.name for s in hcm.precessions.select_related("old")}
    assert olds == {"Thành phố Hồ Chí Minh", "Tỉnh Bình Dương", "Tỉnh Bà Rịa - Vũng Tàu"}
    assert Succession.objects.filter(old__kind="province").values("new").distinct().count() == 34


def test_a_divided_commune_is_shared_by_area(world):
    """Cầu Ông Lãnh (old District 1) was divided; its shares follow the new wards' areas."""
    old = Unit.objects.ref("VN-2021:26752")
    shares = {s.new.code: s for s in old.successions.select_related("new")}
    assert len(shares) >= 2
    area = {code: s.new.area_km2 for code, s in shares.items()}
    for code, s in shares.items():
        assert abs(s.weight - area[code] / sum(area.values())) < 1e-9
