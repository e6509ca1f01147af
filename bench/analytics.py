"""Benchmark: analytics — one indicator × every commune × 12 months over a warehouse of millions of test
results, beside a GROUP BY over the raw events.

    .venv/bin/python bench/analytics.py [--db pg|sqlite] [--events N] [--runs N] [--reuse] [--profile]
                                        [--seed S] [--pg-url URL] [--name NAME]

The database runs in a child process of this script (`--child pg|sqlite`) with its own scratch
database (PostgreSQL: `dieuhanh_bench_analytics`; SQLite: a file in a fixed folder under the temporary
directory) and DIEUHANH_* environment; the child prints its figures as one JSON line and the parent
prints the table and writes bench/results/analytics.json.

The data (docs/analytics-bench.md): N test results (kind "test", warehouse_testresult) over the
3,321 communes of VN-2025 and the 24 months of 2020 and 2021 (2021 the busier year), each commune
weighted as `synth.commune_populations` weights the communes people live in (wards favoured,
heavy-tailed), every commune lived in; months weighted by a table of epidemic waves, hours of the day
by a daytime rhythm; 1% invalid, positives at the month's rate times the commune's own factor (about
8% overall); 35% PCR. They BYPASS the ingest pipeline (about 30,000 rows/s, bench/ingest.py): they are
written straight into the table with COPY (PostgreSQL) or executemany (SQLite) in the columns and
forms the pipeline writes (ids in time order, UTC times, 32-byte person keys), with the tables'
indexes dropped for the load and recreated after it from their catalog definitions. The daily and
monthly rollups are then made from the loaded events with one INSERT … SELECT … GROUP BY each, by the
local (Asia/Ho_Chi_Minh) day and month and (result, method) as dim1 and dim2: what the ingest's
`_add_to_rollups` would have left; a sample of their cells is checked against direct counts of the
events (by the ORM, with the local day's bounds computed in Python), and their totals against N.
With --reuse the loaded database is kept and used again when it was made from the same arguments.

Measured, interleaved run by run (--runs, after one untimed warm-up of each):
- service: `analytics.rows([positives], 2021's 12 months, every VN-2025 commune)`, the indicator
  `positives` = #{ev.test.positive} made through `services.save_indicator`, the units resolved once
  by `services.units_named(["LEVEL-2"], …)` for a national leader (their time is shown apart);
- HTTP: GET /api/v1/analytics?dx=positives&pe=…&ou=LEVEL-2 through Django's test Client with a
  national leader's bearer token (the full middleware, ninja and serialisation, without a socket);
- the same two for `positives_yoy` = yoy(#{ev.test.positive}) (reads 2020 too), the service also
  after a write in every province in one month (a morning's batch over the country: patched by that
  month on PostgreSQL), as a first question in a process (the answer cache emptied: computed anew,
  the months' packs that an earlier answer left in the database taken), as a first question anywhere
  (the packs emptied too: every month summed from the rollups) and as a new
  question over months other questions read (no answer kept, their monthly rollup rows kept);
- raw: SELECT commune_id, local month, count(*) FROM warehouse_testresult WHERE result = 'positive'
  AND at in 2021 GROUP BY both, on the same database in the same process;
- the rollup read alone: analytics' read of the monthly rollups into its arrays (the database's part
  of an answer: on PostgreSQL a bytea of packed rows per month, streamed, on SQLite grouped rows as
  tuples).
- a new web worker: `dieuhanh serve --workers 1` started NEW_WORKERS times on the same database, its
  first and second GET of positives_yoy timed from the moment it takes connections.
Each timed call also records the pauses of Python's cyclic garbage collector inside it.
Before the clock, the answers are compared cell by cell (commune × month; for yoy with the raw
counts of 2020 too): service, HTTP and raw must agree everywhere, or the run stops. Also recorded:
the queries one answer makes and their database time, the query plans of the analytics read and of
the raw scan, and, with --profile, cProfile over one service answer and one request.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import io
import json
import math
import os
import pstats
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from itertools import accumulate
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlencode

from common import (  # bench/ is on sys.path
    DAY,
    ROOT,
    GcWatch,
    TimeText,
    child_django,
    child_output,
    drop_indexes,
    finish_tables,
    free_port,
    goals_text,
    loaded,
    log,
    options,
    percentile,
    pg_settings,
    render_table,
    run_databases,
    spread,
    stop_server,
    table_sizes,
    timed,
    write_run,
)

EVENTS, ROLLUP, ROLLUP_MONTH = "warehouse_testresult", "warehouse_rollup", "warehouse_rollupmonth"
LOADED_TABLES = (EVENTS, ROLLUP, ROLLUP_MONTH)
META_TABLE = "bench_analytics_load"
EDITION, NATION_REF = "VN-2025", "VN-2025:VN"
# Bumped whenever the generated rows change, so that --reuse refuses a database made by older code.
GENERATOR = 1
DEFAULT_EVENTS = 10_000_000
PERSON_KEY = b"bench-analytics-fixed-person-key"
HOUR = 3_600
UTC_OFFSET = 7 * HOUR  # Asia/Ho_Chi_Minh: UTC+7 all year
LOCAL_TZ = "Asia/Ho_Chi_Minh"
YEARS = (2020, 2021)
ASKED_YEAR = 2021
# Tests per month (relative) and the share positive, by month: 2020's few tests, then 2021's waves
# (Hải Dương in February, Bắc Giang in May–June, the Delta wave from July, the autumn reopening).
VOLUME = {
    2020: (2, 3, 4, 4, 2, 1, 3, 5, 3, 2, 2, 2),
    2021: (3, 5, 3, 3, 6, 8, 12, 14, 12, 8, 8, 8),
}
POSITIVE = {
    2020: (0.02, 0.03, 0.04, 0.03, 0.02, 0.02, 0.03, 0.04, 0.03, 0.02, 0.02, 0.02),
    2021: (0.04, 0.06, 0.03, 0.03, 0.07, 0.08, 0.12, 0.14, 0.11, 0.07, 0.08, 0.09),
}
INVALID, PCR = 0.01, 0.35
# Tests per hour of the local day: sampling in the morning and the afternoon, a few at night (which
# fall on the day before in UTC, so the rollups' local days matter).
HOURLY = (1, 1, 1, 1, 1, 2, 6, 12, 14, 12, 9, 6, 4, 7, 10, 10, 8, 5, 3, 2, 2, 1, 1, 1)
PEOPLE_PER_TEST = 0.3  # people in the key pool per test: most people are tested a few times
COMMUNE_FACTOR_SIGMA = 0.5  # a commune's positive rate: the month's times a log-normal factor
COPY_LINES = 50_000  # rows per insert_rows (COPY / executemany): bounds the memory of one chunk
ROLLUP_SAMPLE = 40  # rollup cells of each table checked against a direct count
PROFILE_TOP = 25
# Issue 18's goals on this machine: p95 under 50 ms with cùng kỳ, twice DuckDB's speed on the same
# question, the formula path at most 1.5× the plain indicator.
GOAL_P95_S, GOAL_DUCKDB, GOAL_FORMULA = 0.05, 2.0, 1.5
INDICATORS = {  # code: (name, formula, unit, decimals)
    "positives": ("Ca xét nghiệm dương tính", "#{ev.test.positive}", "ca", 0),
    "positives_yoy": ("Ca dương tính so với cùng kỳ", "yoy(#{ev.test.positive})", "%", 1),
}


def load_params(args: argparse.Namespace) -> dict:
    """What the loaded data depends on: --reuse uses a database only when these match."""
    return {"generator": GENERATOR, "events": args.events, "seed": args.seed, "edition": EDITION}


def months() -> list[tuple[int, int]]:
    return [(year, month) for year in YEARS for month in range(1, 13)]


def asked_periods() -> str:
    return ";".join(f"{ASKED_YEAR}{month:02d}" for month in range(1, 13))


def local_epoch(year: int, month: int) -> int:
    """Epoch seconds of the month's first local midnight."""
    return int(datetime(year, month, 1, tzinfo=UTC).timestamp()) - UTC_OFFSET


# ---------------------------------------------------------------- generating test results


class Test(NamedTuple):
    at: int  # epoch seconds
    commune: int  # index into the communes
    result: int  # index into RESULTS_
    method: int  # index into METHODS
    person: int


RESULTS_, METHODS = ("positive", "negative", "invalid"), ("pcr", "rapid")


def month_counts(total: int) -> list[int]:
    """The rows of each month of YEARS, by VOLUME, adding up to exactly `total`."""
    weights = [VOLUME[year][month - 1] for year, month in months()]
    counts = [total * w // sum(weights) for w in weights]
    for i in range(total - sum(counts)):
        counts[i % len(counts)] += 1
    return counts


class Tests:
    """Test results month by month, sorted by time. The hot loop draws random() into lookup tables."""

    def __init__(self, rng: random.Random, weights: list[float], people: int):
        self.rng = rng
        self.cum_weights = list(accumulate(weights))
        self.factors = [math.exp(rng.gauss(0.0, COMMUNE_FACTOR_SIGMA)) for _ in weights]
        self.hours = [hour for hour, w in enumerate(HOURLY) for _ in range(w)]
        self.people = people

    def month(self, year: int, month: int, count: int) -> list[Test]:
        rng, random_, hours, factors, people = (
            self.rng,
            self.rng.random,
            self.hours,
            self.factors,
            self.people,
        )
        start = local_epoch(year, month)
        days = (local_epoch(*divmod_month(year, month + 1)) - start) // DAY
        rate = POSITIVE[year][month - 1]
        communes = rng.choices(range(len(factors)), cum_weights=self.cum_weights, k=count)
        rows = []
        for commune in communes:
            at = (
                start
                + int(random_() * days) * DAY
                + hours[int(random_() * len(hours))] * HOUR
                + int(random_() * HOUR)
            )
            r = random_()
            result = 2 if r < INVALID else (0 if r - INVALID < rate * factors[commune] else 1)
            method = 0 if random_() < PCR else 1
            rows.append(Test(at, commune, result, method, int(random_() * people)))
        rows.sort()
        return rows


def divmod_month(year: int, month: int) -> tuple[int, int]:
    """(year, month) with month 13 carried into the next year."""
    return (year + 1, 1) if month == 13 else (year, month)


def person_key(person: int) -> bytes:
    """A 32-byte key as the pipeline's HMAC gives, from the person's number under a fixed key."""
    return hashlib.blake2b(person.to_bytes(8, "little"), key=PERSON_KEY, digest_size=32).digest()


# ---------------------------------------------------------------- writing them (child, Django set up)


FIELDS = ["id", "source_id", "source_event_id", "commune_id", "at", "person_key", "method", "result"]


def month_rows(
    rows: list[Test], first_id: int, source: int, communes: list[int], text: TimeText
) -> Iterator[tuple]:
    """A month's generated tests as warehouse_testresult's rows, ids from `first_id`."""
    for row_id, row in enumerate(rows, first_id):
        yield (
            row_id,
            source,
            f"tst-{row_id:09d}",
            communes[row.commune],
            text(row.at),
            person_key(row.person),
            METHODS[row.method],
            RESULTS_[row.result],
        )


def rollup_sql(postgres: bool) -> dict[str, str]:
    """INSERT … SELECT … GROUP BY for the daily and the monthly rollups, from every loaded event, by
    local day or month, with the test kind's dims (dim1 = result, dim2 = method, see kinds.KINDS)."""
    if postgres:
        local = f"(at AT TIME ZONE '{LOCAL_TZ}')"
        day, month = f"{local}::date", f"date_trunc('month', {local})::date"
    else:
        # Executed without parameters, so '%' is left as it is (raw_sql's are doubled).
        day, month = "date(at, '+7 hours')", "strftime('%Y-%m-01', at, '+7 hours')"
    return {
        table: (
            f"INSERT INTO {table} (commune_id, {column}, kind, dim1, dim2, count)"
            f" SELECT commune_id, {bucket}, 'test', result, method, count(*) FROM {EVENTS}"
            " GROUP BY 1, 2, 4, 5 ORDER BY 1, 2, 4, 5"
        )
        for table, column, bucket in ((ROLLUP, "day", day), (ROLLUP_MONTH, "month", month))
    }


def load(params: dict) -> dict:
    """Migrate, load the units, create a source, then the events straight into the table and the
    rollups from them (indexes dropped and recreated), and check the rollups (the harness's `loaded`
    notes what was loaded)."""
    from django.core.management import call_command
    from django.db import connection

    from dieuhanh.units.models import Unit
    from dieuhanh.units.services import load_units
    from dieuhanh.warehouse import services, synth

    postgres = connection.vendor == "postgresql"
    report: dict = {}
    _, report["migrate_s"] = timed(call_command, "migrate", verbosity=0)
    log("  load_units() …")
    _, report["load_units_s"] = timed(load_units)
    source, _ = services.create_source(actor=None, name="bench-analytics", kinds=["test"], edition=EDITION)
    rng = random.Random(params["seed"])
    communes = synth.read_communes(EDITION)
    # Every commune lived in: synth keeps scale // 25 communes.
    weights = synth.commune_populations(rng, communes, scale=25 * len(communes))
    by_code = {
        code.zfill(5): pk
        for code, pk in Unit.objects.filter(edition_id=EDITION, kind="commune").values_list("code", "id")
    }
    ids = [by_code[c.code] for c in communes]
    report["communes"] = len(ids)
    report["commune_weight_max_over_median"] = max(weights) / sorted(weights)[len(weights) // 2]
    indexes = drop_indexes(LOADED_TABLES, postgres)
    people = max(1_000, int(params["events"] * PEOPLE_PER_TEST))
    report |= load_rows(params["events"], Tests(rng, weights, people), source.id, ids, postgres)
    report["people"] = people
    report |= make_rollups(postgres)
    # The rollups' unique constraints recreated also prove their GROUP BY made one row per cell.
    report |= finish_tables(indexes, postgres, LOADED_TABLES, params["events"])
    report["indexes"] = [index.create for index in indexes]
    report |= check_rollups(params, rng)
    return report


def load_rows(total: int, tests: Tests, source: int, communes: list[int], postgres: bool) -> dict:
    """Every month's tests, generated then written (a transaction a month); progress and rate on stderr."""
    from django.db import transaction

    from dieuhanh.db import insert_rows
    from dieuhanh.warehouse.models import TestResult

    first = date(YEARS[0] - 1, 12, 31)
    zero = -int(datetime(first.year, first.month, first.day, tzinfo=UTC).timestamp())
    text = TimeText(first, 366 * len(YEARS) + 3, "+00" if postgres else "", zero=zero)
    log(f"  {total:,} test results over {len(months())} months by {'COPY' if postgres else 'executemany'} …")
    loaded, generating, positives = 0, 0.0, 0
    began = time.perf_counter()
    for (year, month), count in zip(months(), month_counts(total), strict=True):
        rows, seconds = timed(tests.month, year, month, count)
        generating += seconds
        positives += sum(row.result == 0 for row in rows)
        with transaction.atomic():
            for start in range(0, count, COPY_LINES):
                chunk = rows[start : start + COPY_LINES]
                insert_rows(TestResult, FIELDS, month_rows(chunk, loaded + 1 + start, source, communes, text))
        loaded += count
        elapsed = time.perf_counter() - began
        log(
            f"    {year}-{month:02d}: {loaded:,} rows, {loaded / elapsed:,.0f} rows/s, {elapsed:,.0f} s"
            f" (generating {generating:,.0f} s)"
        )
    rows_s = time.perf_counter() - began
    return {
        "rows_s": rows_s,
        "rows_per_s": total / rows_s,
        "generate_s": generating,
        "method": "COPY" if postgres else "executemany",
        "positive_share": positives / total,
    }


def make_rollups(postgres: bool) -> dict:
    from django.db import connection

    found: dict = {}
    with connection.cursor() as cursor:
        if postgres:  # a session setting, reset below: the aggregate and its sort in memory
            cursor.execute("SET work_mem = '512MB'")
        for table, sql in rollup_sql(postgres).items():
            log(f"  {table}: INSERT … SELECT … GROUP BY …")
            _, found[f"{table}_s"] = timed(cursor.execute, sql)
            found[f"{table}_rows"] = cursor.rowcount
        if postgres:
            cursor.execute("RESET work_mem")
    found["rollups_s"] = found[f"{ROLLUP}_s"] + found[f"{ROLLUP_MONTH}_s"]
    return found


def check_rollups(params: dict, rng: random.Random) -> dict:
    """Totals against N, and ROLLUP_SAMPLE cells of each rollup (ids drawn with the seed) against a
    count of the events by the ORM with the local day's or month's bounds computed in Python."""
    from django.db.models import Sum

    from dieuhanh.vnformat import VN_TZ
    from dieuhanh.warehouse.models import Rollup, RollupMonth, TestResult

    log("  checking the rollups against the events …")
    checked = 0
    for model, column in ((Rollup, "day"), (RollupMonth, "month")):
        total = model.objects.filter(kind="test").aggregate(n=Sum("count"))["n"]
        if total != params["events"]:
            raise SystemExit(f"FAIL: {model.__name__} counts {total:,} events, not {params['events']:,}")
        top = model.objects.order_by("-id").values_list("id", flat=True).first()
        wanted = [rng.randint(1, top) for _ in range(ROLLUP_SAMPLE)]
        cells = model.objects.filter(id__in=wanted).values_list("commune_id", column, "dim1", "dim2", "count")
        for commune, first, result, method, count in cells:
            first = first if isinstance(first, date) else date.fromisoformat(str(first))
            end = (
                first + timedelta(days=1)
                if column == "day"
                else date(*divmod_month(first.year, first.month + 1), 1)
            )
            direct = TestResult.objects.filter(
                commune_id=commune,
                at__gte=datetime(first.year, first.month, first.day, tzinfo=VN_TZ),
                at__lt=datetime(end.year, end.month, end.day, tzinfo=VN_TZ),
                result=result,
                method=method,
            ).count()
            if direct != count:
                raise SystemExit(
                    f"FAIL: {model.__name__} {commune} {first} {result}/{method}: {count} ≠ {direct} events"
                )
            checked += 1
    return {"rollup_cells_checked": checked}


# ---------------------------------------------------------------- the answers and the raw scan


def raw_sql(postgres: bool, years: tuple[int, ...]) -> tuple[str, list]:
    """Positives per commune and local month over the given years, straight from the events."""
    start, end = local_epoch(years[0], 1), local_epoch(years[-1] + 1, 1)
    if postgres:
        month = f"date_trunc('month', at AT TIME ZONE '{LOCAL_TZ}')"
        bounds = [datetime.fromtimestamp(t, UTC) for t in (start, end)]
    else:
        month = "strftime('%%Y%%m', at, '+7 hours')"
        bounds = [datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S") for t in (start, end)]
    sql = (
        f"SELECT commune_id, {month} AS month, count(*) FROM {EVENTS}"
        " WHERE result = 'positive' AND at >= %s AND at < %s"
        f" GROUP BY commune_id, {month}"
    )
    return sql, bounds


def run_raw(sql: str, params: list) -> dict[tuple[int, str], int]:
    """(commune id, 'YYYYMM') → positives."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return {
        (commune, month if isinstance(month, str) else f"{month.year}{month.month:02d}"): n
        for commune, month, n in rows
    }


PARQUET_HOME = Path(tempfile.gettempdir()) / "dieuhanh-bench-analytics-parquet"


def parquet_export(params: dict, postgres: bool) -> tuple[Path, float]:
    """The events (commune, UTC time, result, method) as one Parquet file, as an analyst would export
    them: through CSV into DuckDB, which writes the Parquet; kept for the same load (by its arguments)."""
    import duckdb
    from django.db import connection

    key = hashlib.sha256(json.dumps([params, connection.vendor], sort_keys=True).encode()).hexdigest()[:16]
    path = PARQUET_HOME / f"events-{key}.parquet"
    if path.exists():
        return path, 0.0
    PARQUET_HOME.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    csv_path = PARQUET_HOME / f"events-{key}.csv"
    columns = "commune_id, at, result, method"
    with open(csv_path, "wb") as out, connection.cursor() as cursor:
        if postgres:
            raw = cursor.cursor  # psycopg's own cursor: COPY … TO STDOUT
            with raw.copy(
                "COPY (SELECT commune_id, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'),"
                f" result, method FROM {EVENTS}) TO STDOUT (FORMAT csv)"
            ) as copy:
                for chunk in copy:
                    out.write(chunk)
        else:
            cursor.execute(f"SELECT {columns} FROM {EVENTS}")
            while batch := cursor.fetchmany(COPY_LINES):
                out.write("".join(f"{c},{str(a)[:19]},{r},{m}\n" for c, a, r, m in batch).encode())
    duckdb.sql(
        f"COPY (SELECT * FROM read_csv('{csv_path}', header = false, columns = {{'commune_id': 'BIGINT',"
        " 'at': 'TIMESTAMP', 'result': 'VARCHAR', 'method': 'VARCHAR'})) "
        f"TO '{path}' (FORMAT parquet)"
    )
    csv_path.unlink()
    return path, time.perf_counter() - began


def duckdb_sql(path: Path) -> str:
    """Positives per commune and local month of the asked year, with the same month a year before and
    the change on it: the cells of `positives` and `positives_yoy` together, from the events."""
    start, end = (datetime.fromtimestamp(local_epoch(y, 1), UTC) for y in (YEARS[0], YEARS[-1] + 1))
    return f"""
        WITH m AS (
            SELECT commune_id, strftime("at" + INTERVAL 7 HOUR, '%Y%m') AS pe, count(*) AS n
            FROM read_parquet('{path}')
            WHERE result = 'positive' AND "at" >= TIMESTAMP '{start:%Y-%m-%d %H:%M:%S}'
              AND "at" < TIMESTAMP '{end:%Y-%m-%d %H:%M:%S}'
            GROUP BY ALL
        )
        SELECT a.commune_id, a.pe, a.n, b.n, (a.n - b.n) / abs(b.n) * 100
        FROM m a LEFT JOIN m b
          ON b.commune_id = a.commune_id AND b.pe = CAST(CAST(a.pe AS INTEGER) - 100 AS VARCHAR)
        WHERE a.pe LIKE '{ASKED_YEAR}%'
    """


def run_duckdb(db, sql: str) -> list[tuple]:
    return db.execute(sql).fetchall()  # into Python, as analytics' rows are


def touch_events() -> None:
    """A write that changes no count but is a write (a rollup row set to itself): the answer cache must
    bring the next answer up to date (patched on PostgreSQL, computed anew on SQLite), as after each
    ingest batch of a live morning."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {ROLLUP_MONTH} SET count = count WHERE id = (SELECT min(id) FROM {ROLLUP_MONTH})"
        )


def forget_packs() -> None:
    """No month shared by any process (indicators.MonthPack emptied): the next answer sums every month
    from the rollups, as the first question after the rollups were loaded does."""
    from django.db import connection

    from dieuhanh.indicators.models import MonthPack

    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {MonthPack._meta.db_table}")


def touch_everywhere() -> None:
    """A write that changes no count in a rollup row of every area (province, indicators.versions), as a
    batch over the whole country writes: too many areas for a patch by area; the rows' months are few
    (the first rows loaded), so the kept answer is patched by month (PostgreSQL)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {ROLLUP_MONTH} SET count = count WHERE id IN (SELECT min(r.id) FROM {ROLLUP_MONTH} r"
            " JOIN units_unit u ON u.id = r.commune_id GROUP BY split_part(u.path, '/', 3))"
            if connection.vendor == "postgresql"
            else f"UPDATE {ROLLUP_MONTH} SET count = count WHERE id = (SELECT min(id) FROM {ROLLUP_MONTH})"
        )


def by_cell(rows: list[dict], pk_of: dict[str, int]) -> dict[tuple[int, str], float]:
    """An answer's rows (service or HTTP) as (commune id, period) → value, the empty ones left out."""
    return {(pk_of[r["ou"]], r["pe"]): r["value"] for r in rows if r["value"] is not None}


def yoy_expected(counts: dict[tuple[int, str], int]) -> dict[tuple[int, str], float]:
    """yoy(#{ev.test.positive}) from raw counts, as formula._yoy computes it (not rounded: compared
    within half a unit of the indicator's last decimal, whatever rounding rule analytics applies)."""
    out = {}
    for (commune, pe), now in counts.items():
        if not pe.startswith(str(ASKED_YEAR)):
            continue
        before = counts.get((commune, f"{ASKED_YEAR - 1}{pe[4:]}"))
        if before:
            out[(commune, pe)] = (float(now) - float(before)) / abs(float(before)) * 100
    return out


def compare(name: str, found: dict, expected: dict, tolerance: float = 0.0) -> int:
    """The number of cells compared; stops the run when any differs."""
    differ = [
        key
        for key in set(found) | set(expected)
        if key not in found or key not in expected or abs(found[key] - expected[key]) > tolerance
    ]
    if differ:
        sample = [(key, found.get(key), expected.get(key)) for key in sorted(differ)[:10]]
        raise SystemExit(f"FAIL: {name}: {len(differ):,} cells differ from the raw counts, e.g. {sample}")
    log(f"  {name}: all {len(expected):,} cells agree with the raw counts")
    return len(expected)


class Setup(NamedTuple):
    dims: dict[str, object]  # code → analytics.Dimension
    periods: list
    units: list
    pk_of: dict[str, int]
    token: str
    area: object  # the leader's units.scoping.Area, passed to rows() as the route passes it
    duckdb: object = None  # a DuckDB connection (in memory) over the Parquet export
    duckdb_sql: str = ""


def prepare_questions() -> tuple[Setup, dict]:
    """The indicators (save_indicator), a national leader with a token, the periods and the units."""
    from dieuhanh.accounts.models import User
    from dieuhanh.accounts.services import create_token, create_user, user_for_token
    from dieuhanh.indicators import analytics, services
    from dieuhanh.units.models import Unit

    nation = Unit.objects.ref(NATION_REF)
    for code, (name, formula, unit, decimals) in INDICATORS.items():
        services.save_indicator(
            actor=None, code=code, name=name, formula=formula, unit=unit, decimals=decimals
        )
    leader = User.objects.filter(username="bench-analytics-leader").first() or create_user(
        actor=None,
        username="bench-analytics-leader",
        password=None,
        grants=[(nation, "leader")],
        validate=False,
    )
    _, token = create_token(actor=None, user=leader, name="bench")
    user_for_token(token)  # the once-a-minute last-used write, before the clock
    area = leader.area()
    if not area.everything:
        raise SystemExit("FAIL: the national leader does not see everything")
    units, units_s = timed(services.units_named, ["LEVEL-2"], edition=EDITION, area=area, roots=[nation])
    units = analytics.units_asked(units)
    if len(units) != Unit.objects.filter(edition_id=EDITION, level=2).count():
        raise SystemExit(f"FAIL: LEVEL-2 gave {len(units):,} units")
    periods = analytics.periods_of(asked_periods())
    dims = {code: analytics.dimension(code) for code in INDICATORS}
    setup = Setup(dims, periods, units, {u.ref: u.pk for u in units}, token, area)
    return setup, {"units": len(units), "units_named_s": units_s, "periods": len(periods)}


def service(setup: Setup, code: str) -> list[dict]:
    from dieuhanh.indicators import analytics

    return analytics.rows([setup.dims[code]], setup.periods, setup.units, area=setup.area)


def http_query(code: str) -> str:
    return "/api/v1/analytics?" + urlencode(
        {"dx": code, "pe": asked_periods(), "ou": "LEVEL-2", "edition": EDITION}
    )


def http(client, setup: Setup, code: str):
    response = client.get(http_query(code), headers={"Authorization": f"Bearer {setup.token}"})
    if response.status_code != 200:
        raise SystemExit(
            f"FAIL: GET {http_query(code)}: HTTP {response.status_code}: {response.content[:300]!r}"
        )
    return response


NEW_WORKERS = 5  # web workers started one after another, each timed on its first two requests
WORKER_START_TIMEOUT_S = 120


def new_workers(setup: Setup, count: int = NEW_WORKERS) -> dict:
    """A web worker's first requests: `dieuhanh serve --workers 1` started on the same database, timed
    from the moment it takes connections (uvicorn takes them once the worker's start is complete, as a
    balancer or a shared socket would hand it its first caller) over its first and second GET of
    positives_yoy over HTTP, the month packs other processes left kept as they are."""
    from django.db import connection

    first, second = [], []
    command = [str(Path(sys.executable).with_name("dieuhanh")), "serve", "--workers", "1"]
    env = os.environ | {"DIEUHANH_LIVE": "local"}
    connection.close()
    for _ in range(count):
        port = free_port()
        worker = subprocess.Popen(  # noqa: S603 - the project's own command, fixed arguments
            [*command, "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        try:
            deadline = time.monotonic() + WORKER_START_TIMEOUT_S
            while True:
                if worker.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"FAIL: dieuhanh serve did not start: {worker.stderr.read()[-2000:]!r}")
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    time.sleep(0.05)  # waiting for the worker to take connections, not timing anything
            for times in (first, second):
                request = urllib.request.Request(
                    f"http://127.0.0.1:{port}{http_query('positives_yoy')}",
                    headers={"Authorization": f"Bearer {setup.token}"},
                )
                started = time.perf_counter()
                with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 - loopback
                    response.read()
                times.append(time.perf_counter() - started)
        finally:
            stop_server(worker)
    return {"first": spread(first), "second": spread(second)}


def check_answers(setup: Setup, client, postgres: bool) -> dict:
    """Service, HTTP and raw agree on every cell, for both indicators (before any clock)."""
    log("  comparing the answers with the raw counts …")
    raw_2021 = run_raw(*raw_sql(postgres, (ASKED_YEAR,)))
    both_years = run_raw(*raw_sql(postgres, YEARS))
    if {k: v for k, v in both_years.items() if k[1].startswith(str(ASKED_YEAR))} != raw_2021:
        raise SystemExit("FAIL: the raw scan over 2020–2021 disagrees with the one over 2021")
    yoy = yoy_expected(both_years)
    half_unit = 0.5 * 10 ** -INDICATORS["positives_yoy"][3] + 1e-9
    found: dict = {}
    for code, expected, tolerance in (("positives", raw_2021, 0.0), ("positives_yoy", yoy, half_unit)):
        rows = service(setup, code)
        found[f"{code}_cells"] = compare(f"service {code}", by_cell(rows, setup.pk_of), expected, tolerance)
        found[f"{code}_rows"] = len(rows)
        response = http(client, setup, code)
        body = json.loads(response.content)
        compare(f"HTTP {code}", by_cell(body["rows"], setup.pk_of), expected, tolerance)
        found[f"{code}_response_bytes"] = len(response.content)
    rows = run_duckdb(setup.duckdb, setup.duckdb_sql)
    compare("DuckDB positives", {(c, pe): float(n) for c, pe, n, _, _ in rows}, raw_2021)
    compare("DuckDB positives_yoy", {(c, pe): y for c, pe, _, _, y in rows if y is not None}, yoy, half_unit)
    found["patched"] = check_patched(setup, both_years, half_unit)
    cells = len(setup.units) * len(setup.periods)
    found["cells_asked"] = cells
    found["positive_cells_empty"] = cells - len(raw_2021)
    return found


def check_patched(setup: Setup, both_years: dict, tolerance: float) -> dict:
    """An answer brought up to date after a write (patched on PostgreSQL, computed anew on SQLite) must
    equal the raw counts too: one positive added to a rollup cell of the asked year, then of the year
    before (cùng kỳ), then to a cell of each province in one month of the asked year (a batch over the
    country: patched by month), each time both answers compared with the raw counts plus it; then
    taken away."""
    from django.db import connection

    from dieuhanh.indicators.analytics import ANSWERS

    compared, patches, by_month = 0, ANSWERS.patches, ANSWERS.month_patches
    positive = f"FROM {ROLLUP_MONTH} r WHERE kind = 'test' AND dim1 = 'positive'"
    one = f"SELECT id, commune_id, month {positive} AND month >= %s AND month < %s ORDER BY id LIMIT 1"
    every = f"SELECT min(r.id) {positive} AND month = %s GROUP BY" + (
        " (SELECT split_part(u.path, '/', 3) FROM units_unit u WHERE u.id = r.commune_id)"
        if connection.vendor == "postgresql"
        else " r.commune_id % 40"
    )
    for what_rows in (ASKED_YEAR, ASKED_YEAR - 1, "every province"):
        with connection.cursor() as cursor:
            if what_rows == "every province":
                cursor.execute(every, [date(ASKED_YEAR, 6, 1)])
                ids = [row[0] for row in cursor.fetchall()]
            else:
                cursor.execute(one, [date(what_rows, 1, 1), date(what_rows + 1, 1, 1)])
                ids = [cursor.fetchone()[0]]
            cursor.execute(
                f"SELECT commune_id, month FROM {ROLLUP_MONTH} WHERE id IN ({', '.join(['%s'] * len(ids))})",
                ids,
            )
            cells = [
                (commune, f"{m if isinstance(m, date) else date.fromisoformat(str(m)):%Y%m}")
                for commune, m in cursor.fetchall()
            ]
        for step in (1, -1):
            with connection.cursor() as cursor:
                cursor.execute(
                    f"UPDATE {ROLLUP_MONTH} SET count = count + %s WHERE id = ANY(%s)", [step, ids]
                )
            counts = dict(both_years)
            if step == 1:
                for cell in cells:
                    counts[cell] = counts.get(cell, 0) + 1
            asked = {k: v for k, v in counts.items() if k[1].startswith(str(ASKED_YEAR))}
            what = f"{'+' if step == 1 else '-'}1 in {len(cells)} cells of {sorted({c[1] for c in cells})}"
            found = by_cell(service(setup, "positives"), setup.pk_of)
            compared += compare(f"positives after {what}", found, asked)
            found = by_cell(service(setup, "positives_yoy"), setup.pk_of)
            compared += compare(f"positives_yoy after {what}", found, yoy_expected(counts), tolerance)
    return {
        "cells": compared,
        "patches": ANSWERS.patches - patches,
        "month_patches": ANSWERS.month_patches - by_month,
    }


def measure(setup: Setup, client, postgres: bool, runs: int) -> dict:
    """--runs rounds of: service and HTTP for each indicator, the raw scan, and analytics' read of the
    monthly rollups alone (the database's part of an answer); one warm-up of each first."""
    from dieuhanh.indicators.analytics import ANSWERS

    sql, params = raw_sql(postgres, (ASKED_YEAR,))
    # A cold step follows a write (touch_events, untimed), so it computes its answer anew; a warm one
    # asks again what was just asked, as the next of a room's screens does between two writes.
    steps: dict[str, Callable] = {
        "service_positives": lambda: service(setup, "positives"),
        "service_positives_warm": lambda: service(setup, "positives"),
        "http_positives": lambda: http(client, setup, "positives"),
        "http_positives_warm": lambda: http(client, setup, "positives"),
        "service_yoy": lambda: service(setup, "positives_yoy"),
        "service_yoy_warm": lambda: service(setup, "positives_yoy"),
        "service_yoy_everywhere": lambda: service(setup, "positives_yoy"),
        "service_yoy_first": lambda: service(setup, "positives_yoy"),
        "service_yoy_anywhere": lambda: service(setup, "positives_yoy"),
        "service_yoy_new": lambda: service(setup, "positives_yoy"),
        "http_yoy": lambda: http(client, setup, "positives_yoy"),
        "duckdb": lambda: run_duckdb(setup.duckdb, setup.duckdb_sql),
        "raw": lambda: run_raw(sql, params),
        "rollup_read": lambda: read_rollups(setup),
    }
    cold = {"service_positives", "http_positives", "service_yoy", "http_yoy"}
    # After a write in every area: patched by month. The other kept answers are then brought up to date
    # (untimed), so that each cold step follows exactly one write, as its name says. A first question:
    # nothing kept (the cache emptied, untimed), so computed anew; the other answers are then asked
    # again (untimed), or the next of them would be computed anew too. First in a process: nothing kept
    # in it, the months' packs (indicators.MonthPack) another process would have left there; first
    # anywhere: the packs deleted too, every month summed from the rollups. A new question: no answer
    # kept, the monthly rollup rows other questions read kept (analytics.KeptMonths).
    everywhere = {"service_yoy_everywhere"}
    first = {"service_yoy_first", "service_yoy_anywhere", "service_yoy_new"}

    def forget(name: str) -> None:
        ANSWERS.clear(months=name != "service_yoy_new")
        if name == "service_yoy_anywhere":
            forget_packs()

    def after_everywhere() -> None:
        service(setup, "positives")
        http(client, setup, "positives")
        http(client, setup, "positives_yoy")

    for name, step in steps.items():
        if name in cold:
            touch_events()
        if name in everywhere:
            touch_everywhere()
        if name in first:
            forget(name)
        step()
        if name in everywhere or name in first:
            after_everywhere()
    times: dict[str, list[float]] = {name: [] for name in steps}
    pauses: dict[str, list[float]] = {name: [] for name in steps}
    gen2: dict[str, int] = dict.fromkeys(steps, 0)
    loadavg_before = os.getloadavg()
    # Each round starts one block further on, so that every block follows every other as often (the
    # block after the raw scan and DuckDB ran slower for it alone: the positives' p95 of issue 18).
    blocks = [[n for n in steps if n == first or n == f"{first}_warm"] for first in steps]
    blocks = [b for b in blocks if not b[0].endswith("_warm")]
    for number in range(1, runs + 1):
        turn = (number - 1) % len(blocks)
        for name in [n for block in blocks[turn:] + blocks[:turn] for n in block]:
            step = steps[name]
            if name in cold:
                touch_events()
            if name in everywhere:
                touch_everywhere()
            if name in first:
                forget(name)
            with GcWatch() as watch:
                times[name].append(timed(step)[1])
            pauses[name].append(watch.seconds)
            gen2[name] += watch.count[2]
            if name in everywhere or name in first:
                after_everywhere()
        log(
            f"  run {number}/{runs}: "
            + ", ".join(f"{name} {times[name][-1] * 1e3:,.0f} ms" for name in steps)
        )
    found: dict = {name: spread(seconds) for name, seconds in times.items()}
    found["gc"] = {
        name: {"pause_p50_s": percentile(p, 0.5), "pause_max_s": max(p), "gen2": gen2[name]}
        for name, p in pauses.items()
    }
    for which in ("p50", "p95"):
        for name in ("service_positives", "http_positives"):
            found[f"ratio_raw_{name}_{which}"] = found["raw"][f"{which}_s"] / found[name][f"{which}_s"]
        for name in (
            "service_yoy",
            "service_yoy_warm",
            "service_yoy_everywhere",
            "service_yoy_first",
            "service_yoy_anywhere",
            "service_yoy_new",
            "http_yoy",
        ):
            found[f"ratio_duckdb_{name}_{which}"] = found["duckdb"][f"{which}_s"] / found[name][f"{which}_s"]
        found[f"ratio_formula_{which}"] = (
            found["service_yoy"][f"{which}_s"] / found["service_positives"][f"{which}_s"]
        )
    found["loadavg_before"], found["loadavg_after"] = loadavg_before, os.getloadavg()
    return found


# ---------------------------------------------------------------- diagnosis: queries, plans, profile


def memory(setup: Setup) -> dict:
    """Python's peak allocation during one cold answer of each indicator, and the process's peak RSS."""
    import resource
    import tracemalloc

    from dieuhanh.indicators.analytics import ANSWERS

    found = {}
    for code, touch, name in (
        *((code, touch_events, code) for code in INDICATORS),
        ("positives_yoy", ANSWERS.clear, "positives_yoy_anew"),  # computed anew, not patched
    ):
        touch()
        tracemalloc.start()
        service(setup, code)
        found[f"{name}_peak_bytes"] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    found["max_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return found


def queries_of(setup: Setup) -> dict:
    """The statements one service answer makes, with their time in the driver's execute (on SQLite,
    which steps through a result as it is fetched, most of a read's time falls outside it)."""
    from django.db import connection

    queries: list[dict] = []

    def clock(execute, sql, params, many, context):
        began = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            queries.append({"sql": sql, "s": time.perf_counter() - began})

    touch_events()
    with connection.execute_wrapper(clock):
        _, seconds = timed(service, setup, "positives")
    return {
        "answer_s": seconds,
        "count": len(queries),
        "database_s": sum(q["s"] for q in queries),
        "queries": queries,
    }


def rollup_read(setup: Setup):
    """The read analytics makes for #{ev.test.positive} over the asked months and the same months a
    year and two years before (yoy's own cùng kỳ; analytics.Reader._events): the rollup rows counted
    (any month) as a queryset, and the spread of their buckets onto the periods."""
    from dieuhanh.indicators.analytics import _buckets, _Spread
    from dieuhanh.warehouse.models import RollupMonth

    asked = set(setup.periods) | {p.last_year() for p in setup.periods}
    asked |= {p.last_year() for p in asked}
    buckets = _buckets(list(asked), monthly=True)
    counted = RollupMonth.objects.filter(kind="test", dim1="positive")
    return counted, _Spread(buckets, {p.id: j for j, p in enumerate(sorted(asked))})


def read_rollups(setup: Setup):
    """analytics' read of the monthly rollups alone, into its arrays (the database's part of an answer:
    on PostgreSQL every month as it streams in, on SQLite the rows grouped)."""
    from django.db import connection

    from dieuhanh.indicators.analytics import _joined, _month_rows, _read_rows

    counted, spread = rollup_read(setup)
    if connection.vendor == "postgresql":
        return _joined(list(_month_rows(counted, spread, list(range(len(spread.firsts))))))
    return _read_rows(counted.filter(month__in=spread.firsts), "month", spread)


def plan(sql: str, params: list | None = None) -> str:
    from django.db import connection

    postgres = connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        cursor.execute(("EXPLAIN (ANALYZE, BUFFERS) " if postgres else "EXPLAIN QUERY PLAN ") + sql, params)
        return "\n".join(" ".join(str(c) for c in row) for row in cursor.fetchall())


def plans(setup: Setup, postgres: bool) -> dict:
    """The plans of the analytics read of the monthly rollups and of the raw scan."""
    from dieuhanh.indicators.analytics import _SUM, months_sql

    counted, spread = rollup_read(setup)
    if postgres:
        sql, params = months_sql(counted, spread.firsts)
    else:
        grouped = counted.filter(month__in=spread.firsts).values_list("commune_id", "month").annotate(n=_SUM)
        grouped = grouped.order_by()
        sql, params = grouped.query.sql_with_params()
    raw, raw_params = raw_sql(postgres, (ASKED_YEAR,))
    return {"analytics_read": plan(sql, list(params)), "raw_scan": plan(raw, raw_params)}


def profile(setup: Setup, client) -> dict:
    """cProfile over one service answer and one HTTP request (positives) after a write, and one
    service answer (positives_yoy) asked first (the answer cache emptied: computed anew)."""
    from dieuhanh.indicators.analytics import ANSWERS

    found = {}
    for name, fn in (
        ("service", lambda: service(setup, "positives")),
        ("http", lambda: http(client, setup, "positives")),
        ("service_everywhere", lambda: service(setup, "positives_yoy")),
    ):
        # A cold answer: the cache's hit is not what is profiled.
        ANSWERS.clear() if name == "service_everywhere" else touch_events()
        profiler = cProfile.Profile()
        _, found[f"{name}_s"] = timed(profiler.runcall, fn)
        for order in ("cumulative", "tottime"):
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).strip_dirs().sort_stats(order).print_stats(PROFILE_TOP)
            text = out.getvalue()
            found[f"{name}_{order}"] = text[text.index("ncalls") :] if "ncalls" in text else text
    return found


# ---------------------------------------------------------------- child entry


def run_child(args: argparse.Namespace) -> None:
    postgres = child_django(args)
    from django.test import Client

    params = load_params(args)
    report = loaded(args, lambda: load(params), params, META_TABLE, EVENTS, params["events"])
    result: dict = {"vendor": "postgresql" if postgres else "sqlite", "params": params, "load": report}
    result |= table_sizes(LOADED_TABLES)
    if postgres:
        result["rollupmonth_rows"] = rollupmonth_rows()
        result["pg_settings"] = pg_settings(
            "shared_buffers", "work_mem", "effective_cache_size", "max_parallel_workers_per_gather", "jit"
        )
    setup, result["questions"] = prepare_questions()
    import duckdb

    parquet, result["parquet_export_s"] = parquet_export(params, postgres)
    result["parquet_bytes"] = parquet.stat().st_size
    setup = setup._replace(duckdb=duckdb.connect(), duckdb_sql=duckdb_sql(parquet))
    client = Client()
    result["answers"] = check_answers(setup, client, postgres)
    log(f"  timing: {args.runs} runs …")
    result |= measure(setup, client, postgres, args.runs)
    result["memory"] = memory(setup)
    result["queries"] = queries_of(setup)
    result["plans"] = plans(setup, postgres)
    log("  new web workers …")
    result["new_workers"] = new_workers(setup)
    if args.profile:
        log("  profile …")
        result["profile"] = profile(setup, client)
    child_output(result)


def rollupmonth_rows() -> int:
    """The monthly rollup's test rows (for the JSON, beside the tables' sizes)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {ROLLUP_MONTH} WHERE kind = 'test'")
        return cursor.fetchone()[0]


# ---------------------------------------------------------------- parent: the table, the goals, JSON


def ms(r: dict, name: str, which: tuple[str, ...] = ("p50", "p95", "max")) -> str:
    return " / ".join(f"{r[name][f'{w}_s'] * 1e3:,.1f}" for w in which)


def ratio(r: dict, name: str) -> str:
    return " / ".join(f"{r[f'ratio_raw_{name}_{w}']:,.1f}×" for w in ("p50", "p95"))


def duckdb_ratio(r: dict, name: str) -> str:
    return " / ".join(f"{r[f'ratio_duckdb_{name}_{w}']:,.1f}×" for w in ("p50", "p95"))


def load_cell(r: dict) -> str:
    load = r["load"]
    parts = (load["rows_s"], load["rollups_s"], load["indexes_total_s"], load["analyze_s"])
    text = f"{sum(parts):,.0f} s ({' + '.join(f'{p:,.0f}' for p in parts)})"
    return text + (f", reused (loaded {load['loaded_at'][:16]})" if load.get("reused") else "")


def gc_cell(r: dict, name: str) -> str:
    g = r["gc"][name]
    return (
        f"{g['pause_p50_s'] * 1e3:,.1f} / {g['pause_max_s'] * 1e3:,.1f} ({g['gen2']} in {r[name]['n']} runs)"
    )


def queries_cell(r: dict) -> str:
    q = r["queries"]
    return f"{q['count']} ({q['database_s'] * 1e3:,.1f} ms of {q['answer_s'] * 1e3:,.1f} ms)"


ROWS: list[tuple[str, Callable[[dict], str]]] = [
    (
        "test results / communes / months",
        lambda r: f"{r['params']['events']:,} / {r['load']['communes']:,} / {len(months())}",
    ),
    ("  positive", lambda r: f"{r['load']['positive_share']:.1%}"),
    ("load, s (rows + rollups + indexes + analyze)", load_cell),
    ("  rows/s (COPY / executemany, no pipeline)", lambda r: f"{r['load']['rows_per_s']:,.0f}"),
    (
        "rollup rows: daily / monthly",
        lambda r: f"{r['load'][f'{ROLLUP}_rows']:,} / {r['load'][f'{ROLLUP_MONTH}_rows']:,}",
    ),
    ("database size, GB", lambda r: f"{r['database_bytes'] / 1e9:,.2f}"),
    (
        "question: units × periods (cells with a value)",
        lambda r: (
            f"{r['questions']['units']:,} × {r['questions']['periods']} ({r['answers']['positives_cells']:,})"
        ),
    ),
    ("  units_named(LEVEL-2), ms (once)", lambda r: f"{r['questions']['units_named_s'] * 1e3:,.1f}"),
    ("positives: analytics.rows() after a write p50 / p95 / max, ms", lambda r: ms(r, "service_positives")),
    (
        "positives: analytics.rows() asked again p50 / p95 / max, ms",
        lambda r: ms(r, "service_positives_warm"),
    ),
    ("positives: GET /api/v1/analytics after a write p50 / p95 / max, ms", lambda r: ms(r, "http_positives")),
    (
        "positives: GET /api/v1/analytics asked again p50 / p95 / max, ms",
        lambda r: ms(r, "http_positives_warm"),
    ),
    ("  response size, MB", lambda r: f"{r['answers']['positives_response_bytes'] / 1e6:,.1f}"),
    ("raw GROUP BY over the events p50 / p95 / max, ms", lambda r: ms(r, "raw")),
    ("ratio raw / analytics.rows() p50 / p95", lambda r: ratio(r, "service_positives")),
    ("ratio raw / HTTP p50 / p95", lambda r: ratio(r, "http_positives")),
    ("positives_yoy: analytics.rows() after a write p50 / p95 / max, ms", lambda r: ms(r, "service_yoy")),
    ("positives_yoy: analytics.rows() asked again p50 / p95 / max, ms", lambda r: ms(r, "service_yoy_warm")),
    (
        "positives_yoy: analytics.rows() after a write in every province p50 / p95 / max, ms",
        lambda r: ms(r, "service_yoy_everywhere"),
    ),
    (
        "positives_yoy: analytics.rows() asked first in a process (months shared) p50 / p95 / max, ms",
        lambda r: ms(r, "service_yoy_first"),
    ),
    (
        "positives_yoy: analytics.rows() asked first anywhere (summed anew) p50 / p95 / max, ms",
        lambda r: ms(r, "service_yoy_anywhere"),
    ),
    (
        "positives_yoy: analytics.rows() as a new question over months read before p50 / p95 / max, ms",
        lambda r: ms(r, "service_yoy_new"),
    ),
    ("positives_yoy: GET /api/v1/analytics after a write p50 / p95 / max, ms", lambda r: ms(r, "http_yoy")),
    (
        "DuckDB over the Parquet export, the same cells with cùng kỳ, p50 / p95 / max, ms",
        lambda r: ms(r, "duckdb"),
    ),
    (
        "  Parquet: size MB (export s, 0 = reused)",
        lambda r: f"{r['parquet_bytes'] / 1e6:,.0f} ({r['parquet_export_s']:,.0f})",
    ),
    ("ratio DuckDB / positives_yoy after a write p50 / p95", lambda r: duckdb_ratio(r, "service_yoy")),
    ("ratio DuckDB / positives_yoy asked again p50 / p95", lambda r: duckdb_ratio(r, "service_yoy_warm")),
    (
        "ratio DuckDB / positives_yoy after a write in every province p50 / p95",
        lambda r: duckdb_ratio(r, "service_yoy_everywhere"),
    ),
    (
        "ratio DuckDB / positives_yoy asked first in a process (months shared) p50 / p95",
        lambda r: duckdb_ratio(r, "service_yoy_first"),
    ),
    (
        "ratio DuckDB / positives_yoy asked first anywhere (summed anew) p50 / p95",
        lambda r: duckdb_ratio(r, "service_yoy_anywhere"),
    ),
    (
        "ratio DuckDB / positives_yoy as a new question over months read before p50 / p95",
        lambda r: duckdb_ratio(r, "service_yoy_new"),
    ),
    ("ratio DuckDB / HTTP positives_yoy after a write p50 / p95", lambda r: duckdb_ratio(r, "http_yoy")),
    (
        "ratio positives_yoy / positives after a write p50 / p95",
        lambda r: " / ".join(f"{r[f'ratio_formula_{w}']:,.2f}×" for w in ("p50", "p95")),
    ),
    (
        "peak Python memory of one answer after a write, MB: positives / positives_yoy / yoy computed anew",
        lambda r: " / ".join(
            f"{r['memory'][f'{c}_peak_bytes'] / 1e6:,.1f}" for c in (*INDICATORS, "positives_yoy_anew")
        ),
    ),
    ("  the process's peak RSS, MB", lambda r: f"{r['memory']['max_rss_bytes'] / 1e6:,.0f}"),
    ("  GC pause per analytics.rows() p50 / max, ms (gen-2 runs)", lambda r: gc_cell(r, "service_positives")),
    ("  GC pause per request p50 / max, ms (gen-2 runs)", lambda r: gc_cell(r, "http_positives")),
    ("queries per answer (their time in execute)", queries_cell),
    (
        f"a new web worker's 1st / 2nd request (positives_yoy, HTTP, {NEW_WORKERS} workers) p50 – max, ms",
        lambda r: " / ".join(
            f"{r['new_workers'][n]['p50_s'] * 1e3:,.0f} – {r['new_workers'][n]['max_s'] * 1e3:,.0f}"
            for n in ("first", "second")
        ),
    ),
    (
        "  the rollup read alone (into arrays) p50 / p95, ms",
        lambda r: ms(r, "rollup_read", ("p50", "p95")),
    ),
    (
        "answers agree with the raw counts (cells)",
        lambda r: f"{r['answers']['positives_cells']:,} + yoy {r['answers']['positives_yoy_cells']:,}",
    ),
    (
        "  and after 6 writes of ±1 (cells; answers patched, of them by month)",
        lambda r: (
            f"{r['answers']['patched']['cells']:,} ({r['answers']['patched']['patches']},"
            f" {r['answers']['patched'].get('month_patches', 0)})"
        ),
    ),
    (
        "load average 1/5/15 min, before / after the runs",
        lambda r: " / ".join(
            ", ".join(f"{x:.1f}" for x in r[k]) for k in ("loadavg_before", "loadavg_after")
        ),
    ),
    ("wall time of the run, s", lambda r: f"{r['wall_s']:,.0f}"),
]


def table(results: dict[str, dict]) -> str:
    names = list(results)
    grid = [["analytics benchmark", *names]] + [
        [label, *(cell(results[n]) for n in names)] for label, cell in ROWS
    ]
    return render_table(grid)


def goals(results: dict[str, dict]) -> dict[str, dict[str, bool]]:
    met = {}
    limit = f"{GOAL_P95_S * 1e3:.0f} ms"
    for name, r in results.items():
        met[name] = {
            f"positives_yoy p95 < {limit} after a write": r["service_yoy"]["p95_s"] < GOAL_P95_S,
            f"positives_yoy p95 < {limit} asked again": r["service_yoy_warm"]["p95_s"] < GOAL_P95_S,
            f"positives_yoy p95 < {limit} asked first in a process": (
                r["service_yoy_first"]["p95_s"] < GOAL_P95_S
            ),
            f"positives_yoy p95 < {limit} asked first anywhere": (
                r["service_yoy_anywhere"]["p95_s"] < GOAL_P95_S
            ),
            f"≥ {GOAL_DUCKDB:.0f}× DuckDB's speed (p95) after a write": (
                r["ratio_duckdb_service_yoy_p95"] >= GOAL_DUCKDB
            ),
            f"≥ {GOAL_DUCKDB:.0f}× DuckDB's speed (p95) asked again": (
                r["ratio_duckdb_service_yoy_warm_p95"] >= GOAL_DUCKDB
            ),
            f"the formula path ≤ {GOAL_FORMULA}× the plain indicator (p95, after a write)": (
                r["ratio_formula_p95"] <= GOAL_FORMULA
            ),
        }
    return met


def details_text(name: str, r: dict) -> str:
    lines = [f"\n{name}: the statements of one analytics.rows() answer (ms):"]
    lines += [f"  {q['s'] * 1e3:9.1f}  {q['sql'][:300]}" for q in r["queries"]["queries"]]
    if "profile" in r:
        p = r["profile"]
        for what in ("service", "http", "service_everywhere"):
            lines.append(f"\n{name}: cProfile, one {what} answer, {p[f'{what}_s']:.2f} s under the profiler:")
            lines.append(p[f"{what}_cumulative"].rstrip())
        lines.append(
            f"\n{name}: plan of the analytics read of the monthly rollups:\n{r['plans']['analytics_read']}"
        )
        lines.append(f"\n{name}: plan of the raw scan:\n{r['plans']['raw_scan']}")
    return "\n".join(lines)


def source_state() -> dict:
    """The commit measured, and the files of src/ changed since (others may be editing the code)."""

    def git(*command: str) -> str:
        argv = [shutil.which("git") or "git", *command]
        done = subprocess.run(  # noqa: S603 - read-only git commands with fixed arguments
            argv, cwd=ROOT, capture_output=True, text=True, check=False
        )
        return done.stdout

    changed = [line[3:] for line in git("status", "--porcelain", "--", "src").splitlines()]
    return {"commit": git("rev-parse", "HEAD").strip(), "src_changed": changed}


def run_parent(args: argparse.Namespace) -> None:
    source = source_state()
    # Each size keeps its own scratch database (the default's is the one bench/room.py reads), so that
    # the growth from 1M to 10M events is measured with --reuse without reloading the others.
    name = args.name or ("analytics" if args.events == DEFAULT_EVENTS else f"analytics_{args.events}")
    runs = run_databases(args, name, params=load_params(args), meta_table=META_TABLE)
    results = runs.results
    met = goals(results)
    print(table(results))
    print(
        f"\nsource: commit {source['commit'][:10]}"
        + (
            f", with uncommitted changes to {', '.join(source['src_changed'])}"
            if source["src_changed"]
            else ""
        )
    )
    print("\nload: the test results bypass the ingest pipeline (COPY / executemany straight into the table);")
    print("the rollups are made from them by INSERT … SELECT … GROUP BY, as the ingest would have kept them.")
    print(goals_text(met))
    for name, r in results.items():
        print(details_text(name, r))
    write_run("analytics", args, runs, source=source, goals=met)


def main() -> None:
    parser = options(__doc__, reuse="keep the loaded database; use it when it matches")
    parser.add_argument("--events", type=int, default=DEFAULT_EVENTS, help="test results in the warehouse")
    parser.add_argument("--runs", type=int, default=30, help="timed runs of each answer and the raw scan")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--profile", action="store_true", help="cProfile one answer and one request")
    parser.add_argument(
        "--name",
        help="the scratch database is dieuhanh_bench_NAME (default: analytics for 10M events, analytics_N"
        " for N): a helper's own, e.g. h05_3000000, so that runs of others are not dropped or reused",
    )
    args = parser.parse_args()
    if args.events < 10_000 or args.runs < 1:
        parser.error("--events ≥ 10,000 and --runs ≥ 1")
    if args.child:
        run_child(args)
    else:
        run_parent(args)


if __name__ == "__main__":
    main()
