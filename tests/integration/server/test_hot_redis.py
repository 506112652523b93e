"""HotRedis, the append path's lean pipelined Redis client, against a real Redis: replies reach
their own callers under concurrency, a restart costs no command, scripts survive SCRIPT FLUSH,
errors are redis-py's, and its connections authenticate, select their db and set keepalives."""

from __future__ import annotations

import asyncio
import os
import socket

import pytest
from redis.asyncio import Redis
from redis.exceptions import AuthenticationError, ResponseError

from conveyor.server import app
from conveyor.server.trace.hot_redis import HotRedis, pack, parse
from tests.plugins.services import start_redis

pytestmark = pytest.mark.integration

SCRIPT = "return {tonumber(ARGV[1]) * 2, redis.call('INCR', KEYS[1])}"


@pytest.fixture
async def redis(redis_url: str):  # noqa: ANN201
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


async def test_concurrent_commands_on_few_pipelined_connections_get_their_own_replies(redis) -> None:  # noqa: ANN001
    hot = HotRedis.like(redis, connections=2)
    values = {f"conveyor:test:hot:{i}": os.urandom(i * 997 % 70_000) for i in range(64)}  # up to 68 KiB: split replies
    try:
        await redis.mset(values)
        keys = list(values) * 4
        replies = await asyncio.gather(*(hot.get(key) for key in keys))
        assert replies == [values[key] for key in keys]
        assert await hot.get("conveyor:test:hot:missing") is None
    finally:
        await hot.aclose()
        await redis.delete(*values)


async def test_a_script_runs_by_sha_and_is_loaded_again_after_a_flush(redis) -> None:  # noqa: ANN001
    hot = HotRedis.like(redis)
    script = redis.register_script(SCRIPT)
    try:
        await redis.delete("conveyor:test:hot:n")
        assert await hot.evalsha(script.sha, SCRIPT, ["conveyor:test:hot:n"], [21]) == [42, 1]
        await redis.script_flush()  # what a Redis restart does to loaded scripts
        assert await hot.evalsha(script.sha, SCRIPT, ["conveyor:test:hot:n"], [b"5"]) == [10, 2]
    finally:
        await hot.aclose()
        await redis.delete("conveyor:test:hot:n")


async def test_an_error_reply_raises_response_error_and_the_connection_goes_on(redis) -> None:  # noqa: ANN001
    hot = HotRedis.like(redis, connections=1)
    try:
        await redis.set("conveyor:test:hot:s", b"text")
        with pytest.raises(ResponseError, match="WRONGTYPE"):
            await hot.execute("HGET", "conveyor:test:hot:s", "f")
        assert await hot.get("conveyor:test:hot:s") == b"text"
    finally:
        await hot.aclose()
        await redis.delete("conveyor:test:hot:s")


async def test_commands_survive_a_redis_restart(server_settings) -> None:  # noqa: ANN001
    """Every connection Redis dropped is replaced and the command retried, as the server's
    redis-py pool does (test_redis_pool)."""
    private = start_redis()
    redis = app._redis(server_settings.with_overrides(redis_url=private.url))
    hot = HotRedis.like(redis, connections=3)
    try:
        await redis.set("conveyor:test:hot:r", b"1")
        assert await asyncio.gather(*(hot.get("conveyor:test:hot:r") for _ in range(3))) == [b"1"] * 3  # 3 connections open
        private.stop()
        private = start_redis(private.port)  # same address, empty: every connection is dead
        assert await asyncio.gather(*(hot.get("conveyor:test:hot:r") for _ in range(6))) == [None] * 6
        await redis.set("conveyor:test:hot:r", b"2")
        assert await hot.get("conveyor:test:hot:r") == b"2"
    finally:
        await hot.aclose()
        await redis.aclose()
        private.stop()


async def test_connections_authenticate_select_their_db_and_set_keepalives(redis, redis_url: str, server_settings) -> None:  # noqa: ANN001
    await redis.execute_command("ACL", "SETUSER", "conveyor-hot", "on", ">s3cret", "~*", "+@all")
    port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
    url = f"redis://conveyor-hot:s3cret@127.0.0.1:{port}/3"
    client = app._redis(server_settings.with_overrides(redis_url=url))
    hot = HotRedis.like(client)
    wrong = HotRedis.like(Redis.from_url(f"redis://conveyor-hot:wrong@127.0.0.1:{port}/3"), retries=0)
    try:
        await client.set("conveyor:test:hot:db", b"three")
        assert await hot.get("conveyor:test:hot:db") == b"three"
        assert await redis.get("conveyor:test:hot:db") is None  # db 0 has no such key
        sock = next(pipe for pipe in hot._pipes if pipe is not None).transport.get_extra_info("socket")
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == server_settings.keepalive.idle
        with pytest.raises((AuthenticationError, ResponseError)):
            await wrong.get("conveyor:test:hot:db")
    finally:
        await client.delete("conveyor:test:hot:db")
        await hot.aclose()
        await wrong.aclose()
        await client.aclose()
        await redis.execute_command("ACL", "DELUSER", "conveyor-hot")


def test_replies_parse_only_once_they_have_all_arrived() -> None:
    reply = bytearray(b"*3\r\n:1\r\n$5\r\nhello\r\n$-1\r\n")
    for cut in range(len(reply)):
        assert parse(reply[:cut], 0) is None
    assert parse(reply, 0) == ([1, b"hello", None], len(reply))
    assert b"".join(pack(["SET", "k", 12, memoryview(b"v")])) == b"*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\n12\r\n$1\r\nv\r\n"


async def test_commands_made_in_one_turn_of_the_loop_go_out_in_one_write(redis) -> None:  # noqa: ANN001
    hot = HotRedis.like(redis)
    try:
        await hot.get("conveyor:test:hot:warm")  # connected
        pipe = hot._pipes[0]
        writes: list[bytes] = []
        real_write = pipe.transport.write
        pipe.transport.write = lambda data: (writes.append(data), real_write(data))[1]  # type: ignore[method-assign]
        await redis.set("conveyor:test:hot:b", b"v")
        assert await asyncio.gather(*(hot.get("conveyor:test:hot:b") for _ in range(10))) == [b"v"] * 10
        assert len(writes) == 1 and writes[0].count(b"GET") == 10
    finally:
        await hot.aclose()
        await redis.delete("conveyor:test:hot:b")
