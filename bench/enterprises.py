"""Benchmark: an industrial park's counts (issue 21) — a park of 200 enterprises and 100,000 workers —
from the enterprise rollups, beside the naive query over the events in the same run (DESIGN.md §6).

    .venv/bin/python bench/enterprises.py [--db pg|sqlite] [--pg-url URL] [--enterprises 200]
                                         [--workers 100000] [--events 1000000] [--people 1000000]
                                         [--repeat 30] [--reuse]

The database is a scratch one (`common.scratch_here`; PostgreSQL: `dieuhanh_bench_enterprises` on
--pg-url's server; SQLite: a file under the temporary directory), made for the run and dropped after
it; with --reuse it is kept, and a later --reuse run measures the park it holds (no load).
Everything goes through the application: migrations, the units, the park and its enterprises
(`create_enterprise`), the rosters (`import_roster`: IDs pseudonymised as at ingest), and the test
results through the ingest pipeline (`warehouse.services.ingest`, batches of 20,000), which keeps the
enterprise rollups in the batch's transaction. The events: `--events` test results over 90 days, of
`--people` persons of whom the first `--workers` are on the rosters (spread evenly over the
enterprises, a tenth of them having left half-way), each taken in one of the city's communes, 4%
positive.

Timed, `--repeat` times each after one warm-up, in this process:
- counts for the park, one total (by=none), by enterprise (by=unit), by day (by=day), positives only
  (`warehouse.services.counts`, what GET /api/v1/warehouse/counts answers);
- the same total through the API (Django's test client, a bearer token of the park's officer);
- the park's standings (roster, doses, coverage, positives per enterprise: the park page's ranking).
Baseline: the naive query a person would write — the events joined to the rosters on the person key,
each event counted on the days its worker was on the roster — for the same total and by enterprise;
its totals must equal the rollups' (a mismatch is printed loudly).

The machine is shared (2 cores, other work running): read the ratios rather than the absolute times.
"""

from __future__ import annotations

import random
import time
from datetime import date, datetime, timedelta

from common import log, machine, options, render_table, scratch_here, spread, write_results

START = date(2025, 7, 1)
DAYS = 90
COMMUNE = "VN-2025:25987"  # Phường Bình Hòa (formerly Thuận An, Bình Dương)


def main() -> None:
    parser = options(__doc__.split("\n\n")[0], reuse="keep the loaded database; use its park next time")
    parser.add_argument("--enterprises", type=int, default=200)
    parser.add_argument("--workers", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    # The pseudonym key is fixed so that a reused database and a new one give a person the same key.
    with scratch_here(
        args, "enterprises", env={"DIEUHANH_PSEUDONYM_KEY": "bench-enterprises-fixed-key"}
    ) as server:
        park, load_s = _load(args)
        results = _measure(park, args)
    results["load_s"] = load_s
    _report(args, results, server)


def _load(args):
    from django.core.management import call_command

    from dieuhanh.units.models import Unit
    from dieuhanh.units.scoping import Area
    from dieuhanh.units.services import load_units
    from dieuhanh.warehouse.enterprises.services import (
        EnterpriseInput,
        WorkerInput,
        create_enterprise,
        import_roster,
    )
    from dieuhanh.warehouse.kinds import KINDS
    from dieuhanh.warehouse.services import create_source, ingest

    call_command("migrate", interactive=False, verbosity=0)
    if not Unit.objects.filter(edition_id="VN-2025", kind="commune").exists():
        log("loading the units…")
        load_units()
    found = Unit.objects.filter(kind="industrial_park", code="0399100000").first()
    if found is not None and args.reuse:
        log("reusing the loaded park")
        return found, None
    started = time.perf_counter()
    everywhere = Area(True, frozenset())
    park = create_enterprise(
        actor=None,
        data=EnterpriseInput("industrial_park", "0399100000", "KCN đo hiệu năng", commune=COMMUNE),
        area=everywhere,
    )
    firms = [
        create_enterprise(
            actor=None,
            data=EnterpriseInput(
                "enterprise", f"0399{n:06d}", f"Doanh nghiệp {n}", commune=COMMUNE, park=park.ref
            ),
            area=everywhere,
        )
        for n in range(1, args.enterprises + 1)
    ]
    log(f"{len(firms)} enterprises registered; rosters…")
    per = args.workers // len(firms)
    for n, firm in enumerate(firms):
        people = range(n * per, (n + 1) * per)
        import_roster(
            actor=None,
            enterprise=firm,
            workers=[
                (
                    i,
                    WorkerInput(
                        _person(p),
                        START - timedelta(days=365),
                        START + timedelta(days=45) if p % 10 == 0 else None,
                    ),
                )
                for i, p in enumerate(people, start=1)
            ],
        )
    source, _ = create_source(actor=None, name="bench", kinds=list(KINDS), edition="VN-2025")
    communes = list(
        Unit.objects.filter(edition_id="VN-2025", path__under="/VN/79/")
        .leaves()
        .values_list("code", flat=True)
    )
    rng = random.Random(21)
    log(f"{args.events:,} test results through the ingest pipeline…")
    t0 = time.perf_counter()
    ingest(source, "test", _tests(rng, args.events, args.people, communes))
    log(f"  ingested in {time.perf_counter() - t0:.0f} s")
    return park, time.perf_counter() - started


def _person(n: int) -> str:
    return f"079{n:09d}"


def _tests(rng: random.Random, count: int, people: int, communes: list[str]):
    base = datetime(START.year, START.month, START.day, 7, 0)
    for i in range(count):
        at = base + timedelta(minutes=rng.randrange(DAYS * 24 * 60))
        yield (
            i + 1,
            {
                "source_event_id": f"t{i}",
                "person_id": _person(rng.randrange(people)),
                "commune": rng.choice(communes),
                "sampled_at": at.isoformat() + "+07:00",
                "method": "rapid",
                "result": "positive" if rng.random() < 0.04 else "negative",
            },
        )


def _measure(park, args) -> dict:
    from django.db import connection
    from django.test import Client

    from dieuhanh.accounts.models import User
    from dieuhanh.accounts.services import create_token, create_user
    from dieuhanh.warehouse.enterprises import figures
    from dieuhanh.warehouse.services import CountQuery, counts

    if connection.vendor == "postgresql":  # as autovacuum would after a load: visibility map, statistics
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE enterprises_enterpriserollup, enterprises_worker")
    end = START + timedelta(days=DAYS - 1)
    cases = {
        "counts, total (by=none)": lambda: counts(CountQuery("test", park, START, end, "none", {})),
        "counts, by enterprise (by=unit)": lambda: counts(CountQuery("test", park, START, end, "unit", {})),
        "counts, by day (by=day)": lambda: counts(CountQuery("test", park, START, end, "day", {})),
        "counts, positives": lambda: counts(
            CountQuery("test", park, START, end, "none", {"result": "positive"})
        ),
        "standings (ranking)": lambda: figures.standings(park, end),
    }
    user = User.objects.filter(username="bench-kcn").first() or create_user(
        actor=None, username="bench-kcn", password=None, grants=[(park, "enterprise")]
    )
    _, token = create_token(actor=None, user=user, name="bench")
    client = Client(headers={"Authorization": f"Bearer {token}"})
    params = {"kind": "test", "unit": park.ref, "from": START.isoformat(), "to": end.isoformat()}

    def api():
        response = client.get("/api/v1/warehouse/counts", params)
        assert response.status_code == 200, response.content
        return response.json()

    cases["API GET /warehouse/counts (total)"] = api
    out: dict = {"engine": {}, "baseline": {}}
    answers = {}
    for name, fn in cases.items():
        answers[name] = fn()
        out["engine"][name] = spread(_times(fn, args.repeat))
        log(f"  {name}: p95 {out['engine'][name]['p95_s'] * 1000:.1f} ms")
    day = (
        "(t.at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date"
        if connection.vendor == "postgresql"
        else "date(t.at, '+7 hours')"
    )
    join = (
        "FROM warehouse_testresult t JOIN enterprises_worker w ON w.person_key = t.person_key "
        "JOIN units_unit u ON u.id = w.enterprise_id "
        f"WHERE u.path LIKE %s AND t.at >= %s AND t.at < %s AND {day} >= w.start "
        f'AND (w."end" IS NULL OR {day} <= w."end")'
    )
    lo = datetime(START.year, START.month, START.day) - timedelta(hours=7)
    hi = lo + timedelta(days=DAYS)
    if connection.vendor == "sqlite":
        lo_p, hi_p = lo.isoformat(" "), hi.isoformat(" ")
    else:
        from datetime import UTC

        lo_p, hi_p = lo.replace(tzinfo=UTC), hi.replace(tzinfo=UTC)
    baseline = {
        "counts, total (by=none)": (f"SELECT count(*) {join}", lambda rows: rows[0][0]),
        "counts, by enterprise (by=unit)": (
            f"SELECT w.enterprise_id, count(*) {join} GROUP BY w.enterprise_id",
            lambda rows: sum(n for _, n in rows),
        ),
    }
    for name, (sql, total) in baseline.items():

        def run(sql=sql):
            with connection.cursor() as cursor:
                cursor.execute(sql, [park.path + "%", lo_p, hi_p])
                return cursor.fetchall()

        rows = run()
        out["baseline"][name] = spread(_times(run, max(3, args.repeat // 3)))
        engine_total = answers[name]["total"]
        out.setdefault("check", {})[name] = {"engine": engine_total, "baseline": total(rows)}
        if engine_total != total(rows):
            log(f"!!! MISMATCH {name}: rollups {engine_total} ≠ baseline {total(rows)}")
        log(f"  baseline {name}: p95 {out['baseline'][name]['p95_s'] * 1000:.1f} ms")
    return out


def _times(fn, repeat: int) -> list[float]:
    fn()  # warm-up
    found = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        found.append(time.perf_counter() - started)
    return found


def _report(args, results: dict, server: str | None) -> None:
    def ms(s: float) -> str:
        return f"{s * 1000:,.1f} ms"

    grid = [["operation", "p50", "p95", "baseline p50", "baseline p95", "ratio (p95)"]]
    for name, engine in results["engine"].items():
        base = results["baseline"].get(name)
        row = [name, ms(engine["p50_s"]), ms(engine["p95_s"])]
        if base:
            row += [ms(base["p50_s"]), ms(base["p95_s"]), f"{base['p95_s'] / engine['p95_s']:,.0f}×"]
        else:
            row += ["", "", ""]
        grid.append(row)
    scale = (
        f"{args.db}: {args.enterprises} enterprises, {args.workers:,} workers, {args.events:,} test results "
        f"of {args.people:,} people over {DAYS} days; repeat {args.repeat}"
    )
    print(scale)
    print(render_table(grid))
    write_results(
        "enterprises",
        {
            "scale": scale,
            "args": vars(args),
            "machine": machine(server),
            "shared_machine": "2 cores, shared with other work while measured",
            **results,
        },
    )


if __name__ == "__main__":
    main()
