"""The `dieuhanh` command as a user types it."""

import pytest
from typer.testing import CliRunner

from dieuhanh.accounts.models import User
from dieuhanh.accounts.services import user_for_token
from dieuhanh.cli import app

runner = CliRunner()


@pytest.fixture
def cli_db(world, monkeypatch):
    # The command sets Django up and migrates; inside a test both are already done.
    monkeypatch.setattr("dieuhanh.cli.migrate", lambda: None)
    return world


def test_units_load_twice_says_nothing_changed(cli_db):
    result = runner.invoke(app, ["units", "load"])
    assert result.exit_code == 0, result.output
    assert "Không có thay đổi" in result.output
    assert "VN-2025: 34 tỉnh, 0 huyện, 3321 xã" in result.output


def test_users_create_with_unit_role_pairs(cli_db):
    result = runner.invoke(
        app,
        [
            "users",
            "create",
            "thu",
            "--password",
            "mat-khau-dai",
            "--unit",
            "VN-2025:26743",
            "--role",
            "operator",
            "--unit",
            "VN-2021:760",
            "--role",
            "analyst",
        ],
    )
    assert result.exit_code == 0, result.output
    grants = {(g.unit.ref, g.role) for g in User.objects.get(username="thu").grants.select_related("unit")}
    assert grants == {("VN-2025:26743", "operator"), ("VN-2021:760", "analyst")}


@pytest.mark.parametrize(
    "args, message",
    [
        (["--unit", "VN-2025:00000", "--role", "operator"], "VN-2025:00000"),
        (["--unit", "26743", "--role", "operator"], "EDITION:CODE"),
        (["--unit", "VN-2025:26743", "--role", "king"], "unknown role 'king'"),
        (["--unit", "VN-2025:26743"], "give them in pairs"),
    ],
)
def test_users_create_refuses_bad_input_clearly(cli_db, args, message):
    result = runner.invoke(app, ["users", "create", "x", "--password", "mat-khau-dai", *args])
    assert result.exit_code == 1
    assert message in result.output
    assert not User.objects.filter(username="x").exists()


def test_token_create_prints_the_token_alone_on_the_last_line(cli_db):
    result = runner.invoke(app, ["token", "create", "benthanh-operator"])
    assert result.exit_code == 0, result.output
    raw = result.output.strip().splitlines()[-1]
    assert user_for_token(raw).username == "benthanh-operator"


def test_token_create_for_unknown_user_fails(cli_db):
    result = runner.invoke(app, ["token", "create", "nobody"])
    assert result.exit_code == 1 and "nobody" in result.output
