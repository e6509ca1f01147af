"""Benchmark: directives — fan-out to every commune, and the inbox and the room's status with many
deliveries stored (DESIGN.md §6).

    .venv/bin/python bench/directives.py [--db sqlite|pg|both] [--deliveries N] [--repeat N]
                                         [--samples N] [--seed S] [--profile] [--pg-url URL]

Each database runs in a child process of this script (`--child sqlite|pg`) with its own scratch
database (PostgreSQL: `dieuhanh_bench_directives`, created for the run and dropped after it;
SQLite: a file in a temporary DIEUHANH_HOME) and DIEUHANH_* environment; the child prints
its figures as one JSON line and the parent prints the table and writes bench/results/directives.json.
While a child runs, the parent samples the machine's load average and PostgreSQL's active backends in
other databases every few seconds, since another benchmark or a test run may share the machine: the
table shows both, and figures taken under load are to be read with them.

In each child, on a database migrated, with the units loaded and a leader granted the VN-2021 nation:
- fan-out: `issue_directive` to `Targets(units=("VN-2021:VN",), level="commune")`, i.e. every leaf
  of the 2021 map (its communes and the island districts without communes), one untimed warm-up
  then --repeat timed issues (each its own transaction, commit included, with what the verb calls to
  announce itself: its live events, `directives.live.directive_changed`, and its queued messages after
  commit, `followup.directive_changed`; both timed apart by wrapping them);
- baselines, interleaved with the timed issues (so that a passing load hits all three alike), on the
  same deliveries (unit, province) as the service's, for a directive created before the clock: one
  `Delivery.objects.create(...)` per row inside one transaction (NAIVE_REPEAT times: it is slow), and
  `Delivery.objects.bulk_create(...)` of the same rows (--repeat times); the clock covers building
  the instances, the writes and the commit. The service does more than the baselines (it also
  resolves the targets, writes the directive, its revision and an audit row, and queues the
  notifications): the ratios flatter the baselines;
- fill, up to --deliveries rows in the delivery table, THROUGH THE SERVICE (`issue_directive` with
  `now=` in the past, listeners included): FILL_NATIONAL of the rows in directives to every commune
  by the national leader, the rest in directives of each province's leader to its own communes
  (round robin), issued in time order over HISTORY_DAYS days before the run; kinds, priorities and
  deadlines drawn with --seed (some deadlines past; 30% requests for report with a number question).
  Then their progress, drawn per delivery with --seed and written by bulk UPDATE (chunks of ids):
  read / acknowledged / responded more often the older the directive, responded mostly for reports;
  some overdue ones escalated; one Response row per responded delivery (INSERT … SELECT). PostgreSQL
  is then VACUUM ANALYZEd (as autovacuum would); SQLite is left as the application leaves it (the
  project never runs ANALYZE);
- inbox: --samples communes drawn with --seed, each with an operator (an `operator` grant on it) and
  a bearer token; `GET /api/v1/inbox` (first page of PAGE items and the unread count) through
  Django's test Client (the full middleware and ninja stack, without a socket), one request per
  commune, each checked (items, unread) against the table; the token's once-a-minute last-used write
  is done before the clock. The service's two queries alone (`inbox(user)[:PAGE]` and the unread
  count, as the route runs them) are timed too, so that the rest of the route shows;
- status: `status(directive, area)` for the national leader (area: everything) over directives to
  every commune, twice (a call slow both times is the data's doing), and for province leaders (area:
  their province) over the same directives, each checked against the table; and the national
  leader's `GET /api/v1/directives/{id}` (the directive and its status, what the room opens);
- diagnosis, always: the queries one inbox request makes (by shape), the SQL of the service's inbox
  and status queries with the database's plan (EXPLAIN (ANALYZE, BUFFERS) on PostgreSQL, EXPLAIN
  QUERY PLAN on SQLite), the status's for the newest, the oldest late and the slowest directive; and
  a CANDIDATE inbox query (`candidate_inbox_queries`, not the application's) timed beside the
  service's for the commune operators and DISTRICTS district operators (who also see escalations),
  its answers checked equal;
- with --profile: cProfile over one more fan-out and PROFILE_REQUESTS inbox requests.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import random
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

from common import (  # bench/ is on sys.path
    GcWatch,
    child_django,
    child_output,
    goals_text,
    log,
    options,
    percentile,
    print_skipped,
    render_table,
    run_databases,
    spread,
    timed,
    write_run,
)

NATION_REF = "VN-2021:VN"
PAGE = 50  # the inbox route's default page
NAIVE_REPEAT = 3
FILL_NATIONAL = 0.8  # share of the filled rows in national directives; the rest from the provinces
HISTORY_DAYS = 180
UPDATE_CHUNK = 5_000  # ids per bulk UPDATE
PROFILE_REQUESTS = 20
DISTRICTS = 30  # district operators (escalations from their communes reach them) for the diagnosis
PROFILE_TOP = 30
# The issue's goals on this machine.
GOAL_FAN_OUT_S, GOAL_P95_MS = 1.0, 50.0


# ---------------------------------------------------------------- child: setup


def prepare() -> dict:
    """Migrate, load the units, a national leader and a clerk (who reads and answers in the fill)."""
    from django.core.management import call_command

    from dieuhanh.accounts.services import create_user
    from dieuhanh.units.models import Unit
    from dieuhanh.units.services import load_units

    _, migrate_s = timed(call_command, "migrate", verbosity=0)
    log("  load_units() …")
    _, units_s = timed(load_units)
    nation = Unit.objects.ref(NATION_REF)
    leader = create_user(
        actor=None, username="bench-leader", password=None, grants=[(nation, "leader")], validate=False
    )
    clerk = create_user(actor=None, username="bench-clerk", password=None, validate=False)
    leaves = Unit.objects.under(nation).leaves().count()
    communes = Unit.objects.under(nation).filter(kind="commune").count()
    return {
        "setup": {"migrate_s": migrate_s, "load_units_s": units_s},
        "leader": leader,
        "clerk": clerk,
        "nation": nation,
        "targets": leaves,
        "communes": communes,
    }


def national_input(title: str, **extra):
    from dieuhanh.directives.services import DirectiveInput, Targets

    return DirectiveInput(
        title=title,
        body="Triển khai ngay các biện pháp phòng, chống dịch theo hướng dẫn kèm theo.",
        targets=Targets(units=(NATION_REF,), level="commune"),
        **extra,
    )


def deliveries_of(directive) -> int:
    from dieuhanh.directives.models import Delivery

    return Delivery.objects.filter(directive=directive).count()


# ---------------------------------------------------------------- child: fan-out and its baselines


def bench_fan_out(ctx: dict, repeat: int) -> dict:
    from dieuhanh.directives.services import issue_directive

    leader, targets = ctx["leader"], ctx["targets"]
    log(f"  fan-out: 1 warm-up + {repeat} issues to {targets:,} units, baselines interleaved …")
    warm, cold_s = timed(issue_directive, actor=leader, data=national_input("Khởi động"))
    expect(deliveries_of(warm), targets, "the warm-up issue")
    rows = list(warm.deliveries.order_by("id").values_list("unit_id", "province_id"))
    service, naive, bulk = [], [], []
    listeners: dict[str, list[float]] = {}
    for i in range(repeat):
        with ListenerTimer() as spent:
            directive, seconds = timed(
                issue_directive, actor=leader, data=national_input(f"Công điện {i + 1}")
            )
        expect(deliveries_of(directive), targets, f"issue {i + 1}")
        service.append(seconds)
        for name, s in spent.items():
            listeners.setdefault(name, []).append(s)
        if i < NAIVE_REPEAT:
            naive.append(baseline(warm, rows, bulk=False))
        bulk.append(baseline(warm, rows, bulk=True))
    after_commit = [sum(each) for each in zip(*listeners.values(), strict=True)] or [0.0] * repeat
    transaction_s = [s - a for s, a in zip(service, after_commit, strict=True)]
    return {
        "fan_out_cold_s": cold_s,
        "fan_out": spread(service),
        "fan_out_transaction": spread(transaction_s),
        "fan_out_listeners": {name: spread(s) for name, s in listeners.items()},
        "naive_create": spread(naive),
        "bulk_create": spread(bulk),
        "fan_out_vs_naive": statistics_ratio(naive, service),
        "fan_out_vs_bulk": statistics_ratio(bulk, service),
        "transaction_vs_naive": statistics_ratio(naive, transaction_s),
        "transaction_vs_bulk": statistics_ratio(bulk, transaction_s),
    }


class ListenerTimer:
    """Seconds spent in what a directive's verb calls to announce itself (its live events, in its
    transaction; its messages, after its commit), by wrapping them for the block."""

    def __enter__(self) -> dict[str, float]:
        from dieuhanh.directives import followup, live

        self.original = [(module, module.directive_changed) for module in (live, followup)]
        self.spent: dict[str, float] = {}
        for module, fn in self.original:
            module.directive_changed = self._timer(fn)
        return self.spent

    def _timer(self, fn):
        name = f"{fn.__module__}.{fn.__qualname__}"

        def wrapper(*args):
            start = time.perf_counter()
            try:
                return fn(*args)
            finally:
                self.spent[name] = self.spent.get(name, 0.0) + time.perf_counter() - start

        return wrapper

    def __exit__(self, *exc) -> None:
        for module, fn in self.original:
            module.directive_changed = fn


def statistics_ratio(baseline_s: list[float], service_s: list[float]) -> float:
    """How many times faster the service is than the baseline (p50 over p50)."""
    return percentile(baseline_s, 0.5) / percentile(service_s, 0.5)


def baseline(template, rows: list[tuple[int, int]], *, bulk: bool) -> float:
    """Seconds to store the rows as deliveries of a new directive (made before the clock) through the ORM."""
    from django.db import transaction
    from django.utils import timezone

    from dieuhanh.directives.models import Delivery, Directive

    directive = Directive.objects.create(
        title=f"{'bulk_create' if bulk else 'create'} baseline",
        body=template.body,
        issuer_unit_id=template.issuer_unit_id,
        issued_by_id=template.issued_by_id,
        issued_at=timezone.now(),
        targets=template.targets,
        edition_id=template.edition_id,
    )
    now = directive.issued_at
    start = time.perf_counter()
    with transaction.atomic():
        if bulk:
            Delivery.objects.bulk_create(
                [
                    Delivery(
                        directive=directive, unit_id=unit, province_id=province, state="sent", sent_at=now
                    )
                    for unit, province in rows
                ]
            )
        else:
            for unit, province in rows:
                Delivery.objects.create(
                    directive=directive, unit_id=unit, province_id=province, state="sent", sent_at=now
                )
    seconds = time.perf_counter() - start
    expect(deliveries_of(directive), len(rows), "bulk_create" if bulk else "the naive create")
    return seconds


def expect(found: int, wanted: int, what: str) -> None:
    if found != wanted:
        raise SystemExit(f"FAIL: {what}: {found:,} deliveries, not {wanted:,}")


# ---------------------------------------------------------------- child: fill and progress


def leaves_per_province(nation) -> dict[str, int]:
    from dieuhanh.units.models import Unit

    paths = Unit.objects.under(nation).leaves().values_list("path", flat=True)
    return dict(Counter(path.split("/")[2] for path in paths))


def province_leaders(nation) -> list[tuple[object, object]]:
    """(leader, province) for each province of the 2021 map."""
    from dieuhanh.accounts.services import create_user
    from dieuhanh.units.models import Unit

    provinces = Unit.objects.under(nation).filter(level=1).order_by("code")
    return [
        (
            create_user(
                actor=None,
                username=f"bench-leader-{p.code}",
                password=None,
                grants=[(p, "leader")],
                validate=False,
            ),
            p,
        )
        for p in provinces
    ]


def fill(ctx: dict, target_rows: int, seed: int) -> dict:
    """Directives through the service, issued in the past, until the table holds about target_rows."""
    from dieuhanh.directives.models import Delivery
    from dieuhanh.directives.services import DirectiveInput, Targets, issue_directive

    rng = random.Random(seed)
    missing = max(0, target_rows - Delivery.objects.count())
    national = round(missing * FILL_NATIONAL / ctx["targets"])
    budget = missing - national * ctx["targets"]
    plan: list[tuple[object, object | None]] = [(ctx["leader"], None)] * national
    leaders, per_province = ctx["province_leaders"], ctx["per_province"]
    while budget > 0:
        leader, province = leaders[len(plan) % len(leaders)]
        plan.append((leader, province))
        budget -= per_province[province.code]
    rng.shuffle(plan)
    log(
        f"  fill: {len(plan):,} directives ({national} national, {len(plan) - national:,} provincial)"
        f" through issue_directive, towards {target_rows:,} deliveries …"
    )
    now = datetime.now(UTC)
    first = now - timedelta(days=HISTORY_DAYS)
    start = last_log = time.perf_counter()
    for n, (leader, province) in enumerate(plan):
        issued = first + timedelta(days=HISTORY_DAYS * n / len(plan))
        kind = rng.choices(["directive", "report_request", "notice"], [0.6, 0.3, 0.1])[0]
        form = (
            [{"key": "so_ca", "label": "Số ca mắc mới", "type": "number"}] if kind == "report_request" else []
        )
        has_deadline = kind != "notice" or rng.random() < 0.3
        data = DirectiveInput(
            title=f"Chỉ đạo {n + 1}",
            body="Nội dung chỉ đạo.",
            targets=Targets(units=(NATION_REF if province is None else province.ref,), level="commune"),
            priority="urgent" if rng.random() < 0.1 else "normal",
            kind=kind,
            requires_ack=kind != "notice",
            deadline=issued + timedelta(days=rng.randint(2, 14)) if has_deadline else None,
            form=form,
        )
        issue_directive(actor=leader, data=data, now=issued)
        if time.perf_counter() - last_log > 30:
            last_log = time.perf_counter()
            log(f"    {n + 1:,}/{len(plan):,} directives, {last_log - start:,.0f} s")
    issue_s = time.perf_counter() - start
    log("  fill: progress (bulk UPDATE), responses …")
    states, progress_s = timed(progress, ctx["clerk"], now, seed)
    _, analyze_s = timed(analyze)
    total = Delivery.objects.count()
    log(f"  fill: {total:,} deliveries; issue {issue_s:.0f} s, progress {progress_s:.0f} s")
    return {
        "fill_directives": len(plan),
        "fill_national": national,
        "fill_issue_s": issue_s,
        "fill_progress_s": progress_s,
        "analyze_s": analyze_s,
        "deliveries": total,
        **states,
    }


def progress(clerk, now: datetime, seed: int) -> dict:
    """States drawn per delivery (older directives further on), written by bulk UPDATE; responses."""
    from django.db import connection
    from django.db.models import Count

    from dieuhanh.directives.models import Delivery, Directive, Response

    rng = random.Random(seed + 1)
    directives = {
        d.pk: d for d in Directive.objects.only("id", "issued_at", "kind", "form", "deadline", "requires_ack")
    }
    chosen: dict[tuple[int, str, bool], list[int]] = {}
    for delivery_id, directive_id in (
        Delivery.objects.order_by("id").values_list("id", "directive_id").iterator(chunk_size=50_000)
    ):
        d = directives[directive_id]
        age = (now - d.issued_at).total_seconds() / 86_400
        read = min(0.95, 0.25 + 0.1 * age)
        acked = read * (0.9 if d.requires_ack else 0.0)
        answered = acked * (0.8 if d.needs_response else 0.05)
        r = rng.random()
        state = (
            "responded" if r < answered else "acknowledged" if r < acked else "read" if r < read else "sent"
        )
        late = d.deadline is not None and d.deadline < now and d.requires_ack
        escalated = late and state in ("sent", "read") and rng.random() < 0.3
        if state != "sent" or escalated:
            chosen.setdefault((directive_id, state, escalated), []).append(delivery_id)
    table = connection.ops.quote_name(Delivery._meta.db_table)
    updated = 0
    with connection.cursor() as cursor:
        for (directive_id, state, escalated), ids in chosen.items():
            d = directives[directive_id]
            opened, acknowledged = state != "sent", state in ("acknowledged", "responded")
            values = {
                "state": state,
                "read_at": d.issued_at + timedelta(hours=2) if opened else None,
                "read_by_id": clerk.pk if opened else None,
                "acknowledged_at": d.issued_at + timedelta(hours=6) if acknowledged else None,
                "acknowledged_by_id": clerk.pk if acknowledged else None,
                "responded_at": d.issued_at + timedelta(days=1) if state == "responded" else None,
                "escalated_at": min(now, d.deadline + timedelta(days=1)) if escalated else None,
                "reminders": 2 if escalated else 0,
            }
            assignments = ", ".join(f"{name} = %s" for name in values)
            for first in range(0, len(ids), UPDATE_CHUNK):
                chunk = ids[first : first + UPDATE_CHUNK]
                cursor.execute(
                    f"UPDATE {table} SET {assignments} WHERE id IN ({', '.join(['%s'] * len(chunk))})",
                    [*values.values(), *chunk],
                )
                updated += cursor.rowcount
        response = connection.ops.quote_name(Response._meta.db_table)
        cursor.execute(
            f"INSERT INTO {response} (delivery_id, version, text, figures, by_id, at)"
            f" SELECT id, 1, 'Đã triển khai, báo cáo kèm theo.', '{{}}', %s, responded_at FROM {table}"
            " WHERE state = 'responded' ORDER BY id",
            [clerk.pk],
        )
        responses = cursor.rowcount
    states = dict(Delivery.objects.values_list("state").annotate(n=Count("id")).order_by())
    escalated = Delivery.objects.filter(escalated_at__isnull=False).count()
    return {"progress_updated": updated, "responses": responses, "states": states, "escalated": escalated}


def analyze() -> None:
    """PostgreSQL: VACUUM ANALYZE the database (units, deliveries, notifications …), as autovacuum would
    soon after such writes; SQLite is left as the application leaves it."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")


def table_sizes() -> dict[str, dict]:
    """Rows and bytes (table, indexes) of the tables the benchmark fills."""
    from django.db import connection

    from dieuhanh.accounts.models import AuditEntry
    from dieuhanh.directives.models import Delivery, Notification, Response

    sizes = {}
    with connection.cursor() as cursor:
        for model in (Delivery, Notification, Response, AuditEntry):
            table = model._meta.db_table
            entry: dict = {"rows": model.objects.count()}
            if connection.vendor == "postgresql":
                cursor.execute("SELECT pg_table_size(%s), pg_indexes_size(%s)", [table, table])
                entry["table_bytes"], entry["indexes_bytes"] = cursor.fetchone()
            sizes[table] = entry
        if connection.vendor == "sqlite":
            cursor.execute("SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()")
            sizes["database_bytes"] = {"bytes": cursor.fetchone()[0]}
    return sizes


# ---------------------------------------------------------------- child: inbox


def operators(nation, samples: int, seed: int, kind: str = "commune") -> list[tuple[object, object, str]]:
    """(user, unit, raw token) for `samples` units of the kind drawn with the seed; tokens used once."""
    from dieuhanh.accounts.services import create_token, create_user, user_for_token
    from dieuhanh.units.models import Unit

    units = list(Unit.objects.under(nation).filter(kind=kind).order_by("id"))
    found = []
    for unit in random.Random(seed + 2).sample(units, min(samples, len(units))):
        user = create_user(
            actor=None,
            username=f"bench-op-{unit.code}",
            password=None,
            grants=[(unit, "operator")],
            validate=False,
        )
        _, raw = create_token(actor=None, user=user, name="bench")
        user_for_token(raw)  # the once-a-minute last-used write, before the clock
        found.append((user, unit, raw))
    return found


def bench_inbox(ops: list[tuple[object, object, str]]) -> dict:
    from django.test import Client

    from dieuhanh.directives.models import Delivery

    log(f"  inbox: GET /api/v1/inbox for {len(ops)} commune operators …")
    client = Client()
    get_inbox(client, ops[-1][2])  # warm-up: imports, the URL resolver, the connection
    route, sizes = [], []
    watch = GcWatch()
    for _user, commune, raw in ops:
        with watch:
            body, seconds = timed(get_inbox, client, raw)
        route.append(seconds)
        mine = Delivery.objects.filter(unit=commune)
        items, unread = min(PAGE, mine.count()), mine.filter(state="sent").count()
        if len(body["items"]) != items or body["unread"] != unread:
            raise SystemExit(
                f"FAIL: inbox of {commune.ref}: {len(body['items'])} items and {body['unread']} unread,"
                f" not {items} and {unread}"
            )
        if any(i["unit"] != commune.ref for i in body["items"]):
            raise SystemExit(f"FAIL: inbox of {commune.ref} shows another unit's delivery")
        sizes.append(mine.count())
    log("  inbox: the service's queries alone …")
    service = [timed(inbox_queries, user)[1] for user, _commune, _raw in ops]
    return {
        "inbox_route": spread(route),
        "inbox_service": spread(service),
        "inbox_route_gc": watch.report(),
        "inbox_deliveries_per_commune": {
            "min": min(sizes),
            "median": percentile(sizes, 0.5),
            "max": max(sizes),
        },
    }


def get_inbox(client, raw: str) -> dict:
    response = client.get("/api/v1/inbox", headers={"Authorization": f"Bearer {raw}"})
    if response.status_code != 200:
        raise SystemExit(f"FAIL: GET /api/v1/inbox: HTTP {response.status_code}: {response.content[:300]!r}")
    return response.json()


def inbox_queries(user) -> tuple[list, int]:
    """What the route asks the service, in its order: the unread count, then the first page."""
    from dieuhanh.directives import services

    items = services.inbox(user)
    unread = items.filter(state="sent", unit_id__in=services.own_units(user)).count()
    return list(items[:PAGE]), unread


# ---------------------------------------------------------------- child: status


def bench_status(ctx: dict, samples: int, seed: int) -> dict:
    from django.test import Client
    from django.utils import timezone

    from dieuhanh.accounts.services import create_token
    from dieuhanh.directives.models import Directive
    from dieuhanh.directives.services import status

    national = list(Directive.objects.filter(issuer_unit=ctx["nation"]).order_by("id"))
    chosen = random.Random(seed + 3).sample(national, min(samples, len(national)))
    leader, leaders, per_province = ctx["leader"], ctx["province_leaders"], ctx["per_province"]
    log(f"  status: {len(chosen)} directives to every commune, national and province views …")
    status(chosen[0], leader.area())  # warm-up
    nation_s, province_s, route_s = [], [], []
    watch = GcWatch()
    for i, directive in enumerate(chosen):
        with watch:
            found, seconds = timed(status, directive, leader.area())
        nation_s.append(seconds)
        if found["total"] != ctx["targets"] or len(found["provinces"]) != len(leaders):
            raise SystemExit(f"FAIL: national status of #{directive.pk}: {found['total']:,} deliveries")
        province_leader, province = leaders[i % len(leaders)]
        found, seconds = timed(status, directive, province_leader.area())
        province_s.append(seconds)
        if found["total"] != per_province[province.code] or len(found["provinces"]) != 1:
            raise SystemExit(
                f"FAIL: status of #{directive.pk} in {province.ref}: {found['total']:,} deliveries"
            )
    # Again, the same directives in the same order: a slow call that is slow again is the data's doing,
    # one that is not was the machine's (another process, the page cache).
    again = [timed(status, directive, leader.area())[1] for directive in chosen]
    late = [d.deadline is not None and d.deadline < timezone.now() and d.requires_ack for d in chosen]
    _, raw = create_token(actor=None, user=leader, name="bench")
    client = Client(headers={"Authorization": f"Bearer {raw}"})
    get_directive(client, chosen[0].pk)
    for directive in chosen:
        body, seconds = timed(get_directive, client, directive.pk)
        route_s.append(seconds)
        if body["status"]["total"] != ctx["targets"]:
            raise SystemExit(f"FAIL: GET /api/v1/directives/{directive.pk}: {body['status']['total']:,}")
    return {
        "status_directives": len(chosen),
        "status_national": spread(nation_s),
        "status_national_gc": watch.report(),
        "status_national_again": spread(again),
        "status_national_late": spread(
            [s for s, is_late in zip(nation_s, late, strict=True) if is_late] or [0.0]
        ),
        "status_national_not_late": spread(
            [s for s, is_late in zip(nation_s, late, strict=True) if not is_late] or [0.0]
        ),
        "status_directive_ids": [d.pk for d in chosen],
        "status_province": spread(province_s),
        "status_route": spread(route_s),
    }


def get_directive(client, directive_id: int) -> dict:
    response = client.get(f"/api/v1/directives/{directive_id}")
    if response.status_code != 200:
        raise SystemExit(f"FAIL: GET /api/v1/directives/{directive_id}: HTTP {response.status_code}")
    return response.json()


# ---------------------------------------------------------------- child: the queries and their plans


def queries_of(fn, *args) -> list[dict]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        fn(*args)
    return [{"sql": q["sql"], "ms": float(q["time"]) * 1e3} for q in captured.captured_queries]


def shape(sql: str) -> str:
    """A query without its literals, to count the repeats of one statement."""
    import re

    sql = re.sub(r"'[^']*'", "?", sql)
    return re.sub(r"\b\d+\b", "?", sql)[:160]


def plan(sql: str) -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
            return "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute("EXPLAIN QUERY PLAN " + sql)
        return "\n".join(str(row[-1]) for row in cursor.fetchall())


def candidate_inbox_queries(user) -> tuple[list, int]:
    """A CANDIDATE for services.inbox, not the application's code: the units below the user's looked up
    first, so that both branches of the OR are plain lists on delivery.unit_id, which its index serves
    (SQLite: MULTI-INDEX OR; PostgreSQL: BitmapOr; a subquery in the OR defeats PostgreSQL's). The same
    rows, order and unread count otherwise."""
    from django.db.models import Q

    from dieuhanh.directives import services
    from dieuhanh.directives.models import Delivery
    from dieuhanh.units.models import Unit

    units = services.own_units(user)
    below = list(Unit.objects.filter(parent_id__in=units).values_list("id", flat=True))
    items = (
        Delivery.objects.filter(Q(unit_id__in=units) | Q(escalated_at__isnull=False, unit_id__in=below))
        .select_related("directive", "unit", "directive__issuer_unit")
        .order_by("directive__priority", "-sent_at", "-id")
    )
    unread = items.filter(state="sent", unit_id__in=units).count()
    return list(items[:PAGE]), unread


def compare_candidate(groups: dict[str, list]) -> dict:
    """The service's inbox queries beside the candidate's, per group of users, alternating which runs
    first; the pages and unread counts must be equal."""
    found = {}
    for name, ops in groups.items():
        current, candidate = [], []
        for i, (user, unit, _raw) in enumerate(ops):
            runs = [(inbox_queries, current), (candidate_inbox_queries, candidate)]
            answers = []
            for fn, times in runs if i % 2 else reversed(runs):
                (items, unread), seconds = timed(fn, user)
                times.append(seconds)
                answers.append(([d.pk for d in items], unread))
            if answers[0] != answers[1]:
                raise SystemExit(f"FAIL: the candidate inbox query differs for {unit.ref}")
        found[name] = {"service": spread(current), "candidate": spread(candidate)}
    return found


def diagnose(ctx: dict, ops: list, district_ops: list, slowest: int) -> dict:
    """The queries of one inbox request and of the service's inbox and status calls (the newest national
    directive, the oldest late one, the slowest of the status samples), with their plans; a candidate
    inbox query beside the service's."""
    from django.test import Client
    from django.utils import timezone

    from dieuhanh.directives.models import Delivery, Directive
    from dieuhanh.directives.services import status

    log("  diagnosis: queries, plans, a candidate inbox query …")
    user, _commune, raw = ops[0]
    request = queries_of(get_inbox, Client(), raw)
    shapes = Counter(shape(q["sql"]) for q in request)
    service = queries_of(inbox_queries, user)
    district = max(
        district_ops,
        key=lambda o: Delivery.objects.filter(unit__parent=o[1], escalated_at__isnull=False).count(),
    )
    service += queries_of(inbox_queries, district[0])
    candidate = queries_of(candidate_inbox_queries, user) + queries_of(candidate_inbox_queries, district[0])
    province_leader = ctx["province_leaders"][0][0]
    national = Directive.objects.filter(issuer_unit=ctx["nation"])
    status_queries = []
    for directive in (
        national.order_by("-id").first(),  # the newest
        national.filter(deadline__lt=timezone.now(), requires_ack=True).order_by("id").first(),  # late
        national.get(pk=slowest),
    ):
        if directive is not None:
            status_queries += queries_of(status, directive, ctx["leader"].area())
            if directive.pk != slowest:
                status_queries += queries_of(status, directive, province_leader.area())
    delivery = '"directives_delivery"'
    explained = [
        {"what": what, "sql": q["sql"], "ms": q["ms"], "plan": plan(q["sql"])}
        for what, queries in (
            ("inbox service (commune, district)", service),
            ("CANDIDATE inbox (commune, district)", candidate),
            ("status (nation, province; the newest, the oldest late, the slowest (nation))", status_queries),
        )
        for q in queries
        if delivery in q["sql"].split(" WHERE ")[0]
    ]
    return {
        "inbox_request_queries": len(request),
        "inbox_request_query_ms": sum(q["ms"] for q in request),
        "inbox_request_shapes": [{"n": n, "sql": s} for s, n in shapes.most_common(12)],
        "explained": explained,
        "candidate": compare_candidate({"commune": ops, "district": district_ops}),
    }


def profile(ctx: dict, ops: list) -> dict:
    """cProfile over one fan-out (issue_directive to every commune) and PROFILE_REQUESTS inbox requests."""
    from django.test import Client

    from dieuhanh.directives.services import issue_directive

    log("  profile: one fan-out, inbox requests …")
    fan_out = cProfile.Profile()
    start = time.perf_counter()
    fan_out.runcall(issue_directive, actor=ctx["leader"], data=national_input("Hồ sơ"))
    fan_out_s = time.perf_counter() - start
    client = Client()
    requests = cProfile.Profile()
    chosen = ops[:PROFILE_REQUESTS]
    start = time.perf_counter()
    for _user, _commune, raw in chosen:
        requests.runcall(get_inbox, client, raw)
    inbox_s = time.perf_counter() - start
    return {
        "profile_fan_out_s": fan_out_s,
        "profile_fan_out": profile_texts(fan_out),
        "profile_requests": len(chosen),
        "profile_inbox_s": inbox_s,
        "profile_inbox": profile_texts(requests),
    }


def profile_texts(profiler: cProfile.Profile) -> dict[str, str]:
    texts = {}
    for order in ("cumulative", "tottime"):
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).strip_dirs().sort_stats(order).print_stats(PROFILE_TOP)
        text = out.getvalue()
        texts[order] = text[text.index("ncalls") :] if "ncalls" in text else text
    return texts


# ---------------------------------------------------------------- child entry


def run_child(args: argparse.Namespace) -> None:
    postgres = child_django(args)
    from dieuhanh.directives.models import Delivery

    ctx = prepare()
    result: dict = {
        "vendor": "postgresql" if postgres else "sqlite",
        "targets": ctx["targets"],
        "communes": ctx["communes"],
    }
    result |= ctx.pop("setup")
    result |= bench_fan_out(ctx, args.repeat)
    ctx["province_leaders"] = province_leaders(ctx["nation"])
    ctx["per_province"] = leaves_per_province(ctx["nation"])
    result |= fill(ctx, args.deliveries, args.seed)
    result["deliveries"] = Delivery.objects.count()
    result["sizes"] = table_sizes()
    ops = operators(ctx["nation"], args.samples, args.seed)
    result |= bench_inbox(ops)
    result |= bench_status(ctx, args.samples, args.seed)
    districts = operators(ctx["nation"], DISTRICTS, args.seed, kind="district")
    times = result["status_national"]["all_s"] + result["status_national_again"]["all_s"]
    ids = result["status_directive_ids"] * 2
    result |= diagnose(ctx, ops, districts, slowest=ids[times.index(max(times))])
    if args.profile:
        result |= profile(ctx, ops)
    child_output(result)


# ---------------------------------------------------------------- parent: the table, the goals, JSON


def ms(r: dict, key: str) -> str:
    return f"{r[key]['p50_s'] * 1e3:,.1f} / {r[key]['p95_s'] * 1e3:,.1f}" if key in r else "—"


def s_(r: dict, key: str) -> str:
    return f"{r[key]['p50_s']:.3f} / {r[key]['p95_s']:.3f}" if key in r else "—"


def load_cell(r: dict) -> str:
    load = r["concurrent_load"]
    others = ", ".join(f"{name} {share:.0%}" for name, share in load["pg_active_elsewhere_share"].items())
    median = load["load_1m_median"]
    return f"load {median:.1f}" + (f"; PG busy: {others}" if others else "") if median is not None else "—"


ROWS = [  # (label, cell)
    ("deliveries stored", lambda r: f"{r['deliveries']:,}"),
    ("units per national directive (communes + island districts)", lambda r: f"{r['targets']:,}"),
    ("fan-out: issue_directive p50 / p95, s", lambda r: s_(r, "fan_out")),
    ("  of which the transaction (to commit), s", lambda r: s_(r, "fan_out_transaction")),
    ("  of which announcing it (live, messages), s", lambda r: listeners_cell(r)),
    ("  first (cold) issue, s", lambda r: f"{r['fan_out_cold_s']:.3f}"),
    ("naive: Delivery.objects.create × n, p50 / p95, s", lambda r: s_(r, "naive_create")),
    ("bulk_create of the same rows, p50 / p95, s", lambda r: s_(r, "bulk_create")),
    ("ratio naive / fan-out (p50)", lambda r: f"{r['fan_out_vs_naive']:.1f}×"),
    ("ratio bulk_create / fan-out (p50)", lambda r: f"{r['fan_out_vs_bulk']:.1f}×"),
    ("ratio naive / the transaction part (p50)", lambda r: f"{r['transaction_vs_naive']:.1f}×"),
    ("ratio bulk_create / the transaction part (p50)", lambda r: f"{r['transaction_vs_bulk']:.1f}×"),
    ("fill: directives through the service (national), s", lambda r: fill_cell(r)),
    ("inbox: GET /api/v1/inbox p50 / p95, ms", lambda r: ms(r, "inbox_route")),
    ("  service queries alone (unread + page) p50 / p95, ms", lambda r: ms(r, "inbox_service")),
    ("  queries per request (their total ms)", lambda r: queries_cell(r)),
    ("  service p50 / p95 beside a candidate query: commune, ms", lambda r: candidate_cell(r, "commune")),
    ("  the same for district operators (escalations), ms", lambda r: candidate_cell(r, "district")),
    ("status: nation (63 provinces) p50 / p95, ms", lambda r: ms(r, "status_national")),
    ("  the same directives again, p50 / p95, ms", lambda r: ms(r, "status_national_again")),
    ("  late directives / the others (first pass), p50 / p95, ms", lambda r: late_cell(r)),
    ("status: one province's leader p50 / p95, ms", lambda r: ms(r, "status_province")),
    ("GET /api/v1/directives/{id} (nation) p50 / p95, ms", lambda r: ms(r, "status_route")),
    ("GC during inbox route / national status: gen-2 runs, pause s", lambda r: gc_cell(r)),
    ("concurrent load while running (median 1-min)", load_cell),
    ("wall time of the run, s", lambda r: f"{r['wall_s']:,.0f}"),
]


def fill_cell(r: dict) -> str:
    return f"{r['fill_directives']:,} ({r['fill_national']}), {r['fill_issue_s']:,.0f}"


def late_cell(r: dict) -> str:
    return f"{ms(r, 'status_national_late')} | {ms(r, 'status_national_not_late')}"


def gc_cell(r: dict) -> str:
    return " / ".join(
        f"{r[k]['collections'].get('gen2', 0)}, {r[k]['pause_s']:.2f}"
        for k in ("inbox_route_gc", "status_national_gc")
    )


def listeners_cell(r: dict) -> str:
    return (
        "; ".join(
            f"{name.rsplit('.', 2)[-2]} {spread_['p50_s']:.3f}"
            for name, spread_ in r["fan_out_listeners"].items()
        )
        or "none"
    )


def candidate_cell(r: dict, group: str) -> str:
    c = r["candidate"][group]
    return f"{ms(c, 'service')} → {ms(c, 'candidate')}"


def queries_cell(r: dict) -> str:
    return f"{r['inbox_request_queries']} ({r['inbox_request_query_ms']:.0f})"


def table(results: dict[str, dict]) -> str:
    names = list(results)
    grid = [["directives benchmark", *names]]
    grid += [[label, *(cell(results[n]) for n in names)] for label, cell in ROWS]
    return render_table(grid)


def goals(results: dict[str, dict]) -> dict[str, dict[str, bool]]:
    met = {}
    for name, r in results.items():
        met[name] = {
            f"fan-out p95 < {GOAL_FAN_OUT_S:g} s": r["fan_out"]["p95_s"] < GOAL_FAN_OUT_S,
            f"inbox (route) p95 < {GOAL_P95_MS:g} ms": r["inbox_route"]["p95_s"] * 1e3 < GOAL_P95_MS,
            f"status (nation) p95 < {GOAL_P95_MS:g} ms": r["status_national"]["p95_s"] * 1e3 < GOAL_P95_MS,
            f"status (province) p95 < {GOAL_P95_MS:g} ms": r["status_province"]["p95_s"] * 1e3 < GOAL_P95_MS,
        }
    return met


def details_text(name: str, r: dict) -> str:
    lines = [
        f"\n{name}: the queries of one GET /api/v1/inbox ({r['inbox_request_queries']} in all), by shape:"
    ]
    lines += [f"  {s['n']:4} × {s['sql']}" for s in r["inbox_request_shapes"]]
    for e in r["explained"]:
        lines.append(f"\n  {e['what']}: {e['ms']:.1f} ms\n    {e['sql']}")
        lines += ["      " + line for line in e["plan"].splitlines()]
    if "profile_inbox" in r:
        for what, key, seconds in (
            ("one fan-out (issue_directive to every commune)", "profile_fan_out", r["profile_fan_out_s"]),
            (f"{r['profile_requests']} GET /api/v1/inbox", "profile_inbox", r["profile_inbox_s"]),
        ):
            for order in ("cumulative", "tottime"):
                lines.append(f"\n  cProfile, {what}, {seconds:.2f} s under the profiler; by {order}:")
                lines += ["    " + line for line in r[key][order].rstrip().splitlines()]
    return "\n".join(lines)


def run_parent(args: argparse.Namespace) -> None:
    runs = run_databases(args, "directives", watch_load=True)
    results = runs.results
    met = goals(results)
    print(table(results))
    print(goals_text(met))
    print_skipped(runs)
    for name, r in results.items():
        print(details_text(name, r))
    write_run("directives", args, runs, goals=met)


def main() -> None:
    parser = options(__doc__, default="both", both=True)
    parser.add_argument(
        "--deliveries", type=int, default=1_000_000, help="rows in the delivery table to fill to"
    )
    parser.add_argument("--repeat", type=int, default=7, help="timed fan-outs (and bulk_create baselines)")
    parser.add_argument("--samples", type=int, default=200, help="communes' inboxes; directives' status")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--profile", action="store_true", help=f"cProfile a fan-out and {PROFILE_REQUESTS} inbox requests"
    )
    args = parser.parse_args()
    if args.repeat < 1 or args.samples < 2:
        parser.error("--repeat must be at least 1 and --samples at least 2")
    if args.child:
        run_child(args)
    else:
        run_parent(args)


if __name__ == "__main__":
    main()
