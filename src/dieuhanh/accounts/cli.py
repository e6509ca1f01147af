"""`dieuhanh users` and `dieuhanh token`: accounts from a terminal."""

from __future__ import annotations

import typer

from dieuhanh.terminal import console, fail, setup_django

users = typer.Typer(help="Users and their grants.", no_args_is_help=True)
tokens = typer.Typer(help="API tokens.", no_args_is_help=True)


def _unit(ref: str):
    from dieuhanh.units.models import Unit
    from dieuhanh.units.services import get_unit

    try:
        return get_unit(ref)
    except ValueError as e:
        raise fail(str(e)) from None
    except Unit.DoesNotExist:
        raise fail(f"không có đơn vị '{ref}' (unknown unit; run `dieuhanh units load` first?)") from None


@users.command("create")
def users_create(
    name: str,
    password: str = typer.Option(..., "--password", "-p", help="at least 8 characters"),
    unit: list[str] = typer.Option([], "--unit", help="EDITION:CODE, e.g. VN-2025:79; repeat with --role"),
    role: list[str] = typer.Option([], "--role", help="leader, analyst, operator, tracer, enterprise, admin"),
    full_name: str = typer.Option("", "--full-name"),
) -> None:
    """Create a user with (unit, role) grants given as repeated --unit/--role pairs."""
    setup_django()
    from django.core.exceptions import ValidationError

    from dieuhanh.accounts.services import create_user

    if len(unit) != len(role):
        raise fail(f"{len(unit)} --unit but {len(role)} --role: give them in pairs")
    grants = [(_unit(u), r) for u, r in zip(unit, role, strict=True)]
    try:
        user = create_user(actor=None, username=name, password=password, grants=grants, full_name=full_name)
    except ValidationError as e:
        raise fail("; ".join(e.messages)) from None
    except ValueError as e:
        raise fail(str(e)) from None
    console.print(f"Đã tạo người dùng {user.username} với {len(grants)} quyền.")


@users.command("unlock")
def users_unlock(
    name: str = typer.Argument("", help="the user name locked out after failed logins"),
    client: str = typer.Option("", "--client", help="instead, a client IP address locked out"),
) -> None:
    """End a failed-login lock (of user NAME, or of a client address) before its time; audited."""
    setup_django()
    from dieuhanh.accounts.lockout import unlock
    from dieuhanh.accounts.models import LoginThrottle

    if bool(name) == bool(client):
        raise fail("cho tên người dùng NAME hoặc --client ĐỊA_CHỈ_IP (một trong hai)")
    scope, key = (LoginThrottle.Scope.CLIENT, client) if client else (LoginThrottle.Scope.ACCOUNT, name)
    if unlock(actor=None, scope=scope, key=key):
        console.print(f"Đã mở khóa đăng nhập cho {key}.")
    else:
        console.print(f"{key} không bị khóa đăng nhập; số lần sai (nếu có) đã được xóa.")


@tokens.command("create")
def token_create(
    name: str, label: str = typer.Option("cli", "--label", help="what the token is for")
) -> None:
    """Create an API token for user NAME; the token is printed once, alone on the last line."""
    setup_django()
    from dieuhanh.accounts.models import User
    from dieuhanh.accounts.services import create_token

    user = User.objects.filter(username=name).first()
    if user is None:
        raise fail(f"không có người dùng '{name}'")
    _, raw = create_token(actor=None, user=user, name=label)
    console.print(f"Token cho {name} (chỉ hiện một lần; store it now):")
    print(raw)
