"""The province shapes of both maps, built from the npm package @svg-maps/vietnam (dieuhanh.units.shapes).

They need `make assets` (npm ci) to have installed the package into node_modules/; without it the
tests fail and say so (never skip)."""

from __future__ import annotations

import gzip
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import shapely
from shapely.geometry import Point, shape

from dieuhanh.units import packaged, shapes

NODE_MODULES = Path(__file__).resolve().parents[2] / "node_modules"


@pytest.fixture(scope="module")
def package() -> shapes.Package:
    if not (NODE_MODULES / shapes.PACKAGE / "index.js").exists():
        pytest.fail(f"{shapes.PACKAGE} is not in {NODE_MODULES}: run `make assets` (npm ci) first")
    return shapes.read_package(NODE_MODULES)


@pytest.fixture(scope="module")
def built(package) -> shapes.Built:
    return shapes.build(NODE_MODULES)


@pytest.fixture(scope="module")
def units():
    old = packaged.read_2021()
    new, _keys = packaged.read_2025()
    return old, new


def test_every_province_of_both_maps_has_a_shape(built, units):
    old, new = units
    assert set(built.shapes["VN-2021"]) == {u.code for u in old.units if u.kind == "province"}
    assert set(built.shapes["VN-2025"]) == {u.code for u in new.units if u.kind == "province"}
    assert len(built.shapes["VN-2021"]) == 63 and len(built.shapes["VN-2025"]) == 34
    for edition, found in built.shapes.items():
        for code, geometry in found.items():
            assert geometry.is_valid and not geometry.is_empty, f"{edition}:{code}"
            assert geometry.geom_type in {"Polygon", "MultiPolygon"}


def test_each_2025_province_is_the_union_of_its_2021_predecessors(built):
    old, new = built.shapes["VN-2021"], built.shapes["VN-2025"]
    assert sorted(c for parts in built.parts.values() for c in parts) == sorted(old)  # each once
    assert len(built.parts["79"]) == 3  # Hồ Chí Minh City, Bình Dương, Bà Rịa - Vũng Tàu
    assert built.parts["01"] == ["01"]  # Hà Nội stays as it was
    for code, parts in built.parts.items():
        union = shapely.union_all([old[p] for p in parts])
        # The dissolve only closes the slivers between drawn borders: the same area within 0.5%.
        assert new[code].symmetric_difference(union).area < 0.005 * union.area, code
    # The archipelagos go with their provinces on both maps: Hoàng Sa with Đà Nẵng, Trường Sa with
    # Khánh Hòa (each of which took in a neighbour in 2025).
    assert old["48"].bounds[2] > 112 and old["56"].bounds[1] < 9
    assert new["48"].bounds[2] > 112 and new["56"].bounds[1] < 9


def test_the_drawing_lies_on_the_official_coordinates(built, units):
    """The georeferencing: the fit's error on the official boxes, and the communes' official
    coordinates inside their provinces' shapes."""
    assert built.fit_rms_km < 5 and len(built.fitted) >= 42  # 1.9 km over 54 provinces
    old, _new = units
    district_province = {u.code: u.parent_code for u in old.units if u.kind == "district"}
    provinces = built.shapes["VN-2021"]
    communes = [u for u in old.units if u.kind == "commune" and u.lat is not None]
    inside = sum(provinces[district_province[u.parent_code]].contains(Point(u.lon, u.lat)) for u in communes)
    assert inside / len(communes) > 0.97  # 98.9% with @svg-maps/vietnam 2.0.0; misses are along borders
    near = sum(
        provinces[district_province[u.parent_code]].distance(Point(u.lon, u.lat)) < 0.05 for u in communes
    )
    assert near / len(communes) > 0.995  # 99.85% within about 5 km


def test_georeferencing_recovers_a_known_map():
    """A drawing made by a known quadratic map is brought back exactly, and a province whose box
    disagrees (here: shifted by half a degree) is left out of the fit."""
    truth = np.array([[0.02, 0.0], [0.0, -0.02], [102.0, 23.5], [1e-6, 0.0], [0.0, 0.0], [0.0, -2e-6]])
    rng = np.random.default_rng(7)
    drawn, real = {}, {}
    for i in range(30):
        x0, y0 = rng.uniform(0, 700, 2)
        box = (x0, y0, x0 + rng.uniform(10, 60), y0 + rng.uniform(10, 60))
        (w, n), (e, s) = shapes._terms(np.array([[box[0], box[1]], [box[2], box[3]]])) @ truth
        drawn[f"{i:02d}"], real[f"{i:02d}"] = box, (w, s, e, n)
    w, s, e, n = real["07"]
    real["07"] = (w + 0.5, s, e + 0.5, n)
    coefficients, fitted, rms, _worst = shapes.georeference(drawn, real)
    assert "07" not in fitted and len(fitted) == 29 and rms < 0.01
    assert np.allclose(coefficients, truth, atol=1e-9)


def test_the_served_maps_are_small_and_name_their_source(built):
    for edition, count in (("VN-2021", 63), ("VN-2025", 34)):
        collection = shapes.feature_collection(built, edition)
        body = json.dumps(collection, ensure_ascii=False, separators=(",", ":")).encode()
        assert len(body) < 300_000, f"{edition}: {len(body)} bytes"
        assert len(gzip.compress(body)) < 80_000
        assert len(collection["features"]) == count
        refs = {f["id"] for f in collection["features"]}
        assert all(r.startswith(f"{edition}:") for r in refs)
        assert "@svg-maps/vietnam" in collection["attribution"] and "CC BY 4.0" in collection["attribution"]
        for feature in collection["features"]:
            geometry = shape(feature["geometry"])
            assert geometry.is_valid and not geometry.is_empty
            original = built.shapes[edition][feature["id"].split(":")[1]]
            assert abs(geometry.area - original.area) < 0.05 * original.area, feature["id"]


def test_the_command_writes_both_maps(tmp_path, package):
    assert shapes.main([str(NODE_MODULES), str(tmp_path)]) == 0
    for edition in shapes.EDITIONS:
        assert json.loads((tmp_path / f"{edition}.json").read_text("utf-8"))["edition"] == edition
    assert shapes.main([str(tmp_path / "nowhere"), str(tmp_path)]) == 1  # the package missing: said


def test_a_province_without_a_shape_stops_the_build(package, units):
    old, _new = units
    without_hue = replace(package, locations=[loc for loc in package.locations if loc.id != "tthue"])
    with pytest.raises(shapes.ShapeError, match="provinces without a shape: 46 Thành phố Huế"):
        shapes.match(without_hue, old.units)
    stray = replace(
        package, locations=[*package.locations, shapes.Location("Atlantis", "x", "M0 0 L1 0 L1 1 Z")]
    )
    with pytest.raises(shapes.ShapeError, match="shapes without a province: 'Atlantis'"):
        shapes.match(stray, old.units)


def test_a_2021_province_split_between_2025_provinces_stops_the_build():
    rows = [
        packaged.SuccessionRow("01", "01", 1.0),
        packaged.SuccessionRow("02", "08", 0.5),
        packaged.SuccessionRow("02", "15", 0.5),
    ]
    with pytest.raises(shapes.ShapeError, match="split"):
        shapes.province_parts(rows, {"01", "02"})
    with pytest.raises(shapes.ShapeError, match=r"missing \['04'\]"):
        shapes.province_parts(rows[:1], {"01", "04"})


def test_names_match_without_diacritics_or_punctuation():
    assert shapes.name_key("Bà Rịa - Vũng Tàu") == shapes.name_key("Ba Ria–Vung Tau") == "bariavungtau"
    assert shapes.name_key("Đắk Lắk") == "daklak"


def test_svg_paths_relative_absolute_curves_and_holes():
    # A 10×10 square drawn with a relative move, h/v and a curve, and a 2×2 hole drawn absolutely.
    square = "m 0,0 h 10 v 10 c 0,0 -5,0 -10,0 z M 4,4 L 6,4 6,6 4,6 Z"
    rings = shapes.svg_rings(square)
    assert rings[0] == [(0, 0), (10, 0), (10, 10), (0, 10)]
    assert rings[1] == [(4, 4), (6, 4), (6, 6), (4, 6)]  # pairs after L are lines
    assert shapes.svg_geometry(square).area == pytest.approx(96)
    # A second relative move starts from the first ring's start after z.
    two = shapes.svg_rings("m 1,1 2,0 0,2 z m 10,0 2,0 0,2 z")
    assert two[1][0] == (11, 1)
    with pytest.raises(shapes.ShapeError):
        shapes.svg_rings("m 1")


def test_the_attribution_names_the_source_and_escapes_what_the_package_says(package):
    text = package.attribution
    assert "Stephen Truong" in text and "@svg-maps/vietnam 2.0.0" in text
    assert '<a href="https://creativecommons.org/licenses/by/4.0/">CC BY 4.0</a>' in text
    tampered = replace(package, author='<img src=x onerror="alert(1)">')
    assert "<img" not in tampered.attribution and "&lt;img" in tampered.attribution
