"""DIEUHANH_SECURE=1 behind a TLS proxy: Secure cookies and HSTS; no trust without it (issue 16, point 6)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from django.test import Client, override_settings

from tests.factories import PASSWORD

NAMES = ["SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SECURE_HSTS_SECONDS", "SECURE_PROXY_SSL_HEADER"]
READ = (
    "import json, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'dieuhanh.settings'\n"
    "from django.conf import settings\n"
    f"print(json.dumps({{name: getattr(settings, name) for name in {NAMES!r}}}))"
)


def _settings_with(**environ: str) -> dict:
    """The settings a process started with this environment has."""
    env = {k: v for k, v in os.environ.items() if k != "DIEUHANH_SECURE"} | environ
    done = subprocess.run([sys.executable, "-c", READ], env=env, capture_output=True, text=True, check=True)
    values = json.loads(done.stdout)
    if values["SECURE_PROXY_SSL_HEADER"]:
        values["SECURE_PROXY_SSL_HEADER"] = tuple(values["SECURE_PROXY_SSL_HEADER"])
    return values


@pytest.fixture(scope="module")
def secure() -> dict:
    return _settings_with(DIEUHANH_SECURE="1")


@pytest.fixture(scope="module")
def plain() -> dict:
    return _settings_with()


def test_the_setting_turns_on_secure_cookies_hsts_for_a_year_and_the_proxy_header(secure, plain):
    assert secure == {
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "SECURE_HSTS_SECONDS": 31_536_000,
        "SECURE_PROXY_SSL_HEADER": ("HTTP_X_FORWARDED_PROTO", "https"),
    }
    assert plain == {
        "SESSION_COOKIE_SECURE": False,
        "CSRF_COOKIE_SECURE": False,
        "SECURE_HSTS_SECONDS": 0,
        "SECURE_PROXY_SSL_HEADER": None,
    }


def _log_in(client: Client, **headers: str):
    page = client.get("/login/", headers=headers)
    answer = client.post("/login/", {"username": "benthanh-operator", "password": PASSWORD}, headers=headers)
    assert answer.status_code == 302, answer.content.decode()[:500]
    return page, answer


def test_behind_the_proxy_cookies_are_secure_and_hsts_is_sent(world, secure):
    with override_settings(**secure):
        page, answer = _log_in(Client(), **{"X-Forwarded-Proto": "https"})
    assert page.headers["Strict-Transport-Security"] == "max-age=31536000"
    assert page.cookies["csrftoken"]["secure"] is True
    assert answer.cookies["sessionid"]["secure"] is True
    assert answer.cookies["sessionid"]["httponly"] is True


def test_a_request_the_proxy_marks_plain_http_gets_no_hsts(world, secure):
    with override_settings(**secure):
        page = Client().get("/login/", headers={"X-Forwarded-Proto": "http"})
    assert "Strict-Transport-Security" not in page.headers


def test_without_the_setting_a_client_claiming_https_is_not_believed(world, plain):
    with override_settings(**plain):
        page, answer = _log_in(Client(), **{"X-Forwarded-Proto": "https"})
    assert "Strict-Transport-Security" not in page.headers
    assert not page.cookies["csrftoken"]["secure"]
    assert not answer.cookies["sessionid"]["secure"]
