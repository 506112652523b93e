from __future__ import annotations

import zlib

import pytest

from conveyor.protocol import trace

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("value", "expected"), [("0-346", (0, 346)), ("347-840", (347, 840)), (" 5-5 ", (5, 5))])
def test_parse_content_range(value: str, expected: tuple[int, int]) -> None:
    assert trace.parse_content_range(value) == expected


@pytest.mark.parametrize("value", [None, "", "bytes 0-3", "3-1", "-1-4", "0-", "a-b", "0-3/10"])
def test_bad_content_range(value: str | None) -> None:
    with pytest.raises(trace.BadContentRange):
        trace.parse_content_range(value)


def test_content_range_of_a_chunk_is_inclusive() -> None:
    assert trace.content_range(0, 347) == "0-346"
    assert trace.content_range(347, 494) == "347-840"


@pytest.mark.parametrize(("header", "offset"), [("0-347", 347), ("0-0", 0), (None, 0), ("junk", 0), ("5-10", 0)])
def test_parse_range(header: str | None, offset: int) -> None:
    assert trace.parse_range(header) == offset


def test_checksum_format_matches_gitlab() -> None:
    assert trace.format_checksum(0x6A482BDE) == "crc32:6a482bde"
    assert trace.parse_checksum("crc32:6a482bde") == 0x6A482BDE
    assert trace.parse_checksum("md5:00") is None
    data = b"abc" * 1000
    assert trace.crc32(data[1000:], trace.crc32(data[:1000])) == zlib.crc32(data)
