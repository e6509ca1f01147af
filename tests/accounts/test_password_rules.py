"""Passwords anyone would guess are refused, in Vietnamese, wherever a user is created (issue 16, point 6)."""

from __future__ import annotations

import pytest
from django.test import Client
from django.utils import translation
from typer.testing import CliRunner

from dieuhanh.accounts.models import User
from dieuhanh.accounts.services import create_user
from dieuhanh.cli import app

runner = CliRunner()

REFUSED = [
    ("12345678", "Mật khẩu này hoàn toàn là số."),
    ("0912345678", "Mật khẩu này hoàn toàn là số."),
    ("password", "Mật khẩu này quá phổ biến."),
    ("qwerty123", "Mật khẩu này quá phổ biến."),
    ("ngan-7c", "Mật khẩu này quá ngắn: phải có ít nhất 8 ký tự."),
]


GRANT = ["--unit", "VN-2025:26743", "--role", "operator"]


@pytest.fixture
def cli_db(world, monkeypatch):
    # The command sets Django up and migrates; inside a test both are already done.
    monkeypatch.setattr("dieuhanh.cli.migrate", lambda: None)
    return world


@pytest.mark.parametrize("password, message", REFUSED)
def test_users_create_refuses_a_guessable_password(cli_db, password, message):
    with translation.override("vi"):  # the command's language: settings.LANGUAGE_CODE
        result = runner.invoke(app, ["users", "create", "lan", "--password", password, *GRANT])
    assert result.exit_code == 1
    assert message in result.output
    assert not User.objects.filter(username="lan").exists()


def test_users_create_takes_a_long_uncommon_password(cli_db):
    result = runner.invoke(app, ["users", "create", "lan", "--password", "mua-thu-ha-noi-2025", *GRANT])
    assert result.exit_code == 0, result.output
    assert User.objects.get(username="lan").check_password("mua-thu-ha-noi-2025")


@pytest.mark.parametrize("password, message", REFUSED)
def test_the_admin_site_refuses_a_guessable_password(world, password, message):
    admin = create_user(
        actor=None, username="quantri-thu", password=None, grants=[(world.nation, "admin")], superuser=True
    )
    client = Client()
    client.force_login(admin)
    response = client.post(
        "/admin/accounts/user/add/",
        {"username": "lan", "usable_password": "true", "password1": password, "password2": password},
        HTTP_ACCEPT_LANGUAGE="vi",
    )
    assert response.status_code == 200  # the form again, with the reason
    assert message in response.content.decode()
    assert not User.objects.filter(username="lan").exists()
