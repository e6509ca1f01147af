"""Province boundaries for both maps, built from a registry package (never drawn by hand, never committed).

The shapes come from the npm package `@svg-maps/vietnam` (CC BY 4.0, by Stephen Truong): the 63
provinces of the pre-2025 map and the Hoàng Sa and Trường Sa archipelagos as SVG paths. This module

1. reads the package's paths (`m`/`l`/`c`/`h`/`v`/`z`, absolute or relative; a curve by its end point);
2. matches each path to a VN-2021 province by its name without diacritics (`Ba Ria–Vung Tau` is
   `Bà Rịa - Vũng Tàu`), and an archipelago to the district of that name, whose province it joins
   (Hoàng Sa: Đà Nẵng, Trường Sa: Khánh Hòa) — no table of names; a province without a shape, or a
   shape without a province, stops the build;
3. georeferences the drawing: the quadratic map from the drawing's plane to longitude/latitude that
   best fits (least squares) the corners of each province's box in the drawing to those of its box
   in the official unit data (vietnamadminunits), leaving out the provinces whose boxes disagree;
   the fit's error is reported, and tests bound it (and how many communes fall in their province);
4. dissolves each VN-2025 province from the VN-2021 provinces that the succession carries into it
   (every 2025 province is a union of whole 2021 provinces: anything else stops the build);
5. simplifies each map as a coverage (shared borders stay shared) and rounds coordinates, so that a
   map is a few hundred kilobytes.

`python -m dieuhanh.units.shapes NODE_MODULES OUT_DIR` writes OUT_DIR/VN-2021.json and VN-2025.json
(`make assets`); the room serves them with caching headers (commandroom: room-shapes).
"""

from __future__ import annotations

import json
import math
import re
import sys
import unicodedata
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Polygon, mapping
from shapely.geometry.base import BaseGeometry

from dieuhanh.units import packaged

PACKAGE = "@svg-maps/vietnam"
LICENCE = "CC BY 4.0"
LICENCE_URL = "https://creativecommons.org/licenses/by/4.0/"
# Tolerance of the simplification, in degrees (0.01° ≈ 1.1 km), and the decimals kept (≈ 110 m).
TOLERANCE = 0.01
DECIMALS = 3
SLIVER = 0.001  # degrees² (≈ 12 km²): a hole smaller than this in a dissolved province is a sliver
EDITIONS = ("VN-2021", "VN-2025")


class ShapeError(RuntimeError):
    """The package's shapes and the units no longer fit together; the message says where."""


@dataclass(frozen=True)
class Location:
    """One shape of the package: its name, id and SVG path."""

    name: str
    id: str
    path: str


@dataclass(frozen=True)
class Package:
    version: str
    author: str
    licence: str
    locations: list[Location]

    @property
    def attribution(self) -> str:
        """What the map shows, as CC BY asks: the creator, the source, the licence, and that it was changed
        (HTML for Leaflet's attribution control)."""
        return (
            f"Ranh giới tỉnh © {escape(self.author)}, {PACKAGE} {escape(self.version)}, "
            f'<a href="{LICENCE_URL}">{self.licence}</a>; '
            "đã quy về kinh vĩ độ, hợp nhất theo năm 2025, giản lược"
        )


@dataclass
class Built:
    """The maps: edition → unit code → geometry (lon/lat), with the georeferencing's quality."""

    shapes: dict[str, dict[str, BaseGeometry]]
    names: dict[str, dict[str, str]]
    fit_rms_km: float
    fit_max_km: float
    package: Package
    parts: dict[str, list[str]] = field(default_factory=dict)  # VN-2025 code → VN-2021 codes
    fitted: list[str] = field(default_factory=list)  # the provinces the georeferencing was fitted on


# Reading the package


def read_package(node_modules: Path) -> Package:
    """The package's shapes from its installed folder (index.js is `export default {JSON}`)."""
    folder = node_modules / PACKAGE
    if not (folder / "index.js").exists():
        raise ShapeError(f"{PACKAGE} is not installed in {node_modules}: run `make assets` (npm ci)")
    meta = json.loads((folder / "package.json").read_text("utf-8"))
    if meta.get("license") != LICENCE:
        raise ShapeError(
            f"{PACKAGE} {meta.get('version')} is licensed {meta.get('license')!r}, not {LICENCE}"
        )
    text = (folder / "index.js").read_text("utf-8").strip()
    start = text.index("{")
    data = json.loads(text[start:].rstrip(";"))
    locations = [Location(loc["name"], loc["id"], loc["path"]) for loc in data["locations"]]
    author = re.sub(r"\s*<[^>]*>", "", str(meta.get("author", ""))).strip()
    return Package(str(meta["version"]), author, LICENCE, locations)


_TOKEN = re.compile(r"([MmLlCcHhVvZz])|([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)")
_ARGS = {"m": 2, "l": 2, "c": 6, "h": 1, "v": 1}


def svg_rings(path: str) -> list[list[tuple[float, float]]]:
    """The closed rings of an SVG path, in the drawing's coordinates. Curves are replaced by the
    segment to their end point (the package's curves are a few pixels long)."""
    tokens: list[str | float] = [c if c else float(n) for c, n in _TOKEN.findall(path)]
    rings: list[list[tuple[float, float]]] = []
    ring: list[tuple[float, float]] = []
    x = y = start_x = start_y = 0.0
    command = ""
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if isinstance(token, str):
            command, i = token, i + 1
            if command in "zZ":
                if ring:
                    rings.append(ring)
                ring, x, y = [], start_x, start_y
            continue
        kind = command.lower()
        if kind not in _ARGS:
            raise ShapeError(f"SVG path: numbers after {command!r}")
        args = [float(a) for a in tokens[i : i + _ARGS[kind]]]
        if len(args) < _ARGS[kind] or any(isinstance(a, str) for a in tokens[i : i + _ARGS[kind]]):
            raise ShapeError(f"SVG path: {command!r} lacks its numbers")
        i += _ARGS[kind]
        relative = command.islower()
        if kind == "h":
            x = x + args[0] if relative else args[0]
        elif kind == "v":
            y = y + args[0] if relative else args[0]
        else:
            end_x, end_y = args[-2], args[-1]
            x, y = (x + end_x, y + end_y) if relative else (end_x, end_y)
        if kind == "m":
            if ring:
                rings.append(ring)
            ring, start_x, start_y = [], x, y
            command = "l" if relative else "L"  # further pairs after a move are lines
        ring.append((x, y))
    if ring:
        rings.append(ring)
    return [r for r in rings if len(r) >= 3]


def svg_geometry(path: str) -> BaseGeometry:
    """The area an SVG path draws (its rings as the even-odd rule fills them)."""
    area: BaseGeometry = Polygon()
    for ring in svg_rings(path):
        area = area.symmetric_difference(shapely.make_valid(Polygon(ring)))
    return _polygons(area)


def _polygons(geometry: BaseGeometry) -> BaseGeometry:
    """The polygonal part of a geometry (make_valid and unions may leave lines behind)."""
    parts = [g for g in getattr(geometry, "geoms", [geometry]) if isinstance(g, Polygon | MultiPolygon)]
    return shapely.union_all(parts) if parts else Polygon()


# Matching shapes to units


def name_key(name: str) -> str:
    """A name without diacritics, case, spaces or punctuation: `Bà Rịa - Vũng Tàu` → `bariavungtau`."""
    text = unicodedata.normalize("NFD", name.replace("Đ", "D").replace("đ", "d"))
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return re.sub(r"[^a-z0-9]", "", text.lower())


def _keys(row: packaged.UnitRow) -> set[str]:
    return {name_key(row.short_name), name_key(row.name)}


def match(package: Package, units: Iterable[packaged.UnitRow]) -> dict[str, BaseGeometry]:
    """VN-2021 province code → its shape in the drawing's plane, by name; an archipelago shape joins
    the province of the district that bears its name. Raises ShapeError for anything unmatched."""
    return {
        code: shapely.union_all([own, *islands]) for code, (own, islands) in _matched(package, units).items()
    }


def _matched(
    package: Package, units: Iterable[packaged.UnitRow]
) -> dict[str, tuple[BaseGeometry, list[BaseGeometry]]]:
    """Province code → (its own shape, the archipelagos that join it)."""
    rows = list(units)
    provinces = [r for r in rows if r.kind == "province"]
    districts = [r for r in rows if r.kind == "district"]
    by_key: dict[str, list[packaged.UnitRow]] = defaultdict(list)
    for p in provinces:
        for key in _keys(p):
            by_key[key].append(p)
    district_by_key: dict[str, list[packaged.UnitRow]] = defaultdict(list)
    for d in districts:
        for key in _keys(d):
            district_by_key[key].append(d)
    own: dict[str, list[BaseGeometry]] = defaultdict(list)
    islands: dict[str, list[BaseGeometry]] = defaultdict(list)
    unmatched = []
    for loc in package.locations:
        key = name_key(loc.name)
        found, archipelago = {p.code for p in by_key.get(key, [])}, False
        if not found:  # a province renamed since the drawing: `Thua Thien-Hue` is now `Huế`
            found = {p.code for k, ps in by_key.items() if len(k) >= 3 and key.endswith(k) for p in ps}
        if not found:  # an archipelago: a district of the province it belongs to
            found, archipelago = {d.parent_code or "" for d in district_by_key.get(key, [])}, True
        if len(found) != 1:
            unmatched.append(f"{loc.name!r} ({len(found)} matches)")
            continue
        (islands if archipelago else own)[found.pop()].append(svg_geometry(loc.path))
    missing = [f"{p.code} {p.name}" for p in provinces if p.code not in own]
    if unmatched or missing:
        raise ShapeError(
            f"{PACKAGE}: shapes without a province: {', '.join(unmatched) or 'none'}; "
            f"provinces without a shape: {', '.join(missing) or 'none'}"
        )
    return {code: (shapely.union_all(parts), islands.get(code, [])) for code, parts in own.items()}


# Georeferencing


Box = tuple[float, float, float, float]  # min x, min y, max x, max y (lon/lat: west, south, east, north)


def _terms(xy: np.ndarray) -> np.ndarray:
    """The terms of a quadratic map of the plane: x, y, 1, x², xy, y²."""
    x, y = xy[:, 0], xy[:, 1]
    return np.column_stack([x, y, np.ones_like(x), x * x, x * y, y * y])


def _corners(drawn: Box, real: Box) -> tuple[list[list[float]], list[list[float]]]:
    """The four corners of a shape's box in the drawing (y grows downwards) and on the map."""
    x0, y0, x1, y1 = drawn
    west, south, east, north = real
    plane = [[x0, y0], [x1, y0], [x0, y1], [x1, y1]]
    earth = [[west, north], [east, north], [west, south], [east, south]]
    return plane, earth


def georeference(drawn: dict[str, Box], real: dict[str, Box]) -> tuple[np.ndarray, list[str], float, float]:
    """The quadratic map from the drawing's plane to (lon, lat) that best fits (least squares) the
    corners of each province's box in the drawing to the corners of its box in the official data.
    A province whose box disagrees (its islands counted on one side only; more than 3 times the
    median error) is left out of a second fit. Returns the map (6×2), the provinces it was fitted on,
    and its error over them (rms and max, in km)."""
    codes = sorted(c for c in drawn if c in real)

    def fit(using: list[str]) -> tuple[np.ndarray, np.ndarray]:
        pairs = [_corners(drawn[c], real[c]) for c in using]
        plane = np.array([p for pl, _ in pairs for p in pl])
        earth = np.array([e for _, ea in pairs for e in ea])
        coefficients, *_ = np.linalg.lstsq(_terms(plane), earth, rcond=None)
        error = _terms(plane) @ coefficients - earth
        km = np.hypot(error[:, 0] * 111.32 * np.cos(np.radians(earth[:, 1])), error[:, 1] * 110.57)
        return coefficients, km

    if len(codes) < 12:
        raise ShapeError(f"georeferencing needs the boxes of at least 12 provinces, not {len(codes)}")
    _coefficients, km = fit(codes)
    per_province = km.reshape(-1, 4).mean(axis=1)
    kept = [c for c, e in zip(codes, per_province, strict=True) if e <= 3 * float(np.median(per_province))]
    if len(kept) < len(codes) * 2 // 3:
        raise ShapeError(f"the drawing fits the official boxes of only {len(kept)} of {len(codes)} provinces")
    coefficients, km = fit(kept)
    return coefficients, kept, float(math.sqrt(float(np.mean(km**2)))), float(np.max(km))


def _apply(coefficients: np.ndarray, geometry: BaseGeometry) -> BaseGeometry:
    return shapely.transform(geometry, lambda xy: _terms(xy) @ coefficients)


def official_boxes() -> dict[str, Box]:
    """The VN-2021 provinces' bounding boxes in vietnamadminunits (`lat,lon – lat,lon`)."""
    boxes: dict[str, Box] = {}
    with packaged._dataset() as db:
        for code, text in db.execute("SELECT DISTINCT provinceCode, provinceBounds FROM admin_units_legacy"):
            try:
                (lat0, lon0), (lat1, lon1) = (map(float, corner.split(",")) for corner in text.split("–"))
            except (AttributeError, ValueError):
                continue  # a province without a box is left out of the fit, not out of the map
            boxes[code] = (min(lon0, lon1), min(lat0, lat1), max(lon0, lon1), max(lat0, lat1))
    return boxes


# The maps


def province_parts(
    succession: Iterable[packaged.SuccessionRow], provinces_2021: set[str]
) -> dict[str, list[str]]:
    """VN-2025 province → the VN-2021 provinces it is the union of (the succession's province rows).
    Raises ShapeError when a 2021 province is split or missing."""
    parts: dict[str, list[str]] = defaultdict(list)
    seen: dict[str, list[str]] = defaultdict(list)
    for row in succession:
        if row.old_code in provinces_2021:
            parts[row.new_code].append(row.old_code)
            seen[row.old_code].append(row.new_code)
    split = [f"{old} → {', '.join(new)}" for old, new in seen.items() if len(new) != 1]
    lost = sorted(provinces_2021 - set(seen))
    if split or lost:
        raise ShapeError(
            f"2025 provinces are not unions of whole 2021 provinces: split {split}, missing {lost}"
        )
    return {new: sorted(old) for new, old in parts.items()}


def build(node_modules: Path) -> Built:
    """Both maps' province shapes in lon/lat, unsimplified."""
    package = read_package(node_modules)
    old = packaged.read_2021()
    new, keys = packaged.read_2025()
    succession = packaged.read_succession(keys)
    matched = _matched(package, old.units)
    drawn = {code: shapely.union_all([own, *islands]) for code, (own, islands) in matched.items()}
    provinces = {r.code: r for r in old.units if r.kind == "province"}
    # The archipelagos are not in the official boxes: each province's box in the drawing is its own shape's.
    boxes = {code: tuple(own.bounds) for code, (own, _islands) in matched.items()}
    coefficients, fitted, rms, worst = georeference(boxes, official_boxes())
    old_shapes = {code: _polygons(shapely.make_valid(_apply(coefficients, g))) for code, g in drawn.items()}
    parts = province_parts(succession, set(provinces))
    new_provinces = {r.code: r for r in new.units if r.kind == "province"}
    missing = sorted(set(new_provinces) - set(parts))
    if missing:
        raise ShapeError(f"VN-2025 provinces with no 2021 province in the succession: {missing}")
    new_shapes = {code: _dissolve([old_shapes[o] for o in parts[code]]) for code in sorted(new_provinces)}
    return Built(
        shapes={"VN-2021": old_shapes, "VN-2025": new_shapes},
        names={
            "VN-2021": {c: r.name for c, r in provinces.items()},
            "VN-2025": {c: r.name for c, r in new_provinces.items()},
        },
        fit_rms_km=rms,
        fit_max_km=worst,
        fitted=fitted,
        package=package,
        parts=parts,
    )


def _dissolve(shapes: list[BaseGeometry]) -> BaseGeometry:
    """The union of neighbouring provinces, without the slivers their drawn borders leave between
    them (holes under SLIVER; the package draws no lake, so no real hole is that small)."""
    union = _polygons(shapely.make_valid(shapely.union_all(shapes)))
    kept = [
        Polygon(p.exterior, [h for h in p.interiors if Polygon(h).area >= SLIVER])
        for p in getattr(union, "geoms", [union])
    ]
    return shapely.union_all(kept)


def simplified(shapes: dict[str, BaseGeometry], tolerance: float = TOLERANCE) -> dict[str, BaseGeometry]:
    """The map simplified as one coverage (neighbours keep one shared border), coordinates rounded."""
    codes = sorted(shapes)
    geoms = np.array([shapes[c] for c in codes], dtype=object)
    try:
        simple = shapely.coverage_simplify(geoms, tolerance)
    except shapely.errors.GEOSException:  # not a clean coverage: each shape on its own
        simple = shapely.simplify(geoms, tolerance, preserve_topology=True)
    rounded = shapely.set_precision(simple, 10**-DECIMALS)
    return {c: _polygons(shapely.make_valid(g)) for c, g in zip(codes, rounded, strict=True)}


def feature_collection(built: Built, edition: str, tolerance: float = TOLERANCE) -> dict[str, Any]:
    shapes = simplified(built.shapes[edition], tolerance)
    features = []
    for code, geometry in shapes.items():
        if geometry.is_empty:
            raise ShapeError(f"{edition}:{code} has no shape left after simplification")
        ref = f"{edition}:{code}"
        features.append(
            {
                "type": "Feature",
                "id": ref,
                "properties": {"ref": ref, "name": built.names[edition][code]},
                "geometry": _rounded(mapping(geometry)),
            }
        )
    return {
        "type": "FeatureCollection",
        "edition": edition,
        "attribution": built.package.attribution,
        "source": {"package": PACKAGE, "version": built.package.version, "licence": LICENCE},
        "fit_rms_km": round(built.fit_rms_km, 1),
        "features": features,
    }


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, DECIMALS)
    if isinstance(value, list | tuple):
        return [_rounded(v) for v in value]
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return value


def write(node_modules: Path, out: Path) -> dict[str, int]:
    """Builds both maps into OUT/EDITION.json; returns each file's size in bytes."""
    built = build(node_modules)
    out.mkdir(parents=True, exist_ok=True)
    sizes = {}
    for edition in EDITIONS:
        text = json.dumps(feature_collection(built, edition), ensure_ascii=False, separators=(",", ":"))
        target = out / f"{edition}.json"
        target.write_text(text, "utf-8")
        sizes[edition] = len(text.encode())
    return sizes


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m dieuhanh.units.shapes NODE_MODULES OUT_DIR", file=sys.stderr)
        return 2
    try:
        sizes = write(Path(argv[0]), Path(argv[1]))
    except ShapeError as error:
        print(f"province shapes: {error}", file=sys.stderr)
        return 1
    for edition, size in sizes.items():
        print(f"{argv[1]}/{edition}.json: {size / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
