"""Streaming size + CRC-32 of a log on either side of an archive, never holding it whole.

``LiveLog`` yields a job's live log piece by piece (through the ``TraceStore`` interface only)
and sums what passed; ``stored_digest`` re-reads an object from the store and sums it.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from conveyor.server.errors import ServerError
from conveyor.server.storage import ObjectStore
from conveyor.server.trace.base import TraceStore

READ_SIZE = 1024 * 1024  # bytes asked of the live store per read: a few chunks at a time


class ArchiveMismatch(ServerError):
    """The archived object does not match the live log; the live chunks are kept."""


@dataclass(frozen=True)
class Digest:
    size: int
    crc32: int

    def __str__(self) -> str:
        return f"{self.size} bytes crc32:{self.crc32:08x}"


class LiveLog:
    """The first ``size`` bytes of a job's live log, as an async iterable; ``digest`` once read."""

    def __init__(self, live: TraceStore, job_id: int, size: int) -> None:
        self._live = live
        self._job_id = job_id
        self._size = size
        self._crc = 0
        self._read = 0

    @property
    def digest(self) -> Digest:
        return Digest(self._read, self._crc)

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._pieces()

    async def _pieces(self) -> AsyncIterator[bytes]:
        self._crc = self._read = 0
        while self._read < self._size:
            piece = await self._live.read(self._job_id, self._read, min(READ_SIZE, self._size - self._read))
            if not piece:
                raise ArchiveMismatch(f"job {self._job_id}: live log ends at {self._read}, expected {self._size}")
            self._crc = zlib.crc32(piece, self._crc)
            self._read += len(piece)
            yield piece


async def stored_digest(objects: ObjectStore, key: str) -> Digest | None:
    """Size and CRC-32 of the object as the store returns it now; None when it does not exist."""
    crc = size = 0
    try:
        async for piece in objects.open_read(key):
            crc = zlib.crc32(piece, crc)
            size += len(piece)
    except FileNotFoundError:
        return None
    return Digest(size, crc)
