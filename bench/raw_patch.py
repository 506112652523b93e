"""A lean log-PATCH client for bench/traces part (a): HTTP/1.1 over one keep-alive asyncio
connection per job, the request head formatted by hand and the body written as it is.

Why: the bench shares 2 cores with the server it measures. httpx spent 4-5 ms of CPU per 1 MiB
PATCH (3-4 ms per 4 KiB one), so with 32 jobs the accept-and-discard baseline was set by the
client near one core (~230 PATCH/s for 1 MiB) and any ratio against it flattered the server.
This client spends ~0.4 ms per 1 MiB PATCH (0.1 ms per 4 KiB one): the discard route then runs
at the server's own ceiling (~600 and ~2,000 PATCH/s). It reads the status line, the headers
(Content-Length and Range) and the body of each answer; nothing else of HTTP is needed here.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import urlsplit


async def stream(url: str, jobs: list[Any], body: bytes, seconds: float, *, discard: bool,
                 offsets: dict[int, int], durable: bool = False) -> dict[str, Any]:
    """``traces_patch._stream``'s contract: each job PATCHes ``body`` back to back for ``seconds``;
    with ``durable`` (and ``discard``) to the discard route's durable twin (``api/bench.py``)."""
    address = urlsplit(url)
    patches, errors = 0, 0
    first_errors: list[str] = []
    deadline = time.monotonic() + seconds

    async def one(job: Any) -> None:
        nonlocal patches, errors
        reader, writer = await asyncio.open_connection(address.hostname, address.port)
        offset = offsets.get(job.id, 0) if not discard else 0
        path = f"/bench/{'durable' if durable else 'discard'}/{job.id}/trace" if discard else f"/api/v4/jobs/{job.id}/trace"
        try:
            while time.monotonic() < deadline:
                head = (f"PATCH {path} HTTP/1.1\r\nHost: {address.netloc}\r\nJOB-TOKEN: {job.token}\r\n"
                        f"Content-Range: {offset}-{offset + len(body) - 1}\r\n"
                        f"Content-Type: text/plain\r\nContent-Length: {len(body)}\r\n\r\n")
                writer.writelines([head.encode(), body])
                await writer.drain()
                status, range_header, text = await _response(reader)
                if status != 202:
                    errors += 1
                    first_errors.append(f"{status} {text[:120]!r}")
                    offset = int((range_header or "0-0").split("-")[1])
                    continue
                offset += len(body)
                patches += 1
        finally:
            writer.close()
            await writer.wait_closed()
        if not discard:
            offsets[job.id] = offset

    started = time.monotonic()
    await asyncio.gather(*(one(job) for job in jobs))
    return round_result(patches, errors, first_errors, time.monotonic() - started, len(body))


def round_result(patches: int, errors: int, first_errors: list[str], elapsed: float, body_size: int) -> dict[str, Any]:
    """One round's figures, whichever client streamed it."""
    return {
        "patches": patches,
        "errors": errors,
        "first_errors": first_errors[:3],
        "seconds": round(elapsed, 2),
        "patches_per_s": round(patches / elapsed, 1),
        "mib_per_s": round(patches * body_size / elapsed / 2**20, 1),
    }


async def _response(reader: asyncio.StreamReader) -> tuple[int, str | None, bytes]:
    """(status, Range header, body) of one answer."""
    status = int((await reader.readline()).split()[1])
    length, range_header = 0, None
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        if name.lower() == "content-length":
            length = int(value)
        elif name.lower() == "range":
            range_header = value.strip()
    return status, range_header, await reader.readexactly(length) if length else b""
