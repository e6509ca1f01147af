"""Cells of the spreadsheets and CSV files the platform writes: what users typed stays text.

A spreadsheet reads a cell that starts with = + - @ as a formula (and some strip a leading tab or
carriage return first): a task titled '=HYPERLINK("http://…";"Bấm vào đây")' would become a live link,
or worse, on the screen of the official who opens the export (CSV/formula injection). Every XLSX and
CSV writer of the platform goes through this module, so the rule lives in one place:

- XLSX: every string is written as a text cell (openpyxl would store '=…' as a formula), its value
  unchanged; one that looks like a formula also gets Excel's quote prefix, so editing the cell does not
  turn it into one either.
- CSV has no types: a cell that looks like a formula is written with a leading apostrophe, which
  spreadsheets read as "this is text". Plain numbers ('-5', '-0.25') are left alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE, Cell
from openpyxl.worksheet.worksheet import Worksheet

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"-?\d+(\.\d+)?([eE][-+]?\d+)?")


def looks_like_formula(value: object) -> bool:
    return isinstance(value, str) and value.startswith(FORMULA_START) and not _NUMBER.fullmatch(value)


def csv_cell(value: Any) -> Any:
    """A value for a CSV file, with an apostrophe before text a spreadsheet would evaluate."""
    return "'" + value if looks_like_formula(value) else value


def csv_row(values: Iterable[Any]) -> list[Any]:
    return [csv_cell(v) for v in values]


def append_row(sheet: Worksheet, values: Iterable[Any]) -> None:
    """`sheet.append(values)`, with every string as a text cell."""
    sheet.append([_text_cell(sheet, v) if isinstance(v, str) else v for v in values])


def _text_cell(sheet: Worksheet, value: str) -> Cell:
    # XML 1.0 cannot hold these control characters (openpyxl refuses them): one typed into a field
    # must not make the whole export fail, so it is shown as the replacement character.
    cell = Cell(sheet, value=ILLEGAL_CHARACTERS_RE.sub("\ufffd", value))
    cell.data_type = "s"
    if looks_like_formula(value):
        cell.quotePrefix = True
    return cell
