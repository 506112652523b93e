"""LeanHttp on real sockets: the request head it writes, its answer, httpx's errors."""

from __future__ import annotations

import asyncio
import socket

import httpx
import pytest

from conveyor.protocol import keepalive
from conveyor.protocol.keepalive import KeepaliveConfig
from conveyor.runner.lean_http import LeanHttp
from tests.plugins.services import free_port

pytestmark = pytest.mark.integration


def lean() -> LeanHttp:
    return LeanHttp(user_agent="conveyor-runner test", timeout=5.0, connect_timeout=5.0, keepalive_expiry=30.0,
                    socket_options=keepalive.socket_options(KeepaliveConfig()))  # fmt: skip


async def capture(host: str, answer: bytes) -> tuple[asyncio.Server, list[bytes]]:
    heads: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        heads.append(b"connection")
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                length = [int(v) for k, v in (h.split(b": ", 1) for h in head.split(b"\r\n")[1:-2])
                          if k == b"Content-Length"]  # fmt: skip
                heads.append(head + await reader.readexactly(length[0] if length else 0))
                writer.write(answer)
                await writer.drain()
        except asyncio.IncompleteReadError:  # the client closed its connection
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, host, 0), heads


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
async def test_request_head_body_and_answer(host: str) -> None:
    if host == "::1" and not socket.has_ipv6:
        pytest.skip("no IPv6")
    server, heads = await capture(host, b"HTTP/1.1 202 Accepted\r\nJob-Status: running\r\nContent-Length: 2\r\n\r\nok")
    port = server.sockets[0].getsockname()[1]
    client = lean()
    try:
        named = f"[{host}]" if ":" in host else host
        for _ in range(2):  # the second request reuses the connection
            answer = await client.request("PATCH", f"http://{named}:{port}/api/v4/jobs/1/trace?debug_trace=false",
                                          headers={"JOB-TOKEN": "t"}, content=b"hello")  # fmt: skip
            assert (answer.status_code, answer.headers.get("job-status"), answer.content) == (202, "running", b"ok")
    finally:
        await client.aclose()
        server.close()
        await server.wait_closed()
    assert heads[0] == b"connection" and heads[2:].count(b"connection") == 0  # one kept-alive connection
    assert heads[1] == (f"PATCH /api/v4/jobs/1/trace?debug_trace=false HTTP/1.1\r\nHost: {named}:{port}\r\n"
                        "User-Agent: conveyor-runner test\r\nJOB-TOKEN: t\r\nContent-Length: 5\r\n\r\nhello").encode()
    assert len(heads) == 3


async def test_network_errors_are_httpx_errors() -> None:
    client = lean()
    try:
        with pytest.raises(httpx.ConnectError):
            await client.request("POST", f"http://127.0.0.1:{free_port()}/api/v4/jobs/request", headers={})
    finally:
        await client.aclose()


async def test_requests_in_flight_are_not_limited_to_a_pool_size() -> None:
    """Regression: httpcore's pool allows 10 connections by default; the client's transport had
    no limit, and long polls of many entries with many jobs' PATCHes need more at once."""
    arrived: list[bool] = []
    everyone = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        arrived.append(True)
        if len(arrived) == 12:
            everyone.set()
        await everyone.wait()  # answer none until all 12 are in flight
        writer.write(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = lean()
    try:
        answers = await asyncio.wait_for(asyncio.gather(*(
            client.request("POST", f"http://127.0.0.1:{port}/api/v4/jobs/request", headers={}) for _ in range(12)
        )), timeout=4)  # fmt: skip
    finally:
        await client.aclose()
        server.close()
        await server.wait_closed()
    assert [a.status_code for a in answers] == [204] * 12
