"""The TraceStore interface (GitLab's build_trace_chunks ``append_data(model, data, offset)``)."""

from __future__ import annotations

from abc import ABC, abstractmethod


class TraceStore(ABC):
    """Live (not yet archived) job logs.

    ``append`` is atomic and offset-checked: it writes only when ``offset`` equals the stored
    size, so any number of server processes may take PATCHes for one job. A byte may be
    acknowledged to the runner once ``append`` returns: it is then durable, or in a Redis that
    persists it (AOF) until ``persist`` copies it to PostgreSQL.
    """

    @abstractmethod
    async def append(self, job_id: int, offset: int, data: bytes) -> int:
        """Append and return the new size; raises ``RangeMismatch(size)`` on a wrong offset."""

    @abstractmethod
    async def size(self, job_id: int) -> int:
        """Bytes stored for the job (0 for an unknown job)."""

    @abstractmethod
    async def read(self, job_id: int, start: int, limit: int) -> bytes:
        """Up to ``limit`` bytes from ``start``; fewer (maybe none) at the end."""

    @abstractmethod
    async def persist(self, job_id: int) -> tuple[int, int]:
        """Make every byte durable in PostgreSQL and record (size, crc32) on the job; returns them.
        Called before a job may finish and before its log is archived."""

    @abstractmethod
    async def delete(self, job_id: int) -> None:
        """Drop the live data of a job whose log has been archived."""
