"""The web process's front (dieuhanh.asgi) and its database pool: streams hold neither a thread nor a
connection while they wait, a full process answers 503 with Retry-After, never a 500."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.db import connection
from django.test import Client

from dieuhanh.asgi import Front, application
from dieuhanh.live import HUB, area_keys
from tests.factories import stored_files

STREAMS = 40


def _scope(path: str, token: str, query: str = "") -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query.encode(),
        "headers": [(b"authorization", f"Bearer {token}".encode()), (b"host", b"testserver")],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }


class Screen:
    """One client of the front: what it was sent, and a way to hang up."""

    def __init__(self) -> None:
        self.sent: list[dict] = []
        self.hang_up = asyncio.Event()
        self.got: asyncio.Queue[dict] = asyncio.Queue()

    async def receive(self) -> dict:
        await self.hang_up.wait()
        return {"type": "http.disconnect"}

    async def body(self) -> dict:
        """A request without a body (what a server's receive gives a GET), then the hang-up."""
        if not getattr(self, "_asked", False):
            self._asked = True
            return {"type": "http.request", "body": b"", "more_body": False}
        return await self.receive()

    async def send(self, message: dict) -> None:
        self.sent.append(message)
        await self.got.put(message)

    async def next_body(self) -> bytes:
        while True:
            # Generous: forty openings share the loop's few pooled threads, and a loaded run is slow.
            message = await asyncio.wait_for(self.got.get(), 60)
            if message["type"] == "http.response.body":
                return message["body"]


def _in_use() -> int | None:
    pool = getattr(connection, "pool", None)
    if pool is None:
        return None
    stats = pool.get_stats()
    return stats["pool_size"] - stats["pool_available"]


@pytest.mark.django_db(transaction=True)
def test_open_streams_hold_no_thread_and_no_connection_and_hear_their_area(world):
    def opened_threads_and_connections():
        async def scenario():
            screens = [Screen() for _ in range(STREAMS)]
            threads_before = threading.active_count()
            refs = [world.province.ref, world.commune_b.ref] * (STREAMS // 2)
            token = world.leader.token
            tasks = [
                asyncio.ensure_future(
                    application(_scope("/room/stream", token, f"unit={ref}"), s.receive, s.send)
                )
                for s, ref in zip(screens, refs, strict=True)
            ]
            for screen in screens:
                assert (await screen.next_body()) == b"retry: 5000\n: connected\n\n"
            threads_open, in_use = threading.active_count(), _in_use()
            assert len(HUB.listening()) == 2  # the province's and the ward's rooms
            HUB.deliver(
                area_keys("VN-2025", world.commune_a.path), "figures", {"kind": "test", "communes": 1}
            )
            heard = [await screen.next_body() for screen in screens[0::2]]  # the province's screens
            quiet = [screen.got.empty() for screen in screens[1::2]]  # Sài Gòn's: not its area
            for screen in screens:
                screen.hang_up.set()
            await asyncio.gather(*tasks)
            return threads_before, threads_open, in_use, heard, quiet

        return async_to_sync(scenario)()

    # The token's first use records it (a write); on SQLite forty of them would queue on the file's lock.
    assert world.leader.client().get("/api/v1/me").status_code == 200
    pool_before = _in_use()
    threads_before, threads_open, in_use, heard, quiet = opened_threads_and_connections()
    # Opening used a few pooled threads at most (the loop's executor), not one per stream.
    assert threads_open - threads_before < 8, (threads_before, threads_open)
    if in_use is not None:  # PostgreSQL: every connection the openings took went back to the pool
        assert in_use <= (pool_before or 0) + 1, (pool_before, in_use)
    assert heard == [b'event: figures\ndata: {"kind": "test", "communes": 1}\n\n'] * (STREAMS // 2)
    assert all(quiet), "a ward's room heard its neighbour's event"
    assert not HUB.listening(), "hung-up streams leave the hub"


@pytest.mark.django_db(transaction=True)
def test_a_stream_refuses_a_caller_outside_its_area_as_not_found_and_a_stranger_as_unauthenticated(world):
    async def ask(token: str, query: str) -> tuple[int, dict, dict]:
        screen = Screen()
        await application(_scope("/room/stream", token, query), screen.receive, screen.send)
        start, body = screen.sent[0], screen.sent[1]
        return start["status"], dict(start["headers"]), json.loads(body["body"])

    status, headers, body = async_to_sync(ask)(world.operator_b.token, f"unit={world.commune_a.ref}")
    assert (status, body["status"], body["field"]) == (404, 404, "unit")
    assert headers[b"content-type"] == b"application/problem+json"
    assert world.commune_a.name not in json.dumps(body, ensure_ascii=False), "nothing of the other area"
    status, headers, body = async_to_sync(ask)("dh_not-a-token", "")
    assert (status, body["code"]) == (401, "unauthenticated") and headers[b"www-authenticate"] == b"Bearer"
    screen = Screen()
    async_to_sync(application)(
        _scope("/api/v1/inbox/stream", world.tracer.token), screen.receive, screen.send
    )
    refused = json.loads(screen.sent[1]["body"])
    assert (screen.sent[0]["status"], refused["code"]) == (403, "forbidden"), "a tracer acts for no unit"
    assert refused["instance"] == "/api/v1/inbox/stream", "refused as the room's stream is: problem+json"


def test_a_process_at_its_limit_answers_503_with_retry_after_instead_of_queueing_for_ever(settings):
    settings.WEB_CONCURRENCY, settings.DB_POOL_TIMEOUT = 1, 0.2
    release = threading.Event()

    def slow_django(environ, start_response):  # holds its thread, as a slow view does
        release.wait(10)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    async def scenario():
        front = Front(slow_django)
        first, second = Screen(), Screen()
        busy = asyncio.ensure_future(front(_scope("/api/v1/me", "x"), first.body, first.send))
        await asyncio.sleep(0.05)
        await front(_scope("/api/v1/me", "x"), second.body, second.send)  # waits 0.2 s, then 503
        release.set()
        await busy
        return first.sent, second.sent

    served, refused = async_to_sync(scenario)()
    assert served[0]["status"] == 200 and served[1]["body"] == b"ok"
    assert refused[0]["status"] == 503
    headers = dict(refused[0]["headers"])
    assert headers[b"retry-after"] == b"2" and headers[b"content-type"] == b"application/problem+json"
    assert "Hệ thống đang bận" in json.loads(refused[1]["body"])["detail"]


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="the pool is PostgreSQL's (SQLite opens its file per thread): this runs in the PostgreSQL pass",
)
@pytest.mark.django_db
def test_when_every_pooled_connection_is_taken_a_request_gets_503_not_500(world):
    connection.ensure_connection()
    pool = connection.pool
    timeout, pool.timeout = pool.timeout, 0.2
    held = []
    try:
        while pool.get_stats()["pool_size"] - pool.get_stats().get("pool_available", 0) < pool.max_size:
            held.append(pool.getconn(timeout=5))
        answers: list = []
        # Another thread: Django's connections are per thread, so this request asks the pool for one.
        thread = threading.Thread(
            target=lambda: answers.append(
                Client().get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {world.leader.token}")
            )
        )
        thread.start()
        thread.join(30)
    finally:
        for conn in held:
            pool.putconn(conn)
        pool.timeout = timeout
    (answer,) = answers
    assert answer.status_code == 503 and answer["Retry-After"] == "2", answer.content
    assert answer["Content-Type"] == "application/problem+json"
    assert world.leader.client().get("/api/v1/me").status_code == 200, (
        "served again once connections are back"
    )


class Caller:
    """A client of the front that sends a request (its body in pieces, as a server may) and collects the
    answer."""

    def __init__(self, method: str, path: str, token: str, body: bytes = b"", query: str = "", **headers):
        self.scope = _scope(path, token, query) | {"method": method}
        self.scope["headers"] += [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()]
        self.pieces = [body[i : i + 1000] for i in range(0, len(body), 1000)] or [b""]
        self.sent: list[dict] = []

    async def receive(self) -> dict:
        if self.pieces:
            piece = self.pieces.pop(0)
            return {"type": "http.request", "body": piece, "more_body": bool(self.pieces)}
        await asyncio.Event().wait()  # the client stays until the answer is sent
        return {"type": "http.disconnect"}

    async def send(self, message: dict) -> None:
        self.sent.append(message)

    def answer(self) -> tuple[int, dict[bytes, bytes], bytes]:
        async_to_sync(application)(self.scope, self.receive, self.send)
        start, *rest = self.sent
        assert all(m["type"] == "http.response.body" for m in rest)
        return start["status"], dict(start["headers"]), b"".join(m["body"] for m in rest)


@pytest.mark.django_db(transaction=True)
def test_requests_through_the_front_reach_django_whole_and_come_back_whole(world, media):
    """What `dieuhanh serve` hands to Django (its WSGI handler, in the front's threads): a JSON body in
    pieces, a file upload, a Vietnamese query, and a file streamed back in chunks."""
    payload = json.dumps(
        {
            "title": "Tăng cường xét nghiệm",
            "body": "Nội dung " * 300,
            "targets": {"units": [world.commune_a.ref]},
        }
    ).encode()
    status, headers, body = Caller(
        "POST", "/api/v1/directives", world.leader.token, payload, content_type="application/json"
    ).answer()
    assert status == 201, body
    directive = json.loads(body)
    assert directive["title"] == "Tăng cường xét nghiệm" and headers[b"content-language"] == b"vi"

    pdf = b"%PDF-1.7\n" + b"x" * 300_000  # larger than one piece and than one chunk of the answer
    boundary = "ranh-gioi"
    upload = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="kế-hoạch.pdf"\r\n'
            "Content-Type: application/pdf\r\n\r\n"
        ).encode()
        + pdf
        + f"\r\n--{boundary}--\r\n".encode()
    )
    status, _, body = Caller(
        "POST",
        f"/api/v1/directives/{directive['id']}/attachments",
        world.leader.token,
        upload,
        content_type=f"multipart/form-data; boundary={boundary}",
    ).answer()
    assert status == 201, body
    attachment = json.loads(body)
    assert attachment["name"] == "kế-hoạch.pdf" and attachment["size"] == len(pdf)
    assert [p.read_bytes() for p in stored_files(media)] == [pdf]  # stored whole

    caller = Caller("GET", attachment["url"], world.operator_a.token)
    status, headers, body = caller.answer()
    assert status == 200 and body == pdf
    assert len(caller.sent) > 2, "a file is streamed in chunks, not read whole into memory"

    query = "q=B%E1%BA%BFn%20Th%C3%A0nh"  # "Bến Thành", as a browser encodes it
    status, _, body = Caller("GET", "/api/v1/units", world.leader.token, query=query).answer()
    assert status == 200 and world.commune_a.ref in [u["ref"] for u in json.loads(body)["items"]], body[:300]
    status, _, body = Caller("GET", "/api/v1/deliveries/999999", world.operator_a.token).answer()
    assert status == 404 and "999999" in json.loads(body)["detail"]
