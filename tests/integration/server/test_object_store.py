"""The ObjectStore contract, one body per backend: the filesystem and S3 (a local moto server)."""

from __future__ import annotations

import os
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from conveyor.server.storage import ObjectStore, S3Options, open_store
from conveyor.server.storage.obstore_store import PART_SIZE

pytestmark = pytest.mark.integration


def make_store(settings: dict[str, Any], tmp_path: Path) -> ObjectStore:
    s3 = S3Options(
        endpoint=settings.get("object_store_endpoint"),
        region=settings.get("object_store_region"),
        access_key_id=settings.get("object_store_access_key_id"),
        secret_access_key=settings.get("object_store_secret_access_key"),
        allow_http=settings.get("object_store_allow_http", False),
        timeout=settings.get("object_store_timeout", 30),
        retry_timeout=settings.get("object_store_retry_timeout", 60),
    )
    return open_store(settings["object_store_url"], tmp_path / "unused", s3)


@pytest.fixture
def store(object_store: dict[str, Any], tmp_path: Path) -> ObjectStore:
    return make_store(object_store, tmp_path)


async def pieces(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def read(store: ObjectStore, key: str, start: int = 0) -> bytes:
    return b"".join([piece async for piece in store.open_read(key, start)])


async def test_put_then_read_whole_and_from_an_offset(store: ObjectStore) -> None:
    assert await store.put("traces/1/job.log", pieces(b"hello ", b"", b"world\n")) == 12
    assert await store.size("traces/1/job.log") == 12
    assert await read(store, "traces/1/job.log") == b"hello world\n"
    assert await read(store, "traces/1/job.log", 6) == b"world\n"
    assert await read(store, "traces/1/job.log", 12) == b""  # the end: nothing yet, not an error


async def test_missing_objects(store: ObjectStore) -> None:
    assert await store.size("traces/404/job.log") is None
    with pytest.raises(FileNotFoundError):
        await read(store, "traces/404/job.log")
    with pytest.raises(FileNotFoundError):
        await read(store, "traces/404/job.log", 5)
    await store.delete("traces/404/job.log")  # absent: no error


async def test_empty_object(store: ObjectStore) -> None:
    assert await store.put("traces/2/job.log", pieces()) == 0
    assert await store.size("traces/2/job.log") == 0
    assert await read(store, "traces/2/job.log") == b""


async def test_overwrite_and_delete(store: ObjectStore) -> None:
    await store.put("k", pieces(b"first version, longer"))
    await store.put("k", pieces(b"second"))
    assert await read(store, "k") == b"second"
    await store.delete("k")
    assert await store.size("k") is None


async def test_a_failing_source_leaves_no_object(store: ObjectStore) -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield os.urandom(PART_SIZE + 1000)  # past one multipart part: an upload is under way
        raise ConnectionResetError("the live store went away")

    with pytest.raises(ConnectionResetError, match="went away"):
        await store.put("traces/3/job.log", broken())
    assert await store.size("traces/3/job.log") is None  # readers never see a partial object


async def test_a_large_object_streams_through_several_parts(store: ObjectStore) -> None:
    block = os.urandom(64 * 1024 + 7)  # odd sizes: parts never line up with pieces
    count = (3 * PART_SIZE) // len(block) + 5

    async def source() -> AsyncIterator[bytes]:
        for _ in range(count):
            yield block

    size = await store.put("traces/4/job.log", source())
    assert size == count * len(block) == await store.size("traces/4/job.log")
    crc, total, longest = 0, 0, 0
    async for piece in store.open_read("traces/4/job.log"):
        crc, total, longest = zlib.crc32(piece, crc), total + len(piece), max(longest, len(piece))
    assert total == size and crc == zlib.crc32(block * count)
    assert longest <= 16 * 1024 * 1024  # handed out in pieces, never the object whole
    assert await read(store, "traces/4/job.log", size - 10) == (block * count)[-10:]


async def test_small_objects_whole_and_removal_by_prefix(store: ObjectStore) -> None:
    await store.put_bytes("traces/7/chunks/00000000-aa", b"first")
    await store.put_bytes("traces/7/chunks/00000001-bb", memoryview(b"xsecondx")[1:-1])
    await store.put_bytes("traces/7/job.log", b"archive")
    assert await store.get_bytes("traces/7/chunks/00000001-bb") == b"second"
    assert await store.get_bytes("traces/7/chunks/00000009-cc") is None
    assert await store.delete_prefix("traces/7/chunks/") == 2
    assert await store.get_bytes("traces/7/chunks/00000000-aa") is None
    assert await store.delete_prefix("traces/7/chunks/") == 0
    assert await store.get_bytes("traces/7/job.log") == b"archive"  # outside the prefix: kept
