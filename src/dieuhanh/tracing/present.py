"""A trace as its readers get it: JSON-ready dicts for the API and CLI, rows for CSV and XLSX.

Times are shown in Vietnam's time (UTC+7); person keys as hex (pseudonyms, never raw IDs).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from dieuhanh.tracing.engine import Edge
from dieuhanh.tracing.models import Case
from dieuhanh.tracing.services import ContactView, TraceView, by_commune
from dieuhanh.vnformat import VN_TZ
from dieuhanh.warehouse.models import Venue


def local(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC).astimezone(VN_TZ)


def minutes(seconds: int) -> float:
    return round(seconds / 60, 1)


def case_out(case: Case) -> dict[str, Any]:
    return {
        "id": case.pk,
        "person_key": bytes(case.person_key).hex(),
        "confirmed_at": case.confirmed_at.astimezone(VN_TZ),
        "onset_at": case.onset_at.astimezone(VN_TZ) if case.onset_at else None,
        "window_start": case.window_start.astimezone(VN_TZ),
        "window_end": case.window_end.astimezone(VN_TZ) if case.window_end else None,
        "commune": case.commune.ref if case.commune else None,
        "commune_name": case.commune.name if case.commune else None,
        "test": f"{case.test_source}/{case.test_event_id}" if case.test_event_id else None,
        "note": case.note,
    }


def trace_out(view: TraceView) -> dict[str, Any]:
    return {
        "case": case_out(view.case),
        "depth": view.depth,
        "rule": view.rule.as_dict(),
        "counts": {"f1": view.counts.get(1, 0), "f2": view.counts.get(2, 0)},
        "computed_ms": round(view.millis, 1),
        "contacts": [contact_out(c, view.venues) for c in view.contacts],
        "edges": [edge_out(e, view.venues) for e in view.edges],
    }


def contact_out(contact: ContactView, venues: dict[int, Venue]) -> dict[str, Any]:
    at: dict[int, list[Edge]] = defaultdict(list)
    for edge in contact.edges:
        at[edge.venue].append(edge)
    return {
        "person_key": contact.person.hex(),
        "generation": contact.generation,
        "venues": [
            {
                "venue": venues[v].code,
                "name": venues[v].name,
                "commune": venues[v].commune.ref,
                "intervals": [
                    {
                        "start": local(e.start),
                        "end": local(e.end),
                        "minutes": minutes(e.seconds),
                        "source": e.source.hex(),
                    }
                    for e in sorted(edges)
                ],
            }
            for v, edges in sorted(at.items(), key=lambda item: min(e.start for e in item[1]))
        ],
        "overlap_minutes": minutes(contact.seconds),
        "first_exposure": local(contact.first_exposure),
        "commune": contact.residence.ref if contact.residence else None,
        "commune_name": contact.residence.name if contact.residence else None,
        "is_case": contact.is_case,
        "paths": sorted({e.source.hex() for e in contact.edges}),
    }


def edge_out(edge: Edge, venues: dict[int, Venue]) -> dict[str, Any]:
    return {
        "from": edge.source.hex(),
        "to": edge.contact.hex(),
        "venue": venues[edge.venue].code,
        "start": local(edge.start),
        "end": local(edge.end),
        "minutes": minutes(edge.seconds),
    }


# The list per commune of residence: Vietnamese headers, as officials read them.
LIST_HEADERS = [
    ("commune", "Mã xã nơi ở"),
    ("commune_name", "Xã, phường nơi ở"),
    ("person_key", "Mã định danh ẩn danh"),
    ("identity", "Số CCCD/điện thoại"),
    ("generation", "Phân loại"),
    ("first_exposure", "Tiếp xúc lần đầu"),
    ("overlap_minutes", "Tổng thời gian tiếp xúc (phút)"),
    ("venues", "Địa điểm tiếp xúc"),
    ("is_case", "Đã là ca bệnh"),
]


def list_rows(view: TraceView, identities: dict[bytes, str] | None = None) -> list[dict[str, Any]]:
    """One row per contact, grouped by commune of residence (those never declared come last)."""
    groups = by_commune(view)
    order = sorted(groups, key=lambda unit: (unit is None, unit.ref if unit else ""))
    rows = []
    for unit in order:
        for c in groups[unit]:
            rows.append(
                {
                    "commune": unit.ref if unit else "",
                    "commune_name": unit.name if unit else "chưa khai báo",
                    "person_key": c.person.hex(),
                    "identity": (identities or {}).get(c.person, ""),
                    "generation": f"F{c.generation}",
                    "first_exposure": local(c.first_exposure).strftime("%d/%m/%Y %H:%M"),
                    "overlap_minutes": minutes(c.seconds),
                    "venues": "; ".join(sorted({view.venues[e.venue].code for e in c.edges})),
                    "is_case": "có" if c.is_case else "không",
                }
            )
    return rows
