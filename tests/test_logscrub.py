"""No citizen ID or phone number reaches the server's log (issue 16, point 5).

A log line is what an administrator, a log shipper and a backup see: the tests read what the real
handlers of settings.LOGGING write, for real requests, and what `dieuhanh serve` prints.
"""

from __future__ import annotations

import io
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.test import Client

from dieuhanh.logscrub import ID_MASK, PHONE_MASK, ScrubFilter, scrub
from tests.factories import ONCE_IN_THE_SQLITE_PASS

CCCD, PHONE = "079201001234", "0912345678"


@pytest.mark.parametrize(
    "text, expected",
    [
        (f"/api/v1/persons/{CCCD}/events", f"/api/v1/persons/{ID_MASK}/events"),
        ("CMND 023456789 cũ", f"CMND {ID_MASK} cũ"),
        ("079 201 001 234", ID_MASK),
        (f"sdt={PHONE}&x=1", f"sdt={PHONE_MASK}&x=1"),
        ("+84912345678", PHONE_MASK),
        ("84 912 345 678", PHONE_MASK),
        ("0912.345.678", PHONE_MASK),
        ("%2B84912345678", f"%2B{PHONE_MASK}"),
        ("０７９２０１００１２３４", ID_MASK),  # fullwidth digits are digits
        ("０９１２３４５６７８", PHONE_MASK),
        (f"{CCCD},{PHONE}", f"{ID_MASK},{PHONE_MASK}"),
    ],
)
def test_scrub_masks_ids_and_mobile_numbers_in_every_written_form(text, expected):
    assert scrub(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "/api/v1/units/VN-2025/26743/predecessors",
        "GET /api/v1/warehouse/counts?from=2025-07-01&to=2025-07-31 HTTP/1.1",
        "127.0.0.1:54321",
        "0212345678",  # a landline's shape (02x), not a mobile's
        "1234567890123",  # 13 digits: no ID has them
        "người 24.500 tỷ, 10 ngày",
    ],
)
def test_scrub_leaves_what_is_not_id_or_phone_shaped(text):
    assert scrub(text) == text


def _record(msg, args, exc_info=None) -> logging.LogRecord:
    return logging.LogRecord("dieuhanh.test", logging.WARNING, __file__, 1, msg, args, exc_info)


def test_filter_masks_arguments_and_keeps_their_positions():
    # uvicorn's access formatter unpacks exactly these five arguments: their number and the int stay.
    record = _record(
        '%s - "%s %s HTTP/%s" %d', ("127.0.0.1:5000", "GET", f"/x/{CCCD}?sdt={PHONE}", "1.1", 404)
    )
    assert ScrubFilter().filter(record)
    assert record.args == ("127.0.0.1:5000", "GET", f"/x/{ID_MASK}?sdt={PHONE_MASK}", "1.1", 404)
    assert record.getMessage() == f'127.0.0.1:5000 - "GET /x/{ID_MASK}?sdt={PHONE_MASK} HTTP/1.1" 404'


def test_filter_masks_the_message_mapping_arguments_and_objects():
    record = _record(f"ca bệnh {CCCD}: %(who)s / %(path)s", {"who": PHONE, "path": Path(f"xuat/{CCCD}.csv")})
    ScrubFilter().filter(record)
    assert record.getMessage() == f"ca bệnh {ID_MASK}: {PHONE_MASK} / xuat/{ID_MASK}.csv"


def test_filter_keeps_a_line_whose_number_argument_is_a_phone_number():
    record = _record("gửi tin nhắn tới %d thất bại", (84912345678,))
    ScrubFilter().filter(record)
    assert record.getMessage() == f"gửi tin nhắn tới {PHONE_MASK} thất bại"


def test_filter_masks_the_traceback():
    try:
        raise ValueError(f"not a valid ID: {CCCD}")
    except ValueError:
        record = _record("ingest failed", (), sys.exc_info())
    ScrubFilter().filter(record)
    text = logging.Formatter().format(record)
    assert "ValueError: not a valid ID: " + ID_MASK in text
    assert CCCD not in text


def _configured_handlers() -> set[logging.Handler]:
    """The handlers on every logger of the process that write somewhere, but pytest's own (its capture of
    each test); libraries put a NullHandler on their loggers, which writes nothing."""
    loggers = [logging.getLogger()] + [
        logger for logger in logging.Logger.manager.loggerDict.values() if isinstance(logger, logging.Logger)
    ]
    return {
        h
        for logger in loggers
        for h in logger.handlers
        if not type(h).__module__.startswith("_pytest") and not isinstance(h, logging.NullHandler)
    }


def test_every_configured_handler_scrubs():
    handlers = _configured_handlers()
    assert {h.get_name() for h in handlers} >= {"console", "django.server", "uvicorn", "access"}
    unscrubbed = [h for h in handlers if not any(isinstance(f, ScrubFilter) for f in h.filters)]
    assert unscrubbed == []


@contextmanager
def _written_by(name: str) -> Iterator[io.StringIO]:
    """What the configured handler `name` writes, while the block runs."""
    (handler,) = (h for h in _configured_handlers() if h.get_name() == name)
    assert isinstance(handler, logging.StreamHandler)
    written = io.StringIO()
    # Swapped without setStream(), which flushes the stream it replaces: an earlier test's captured
    # stderr, closed by now, when a command reconfigured logging while pytest captured its output.
    with handler.lock:  # type: ignore[union-attr]
        previous, handler.stream = handler.stream, written
    try:
        yield written
    finally:
        with handler.lock:  # type: ignore[union-attr]
            handler.stream = previous


@pytest.mark.parametrize(
    "path",
    [
        f"/khong-co/{CCCD}/{PHONE}/",  # Django's own 404 (no such page)
        f"/api/v1/units/VN-2025/{CCCD}/+84912345678",  # the API's 404
    ],
)
def test_a_404_on_a_path_holding_an_id_and_a_phone_is_logged_masked(world, path):
    with _written_by("console") as log:
        response = world.leader.client().get(path)
    assert response.status_code == 404
    line = log.getvalue()
    assert "Not Found" in line and ID_MASK in line and PHONE_MASK in line, line
    assert CCCD not in line and "912345678" not in line


def test_the_api_unauthenticated_answer_is_logged_masked(db):
    with _written_by("console") as log:
        response = Client().get(f"/api/v1/units/VN-2025/{CCCD}")
    assert response.status_code == 401
    assert ID_MASK in log.getvalue() and CCCD not in log.getvalue()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@ONCE_IN_THE_SQLITE_PASS  # the server's database is a SQLite file of its own in either pass
def test_dieuhanh_serve_logs_requests_and_404s_masked(tmp_path):
    """The real server at INFO: uvicorn's access line (the whole path and query) and Django's 404."""
    port = _free_port()
    env = os.environ | {
        "DIEUHANH_HOME": str(tmp_path),
        "DIEUHANH_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "DIEUHANH_LIVE": "local",
        "DIEUHANH_LOG_LEVEL": "INFO",
    }
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("dieuhanh")), "serve", "--port", str(port), "--workers", "1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 180  # it migrates a new database
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/v1/health", timeout=2).close()  # noqa: S310 - loopback
                break
            except OSError:
                assert server.poll() is None, server.communicate()
                assert time.monotonic() < deadline, "the server did not answer"
                time.sleep(0.5)
        with pytest.raises(urllib.error.HTTPError) as answer:
            urllib.request.urlopen(f"{base}/khong-co/{CCCD}/?sdt=%2B84912345678&cccd={CCCD}", timeout=10)  # noqa: S310
        assert answer.value.code == 404
    finally:
        server.send_signal(signal.SIGTERM)
        out, err = server.communicate(timeout=30)
    access = [line for line in out.splitlines() if "/khong-co/" in line]
    assert len(access) == 1, out
    assert f'"GET /khong-co/{ID_MASK}/?sdt=%2B{PHONE_MASK}&cccd={ID_MASK} HTTP/1.1" 404' in access[0]
    assert f"Not Found: /khong-co/{ID_MASK}/" in err, err
    assert CCCD not in out + err and "912345678" not in out + err


def test_an_argument_that_cannot_be_read_drops_the_line_not_the_request():
    class Broken:
        def __str__(self):
            raise RuntimeError("hỏng")

    record = _record("người %s", (Broken(),))
    assert ScrubFilter().filter(record)
    assert "bỏ đi" in record.getMessage()
