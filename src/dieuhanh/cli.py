"""The `dieuhanh` command."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

app = typer.Typer(help="Điều hành: the command room's platform.", no_args_is_help=True)
units_app = typer.Typer(help="Administrative units.", no_args_is_help=True)
users_app = typer.Typer(help="Users and their grants.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens.", no_args_is_help=True)
app.add_typer(units_app, name="units")
app.add_typer(users_app, name="users")
app.add_typer(token_app, name="token")
console = Console(stderr=True)


def _django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dieuhanh.settings")
    import django

    django.setup()


def fail(message: str) -> typer.Exit:
    console.print(f"[red]Lỗi:[/red] {message}")
    return typer.Exit(code=1)


@contextmanager
def progress_bar() -> Iterator:
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as bar:
        tasks: dict[str, TaskID] = {}

        def tick(step: str, done: int, total: int) -> None:
            if step not in tasks:
                tasks[step] = bar.add_task(step, total=total)
            bar.update(tasks[step], completed=done, total=total)

        yield tick


def migrate() -> None:
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)


@units_app.command("load")
def units_load() -> None:
    """Load VN-2021, VN-2025 and their succession from the packages (idempotent)."""
    _django()
    migrate()
    _load_units()


def _load_units() -> None:
    from dieuhanh.accounts.services import audit
    from dieuhanh.units.services import counts, load_units

    with progress_bar() as tick:
        report = load_units(progress=tick)
    for edition in ("VN-2021", "VN-2025"):
        c = counts(edition)
        console.print(
            f"{edition}: {c.get('province', 0)} tỉnh, {c.get('district', 0)} huyện, "
            f"{c.get('commune', 0)} xã — mới {report.created[edition]}, "
            f"cập nhật {report.updated[edition]}, giữ nguyên {report.unchanged[edition]}"
        )
    if report.changed:
        audit(
            None,
            "units.load",
            rows=sum(report.created.values()) + sum(report.updated.values()),
            **report.as_dict(),
        )
        console.print(
            f"Kế thừa 2021 → 2025: mới {report.successions_created}, "
            f"cập nhật {report.successions_updated}, bỏ {report.successions_removed}"
        )
    else:
        console.print("Không có thay đổi: đơn vị hành chính đã được nạp đầy đủ (nothing changed).")


def _unit(ref: str):
    from dieuhanh.units.models import Unit
    from dieuhanh.units.services import get_unit

    try:
        return get_unit(ref)
    except ValueError as e:
        raise fail(str(e)) from None
    except Unit.DoesNotExist:
        raise fail(f"không có đơn vị '{ref}' (unknown unit; run `dieuhanh units load` first?)") from None


@users_app.command("create")
def users_create(
    name: str,
    password: str = typer.Option(..., "--password", "-p", help="at least 8 characters"),
    unit: list[str] = typer.Option([], "--unit", help="EDITION:CODE, e.g. VN-2025:79; repeat with --role"),
    role: list[str] = typer.Option([], "--role", help="leader, analyst, operator, tracer, enterprise, admin"),
    full_name: str = typer.Option("", "--full-name"),
) -> None:
    """Create a user with (unit, role) grants given as repeated --unit/--role pairs."""
    _django()
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


@token_app.command("create")
def token_create(
    name: str, label: str = typer.Option("cli", "--label", help="what the token is for")
) -> None:
    """Create an API token for user NAME; the token is printed once, alone on the last line."""
    _django()
    from dieuhanh.accounts.models import User
    from dieuhanh.accounts.services import create_token

    user = User.objects.filter(username=name).first()
    if user is None:
        raise fail(f"không có người dùng '{name}'")
    _, raw = create_token(actor=None, user=user, name=label)
    console.print(f"Token cho {name} (chỉ hiện một lần; store it now):")
    print(raw)


@app.command()
def init(demo: bool = typer.Option(False, "--demo", help="also create the demo users")) -> None:
    """Create or upgrade the database, load the units, and (with --demo) the demo users."""
    _django()
    migrate()
    _load_units()
    if demo:
        from dieuhanh.demo import create_demo

        for login in create_demo():
            console.print(login)


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8000, "--port"),
    workers: int = typer.Option(1, "--workers"),
) -> None:
    """Serve the command room (ASGI, uvicorn)."""
    _django()
    import uvicorn

    migrate()
    console.print(f"Phòng điều hành: http://{host}:{port}/  (API: http://{host}:{port}/api/v1/docs)")
    uvicorn.run("dieuhanh.asgi:application", host=host, port=port, workers=workers, log_level="warning")


def main() -> None:
    app()
