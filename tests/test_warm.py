"""A web worker is warmed before it takes requests (dieuhanh.asgi.warm, at the ASGI lifespan's start):
the URLconf with every API module, and the units' index, are made then and not by its first request; a
database that is not up yet delays nothing and stops nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from dieuhanh import asgi
from dieuhanh.indicators import unitmap
from dieuhanh.units.models import Unit

# A fresh process: the front imported as uvicorn imports it, then its lifespan started and stopped as
# uvicorn does it, with what was loaded before and after.
START = """
import asyncio, json, logging, sys
logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
from dieuhanh.asgi import application

before = "dieuhanh.urls" in sys.modules

async def main():
    said = []
    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])

    async def receive():
        return next(messages)

    async def send(message):
        said.append(message["type"])
        if message["type"] == "lifespan.startup.complete":
            said.append("urls loaded" if "dieuhanh.urls" in sys.modules else "urls not loaded")

    await application({"type": "lifespan"}, receive, send)
    return said

print(json.dumps({"before": before, "said": asyncio.run(main())}))
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
    assert "the worker could not be warmed" in done.stderr


@pytest.mark.django_db
def test_warming_makes_the_units_index_the_first_map_is_made_from(monkeypatch):
    monkeypatch.setattr(unitmap, "_cached", None)
    asgi.warm()
    assert unitmap._cached is not None
    commune = Unit.objects.get(edition_id="VN-2025", code="26743")
    assert unitmap._cached[1].path[commune.pk] == commune.path
    before = unitmap._cached
    assert unitmap.unit_index() is before[1]  # the first question takes it as it is
