"""The TraceStore interface (GitLab's build_trace_chunks ``append_data(model, data, offset)``)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncConnection


Recorder = Callable[[AsyncConnection], Awaitable[None]]  # rows written in the caller's transaction


async def _recorded(_conn: AsyncConnection) -> None:
    """Nothing left to record: the store wrote its rows already."""


@dataclass
class Announcement:
    """What to tell live viewers once an append has landed: ``message`` on ``channel``, only if
    ``watch_key`` (the job's "being watched" flag) exists. A store that ``announces`` appends
    does it in the append's own atomic step and sets ``watched``; the caller does it otherwise.

    Checked in the same step as the append, skipping an unwatched job loses nothing: a viewer
    sets the flag before it reads the log's size, so an append that found no flag came before
    that read and the viewer sees its bytes.
    """

    watch_key: str
    channel: str
    message: str
    watched: bool | None = None  # set by a store that announced


@dataclass(frozen=True)
class FinalLog:
    """A job's whole log made durable for its final update (``TraceStore.seal_final``): its
    ``size`` and ``crc32``, and ``record(conn)``, which writes the rows that make it the job's
    durable log (its last chunks' rows, the size and CRC on the job) in the caller's transaction,
    the one that finishes the job. Not recorded (the finish did not happen), nothing is lost: the
    bytes stay live, and the archiver's ``persist`` seals them before it archives."""

    size: int
    crc32: int
    record: Recorder = field(default=_recorded, compare=False)


class TraceStore(ABC):
    """Live (not yet archived) job logs.

    ``append`` is atomic and offset-checked: it writes only when ``offset`` equals the stored
    size, so any number of server processes may take PATCHes for one job. A byte may be
    acknowledged to the runner once ``append`` returns: it is then durable, or in a Redis that
    persists it (AOF) until ``persist`` copies it to PostgreSQL.
    """

    announces = False  # whether append() delivers an Announcement itself

    @abstractmethod
    async def append(self, job_id: int, offset: int, data: bytes, announce: Announcement | None = None) -> int:
        """Append and return the new size; raises ``RangeMismatch(size)`` on a wrong offset.
        With ``announce``, a store that ``announces`` delivers it atomically with the append."""

    @abstractmethod
    async def size(self, job_id: int) -> int:
        """Bytes stored for the job (0 for an unknown job)."""

    @abstractmethod
    async def read(self, job_id: int, start: int, limit: int) -> bytes:
        """Up to ``limit`` bytes from ``start``; fewer (maybe none) at the end."""

    @abstractmethod
    async def persist(self, job_id: int, recorded: tuple[int, int] | None = None) -> tuple[int, int]:
        """Make every byte durable in PostgreSQL and record (size, crc32) on the job; returns them.
        Called before a job may finish and before its log is archived. ``recorded``: the (size,
        crc32) the job's row holds from an earlier persist (the final update's), which a store
        returns as it is when its live state still says the same (nothing appended since)."""

    async def seal_final(self, job_id: int) -> FinalLog:
        """``persist`` for a job's final update, with the rows left for the finish's transaction
        to write (``FinalLog.record``): one transaction for the seal and the finish, not two.
        This default persists at once and leaves nothing to record."""
        size, crc = await self.persist(job_id)
        return FinalLog(size, crc)

    async def unchanged(self, job_id: int, recorded: tuple[int, int]) -> bool:
        """Whether the live log is still exactly ``recorded`` (size, crc32) as the job's final
        update left it: nothing appended since, not archived and dropped meanwhile. False when
        the store cannot tell without asking PostgreSQL (then the caller reads the job's row)."""
        return False

    @abstractmethod
    async def delete(self, job_id: int, *, rows: bool = True) -> None:
        """Drop the live data of a job whose log has been archived; ``rows=False`` when the
        caller's transaction deleted its durable rows already (the archiver's last step)."""

    async def aclose(self) -> None:  # noqa: B027 (most stores hold nothing to close)
        """Close what the store opened itself (connections); called once, at shutdown."""
