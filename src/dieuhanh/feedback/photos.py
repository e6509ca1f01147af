"""Photos that officials post with an answer or a progress update are public: before one is stored,
what the camera wrote about it besides the picture is removed — EXIF (the GPS position, the device,
the time), XMP, IPTC, comments, and anything after the image's end. The picture's bytes are copied as
they are (nothing is decoded or re-encoded, so nothing is lost and no decoder runs on a stranger's
file). What a viewer needs to draw it right stays: JFIF, the colour profile (ICC) and Adobe's colour
transform in a JPEG; the palette, transparency, gamma, colour space and pixel size in a PNG.

A file whose structure cannot be followed is refused: metadata could not be said to be gone.
"""

from __future__ import annotations

import struct

# JPEG: APP0 (JFIF) is kept, APP2 only as a colour profile, APP14 only as Adobe's colour transform;
# APP1 (EXIF, XMP), APP13 (IPTC), the other APPn and COM are dropped.
_APP0, _APP2, _APP14, _COM, _SOS, _EOI = 0xE0, 0xE2, 0xEE, 0xFE, 0xDA, 0xD9
_STANDALONE = {0x01, *range(0xD0, 0xD8)}  # TEM, RST0-7: no length
# PNG: the chunks a viewer needs; every other ancillary chunk (eXIf, tEXt, zTXt, iTXt, tIME, private
# ones) is dropped.
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_KEEP = frozenset(
    {b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"iCCP", b"sBIT", b"pHYs"}
    | {b"bKGD", b"acTL", b"fcTL", b"fdAT"}
)


class UnreadablePhoto(ValueError):
    """The file says it is a JPEG or PNG but its structure cannot be followed."""


def strip_metadata(kind: str, content: bytes) -> bytes:
    """The photo without its metadata; `kind` is its type told by its first bytes (files.content_type)."""
    if kind == "image/jpeg":
        return _jpeg(content)
    if kind == "image/png":
        return _png(content)
    raise UnreadablePhoto(kind)


def _kept_jpeg_segment(marker: int, payload: bytes) -> bool:
    if marker == _APP0:
        return True
    if marker == _APP2:
        return payload.startswith(b"ICC_PROFILE\x00")
    if marker == _APP14:
        return payload.startswith(b"Adobe")
    return not (0xE0 <= marker <= 0xEF or marker == _COM)


def _jpeg(data: bytes) -> bytes:
    if not data.startswith(b"\xff\xd8"):
        raise UnreadablePhoto("no JPEG start")
    out = [b"\xff\xd8"]
    pos, size = 2, len(data)
    while True:
        if pos >= size or data[pos] != 0xFF:
            raise UnreadablePhoto(f"no marker at byte {pos}")
        while pos < size and data[pos] == 0xFF:  # fill bytes
            pos += 1
        if pos >= size:
            raise UnreadablePhoto("ends inside a marker")
        marker = data[pos]
        pos += 1
        if marker == _EOI:
            out.append(b"\xff\xd9")  # whatever follows the image's end (a maker's trailer) is dropped
            return b"".join(out)
        if marker in _STANDALONE:
            out.append(bytes((0xFF, marker)))
            continue
        if pos + 2 > size:
            raise UnreadablePhoto("ends inside a segment's length")
        (length,) = struct.unpack(">H", data[pos : pos + 2])
        end = pos + length
        if length < 2 or end > size:
            raise UnreadablePhoto(f"a segment runs past the end (byte {pos})")
        if _kept_jpeg_segment(marker, data[pos + 2 : end]):
            out.append(bytes((0xFF, marker)) + data[pos:end])
        pos = end
        if marker == _SOS:
            # The scan's coded data, up to the next marker that is not a stuffed 0xFF00 or a restart.
            scan = pos
            while True:
                pos = data.find(b"\xff", pos)
                if pos < 0 or pos + 1 >= size:
                    raise UnreadablePhoto("the image data has no end")
                if data[pos + 1] == 0x00 or data[pos + 1] in _STANDALONE:  # stuffed 0xFF, a restart
                    pos += 2
                    continue
                break
            out.append(data[scan:pos])


def _png(data: bytes) -> bytes:
    if not data.startswith(_PNG_SIGNATURE):
        raise UnreadablePhoto("no PNG signature")
    out = [_PNG_SIGNATURE]
    pos, size = len(_PNG_SIGNATURE), len(data)
    while True:
        if pos + 8 > size:
            raise UnreadablePhoto("the PNG has no end chunk")
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        end = pos + 12 + length  # length, type, data, CRC
        if end > size:
            raise UnreadablePhoto(f"a chunk runs past the end (byte {pos})")
        if kind in _PNG_KEEP:
            out.append(data[pos:end])
        pos = end
        if kind == b"IEND":  # whatever follows the end is dropped
            return b"".join(out)
