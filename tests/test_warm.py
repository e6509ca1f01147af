"""A web worker is warmed before it takes requests (dieuhanh.asgi.warm, at the ASGI lifespan's start):
the URLconf with every API module, and the units' index, are made then and not by its first request; a
database that is not up yet stops nothing, a warming that takes too long holds the start WARM_WAIT
seconds at most, the warming thread hands its connection back, and what the start made is left out of
the cyclic collector's full passes."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading

import pytest
from asgiref.sync import async_to_sync
from django.db import connection
from django.test.utils import CaptureQueriesContext

from dieuhanh import asgi
from dieuhanh.indicators import services, unitmap
from dieuhanh.units.models import Unit

# A fresh process: the front imported as uvicorn imports it, then its lifespan started and stopped as
# uvicorn does it, with what was loaded before and after.
START = """
import asyncio, gc, json, logging, sys
logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
from dieuhanh.asgi import application

before = "dieuhanh.urls" in sys.modules

frozen = {}


async def main():
    said = []
    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])

    async def receive():
        return next(messages)

    async def send(message):
        said.append(message["type"])
        if message["type"] == "lifespan.startup.complete":
            said.append("urls loaded" if "dieuhanh.urls" in sys.modules else "urls not loaded")
            from django.urls import get_resolver

            resolver = get_resolver()
            frozen["objects"] = gc.get_freeze_count()
            frozen["resolver scanned"] = any(o is resolver for o in gc.get_objects())

    await application({"type": "lifespan"}, receive, send)
    return said

print(json.dumps({"before": before, "said": asyncio.run(main()), "frozen": frozen}))
"""


def test_a_worker_loads_its_urls_before_its_first_request_even_without_a_database(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DIEUHANH_DATABASE_URL"} | {
        "DIEUHANH_HOME": str(tmp_path),  # a database never migrated: the units cannot be read
        "DIEUHANH_LIVE": "local",
    }
    done = subprocess.run(
        [sys.executable, "-c", START], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["before"] is False  # importing the front does not load them: the start does
    assert found["said"] == ["lifespan.startup.complete", "urls loaded", "lifespan.shutdown.complete"]
    assert "the units could not be read" in done.stderr
    # What the worker holds from its start is out of the collector's full passes (asgi._freeze): the
    # URLconf with every API schema is tens of thousands of objects, and none of them is walked again.
    assert found["frozen"]["objects"] > 20_000
    assert found["frozen"]["resolver scanned"] is False


@pytest.mark.django_db
def test_warming_makes_the_units_index_the_first_map_is_made_from(monkeypatch):
    monkeypatch.setattr(unitmap, "_cached", None)
    asgi.warm()
    assert unitmap._cached is not None
    commune = Unit.objects.get(edition_id="VN-2025", code="26743")
    assert unitmap._cached[1].path[commune.pk] == commune.path
    before = unitmap._cached
    assert unitmap.unit_index() is before[1]  # the first question takes it as it is


def lifespan(front: asgi.Front) -> list[str]:
    """The front's lifespan started and stopped, as uvicorn does it: what it said."""
    said: list[str] = []
    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])

    async def receive() -> dict:
        return next(messages)

    async def send(message: dict) -> None:
        said.append(message["type"])

    async_to_sync(front)({"type": "lifespan"}, receive, send)
    return said


def test_a_warming_that_takes_too_long_holds_the_start_no_longer_than_its_limit(monkeypatch, caplog):
    done = threading.Event()
    monkeypatch.setattr(asgi, "warm", lambda: done.wait(30))  # a units table locked by a migration
    monkeypatch.setattr(asgi, "WARM_WAIT", 0.2)
    try:
        with caplog.at_level(logging.WARNING, logger="dieuhanh.asgi"):
            said = lifespan(asgi.Front(lambda *_: None))
    finally:
        done.set()
    assert said == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert "warming took over" in caplog.text


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "postgresql", reason="the connection pool is PostgreSQL's")
def test_the_warming_thread_reads_the_units_and_hands_its_connection_back(monkeypatch):
    monkeypatch.setattr(unitmap, "_cached", None)
    pool = connection.pool
    before = pool.get_stats()
    warming = threading.Thread(target=asgi._warm_in_thread)
    warming.start()
    warming.join(60)
    assert unitmap._cached is not None  # read through the thread's own pooled connection
    after = pool.get_stats()
    assert after["pool_size"] - after["pool_available"] == before["pool_size"] - before["pool_available"]


@pytest.mark.django_db
def test_a_warmed_worker_answers_its_first_national_question_without_reading_the_communes(world):
    """A national leader's LEVEL-2 question names the 3,321 communes of the map: a worker reads them
    into model instances once (about 100 ms), at its start rather than in its first caller's request."""
    url = "/api/v1/analytics?dx=ev.checkin&pe=202108&ou=LEVEL-2&empty=true"
    communes = Unit.objects.filter(edition_id="VN-2025", level=2).count()

    def communes_read() -> list[str]:
        with CaptureQueriesContext(connection) as ctx:
            response = world.leader.client().get(url)
        assert response.status_code == 200, response.content
        assert len(response.json()["rows"]) == communes  # a row for each, with a value or none
        return [q["sql"] for q in ctx.captured_queries if '"units_unit"."level" IN' in q["sql"]]

    services._LEVELS.clear()
    assert communes_read()  # a worker not warmed reads them for its first such question
    services._LEVELS.clear()
    asgi.warm()
    assert communes_read() == []
