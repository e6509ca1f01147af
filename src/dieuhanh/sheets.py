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

import csv
import io
import re
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from django.utils.translation import gettext as _
from openpyxl import load_workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE, Cell
from openpyxl.utils.exceptions import InvalidFileException
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


# Reading: the CSV and XLSX files people import (one reader, for every import that takes either)


class TableError(ValueError):
    """A file that cannot be read as a table at all (not CSV/XLSX, not UTF-8, not a workbook)."""


def read_table(path: Path) -> tuple[list[str], Iterator[tuple[int, dict[str, Any]]]]:
    """The header and (line number, row) of a CSV or XLSX file, line numbers as a person sees them
    (the header is line 1); blank lines are skipped. A CSV file's delimiter (, ; or tab) is sniffed."""
    kind = path.suffix.lower()
    if kind not in (".csv", ".xlsx"):
        raise TableError(_("%(file)s: needs a .csv or .xlsx file") % {"file": path.name})
    try:
        return _read_xlsx(path) if kind == ".xlsx" else _read_csv(path)
    except UnicodeDecodeError as e:
        raise TableError(
            _("%(file)s: not UTF-8 text (byte %(byte)s)") % {"file": path.name, "byte": e.start}
        ) from None
    except (zipfile.BadZipFile, InvalidFileException, KeyError):
        raise TableError(_("%(file)s: not an XLSX file") % {"file": path.name}) from None


def _read_csv(path: Path) -> tuple[list[str], Iterator[tuple[int, dict[str, Any]]]]:
    text = path.read_text(encoding="utf-8-sig")
    try:
        dialect: Any = csv.Sniffer().sniff(text.partition("\n")[0], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.DictReader(io.StringIO(text, newline=""), dialect=dialect)
    header = [h.strip() for h in reader.fieldnames or []]
    reader.fieldnames = header

    def rows() -> Iterator[tuple[int, dict[str, Any]]]:
        for row in reader:
            if any((v or "").strip() for v in row.values() if isinstance(v, str)):
                yield reader.line_num, row

    return header, rows()


def _read_xlsx(path: Path) -> tuple[list[str], Iterator[tuple[int, dict[str, Any]]]]:
    book = load_workbook(path, read_only=True, data_only=True)
    sheet = book.worksheets[0]
    lines = sheet.iter_rows(values_only=True)
    header = [str(v).strip() if v is not None else "" for v in next(lines, ())]

    def rows() -> Iterator[tuple[int, dict[str, Any]]]:
        for line, values in enumerate(lines, start=2):
            if any(v not in (None, "") for v in values):
                yield line, dict(zip(header, values, strict=False))
        book.close()

    return header, rows()
