"""Reads the administrative units and their 2025 succession from the PyPI packages (the package
data; "sources" elsewhere means the platforms that post events to the warehouse).

VN-2021 (63 provinces → districts → communes, with coordinates) comes from vietnamadminunits'
pre-2025 table. VN-2025 takes its codes and names from vietnam-provinces (the official 2025 list)
and its coordinates and areas from vietnamadminunits, matched by name within the province: the two
packages number about a hundred communes differently, and the official codes win. Succession comes
from vietnamadminunits' 2025 conversion data, which names units by its own keys.
"""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from importlib import metadata
from importlib.util import find_spec
from pathlib import Path

from dieuhanh.units.text import compact, tidy

NATION = "VN"
NATION_NAME = "Việt Nam"


class SourceDataError(RuntimeError):
    """The packages' data no longer fit together; the message says where."""


@dataclass(frozen=True)
class UnitRow:
    code: str
    name: str
    short_name: str
    kind: str
    level: int
    parent_code: str | None
    lat: float | None = None
    lon: float | None = None
    area_km2: float | None = None


@dataclass
class EditionData:
    code: str
    name: str
    effective_from: date
    levels: list[str]
    source: str
    units: list[UnitRow] = field(default_factory=list)


@dataclass(frozen=True)
class SuccessionRow:
    old_code: str  # in VN-2021
    new_code: str  # in VN-2025
    weight: float


def _package_source(*names: str) -> str:
    return ", ".join(f"{n} {metadata.version(n)}" for n in names)


def _data_file(name: str) -> Path:
    # Found without importing the package: its import loads its whole address parser.
    spec = find_spec("vietnamadminunits")
    if spec is None or not spec.submodule_search_locations:
        raise SourceDataError("the package vietnamadminunits is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / name


def _dataset() -> sqlite3.Connection:
    path = _data_file("dataset.db")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    return conn


def _converter() -> dict:
    return json.loads(_data_file("converter_2025.json").read_text("utf-8"))


def _nation() -> UnitRow:
    return UnitRow(NATION, NATION_NAME, NATION_NAME, "nation", 0, None, 16.0, 106.0)


def read_2021() -> EditionData:
    edition = EditionData(
        "VN-2021",
        "63 tỉnh, thành phố; 3 cấp (trước 1/7/2025)",
        date(2021, 1, 1),
        ["nation", "province", "district", "commune"],
        _package_source("vietnamadminunits"),
    )
    edition.units.append(_nation())
    seen: set[str] = set()
    with _dataset() as db:
        for r in db.execute("SELECT * FROM admin_units_legacy ORDER BY provinceCode, districtCode, wardCode"):
            # A row is a commune with its district and province: each column group makes its unit once.
            for part, kind, level, parent in (
                ("province", "province", 1, NATION),
                ("district", "district", 2, r["provinceCode"]),
                ("ward", "commune", 3, r["districtCode"]),
            ):
                code = r[f"{part}Code"]
                if code and code not in seen:  # island districts (Côn Đảo, Lý Sơn, …) have no communes
                    seen.add(code)
                    names = tidy(r[part]), tidy(r[f"{part}Short"])
                    edition.units.append(
                        UnitRow(code, *names, kind, level, parent, r[f"{part}Lat"], r[f"{part}Lon"])
                    )
    return edition


def _short(name: str) -> str:
    for prefix in ("Thành phố ", "Tỉnh ", "Phường ", "Xã ", "Đặc khu "):
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name


def _province_name(province) -> str:
    name = tidy(province.name)
    if province.division_type.value == "tỉnh" and not name.startswith("Tỉnh "):
        return f"Tỉnh {name}"
    return name


def _official_code(candidates: list[sqlite3.Row], official: str, name: str) -> sqlite3.Row:
    if len(candidates) == 1:
        return candidates[0]
    same_code = [c for c in candidates if int(c["wardCode"]) == int(official)]
    if len(same_code) == 1:
        return same_code[0]
    raise SourceDataError(f"VN-2025 commune {official} '{name}': {len(candidates)} matches by name")


def read_2025() -> tuple[EditionData, dict[tuple[str, str], str]]:
    """The VN-2025 edition, and the map from the converter's (province key, ward key) to official codes."""
    from vietnam_provinces import Province, Ward

    edition = EditionData(
        "VN-2025",
        "34 tỉnh, thành phố; 2 cấp (từ 1/7/2025)",
        date(2025, 7, 1),
        ["nation", "province", "commune"],
        _package_source("vietnam-provinces", "vietnamadminunits"),
    )
    edition.units.append(_nation())
    with _dataset() as db:
        rows = db.execute("SELECT * FROM admin_units").fetchall()
    by_name: dict[tuple[int, str], list[sqlite3.Row]] = defaultdict(list)
    province_geo: dict[int, sqlite3.Row] = {}
    for r in rows:
        by_name[(int(r["provinceCode"]), compact(r["ward"]))].append(r)
        province_geo[int(r["provinceCode"])] = r
    for p in sorted(Province.iter_all(), key=lambda p: int(p.code)):
        geo = province_geo.get(int(p.code))
        if geo is None:
            raise SourceDataError(f"VN-2025 province {int(p.code):02d} '{p.name}' has no coordinates")
        name = _province_name(p)
        edition.units.append(
            UnitRow(
                f"{int(p.code):02d}",
                name,
                _short(name),
                "province",
                1,
                NATION,
                geo["provinceLat"],
                geo["provinceLon"],
            )
        )
    keys: dict[tuple[str, str], str] = {}
    for w in sorted(Ward.iter_all(), key=lambda w: int(w.code)):
        code, name = f"{int(w.code):05d}", tidy(w.name)
        candidates = by_name.get((int(w.province_code), compact(name)))
        if not candidates:
            raise SourceDataError(f"VN-2025 commune {code} '{name}' has no match in vietnamadminunits")
        geo = _official_code(candidates, code, name)
        keys[(geo["provinceKey"], geo["wardKey"])] = code
        edition.units.append(
            UnitRow(
                code,
                name,
                _short(name),
                "commune",
                2,
                f"{int(w.province_code):02d}",
                geo["wardLat"],
                geo["wardLon"],
                geo["wardAreaKm2"],
            )
        )
    return edition, keys


def _old_keys() -> tuple[dict[str, str], dict[str, str]]:
    """Converter keys of the pre-2025 units → their codes: communes, and provinces."""
    communes: dict[str, str] = {}
    provinces: dict[str, str] = {}
    with _dataset() as db:
        for r in db.execute(
            "SELECT provinceKey, districtKey, wardKey, provinceCode, districtCode, wardCode "
            "FROM admin_units_legacy"
        ):
            provinces[r["provinceKey"]] = r["provinceCode"]
            # An island district with no communes is keyed as the district with an empty ward.
            ward_key = r["wardKey"] if r["wardCode"] else ""
            communes[f"{r['provinceKey']}_{r['districtKey']}_{ward_key}"] = r["wardCode"] or r["districtCode"]
    return communes, provinces


def read_succession(new_keys: dict[tuple[str, str], str]) -> list[SuccessionRow]:
    """Old → new for provinces and communes; an old unit's weights sum to 1 (by new units' area)."""
    conv = _converter()
    old_communes, old_provinces = _old_keys()
    with _dataset() as db:
        new_province_code = {
            r["provinceKey"]: r["provinceCode"]
            for r in db.execute("SELECT DISTINCT provinceKey, provinceCode FROM admin_units")
        }
        area = {
            (r["provinceKey"], r["wardKey"]): r["wardAreaKm2"]
            for r in db.execute("SELECT provinceKey, wardKey, wardAreaKm2 FROM admin_units")
        }

    rows: list[SuccessionRow] = []
    for new_pk, old_pks in conv["DICT_PROVINCE"].items():
        rows += [SuccessionRow(old_provinces[o], new_province_code[new_pk], 1.0) for o in old_pks]

    targets: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for new_pk, wards in conv["DICT_PROVINCE_WARD_NO_DIVIDED"].items():
        for new_wk, old_list in wards.items():
            for old in old_list:
                targets[old].add((new_pk, new_wk))
    for new_pk, divided in conv["DICT_PROVINCE_WARD_DIVIDED"].items():
        for old, news in divided.items():
            targets[old].update((new_pk, n["newWardKey"]) for n in news)

    for old_key, news in sorted(targets.items()):
        if old_key not in old_communes:
            raise SourceDataError(f"succession names an unknown pre-2025 unit '{old_key}'")
        rows += _shares(old_communes[old_key], sorted(news), area, new_keys)
    return rows


def _shares(
    old_code: str,
    news: list[tuple[str, str]],
    area: dict[tuple[str, str], float | None],
    new_keys: dict[tuple[str, str], str],
) -> list[SuccessionRow]:
    areas = [area.get(n) for n in news]
    known = [a for a in areas if a]
    if len(known) == len(areas):
        weights = [a / sum(known) for a in known]
    else:  # no area for one of them: share equally rather than guess
        weights = [1 / len(news)] * len(news)
    return [SuccessionRow(old_code, new_keys[n], w) for n, w in zip(news, weights, strict=True)]
