from hypothesis import given
from hypothesis import strategies as st

from dieuhanh.units.models import Unit
from dieuhanh.units.services import search
from dieuhanh.units.text import fold


def test_fold_examples():
    assert fold("Phường  Bến Thành") == "phuong ben thanh"
    assert fold("Đắk Lắk") == "dak lak"
    assert fold("Xã Ea M’Droh") == "xa ea m droh"


@given(st.text())
def test_fold_is_ascii_and_idempotent(text):
    folded = fold(text)
    assert fold(folded) == folded
    assert folded == folded.strip()
    assert all(ch.isascii() for ch in folded)


def _names(query: str, edition="VN-2025") -> set[str]:
    return set(search(Unit.objects.filter(edition_id=edition), query).values_list("name", flat=True))


def test_search_with_or_without_diacritics(world):
    for query in ["ben thanh", "Bến Thành", "BEN  THANH", "phuong ben-thanh"]:
        assert "Phường Bến Thành" in _names(query), query
    assert "Tỉnh Đắk Lắk" in _names("dak lak")


def test_search_through_the_api_stays_in_the_callers_area(world):
    # Both wards hold "Sài Gòn"/"Bến Thành" once; the other ward's operator finds nothing of them.
    found = world.operator_b.client().get("/api/v1/units", {"q": "ben thanh"}).json()
    assert found == {"count": 0, "items": []}
    found = world.operator_a.client().get("/api/v1/units", {"q": "ben thanh"}).json()
    assert [i["ref"] for i in found["items"]] == ["VN-2025:26743"]
    found = world.leader.client().get("/api/v1/units", {"q": "ben thanh", "edition": "VN-2021"}).json()
    assert "VN-2021:26743" in [i["ref"] for i in found["items"]]
