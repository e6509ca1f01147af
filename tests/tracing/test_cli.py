"""`dieuhanh trace` from a terminal."""

from __future__ import annotations

import csv
import json

from typer.testing import CliRunner

from dieuhanh.accounts.models import AuditEntry
from dieuhanh.cli import app
from dieuhanh.tracing.models import Case
from tests.factories import CASE, P1, P2, P3, P4, hexkey

runner = CliRunner()


def test_trace_registers_the_case_and_writes_one_list_per_commune(tracers, outbreak, tmp_path):
    result = runner.invoke(
        app,
        [
            "trace",
            CASE,
            "--depth",
            "2",
            "--as",
            "national-tracer",
            "--confirmed-at",
            "2021-08-27T10:00:00+07:00",
            "--split-dir",
            str(tmp_path / "xa"),
            "-o",
            str(tmp_path / "all.xlsx"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "2 F1, 2 F2" in result.output
    case = Case.objects.get()
    assert case.created_by == tracers.national.user
    files = sorted(p.name for p in (tmp_path / "xa").iterdir())
    assert files == ["VN-2025-26740.csv", "VN-2025-26743.csv"]
    with (tmp_path / "xa" / "VN-2025-26740.csv").open(encoding="utf-8-sig") as f:
        keys = {row["Mã định danh ẩn danh"] for row in csv.DictReader(f)}
    assert keys == {hexkey(P1), hexkey(P3)}
    assert (tmp_path / "all.xlsx").stat().st_size > 0
    assert AuditEntry.objects.filter(action="tracing.contacts", actor=tracers.national.user).count() == 1


def test_trace_by_case_number_prints_the_apis_json(tracers, outbreak):
    runner.invoke(
        app, ["trace", CASE, "--as", "benthanh-tracer", "--confirmed-at", "2021-08-27T10:00:00+07:00"]
    )
    case = Case.objects.get()
    result = runner.invoke(
        app, ["trace", "--case", str(case.pk), "--as", "benthanh-tracer", "--json", "--depth", "2"]
    )
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout[: result.stdout.rindex("}") + 1])
    assert {c["person_key"] for c in body["contacts"]} == {hexkey(P1), hexkey(P2), hexkey(P4)}


def test_trace_explains_what_is_wrong(tracers, outbreak, world):
    missing = runner.invoke(app, ["trace", CASE, "--as", "national-tracer"])
    assert missing.exit_code == 1 and "--confirmed-at" in missing.output
    nobody = runner.invoke(app, ["trace", CASE, "--as", "nobody"])
    assert nobody.exit_code == 1 and "không có người dùng 'nobody'" in nobody.output
    operator = runner.invoke(
        app, ["trace", CASE, "--as", "benthanh-operator", "--confirmed-at", "2021-08-27T10:00"]
    )
    assert operator.exit_code == 1 and "quyền của tổ truy vết" in operator.output
    assert not Case.objects.exists()
