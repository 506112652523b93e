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

With ``direct`` (the server's default) the bytes bypass the page cache (``O_DIRECT``): they are
written once and read perhaps once more (by the archiver), so caching them only costs. Through
the page cache every MiB written took 1.0-1.3 ms of kernel CPU here, allocating and filling fresh
pages (on a VM that hands freed memory back to its host, every page is fresh), against 0.3 ms
direct, copy into an aligned buffer included (bench/README.md). Direct I/O needs aligned offsets
and lengths: each append starts at a multiple of ``ALIGN`` and is zero-padded to one (the
recorded extents skip the padding). A file system without ``O_DIRECT`` (tmpfs) gets buffered
writes instead, detected on the first open.

May import the standard library only.
"""

from __future__ import annotations

import asyncio
import errno
import itertools
import mmap
import os
import shutil
import threading
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

Buffer = bytes | bytearray | memoryview


class Placed(NamedTuple):
    """Where an append's bytes are: ``name`` (the file in its directory) and ``offset`` (of the
    first byte; the pieces follow each other).

    The pieces are not hashed here: zlib lets go of the GIL for every piece, and each handover
    back cost a context switch with the event loop. Hashing 128 KiB pieces in this thread took
    the discard route plus a segment write of each 1 MiB body from 1.84 to 2.53 ms of server CPU
    per PATCH, more than hashing them in the event loop (0.25 ms per MiB)."""

    name: str
    offset: int

OPEN_FILES = 10_000  # directories whose file and end this process remembers; past it, a new file
ALIGN = 4096  # O_DIRECT's alignment of file offsets, lengths and memory (every common block size divides it)
DIRECT_BUFFER = 4 * 1024 * 1024  # each writer thread's aligned buffer; a larger append goes out in several writes


def aligned(size: int) -> int:
    """``size`` rounded up to a multiple of ``ALIGN``."""
    return -(-size // ALIGN) * ALIGN


class SegmentFiles:
    def __init__(self, root: Path, *, fsync: bool = True, direct: bool = False, threads: int = 4) -> None:
        self.root = root
        self.fsync = fsync
        self.direct = direct  # O_DIRECT writes; turned off if the file system refuses them
        self._buffers = threading.local()  # each writer thread's aligned buffer (direct writes)
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="segments")
        self._process = uuid.uuid4().hex[:16]
        self._numbers = itertools.count()
        self._ends: dict[str, tuple[str, int]] = {}  # directory -> (this process's file in it, its end)
        root.mkdir(parents=True, exist_ok=True)

    async def append(self, directory: str, pieces: Sequence[Buffer]) -> Placed:
        """Write ``pieces`` one after another at the end of this process's file in ``directory``.
        Durable on return (unless ``fsync`` off)."""
        name, start = self._ends.pop(directory, (None, 0))
        created = name is None
        if name is None:  # first append here (or forgotten): a new file, never another's
            name = f"{self._process}-{next(self._numbers)}"
        end = start + sum(len(piece) for piece in pieces)
        self._ends[directory] = (name, aligned(end) if self.direct else end)
        while len(self._ends) > OPEN_FILES:
            self._ends.pop(next(iter(self._ends)))
        # a failed write leaves its extent unused: the next append goes after it, nothing points in
        await asyncio.get_running_loop().run_in_executor(self._pool, self._write, directory, name, pieces, start, created)
        return Placed(name, start)

    def _write(self, directory: str, name: str, pieces: Sequence[Buffer], offset: int, created: bool) -> None:
        folder = self.root / directory
        if not (self.direct and self._write_once(folder, name, pieces, offset, direct=True)):
            self._write_once(folder, name, pieces, offset, direct=False)
        if created and self.fsync:
            _sync_directory(folder)  # the new file's name, so the extent can be found again

    def _write_once(self, folder: Path, name: str, pieces: Sequence[Buffer], offset: int, *, direct: bool) -> bool:
        """Write (and fdatasync) ``pieces`` at ``offset``; False when ``direct`` and the file
        system refuses O_DIRECT, at the open or at the write: buffered from now on."""
        fd = self._open(folder, name, direct)
        if fd is None:
            self.direct = False
            return False
        try:
            views = [memoryview(piece).cast("B") for piece in pieces]
            if direct:
                self._write_direct(fd, views, offset)
            else:
                _write_all(fd, views, offset)
            if self.fsync:
                os.fdatasync(fd)
        except OSError as exc:
            if not (direct and exc.errno == errno.EINVAL):
                raise
            self.direct = False  # opened O_DIRECT, yet the writes are refused (alignment)
            return False
        finally:
            os.close(fd)
        return True

    def _open(self, folder: Path, name: str, direct: bool) -> int | None:
        """The segment file opened for writing (created, with its directory, if need be); None
        when ``direct`` and the file system does not support O_DIRECT."""
        flags = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | (os.O_DIRECT if direct else 0)
        try:
            try:
                return os.open(folder / name, flags, 0o640)
            except FileNotFoundError:
                folder.mkdir(parents=True, exist_ok=True)
                if self.fsync:
                    _sync_directory(folder.parent)
                return os.open(folder / name, flags, 0o640)
        except OSError as exc:
            if direct and exc.errno == errno.EINVAL:
                return None
            raise

    def _write_direct(self, fd: int, views: list[memoryview], offset: int) -> None:
        """Copy ``views`` through this thread's aligned buffer and write it out O_DIRECT, the last
        write zero-padded to ``ALIGN``; ``offset`` is aligned (``append`` keeps ends aligned)."""
        buffer: mmap.mmap | None = getattr(self._buffers, "buffer", None)
        if buffer is None:
            buffer = self._buffers.buffer = mmap.mmap(-1, DIRECT_BUFFER)  # page-aligned
        window = memoryview(buffer)
        try:
            filled = 0
            for view in views:
                while view:
                    taken = min(len(view), DIRECT_BUFFER - filled)
                    window[filled : filled + taken] = view[:taken]
                    filled, view = filled + taken, view[taken:]
                    if filled == DIRECT_BUFFER:
                        _write_all(fd, [window], offset)
                        offset, filled = offset + filled, 0
            if filled:
                end = aligned(filled)
                window[filled:end] = bytes(end - filled)
                _write_all(fd, [window[:end]], offset)
        finally:
            window.release()

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


def _write_all(fd: int, views: list[memoryview], offset: int) -> None:
    """``pwritev`` until every byte of ``views`` is written (a short write resumes after itself)."""
    while views:
        written = os.pwritev(fd, views, offset)
        offset += written
        while views and written >= len(views[0]):
            written -= len(views.pop(0))
        if views and written:  # a short write: the rest of a piece
            views[0] = views[0][written:]


def _sync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
