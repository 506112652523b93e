"""ObjectStore on ``obstore``: local filesystem or S3-compatible, chosen by URL."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path

import obstore
from obstore.store import LocalStore, from_url

from conveyor.server.storage.base import ObjectStore
from conveyor.server.storage.s3 import S3Options, s3_store

# A put is a multipart upload: parts of PART_SIZE (S3's minimum is 5 MiB), at most
# PART_CONCURRENCY in flight. Memory held by one put is bounded by about their product,
# whatever the object's size.
PART_SIZE = 5 * 1024 * 1024
PART_CONCURRENCY = 4
READ_CHUNK = 1024 * 1024  # pieces handed out by open_read, however large the object


class ObstoreObjectStore(ObjectStore):
    def __init__(self, store: object, local_root: Path | None = None) -> None:
        self._store = store
        self.local_root = local_root  # the directory of a local filesystem store (else None)
        # reading back a local file: ranged reads (obstore's local stream is ~10x slower than
        # them, measured on 0.12); remote: one streamed GET (moto reads the whole object for
        # every range request, and one request is cheaper against S3 too)
        self._ranged = isinstance(store, LocalStore)

    async def put(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        counted = _Counted(chunks)
        await obstore.put_async(
            self._store, key, counted, use_multipart=True, chunk_size=PART_SIZE, max_concurrency=PART_CONCURRENCY
        )
        if counted.failure is not None:  # the source failed; obstore may report it as its own error
            raise counted.failure
        return counted.size

    async def open_read(self, key: str, start: int = 0) -> AsyncIterator[bytes]:  # type: ignore[override]
        size = await self.size(key)
        if size is None:
            raise FileNotFoundError(key)
        if start >= size:  # reading from the end: nothing yet, not an error
            return
        try:
            if self._ranged:
                position = start
                while position < size:
                    length = min(READ_CHUNK, size - position)
                    piece = await obstore.get_range_async(self._store, key, start=position, length=length)
                    position += length
                    yield bytes(piece)
            else:
                result = await obstore.get_async(self._store, key, options={"range": {"offset": start}} if start else None)
                async for chunk in result.stream(min_chunk_size=READ_CHUNK):
                    yield bytes(chunk)
        except Exception as exc:
            if _not_found(exc):  # deleted while we read
                raise FileNotFoundError(key) from exc
            raise

    async def size(self, key: str) -> int | None:
        try:
            meta = await obstore.head_async(self._store, key)
        except Exception as exc:
            if _not_found(exc):
                return None
            raise
        return int(meta["size"])

    async def delete(self, key: str) -> None:
        try:
            await obstore.delete_async(self._store, key)
        except Exception as exc:
            if not _not_found(exc):
                raise

    async def put_bytes(self, key: str, data: bytes) -> None:
        await obstore.put_async(self._store, key, data)

    async def get_bytes(self, key: str) -> bytes | None:
        try:
            result = await obstore.get_async(self._store, key)
            return bytes(await result.bytes_async())
        except Exception as exc:
            if _not_found(exc):
                return None
            raise

    async def delete_prefix(self, prefix: str) -> int:
        found = [meta["path"] async for batch in obstore.list(self._store, prefix=prefix) for meta in batch]
        if found:
            await obstore.delete_async(self._store, found)  # S3: batched, 1,000 keys a request
        return len(found)


def _not_found(exc: BaseException) -> bool:
    return isinstance(exc, FileNotFoundError) or type(exc).__name__ == "NotFoundError"


class _Counted:
    """Counts what passes, and remembers an error the source raised (obstore wraps it)."""

    def __init__(self, chunks: AsyncIterable[bytes]) -> None:
        self._chunks = chunks
        self.size = 0
        self.failure: BaseException | None = None

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._chunks:
                self.size += len(chunk)
                yield chunk
        except Exception as exc:
            self.failure = exc
            raise


def open_store(url: str | None, default_dir: Path, s3: S3Options | None = None) -> ObstoreObjectStore:
    """The store for ``url``: ``file:///srv/objects``, ``s3://bucket[/prefix]`` (with ``s3``
    options), any other URL obstore knows, or unset: a directory under ``default_dir``."""
    if not url or url.startswith("file://"):
        path = Path(url[len("file://") :]) if url else default_dir
        path.mkdir(parents=True, exist_ok=True)
        return ObstoreObjectStore(LocalStore(str(path), mkdir=True), local_root=path)
    if url.startswith("s3://"):
        return ObstoreObjectStore(s3_store(url, s3 or S3Options()))
    return ObstoreObjectStore(from_url(url))
