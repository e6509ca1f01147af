"""Benchmark: citizens' reports (issue 20) — intake plus routing, a unit's queue and the public page
with many reports stored (DESIGN.md §6).

    .venv/bin/python bench/feedback.py [--db sqlite|pg] [--reports N] [--intake N] [--samples N] [--seed S]
                                       [--reuse] [--pg-url URL]

One database per run, in this process (`common.scratch_here`): PostgreSQL (on --pg-url's server) gets a
scratch database `dieuhanh_bench_feedback`, created for the run and dropped after it; SQLite a file in
a DIEUHANH_HOME folder. Both are migrated and get the units of both maps. With --reuse the database is
kept, and a later --reuse run measures over the reports it holds (no fill).

- fill: --reports rows in the reports table, written as plain rows (COPY on PostgreSQL, executemany
  on SQLite), spread with --seed over the 3,321 communes of the 2025 map (a tenth of them to the
  provinces, as the categories that go there), the last 60 days: 75% answered (a quarter of those
  rated), 10% taken, the rest received; one 'received' event each and one 'answered' event for the
  answered. PostgreSQL's reports are then VACUUM ANALYZEd and every table ANALYZEd (as autovacuum
  would).
- intake + routing: --intake reports through `services.submit` as the API calls it (checks, the
  sender's address counted against its limit — each report from its own address —, routing of an
  address in the old or new form or of a pin, duplicate search, writes, audit row, live event), one
  transaction each; reports/s, first one after the other (one client), then from --clients threads
  at once, each with its own connection, as one web process serves concurrent requests (its pool
  holds 8), then from --processes spawned processes of --clients / --processes threads each, as
  `dieuhanh serve` runs one worker per core (timed from when all are set up). Baseline, in the same
  run on the same database and in the same three ways: the same number
  of rows written with `Feedback.objects.create` + one `Event` each, one transaction each (no checks,
  no routing). That baseline is the floor of a report written durably on its own: each commit waits
  for its WAL flush, which on this shared machine is most of its time; concurrent commits share a
  flush. Routing alone is timed per report too (p95; the issue asks < 1 s).
- queue: --samples communes and --samples // 4 provinces drawn with --seed (each kind its own row),
  each with an operator and a bearer token; `GET /api/v1/feedback?unit=EDITION:CODE` through
  Django's test Client (the full middleware and ninja stack, no socket). Baseline: the same first
  page (100 rows, oldest answer deadline first) by one raw SQL query over the table with the unit's
  subtree as a list of ids, and its count up to 10,001 (the API's count stops at 10,000: issue 20's
  speed; before, the baseline counted every row, as the API did).
- public page: `GET /phan-anh/cong-khai/` (page 1, page 5, a search by a commune's name and by a
  category) through the test Client. Baseline: the first page (20 answered, newest first) by raw SQL.

It prints one table (p50, p95 and the ratio of the service to its baseline) and writes
bench/results/feedback.json. The machine is shared: read the figures with the load average shown.
"""

from __future__ import annotations

import os
import random
import secrets
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import log, machine, options, percentile, render_table, scratch_here, write_results


def fill(n: int, rng: random.Random) -> dict:
    from django.db import connection, transaction

    from dieuhanh.db import db_datetime, insert_rows
    from dieuhanh.feedback.models import Category, Event, Feedback
    from dieuhanh.units.models import Unit

    communes = list(
        Unit.objects.filter(edition_id="VN-2025", kind="commune").values_list("id", "parent_id", "lat", "lon")
    )
    categories = list(Category.objects.values_list("code", flat=True))
    now = datetime.now(UTC)
    start = time.perf_counter()
    first = (Feedback.objects.order_by("-id").values_list("id", flat=True).first() or 0) + 1
    chunk = 50_000
    made = 0
    with transaction.atomic():
        for base in range(0, n, chunk):
            rows, events = [], []
            for i in range(base, min(n, base + chunk)):
                pk = first + i
                commune, province, lat, lon = communes[rng.randrange(len(communes))]
                unit = province if rng.random() < 0.1 else commune
                received = now - timedelta(seconds=rng.randrange(60 * 86400))
                answer_due = received + timedelta(days=5)
                r = rng.random()
                status = "answered" if r < 0.75 else "accepted" if r < 0.85 else "received"
                answered_at = (
                    received + timedelta(hours=rng.randrange(1, 150)) if status == "answered" else None
                )
                rating = (
                    rng.choice([5, 5, 4, 4, 4, 3, 2, 1])
                    if status == "answered" and rng.random() < 0.25
                    else None
                )
                rows.append(
                    (
                        pk,
                        f"PB{pk:08d}",
                        rng.choice(categories),
                        f"Phản ánh số {pk}: đèn đường, rác, ổ gà hay ngập nước trước nhà.",
                        unit,
                        commune,
                        lat,
                        lon,
                        "",
                        status,
                        db_datetime(received),
                        db_datetime(received),
                        db_datetime(received + timedelta(minutes=5)),
                        db_datetime(answer_due),
                        db_datetime(answered_at) if answered_at else None,
                        "Đơn vị đã xử lý, cảm ơn người dân." if answered_at else "",
                        rating,
                        1,
                        0,
                    )
                )
                events.append((pk, "received", db_datetime(received), unit, ""))
                if answered_at:
                    events.append((pk, "answered", db_datetime(answered_at), unit, "Đơn vị đã xử lý."))
            insert_rows(
                Feedback,
                [
                    "id",
                    "code",
                    "category_id",
                    "text",
                    "unit_id",
                    "place_unit_id",
                    "lat",
                    "lon",
                    "address",
                    "status",
                    "received_at",
                    "assigned_at",
                    "forward_due",
                    "answer_due",
                    "answered_at",
                    "answer",
                    "rating",
                    "reporters",
                    "reminders",
                ],
                rows,
            )
            insert_rows(Event, ["feedback_id", "kind", "at", "unit_id", "note"], events)
            made += len(rows)
            log(f"fill: {made:,} reports")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT setval(pg_get_serial_sequence('feedback_feedback', 'id'), %s)", [first + n]
            )
            cursor.execute(
                "SELECT setval(pg_get_serial_sequence('feedback_event', 'id'),"
                " (SELECT max(id) FROM feedback_event))"
            )
            cursor.execute("VACUUM ANALYZE feedback_feedback")
            cursor.execute("VACUUM ANALYZE feedback_event")
            # The units too: never analyzed after their load, PostgreSQL guessed a few hundred rows and
            # hash-joined all 14,151 units on every queue page (autovacuum would have analyzed them).
            cursor.execute("ANALYZE")
    return {"reports": n, "seconds": time.perf_counter() - start}


# What the intake's writers read: set in this process by intake(), in a spawned one by _process().
_JOB: dict = {}


def _submit(i: int) -> None:
    from dieuhanh.feedback import services

    job = _JOB
    lat, lon, address = job["places"][i % job["n"]]
    services.submit(
        category=job["cats"][i % job["n"]],
        text=f"Phản ánh thử số {i} về hạ tầng trước nhà.",
        place=services.Place(lat, lon, address),
        client=job["senders"][i],
    )


def _create(i: int) -> None:
    from django.db import transaction
    from django.utils import timezone

    from dieuhanh.feedback.models import Category, Event, Feedback

    job = _JOB
    if "cat_objs" not in job:
        job["cat_objs"] = {c.code: c for c in Category.objects.all()}
    units, now = job["units"], timezone.now()
    with transaction.atomic():
        item = Feedback.objects.create(
            code=f"X{job['run']:05d}{i:05d}",
            category=job["cat_objs"][job["cats"][i % job["n"]]],
            text=f"Phản ánh thử số {i} về hạ tầng trước nhà.",
            unit_id=units[i % len(units)],
            place_unit_id=units[i % len(units)],
            received_at=now,
            assigned_at=now,
            forward_due=now,
            answer_due=now,
        )
        Event.objects.create(feedback=item, kind="received", at=now, unit_id=item.unit_id)


WRITERS = {"service": _submit, "baseline": _create}


def intake(n: int, clients: int, processes: int, rng: random.Random) -> dict:
    from dieuhanh.feedback import services
    from dieuhanh.feedback.models import Category
    from dieuhanh.units.models import Unit

    addresses = [
        "Phường Bến Thành, Thành phố Hồ Chí Minh",
        "Phường Sài Gòn, Thành phố Hồ Chí Minh",
        "Phường Bến Nghé, Quận 1, Thành phố Hồ Chí Minh",
        "Phường Hàng Trống, Quận Hoàn Kiếm, Hà Nội",
        "Phường Hoàn Kiếm, Thành phố Hà Nội",
        "Xã Đông Anh, Thành phố Hà Nội",
    ]
    communes = list(Unit.objects.filter(edition_id="VN-2025", kind="commune").values_list("lat", "lon"))
    categories = list(Category.objects.values_list("code", flat=True))
    places: list[tuple[float | None, float | None, str]] = []
    for i in range(n):
        if i % 3 == 0:
            places.append((None, None, addresses[rng.randrange(len(addresses))]))
        else:
            lat, lon = communes[rng.randrange(len(communes))]
            places.append((lat + rng.uniform(-0.01, 0.01), lon + rng.uniform(-0.01, 0.01), ""))
    cats = [rng.choice(categories) for _ in range(n)]
    run = int(time.time()) % 10**5  # a kept database's earlier runs had other senders and codes
    _JOB.clear()
    _JOB.update(
        n=n,
        places=places,
        cats=cats,
        run=run,
        senders=[f"2001:db8:{run:x}::{i:x}" for i in range(3 * n)],  # documentation addresses
        units=list(
            Unit.objects.filter(edition_id="VN-2025", kind="commune").values_list("id", flat=True)[:n]
        ),
    )
    # Warm-up: the parser's first import and the commune centres.
    services.route(services.Place(*places[1]))
    services.route(services.Place(address=addresses[0]))
    routing = []
    for place in places:
        t = time.perf_counter()
        services.route(services.Place(*place))
        routing.append(time.perf_counter() - t)
    # One client: the first n senders; `clients` threads at once: the next n; `processes` processes
    # of clients / processes threads each, as `dieuhanh serve` runs a worker per core: the last n.
    found = {"n": n, "clients": clients, "processes": processes}
    for kind in WRITERS:
        found[f"{kind}_per_s"] = per_second(kind, range(n), 1)
        found[f"{kind}_concurrent_per_s"] = per_second(kind, range(n, 2 * n), clients)
        found[f"{kind}_processes_per_s"] = in_processes(kind, range(2 * n, 3 * n), processes, clients)
    return found | {"routing_p50_s": percentile(routing, 0.5), "routing_p95_s": percentile(routing, 0.95)}


def per_second(kind: str, numbers: range, clients: int) -> float:
    """Calls the writer for every number, from `clients` threads at once (each its own connection); per s."""
    from django.db import connections

    write = WRITERS[kind]

    def work(part: range) -> None:
        try:
            for i in part:
                write(i)
        finally:
            connections.close_all()

    start = time.perf_counter()
    if clients == 1:
        for i in numbers:
            write(i)
    else:
        with ThreadPoolExecutor(clients) as pool:
            for done in [pool.submit(work, numbers[k::clients]) for k in range(clients)]:
                done.result()
    return len(numbers) / (time.perf_counter() - start)


def _process(kind: str, job: dict, part: range, threads: int, ready, go, done) -> None:
    """A spawned process: Django set up from the run's environment, then its part once all are ready."""
    from bench.common import setup_django

    setup_django()
    _JOB.update(job)
    from dieuhanh.feedback import services

    services.route(services.Place(address="Phường Bến Thành, Thành phố Hồ Chí Minh"))  # the parser's import
    ready.release()
    go.wait()
    per_second(kind, part, threads)
    done.release()  # before the interpreter's exit, which is not the intake's time


def in_processes(kind: str, numbers: range, processes: int, clients: int) -> float:
    """The writer from `processes` spawned processes at once, clients / processes threads each; per s
    from the moment all are set up to the last one's end."""
    import multiprocessing

    spawn = multiprocessing.get_context("spawn")
    ready, go, done = spawn.Semaphore(0), spawn.Event(), spawn.Semaphore(0)
    job = {k: v for k, v in _JOB.items() if k != "cat_objs"}
    threads = max(1, clients // processes)
    started = [
        spawn.Process(target=_process, args=(kind, job, numbers[k::processes], threads, ready, go, done))
        for k in range(processes)
    ]
    for process in started:
        process.start()
    for _ in started:
        ready.acquire()
    start = time.perf_counter()
    go.set()
    for _ in started:
        while not done.acquire(timeout=1):
            if not any(p.is_alive() for p in started):
                raise SystemExit(f"an intake process failed ({kind})")
    seconds = time.perf_counter() - start
    for process in started:
        process.join()
    return len(numbers) / seconds


def timed_requests(client, paths: list[tuple[str, dict]], headers: dict | None = None) -> list[float]:
    found = []
    for path, params in paths:
        t = time.perf_counter()
        r = client.get(path, params, **(headers or {}))
        found.append(time.perf_counter() - t)
        assert r.status_code == 200, (path, params, r.status_code, r.content[:200])
    return found


def queue(samples: int, rng: random.Random) -> dict:
    from django.db import connection
    from django.test import Client

    from dieuhanh.accounts.services import create_token, create_user
    from dieuhanh.units.models import Unit

    communes = list(Unit.objects.filter(edition_id="VN-2025", kind="commune"))
    provinces = list(Unit.objects.filter(edition_id="VN-2025", kind="province"))
    chosen = rng.sample(communes, samples) + rng.sample(provinces, max(1, samples // 4))
    service, baseline, kinds = [], [], []
    for n, unit in enumerate(chosen):
        user = create_user(
            actor=None,
            # The run's own suffix: a reused database holds the users of the runs before.
            username=f"bench-op-{n}-{rng.randrange(10**9)}-{secrets.token_hex(3)}",
            password="bench-password-1",  # noqa: S106 (a scratch database's user)
            grants=[(unit, "operator")],
            validate=False,
        )
        _, token = create_token(actor=None, user=user, name="bench")
        client = Client(headers={"Authorization": f"Bearer {token}"})
        client.get("/api/v1/feedback", {"unit": unit.ref, "limit": 1})  # the token's last-used write
        service += timed_requests(client, [("/api/v1/feedback", {"unit": unit.ref})])
        kinds.append(unit.kind)
        ids = list(Unit.objects.under(unit).values_list("id", flat=True))
        t = time.perf_counter()
        with connection.cursor() as cursor:
            marks = ", ".join(["%s"] * len(ids))
            cursor.execute(
                f"SELECT id, code, text, status, answer_due FROM feedback_feedback WHERE unit_id IN ({marks})"
                " AND status <> 'merged' ORDER BY answer_due, id LIMIT 100",
                ids,
            )
            cursor.fetchall()
            cursor.execute(  # counted up to the cap, as the service does (services.capped_count)
                "SELECT count(*) FROM (SELECT 1 FROM feedback_feedback"
                f" WHERE unit_id IN ({marks}) AND status <> 'merged' LIMIT 10001) AS capped",
                ids,
            )
            cursor.fetchall()
        baseline.append(time.perf_counter() - t)
    return {"samples": len(chosen), "service": service, "baseline": baseline, "kinds": kinds}


def of_kind(q: dict, kind: str) -> tuple[list[float], list[float]]:
    """The queue's timings (service, baseline) for the communes' or the provinces' samples alone."""
    picked = [i for i, k in enumerate(q["kinds"]) if k == kind]
    return [q["service"][i] for i in picked], [q["baseline"][i] for i in picked]


def public(samples: int, rng: random.Random) -> dict:
    from django.db import connection
    from django.test import Client

    from dieuhanh.feedback.models import Category
    from dieuhanh.units.models import Unit

    names = list(Unit.objects.filter(edition_id="VN-2025", kind="commune").values_list("name", flat=True))
    categories = list(Category.objects.values_list("code", flat=True))
    paths = []
    for i in range(samples):
        kind = i % 4
        if kind == 0:
            paths.append(("/phan-anh/cong-khai/", {}))
        elif kind == 1:
            paths.append(("/phan-anh/cong-khai/", {"trang": str(rng.randint(2, 10))}))
        elif kind == 2:
            paths.append(("/phan-anh/cong-khai/", {"q": rng.choice(names)}))
        else:
            paths.append(("/phan-anh/cong-khai/", {"linh-vuc": rng.choice(categories)}))
    client = Client()
    client.get("/phan-anh/cong-khai/")
    service = timed_requests(client, paths)
    baseline = []
    for _ in range(samples):
        t = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT id, code, text, answer, answered_at FROM feedback_feedback WHERE status = 'answered'"
                " ORDER BY answered_at DESC, id DESC LIMIT 20"
            )
            cursor.fetchall()
        baseline.append(time.perf_counter() - t)
    return {"samples": samples, "service": service, "baseline": baseline}


def main() -> None:
    parser = options(__doc__, reuse="keep the scratch database; use the reports it holds next time")
    parser.add_argument("--reports", type=int, default=1_000_000)
    parser.add_argument("--intake", type=int, default=500)
    parser.add_argument("--samples", type=int, default=40)
    parser.add_argument("--clients", type=int, default=4, help="intake's concurrent clients (threads)")
    parser.add_argument("--processes", type=int, default=2, help="intake's processes (the clients split)")
    parser.add_argument("--seed", type=int, default=20)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with scratch_here(args, "feedback", env={"DIEUHANH_LIVE": "local"}) as pg:
        from django.core.management import call_command

        from dieuhanh.feedback.models import Feedback
        from dieuhanh.units.services import load_units

        t = time.perf_counter()
        call_command("migrate", verbosity=0)
        if args.reuse and Feedback.objects.exists():
            filled = {"reports": Feedback.objects.count(), "seconds": 0, "reused": True}
            args.reports = filled["reports"]
        else:
            load_units()
            log(f"migrated and units loaded in {time.perf_counter() - t:.0f} s")
            filled = fill(args.reports, rng)
        log(f"{args.reports:,} reports stored ({filled['seconds']:.0f} s to fill)")
        taken = intake(args.intake, args.clients, args.processes, rng)
        log(f"intake: {taken}")
        q = queue(args.samples, rng)
        log(f"queue p50/p95 {percentile(q['service'], 0.5):.4f}/{percentile(q['service'], 0.95):.4f} s")
        p = public(args.samples, rng)
        log(f"public p50/p95 {percentile(p['service'], 0.5):.4f}/{percentile(p['service'], 0.95):.4f} s")
    load = os.getloadavg()
    ms = lambda s: f"{s * 1000:.1f} ms"  # noqa: E731
    grid = [
        ["feedback bench", f"{args.db}, {args.reports:,} stored reports", "baseline", "ratio", "goal"],
        *(
            [
                f"intake + routing, {label}",
                f"{taken[f'service{key}_per_s']:.0f} reports/s",
                f"{taken[f'baseline{key}_per_s']:.0f} rows/s (create)",
                f"{taken[f'baseline{key}_per_s'] / taken[f'service{key}_per_s']:.1f}x slower",
                "200/s",
            ]
            for label, key in (
                ("one client", ""),
                (f"{taken['clients']} clients at once", "_concurrent"),
                (
                    f"{taken['processes']} processes x {max(1, taken['clients'] // taken['processes'])}",
                    "_processes",
                ),
            )
        ),
        ["routing alone p95", ms(taken["routing_p95_s"]), "", "", "< 1 s"],
        *(
            [
                f"{label} queue p50 / p95",
                f"{ms(percentile(s, 0.5))} / {ms(percentile(s, 0.95))}",
                f"{ms(percentile(b, 0.5))} / {ms(percentile(b, 0.95))} (SQL)",
                f"{percentile(s, 0.95) / percentile(b, 0.95):.1f}x",
                "< 100 ms p95",
            ]
            for label, (s, b) in (
                ("a commune's", of_kind(q, "commune")),
                ("a province's", of_kind(q, "province")),
            )
        ),
        [
            "public page p50 / p95",
            f"{ms(percentile(p['service'], 0.5))} / {ms(percentile(p['service'], 0.95))}",
            f"{ms(percentile(p['baseline'], 0.5))} / {ms(percentile(p['baseline'], 0.95))} (SQL)",
            f"{percentile(p['service'], 0.95) / percentile(p['baseline'], 0.95):.1f}x",
            "< 200 ms p95",
        ],
    ]
    print(render_table(grid))
    print(f"\nload average during the run's end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (2 cores, shared)")
    write_results(
        f"feedback-{args.db}",
        {
            "machine": machine(pg),
            "args": vars(args),
            "fill": filled,
            "intake": taken,
            "queue": q,
            "public": p,
            "load": load,
        },
    )


if __name__ == "__main__":
    main()
