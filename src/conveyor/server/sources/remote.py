"""Fetching ``include:remote`` files over HTTP(S): a timeout, a size limit, keepalive sockets,
no redirects, and (unless allowed) no loopback, private or link-local addresses.

Synchronous on purpose: ``ciconfig.load`` runs in a worker thread and calls its resolver there.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

import httpx

from conveyor.ciconfig import IncludeFailed
from conveyor.protocol import keepalive

MAX_REMOTE_BYTES = 1024 * 1024
REMOTE_TIMEOUT = 10.0


class RemoteFetcher:
    """``fetch(url)`` -> the body as text, or ``IncludeFailed`` with GitLab's wording."""

    def __init__(
        self,
        *,
        timeout: float = REMOTE_TIMEOUT,
        max_bytes: int = MAX_REMOTE_BYTES,
        allow_local: bool = False,
        keepalive_config: keepalive.KeepaliveConfig | None = None,
    ) -> None:
        self.timeout, self.max_bytes, self.allow_local = timeout, max_bytes, allow_local
        options = keepalive.socket_options(keepalive_config or keepalive.KeepaliveConfig())
        self._transport_options = options

    def fetch(self, url: str) -> str:
        def fail(reason: str) -> IncludeFailed:
            return IncludeFailed(f"Remote file `{url}` could not be fetched because {reason}!")

        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise IncludeFailed(f"Remote file `{url}` does not have a valid address!")
        if not self.allow_local and is_local(parts.hostname):
            raise fail("its address is a local network address")
        transport = httpx.HTTPTransport(socket_options=self._transport_options, retries=0)
        try:
            with httpx.Client(transport=transport, timeout=self.timeout, follow_redirects=False) as client:
                with client.stream("GET", url) as response:
                    if response.status_code != 200:
                        raise fail(f"of HTTP code `{response.status_code}` error")
                    body = bytearray()
                    for chunk in response.iter_bytes():
                        body += chunk
                        if len(body) > self.max_bytes:
                            raise fail(f"it is larger than {self.max_bytes} bytes")
        except httpx.TimeoutException:
            raise fail("of a timeout error") from None
        except httpx.HTTPError:
            raise fail("of a socket error") from None
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError:
            raise fail("it is not UTF-8 text") from None


def is_local(host: str) -> bool:
    """Whether ``host`` is, or resolves to, a loopback, private, link-local or reserved address."""
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False  # the request itself reports the socket error
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if address.is_loopback or address.is_private or address.is_link_local or address.is_reserved:
            return True
    return False
