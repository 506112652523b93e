from __future__ import annotations

import pytest

from conveyor.runner.trace.limit import OutputLimit, Utf8Sanitizer, limit_notice, utf8_boundary

pytestmark = pytest.mark.unit


class Collect:
    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, data: bytes) -> None:
        self.data += data

    def flush(self) -> None:
        pass


def test_notice_is_gitlabs() -> None:
    assert limit_notice(4194304) == (
        b"\n\x1b[33;1mJob's log exceeded limit of 4194304 bytes.\n"
        b"Job execution will continue but no more output will be collected.\x1b[0;m\n"
    )


def test_truncates_once_and_drops_the_rest() -> None:
    sink = Collect()
    limit = OutputLimit(sink, 10)
    limit.write(b"12345")
    limit.write(b"67890abc")
    limit.write(b"more")
    limit.flush()
    assert bytes(sink.data) == b"1234567890" + limit_notice(10)
    assert limit.truncated


def test_exactly_at_the_limit_is_not_truncated() -> None:
    sink = Collect()
    limit = OutputLimit(sink, 4)
    limit.write(b"abcd")
    assert bytes(sink.data) == b"abcd" and not limit.truncated
    limit.write(b"e")
    assert bytes(sink.data) == b"abcd" + limit_notice(4)


def test_cut_does_not_split_a_utf8_character() -> None:
    sink = Collect()
    limit = OutputLimit(sink, 5)
    limit.write("abcdé€".encode())  # é is 2 bytes at offsets 4-5
    assert bytes(sink.data) == b"abcd" + limit_notice(5)
    assert utf8_boundary("€".encode(), 2) == 0


def test_default_limit_is_4_mib() -> None:
    sink = Collect()
    limit = OutputLimit(sink)
    limit.write(b"x" * (4 * 1024 * 1024 + 1))
    assert bytes(sink.data).endswith(limit_notice(4194304))
    assert len(sink.data) == 4 * 1024 * 1024 + len(limit_notice(4194304))


def test_sanitizer_replaces_invalid_bytes_and_rejoins_split_characters() -> None:
    sink = Collect()
    sanitizer = Utf8Sanitizer(sink)
    euro = "€".encode()
    sanitizer.write(b"ok " + euro[:1])
    sanitizer.write(euro[1:] + b" bad \xff\xfe end " + euro[:2])
    sanitizer.flush()
    assert bytes(sink.data).decode() == "ok € bad \ufffd\ufffd end \ufffd"
