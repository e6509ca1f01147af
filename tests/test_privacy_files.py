"""Files about people are their owner's alone, and the demo's raw IDs do not stay on disk (issue 16, point 5).

The database, the keys and whatever `dieuhanh` exports into DIEUHANH_HOME are created 0600 (folders
0700), whatever the umask a process starts with.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.files.base import ContentFile

from dieuhanh.cli import main
from dieuhanh.demo import DEMO_SOURCE, load_demo_events
from dieuhanh.warehouse import ingest
from dieuhanh.warehouse.models import CheckIn
from dieuhanh.warehouse.models import TestResult as LabTest
from dieuhanh.warehouse.services import create_source


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# A first start in an empty home under the usual umask (022): settings make the home, the keys and the
# SQLite database; the modes are read while the connection is open, before SQLite removes its -wal file.
FIRST_START = """
import json, os, stat
os.umask(0o022)
os.environ["DJANGO_SETTINGS_MODULE"] = "dieuhanh.settings"
import django
django.setup()
from django.conf import settings
from django.db import connection
with connection.cursor() as cursor:
    cursor.execute("CREATE TABLE t (x)")
    cursor.execute("INSERT INTO t VALUES (1)")
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in [settings.HOME, *settings.HOME.iterdir()]}
print(json.dumps(modes))
"""


def test_a_first_start_makes_the_home_database_and_keys_owner_only(tmp_path):
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIEUHANH_")}
    env["DIEUHANH_HOME"] = str(home)
    done = subprocess.run(
        [sys.executable, "-c", FIRST_START], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    modes = json.loads(done.stdout.splitlines()[-1])
    assert modes.pop("home") == 0o700
    expected = ["dieuhanh.sqlite3", "dieuhanh.sqlite3-wal", "dieuhanh.sqlite3-shm"]
    expected += ["secret_key", "pseudonym_key", "qr_key", "vault_key"]
    assert {name: modes.get(name) for name in expected} == dict.fromkeys(expected, 0o600)
    assert {oct(m) for name, m in modes.items() if not name.startswith("static")} == {"0o600"}, modes


@pytest.fixture
def usual_umask():
    """The command sets its process's umask: give the test's back afterwards."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def test_what_the_command_writes_is_owner_only(world, usual_umask, tmp_path, monkeypatch):
    # `dieuhanh synth -o` writes raw IDs and phone numbers, as an export of tracing's contacts would.
    out = tmp_path / "xuat"
    monkeypatch.setattr(sys, "argv", ["dieuhanh", "synth", "--scale", "60", "--days", "1", "-o", str(out)])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 0
    files = list(out.iterdir())
    assert {f.name for f in files} >= {"venues.csv", "checkin.ndjson", "health.ndjson"}
    assert {f.name: _mode(f) for f in files} == {f.name: 0o600 for f in files}
    assert _mode(out) == 0o700


def test_stored_files_are_owner_only(media):
    # Attachments of directives and photos of feedback go through Django's storage.
    from django.core.files.storage import default_storage

    name = default_storage.save("attachments/ab/cd.pdf", ContentFile(b"%PDF-1.4"))
    assert _mode(media / name) == 0o600
    assert _mode(media / "attachments") == _mode(media / "attachments" / "ab") == 0o700


ID_SHAPED = re.compile(rb"(?<!\d)\d{12}(?!\d)|\+84\d{9}")


def test_init_demo_removes_the_raw_id_files_it_ingested(world, tmp_path, monkeypatch):
    folder = tmp_path / "demo-data"
    read = ingest.ndjson_records
    held_ids: dict[str, bool] = {}

    def reading(f):  # each file as the ingest opens it: it is there, with raw IDs
        held_ids[Path(f.name).name] = bool(ID_SHAPED.search(Path(f.name).read_bytes()))
        return read(f)

    monkeypatch.setattr(ingest, "ndjson_records", reading)
    lines = load_demo_events(folder, scale=300, days=2)
    assert held_ids["checkin.ndjson"] and held_ids["health.ndjson"], held_ids
    assert not folder.exists(), list(folder.iterdir())
    assert CheckIn.objects.filter(source__name=DEMO_SOURCE).exists()
    assert LabTest.objects.filter(source__name=DEMO_SOURCE).exists()
    assert any(line.startswith("Điểm QR") for line in lines)


def test_a_later_init_demo_removes_files_an_earlier_version_left(world, tmp_path):
    folder = tmp_path / "demo-data"
    folder.mkdir()
    (folder / "checkin.ndjson").write_text('{"person": "079201001234"}\n')
    (folder / "venues.csv").write_text("code\n")
    (folder / "ghi-chu.txt").write_text("not ours\n")  # what we did not write stays
    create_source(actor=None, name=DEMO_SOURCE, kinds=["checkin"], edition="VN-2025")
    lines = load_demo_events(folder, scale=300, days=2)
    assert lines == [f"Dữ liệu mẫu đã có (nguồn {DEMO_SOURCE}): giữ nguyên."]
    assert [p.name for p in folder.iterdir()] == ["ghi-chu.txt"]


def test_a_failed_demo_ingest_leaves_no_raw_id_file(world, tmp_path, monkeypatch):
    folder = tmp_path / "demo-data"

    def broken(*args, **kwargs):
        raise RuntimeError("mất kết nối cơ sở dữ liệu")

    monkeypatch.setattr("dieuhanh.warehouse.services.ingest", broken)
    with pytest.raises(RuntimeError):
        load_demo_events(folder, scale=300, days=2)
    assert not folder.exists()
