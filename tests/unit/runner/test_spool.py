from __future__ import annotations

import zlib
from pathlib import Path

import pytest

from conveyor.runner.trace.spool import TraceSpool

pytestmark = pytest.mark.unit


def test_size_crc_and_reads_at_any_offset(tmp_path: Path) -> None:
    spool = TraceSpool(tmp_path / "traces" / "job-1.log")
    chunks = [b"hello ", b"", b"world\n", bytes(range(256)) * 10]
    for chunk in chunks:
        spool.write(chunk)
    data = b"".join(chunks)
    assert spool.size == len(data)
    assert spool.crc32 == zlib.crc32(data)
    assert spool.checksum == f"crc32:{zlib.crc32(data):08x}"
    assert spool.read_all() == data
    for offset in (0, 1, 6, 11, len(data) - 1):
        assert spool.read(offset, 7) == data[offset : offset + 7]
    assert spool.read(len(data), 10) == b""
    assert spool.read(len(data) + 5, 10) == b""
    assert spool.path.read_bytes() == data
    spool.delete()
    assert not spool.path.exists()
    spool.delete()


def test_reads_interleave_with_writes(tmp_path: Path) -> None:
    spool = TraceSpool(tmp_path / "job.log")
    spool.write(b"abc")
    assert spool.read(1, 100) == b"bc"
    spool.write(b"def")
    assert spool.read(2, 2) == b"cd"
    assert spool.read_all() == b"abcdef"
    spool.close()
    with pytest.raises(ValueError):
        spool.read(0, 1)


def test_example_checksums_from_the_spec(tmp_path: Path) -> None:
    spool = TraceSpool(tmp_path / "job.log")
    assert spool.checksum == "crc32:00000000"
    spool.write(b"x" * 10)
    assert spool.checksum == f"crc32:{zlib.crc32(b'x' * 10):08x}"
    spool.close()


def test_negative_offset_is_rejected(tmp_path: Path) -> None:
    spool = TraceSpool(tmp_path / "job.log")
    with pytest.raises(ValueError):
        spool.read(-1, 1)
    spool.close()
