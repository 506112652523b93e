"""A lean, pipelined Redis client for the two commands every log PATCH sends: the append
script (``EVALSHA``) and, when a PATCH completes a hot chunk, the chunk's ``GET``.

Why not redis-py here: it spent 91 us of CPU per append-script call (pool checkout under a
condition, retry wrapper, timeout context, command packing, RESP3 parser), about a sixth of the
server's CPU for a 4 KiB PATCH; this client spends 19 us (bench/README.md, part a). Everything
else the server asks of Redis still goes through redis-py.

Commands share a connection (or a few), pipelined: a command is queued when it is made and the
queue is written once per turn of the event loop, so the appends of PATCHes that arrive together
cost one ``send`` and one Redis wake-up, not one each; a reply is the next unclaimed one on its
connection (Redis answers in order). A connection that
fails fails every command waiting on it, and the next command opens a new one; a failed command
is retried ``retries`` times with jittered backoff, as the server's redis-py pool does (safe for
these two: the append is offset-checked, a GET reads). Every TCP connection sets keepalives.
Errors are redis-py's exception types, so callers handle one family.

Configured from a redis-py client (``like``): its host or unix socket, TLS, user, password, db
and keepalive options.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import random
import socket
import ssl
from collections.abc import Sequence

from redis.asyncio import Redis
from redis.asyncio.connection import SSLConnection, UnixDomainSocketConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError

Arg = bytes | bytearray | memoryview | str | int
CONNECTIONS = 1  # one connection batches best; more only spread a reconnect's cost
RETRIES = 3


class _Pipe(asyncio.Protocol):
    """One connection: written commands, and the futures of their replies in order."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.lost: Exception | None = None
        self._buffer = bytearray()
        self._waiting: collections.deque[asyncio.Future[object]] = collections.deque()
        self._queued: list[bytes] = []  # commands to write at the end of this turn of the loop

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while self._waiting:
            parsed = parse(self._buffer, 0)
            if parsed is None:
                return
            value, end = parsed
            del self._buffer[:end]
            waiter = self._waiting.popleft()
            if not waiter.done():  # its caller may have been cancelled: the reply is dropped
                waiter.set_result(value)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = RedisConnectionError(f"Redis connection lost: {exc or 'closed'}")
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_exception(self.lost)

    def send(self, parts: list[bytes]) -> asyncio.Future[object]:
        if self.lost is not None or self.transport is None or self.transport.is_closing():
            raise self.lost or RedisConnectionError("Redis connection closed")
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[object] = loop.create_future()
        self._waiting.append(waiter)
        if not self._queued:
            loop.call_soon(self._flush)
        self._queued += parts
        return waiter

    def _flush(self) -> None:
        queued, self._queued = self._queued, []
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(b"".join(queued))  # else connection_lost fails their waiters

    @property
    def usable(self) -> bool:
        return self.lost is None and self.transport is not None and not self.transport.is_closing()


class HotRedis:
    def __init__(
        self, *, host: str = "127.0.0.1", port: int = 6379, path: str | None = None, tls: bool = False,
        username: str | None = None, password: str | None = None, db: int = 0,
        keepalive: Sequence[tuple[int, int, int]] = (), connections: int = CONNECTIONS, retries: int = RETRIES,
    ) -> None:
        self._address = (host, port, path, tls)
        self._hello = _handshake(username, password, db)
        self._keepalive = list(keepalive)
        self._pipes: list[_Pipe | None] = [None] * connections
        self._locks = [asyncio.Lock() for _ in range(connections)]
        self._turn = itertools.cycle(range(connections))
        self._retries = retries

    @classmethod
    def like(cls, redis: Redis, *, connections: int = CONNECTIONS, retries: int = RETRIES) -> HotRedis:
        """A client for the Redis ``redis`` (a redis-py client) talks to, with its keepalives."""
        pool = redis.connection_pool
        options = pool.connection_kwargs
        # keepalive always (lesson 1); the probe timing of the redis-py client's, when it has one
        keepalive = [(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)]
        timing = options.get("socket_keepalive_options")
        if options.get("socket_keepalive") and isinstance(timing, dict):
            keepalive += [(socket.IPPROTO_TCP, option, value) for option, value in timing.items()]
        unix = issubclass(pool.connection_class, UnixDomainSocketConnection)
        return cls(
            host=options.get("host", "127.0.0.1"), port=int(options.get("port", 6379)),
            path=options.get("path") if unix else None, tls=issubclass(pool.connection_class, SSLConnection),
            username=options.get("username"), password=options.get("password"), db=int(options.get("db") or 0),
            keepalive=keepalive, connections=connections, retries=retries,
        )

    async def evalsha(self, sha: str, script: str, keys: Sequence[Arg], args: Sequence[Arg]) -> object:
        """Run a Lua script by its SHA-1, loading it first if Redis does not know it (a restart)."""
        try:
            return await self.execute("EVALSHA", sha, len(keys), *keys, *args)
        except NoScriptError:
            return await self.execute("EVAL", script, len(keys), *keys, *args)

    async def get(self, key: str) -> bytes | None:
        return await self.execute("GET", key)  # type: ignore[return-value]

    async def execute(self, *command: Arg) -> object:
        """Send one command and return its reply; a Redis error reply raises ``ResponseError``."""
        parts = pack(command)
        for attempt in itertools.count():
            try:
                pipe = await self._pipe()
                reply = await pipe.send(parts)
                break
            except (RedisConnectionError, OSError) as exc:
                if attempt >= self._retries:
                    raise exc if isinstance(exc, RedisConnectionError) else RedisConnectionError(str(exc)) from exc
                await asyncio.sleep(min(1.0, 0.05 * 2**attempt) * random.random())
        if isinstance(reply, ResponseError):
            raise reply
        return reply

    async def aclose(self) -> None:
        for index, pipe in enumerate(self._pipes):
            if pipe is not None and pipe.transport is not None:
                pipe.transport.close()
            self._pipes[index] = None

    async def _pipe(self) -> _Pipe:
        """A usable connection, taking them in turn; a missing or failed one is (re)opened."""
        index = next(self._turn)
        pipe = self._pipes[index]
        if pipe is not None and pipe.usable:
            return pipe
        async with self._locks[index]:
            pipe = self._pipes[index]
            if pipe is None or not pipe.usable:
                pipe = self._pipes[index] = await self._connect()
        return pipe

    async def _connect(self) -> _Pipe:
        loop = asyncio.get_running_loop()
        host, port, path, tls = self._address
        if path is not None:
            _, pipe = await loop.create_unix_connection(_Pipe, path)
        else:
            context = ssl.create_default_context() if tls else None
            transport, pipe = await loop.create_connection(_Pipe, host, port, ssl=context)
            sock = transport.get_extra_info("socket")
            for level, option, value in self._keepalive:
                sock.setsockopt(level, option, value)
        for command in self._hello:
            reply = await pipe.send(pack(command))
            if isinstance(reply, ResponseError):
                pipe.transport.close()
                raise reply
        return pipe


def _handshake(username: str | None, password: str | None, db: int) -> list[tuple[Arg, ...]]:
    hello: list[tuple[Arg, ...]] = []
    if password is not None:
        hello.append(("AUTH", username, password) if username else ("AUTH", password))
    if db:
        hello.append(("SELECT", db))
    return hello


def pack(command: Sequence[Arg]) -> list[bytes]:
    """A command in RESP: an array of bulk strings (large arguments are not copied here)."""
    parts = [b"*%d\r\n" % len(command)]
    for arg in command:
        if isinstance(arg, str):
            arg = arg.encode()
        elif isinstance(arg, int):
            arg = b"%d" % arg
        parts += (b"$%d\r\n" % len(arg), arg, b"\r\n")  # type: ignore[arg-type]
    return parts


def parse(buffer: bytearray, start: int) -> tuple[object, int] | None:
    """The RESP2 reply at ``start`` and the offset past it; None if it has not all arrived.
    An error reply is returned as a ``ResponseError`` (``NoScriptError`` for NOSCRIPT)."""
    line_end = buffer.find(b"\r\n", start)
    if line_end < 0:
        return None
    kind, line, position = buffer[start], bytes(buffer[start + 1 : line_end]), line_end + 2
    if kind == ord(":"):
        return int(line), position
    if kind == ord("$"):
        length = int(line)
        if length < 0:
            return None, position
        if len(buffer) < position + length + 2:
            return None
        return bytes(buffer[position : position + length]), position + length + 2
    if kind == ord("*"):
        count, items = int(line), []
        if count < 0:
            return None, position
        for _ in range(count):
            parsed = parse(buffer, position)
            if parsed is None:
                return None
            item, position = parsed
            items.append(item)
        return items, position
    if kind == ord("+"):
        return line.decode(), position
    if kind == ord("-"):
        message = line.decode(errors="replace")
        return (NoScriptError if message.startswith("NOSCRIPT") else ResponseError)(message), position
    raise RedisConnectionError(f"unexpected reply from Redis: {bytes(buffer[start:start + 40])!r}")
