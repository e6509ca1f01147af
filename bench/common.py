"""What every benchmark shares: the machine it ran on, its children's environment, PostgreSQL look-ups."""

from __future__ import annotations

import gc
import json
import math
import os
import platform
import sqlite3
import sys
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent


def machine(pg_server: str | None) -> dict:
    import django

    cpu = next((line.split(":", 1)[1].strip() for line in _cpuinfo() if line.startswith("model name")), None)
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "django": django.get_version(),
        "sqlite": sqlite3.sqlite_version,
        "postgresql": pg_server,
    }


def _cpuinfo() -> list[str]:
    try:
        return Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return []


def child_env(home: str, database_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DIEUHANH_", "DJANGO_"))}
    env.update({"DIEUHANH_HOME": home, "DJANGO_SETTINGS_MODULE": "dieuhanh.settings"})
    if database_url:
        env["DIEUHANH_DATABASE_URL"] = database_url
    return env


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def pg_version(admin_url: str) -> str | None:
    """The server's version, or None (with the reason on stderr) when PostgreSQL does not answer."""
    import psycopg

    try:
        with psycopg.connect(admin_url, connect_timeout=3) as conn:
            return conn.execute("SHOW server_version").fetchone()[0]
    except psycopg.OperationalError as e:
        log(f"PostgreSQL does not answer at {shown(admin_url)}: {str(e).strip()}")
        return None


def setup_django() -> None:
    sys.path.insert(0, str(ROOT / "src"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dieuhanh.settings")
    import django

    django.setup()


def shown(url: str) -> str:
    """The URL without its password, for messages and the JSON."""
    parts = urlsplit(url)
    return (
        parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")).geturl()
        if parts.password
        else url
    )


def render_table(grid: list[list[str]]) -> str:
    """A benchmark's table: labels left-aligned, one right-aligned column per database, a rule under
    the header row."""
    widths = [max(len(row[i]) for row in grid) for i in range(len(grid[0]))]
    lines = [
        "  ".join([row[0].ljust(widths[0]), *(c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True))])
        for row in grid
    ]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def timed(fn, *args, **kwargs):
    """(result, seconds) of one call."""
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..1)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def spread(seconds: list[float]) -> dict:
    return {
        "n": len(seconds),
        "p50_s": percentile(seconds, 0.5),
        "p95_s": percentile(seconds, 0.95),
        "min_s": min(seconds),
        "max_s": max(seconds),
        "all_s": seconds,
    }


def pg_loaded_params(admin_url: str, url: str, database: str, meta_table: str) -> dict | None:
    """The arguments a scratch database was loaded from (kept in `meta_table`), or None if none is."""
    import psycopg

    with psycopg.connect(admin_url) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database]).fetchone():
            return None
    with psycopg.connect(url) as conn:
        if conn.execute("SELECT to_regclass(%s)", [meta_table]).fetchone()[0] is None:
            return None
        return json.loads(conn.execute(f"SELECT params FROM {meta_table}").fetchone()[0])


def sqlite_loaded_params(path: Path, meta_table: str) -> dict | None:
    if not path.exists():
        return None
    with sqlite3.connect(path) as conn:
        found = conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", [meta_table]).fetchone()
        return json.loads(conn.execute(f"SELECT params FROM {meta_table}").fetchone()[0]) if found else None


def write_results(name: str, document: dict) -> Path:
    """bench/results/<name>.json, and a line saying where."""
    path = ROOT / "bench" / "results" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False, default=str) + "\n")
    print(f"\nwritten to {path.relative_to(ROOT)}")
    return path


def reused_load(meta_table: str, table: str, expected_rows: int) -> dict:
    """The note a benchmark's load left in `meta_table`, after checking `table` still holds the rows it
    wrote (a --reuse run must not time a database someone changed)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT report FROM {meta_table}")
        report = json.loads(cursor.fetchone()[0])
        cursor.execute(f"SELECT count(*) FROM {table}")
        (rows,) = cursor.fetchone()
    if rows != expected_rows:
        raise SystemExit(
            f"FAIL: --reuse: {table} holds {rows:,} rows, not {expected_rows:,}: rerun without it"
        )
    return report | {"reused": True}


class GcWatch:
    """Python's garbage collections during a block: how many of each generation, and their pauses."""

    def __enter__(self) -> GcWatch:
        self.count: Counter = Counter()
        self.seconds = 0.0
        self.longest = 0.0
        self._start = 0.0
        gc.callbacks.append(self._callback)
        return self

    def _callback(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._start = time.perf_counter()
            return
        pause = time.perf_counter() - self._start
        self.count[info["generation"]] += 1
        self.seconds += pause
        self.longest = max(self.longest, pause)

    def __exit__(self, *exc) -> None:
        gc.callbacks.remove(self._callback)

    def report(self) -> dict:
        return {
            "collections": {f"gen{g}": n for g, n in sorted(self.count.items())},
            "pause_s": self.seconds,
            "longest_s": self.longest,
        }


def session_cookie(user) -> str:
    """A signed-in session of the user (what a browser holds): its key, for the sessionid cookie."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    store = SessionStore()
    store[SESSION_KEY] = str(user.pk)
    store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    store.create()
    return store.session_key


def free_port() -> int:
    """A loopback port nothing listens on now, for a server the benchmark starts."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def migrated_communes(limit: int | None = None) -> list:
    """In a child: the scratch database migrated, the units loaded once, and the 2025 communes in path
    order (the first `limit` of them, for a smaller run)."""
    from django.core.management import call_command

    from dieuhanh.units.models import Unit
    from dieuhanh.units.services import load_units

    call_command("migrate", verbosity=0)
    if not Unit.objects.filter(edition_id="VN-2025", kind="commune").exists():
        load_units()
    communes = list(Unit.objects.filter(edition_id="VN-2025", kind="commune").order_by("path"))
    return communes[:limit] if limit else communes
