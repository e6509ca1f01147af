"""Playwright (Python) driving Debian's Chromium; never a downloaded browser. Pages are served by
Django's live server (`live_server`) or, for the live streams, by uvicorn (`asgi_server`)."""

import os
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.core.signals import request_started
from django.db import connections

from dieuhanh.live import HUB

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser():
    # Per module, not per session: Playwright's sync API keeps an event loop running in this thread
    # while it lives, and later tests (the NATS worker's) need to run their own.
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"Debian's chromium is not at {CHROMIUM}: run `make setup` as root (apt-get install chromium)"
        )
    # The sync API runs an event loop in this thread; the ORM calls the tests make around it are sync.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(locale="vi-VN", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def phone(browser):
    """A phone-sized screen, in Vietnamese."""
    context = browser.new_context(locale="vi-VN", viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    yield page
    context.close()


@dataclass
class Server:
    url: str


def _share_test_database(**_kwargs) -> None:
    """Each request's thread uses the test's in-memory database (as Django's live server does)."""
    for connection in _SHARED:
        connections[connection.alias] = connection


_SHARED: list = []


@pytest.fixture
def asgi_server(transactional_db, world, page) -> Iterator[Server]:
    # After `page`, so that it is closed first: its event stream ends before the server does.
    import uvicorn

    from dieuhanh.asgi import Front, django_application

    # A front of its own: its Django threads take the shared test connection (below), and end with it.
    application = Front(django_application)

    _SHARED[:] = [c for c in connections.all() if c.vendor == "sqlite" and c.is_in_memory_db()]
    for connection in _SHARED:
        connection.inc_thread_sharing()
    request_started.connect(_share_test_database)
    server = uvicorn.Server(
        uvicorn.Config(application, host="127.0.0.1", port=0, lifespan="off", log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)  # waiting for the server to listen, not asserting anything
    assert server.started, "uvicorn did not start"
    port = server.servers[0].sockets[0].getsockname()[1]
    yield Server(f"http://127.0.0.1:{port}")
    server.should_exit = server.force_exit = True
    thread.join(10)
    application.close()
    assert not HUB.listening(), "the rooms' streams left the hub when their pages closed"
    request_started.disconnect(_share_test_database)
    for connection in _SHARED:
        connection.dec_thread_sharing()
    _SHARED.clear()
