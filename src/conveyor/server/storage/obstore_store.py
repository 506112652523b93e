"""ObjectStore on ``obstore``: local filesystem or S3-compatible, chosen by URL."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path

import obstore
from obstore.store import LocalStore, from_url

from conveyor.server.storage.base import ObjectStore


class ObstoreObjectStore(ObjectStore):
    def __init__(self, store: object) -> None:
        self._store = store

    async def put(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        counted = _Counted(chunks)
        await obstore.put_async(self._store, key, counted)
        return counted.size

    async def open_read(self, key: str, start: int = 0) -> AsyncIterator[bytes]:  # type: ignore[override]
        if start:
            size = await self.size(key)
            if size is None:
                raise FileNotFoundError(key)
            if start >= size:  # reading from the end: nothing yet, not an error
                return
        try:
            result = await obstore.get_async(self._store, key, options={"range": {"offset": start}} if start else None)
        except Exception as exc:  # obstore raises its own NotFoundError (a FileNotFoundError subclass)
            if isinstance(exc, FileNotFoundError) or type(exc).__name__ == "NotFoundError":
                raise FileNotFoundError(key) from exc
            raise
        async for chunk in result.stream():
            yield bytes(chunk)

    async def size(self, key: str) -> int | None:
        try:
            meta = await obstore.head_async(self._store, key)
        except FileNotFoundError:
            return None
        except Exception as exc:
            if type(exc).__name__ == "NotFoundError" or "not found" in str(exc).lower():
                return None
            raise
        return int(meta["size"])

    async def delete(self, key: str) -> None:
        try:
            await obstore.delete_async(self._store, key)
        except FileNotFoundError:
            pass


class _Counted:
    def __init__(self, chunks: AsyncIterable[bytes]) -> None:
        self._chunks = chunks
        self.size = 0

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[bytes]:
        async for chunk in self._chunks:
            self.size += len(chunk)
            yield chunk


def open_store(url: str | None, default_dir: Path) -> ObstoreObjectStore:
    """``url`` (e.g. ``s3://bucket``, ``file:///srv/objects``) or a directory under ``default_dir``."""
    if not url:
        default_dir.mkdir(parents=True, exist_ok=True)
        return ObstoreObjectStore(LocalStore(str(default_dir), mkdir=True))
    if url.startswith("file://"):
        path = Path(url[len("file://") :])
        path.mkdir(parents=True, exist_ok=True)
        return ObstoreObjectStore(LocalStore(str(path), mkdir=True))
    return ObstoreObjectStore(from_url(url))
