"""Warehouse test helpers: valid records of every kind, and a source platform that sends them.

The fixtures `platform` and `venues` live in tests/conftest.py, for every app's tests to use.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from django.test import Client

from dieuhanh.warehouse.models import Source

CCCD_A = "079201001234"  # a citizen of Bến Thành
PHONE_B = "0912 345 678"  # a mobile number, written as people write it


@dataclass
class Platform:
    source: Source
    token: str

    def client(self) -> Client:
        return Client(headers={"Authorization": f"Bearer {self.token}"})

    def send(self, kind: str, records: list[dict], *, content_type: str = "application/x-ndjson"):
        body = "\n".join(json.dumps(r, ensure_ascii=False) for r in records)
        return self.client().post(f"/api/v1/events/{kind}", body, content_type=content_type)


def record(kind: str, n: int = 1, **override) -> dict:
    """A valid record of the kind; `override` replaces fields (None removes one)."""
    base = {
        "checkin": {
            "venue": "V-BT-CHO",
            "person_id": CCCD_A,
            "time_in": "2021-08-26T09:00:00+07:00",
            "time_out": "2021-08-26T09:40:00+07:00",
        },
        "health": {
            "person_id": CCCD_A,
            "commune": "26743",
            "declared_at": "2021-08-26T08:00:00+07:00",
            "symptoms": ["fever", "cough"],
            "exposure": False,
        },
        "travel": {
            "person_id": PHONE_B,
            "from_commune": "VN-2025:00004",
            "to_commune": "26740",
            "depart_at": "2021-08-25T20:00:00+07:00",
            "arrive_at": "2021-08-26T06:00:00+07:00",
            "mode": "air",
        },
        "test": {
            "person_id": CCCD_A,
            "commune": "26743",
            "sampled_at": "2021-08-26T10:00:00+07:00",
            "method": "pcr",
            "result": "positive",
        },
        "vaccination": {
            "person_id": PHONE_B,
            "commune": "26740",
            "vaccinated_at": "2021-08-26T14:00:00+07:00",
            "dose": 2,
            "vaccine": "AstraZeneca",
        },
        "quarantine": {
            "person_id": CCCD_A,
            "commune": "26743",
            "start": "2021-08-26T12:00:00+07:00",
            "place": "facility",
        },
        "report": {
            "commune": "26740",
            "reported_at": "2021-08-26T21:00:00+07:00",
            "category": "gathering",
            "text": "Tụ tập đông người tại hẻm 12",
        },
    }[kind]
    result = {"source_event_id": f"{kind}-{n}", **base}
    for name, value in override.items():
        if value is None:
            result.pop(name, None)
        else:
            result[name] = value
    return result
