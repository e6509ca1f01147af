"""The web process (ASGI, what `dieuhanh serve` runs): live streams on the loop, the rest through Django.

- The live streams (`/room/stream`, `/api/v1/inbox/stream`) are served here, not by Django's handler:
  Django gives every request a thread of its own for its middleware, and a stream would hold it, and
  its database connection, for its whole life. Here a stream's caller and keys are worked out once, in
  a pooled thread that hands its connection back; then the stream waits on the loop alone.
- Every other request goes through Django, at most WEB_CONCURRENCY at once (each holds a thread and,
  at most, one pooled connection): beyond that a request waits, and after DB_POOL_TIMEOUT seconds it is
  answered 503 with Retry-After instead of piling up threads and connections.
- Those requests run through Django's WSGI handler, in this module's own pool of WEB_CONCURRENCY
  threads: one hand-over to a thread and one back per request. Django's ASGI handler, with our sync
  middleware and views, handed each request from the loop to a new thread, back to the loop and to a
  thread again (asgiref), which cost more than the view itself in bench/load.py's morning.
- At start (ASGI lifespan) the process joins the live relay (dieuhanh.live), so that every process's
  events reach its screens and void its caches, and makes what every worker's first requests would
  otherwise wait for (`warm`, at most WARM_WAIT seconds): uvicorn hands a worker connections only once
  its start is complete. What the start made is then left out of the cyclic collector's passes
  (`_freeze`).
"""

from __future__ import annotations

import asyncio
import gc
import io
import logging
import os
import sys
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dieuhanh.settings")
django_application = get_wsgi_application()  # sets Django up

from asgiref.sync import sync_to_async  # noqa: E402 - after Django is set up
from django.conf import settings  # noqa: E402
from django.core.handlers.asgi import ASGIRequest  # noqa: E402
from django.db import connections  # noqa: E402
from django.urls import get_resolver, reverse  # noqa: E402

from dieuhanh.db import RETRY_AFTER, busy_body  # noqa: E402
from dieuhanh.errors import DomainError  # noqa: E402
from dieuhanh.indicators.services import warm_national_levels  # noqa: E402
from dieuhanh.indicators.unitmap import unit_index  # noqa: E402
from dieuhanh.live import BUS, HUB  # noqa: E402
from dieuhanh.streams import OPENERS, Opened, Opener, refusal  # noqa: E402

Scope = dict[str, Any]
log = logging.getLogger(__name__)


# How long a worker's start waits for `warm`. Past it the worker takes connections all the same and the
# warming goes on beside its first requests: a units table locked by a migration during a deploy, or a
# pool that waits DB_POOL_TIMEOUT for a server not up yet, must not keep the service down.
WARM_WAIT = 15.0


def warm() -> None:
    """What a worker's first requests would otherwise pay, made before it takes any: the URLconf, which
    imports every API module and builds their schemas (1–1.6 s on a 2-core machine), the units'
    index that every map of asked units is made from (0.15 s), and a national caller's provinces and
    communes of the current map (0.1 s, `warm_national_levels`). All are kept per process, so a worker
    started after a deploy, or added on a busy morning, answers its first request as fast as its
    hundredth. Neither failure stops the worker: a URLconf that cannot load fails its requests the same
    way (an error in the log now), and units that cannot be read yet are read by the first request."""
    try:
        get_resolver().url_patterns  # noqa: B018 - loaded on first use: this is the use
    except Exception:
        log.error("start: the URLconf could not be loaded; requests will fail the same way", exc_info=True)
        return
    try:
        unit_index()
        warm_national_levels()
    except Exception:  # the database not up yet, or refusing: the first request that needs units reads them
        log.warning("start: the units could not be read; the first requests will read them", exc_info=True)


def _warm_in_thread() -> None:
    """warm() in a thread of the lifespan's, whose connections are then handed back; then what the
    worker holds from its start is left out of the cyclic collector's full passes (`_freeze`)."""
    try:
        warm()
    finally:
        try:
            connections.close_all()
        except Exception:  # a connection that cannot be handed back must not fail the start
            log.warning("start: a connection of the warming could not be closed", exc_info=True)
        _freeze()


def _freeze() -> None:
    """The start's garbage collected, then what is left (Django, the API's schemas, the units' index:
    some 200,000 objects that live as long as the worker) moved out of the collector's generations.
    A full pass walked all of them, 116–147 ms on a 2-core machine (1 ms once they were moved), inside
    whichever request's allocation set it off: one national answer in sixty computed anew took 88 ms
    longer for it (issue 18). They are still freed by reference counting; only a cycle among them
    would no longer be."""
    gc.collect()
    gc.freeze()


def _opening(opener: Opener, request: ASGIRequest) -> Opened | DomainError:
    """In a pooled thread: the stream's caller and keys (or its refusal), then the thread's connections
    handed back."""
    try:
        return opener(request)
    except DomainError as error:
        return error
    finally:
        connections.close_all()


def _environ(scope: Scope, body: Any) -> dict[str, Any]:
    """The WSGI environ (PEP 3333) of an ASGI HTTP request whose body is in the file `body`."""
    server = scope.get("server") or ("localhost", 80)
    client = scope.get("client") or ("", 0)
    path = scope["path"]
    root = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    environ: dict[str, Any] = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": root.encode().decode("latin-1"),
        "PATH_INFO": path.encode().decode("latin-1"),
        "QUERY_STRING": scope.get("query_string", b"").decode("latin-1"),
        "SERVER_NAME": str(server[0]),
        "SERVER_PORT": str(server[1]),
        "REMOTE_ADDR": str(client[0]),
        "REMOTE_PORT": str(client[1]),
        "SERVER_PROTOCOL": f"HTTP/{scope.get('http_version', '1.1')}",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": body,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    for raw_name, raw_value in scope["headers"]:
        name = raw_name.decode("latin-1").upper().replace("-", "_")
        value = raw_value.decode("latin-1")
        if name == "CONTENT_TYPE" or name == "CONTENT_LENGTH":
            key = name
        else:
            key = f"HTTP_{name}"
        environ[key] = f"{environ[key]},{value}" if key in environ else value
    # What was read, whatever the header said: a chunked request has none, and Django reads this many.
    environ["CONTENT_LENGTH"] = str(body.seek(0, os.SEEK_END))
    body.seek(0)
    return environ


async def _read_body(receive: Any) -> Any | None:
    """The request's body in a file (in memory up to FILE_UPLOAD_MAX_MEMORY_SIZE, as Django's ASGI handler
    keeps it), or None when the client went away first."""
    # Closed by the caller once Django is done with it: it outlives this function.
    body = tempfile.SpooledTemporaryFile(max_size=settings.FILE_UPLOAD_MAX_MEMORY_SIZE, mode="w+b")  # noqa: SIM115
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            body.close()
            return None
        if chunk := message.get("body"):
            body.write(chunk)
        if not message.get("more_body"):
            body.seek(0)
            return body


class Front:
    """The ASGI application: `wsgi` is Django's (WSGI) handler, or a stand-in of a test."""

    def __init__(self, wsgi: Callable[..., Any]) -> None:
        self._wsgi = wsgi
        self._streams: dict[str, Opener] | None = None
        self._slots: asyncio.Semaphore | None = None
        self._threads: ThreadPoolExecutor | None = None

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":  # no WebSockets here: the live screens use server-sent events
            raise ValueError(f"dieuhanh serves HTTP only, not {scope['type']!r}")
        if self._streams is None:
            self._streams = {reverse(name): opener for name, opener in OPENERS.items()}
        if opener := self._streams.get(scope["path"]):
            await self._stream(opener, scope, receive, send)
            return
        body = await _read_body(receive)
        if body is None:
            return
        if self._slots is None or self._threads is None:
            self._slots = asyncio.Semaphore(settings.WEB_CONCURRENCY)
            self._threads = ThreadPoolExecutor(settings.WEB_CONCURRENCY, thread_name_prefix="django")
        try:
            await asyncio.wait_for(self._slots.acquire(), settings.DB_POOL_TIMEOUT)
        except TimeoutError:
            body.close()
            await _respond(send, 503, *busy_body(scope["path"]), retry_after=True)
            return
        try:
            loop = asyncio.get_running_loop()
            environ = _environ(scope, body)
            answer = await loop.run_in_executor(self._threads, self._django, environ, send, loop)
            if answer is not None:  # a whole answer, sent from here; a streamed one was sent by the thread
                start, content = answer
                await send(start)
                await send({"type": "http.response.body", "body": content})
        finally:
            self._slots.release()
            body.close()

    def _django(self, environ: dict[str, Any], send: Any, loop: asyncio.AbstractEventLoop) -> Any:
        """In a thread of the pool: Django's answer. A whole one is returned, for the loop to send; a
        streamed one (a file, an export) is sent from here chunk by chunk, each awaited on the loop."""
        started: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
            started["start"] = {
                "type": "http.response.start",
                "status": int(status.split(" ", 1)[0]),
                "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers],
            }

        response = self._wsgi(environ, start_response)
        try:  # close() below is Django's request_finished: the thread's connection goes back to the pool
            if not getattr(response, "streaming", False):
                return started["start"], b"".join(response)

            def out(message: dict[str, Any]) -> None:
                asyncio.run_coroutine_threadsafe(send(message), loop).result()

            out(started["start"])
            for chunk in response:
                if chunk:
                    out({"type": "http.response.body", "body": chunk, "more_body": True})
            out({"type": "http.response.body", "body": b"", "more_body": False})
            return None
        finally:
            if hasattr(response, "close"):  # PEP 3333: an iterable's close() is called when it has one
                response.close()

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await asyncio.to_thread(BUS.relay)  # may wait a moment for NATS: not on the loop
                try:
                    await asyncio.wait_for(asyncio.to_thread(_warm_in_thread), WARM_WAIT)
                except TimeoutError:  # the thread goes on; the first requests share what it makes
                    log.warning(
                        "start: warming took over %.0f s; the worker takes requests meanwhile", WARM_WAIT
                    )
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await asyncio.to_thread(BUS.flush)
                self.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def close(self) -> None:
        """Let Django's threads finish what they hold, then end them (and their connections)."""
        if self._threads is not None:
            self._threads.shutdown(wait=True)
            self._threads, self._slots = None, None

    async def _stream(self, opener: Opener, scope: Scope, receive: Any, send: Any) -> None:
        request = ASGIRequest(scope, io.BytesIO())
        opened = await sync_to_async(_opening, thread_sensitive=False)(opener, request)
        if isinstance(opened, DomainError):
            status, headers, body = refusal(request.path, opened)
            www_authenticate = "WWW-Authenticate" in headers
            await _respond(send, status, body, headers["Content-Type"], www_authenticate=www_authenticate)
            return
        keys, coalesce = opened
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream; charset=utf-8"),
                    (b"cache-control", b"no-cache"),
                    (b"x-accel-buffering", b"no"),  # nginx would otherwise hold events back
                ],
            }
        )
        events = HUB.stream(keys, settings.LIVE_HEARTBEAT_SECONDS, coalesce)

        async def pump() -> None:
            async for chunk in events:
                await send({"type": "http.response.body", "body": chunk.encode(), "more_body": True})

        async def gone() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass

        tasks = [asyncio.ensure_future(pump()), asyncio.ensure_future(gone())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await events.aclose()
        if not tasks[1].done() or tasks[1].cancelled():  # the server closed it (a slow client): end it
            await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _respond(
    send: Any,
    status: int,
    body: bytes,
    content_type: str,
    *,
    retry_after: bool = False,
    www_authenticate: bool = False,
) -> None:
    headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
    if retry_after:
        headers.append((b"retry-after", str(RETRY_AFTER).encode()))
    if www_authenticate:
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


application = Front(django_application)
