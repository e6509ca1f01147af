"""dieuhanh units add and dieuhanh enterprises import (CSV or XLSX, per-line errors, good lines kept)."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from dieuhanh.cli import app
from dieuhanh.units.models import Unit
from tests.factories import make_caller

runner = CliRunner()


def test_units_add_registers_a_park_and_prints_its_ref_last(cli):
    r = runner.invoke(
        app,
        ["units", "add", "industrial_park", "--tax-code", "0300000201", "--name", "KCN Bến Thành",
         "--commune", "VN-2025:26743"],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert r.output.strip().splitlines()[-1] == "VN-2025:0300000201"
    bad = runner.invoke(
        app, ["units", "add", "enterprise", "--tax-code", "12", "--name", "X", "--commune", "26743"]
    )
    assert bad.exit_code == 1 and "tax_code" in bad.output


def test_units_add_as_a_commune_operator_is_bounded_by_no_area(cli):
    make_caller("op", cli.commune_a, "operator")
    r = runner.invoke(
        app,
        [
            "units",
            "add",
            "enterprise",
            "--tax-code",
            "0300000202",
            "--name",
            "X",
            "--commune",
            "26743",
            "--as",
            "op",
        ],
    )
    assert r.exit_code == 1 and "commune" in r.output
    assert not Unit.objects.filter(code="0300000202").exists()


def test_enterprises_import_keeps_good_lines_and_names_bad_ones(cli, tmp_path: Path):
    path = tmp_path / "dn.csv"
    path.write_text(
        "loai;ma_so_thue;ten;dia_chi;xa;kcn\n"
        "industrial_park;0300000301;KCN Một;;26743;\n"  # line 2: a park
        "enterprise;0300000302;Nhà máy A;Lô 1;26743;VN-2025:0300000301\n"  # line 3: in the park above
        "enterprise;03000;Nhà máy B;;26743;\n"  # line 4: bad tax code
        "factory;0300000303;Nhà máy C;;26743;\n"  # line 5: bad kind
        "enterprise;0300000304;Nhà máy D;;00004;\n"  # line 6: Hà Nội's, outside the area
        "enterprise;0300000302;Nhà máy A;Lô 1;26743;VN-2025:0300000301\n",  # line 7: already registered
        encoding="utf-8",
    )
    make_caller("hcm-admin", cli.province, "admin")
    r = runner.invoke(app, ["enterprises", "import", str(path), "--as", "hcm-admin"])
    assert r.exit_code == 2, r.output
    assert "dòng 4, cột ma_so_thue" in r.output
    assert "dòng 5, cột loai" in r.output
    assert "dòng 6, cột xa" in r.output
    assert "mới 2, đã có 1, bị từ chối 3" in r.output
    assert Unit.objects.get(code="0300000302").parent.code == "0300000301"


def test_enterprises_import_refuses_a_file_without_its_columns(cli, tmp_path: Path):
    path = tmp_path / "dn.csv"
    path.write_text("ten\nX\n", encoding="utf-8")
    r = runner.invoke(app, ["enterprises", "import", str(path)])
    assert r.exit_code == 1 and "thiếu cột kind, tax_code" in r.output


def test_enterprises_venue_and_follow_succession(firms, monkeypatch):
    from dieuhanh.warehouse.enterprises.models import VenueLink
    from dieuhanh.warehouse.services import VenueInput, save_venue

    monkeypatch.setattr("dieuhanh.cli.migrate", lambda: None)
    save_venue(actor=None, venue=VenueInput("G-CLI-1", "Cổng 1", "factory", "26743"))
    r = runner.invoke(app, ["enterprises", "venue", "G-CLI-1", "--enterprise", firms.one.ref])
    assert r.exit_code == 0, r.output
    assert VenueLink.objects.get(venue__code="G-CLI-1").enterprise == firms.one
    assert (
        runner.invoke(app, ["enterprises", "venue", "G-NONE", "--enterprise", firms.one.ref]).exit_code == 1
    )
    r = runner.invoke(app, ["enterprises", "venue", "G-CLI-1"])  # belongs to none again
    assert r.exit_code == 0 and not VenueLink.objects.exists()
    r = runner.invoke(app, ["enterprises", "follow-succession"])
    assert r.exit_code == 0 and "Đã chuyển 0" in r.output  # everything already stands on the 2025 map
