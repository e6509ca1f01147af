"""Benchmark: contact tracing (F1, F2) over tens of millions of check-ins, beside a SQL self-join
(DESIGN.md §6).

    .venv/bin/python bench/tracing.py [--db pg|sqlite|both] [--checkins N] [--cases K] [--days D]
                                      [--reuse] [--baseline-timeout S] [--seed S]

Each database runs in a child process of this script (`--child pg|sqlite`) with its own scratch
database (PostgreSQL: `dieuhanh_bench_tracing`; SQLite: a file in a fixed folder under the temporary
directory) and DIEUHANH_* environment; the child prints its figures as one JSON line and the parent
prints the table and writes bench/results/tracing.json.

The data: the synth world (`synth.build_world`: people in real communes with two to four favourite
venues near home), sized for N check-ins over D days (default 28) at about 3 check-ins per person and
day and 150 per venue and day; each check-in is a person drawn by activity, at their first favourite
half the time, another favourite most of the rest and any venue 5% of the time, at an hour drawn
from the venue kind's rhythm (`synth.HOURLY_RHYTHM`), with a check-out after 0.6 to 1.4 times the
venue's typical stay, or (20%) none. Person keys are `persons.person_key` of the synth person IDs
under a pseudonym key fixed by this script, so that reruns and both databases see the same keys.

The check-ins BYPASS the ingest pipeline: the pipeline stores about 30,000 rows/s (bench/ingest.py),
half an hour per 50 million, so they are written straight into warehouse_checkin, in the columns
and forms the pipeline writes (ids in time order, the venue's commune, UTC times, 32-byte keys), with
COPY (PostgreSQL) or executemany (SQLite). The table's own indexes and constraints are read from the
catalog, dropped for the load and recreated after it from the same definitions (checked against the
catalog again), then the table is vacuumed and analysed (PostgreSQL: VACUUM ANALYZE, so that
autovacuum does not start on the new rows while the clock runs; SQLite: ANALYZE). The migration,
the units, the venues (`import_venues`) and the source go through the application as usual. With
--reuse the loaded database is kept between runs and used again when it was made from the same
arguments and still holds N check-ins (a 50-million load takes a long time).

Cases: K people drawn at random among those with at least MIN_CASE_STAYS stays in the last CASE_DAYS
days, the first and last at least MIN_CASE_SPAN_DAYS apart (found through random check-in rows, the
activity weighting undone). Each is traced as a case found at the end of the data (`now`), with the
window [now − 14 days, now): `trace(depth=1)` for F1 and `trace(depth=2)` for F1 + F2, each timed on
its own, after one untimed trace of another case to warm the connection and the index roots.

Baseline, in the same process on the same database, after the engine on each case (so the pages the
engine read are warm for it: the ratios flatter the baseline, if anything): the self-join a person
would write, in plain SQL with the same stay, aerosol and overlap rule in epoch seconds: F1 = every
other person's stay at a venue of the case's stays in the window, overlapping one of them long
enough; F2 = the same join from each F1's stays in [first exposure, first exposure + 14 days) (cut at
now), the F1 set and first exposures in a CTE. Each query is limited to --baseline-timeout seconds
(PostgreSQL's statement_timeout; SQLite's progress handler); a query cut off is reported as
"> timeout", and its ratio as a lower bound. The baseline's per-person edge counts must equal the
engine's, for F1 and for the second hop; a mismatch is printed loudly (it is a bug).
"""

from __future__ import annotations

import argparse
import math
import os
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from operator import itemgetter
from pathlib import Path
from typing import NamedTuple

from common import (  # bench/ is on sys.path
    DAY,
    TimeText,
    child_django,
    child_output,
    drop_indexes,
    finish_tables,
    goals_text,
    loaded,
    log,
    options,
    pg_settings,
    render_table,
    run_databases,
    table_sizes,
    timed,
    write_run,
)

TABLE, META_TABLE = "warehouse_checkin", "bench_tracing_load"
EDITION = "VN-2025"
# Bumped whenever the generated rows change, so that --reuse refuses a database made by older code.
GENERATOR = 1
PSEUDONYM_KEY = "bench-tracing-fixed-pseudonym-key"
HOUR, MINUTE = 3_600, 60
UTC_OFFSET = 7 * HOUR  # the synth clock is Vietnam's local time
# Density: check-ins per person and day (over everybody; the people out on a given day make more),
# and people per venue, which with the former sets the visits per venue and day.
CHECKINS_PER_PERSON_DAY = 3.0
PEOPLE_PER_VENUE = 50
WEEKEND_SHARE = 0.8  # of a weekday's check-ins
NO_CHECKOUT = 0.2  # share of check-ins without a check-out
FIRST_FAVOURITE, ANY_VENUE = 0.5, 0.05
CASE_DAYS, MIN_CASE_STAYS, MIN_CASE_SPAN_DAYS = 14, 20, 12
# The goals on this machine.
GOAL_F1_S, GOAL_F2_S, GOAL_RATIO = 0.1, 2.0, 10.0


def load_params(args: argparse.Namespace) -> dict:
    """What the loaded data depends on: --reuse uses a database only when these match."""
    people = max(1_000, round(args.checkins / (args.days * CHECKINS_PER_PERSON_DAY)))
    return {
        "generator": GENERATOR,
        "checkins": args.checkins,
        "days": args.days,
        "seed": args.seed,
        "people": people,
        "venues": max(10, people // PEOPLE_PER_VENUE),
        "edition": EDITION,
    }


# ---------------------------------------------------------------- generating check-ins


class Visits:
    """A day's check-ins in the synth world, as (time in, time out or None, person, venue) in seconds
    since the first local midnight, sorted by time in. The hot loop draws random() into lookup tables,
    as synth.FastCheckins does, since 50 million rows leave no room for randrange() or choices()."""

    def __init__(self, rng: random.Random, people, venues: list):
        from dieuhanh.warehouse import synth

        self.random = rng.random
        self.favourites = people.favourites
        self.visitors = synth.activity_table(people)
        by_kind = {
            kind: [hour for hour, weight in enumerate(weights) for _ in range(weight)]
            for kind, weights in synth.HOURLY_RHYTHM.items()
        }
        self.hours = [by_kind[v.kind] for v in venues]
        self.stays = [v.stay_seconds for v in venues]

    def day(self, day: int, count: int) -> list[tuple[int, int | None, int, int]]:
        random_, visitors, favourites, hours, stays = (
            self.random,
            self.visitors,
            self.favourites,
            self.hours,
            self.stays,
        )
        midnight, people, venues = day * DAY, len(visitors), len(hours)
        rows = []
        for _ in range(count):
            person = visitors[int(random_() * people)]
            mine = favourites[person]
            r = random_()
            if r < FIRST_FAVOURITE:
                venue = mine[0]
            elif r < 1 - ANY_VENUE:
                venue = mine[int(random_() * len(mine))]
            else:  # an errand anywhere: what links one neighbourhood's contacts to another's
                venue = int(random_() * venues)
            rhythm = hours[venue]
            time_in = midnight + rhythm[int(random_() * len(rhythm))] * HOUR + int(random_() * HOUR)
            r = random_()
            # r ≥ NO_CHECKOUT here, so the stay is 0.6 to 1.4 times the venue's typical one.
            time_out = None if r < NO_CHECKOUT else time_in + int(stays[venue] * (0.4 + r)) + MINUTE
            rows.append((time_in, time_out, person, venue))
        rows.sort(key=itemgetter(0))  # rows arrive in time order, so the heap is ordered by time
        return rows


def day_counts(total: int, days: int, start: date) -> list[int]:
    """The rows of each day, fewer at weekends, adding up to exactly `total`."""
    weights = [WEEKEND_SHARE if (start + timedelta(days=d)).weekday() >= 5 else 1.0 for d in range(days)]
    counts = [int(total * w / sum(weights)) for w in weights]
    for d in range(total - sum(counts)):
        counts[d % days] += 1
    return counts


def epoch_of(start: date, t: int) -> int:
    """Seconds since the first local midnight → epoch seconds."""
    return int(datetime(start.year, start.month, start.day, tzinfo=UTC).timestamp()) - UTC_OFFSET + t


def density(rows: list[tuple[int, int | None, int, int]]) -> dict:
    """What one day of the data looks like: check-ins per person out that day, visits per venue."""
    per_person = Counter(row[2] for row in rows)
    per_venue = sorted(Counter(row[3] for row in rows).values())
    return {
        "sample_day_checkins": len(rows),
        "checkins_per_active_person_day": len(rows) / len(per_person),
        "active_people_day": len(per_person),
        "venue_visits_day_p50": per_venue[len(per_venue) // 2],
        "venue_visits_day_p95": per_venue[min(len(per_venue) - 1, math.ceil(0.95 * len(per_venue)) - 1)],
        "venue_visits_day_max": per_venue[-1],
        "venues_visited_day": len(per_venue),
        "with_checkout_share": sum(row[1] is not None for row in rows) / len(rows),
    }


# ---------------------------------------------------------------- writing them (child, Django set up)


class Target(NamedTuple):
    """What a row refers to, by the generator's indices."""

    source_id: int
    keys: list[bytes]  # by person
    venue_ids: list[int]  # by venue
    communes: list[int]  # by venue: the venue's commune, as the pipeline sets it


FIELDS = ["id", "source_id", "source_event_id", "commune_id", "at", "person_key", "venue_id", "time_out"]


def day_rows(rows: list, first_id: int, target: Target, text: TimeText) -> Iterator[tuple]:
    """One day's generated check-ins as warehouse_checkin's rows, ids from `first_id`."""
    source, keys, venue_ids, communes = target
    for row_id, (time_in, time_out, person, venue) in enumerate(rows, first_id):
        out = None if time_out is None else text(time_out)
        yield (
            row_id,
            source,
            f"chk-{row_id:09d}",
            communes[venue],
            text(time_in),
            keys[person],
            venue_ids[venue],
            out,
        )


def load(params: dict, home: Path) -> dict:
    """Migrate, load the units, make the world, import its venues, create a source, then the check-ins
    straight into the table (indexes dropped and recreated), and note what was loaded."""
    from django.core.management import call_command
    from django.db import connection

    from dieuhanh.units.services import load_units
    from dieuhanh.warehouse import services, synth
    from dieuhanh.warehouse.models import Venue
    from dieuhanh.warehouse.persons import person_key

    postgres = connection.vendor == "postgresql"
    report: dict = {}
    _, report["migrate_s"] = timed(call_command, "migrate", verbosity=0)
    log("  load_units() …")
    _, report["load_units_s"] = timed(load_units)
    log(f"  the world: {params['people']:,} people, {params['venues']:,} venues …")
    rng = random.Random(params["seed"])
    (communes, people, venues), report["world_s"] = timed(
        synth.build_world, rng, EDITION, params["people"], params["venues"]
    )
    synth.write_venues(home / "venues.csv", communes, venues)
    imported = services.import_venues(actor=None, path=home / "venues.csv", edition=EDITION)
    if imported.rejected or imported.created != len(venues):
        raise SystemExit(f"FAIL: venues: {imported.created:,} created, rejected {imported.rejected[:5]}")
    source, _ = services.create_source(actor=None, name="bench-tracing", kinds=["checkin"], edition=EDITION)
    by_code = {
        code: (pk, commune) for code, pk, commune in Venue.objects.values_list("code", "id", "commune")
    }
    target = Target(
        source.id,
        [person_key(pid) for pid in people.ids],
        [by_code[v.code][0] for v in venues],
        [by_code[v.code][1] for v in venues],
    )
    start = synth.default_start(EDITION)
    indexes = drop_indexes([TABLE], postgres)
    report |= load_rows(params, Visits(rng, people, venues), target, start, postgres)
    report |= finish_tables(indexes, postgres, [TABLE], params["checkins"])
    report["indexes"] = [index.create for index in indexes]
    report["start"] = start.isoformat()
    return report


def load_rows(params: dict, visits: Visits, target: Target, start: date, postgres: bool) -> dict:
    """Every day's check-ins, generated then written (a transaction a day); progress and rate on stderr."""
    from django.db import transaction

    from dieuhanh.db import insert_rows
    from dieuhanh.warehouse.models import CheckIn

    days, total = params["days"], params["checkins"]
    # Local midnight of the first day is 17:00 UTC the day before.
    text = TimeText(start - timedelta(days=1), days + 3, "+00" if postgres else "", zero=DAY - UTC_OFFSET)
    log(f"  {total:,} check-ins over {days} days by {'COPY' if postgres else 'executemany'} (no pipeline) …")
    loaded, generating, sample = 0, 0.0, {}
    began = time.perf_counter()
    for day, count in enumerate(day_counts(total, days, start)):
        rows, seconds = timed(visits.day, day, count)
        generating += seconds
        if day == days // 2:
            sample = density(rows)
        with transaction.atomic():
            insert_rows(CheckIn, FIELDS, day_rows(rows, loaded + 1, target, text))
        loaded += count
        elapsed = time.perf_counter() - began
        log(f"    day {day + 1}/{days}: {loaded:,} rows, {loaded / elapsed:,.0f} rows/s, {elapsed:,.0f} s")
    rows_s = time.perf_counter() - began
    return {
        "rows_s": rows_s,
        "rows_per_s": total / rows_s,
        "generate_s": generating,
        "method": "COPY" if postgres else "executemany",
        **sample,
    }


# ---------------------------------------------------------------- cases and the engine


def epoch_sql(column: str) -> str:
    from django.db import connection

    if connection.vendor == "postgresql":
        return f"floor(extract(epoch from {column}))::bigint"
    return f"unixepoch({column})"


def db_time(epoch: int):
    """A bound for `at` in the database's own form: an aware datetime, or SQLite's naive UTC text."""
    from django.db import connection

    moment = datetime.fromtimestamp(epoch, UTC)
    return moment if connection.vendor == "postgresql" else moment.strftime("%Y-%m-%d %H:%M:%S")


def choose_cases(count: int, total: int, seed: int, start: int, now: int) -> list[tuple[bytes, int]]:
    """(person key, stays in the window) of `count` people drawn at random among those with at least
    MIN_CASE_STAYS stays spread over the window, through random check-in rows."""
    from django.db import connection

    rng, chosen, known = random.Random(f"cases {seed}"), {}, {}
    with connection.cursor() as cursor:
        for _ in range(1_000 * count):
            if len(chosen) == count:
                break
            cursor.execute(f"SELECT person_key FROM {TABLE} WHERE id = %s", [rng.randint(1, total)])
            key = bytes(cursor.fetchone()[0])
            if key not in known:
                known[key] = stays_in(cursor, key, start, now)
            stays, first, last = known[key]
            eligible = stays >= MIN_CASE_STAYS and last - first >= MIN_CASE_SPAN_DAYS * DAY
            # A row draws a person in proportion to their check-ins; keeping them with a chance
            # inversely proportional undoes that, so that a case is a typical person, not a busy one.
            if eligible and key not in chosen and rng.random() < MIN_CASE_STAYS / stays:
                chosen[key] = stays
    if len(chosen) < count:
        raise SystemExit(f"FAIL: only {len(chosen)} people with {MIN_CASE_STAYS}+ stays over the window")
    return list(chosen.items())


def stays_in(cursor, key: bytes, start: int, end: int) -> tuple[int, int, int]:
    """(stays, first and last check-in, epoch) of a person in [start, end)."""
    cursor.execute(
        f"SELECT count(*), {epoch_sql('min(at)')}, {epoch_sql('max(at)')} FROM {TABLE}"
        " WHERE person_key = %s AND at >= %s AND at < %s",
        [key, db_time(start), db_time(end)],
    )
    stays, first, last = cursor.fetchone()
    return stays, first or 0, last or 0


def run_engine(case, rule, now: int, depth: int) -> tuple[object, float, int]:
    """(Trace, seconds, statements) of one trace on a fresh store."""
    from dieuhanh.tracing.engine import trace
    from dieuhanh.tracing.store import CheckinStore

    store = CheckinStore(rule)
    result, seconds = timed(trace, store, case, depth=depth, rule=rule, now=now)
    return result, seconds, store.queries


def hop_counts(result, case_person: bytes) -> tuple[Counter, Counter]:
    """Edges per contact, of the case's own stays (F1) and of the F1s' stays (the second hop)."""
    first = Counter(e.contact for e in result.edges if e.source == case_person)
    second = Counter(e.contact for e in result.edges if e.source != case_person)
    return first, second


# ---------------------------------------------------------------- baseline: the self-join in plain SQL


class Dialect(NamedTuple):
    epoch: str  # timestamp → epoch seconds
    moment: str  # epoch seconds → a value comparable with `at`
    least: str
    greatest: str


DIALECTS = {
    "postgresql": Dialect("extract(epoch from {})", "to_timestamp({})", "LEAST", "GREATEST"),
    "sqlite": Dialect("unixepoch({})", "datetime({}, 'unixepoch')", "MIN", "MAX"),
}


def stay_end(d: Dialect, stay: str) -> str:
    """When a stay ends, in epoch seconds: its check-out, or its check-in + the venue's dwell (the
    rule's default without one), at most max_stay after its check-in. `v` is the stays' venue."""
    at, out = d.epoch.format(f"{stay}.at"), d.epoch.format(f"{stay}.time_out")
    dwell = "COALESCE(NULLIF(v.dwell_minutes, 0) * 60, %(dwell)s)"
    return f"{d.least}(COALESCE({out}, {at} + {dwell}), {at} + %(max_stay)s)"


def exposure_join(d: Dialect) -> str:
    """`b`: another person's stay at the venue of `a`, sharing at least min_overlap with `a`'s stay
    extended by the aerosol decay (the length of the stay, at most decay_cap)."""
    a_at, b_at = d.epoch.format("a.at"), d.epoch.format("b.at")
    a_end = stay_end(d, "a")
    spread = f"{a_end} + {d.least}({a_end} - {a_at}, %(decay)s)"
    return (
        f" LEFT JOIN warehouse_venue v ON v.id = a.venue_id"
        f" JOIN {TABLE} b ON b.venue_id = a.venue_id AND b.person_key <> a.person_key"
        f" AND {d.least}({spread}, {stay_end(d, 'b')}) - {d.greatest}({a_at}, {b_at}) >= %(overlap)s"
    )


def f1_sql(d: Dialect) -> str:
    return (
        f"SELECT b.person_key, count(*) FROM {TABLE} a{exposure_join(d)}"
        " WHERE a.person_key = %(case)s AND a.at >= %(start)s AND a.at < %(end)s"
        " GROUP BY b.person_key"
    )


def f2_sql(d: Dialect) -> str:
    first = d.greatest + "(" + d.epoch.format("a.at") + ", " + d.epoch.format("b.at") + ")"
    until = f"{d.least}(f1.first + %(contact_days)s, %(now)s)"
    return (
        f"WITH f1 AS (SELECT b.person_key, MIN({first}) AS first FROM {TABLE} a{exposure_join(d)}"
        " WHERE a.person_key = %(case)s AND a.at >= %(start)s AND a.at < %(end)s"
        " GROUP BY b.person_key)"
        f" SELECT b.person_key, count(*) FROM f1 JOIN {TABLE} a ON a.person_key = f1.person_key"
        f" AND a.at >= {d.moment.format('f1.first')} AND a.at < {d.moment.format(until)}"
        f"{exposure_join(d)}"
        " WHERE b.person_key <> %(case)s GROUP BY b.person_key"
    )


class Baseline:
    """The self-join, each query cut off after `timeout` seconds."""

    def __init__(self, rule, timeout: float):
        from django.db import connection

        self.vendor = connection.vendor
        dialect = DIALECTS[self.vendor]
        self.f1_sql, self.f2_sql, self.timeout = f1_sql(dialect), f2_sql(dialect), timeout
        self.rule_params = {
            "dwell": rule.default_dwell,
            "max_stay": rule.max_stay,
            "decay": rule.decay_cap,
            "overlap": rule.min_overlap,
            "contact_days": rule.contact_days * DAY,
        }

    def f1(self, case, now: int) -> tuple[Counter | None, float]:
        return self._run(self.f1_sql, case, now)

    def f2(self, case, now: int) -> tuple[Counter | None, float]:
        """Edges per contact of the second hop, F1s and the case's other contacts included."""
        return self._run(self.f2_sql, case, now)

    def _run(self, sql: str, case, now: int) -> tuple[Counter | None, float]:
        from django.db import OperationalError, connection

        params = self.rule_params | {
            "case": case.person,
            "start": db_time(case.start),
            "end": db_time(case.end),
            "now": now,
        }
        began = time.perf_counter()
        try:
            with self._limit(), connection.cursor() as cursor:
                cursor.execute(sql, params)
                rows = cursor.fetchall()
        except OperationalError as e:
            if "statement timeout" not in str(e) and "interrupted" not in str(e):
                raise
            return None, time.perf_counter() - began
        return Counter({bytes(key): n for key, n in rows}), time.perf_counter() - began

    @contextmanager
    def _limit(self) -> Iterator[None]:
        from django.db import connection, transaction

        if self.vendor == "postgresql":
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(f"SET LOCAL statement_timeout = {int(self.timeout * 1000)}")
                yield
            return
        deadline = time.perf_counter() + self.timeout
        connection.ensure_connection()
        # SQLite has no statement timeout: its progress handler aborts the query ("interrupted").
        connection.connection.set_progress_handler(lambda: time.perf_counter() > deadline, 100_000)
        try:
            yield
        finally:
            connection.connection.set_progress_handler(None, 0)


# ---------------------------------------------------------------- one case, all cases


def measure_case(key: bytes, stays: int, now: int, rule, baseline: Baseline) -> dict:
    """The engine at depth 1 and 2, then the baseline's F1 and F2, compared."""
    from dieuhanh.tracing.engine import Window
    from dieuhanh.warehouse.persons import short

    case = Window(key, now - CASE_DAYS * DAY, now)
    one, f1_s, _ = run_engine(case, rule, now, depth=1)
    two, f2_s, queries = run_engine(case, rule, now, depth=2)
    first, second = hop_counts(two, key)
    generations = Counter(c.generation for c in two.contacts.values())
    found: dict = {
        "case": short(key),
        "stays": stays,
        "f1_s": f1_s,
        "f2_s": f2_s,
        "f1": len(one.contacts),
        "f2": generations[2],
        "edges": len(two.edges),
        "f2_queries": queries,
    }
    if set(one.contacts) != set(first):
        found["mismatch_engine"] = "depth 1 and depth 2 find different F1s"
    base_first, found["baseline_f1_s"] = baseline.f1(case, now)
    base_second, found["baseline_f2_s"] = baseline.f2(case, now)
    found["baseline_f1_timeout"], found["baseline_f2_timeout"] = base_first is None, base_second is None
    found["f1_agrees"] = None if base_first is None else compare(base_first, first, "F1", found)
    found["f2_agrees"] = None if base_second is None else compare(base_second, second, "second hop", found)
    return found


def compare(baseline: Counter, engine: Counter, what: str, found: dict) -> bool:
    """True when both find the same people with the same number of edges each; else says how not."""
    if baseline == engine:
        return True
    only_baseline, only_engine = set(baseline) - set(engine), set(engine) - set(baseline)
    counts = sum(baseline[k] != engine[k] for k in set(baseline) & set(engine))
    found[f"mismatch_{what}"] = (
        f"{len(only_baseline)} people only in the baseline, {len(only_engine)} only in the engine,"
        f" {counts} with other edge counts (baseline {sum(baseline.values())} edges,"
        f" engine {sum(engine.values())})"
    )
    log(f"  !!! MISMATCH ({what}) for case {found['case']}: {found[f'mismatch_{what}']}")
    return False


def measure(params: dict, args: argparse.Namespace, start: date) -> dict:
    from dieuhanh.tracing.engine import Rule, Window

    rule = Rule()
    now = epoch_of(start, params["days"] * DAY)  # the end of the data: a case found today
    log(f"  choosing {args.cases} cases (+1 to warm up) …")
    cases = choose_cases(args.cases + 1, params["checkins"], params["seed"], now - CASE_DAYS * DAY, now)
    warm, cases = cases[-1], cases[:-1]
    run_engine(Window(warm[0], now - CASE_DAYS * DAY, now), rule, now, depth=2)
    baseline = Baseline(rule, args.baseline_timeout)
    # Other work on this 2-core machine slows both sides: the load averages say whether there was any.
    loadavg_before, measured = os.getloadavg(), []
    for number, (key, stays) in enumerate(cases, 1):
        found = measure_case(key, stays, now, rule, baseline)
        measured.append(found)
        log(
            f"  case {number}/{len(cases)} {found['case']}: {stays} stays, F1 {found['f1']:,} in"
            f" {found['f1_s'] * 1e3:,.1f} ms, F2 {found['f2']:,} in {found['f2_s'] * 1e3:,.1f} ms;"
            f" baseline {seconds_text(found['baseline_f1_s'], found['baseline_f1_timeout'])}"
            f" / {seconds_text(found['baseline_f2_s'], found['baseline_f2_timeout'])}"
        )
    return {
        "now": datetime.fromtimestamp(now, UTC).isoformat(),
        "rule": rule.as_dict(),
        "loadavg_before": loadavg_before,
        "loadavg_after": os.getloadavg(),
        "cases": measured,
    }


# ---------------------------------------------------------------- figures


class Spread(NamedTuple):
    p50: float
    p95: float
    max: float
    p50_cut: bool  # True when the value is a timeout: the true one is larger
    p95_cut: bool
    max_cut: bool


def spread(samples: list[tuple[float, bool]]) -> Spread:
    """Nearest-rank percentiles (a value some run took, so a cut-off one stays a lower bound)."""
    ordered = sorted(samples)
    pick = [ordered[max(0, math.ceil(q * len(ordered)) - 1)] for q in (0.5, 0.95, 1.0)]
    return Spread(*(value for value, _ in pick), *(cut for _, cut in pick))


def summarise(cases: list[dict]) -> dict:
    engine_f1 = spread([(c["f1_s"], False) for c in cases])
    engine_f2 = spread([(c["f2_s"], False) for c in cases])
    base_f1 = spread([(c["baseline_f1_s"], c["baseline_f1_timeout"]) for c in cases])
    base_f2 = spread([(c["baseline_f2_s"], c["baseline_f2_timeout"]) for c in cases])
    summary = {
        "engine_f1": engine_f1._asdict(),
        "engine_f2": engine_f2._asdict(),
        "baseline_f1": base_f1._asdict(),
        "baseline_f2": base_f2._asdict(),
    }
    for name, engine, base in (("f1", engine_f1, base_f1), ("f2", engine_f2, base_f2)):
        summary[f"ratio_{name}_p50"] = base.p50 / engine.p50
        summary[f"ratio_{name}_p95"] = base.p95 / engine.p95
        summary[f"ratio_{name}_p50_lower_bound"] = base.p50_cut
        summary[f"ratio_{name}_p95_lower_bound"] = base.p95_cut
    for size in ("stays", "f1", "f2", "edges", "f2_queries"):
        summary[f"{size}_p50_max"] = [
            spread([(c[size], False) for c in cases]).p50,
            max(c[size] for c in cases),
        ]
    for hop in ("f1", "f2"):
        verdicts = [c[f"{hop}_agrees"] for c in cases]
        summary[f"{hop}_agree"] = {
            "checked": sum(v is not None for v in verdicts),
            "agree": sum(v is True for v in verdicts),
            "timed_out": sum(v is None for v in verdicts),
        }
    summary["mismatches"] = [
        {k: v for k, v in c.items() if k == "case" or k.startswith("mismatch")}
        for c in cases
        if any(k.startswith("mismatch") for k in c)
    ]
    return summary


def seconds_text(seconds: float, cut: bool) -> str:
    return f"> {seconds * 1e3:,.0f} ms (timeout)" if cut else f"{seconds * 1e3:,.1f} ms"


# ---------------------------------------------------------------- child entry


def run_child(args: argparse.Namespace) -> None:
    postgres = child_django(args)
    params, home = load_params(args), Path(os.environ["DIEUHANH_HOME"])
    report = loaded(args, lambda: load(params, home), params, META_TABLE, TABLE, params["checkins"])
    result: dict = {"vendor": "postgresql" if postgres else "sqlite", "params": params, "load": report}
    result |= table_sizes([TABLE])
    if postgres:
        result["pg_settings"] = pg_settings(
            "shared_buffers", "work_mem", "effective_cache_size", "random_page_cost", "jit"
        )
    result |= measure(params, args, date.fromisoformat(report["start"]))
    result["summary"] = summarise(result["cases"])
    child_output(result)


# ---------------------------------------------------------------- parent: the table, the goals, JSON


def ms(spread_: dict, which: str) -> str:
    value = spread_[which] * 1e3
    return f"> {value:,.0f}" if spread_[f"{which}_cut"] else f"{value:,.1f}"


def ratio(summary: dict, name: str, which: str) -> str:
    lower = summary[f"ratio_{name}_{which}_lower_bound"]
    return f"{'≥ ' if lower else ''}{summary[f'ratio_{name}_{which}']:,.1f}×"


def load_cell(r: dict) -> str:
    load = r["load"]
    total = load["rows_s"] + load["indexes_total_s"] + load["analyze_s"]
    text = (
        f"{total:,.0f} s ({load['rows_s']:,.0f} + {load['indexes_total_s']:,.0f} + {load['analyze_s']:,.0f})"
    )
    return text + (f", reused (loaded {load['loaded_at'][:16]})" if load.get("reused") else "")


def agree_cell(summary: dict) -> str:
    return "; ".join(
        f"{hop} {summary[f'{hop}_agree']['agree']}/{summary[f'{hop}_agree']['checked']}"
        + (
            f" ({summary[f'{hop}_agree']['timed_out']} timed out)"
            if summary[f"{hop}_agree"]["timed_out"]
            else ""
        )
        for hop in ("f1", "f2")
    )


def pair(values: list) -> str:
    return f"{values[0]:,} / {values[1]:,}"


ROWS: list[tuple[str, Callable[[dict], str]]] = [
    (
        "check-ins / people / venues / days",
        lambda r: (
            f"{r['params']['checkins']:,} / {r['params']['people']:,}"
            f" / {r['params']['venues']:,} / {r['params']['days']}"
        ),
    ),
    (
        "check-ins per person out that day (sample day)",
        lambda r: f"{r['load']['checkins_per_active_person_day']:.2f}",
    ),
    (
        "visits per venue-day p50 / p95 / max",
        lambda r: (
            f"{r['load']['venue_visits_day_p50']:,} /"
            f" {r['load']['venue_visits_day_p95']:,} / {r['load']['venue_visits_day_max']:,}"
        ),
    ),
    ("with a check-out", lambda r: f"{r['load']['with_checkout_share']:.0%}"),
    ("load, s (rows + indexes + analyze)", load_cell),
    ("  rows/s (COPY / executemany, no pipeline)", lambda r: f"{r['load']['rows_per_s']:,.0f}"),
    ("database size, GB", lambda r: f"{r['database_bytes'] / 1e9:,.1f}"),
    (
        "cases (stays in 14 days p50 / max)",
        lambda r: f"{len(r['cases'])} ({pair(r['summary']['stays_p50_max'])})",
    ),
    (
        "F1 engine p50 / p95 / max, ms",
        lambda r: " / ".join(ms(r["summary"]["engine_f1"], w) for w in ("p50", "p95", "max")),
    ),
    (
        "F2 engine p50 / p95 / max, ms",
        lambda r: " / ".join(ms(r["summary"]["engine_f2"], w) for w in ("p50", "p95", "max")),
    ),
    (
        "F1 self-join p50 / p95, ms",
        lambda r: " / ".join(ms(r["summary"]["baseline_f1"], w) for w in ("p50", "p95")),
    ),
    (
        "F2 self-join p50 / p95, ms",
        lambda r: " / ".join(ms(r["summary"]["baseline_f2"], w) for w in ("p50", "p95")),
    ),
    (
        "ratio F1 self-join/engine p50 / p95",
        lambda r: f"{ratio(r['summary'], 'f1', 'p50')} / {ratio(r['summary'], 'f1', 'p95')}",
    ),
    (
        "ratio F2 self-join/engine p50 / p95",
        lambda r: f"{ratio(r['summary'], 'f2', 'p50')} / {ratio(r['summary'], 'f2', 'p95')}",
    ),
    ("F1 people p50 / max", lambda r: pair(r["summary"]["f1_p50_max"])),
    ("F2 people p50 / max", lambda r: pair(r["summary"]["f2_p50_max"])),
    ("edges (depth 2) p50 / max", lambda r: pair(r["summary"]["edges_p50_max"])),
    ("statements per F2 trace p50 / max", lambda r: pair(r["summary"]["f2_queries_p50_max"])),
    ("self-join agrees (people and edges)", lambda r: agree_cell(r["summary"])),
    (
        "load average 1/5/15 min, before / after the cases",
        lambda r: " / ".join(
            ", ".join(f"{x:.1f}" for x in r[k]) for k in ("loadavg_before", "loadavg_after")
        ),
    ),
]


def table(results: dict[str, dict]) -> str:
    names = list(results)
    grid = [["tracing benchmark", *names]] + [
        [label, *(cell(results[n]) for n in names)] for label, cell in ROWS
    ]
    return render_table(grid)


def cases_text(name: str, r: dict) -> str:
    lines = [f"\ncases ({name}): key, stays, F1, F2, edges; engine F1 / F2 ms; self-join F1 / F2 ms"]
    for c in r["cases"]:
        lines.append(
            f"  {c['case']}  {c['stays']:3}  {c['f1']:6,} {c['f2']:8,} {c['edges']:9,}"
            f"  {c['f1_s'] * 1e3:9,.1f} {c['f2_s'] * 1e3:10,.1f}"
            f"  {seconds_text(c['baseline_f1_s'], c['baseline_f1_timeout']):>22}"
            f" {seconds_text(c['baseline_f2_s'], c['baseline_f2_timeout']):>22}"
        )
    return "\n".join(lines)


def goals(results: dict[str, dict]) -> dict[str, dict[str, bool]]:
    met = {}
    for name, r in results.items():
        s = r["summary"]
        met[name] = {
            f"F1 p95 < {GOAL_F1_S * 1e3:.0f} ms": s["engine_f1"]["p95"] < GOAL_F1_S,
            f"F2 p95 < {GOAL_F2_S:.0f} s": s["engine_f2"]["p95"] < GOAL_F2_S,
            f"F1 ≥ {GOAL_RATIO:.0f}× faster than the self-join (p95)": s["ratio_f1_p95"] >= GOAL_RATIO,
            f"F2 ≥ {GOAL_RATIO:.0f}× faster than the self-join (p95)": s["ratio_f2_p95"] >= GOAL_RATIO,
        }
    return met


def run_parent(args: argparse.Namespace) -> None:
    # The pseudonym key is fixed so that a reused database and a new one give a person the same key.
    runs = run_databases(
        args, "tracing", params=load_params(args), meta_table=META_TABLE,
        env={"DIEUHANH_PSEUDONYM_KEY": PSEUDONYM_KEY},
    )  # fmt: skip
    results = runs.results
    met = goals(results)
    print(table(results))
    print("\nload: the check-ins bypass the ingest pipeline (COPY / executemany straight into the table).")
    print(goals_text(met))
    mismatches = {
        name: r["summary"]["mismatches"] for name, r in results.items() if r["summary"]["mismatches"]
    }
    for name, r in results.items():
        print(cases_text(name, r))
    for name, found in mismatches.items():
        print(f"\n!!! {name}: the self-join and the engine DISAGREE on {len(found)} case(s): {found}")
    write_run("tracing", args, runs, goals=met)
    if mismatches:
        raise SystemExit(1)


def main() -> None:
    parser = options(__doc__, both=True, reuse="keep the loaded database; use it when it matches")
    parser.add_argument("--checkins", type=int, default=50_000_000, help="check-ins in the table")
    parser.add_argument("--cases", type=int, default=20, help="cases traced")
    parser.add_argument("--days", type=int, default=28, help=f"days of check-ins (at least {CASE_DAYS})")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--baseline-timeout", type=float, default=60.0, help="seconds per self-join query")
    args = parser.parse_args()
    if args.checkins < 100_000 or args.days < CASE_DAYS or args.cases < 1 or args.baseline_timeout <= 0:
        parser.error(f"--checkins ≥ 100,000, --days ≥ {CASE_DAYS}, --cases ≥ 1 and --baseline-timeout > 0")
    if args.child:
        run_child(args)
    else:
        run_parent(args)


if __name__ == "__main__":
    main()
