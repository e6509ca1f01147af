"""Benchmark: the command room over 10 million events and 1 million deliveries — first render of the
national room and of a province's room (server time, page weight), and an ingest's way to an open room.

    .venv/bin/python bench/room.py [--events N] [--directives N] [--runs N] [--live N] [--pg-url URL]

Data: the database `bench/analytics.py` loads and keeps (`dieuhanh_bench_analytics`: N test results
over 2020–2021 on the 3,321 VN-2025 communes, with their daily and monthly rollups); this script runs
`bench/analytics.py --db pg --events N --reuse --runs 1` first when that database is missing or was
loaded from other arguments. It then adds, once (kept with a marker table), --directives directives
(default 301) issued by the national leader to every VN-2025 commune through `issue_directive`
(3,321 deliveries each: 999,621 by default), a third of the deliveries acknowledged and a third
answered (one UPDATE each), and the room's users (a national leader, the leader of Hồ Chí Minh City).

Measured (after one untimed warm-up of each):
- server time of `GET /room/` (nation) and `GET /room/?unit=VN-2025:79` (province), and of the map
  each page loads at once (`/room/map.json`), through Django's test Client in this process;
- page weight of a first render: the HTML, the CSS and JS it links (static files as served) and the
  map's JSON;
- baseline, in the same process: the map's figure (positive tests of the last 7 days, by the page's
  children) counted by GROUP BY over the raw events, as a room without rollups would;
- live: `dieuhanh serve` (uvicorn) on a free port against the same database, an SSE client on
  `/room/stream` with a session cookie, and --live single health declarations POSTed to
  `/api/v1/events/health` for a commune of Hồ Chí Minh City (not test results, which would change the
  events bench/analytics.py checks on --reuse): time from the POST's start to the `figures`
  event reaching the client (the whole way), and from the POST's answer (negative when the event,
  published on commit, arrives before the answer).
Goals (issue 7): room under 300 ms, page weight under 1.5 MB, live update under 2 s.

The wall and the charts (issue 17, points 2, 4 and 6), in the same run:
- server time of `GET /wall/` (nation) and of each chart's data (`/room/charts/NAME.json`: the
  epidemic curve, the series beside cùng kỳ, the ranking, the targets) for the nation, with the room's
  shared cache and analytics' answers emptied before every request (the cost after each change, the
  worst case); baseline: the epidemic curve's figures (tests and positives by local day, 66 days) by
  GROUP BY over the raw events;
- in Debian's Chromium against `dieuhanh serve` (--browser-runs each, after a warm-up): the page
  weight of the national room and of the wall as the browser loads them (every response's body until
  the map and the charts are drawn: HTML, CSS, JS, the map's data with its shapes, the charts' data;
  the event stream excluded), beside the login page's; first contentful paint of the room and of the
  wall, beside the login page's (the lightest page of ours: the baseline); and a live event on the
  wall — a health declaration POSTed as above, timed from the POST's start to its line in the wall's
  ticker — beside the raw SSE client's time for the same way.
Goals (issue 17): room and wall under 300 ms p95, weight under 1.5 MB with the map's data, the live
event on the wall under 2 s, first paint under 1.5 s.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    DEFAULT_PG_URL,
    ROOT,
    child_env,
    free_port,
    log,
    machine,
    pg_loaded_params,
    pg_version,
    render_table,
    scratch_name,
    scratch_url,
    session_cookie,
    setup_django,
    shown,
    spread,
    write_results,
)

ANALYTICS_DB = scratch_name("analytics")
ANALYTICS_META = "bench_analytics_load"
ROOM_META = "bench_room_load"
PROVINCE = "VN-2025:79"
COMMUNE = "26743"  # Phường Bến Thành, where the live declarations are sent


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--directives", type=int, default=301)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--live", type=int, default=20)
    parser.add_argument(
        "--browser-runs", type=int, default=5, help="Chromium loads of each page, wall live events"
    )
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL, help="a PostgreSQL allowed to create databases")
    return parser.parse_args()


def ensure_events(args: argparse.Namespace, url: str) -> None:
    wanted = {"generator": 1, "events": args.events, "seed": 1, "edition": "VN-2025"}
    found = pg_loaded_params(args.pg_url, url, ANALYTICS_DB, ANALYTICS_META)
    if found is not None and {k: found.get(k) for k in wanted} == wanted:
        return
    log(f"loading {args.events:,} events with bench/analytics.py (kept for --reuse) …")
    command = [
        sys.executable,
        str(ROOT / "bench" / "analytics.py"),
        "--db",
        "pg",
        "--events",
        str(args.events),
    ]
    subprocess.run([*command, "--reuse", "--runs", "1"], check=True, stdout=subprocess.DEVNULL)  # noqa: S603


def setup(url: str, home: str) -> None:
    os.environ.update(child_env(home, url))
    setup_django()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def ensure_deliveries(args: argparse.Namespace) -> dict:
    """The directives and users, once: kept with a marker table so later runs reuse them."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE IF NOT EXISTS {ROOM_META} (params text)")
        cursor.execute(f"SELECT params FROM {ROOM_META}")
        row = cursor.fetchone()
    if row and json.loads(row[0]) == {"directives": args.directives}:
        return {"deliveries_loaded_s": None}
    began = time.perf_counter()
    _directives(args.directives)
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {ROOM_META}")
        cursor.execute(f"INSERT INTO {ROOM_META} VALUES (%s)", [json.dumps({"directives": args.directives})])
    return {"deliveries_loaded_s": time.perf_counter() - began}


def users():
    from dieuhanh.accounts.models import User
    from dieuhanh.accounts.services import create_user
    from dieuhanh.units.models import Unit

    found = {}
    for name, ref in (("bench-lanhdao", "VN-2025:VN"), ("bench-tphcm", PROVINCE)):
        user = User.objects.filter(username=name).first() or create_user(
            actor=None, username=name, password=secrets.token_urlsafe(16),
            grants=[(Unit.objects.ref(ref), "leader")], validate=False,
        )  # fmt: skip
        found[name] = user
    return found


def _directives(n: int) -> None:
    from datetime import datetime, timedelta, timezone

    from dieuhanh.directives.models import Delivery, DeliveryState
    from dieuhanh.directives.services import DirectiveInput, Targets, issue_directive

    leader = users()["bench-lanhdao"]
    start = datetime(2021, 12, 1, 8, tzinfo=timezone(timedelta(hours=7)))
    for i in range(n):
        data = DirectiveInput(
            title=f"Chỉ đạo {i + 1}", body="Báo cáo ngay.", number=f"{i + 1}/CĐ-TTg",
            targets=Targets(units=("VN-2025:VN",), level="commune"), deadline=start + timedelta(days=30),
        )  # fmt: skip
        issue_directive(actor=leader, data=data, now=start + timedelta(hours=i))
        if (i + 1) % 50 == 0:
            log(f"  {i + 1} directives")
    total = Delivery.objects.count()
    Delivery.objects.filter(id__lt=total // 3).update(state=DeliveryState.RESPONDED)
    Delivery.objects.filter(id__gte=total // 3, id__lt=2 * total // 3).update(
        state=DeliveryState.ACKNOWLEDGED
    )


# Server time and page weight


def timed_get(client, path: str) -> tuple[float, bytes]:
    began = time.perf_counter()
    response = client.get(path)
    took = time.perf_counter() - began
    assert response.status_code == 200, (path, response.status_code)
    return took, response.content


def linked_static(html: str) -> int:
    """Bytes of the CSS and JS the page links, as the static files on disk."""
    from django.contrib.staticfiles import finders

    total = 0
    for href in re.findall(r'(?:href|src)="/static/([^"?]+)"', html):
        found = finders.find(href)
        assert found, f"static file {href} not found (run make setup)"
        total += Path(found).stat().st_size
    return total


def measure_pages(runs: int, who: dict) -> dict:
    from django.test import Client

    pages = {
        "nation": (who["bench-lanhdao"], "/room/", "/room/map.json"),
        "province": (who["bench-tphcm"], f"/room/?unit={PROVINCE}", f"/room/map.json?unit={PROVINCE}"),
    }
    out = {}
    for name, (user, page, map_path) in pages.items():
        client = Client()
        client.force_login(user)
        _, html = timed_get(client, page)
        _, data = timed_get(client, map_path)
        page_s, map_s = [], []
        for _ in range(runs):
            page_s.append(timed_get(client, page)[0])
            map_s.append(timed_get(client, map_path)[0])
        weight = len(html) + linked_static(html.decode()) + len(data)
        out[name] = {
            "page": spread(page_s),
            "map": spread(map_s),
            "html_bytes": len(html),
            "weight_bytes": weight,
        }
        out[name]["baseline"] = baseline(runs, PROVINCE if name == "province" else "VN-2025:VN")
    return out


def baseline(runs: int, ref: str) -> dict:
    """The map's figure by GROUP BY over the raw events: positives of the 7 days to the latest day,
    by the unit's children (communes reached through their path)."""
    from django.db import connection

    from dieuhanh.commandroom.room import latest_day
    from dieuhanh.units.models import Unit

    unit = Unit.objects.ref(ref)
    day = latest_day()
    depth = unit.path.count("/")  # the children's path ends one segment further down
    sql = """
        SELECT split_part(u.path, '/', %s) AS child, count(*)
        FROM warehouse_testresult t JOIN units_unit u ON u.id = t.commune_id
        WHERE t.result = 'positive' AND u.path LIKE %s
          AND t.at >= (%s::date - 6)::timestamp AT TIME ZONE 'Asia/Ho_Chi_Minh'
          AND t.at < (%s::date + 1)::timestamp AT TIME ZONE 'Asia/Ho_Chi_Minh'
        GROUP BY 1
    """
    params = [depth, unit.path + "%", day, day]
    seconds = []
    with connection.cursor() as cursor:
        for _ in range(runs + 1):
            began = time.perf_counter()
            cursor.execute(sql, params)
            cursor.fetchall()
            seconds.append(time.perf_counter() - began)
    return spread(seconds[1:])


def measure_wall(runs: int, who: dict) -> dict:
    """Server time of the wall and of the charts' data for the nation, each computed afresh."""
    from django.test import Client

    from dieuhanh.commandroom import room
    from dieuhanh.indicators import analytics

    client = Client()
    client.force_login(who["bench-lanhdao"])
    paths = {"wall": "/wall/", **{f"chart {n}": f"/room/charts/{n}.json" for n in CHARTS}}
    out: dict = {}

    def changed() -> None:  # as after a write: the area's shared answer and analytics' answers go
        room.shared.clear()
        analytics.ANSWERS.clear()

    for name, path in paths.items():
        changed()
        timed_get(client, path)  # warm-up
        cold, warm = [], []
        for _ in range(runs):
            changed()  # computed afresh
            cold.append(timed_get(client, path)[0])
            warm.append(timed_get(client, path)[0])  # as between changes: the area's shared answer
        out[name] = spread(cold)
        out[f"{name} warm"] = spread(warm)
    out["curve_baseline"] = curve_baseline(runs)
    return out


CHARTS = ("curve", "series", "rank", "targets")


def curve_baseline(runs: int) -> dict:
    """The epidemic curve's figures by GROUP BY over the raw events: tests and positives of the nation
    by local day over the 66 days to the latest day (the curve's 60 days and the 6 before its first
    7-day average)."""
    from django.db import connection

    from dieuhanh.commandroom.room import latest_day

    day = latest_day()
    sql = """
        SELECT (t.at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date AS day, count(*),
               count(*) FILTER (WHERE t.result = 'positive')
        FROM warehouse_testresult t
        WHERE t.at >= (%s::date - 65)::timestamp AT TIME ZONE 'Asia/Ho_Chi_Minh'
          AND t.at < (%s::date + 1)::timestamp AT TIME ZONE 'Asia/Ho_Chi_Minh'
        GROUP BY 1
    """
    seconds = []
    with connection.cursor() as cursor:
        for _ in range(runs + 1):
            began = time.perf_counter()
            cursor.execute(sql, [day, day])
            cursor.fetchall()
            seconds.append(time.perf_counter() - began)
    return spread(seconds[1:])


# Live


def source_token() -> str:
    from dieuhanh.warehouse.services import create_source

    name = f"bench-room-{secrets.token_hex(4)}"
    return create_source(actor=None, name=name, kinds=["health"], edition="VN-2025")[1]


def measure_live(args: argparse.Namespace, url: str, home: str, who: dict) -> tuple[dict, dict]:
    port = free_port()
    server = subprocess.Popen(  # noqa: S603 - the project's own command
        [str(ROOT / ".venv" / "bin" / "dieuhanh"), "serve", "--port", str(port)],
        env=child_env(home, url), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _wait_for(port)
        session, token = session_cookie(who["bench-lanhdao"]), source_token()
        live = _live_rounds(args.live, port, session, token)
        browser = measure_browser(args.browser_runs, port, session, token)
        return live, browser
    finally:
        server.terminate()
        server.wait(10)


# In Chromium: page weight, first paint, a live event on the wall

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def measure_browser(runs: int, port: int, session: str, token: str) -> dict:
    import shutil

    from playwright.sync_api import sync_playwright

    base = f"http://127.0.0.1:{port}"
    pages = {"login": "/login/", "room": "/room/", "wall": "/wall/"}
    out: dict = {name: {"bytes": [], "fcp_s": [], "fcp_warm_s": []} for name in pages}
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=shutil.which("chromium") or "/usr/bin/chromium", args=CHROMIUM_ARGS
        )
        try:
            for i in range(runs + 1):  # the first round warms the server and the disk cache
                for name, path in pages.items():
                    who = session if name != "login" else None
                    # The area's shared answer lasts SHARED_SECONDS (5 s): the first load computes the
                    # page afresh (as the first screen after a change), the second, at once, reads it.
                    weight, fcp = _load_once(browser, base, path, who)
                    _, fcp_warm = _load_once(browser, base, path, who)
                    if i:
                        out[name]["bytes"].append(weight)
                        out[name]["fcp_s"].append(fcp)
                        out[name]["fcp_warm_s"].append(fcp_warm)
            out["wall_live"] = _wall_live(browser, base, session, token, runs)
        finally:
            browser.close()
    for name in pages:
        found = out[name]
        out[name] = {
            "bytes": max(found["bytes"]),
            "fcp": spread(found["fcp_s"]),
            "fcp_warm": spread(found["fcp_warm_s"]),
        }
    return out


def _context(browser, base: str, session: str | None):
    context = browser.new_context(locale="vi-VN", viewport={"width": 1920, "height": 1080})
    if session:
        context.add_cookies([{"name": "sessionid", "value": session, "url": base}])
    return context


def _load_once(browser, base: str, path: str, session: str | None) -> tuple[int, float]:
    """Bytes of every response body the page loads until its map and charts are drawn (the event
    stream left out), and its first contentful paint, in a fresh context (an empty cache)."""
    context = _context(browser, base, session)
    page = context.new_page()
    sizes: dict[str, int] = {}

    def finished(request) -> None:
        if "/stream" in request.url:
            return
        # A redirect has no body; a request still finishing as the context closes has no page.
        with contextlib.suppress(Exception):
            response = request.response()
            if response is not None:
                sizes[request.url] = len(response.body())

    page.on("requestfinished", finished)
    try:
        page.goto(base + path)
        if path == "/room/":
            page.wait_for_selector("#room[data-map-loaded]", timeout=60_000)
            page.wait_for_selector('figure[data-chart="curve"][data-rows]', timeout=60_000)
        elif path == "/wall/":
            page.wait_for_selector("#wall[data-shown]", timeout=60_000)
            page.wait_for_selector("#wall-map[data-drawn]", timeout=60_000)
        page.wait_for_timeout(300)  # the last bodies' events
        fcp = page.evaluate(
            "(performance.getEntriesByName('first-contentful-paint')[0] || {startTime: NaN}).startTime"
        )
        return sum(sizes.values()), fcp / 1000
    finally:
        context.close()


def _wall_live(browser, base: str, session: str, token: str, runs: int) -> dict:
    """From a health declaration's POST to its line in the wall's ticker (the whole way, in the browser)."""
    context = _context(browser, base, session)
    page = context.new_page()
    seconds, raw_seconds = [], []
    # The baseline in the same rounds: a bare SSE client on the wall's stream (the nation's).
    arrived: list[float] = []
    stream = http.client.HTTPConnection("127.0.0.1", int(base.rsplit(":", 1)[1]), timeout=60)
    stream.request(
        "GET", "/room/stream", headers={"Cookie": f"sessionid={session}", "Accept": "text/event-stream"}
    )
    response = stream.getresponse()

    def read() -> None:
        with contextlib.suppress(AttributeError, OSError, ValueError):  # closed at the end
            for line in response:
                if line.startswith(b"event: figures"):
                    arrived.append(time.perf_counter())

    threading.Thread(target=read, daemon=True).start()
    try:
        page.goto(base + "/wall/?seconds=3600")
        page.wait_for_selector('#wall[data-live="open"]', timeout=60_000)
        page.wait_for_selector("#wall[data-shown]", timeout=60_000)
        for i in range(runs):
            seen = int(page.evaluate("Number(document.getElementById('wall').dataset.heard || 0)"))
            seen_raw = len(arrived)
            sent = time.perf_counter()
            declare(int(base.rsplit(":", 1)[1]), token, f"bench-wall-{time.time_ns()}-{i}", f"0793{i:08d}")
            # A selector, not wait_for_function: the page's CSP forbids the eval that one uses.
            page.wait_for_selector(f'#wall[data-heard]:not([data-heard="{seen}"])', timeout=10_000)
            seconds.append(time.perf_counter() - sent)
            ends = time.perf_counter() + 10
            while len(arrived) == seen_raw and time.perf_counter() < ends:
                time.sleep(0.002)
            raw_seconds.append(arrived[seen_raw] - sent)
            # The stream sends one figures event per window: the next one waits for the window to pass.
            page.wait_for_timeout(2500)
    finally:
        context.close()
        stream.close()
    return {"wall": spread(seconds), "raw": spread(raw_seconds)}


def declare(port: int, token: str, event_id: str, person: str) -> None:
    """One health declaration POSTed by the source, for the commune the rooms watch; back when answered."""
    body = json.dumps({
        "source_event_id": event_id, "commune": COMMUNE, "declared_at": "2021-12-31T10:00:00+07:00",
        "person_id": person, "symptoms": ["fever"], "exposure": False,
    })  # fmt: skip
    post = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    post.request("POST", "/api/v1/events/health", body, {
        "Authorization": f"Bearer {token}", "Content-Type": "application/x-ndjson",
    })  # fmt: skip
    answer = post.getresponse()
    summary = answer.read()
    assert answer.status == 200 and json.loads(summary)["accepted"] == 1, summary


def _wait_for(port: int) -> None:
    for _ in range(300):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("the server did not start")


def _live_rounds(n: int, port: int, session: str, token: str) -> dict:
    arrived: list[float] = []
    ready = threading.Event()
    stream = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    stream.request(
        "GET", "/room/stream", headers={"Cookie": f"sessionid={session}", "Accept": "text/event-stream"}
    )
    response = stream.getresponse()
    assert response.status == 200, response.status

    def read() -> None:
        ready.set()
        try:
            for line in response:
                if line.startswith(b"event: figures"):
                    arrived.append(time.perf_counter())
        except (AttributeError, OSError, ValueError):
            return  # the stream was closed at the end of the rounds

    threading.Thread(target=read, daemon=True).start()
    ready.wait()
    time.sleep(0.5)
    after_commit, after_send = [], []
    for i in range(n):
        seen = len(arrived)
        sent = time.perf_counter()
        declare(port, token, f"bench-room-{time.time_ns()}-{i}", f"0792{i:08d}")
        committed = time.perf_counter()
        ends = committed + 10
        while len(arrived) == seen and time.perf_counter() < ends:
            time.sleep(0.002)
        if len(arrived) == seen:
            raise SystemExit(f"round {i}: no figures event within 10 s")
        after_commit.append(arrived[seen] - committed)
        after_send.append(arrived[seen] - sent)
        time.sleep(0.3)
    stream.close()
    return {"after_commit": spread(after_commit), "after_send": spread(after_send)}


def main() -> None:
    args = parse_args()
    server = pg_version(args.pg_url)
    if server is None:
        sys.exit(1)
    url = scratch_url(args.pg_url, ANALYTICS_DB)
    ensure_events(args, url)
    home = tempfile.mkdtemp(prefix="dieuhanh-bench-room-")
    setup(url, home)
    loaded = ensure_deliveries(args)
    who = users()
    from dieuhanh.directives.models import Delivery

    pages = measure_pages(args.runs, who)
    wall = measure_wall(args.runs, who)
    live, browser = measure_live(args, url, home, who)
    ms = lambda s: f"{s['p50_s'] * 1e3:,.0f} / {s['p95_s'] * 1e3:,.0f}"  # noqa: E731
    # The baseline answers the map's question only, so it stands beside map.json.
    grid = [["", "p50 / p95 (ms)", "page weight", "raw GROUP BY p50 / p95 (ms)", "raw / ours (p50)"]]
    for name, r in pages.items():
        ratio = f"{r['baseline']['p50_s'] / r['map']['p50_s']:.1f}×"
        grid.append([f"{name} room (HTML)", ms(r["page"]), f"{r['weight_bytes'] / 1024:,.0f} kB", "", ""])
        grid.append([f"{name} map.json", ms(r["map"]), "", ms(r["baseline"]), ratio])
    # The event is published on commit, before the POST's answer is written: "answer → SSE" is
    # usually negative, and "POST sent → SSE" is the whole way from a source to an open room.
    grid.append(["live: POST sent → SSE", ms(live["after_send"]), "", "", ""])
    grid.append(["live: POST answered → SSE", ms(live["after_commit"]), "", "", ""])
    print(render_table(grid))
    # The wall and the charts (issue 17). Cold: the area's shared cache emptied first (after a change);
    # warm: the area's shared answer (between changes), as the room's rows above are measured.
    grid = [
        [
            "issue 17",
            "cold p50 / p95 (ms)",
            "warm p50 / p95",
            "goal",
            "baseline",
            "baseline p50 / p95",
            "ratio",
        ]
    ]
    base = wall["curve_baseline"]
    grid.append(["wall (HTML), nation", ms(wall["wall"]), ms(wall["wall warm"]), "< 300 ms", "", "", ""])
    for name in CHARTS:
        key = f"chart {name}"
        if name == "curve":
            extra = ["raw GROUP BY 66 days", ms(base), f"{base['p50_s'] / wall[key]['p50_s']:.1f}× raw/cold"]
        else:
            extra = ["", "", ""]
        grid.append(
            [f"chart {name}.json, nation", ms(wall[key]), ms(wall[f"{key} warm"]), "< 300 ms", *extra]
        )
    login = browser["login"]
    kb = lambda n: f"{n / 1024:,.0f} kB"  # noqa: E731
    for name in ("room", "wall"):
        b = browser[name]
        ratio = f"{b['bytes'] / login['bytes']:.1f}×"
        grid.append(
            [
                f"{name}: weight in Chromium",
                kb(b["bytes"]),
                "",
                "< 1.5 MB",
                "login page",
                kb(login["bytes"]),
                ratio,
            ]
        )
        ratio = f"{b['fcp_warm']['p50_s'] / login['fcp_warm']['p50_s']:.1f}× (warm)"
        grid.append([f"{name}: first paint", ms(b["fcp"]), ms(b["fcp_warm"]), "< 1.5 s", "login page",
                     ms(login["fcp_warm"]), ratio])  # fmt: skip
    wall_live = browser["wall_live"]
    ratio = f"{wall_live['wall']['p50_s'] / wall_live['raw']['p50_s']:.1f}×"
    grid.append(
        [
            "live: POST → wall ticker",
            ms(wall_live["wall"]),
            "",
            "< 2 s",
            "POST → bare SSE",
            ms(wall_live["raw"]),
            ratio,
        ]
    )
    print(render_table(grid))
    write_results("room", {
        "args": vars(args) | {"pg_url": shown(args.pg_url)}, "machine": machine(server),
        "deliveries": Delivery.objects.count(), **loaded, "pages": pages, "live": live,
        "wall": wall, "browser": browser,
        "goals": {"room_ms": 300, "weight_bytes": 1.5 * 1024 * 1024, "live_s": 2, "first_paint_s": 1.5},
    })  # fmt: skip


if __name__ == "__main__":
    main()
