"""Trace (job log) wire helpers: Content-Range parsing, Range formatting, CRC-32 checksums.

The runner sends ``Content-Range: <start>-<end>`` (inclusive end, no unit). The server answers
``Range: 0-<size>`` where ``size`` is the exclusive end: the next offset it expects.
"""

from __future__ import annotations

import re
import zlib

from conveyor.protocol.errors import ConveyorError

PATCH_LIMIT = 1024 * 1024  # runner DefaultTracePatchLimit
_CONTENT_RANGE = re.compile(r"^\s*(\d+)-(\d+)\s*$")
_RANGE = re.compile(r"^\s*0-(\d+)\s*$")


class BadContentRange(ConveyorError):
    """Content-Range must be '<start>-<end>' with start <= end."""


def parse_content_range(value: str | None) -> tuple[int, int]:
    """Return (start, inclusive end) from a runner's Content-Range header."""
    if not value:
        raise BadContentRange("Missing header Content-Range")
    match = _CONTENT_RANGE.match(value)
    if not match:
        raise BadContentRange(f"Malformed Content-Range {value!r}; expected '<start>-<end>'")
    start, end = int(match.group(1)), int(match.group(2))
    if end < start:
        raise BadContentRange(f"Content-Range {value!r} ends before it starts")
    return start, end


def content_range(start: int, length: int) -> str:
    """The Content-Range value for ``length`` bytes starting at ``start``."""
    return f"{start}-{start + length - 1}"


def format_range(size: int) -> str:
    """The server's Range answer: ``0-<size>`` with an exclusive end."""
    return f"0-{size}"


def parse_range(value: str | None) -> int:
    """The server offset from a ``Range: 0-<size>`` header; 0 when absent or malformed."""
    match = _RANGE.match(value or "")
    return int(match.group(1)) if match else 0


def format_checksum(crc: int) -> str:
    return f"crc32:{crc & 0xFFFFFFFF:08x}"


def parse_checksum(value: str | None) -> int | None:
    if not value or not value.startswith("crc32:"):
        return None
    try:
        return int(value[len("crc32:") :], 16)
    except ValueError:
        return None


def crc32(data: bytes, previous: int = 0) -> int:
    return zlib.crc32(data, previous)
