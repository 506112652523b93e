"""SegmentFiles on a real directory: appends land one after another in this process's file,
never over each other, and read back by extent; a forgotten or deleted directory gets a new file."""

from __future__ import annotations

import asyncio
import errno
import fcntl
import os
from pathlib import Path

import pytest

from conveyor.server.storage import segments as segments_module
from conveyor.server.storage.segments import SegmentFiles


async def test_appends_follow_each_other_in_one_file_per_directory(tmp_path: Path) -> None:
    files = SegmentFiles(tmp_path)
    first = await files.append("7", [b"abc", memoryview(b"defg")])
    second = await files.append("7", [b"hi"])
    other = await files.append("8", [b"zz"])
    assert first.offset == 0 and (second.name, second.offset) == (first.name, 7)
    assert (tmp_path / "7" / first[0]).read_bytes() == b"abcdefghi"
    assert other[1] == 0 and (tmp_path / "8" / other[0]).read_bytes() == b"zz"
    assert await files.read("7", [(first[0], 3, 4), (first[0], 7, 2)]) == [b"defg", b"hi"]


async def test_two_processes_never_share_a_file(tmp_path: Path) -> None:
    a, b = SegmentFiles(tmp_path), SegmentFiles(tmp_path)
    (name_a, _), (name_b, _) = await a.append("1", [b"a"]), await b.append("1", [b"b"])
    assert name_a != name_b
    assert sorted(p.name for p in (tmp_path / "1").iterdir()) == sorted([name_a, name_b])


async def test_concurrent_appends_get_separate_extents(tmp_path: Path) -> None:
    files = SegmentFiles(tmp_path, fsync=False)
    pieces = [bytes([i]) * (100 + i) for i in range(20)]
    places = await asyncio.gather(*(files.append("3", [piece]) for piece in pieces))
    extents = [(name, offset, len(piece)) for (name, offset), piece in zip(places, pieces)]
    assert await files.read("3", extents) == pieces


async def test_missing_files_and_short_extents_read_as_none(tmp_path: Path) -> None:
    files = SegmentFiles(tmp_path)
    name = (await files.append("5", [b"12345"])).name
    assert await files.read("5", [(name, 0, 6), ("nobody", 0, 1), (name, 1, 2)]) == [None, None, b"23"]
    assert await files.read("6", [(name, 0, 1)]) == [None]


async def test_a_deleted_or_forgotten_directory_gets_a_new_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = SegmentFiles(tmp_path)
    name = (await files.append("9", [b"old"])).name
    await files.delete("9")
    assert not (tmp_path / "9").exists()
    renewed, offset = await files.append("9", [b"new"])
    assert renewed != name and offset == 0
    monkeypatch.setattr(segments_module, "OPEN_FILES", 1)
    await files.append("10", [b"x"])  # forgets "9": its next append starts a new file at 0
    again, offset = await files.append("9", [b"more"])
    assert again != renewed and offset == 0
    assert (tmp_path / "9" / renewed).read_bytes() == b"new"


async def test_a_short_write_is_finished(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = os.pwritev

    def at_most_three_bytes(fd: int, buffers: list[memoryview], offset: int) -> int:
        return real(fd, [memoryview(b"".join(bytes(b) for b in buffers))[:3]], offset)

    monkeypatch.setattr(segments_module.os, "pwritev", at_most_three_bytes)
    files = SegmentFiles(tmp_path)
    name = (await files.append("2", [b"abcd", b"efghij", b"k"])).name
    assert (tmp_path / "2" / name).read_bytes() == b"abcdefghijk"


async def test_direct_appends_start_aligned_and_read_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(segments_module, "DIRECT_BUFFER", 2 * segments_module.ALIGN)  # an append larger than the buffer
    files = SegmentFiles(tmp_path, direct=True)
    big = os.urandom(3 * segments_module.ALIGN + 100)
    first = await files.append("4", [b"abc", big])
    second = await files.append("4", [b"tail"])
    assert files.direct, "this file system refused O_DIRECT: the test would not test it"
    assert first.offset == 0 and second.offset == segments_module.aligned(3 + len(big))
    assert second.offset % segments_module.ALIGN == 0
    assert await files.read("4", [(first.name, 0, 3), (first.name, 3, len(big)), (second.name, second.offset, 4)]) == [b"abc", big, b"tail"]
    assert (tmp_path / "4" / first.name).stat().st_size == second.offset + segments_module.ALIGN  # zero-padded


async def test_a_file_system_without_direct_io_gets_buffered_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = os.open

    def refusing_direct(path: object, flags: int, *args: object) -> int:
        if flags & os.O_DIRECT:
            raise OSError(errno.EINVAL, "Invalid argument")  # what tmpfs answers
        return real(path, flags, *args)

    monkeypatch.setattr(segments_module.os, "open", refusing_direct)
    files = SegmentFiles(tmp_path, direct=True)
    placed = await files.append("1", [b"hello"])
    assert not files.direct
    assert await files.read("1", [(placed.name, placed.offset, 5)]) == [b"hello"]
    later = await files.append("1", [b"world"])
    assert later.offset % segments_module.ALIGN == 0  # the end reserved while still direct
    assert await files.read("1", [(later.name, later.offset, 5)]) == [b"world"]


async def test_direct_writes_refused_after_the_open_fall_back_to_buffered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file system may take O_DIRECT at the open and refuse the writes (EINVAL: a larger
    alignment than ALIGN): the bytes are written buffered, and so is everything after."""
    real = os.pwritev

    def refusing_direct_writes(fd: int, buffers: list[memoryview], offset: int) -> int:
        if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT:
            raise OSError(errno.EINVAL, "Invalid argument")
        return real(fd, buffers, offset)

    monkeypatch.setattr(segments_module.os, "pwritev", refusing_direct_writes)
    files = SegmentFiles(tmp_path, direct=True)
    placed = await files.append("3", [b"abc", b"defg"])
    assert not files.direct
    assert await files.read("3", [(placed.name, placed.offset, 7)]) == [b"abcdefg"]
