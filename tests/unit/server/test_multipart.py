"""archive.multipart.FilePart: the file field of a multipart body, however the body is cut."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest

from conveyor.server.archive.multipart import FilePart
from conveyor.server.errors import BadRequest, PayloadTooLarge

pytestmark = pytest.mark.unit

BOUNDARY = "2f1c6a0e9d8b7c6a5f4e3d2c1b0a"
CONTENT_TYPE = f"multipart/form-data; boundary={BOUNDARY}"


def _body(data: bytes, filename: str = "artifacts.zip", before: bytes = b"") -> bytes:
    return (
        before
        + f"--{BOUNDARY}\r\n".encode()
        + f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'.encode()
        + b"Content-Type: application/octet-stream\r\n\r\n"
        + data
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )


def _field(name: str, value: bytes) -> bytes:
    return f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode() + value + b"\r\n"


async def _pieces(body: bytes, size: int) -> AsyncIterator[bytes]:
    for i in range(0, len(body), size):
        yield body[i : i + size]


async def _read(body: bytes, size: int, limit: int = 1 << 20) -> tuple[str, bytes]:
    part = FilePart(_pieces(body, size), CONTENT_TYPE, field="file", size_limit=limit)
    filename = await part.start()
    return filename, b"".join([chunk async for chunk in part.chunks()])


@pytest.mark.parametrize("size", [1, 3, 7, 64, 4096, 1 << 20])
async def test_file_survives_any_cut(size: int) -> None:
    data = os.urandom(5000) + f"\r\n--{BOUNDARY[:-1]}".encode() + os.urandom(100)  # a near-boundary inside
    body = _body(data, before=_field("metadata", b"ignored") + _field("token", b"t"))
    assert await _read(body, size) == ("artifacts.zip", data)


async def test_utf8_filename_and_empty_file() -> None:
    assert await _read(_body(b"", filename="résultats.zip"), 5) == ("résultats.zip", b"")


async def test_over_the_limit_raises_before_anything_past_it_is_yielded() -> None:
    part = FilePart(_pieces(_body(b"x" * 101), 10), CONTENT_TYPE, field="file", size_limit=100)
    await part.start()
    seen = 0
    with pytest.raises(PayloadTooLarge):
        async for chunk in part.chunks():
            seen += len(chunk)
    assert seen <= 100


async def test_exactly_the_limit_is_accepted() -> None:
    assert (await _read(_body(b"x" * 100), 10, limit=100))[1] == b"x" * 100


@pytest.mark.parametrize(
    "body",
    [
        _body(b"data")[:-len(f"\r\n--{BOUNDARY}--\r\n")],  # ends inside the file
        _field("metadata", b"only"),  # no file field
        b"",
    ],
)
async def test_incomplete_or_fileless_bodies_are_400(body: bytes) -> None:
    part = FilePart(_pieces(body, 7), CONTENT_TYPE, field="file", size_limit=1000)
    with pytest.raises(BadRequest):
        await part.start()
        async for _ in part.chunks():
            pass


@pytest.mark.parametrize("content_type", ["application/zip", "multipart/form-data", ""])
def test_not_multipart_is_400(content_type: str) -> None:
    with pytest.raises(BadRequest):
        FilePart(_pieces(b"", 1), content_type, field="file", size_limit=1)
