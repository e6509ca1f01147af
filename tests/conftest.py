"""The one test base (DESIGN §3): the real units, and a small world of users on them.

The real units of both maps are loaded once per test database. The world is the nation, Hồ Chí
Minh City, and two neighbouring wards of it (Bến Thành, Sài Gòn) on the 2025 map, with a user per
role on each, as RapidPro's TembaTest does.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
from django.apps import apps
from django.core.management.color import no_style
from django.db import connection, models, transaction
from django.db.models import Count, F, Max
from django.test import Client

from dieuhanh.accounts.models import AuditEntry, User
from dieuhanh.accounts.services import create_token, create_user
from dieuhanh.db import insert_rows
from dieuhanh.directives.present import forget_histories
from dieuhanh.indicators import unitmap, versions
from dieuhanh.indicators.analytics import ANSWERS
from dieuhanh.indicators.catalog import load as load_catalogue
from dieuhanh.live import BUS
from dieuhanh.units.models import Edition, Succession, Unit
from dieuhanh.units.services import get_unit, load_units
from dieuhanh.warehouse.kinds import KINDS
from dieuhanh.warehouse.services import VenueInput, create_source, save_venue
from tests.warehouse.conftest import Platform

PASSWORD = "test-password-1"

# The suite is one process, and other runs may share the NATS server: live events stay in the process.
# Tests of the broker's way make a Bus of their own, or start `dieuhanh serve` processes.
BUS.keep_local()


def pytest_report_header(config):
    return f"database: {connection.vendor} ({connection.settings_dict['NAME']})"


# The packaged units as loaded once per session, row by row, to put back after a transactional test's
# flush: reading and loading the packages again took seconds per such test (browser, worker, streams).
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


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        ensure_units()


@pytest.fixture(autouse=True)
def _no_history_from_another_test():
    # Each test's database is rolled back, and the next reuses its ids (and data version numbers).
    forget_histories()
    ANSWERS.clear()
    unitmap.forget()


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # PBKDF2 is slow by design; the tests create users by the dozen.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


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
