"""What every `dieuhanh` command shares, whichever app it belongs to: Django set up, the console (on
stderr: stdout carries what a script reads, a token or a unit's reference), a failure an official
reads, a progress bar, and the user a command acts as (--as).

Each app keeps its own commands in its `cli` module, with their imports inside them: the command
line is assembled (dieuhanh.cli) before Django is set up.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

console = Console(stderr=True)


def setup_django() -> None:
    """Django set up: the first line of every command."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dieuhanh.settings")
    import django

    django.setup()


def migrate() -> None:
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)


def fail(message: str) -> typer.Exit:
    """What to raise when a command cannot go on: the reason in red, exit code 1."""
    console.print(f"[red]Lỗi:[/red] {message}")
    return typer.Exit(code=1)


@contextmanager
def refusals() -> Iterator[None]:
    """Around a verb: a refusal (DomainError) ends the command as `fail` does, with its reason."""
    from dieuhanh.errors import DomainError

    try:
        yield
    except DomainError as e:
        raise fail(str(e)) from None


def existing(path: Path) -> Path:
    """The file a command reads, or a failure naming it."""
    if not path.exists():
        raise fail(f"không có tệp {path}")
    return path


def acting_user(username: str) -> Any:
    """The active user named by --as: their area bounds the command and the audit log names them."""
    from django.contrib.auth import get_user_model

    actor = get_user_model().objects.filter(username=username, is_active=True).first()
    if actor is None:
        raise fail(f"không có người dùng '{username}'")
    return actor


def imported(rejected: list, summary: str) -> None:
    """After a file's import: its refused lines (the first 50: line, column, why), the summary, and
    exit code 2 when any line was refused (the good lines are stored)."""
    for line, column, why in rejected[:50]:
        console.print(f"  dòng {line}, cột {column}: {why}", markup=False)
    console.print(summary)
    if rejected:
        raise typer.Exit(code=2)


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
