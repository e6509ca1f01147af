"""The warehouse from the command line: sources, venues, QR images, file ingest, purge."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image
from typer.testing import CliRunner

from dieuhanh.accounts.services import user_for_token
from dieuhanh.cli import app
from dieuhanh.warehouse.models import CheckIn, Rollup, Venue
from dieuhanh.warehouse.models import TestResult as LabTest
from dieuhanh.warehouse.qr import venue_code
from dieuhanh.warehouse.services import purge
from tests.factories import record

runner = CliRunner()


def _invoke(*args: str):
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_sources_create_prints_the_token_alone_on_the_last_line(cli):
    code, output = _invoke(
        "sources", "create", "bluezone", "--kinds", "checkin,health", "--edition", "VN-2021"
    )
    assert code == 0, output
    user = user_for_token(output.strip().splitlines()[-1])
    assert user.source.kinds == ["checkin", "health"] and user.source.edition_id == "VN-2021"
    code, output = _invoke("sources", "create", "x", "--kinds", "checkin,weather")
    assert code == 1 and "weather" in output


def test_venues_import_reports_bad_lines_and_keeps_good_ones(cli, tmp_path):
    csv = tmp_path / "venues.csv"
    csv.write_text(
        "code,name,kind,commune,lat,lon,dwell_minutes\n"
        "V1,Chợ Bến Thành,market,26743,10.77,106.69,45\n"
        "V2,Trường học,castle,26743,,,\n"
        "V3,Văn phòng,office,VN-2025:26740,,,\n"
        "V4,Bến xe,transport,26740,10.5,,\n",
        encoding="utf-8",
    )
    code, output = _invoke("venues", "import", str(csv))
    assert code == 2
    assert "dòng 3, kind" in output and "dòng 5, lon" in output
    assert "mới 2" in output
    assert set(Venue.objects.values_list("code", flat=True)) == {"V1", "V3"}
    code, output = _invoke("venues", "import", str(csv))
    assert "mới 0, cập nhật 2" in output


def test_venues_qr_writes_a_signed_image(cli, venues, tmp_path):
    out = tmp_path / "qr.png"
    code, output = _invoke("venues", "qr", "V-BT-CHO", "-o", str(out))
    assert code == 0, output
    assert Image.open(out).size[0] > 100
    payload = output.split("(")[-1].split(")")[0]
    assert venue_code(payload) == "V-BT-CHO"
    assert _invoke("venues", "qr", "NOPE", "-o", str(out))[0] == 1


def _write(path: Path, records: list[dict]) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    return path


def test_ingest_ndjson_csv_and_parquet_files(cli, platform, venues, tmp_path):
    ndjson = _write(tmp_path / "tests.ndjson", [record("test", 1), record("test", 2, result="bad")])
    code, output = _invoke("ingest", str(ndjson), "--kind", "test", "--source", "ncovi")
    assert code == 0, output
    assert '"accepted": 1' in output and "dòng 2, result" in output
    csv = tmp_path / "tests.csv"
    csv.write_text(
        "source_event_id,person_id,commune,sampled_at,method,result\n"
        "c1,079201001234,26743,2021-08-26 10:00,rapid,negative\n"
    )
    assert '"accepted": 1' in _invoke("ingest", str(csv), "--kind", "test", "--source", "ncovi")[1]
    table = pa.Table.from_pylist([{**record("test", 9), "sampled_at": datetime(2021, 8, 26, 3, tzinfo=UTC)}])
    pq.write_table(table, tmp_path / "tests.parquet")
    output = _invoke("ingest", str(tmp_path / "tests.parquet"), "--kind", "test", "--source", "ncovi")[1]
    assert '"accepted": 1' in output
    assert LabTest.objects.count() == 3 and sum(Rollup.objects.values_list("count", flat=True)) == 3


def test_ingest_refuses_what_it_cannot_do(cli, platform, tmp_path):
    ndjson = _write(tmp_path / "x.ndjson", [record("test")])
    assert "không có nguồn" in _invoke("ingest", str(ndjson), "--kind", "test", "--source", "nope")[1]
    assert (
        "không có tệp"
        in _invoke("ingest", str(tmp_path / "missing"), "--kind", "test", "--source", "ncovi")[1]
    )


def test_purge_deletes_old_person_events_and_keeps_rollups(platform, venues):
    platform.send("checkin", [record("checkin", 1)])
    platform.send("test", [record("test", 1)])
    report = purge(actor=None, now=datetime(2021, 10, 1, tzinfo=UTC), retention={"checkin": 30, "test": 365})
    assert report.deleted == {"checkin": 1, "test": 0}
    assert CheckIn.objects.count() == 0 and LabTest.objects.count() == 1
    assert Rollup.objects.get(kind="checkin").count == 1
