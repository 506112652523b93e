"""The ObjectStore interface: whole objects written once from a stream and read as streams, and
small objects (a log's sealed 128 KiB chunks) written and read whole."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path


class ObjectStore(ABC):
    local_root: Path | None = None  # the directory, for a store on the local filesystem

    @abstractmethod
    async def put(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        """Write the object from ``chunks`` without holding it whole in memory; returns its size.

        Readers never see a partial object: it appears whole once ``put`` returns.
        """

    @abstractmethod
    def open_read(self, key: str, start: int = 0) -> AsyncIterator[bytes]:
        """Stream the object from byte ``start``. Raises ``FileNotFoundError`` if absent."""

    @abstractmethod
    async def size(self, key: str) -> int | None:
        """The object's size, or None when it does not exist."""

    @abstractmethod
    async def delete(self, key: str) -> None:
        """Remove the object; no error if it is absent."""

    @abstractmethod
    async def put_bytes(self, key: str, data: bytes) -> None:
        """Write a small object in one request; it appears whole or not at all."""

    @abstractmethod
    async def get_bytes(self, key: str) -> bytes | None:
        """A small object whole, or None when it does not exist."""

    @abstractmethod
    async def delete_prefix(self, prefix: str) -> int:
        """Remove every object whose key starts with ``prefix``; returns how many there were."""
