"""What an uploaded file is, told by its first bytes, never by its name or declared type: the one rule
for officials' attachments (directives) and citizens' photos (feedback)."""

from __future__ import annotations

from pathlib import PurePath

SIGNATURES = {
    b"%PDF-": "application/pdf",
    b"\x89PNG\r\n\x1a\n": "image/png",
    b"\xff\xd8\xff": "image/jpeg",
    b"PK\x03\x04": "application/zip",  # DOCX and XLSX are ZIP files; the name's extension tells which
}
OFFICE_TYPES = {
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def content_type(content: bytes, name: str = "") -> str | None:
    """The file's type by its content (a ZIP is an Office file only by its name's extension), or None."""
    kind = next((t for magic, t in SIGNATURES.items() if content.startswith(magic)), None)
    if kind == "application/zip":
        return OFFICE_TYPES.get(PurePath(name).suffix.lower())
    return kind
