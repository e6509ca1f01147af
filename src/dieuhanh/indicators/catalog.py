"""Catalogue files: an indicator system's data elements, data sets, indicators and targets, and
optionally the figures its source documents state (`seed_values`), in one JSON file.

`dieuhanh catalog load ict` reads the shipped `catalogs/ict.json` (the ICT sector's figures as the
seeds report them); any other argument is a path. Loading is idempotent: what is already as the file
says is left alone and counted as unchanged, so a second load reports nothing changed.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.db import transaction

from dieuhanh.accounts.models import User
from dieuhanh.indicators import services
from dieuhanh.indicators.analytics import check_formula
from dieuhanh.indicators.datavalues import ImportSummary, import_values
from dieuhanh.indicators.formula import FormulaError
from dieuhanh.indicators.models import DataElement, DataSet, Indicator, Target
from dieuhanh.units.models import Unit
from dieuhanh.units.scoping import Area

SHIPPED = Path(__file__).parent / "catalogs"
ELEMENT_FIELDS = services.ELEMENT_FIELDS
DATA_SET_FIELDS = services.DATA_SET_FIELDS
INDICATOR_FIELDS = services.INDICATOR_FIELDS


class CatalogError(ValueError):
    pass


@dataclass
class LoadReport:
    counts: Counter = field(default_factory=Counter)  # ("data element", "created") → n
    values: ImportSummary | None = None

    @property
    def changed(self) -> bool:
        return any(n for (_, what), n in self.counts.items() if what != "unchanged") or bool(
            self.values and self.values.imported + self.values.updated
        )


def shipped() -> list[str]:
    return sorted(p.stem for p in SHIPPED.glob("*.json"))


def read(name_or_path: str) -> dict[str, Any]:
    path = SHIPPED / f"{name_or_path}.json" if name_or_path in shipped() else Path(name_or_path)
    if not path.exists():
        raise CatalogError(f"no catalogue '{name_or_path}' (shipped: {', '.join(shipped())}; or give a file)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CatalogError(f"{path}: not JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None


@transaction.atomic
def load(name_or_path: str, *, actor: User | None, with_seed_values: bool = False) -> LoadReport:
    """Load a catalogue; all of it or, on an error, none of it. A catalogue is the nation's: what it
    loads is owned by the nation, also an item of its code a lower unit had made (taken over)."""
    document = read(name_or_path)
    report = LoadReport()
    nation = services.national_owner()
    try:
        for item in document.get("data_elements", []):
            _element(item, actor, report, nation)
        for item in document.get("data_sets", []):
            _data_set(item, actor, report, nation)
        _indicators(document.get("indicators", []), actor, report, nation)
        for item in document.get("targets", []):
            _target(item, actor, report, nation)
    except services.IndicatorError as exc:
        raise CatalogError(str(exc)) from None
    if with_seed_values:
        report.values = import_values(
            document.get("seed_values", []), actor=actor, area=Area(True, frozenset())
        )
        if report.values.conflicts:
            first = report.values.conflicts[0]
            raise CatalogError(f"seed value {first.index} ({first.field} '{first.object}'): {first.value}")
    return report


def _same(found: Any, item: dict[str, Any], fields: tuple[str, ...], owner: Unit) -> bool:
    return (
        found is not None
        and found.owner_unit_id == owner.pk
        and all(getattr(found, f) == item[f] for f in fields if f in item)
    )


def _element(item: dict[str, Any], actor: User | None, report: LoadReport, owner: Unit) -> None:
    found = DataElement.objects.filter(code=item["code"]).first()
    if _same(found, item, ELEMENT_FIELDS, owner):
        report.counts[("data element", "unchanged")] += 1
        return
    fields = {f: item[f] for f in ELEMENT_FIELDS if f in item and f != "name"}
    services.save_data_element(actor=actor, code=item["code"], name=item["name"], owner_unit=owner, **fields)
    report.counts[("data element", "updated" if found else "created")] += 1


def _data_set(item: dict[str, Any], actor: User | None, report: LoadReport, owner: Unit) -> None:
    found = DataSet.objects.filter(code=item["code"]).first()
    elements = item.get("elements", [])
    if (
        _same(found, item, DATA_SET_FIELDS, owner)
        and found
        and sorted(found.elements.values_list("code", flat=True)) == sorted(elements)
    ):
        report.counts[("data set", "unchanged")] += 1
        return
    fields = {f: item[f] for f in DATA_SET_FIELDS if f in item and f != "name"}
    services.save_data_set(
        actor=actor, code=item["code"], name=item["name"], elements=elements, owner_unit=owner, **fields
    )
    report.counts[("data set", "updated" if found else "created")] += 1


def _indicators(items: list[dict[str, Any]], actor: User | None, report: LoadReport, owner: Unit) -> None:
    """Indicators may use each other: save those whose references exist, until all are saved."""
    waiting = list(items)
    while waiting:
        later = []
        for item in waiting:
            try:
                check_formula(item["formula"])
            except FormulaError:
                later.append(item)
                continue
            _indicator(item, actor, report, owner)
        if len(later) == len(waiting):
            code = later[0]["code"]
            raise CatalogError(f"indicator '{code}': {_formula_problem(later[0]['formula'])}")
        waiting = later


def _formula_problem(text: str) -> str:
    try:
        check_formula(text)
    except FormulaError as exc:
        return f"{exc}\n{exc.pointer(text)}"
    return "refers to an indicator that cannot be loaded"


def _indicator(item: dict[str, Any], actor: User | None, report: LoadReport, owner: Unit) -> None:
    found = Indicator.objects.filter(code=item["code"]).first()
    if _same(found, item, INDICATOR_FIELDS, owner):
        report.counts[("indicator", "unchanged")] += 1
        return
    fields = {f: item[f] for f in INDICATOR_FIELDS if f in item and f not in ("name", "formula")}
    services.save_indicator(
        actor=actor,
        code=item["code"],
        name=item["name"],
        formula=item["formula"],
        owner_unit=owner,
        **fields,
    )
    report.counts[("indicator", "updated" if found else "created")] += 1


def _target(item: dict[str, Any], actor: User | None, report: LoadReport, owner: Unit) -> None:
    edition, _, code = item["unit"].partition(":")
    unit = Unit.objects.filter(edition_id=edition, code=code).first()
    if unit is None:
        raise CatalogError(f"target of '{item['indicator']}': no unit '{item['unit']}'")
    found = Target.objects.filter(indicator__code=item["indicator"], unit=unit, period=item["period"]).first()
    if (
        found is not None
        and found.value == item["value"]
        and found.comment == item.get("comment", "")
        and found.owner_unit_id == owner.pk
    ):
        report.counts[("target", "unchanged")] += 1
        return
    services.save_target(
        actor=actor,
        indicator=item["indicator"],
        unit=unit,
        period=item["period"],
        value=item["value"],
        comment=item.get("comment", ""),
        owner_unit=owner,
    )
    report.counts[("target", "updated" if found else "created")] += 1
