"""Benchmark: loading the units, and "all communes under a province" (DESIGN.md §6).

    .venv/bin/python bench/units.py [--db sqlite|pg|both] [--repeat N] [--pg-url URL]

Each database runs in a child process of this script (`--child sqlite|pg`) with its own scratch
database and DIEUHANH_* environment, so Django reads its settings fresh; the child prints its figures
as one JSON line and the parent prints the table and writes bench/results/units.json.

Baselines, run in the same process on the same rows:
- loading: the driver's `executemany` of the rows load_units() wrote (units and successions) into scratch
  copies of units_unit/units_succession with the same indexes and foreign keys, in one transaction;
- subtree: a recursive CTE over parent_id returning the same communes as the `path__under` query.
"""

from __future__ import annotations

import argparse
import re
import time
from collections.abc import Callable
from contextlib import closing

from common import (  # bench/ is on sys.path
    child_django,
    child_output,
    driver_cursor,
    log,
    options,
    percentile,
    print_skipped,
    render_table,
    run_databases,
    timed,
    write_run,
)

SCRATCH_TABLES = {"units_unit": "bench_unit", "units_succession": "bench_succession"}

SUBTREE_CTE = """
    WITH RECURSIVE sub (id, kind) AS (
        SELECT id, kind FROM units_unit WHERE id = %s
        UNION ALL
        SELECT u.id, u.kind FROM units_unit u JOIN sub ON u.parent_id = sub.id
    )
    SELECT id FROM sub WHERE kind = 'commune'
"""


# ---------------------------------------------------------------- child: one database, Django set up


def bench_load() -> dict:
    from django.core.management import call_command

    from dieuhanh.units.models import Succession, Unit
    from dieuhanh.units.services import load_units

    _, migrate_s = timed(call_command, "migrate", verbosity=0)
    log("  load_units() on an empty database …")
    _, load_s = timed(load_units)
    units, successions = Unit.objects.count(), Succession.objects.count()
    log("  executemany baseline …")
    baseline = bench_executemany()
    log("  load_units() again (no change) …")
    again, reload_s = timed(load_units)
    if again.changed:
        raise SystemExit(f"FAIL: the second load_units() changed rows: {again.as_dict()}")
    return {
        "migrate_s": migrate_s,
        "load_s": load_s,
        "units": units,
        "successions": successions,
        "units_per_s": units / load_s,
        **baseline,
        "load_vs_baseline": load_s / baseline["baseline_s"],
        "reload_s": reload_s,
        "reload_vs_load": reload_s / load_s,
        "read_packages_s": time_read_packages(),
    }


def time_read_packages() -> float:
    """What load_units() spends reading the PyPI packages (warm, after the first load), for context."""
    from dieuhanh.units import packaged

    def read() -> None:
        packaged.read_2021()
        _, keys = packaged.read_2025()
        packaged.read_succession(keys)

    return timed(read)[1]


BASELINE_RUNS = 3


def bench_executemany() -> dict:
    """Insert the rows load_units() wrote, with the driver's executemany, into same-shaped scratch
    tables, in one transaction; the median of BASELINE_RUNS runs, each on new tables."""
    from django.db import connection

    with connection.cursor() as cursor:
        rows = {table: read_rows(cursor, table) for table in SCRATCH_TABLES}
    runs = [insert_once(rows) for _ in range(BASELINE_RUNS)]
    median = sorted(runs)[len(runs) // 2]
    return {"baseline_s": median[0], "baseline_units_s": median[1], "baseline_runs_s": [r[0] for r in runs]}


def insert_once(rows: dict[str, tuple[list[str], list[tuple]]]) -> tuple[float, float]:
    """(seconds for all rows including the commit, seconds for the units alone)."""
    from django.db import connection, transaction

    with connection.cursor() as cursor:
        create_scratch_tables(cursor, connection.vendor)
    start = time.perf_counter()
    with transaction.atomic(), closing(driver_cursor(connection)) as cursor:
        insert_rows(cursor, connection.vendor, "bench_unit", *rows["units_unit"])
        units_s = time.perf_counter() - start
        insert_rows(cursor, connection.vendor, "bench_succession", *rows["units_succession"])
    total_s = time.perf_counter() - start  # foreign keys are deferred: checked at the commit
    with connection.cursor() as cursor:
        for scratch in reversed(SCRATCH_TABLES.values()):
            cursor.execute(f"DROP TABLE {scratch}")
    return total_s, units_s


def read_rows(cursor, table: str) -> tuple[list[str], list[tuple]]:
    cursor.execute(f"SELECT * FROM {table} ORDER BY id")
    return [c[0] for c in cursor.description], cursor.fetchall()


def insert_rows(cursor, vendor: str, table: str, columns: list[str], rows: list[tuple]) -> None:
    marks = ", ".join(["%s" if vendor == "postgresql" else "?"] * len(columns))
    cursor.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)


def create_scratch_tables(cursor, vendor: str) -> None:
    """Copies of units_unit and units_succession: same columns, indexes and deferred foreign keys."""
    if vendor == "postgresql":
        fk = "DEFERRABLE INITIALLY DEFERRED"
        cursor.execute("CREATE TABLE bench_unit (LIKE units_unit INCLUDING ALL)")
        cursor.execute(
            f"ALTER TABLE bench_unit ADD FOREIGN KEY (edition_id) REFERENCES units_edition (code) {fk},"
            f" ADD FOREIGN KEY (parent_id) REFERENCES bench_unit (id) {fk}"
        )
        cursor.execute("CREATE TABLE bench_succession (LIKE units_succession INCLUDING ALL)")
        cursor.execute(
            f"ALTER TABLE bench_succession ADD FOREIGN KEY (old_id) REFERENCES bench_unit (id) {fk},"
            f" ADD FOREIGN KEY (new_id) REFERENCES bench_unit (id) {fk}"
        )
        return
    cursor.execute(
        "SELECT sql FROM sqlite_master WHERE tbl_name IN ('units_unit', 'units_succession')"
        " AND type IN ('table', 'index') AND sql IS NOT NULL"
        " ORDER BY type DESC, tbl_name DESC"  # tables before indexes, units first
    )  # not the triggers (the indicators' data versions): PostgreSQL's LIKE … INCLUDING ALL copies none
    for (sql,) in cursor.fetchall():
        sql = re.sub(r'INDEX "(\w+)"', r'INDEX "bench_\1"', sql)
        for table, scratch in SCRATCH_TABLES.items():
            sql = sql.replace(f'"{table}"', f'"{scratch}"')
        cursor.execute(sql)


SUBTREE_METHODS = ("orm", "sql", "cte")


def bench_subtree(repeat: int) -> dict:
    """Communes under each province of both editions: path__under through the ORM (ours), the SQL
    the ORM sends run through a cursor (so the ORM's own cost shows), and a recursive CTE (baseline)."""
    from django.db import connection

    from dieuhanh.units.models import Unit

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE units_unit")  # what autovacuum does soon after a load
    provinces = list(Unit.objects.filter(kind="province").order_by("edition_id", "code"))
    methods = {p.pk: subtree_methods(p) for p in provinces}
    samples: dict[str, list[float]] = {name: [] for name in SUBTREE_METHODS}
    log(f"  subtree queries: {len(provinces)} provinces × {repeat} sweeps (+1 warm-up) …")
    for sweep in range(repeat + 1):
        for i, province in enumerate(provinces):
            seconds = compare_subtree(province, methods[province.pk], turn=sweep + i)
            if sweep:  # the first sweep warms up and checks
                for name, s in seconds.items():
                    samples[name].append(s)
    return {
        "provinces": len(provinces),
        "sweeps": repeat,
        **subtree_figures(samples, repeat),
        "plan_largest": plan_of_largest(provinces),
    }


def subtree_figures(samples: dict[str, list[float]], repeat: int) -> dict:
    figures = {}
    for name, seconds in samples.items():
        figures[f"{name}_p50_ms"] = percentile(seconds, 0.5) * 1e3
        figures[f"{name}_p95_ms"] = percentile(seconds, 0.95) * 1e3
        figures[f"{name}_sweep_ms"] = sum(seconds) / repeat * 1e3
    for p in ("p50", "p95"):
        figures[f"cte_vs_orm_{p}"] = figures[f"cte_{p}_ms"] / figures[f"orm_{p}_ms"]
        figures[f"cte_vs_sql_{p}"] = figures[f"cte_{p}_ms"] / figures[f"sql_{p}_ms"]
    return figures


def communes_under(province):
    from dieuhanh.units.models import Unit

    return Unit.objects.filter(edition_id=province.edition_id, path__under=province.path, kind="commune")


def subtree_methods(province) -> dict[str, Callable[[], list[int]]]:
    """The three ways to the ids of the communes under a province, each returning a list of ids."""
    from django.db import connection

    sql, params = communes_under(province).values_list("id", flat=True).query.sql_with_params()

    def run(query: str, args) -> list[int]:
        with connection.cursor() as cursor:
            cursor.execute(query, args)
            return [row[0] for row in cursor.fetchall()]

    return {
        "orm": lambda: list(communes_under(province).values_list("id", flat=True)),
        "sql": lambda: run(sql, params),
        "cte": lambda: run(SUBTREE_CTE, [province.pk]),
    }


def compare_subtree(province, methods: dict[str, Callable[[], list[int]]], turn: int) -> dict[str, float]:
    """Seconds of each method for one province, taking turns at going first; fails unless all agree."""
    order = SUBTREE_METHODS[turn % 3 :] + SUBTREE_METHODS[: turn % 3]
    found, seconds = {}, {}
    for name in order:
        found[name], seconds[name] = timed(methods[name])
    expected = found["cte"]
    for name, ids in found.items():
        if not ids or len(ids) != len(expected) or set(ids) != set(expected):
            raise SystemExit(
                f"FAIL: communes under {province.ref}: {name} found {len(ids)}, the recursive CTE"
                f" {len(expected)} ({len(set(ids) ^ set(expected))} not in both)"
            )
    return seconds


def plan_of_largest(provinces) -> dict:
    """The database's plan for the ORM query of the province with the most communes."""
    largest = max(provinces, key=lambda p: communes_under(p).count())
    return {"province": largest.ref, "orm": communes_under(largest).values_list("id", flat=True).explain()}


def run_child(args: argparse.Namespace) -> None:
    postgres = child_django(args)
    vendor = "postgresql" if postgres else "sqlite"
    child_output({"vendor": vendor, **bench_load(), **bench_subtree(args.repeat)})


# ---------------------------------------------------------------- parent: the table, JSON


ROWS = [  # (label, key, format)
    ("migrate, s", "migrate_s", "{:.2f}"),
    ("units loaded", "units", "{:,}"),
    ("successions loaded", "successions", "{:,}"),
    ("load_units() on empty db, s", "load_s", "{:.2f}"),
    ("  units/s", "units_per_s", "{:,.0f}"),
    ("  reading the packages alone (warm), s", "read_packages_s", "{:.2f}"),
    ("executemany baseline (units+successions), s", "baseline_s", "{:.3f}"),
    ("  of which units, s", "baseline_units_s", "{:.3f}"),
    ("  ratio load_units/baseline", "load_vs_baseline", "{:.1f}×"),
    ("load_units() again, no change, s", "reload_s", "{:.2f}"),
    ("communes under a province: provinces", "provinces", "{}"),
    ("  path__under, ORM (ours)       p50, ms", "orm_p50_ms", "{:.3f}"),
    ("                                p95, ms", "orm_p95_ms", "{:.3f}"),
    ("  path__under, its SQL only     p50, ms", "sql_p50_ms", "{:.3f}"),
    ("                                p95, ms", "sql_p95_ms", "{:.3f}"),
    ("  recursive CTE (baseline)      p50, ms", "cte_p50_ms", "{:.3f}"),
    ("                                p95, ms", "cte_p95_ms", "{:.3f}"),
    ("  ratio CTE/ORM                 p50", "cte_vs_orm_p50", "{:.2f}×"),
    ("                                p95", "cte_vs_orm_p95", "{:.2f}×"),
    ("  ratio CTE/SQL only            p50", "cte_vs_sql_p50", "{:.2f}×"),
    ("  one sweep of every province ORM / SQL / CTE, ms", "", ""),
]


def cell(result: dict, key: str, fmt: str) -> str:
    if not key:
        return " / ".join(f"{result[f'{m}_sweep_ms']:.1f}" for m in SUBTREE_METHODS)
    return fmt.format(result[key])


def table(results: dict[str, dict], repeat: int) -> str:
    names = list(results)
    grid = [["units benchmark", *names]]
    grid += [[label, *(cell(results[n], key, fmt) for n in names)] for label, key, fmt in ROWS]
    note = f"(subtree latencies: one query per province of both editions; sweeps: {repeat})"
    return render_table(grid) + "\n" + note


def main() -> None:
    parser = options(__doc__, default="both", both=True)
    parser.add_argument("--repeat", type=int, default=20, help="sweeps over every province (default 20)")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.child:
        run_child(args)
        return
    runs = run_databases(args, "units")
    print(table(runs.results, args.repeat))
    print_skipped(runs)
    write_run("units", args, runs)


if __name__ == "__main__":
    main()
