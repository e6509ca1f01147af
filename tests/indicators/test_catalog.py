"""`dieuhanh catalog load` as a user types it: the shipped ICT catalogue, twice, and a broken file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dieuhanh.cli import app
from dieuhanh.indicators.models import DataElement, DataSet, DataValue, Indicator, Target

ICT = Path(__file__).parents[2] / "src" / "dieuhanh" / "indicators" / "catalogs" / "ict.json"

runner = CliRunner()


@pytest.fixture
def cli_db(world, monkeypatch):
    # The command sets Django up and migrates; inside a test both are already done.
    monkeypatch.setattr("dieuhanh.cli.migrate", lambda: None)
    return world


def load(*args: str):
    return runner.invoke(app, ["catalog", "load", *args])


def said(result) -> str:
    """The output on one line, however the console wrapped it."""
    return " ".join(result.output.split())


def counts() -> dict[str, int]:
    return {
        "elements": DataElement.objects.count(),
        "data sets": DataSet.objects.count(),
        "indicators": Indicator.objects.count(),
        "targets": Target.objects.count(),
        "values": DataValue.objects.count(),
    }


def test_loading_the_ict_catalogue_twice_changes_nothing_the_second_time(cli_db):
    document = json.loads(ICT.read_text(encoding="utf-8"))

    first = load("ict", "--with-seed-values")
    assert first.exit_code == 0, first.output
    assert "Đã nạp danh mục." in said(first)
    assert counts() == {
        "elements": len(document["data_elements"]),
        "data sets": len(document["data_sets"]),
        "indicators": len(document["indicators"]),
        "targets": len(document["targets"]),
        "values": len(document["seed_values"]),
    }
    revenue = DataValue.objects.get(element__code="postal_revenue", period="2021YTD08")
    assert (revenue.unit.ref, revenue.value, revenue.status) == ("VN-2025:VN", 24500, "estimate")
    assert Indicator.objects.get(code="postal_revenue_yoy").formula == "yoy(#{postal_revenue})"

    second = load("ict", "--with-seed-values")
    assert second.exit_code == 0, second.output
    assert "Không có thay đổi." in said(second)
    assert "Đã nạp danh mục." not in said(second)
    assert counts()["values"] == len(document["seed_values"])


@pytest.mark.parametrize(
    "formula, bad",
    [
        ("#{bad_a} / #{bad_b} * 100", "#{bad_b}"),  # an unknown reference
        ("#{bad_a} / * 100", "*"),  # an operand missing
    ],
)
def test_a_catalogue_with_a_formula_error_loads_nothing(cli_db, tmp_path, formula, bad):
    path = tmp_path / "broken.json"
    path.write_text(
        json.dumps(
            {
                "name": "broken",
                "data_elements": [
                    {"code": "bad_a", "name": "A", "aggregation": "sum", "period_type": "monthly"}
                ],
                "indicators": [
                    {"code": "good_copy", "name": "Bản sao", "formula": "#{bad_a}"},
                    {"code": "bad_ratio", "name": "Tỷ lệ hỏng", "formula": formula},
                ],
            }
        ),
        encoding="utf-8",
    )
    before = counts()

    result = load(str(path))

    assert result.exit_code == 1, result.output
    assert "bad_ratio" in said(result)
    assert f"(vị trí {formula.index(bad) + 1})" in said(result)  # the CLI speaks the default language
    assert counts() == before
    assert not DataElement.objects.filter(code="bad_a").exists()
    assert not Indicator.objects.filter(code="good_copy").exists()
