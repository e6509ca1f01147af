"""The one test world (DESIGN §3), loaded by tests/conftest.py as a plugin (`pytest_plugins`).

Every fixture that more than one directory of tests uses, and every helper a test module calls, lives
here: test modules import helpers from this module, never from one another, and get fixtures by name.
The world is the real units of both maps (loaded once per test database), and on them the nation, Hồ
Chí Minh City and two neighbouring wards of it (Bến Thành, Sài Gòn) on the 2025 map, with a user per
role on each, as RapidPro's TembaTest does. Around it, by area: the warehouse's records and source
platform, the indicators' telecom data set (with approval on, for the approval tests), the reports'
ICT catalogue, directives, the room's figures, tracing's outbreak, the enterprises' park, feedback's
categories, the browser tests' helpers and the NATS broker the worker's tests publish to.
"""

from __future__ import annotations

import asyncio
import importlib
import io
import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import nats
import psycopg
import pytest
from django.apps import apps
from django.conf import settings as django_settings
from django.core.management.color import no_style
from django.db import connection, models, transaction
from django.db.models import Count, F, Max
from django.test import Client
from nats.js.api import ConsumerInfo, StreamConfig
from PIL import Image, PngImagePlugin

from dieuhanh.accounts.models import AuditEntry, User
from dieuhanh.accounts.services import create_token, create_user
from dieuhanh.db import insert_rows
from dieuhanh.feedback.models import Category
from dieuhanh.indicators import versions
from dieuhanh.indicators.approval.services import configure
from dieuhanh.indicators.catalog import load as load_catalogue
from dieuhanh.indicators.datavalues import import_values
from dieuhanh.indicators.services import save_data_element, save_data_set
from dieuhanh.reports.services import load_shipped
from dieuhanh.units.models import Edition, Succession, Unit
from dieuhanh.units.scoping import Area
from dieuhanh.units.services import get_unit, load_units
from dieuhanh.warehouse import worker
from dieuhanh.warehouse.enterprises.services import (
    EnterpriseInput,
    WorkerInput,
    create_enterprise,
    import_roster,
)
from dieuhanh.warehouse.kinds import KINDS
from dieuhanh.warehouse.models import CheckIn, Source, Venue
from dieuhanh.warehouse.persons import person_key
from dieuhanh.warehouse.services import VenueInput, create_source, save_venue

PASSWORD = "test-password-1"
# A test that uses none of the pass's database (it reads the source, or starts processes on a database of
# their own) runs the same in both passes of `make test`: once is enough, in the SQLite pass.
ONCE_IN_THE_SQLITE_PASS = pytest.mark.skipif(
    os.environ.get("DIEUHANH_DATABASE_URL", "").startswith("postgres"),
    reason="it does not use the pass's database: it runs once, in the SQLite pass of `make test`",
)
EVERYWHERE = Area(True, frozenset())
A, B = "VN-2025:26743", "VN-2025:26740"  # Phường Bến Thành (operator_a's), Phường Sài Gòn (operator_b's)
HCM, TAY_NINH = "VN-2025:79", "VN-2025:80"  # neighbouring provinces since 1/7/2025


# The units: the packaged units as loaded once per session, row by row, to put back after a
# transactional test's flush: reading and loading the packages again took seconds per such test
# (browser, worker, streams).
_EDITIONS: list[Edition] = []
_LOADED: list[tuple[type[models.Model], list[str], list[tuple]]] = []


def ensure_units() -> None:
    """Load the units unless they are there (a transactional test's flush removes them)."""
    if Unit.objects.filter(edition_id="VN-2025", kind="commune").exists():
        return
    with transaction.atomic(), _one_version_bump():
        if not _LOADED:
            load_units()
            _EDITIONS.extend(Edition.objects.all())
            for model in (Unit, Succession):
                fields = [f.attname for f in model._meta.concrete_fields]
                _LOADED.append((model, fields, list(model.objects.order_by("pk").values_list(*fields))))
            return
        Edition.objects.bulk_create(_EDITIONS)  # through the ORM: its levels are JSON
        for model, fields, rows in _LOADED:  # parents before children: ids grow down the levels
            insert_rows(model, fields, rows)
        with connection.cursor() as cursor:  # the next unit made gets an id after the restored ones
            for sql in connection.ops.sequence_reset_sql(no_style(), [Unit, Succession]):
                cursor.execute(sql)


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """Each test database starts with the units."""
    with django_db_blocker.unblock():
        ensure_units()


@contextmanager
def _one_version_bump() -> Iterator[None]:
    """SQLite's data-version triggers run once per row (indicators.versions): 14,000 bumps of the units'
    version made their load or put-back 5–6 s. The rows go in without them, and one write after bumps
    the version, as one statement does on PostgreSQL."""
    quiet = connection.vendor == "sqlite"
    if quiet:
        versions.uninstall()
    yield
    if quiet:
        versions.install()
    Edition.objects.update(name=F("name"))


# The ICT catalogue with the seeds' figures, as most indicator and report tests start from: loaded
# through indicators.catalog.load in the first test that asks on a database without metadata, whose new
# rows are put back as they were in the next ones (the load is 1–3 s of services, checks and audits per
# test; putting back its ~600 rows a small part of that). The catalogue's own load is tested on its
# own (tests/indicators/test_catalog.py). (model, fields, rows, table empty before the load)
_ICT: list[tuple[type[models.Model], list[str], list[tuple], bool]] = []
_DERIVED: set[type[models.Model]] = set()


def _numbered(model: type[models.Model]) -> bool:
    return isinstance(model._meta.pk, models.AutoField | models.BigAutoField)


def ict_catalogue() -> None:
    """The ICT catalogue with the seeds' figures, as `load("ict", with_seed_values=True)` makes it."""
    if _ICT and all(
        not model.objects.exists()
        if empty
        else not model.objects.filter(pk__in=[r[0] for r in rows]).exists()
        for model, _fields, rows, empty in _ICT
    ):
        with transaction.atomic():
            for model, fields, rows, _empty in _ICT:
                model.objects.bulk_create([model(**dict(zip(fields, row, strict=True))) for row in rows])
        return
    tables = [m for m in apps.get_models(include_auto_created=True) if m._meta.managed and not m._meta.proxy]
    # Written by the database's triggers on the rows put back, as on the rows loaded.
    _DERIVED.update(m for m in tables if m._meta.db_table == "indicators_dataversion")
    before = {
        m: m.objects.aggregate(n=Count("pk"), **({"top": Max("pk")} if _numbered(m) else {})) for m in tables
    }
    changed: list[str] = []

    def watch(execute, sql, params, many, context):
        if sql.lstrip()[:6].upper() in ("UPDATE", "DELETE"):
            changed.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(watch):
        load_catalogue("ict", actor=None, with_seed_values=True)
    grown = [(m, before[m]) for m in tables if m.objects.count() != before[m]["n"] and m not in _DERIVED]
    # Kept only from a load onto no metadata that changed no row: what every later test would get.
    if _ICT or changed or any(not _numbered(m) or (b["n"] and m is not AuditEntry) for m, b in grown):
        return
    for model, b in grown:
        fields = [f.attname for f in model._meta.concrete_fields]
        new = model.objects.filter(pk__gt=b["top"]) if b["top"] is not None else model.objects.all()
        _ICT.append((model, fields, list(new.order_by("pk").values_list(*fields)), not b["n"]))


# Callers and the world


@dataclass
class Caller:
    user: User
    token: str

    def client(self) -> Client:
        """An API client that authenticates with the user's bearer token."""
        return Client(headers={"Authorization": f"Bearer {self.token}"})

    def browser(self) -> Client:
        """A page client signed in with a session."""
        c = Client()
        c.force_login(self.user)
        return c


@dataclass
class World:
    nation: Unit
    province: Unit
    commune_a: Unit  # Phường Bến Thành
    commune_b: Unit  # Phường Sài Gòn, its neighbour
    leader: Caller
    province_operator: Caller
    operator_a: Caller
    operator_b: Caller
    tracer: Caller

    def everyone(self) -> list[Caller]:
        return [self.leader, self.province_operator, self.operator_a, self.operator_b, self.tracer]


def make_caller(username: str, unit: Unit, role: str) -> Caller:
    user = create_user(
        actor=None, username=username, password=PASSWORD, grants=[(unit, role)], validate=False
    )
    _, raw = create_token(actor=None, user=user, name="test")
    return Caller(user, raw)


@pytest.fixture
def world(db) -> World:
    ensure_units()
    nation, province = get_unit("VN-2025:VN"), get_unit("VN-2025:79")
    a, b = get_unit("VN-2025:26743"), get_unit("VN-2025:26740")
    return World(
        nation,
        province,
        a,
        b,
        leader=make_caller("leader", nation, "leader"),
        province_operator=make_caller("hcm-operator", province, "operator"),
        operator_a=make_caller("benthanh-operator", a, "operator"),
        operator_b=make_caller("saigon-operator", b, "operator"),
        tracer=make_caller("hcm-tracer", province, "tracer"),
    )


@pytest.fixture
def cli(world, monkeypatch):
    """The world, for the command line: `dieuhanh` commands run without migrating first."""
    monkeypatch.setattr("dieuhanh.cli.migrate", lambda: None)
    return world


# The warehouse: valid records of every kind, and a source platform that sends them

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


@pytest.fixture
def platform(world) -> Platform:
    source, token = create_source(actor=None, name="ncovi", kinds=list(KINDS), edition="VN-2025")
    return Platform(source, token)


@pytest.fixture
def venues(world):
    market = save_venue(
        actor=None, venue=VenueInput("V-BT-CHO", "Chợ Bến Thành", "market", "26743", 10.7725, 106.698, 45)
    )
    office = save_venue(actor=None, venue=VenueInput("V-SG-VP", "Văn phòng Sài Gòn", "office", "26740"))
    return market, office


# Indicators: the telecom data set, its values, and its approval

PERIOD = "202108"
CARRIERS = [{"code": "viettel", "name": "Viettel"}, {"code": "vnpt", "name": "VNPT"}]


@pytest.fixture
def telecom(world):
    """A monthly commune data set: a plain number, an integer by carrier, a percentage."""
    save_data_element(
        actor=None, code="postal_revenue", name="Doanh thu bưu chính", unit="triệu đồng", aggregation="sum"
    )
    save_data_element(
        actor=None,
        code="subscribers",
        name="Thuê bao di động",
        unit="thuê bao",
        aggregation="last",
        value_type="integer",
        options=CARRIERS,
    )
    save_data_element(
        actor=None,
        code="coverage",
        name="Tỷ lệ phủ sóng",
        unit="%",
        aggregation="average",
        value_type="percent",
    )
    return save_data_set(
        actor=None,
        code="telecom",
        name="Báo cáo viễn thông",
        elements=["postal_revenue", "subscribers", "coverage"],
        period_type="monthly",
        unit_kind="commune",
        due_day=15,
    )


@pytest.fixture
def approved_telecom(telecom):
    """The telecom data set with approval on (commune → province → nation; on VN-2021 with districts)."""
    configure(actor=None, data_set=telecom)
    return telecom


def row(element: str, value, *, unit: str = A, period: str = PERIOD, option: str | None = None) -> dict:
    r = {"dataElement": element, "period": period, "orgUnit": unit, "value": value}
    if option is not None:
        r["categoryOptionCombo"] = option
    return r


def post(caller, *rows: dict, dry_run: bool = False):
    url = "/api/v1/datavalues" + ("?dryRun=true" if dry_run else "")
    return caller.client().post(url, {"dataValues": list(rows)}, content_type="application/json")


def act(caller, action: str, *units: str, reason: str = "", period: str = PERIOD, data_set: str = "telecom"):
    body = {"action": action, "dataSet": data_set, "period": period, "units": list(units), "reason": reason}
    return caller.client().post("/api/v1/approvals", body, content_type="application/json")


def state(caller, unit: str, period: str = PERIOD, children: bool = True) -> dict:
    url = f"/api/v1/approvals?dataSet=telecom&period={period}&unit={unit}&children={str(children).lower()}"
    response = caller.client().get(url)
    assert response.status_code == 200, response.content
    return response.json()


def values(caller, *rows: tuple[str, str, float], period: str = PERIOD):
    body = {
        "dataValues": [{"dataElement": e, "period": period, "orgUnit": u, "value": v} for e, u, v in rows]
    }
    return caller.client().post("/api/v1/datavalues", body, content_type="application/json")


def element(code: str, aggregation: str = "sum", period_type: str = "monthly") -> None:
    save_data_element(
        actor=None, code=code, name=f"Chỉ tiêu {code}", aggregation=aggregation, period_type=period_type
    )


def store(code: str, values: list[tuple], *, edition: str = "VN-2025") -> None:
    """Write (orgUnit, period, value[, status]) rows of one element, as an import would."""
    records = [
        {
            "dataElement": code,
            "period": period,
            "orgUnit": unit,
            "value": value,
            "status": rest[0] if rest else "final",
        }
        for unit, period, value, *rest in values
    ]
    summary = import_values(records, actor=None, area=EVERYWHERE, edition=edition)
    assert not summary.conflicts, [c.as_dict() for c in summary.conflicts]
    assert summary.imported == len(records)


def quality_row(element: str, value, *, unit: str = A, period: str = "202401") -> dict:
    """A data value of the quality tests' data set (tests/quality/conftest.py: services)."""
    return {"dataElement": element, "period": period, "orgUnit": unit, "value": value}


def quality_post(caller, *rows: dict):
    return caller.client().post(
        "/api/v1/datavalues", {"dataValues": list(rows)}, content_type="application/json"
    )


# Reports


@pytest.fixture
def ict(world):
    """The ICT catalogue with the seeds' figures, and the shipped report definitions owned by the leader."""
    ict_catalogue()
    return {d.code: d for d in load_shipped(owner=world.leader.user)}


@pytest.fixture
def hcm_report(world, ict):
    """The demo's monthly report of Hồ Chí Minh City's communes, on its commune data element."""
    from dieuhanh.demo import _HCM_REPORT
    from dieuhanh.indicators.services import save_data_element
    from dieuhanh.reports.services import save_definition

    save_data_element(
        actor=None, code="online_dossiers", name="Hồ sơ nộp trực tuyến", unit="hồ sơ", period_type="monthly"
    )
    return save_definition(
        actor=None, code="hcm", name="HCM", period_type="monthly", unit=world.province, body=_HCM_REPORT
    )


# Directives, and their follow-up's SMS gateway and live stream


def issue(caller, **body):
    payload = {
        "title": "Triển khai xét nghiệm diện rộng",
        "body": "Các xã, phường báo cáo **số mẫu** đã lấy.",
        "targets": {"units": ["VN-2025:26743", "VN-2025:26740"]},
        **body,
    }
    return caller.client().post("/api/v1/directives", payload, content_type="application/json")


@dataclass
class Gateway:
    url: str
    replies: list[int]  # the status of each request in turn; the last one repeats
    received: list[dict] = field(default_factory=list)


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    replies: list[int] = [200]
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            received.append({"body": body, "authorization": self.headers.get("Authorization")})
            status = replies.pop(0) if len(replies) > 1 else replies[0]
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"ok": true}' if status == 200 else b'{"error": "busy"}')

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    # Polled often: shutdown() waits for the next poll (0.5 s by default) at each test's end.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield Gateway(f"http://127.0.0.1:{server.server_port}/sms", replies, received)
    server.shutdown()
    server.server_close()


async def next_chunk(chunks) -> str:
    return (await asyncio.wait_for(anext(chunks), 10)).decode()


def parse(chunk: str) -> tuple[str, dict]:
    fields = dict(line.split(": ", 1) for line in chunk.strip().splitlines())
    return fields["event"], json.loads(fields["data"])


# The command room


@pytest.fixture
def leaders(world):
    """A leader of Hồ Chí Minh City and one of Tây Ninh, its neighbour."""
    return make_caller("hcm-leader", world.province, "leader"), make_caller(
        "tn-leader", get_unit(TAY_NINH), "leader"
    )


def positives(platform, commune: str, n: int, when, prefix: str = "p", result: str = "positive"):
    """n test results of one commune sent by the platform (positive unless `result` says otherwise)."""
    people = "0792010" if result == "positive" else "0792020"
    tests = [
        record(
            "test",
            source_event_id=f"{prefix}-{commune}-{i}",
            commune=commune,
            result=result,
            person_id=f"{people}{i:05d}",
            sampled_at=when.isoformat(),
        )
        for i in range(n)
    ]
    response = platform.send("test", tests)
    assert response.status_code == 200 and response.json()["accepted"] == n, response.content


# Tracing: check-ins written straight into the warehouse by small integer people, and a small
# outbreak ingested through the real pipeline, for the API, page and browser tests

BASE = int(datetime(2021, 8, 20, tzinfo=UTC).timestamp())


def key(person: int) -> bytes:
    """A person key for test person n (real keys are HMACs; tracing only compares them)."""
    return person.to_bytes(2, "big") * 16


def write_stays(source, stays, venues: dict[int, Venue]) -> None:
    """Stays as (person, venue number, time_in epoch, time_out epoch or None) into warehouse_checkin."""
    CheckIn.objects.bulk_create(
        CheckIn(
            source=source,
            source_event_id=f"t{i}",
            commune_id=venues[s.venue].commune_id,
            at=datetime.fromtimestamp(s.time_in, UTC),
            time_out=datetime.fromtimestamp(s.time_out, UTC) if s.time_out is not None else None,
            person_key=key(s.person),
            venue=venues[s.venue],
        )
        for i, s in enumerate(stays)
    )


CASE = CCCD_A  # lives in Bến Thành
P1, P2, P3, P4 = "0912345678", "0987654321", "0355555555", "0966666666"


def hexkey(person_id: str) -> str:
    return person_key(person_id).hex()


def stay(n: int, venue: str, person: str, time_in: str, time_out: str | None) -> dict:
    return record("checkin", n, venue=venue, person_id=person, time_in=time_in, time_out=time_out)


def home(n: int, person: str, commune: str) -> dict:
    return record("health", n, person_id=person, commune=commune, declared_at="2021-08-20T08:00:00+07:00")


@dataclass
class Tracers:
    national: Caller
    a: Caller  # Bến Thành
    b: Caller  # Sài Gòn, its neighbour
    far: Caller  # a commune in Hà Nội


@pytest.fixture
def tracers(world) -> Tracers:
    return Tracers(
        national=make_caller("national-tracer", world.nation, "tracer"),
        a=make_caller("benthanh-tracer", world.commune_a, "tracer"),
        b=make_caller("saigon-tracer", world.commune_b, "tracer"),
        far=make_caller("hanoi-tracer", get_unit("VN-2025:00004"), "tracer"),
    )


@pytest.fixture
def outbreak(platform, venues):
    """The case at Bến Thành market; P1 (lives in Sài Gòn) and P4 (Bến Thành) with it; P1 the next
    day at the Sài Gòn office with P2 (lives in Bến Thành) and P3 (Sài Gòn)."""
    homes = [
        home(1, CASE, "26743"),
        home(2, P1, "26740"),
        home(3, P2, "26743"),
        home(4, P3, "26740"),
        home(5, P4, "26743"),
    ]
    assert platform.send("health", homes).json()["accepted"] == 5
    market, office = "V-BT-CHO", "V-SG-VP"
    stays = [
        stay(1, market, CASE, "2021-08-26T09:00:00+07:00", "2021-08-26T09:40:00+07:00"),
        stay(2, market, P1, "2021-08-26T09:10:00+07:00", "2021-08-26T10:00:00+07:00"),
        stay(3, market, P4, "2021-08-26T09:45:00+07:00", "2021-08-26T10:30:00+07:00"),  # after the case left
        stay(4, office, P1, "2021-08-27T08:00:00+07:00", "2021-08-27T12:00:00+07:00"),
        stay(5, office, P2, "2021-08-27T08:30:00+07:00", "2021-08-27T09:00:00+07:00"),
        stay(6, office, P3, "2021-08-27T11:00:00+07:00", "2021-08-27T17:00:00+07:00"),
        stay(7, market, P3, "2021-08-20T09:00:00+07:00", "2021-08-20T10:00:00+07:00"),  # before the window
        stay(8, market, CASE, "2021-08-20T09:00:00+07:00", "2021-08-20T10:00:00+07:00"),
    ]
    assert platform.send("checkin", stays).json()["accepted"] == len(stays)


def register(caller: Caller, **body):
    payload = {"person_id": CASE, "confirmed_at": "2021-08-27T10:00:00+07:00", **body}
    return caller.client().post("/api/v1/tracing/cases", payload, content_type="application/json")


def contacts(caller: Caller, case_id: int, **params):
    return caller.client().get(f"/api/v1/tracing/cases/{case_id}/contacts", {"depth": 2, **params})


# Enterprises: an industrial park in Bến Thành with two factories, a third factory standing alone in
# Sài Gòn, and an enterprise officer on each

CCCD_1 = "079201000001"  # a worker of factory 1
CCCD_2 = "079201000002"  # a worker of factory 2
CCCD_3 = "079201000003"  # a worker of the Sài Gòn factory


@dataclass
class Firms:
    world: World
    park: Unit
    one: Unit  # in the park
    two: Unit  # in the park
    alone: Unit  # in Sài Gòn, no park
    park_officer: Caller
    officer_one: Caller
    officer_two: Caller


def register_enterprise(kind: str, tax: str, name: str, **where) -> Unit:
    return create_enterprise(actor=None, data=EnterpriseInput(kind, tax, name, **where), area=EVERYWHERE)


@pytest.fixture
def firms(world) -> Firms:
    park = register_enterprise("industrial_park", "0300000001", "KCN Thử nghiệm", commune="VN-2025:26743")
    one = register_enterprise("enterprise", "0300000011", "Nhà máy Một", commune="26743", park=park.ref)
    two = register_enterprise("enterprise", "0300000012", "Nhà máy Hai", commune="26743", park=park.ref)
    alone = register_enterprise("enterprise", "0300000013", "Xưởng Sài Gòn", commune="26740")
    return Firms(
        world,
        park,
        one,
        two,
        alone,
        park_officer=make_caller("kcn-officer", park, "enterprise"),
        officer_one=make_caller("one-officer", one, "enterprise"),
        officer_two=make_caller("two-officer", two, "enterprise"),
    )


def roster(unit, *people, start=date(2021, 7, 1), end=None):
    items = [(n, WorkerInput(p, start, end)) for n, p in enumerate(people, start=1)]
    return import_roster(actor=None, enterprise=unit, workers=items)


@pytest.fixture
def tested(firms, platform):
    """Factory one's worker tested positive in Hà Nội, factory two's negative in Bến Thành, the Sài
    Gòn factory's positive in Sài Gòn; a stranger positive in Bến Thành."""
    roster(firms.one, CCCD_1)
    roster(firms.two, CCCD_2)
    roster(firms.alone, CCCD_3)
    r = platform.send(
        "test",
        [
            record("test", 1, person_id=CCCD_1, commune="VN-2025:00004", result="positive"),
            record("test", 2, person_id=CCCD_2, commune="26743", result="negative"),
            record("test", 3, person_id=CCCD_3, commune="26740", result="positive"),
            record("test", 4, person_id="079201009999", commune="26743", result="positive"),
        ],
    )
    assert r.json()["accepted"] == 4
    return firms


# Feedback


@pytest.fixture
def categories(world):
    if not Category.objects.exists():
        importlib.import_module("dieuhanh.feedback.migrations.0002_categories").add(apps, None)
        importlib.import_module(
            "dieuhanh.feedback.migrations.0005_merge_followup_sessions"
        ).food_safety_to_agency(apps, None)
    return {c.code: c for c in Category.objects.all()}


# Photos as a phone writes them — what the camera adds besides the picture, which feedback.photos
# removes before a citizen's or an official's photo is stored: the device and the GPS position where
# it was taken in a JPEG's EXIF, a comment, and a maker's trailer after the image's end; a text chunk
# in a PNG.
CAMERA = "CameraCuaCanBo"  # the device's name the camera writes into the photo
GPS = {1: "N", 2: (10.0, 46.0, 30.0), 3: "E", 4: (106.0, 41.0, 50.0)}  # 10°46'30"N 106°41'50"E
BROKEN_JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 200  # starts as a JPEG, is not one


def jpeg(colour: tuple[int, int, int] = (200, 120, 30), size: tuple[int, int] = (64, 48)) -> bytes:
    exif = Image.Exif()
    exif[0x010F] = CAMERA
    exif[0x8825] = GPS
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "JPEG", exif=exif, comment=b"nha so 12 Le Loi")
    return out.getvalue() + b"TRAILER-" + CAMERA.encode()


def png(colour: tuple[int, int, int] = (10, 90, 200), size: tuple[int, int] = (30, 20)) -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", f"chup bang {CAMERA}")
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "PNG", pnginfo=info)
    return out.getvalue()


@pytest.fixture
def media(settings, tmp_path) -> Path:
    """Stored files go to the test's own directory, which the test may list: photos, attachments and made
    reports (the default storage, whose location settings.STORAGES names: MEDIA_ROOT alone would not
    move them)."""
    settings.MEDIA_ROOT = tmp_path
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": tmp_path},
        },
    }
    return tmp_path


def stored_files(media: Path) -> list[Path]:
    return [p for p in media.rglob("*") if p.is_file()]


# The browser tests (tests/browser/; their fixtures `browser`, `page`, `phone` and `asgi_server` are in
# its conftest.py)

SCREENSHOTS = Path(__file__).parent / "browser" / "screenshots"


def screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def log_in(page, live_server, username):
    page.goto(f"{live_server.url}/login/")
    page.get_by_label("Tên đăng nhập").fill(username)
    page.get_by_label("Mật khẩu").fill(PASSWORD)
    page.get_by_role("button", name="Đăng nhập").click()


def markers(page):
    """The units drawn as points (below a province: no package ships commune boundaries)."""
    return page.locator("#room-map .unit-marker")


def shapes(page):
    """The units drawn by their boundaries (provinces)."""
    return page.locator("#room-map path.unit-shape")


# Injected by the browser itself (not subject to the page's policy): records what the policy refused.
RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__violations.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`);
});
"""


class Watch:
    """What the browser reported about the policies while the page was open."""

    def __init__(self, page):
        self.page = page
        self.console: list[str] = []
        page.add_init_script(RECORD_VIOLATIONS)
        page.on("console", self._console)

    def _console(self, message) -> None:
        text = message.text
        if "Content Security Policy" in text or "Permissions-Policy" in text or "Permissions policy" in text:
            self.console.append(text)

    def violations(self) -> list[str]:
        return self.console + self.page.evaluate("window.__violations || []")


# NATS: the warehouse worker's broker (a real NATS server with JetStream)


async def _quiet(_: Exception) -> None:
    pass  # an unreachable server is reported once, as the failure's reason


async def _connect(url: str) -> nats.NATS:
    # One attempt, quickly: nats-py otherwise retries a missing server for two minutes.
    return await nats.connect(
        url,
        connect_timeout=1,
        allow_reconnect=False,
        max_reconnect_attempts=1,
        reconnect_time_wait=0.1,
        error_cb=_quiet,
    )


async def _check_jetstream(url: str) -> None:
    nc = await _connect(url)
    try:
        await nc.jetstream().account_info()
    finally:
        await nc.close()


@pytest.fixture(scope="session")
def nats_url() -> str:
    url = django_settings.NATS_URL
    try:
        asyncio.run(_check_jetstream(url))
    except Exception as e:
        pytest.fail(
            f"NATS with JetStream does not answer at {url} ({type(e).__name__} {e}). Start it with: "
            "start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- "
            "-a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log"
        )
    return url


@dataclass
class Broker:
    """The test's side of NATS: publish as a platform, read the reports, look at the consumer."""

    url: str
    bus: worker.Bus

    @property
    def reports_stream(self) -> str:
        return f"{self.bus.stream}_REPORTS"

    def publish(self, kind: str, batch: list[dict] | bytes, token: str, **options: Any) -> int:
        body = batch if isinstance(batch, bytes) else ndjson(batch)
        return self._run(lambda nc: worker.publish_batch(nc, kind, body, token, bus=self.bus, **options)).seq

    def work(self, **options: Any) -> None:
        """Run the worker until its consumer is drained (a timeout guards against a hang)."""
        options = {"ack_wait": 1.0, "stop_when_drained": True, "stop_after": 15.0} | options
        worker.run(url=self.url, bus=self.bus, **options)

    def consumer(self) -> ConsumerInfo:
        return self._run(lambda nc: nc.jetstream().consumer_info(self.bus.stream, worker.DURABLE))

    def stored(self) -> int:
        """Batches still in the stream (work-queue retention drops a batch once it is acknowledged)."""
        return self._run(lambda nc: nc.jetstream().stream_info(self.bus.stream)).state.messages

    def reports(self) -> list[dict]:
        """Every summary the worker published, in order (a test stream keeps them for reading)."""
        return self._run(self._reports)

    async def _reports(self, nc: nats.NATS) -> list[dict]:
        js = nc.jetstream()
        last = (await js.stream_info(self.reports_stream)).state.last_seq
        return [
            json.loads((await js.get_msg(self.reports_stream, seq)).data or b"") for seq in range(1, last + 1)
        ]

    async def create(self, nc: nats.NATS) -> None:
        js = nc.jetstream()
        await worker.ensure_stream(js, self.bus)  # platforms may publish before the worker first runs
        await js.add_stream(
            StreamConfig(name=self.reports_stream, subjects=[f"{self.bus.prefix}.ingested.>"])
        )

    async def delete(self, nc: nats.NATS) -> None:
        for stream in (self.bus.stream, self.reports_stream):
            await nc.jetstream().delete_stream(stream)

    def _run(self, action: Callable[[nats.NATS], Any]) -> Any:
        async def connected() -> Any:
            nc = await _connect(self.url)
            try:
                return await action(nc)
            finally:
                await nc.close()

        return asyncio.run(connected())


@pytest.fixture
def broker(nats_url) -> Iterator[Broker]:
    name = f"t{uuid.uuid4().hex[:12]}"
    broker = Broker(nats_url, worker.Bus(prefix=name, stream=name.upper()))
    broker._run(broker.create)
    yield broker
    broker._run(broker.delete)


def ndjson(records: list[dict]) -> bytes:
    return "\n".join(json.dumps(r, ensure_ascii=False) for r in records).encode()


def settled(info: ConsumerInfo) -> bool:
    """Nothing waiting, nothing delivered but unacknowledged, nothing being re-delivered."""
    return (info.num_pending, info.num_ack_pending, info.num_redelivered) == (0, 0, 0)


@pytest.fixture
def scratch_database(tmp_path: Path, db) -> Iterator[str]:
    """A database of the run's kind that no test shares, for a process of the test's own (a migration
    run from the start): a file on SQLite, a new database on PostgreSQL, dropped after."""
    if connection.vendor != "postgresql":
        yield f"sqlite:///{tmp_path / 'scratch.sqlite3'}"
        return
    s = connection.settings_dict
    name = f"scratch_{uuid.uuid4().hex[:12]}"
    server = {"host": s["HOST"] or "127.0.0.1", "port": s["PORT"] or 5432, "user": s["USER"]}
    with psycopg.connect(dbname="postgres", autocommit=True, **server) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://{server['user']}@{server['host']}:{server['port']}/{name}"
    finally:
        with psycopg.connect(dbname="postgres", autocommit=True, **server) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run_on_scratch(script: str, home: Path, database: str) -> Any:
    """Run `script` (which sets Django up itself) in a process of its own on a scratch database (the
    `scratch_database` fixture's), home in `home`; the JSON of the last line it printed."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "dieuhanh.settings",
        "DIEUHANH_HOME": str(home),
        "DIEUHANH_DATABASE_URL": database,
    }
    env.pop("DIEUHANH_DATABASE_REPLICA_URL", None)
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])
