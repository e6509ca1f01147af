"""Schemathesis fuzzes every operation of the committed OpenAPI document as a national leader, through
Django's test client's WSGI handler, and no answer may be a server error (issue 16).

A few examples per operation, valid and invalid (negative mode), from a fixed seed: the same run each
time, short enough for every CI run. The document is the committed one (docs/openapi.json), so what
is fuzzed is the contract sources and screens are given.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from django.test.client import ClientHandler
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from dieuhanh.indicators.excel import XLSX_TYPE

OPENAPI = Path(__file__).resolve().parent.parent / "docs" / "openapi.json"

CONFIG = SchemathesisConfig.from_dict(
    {
        "seed": 16,
        "generation": {"max-examples": 5, "deterministic": True, "mode": "all", "database": "none"},
        # The coverage phase walks every boundary of every field: hundreds of cases per operation.
        "phases": {"coverage": {"enabled": False}},
    }
)
# Django's test client's handler, not WSGIHandler: it keeps the test's database connection (and its
# transaction) open across requests; CSRF is checked as in production.
HANDLER = ClientHandler(enforce_csrf_checks=True)


def django_test_client(environ, start_response):
    """ClientHandler as a WSGI application (it answers a response object, as the test client wants)."""
    response = HANDLER(environ)
    headers = [*response.items(), *(("Set-Cookie", c.output(header="")) for c in response.cookies.values())]
    start_response(f"{response.status_code} {response.reason_phrase}", headers)
    return response


# A filled Excel form is bytes on the wire, as any file is.
schemathesis.serializer.alias(XLSX_TYPE, "application/octet-stream")
schema = schemathesis.openapi.from_path(OPENAPI, config=CONFIG)
schema.app = django_test_client


@pytest.fixture
def leader_token(world, platform, venues) -> str:
    """The national leader's token, in the one test world with a source and two venues in it."""
    return world.leader.token


@pytest.mark.django_db
@schema.parametrize()
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_no_operation_answers_a_server_error(case, leader_token):
    response = case.call(headers={"Authorization": f"Bearer {leader_token}"})
    assert response.status_code < 500, (
        f"{case.method} {case.formatted_path} answered {response.status_code}:\n"
        f"{response.text[:2000]}\n\nReproduce with:\n{case.as_curl_command()}"
    )
