"""LeanHttp: the runner's per-job requests straight on httpcore's connection pool.

A job costs the coordinator four small requests (the job request, the acknowledgement, a trace
PATCH, the final update). Through ``httpx.AsyncClient`` each one also builds and merges URL,
header, cookie and request/response models around the same httpcore call: about half of its
CPU. This sends them on an ``httpcore.AsyncConnectionPool`` set up like the client's transport
(the same TLS context, TCP keepalive socket options, idle expiry, no retries; the client's
transport never applied environment proxies either) and answers with an :class:`Answer` that
reads like an ``httpx.Response``. httpcore's errors become httpx's, so callers handle one kind.
Used only by :class:`conveyor.runner.client.CoordinatorClient`; may import httpx and httpcore.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpcore
import httpx

# The most specific first: httpx's exception for each of httpcore's.
_ERRORS: tuple[tuple[type[Exception], type[httpx.HTTPError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.ProxyError, httpx.ProxyError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
)


@dataclass(frozen=True)
class Answer:
    """What the callers read of a response: status, headers (case-insensitive), body."""

    status_code: int
    headers: httpx.Headers
    content: bytes
    extensions: dict[str, Any] = field(default_factory=dict)  # httpcore's, e.g. "network_stream"

    def json(self) -> Any:
        return json.loads(self.content)


class LeanHttp:
    """Sends a request with a complete body and reads the whole answer."""

    def __init__(
        self,
        *,
        user_agent: str,
        timeout: float,
        connect_timeout: float,
        keepalive_expiry: float,
        socket_options: Iterable[tuple[int, int, int]],
    ) -> None:
        # no connection limit, as the client's transport: each entry's long poll holds one for
        # up to a minute, and every running job may have a PATCH or PUT in flight
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(), max_connections=None, keepalive_expiry=keepalive_expiry,
            retries=0, socket_options=list(socket_options),
        )  # fmt: skip
        self._user_agent = user_agent.encode()
        self._timeouts = {"timeout": {"connect": connect_timeout, "read": timeout, "write": timeout, "pool": timeout}}
        # like httpx's: awaited with every answer (tests look at its connection)
        self.event_hooks: dict[str, list[Callable[[Answer], Awaitable[None]]]] = {"response": []}

    async def request(self, method: str, url: str, *, headers: dict[str, str], content: bytes = b"") -> Answer:
        """``url`` is absolute; ``Host``, ``User-Agent`` and ``Content-Length`` are added."""
        parsed = httpcore.URL(url)
        host = b"[" + parsed.host + b"]" if b":" in parsed.host else parsed.host  # IPv6
        host = host if parsed.port is None else host + b":%d" % parsed.port
        sent = [(b"Host", host), (b"User-Agent", self._user_agent)]
        sent += [(name.encode(), value.encode()) for name, value in headers.items()]
        if content or method in ("POST", "PUT", "PATCH"):
            sent.append((b"Content-Length", b"%d" % len(content)))
        try:
            response = await self._pool.request(
                method.encode(), parsed, headers=sent, content=content, extensions=self._timeouts
            )
        except Exception as exc:
            for theirs, ours in _ERRORS:
                if isinstance(exc, theirs):
                    raise ours(str(exc)) from exc
            raise
        answer = Answer(response.status, httpx.Headers(response.headers), response.content, response.extensions)
        for hook in self.event_hooks["response"]:
            await hook(answer)
        return answer

    async def aclose(self) -> None:
        await self._pool.aclose()
