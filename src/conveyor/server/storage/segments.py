"""Append-only segment files in a local directory: where a live log's sealed chunks go when the
object store is a local filesystem (``trace.durable``).

A file per object and chunk made ext4's inode allocator the bottleneck (creating and deleting a
file per 128 KiB: ``find_inode_bit`` and ``recently_deleted`` cost up to 10 ms of system time per
MiB, bench/README.md). Here each server process appends to one file of its own per directory (a
job's log), so a file is created once per job and process and a whole directory is removed at
once. Bytes once written are never overwritten: an append returns where its bytes are, and
whoever records that location (a row in ``trace_chunks``) decides which bytes count. Two
processes writing the same chunk write two extents; only the recorded one is ever read.

Appends reserve their extent in the event loop (no lock, no seek) and write it in a thread of
their own pool (``os.pwritev``, then ``os.fdatasync`` unless ``fsync`` is off; a new file's
directory entry is made durable too), so a returned location survives a crash as a committed row
does, and a slow disk holds up appends, not the rest of the server's ``to_thread`` work.

May import the standard library only.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

Buffer = bytes | bytearray | memoryview

OPEN_FILES = 10_000  # directories whose file and end this process remembers; past it, a new file


class SegmentFiles:
    def __init__(self, root: Path, *, fsync: bool = True, threads: int = 4) -> None:
        self.root = root
        self.fsync = fsync
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="segments")
        self._process = uuid.uuid4().hex[:16]
        self._numbers = itertools.count()
        self._ends: dict[str, tuple[str, int]] = {}  # directory -> (this process's file in it, its end)
        root.mkdir(parents=True, exist_ok=True)

    async def append(self, directory: str, pieces: Sequence[Buffer]) -> tuple[str, int]:
        """Write ``pieces`` one after another at the end of this process's file in ``directory``;
        returns (file name, offset of the first byte). Durable on return (unless ``fsync`` off)."""
        name, start = self._ends.pop(directory, (None, 0))
        created = name is None
        if name is None:  # first append here (or forgotten): a new file, never another's
            name = f"{self._process}-{next(self._numbers)}"
        self._ends[directory] = (name, start + sum(len(piece) for piece in pieces))
        while len(self._ends) > OPEN_FILES:
            self._ends.pop(next(iter(self._ends)))
        # a failed write leaves its extent unused: the next append goes after it, nothing points in
        await asyncio.get_running_loop().run_in_executor(self._pool, self._write, directory, name, pieces, start, created)
        return name, start

    def _write(self, directory: str, name: str, pieces: Sequence[Buffer], offset: int, created: bool) -> None:
        folder = self.root / directory
        try:
            fd = os.open(folder / name, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o640)
        except FileNotFoundError:
            folder.mkdir(parents=True, exist_ok=True)
            if self.fsync:
                _sync_directory(folder.parent)
            fd = os.open(folder / name, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o640)
        try:
            views = [memoryview(piece).cast("B") for piece in pieces]
            while views:
                written = os.pwritev(fd, views, offset)
                offset += written
                while views and written >= len(views[0]):
                    written -= len(views.pop(0))
                if views and written:  # a short write: the rest of a piece
                    views[0] = views[0][written:]
            if self.fsync:
                os.fdatasync(fd)
        finally:
            os.close(fd)
        if created and self.fsync:
            _sync_directory(folder)  # the new file's name, so the extent can be found again

    async def read(self, directory: str, extents: Sequence[tuple[str, int, int]]) -> list[bytes | None]:
        """The bytes of each (file name, offset, size) in ``directory``; None for an extent whose
        file is gone (the directory was deleted) or that is shorter than ``size``."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._read, directory, extents)

    def _read(self, directory: str, extents: Sequence[tuple[str, int, int]]) -> list[bytes | None]:
        out: list[bytes | None] = []
        open_files: dict[str, int | None] = {}
        try:
            for name, offset, size in extents:
                if name not in open_files:
                    try:
                        open_files[name] = os.open(self.root / directory / name, os.O_RDONLY | os.O_CLOEXEC)
                    except FileNotFoundError:
                        open_files[name] = None
                fd = open_files[name]
                data = os.pread(fd, size, offset) if fd is not None else b""
                out.append(data if len(data) == size else None)
        finally:
            for fd in open_files.values():
                if fd is not None:
                    os.close(fd)
        return out

    async def delete(self, directory: str) -> None:
        """Remove ``directory`` and every file in it (any process's); no error if absent."""
        self._ends.pop(directory, None)
        await asyncio.get_running_loop().run_in_executor(self._pool, shutil.rmtree, self.root / directory, True)


def _sync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
