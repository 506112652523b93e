"""DockerAPI: a small async client of the Docker Engine API (also Podman's compatible API).

``unix:///path.sock`` goes through httpx's unix-socket transport; ``tcp://host:port`` through a
transport whose every socket sets SO_KEEPALIVE with TCP_KEEPIDLE/KEEPINTVL/KEEPCNT, with TLS
(``ca.pem``, ``cert.pem``, ``key.pem`` in ``tls_cert_path``) when ``tls_verify`` is on.

Ordinary calls have a response timeout; the long-lived ones (``wait``, the log stream) have **no
read timeout**: a quiet job must not end its stream early, which is what a client-wide read
timeout does in docker-py (the "log stream stops after 60 s of silence" trap). Dead peers are
found by TCP keepalive instead.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from conveyor.protocol import keepalive
from conveyor.protocol.enums import FailureReason
from conveyor.runner.errors import ExecutorError
from conveyor.runner.settings import DockerSettings

API_VERSION = "v1.41"
STREAM_TIMEOUT = httpx.Timeout(None, connect=30.0)  # no read timeout: keepalives guard the socket


class DockerError(ExecutorError):
    """The Docker API answered with an error."""

    def __init__(self, message: str, status: int = 0, reason: FailureReason = FailureReason.RUNNER_SYSTEM_FAILURE):
        super().__init__(message, reason)
        self.status = status


def transport(settings: DockerSettings, config: keepalive.KeepaliveConfig) -> tuple[httpx.AsyncBaseTransport, str]:
    """The httpx transport and base URL for ``settings.host``."""
    host = settings.host
    if host.startswith("unix://"):
        return httpx.AsyncHTTPTransport(uds=host[len("unix://"):], retries=0), "http://docker"
    address = host.split("://", 1)[1].rstrip("/")
    options = keepalive.socket_options(config)
    if settings.tls_verify or host.startswith("https://"):
        context = _tls_context(Path(settings.tls_cert_path).expanduser(), verify=settings.tls_verify)
        return httpx.AsyncHTTPTransport(verify=context, socket_options=options, retries=0), f"https://{address}"
    return httpx.AsyncHTTPTransport(socket_options=options, retries=0), f"http://{address}"


def _tls_context(cert_path: Path, *, verify: bool) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(cert_path / "ca.pem") if verify else None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if (cert_path / "cert.pem").exists():
        context.load_cert_chain(cert_path / "cert.pem", cert_path / "key.pem")
    return context


class DockerAPI:
    """Typed-enough calls; errors become ``DockerError``. Use as an async context manager."""

    def __init__(
        self, settings: DockerSettings, config: keepalive.KeepaliveConfig, *, call_timeout: float = 120.0
    ) -> None:
        chosen, base = transport(settings, config)
        self._timeout = httpx.Timeout(call_timeout, connect=30.0)
        self._http = httpx.AsyncClient(
            transport=chosen, base_url=f"{base}/{API_VERSION}", timeout=self._timeout, follow_redirects=False
        )
        self.host = settings.host

    async def __aenter__(self) -> DockerAPI:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, Any] | None = None,
        ok: tuple[int, ...] = (200, 201, 204, 304),
        timeout: httpx.Timeout | None = None,
    ) -> httpx.Response:
        try:
            response = await self._http.request(
                method, path, json=body, params=params, timeout=timeout or self._timeout
            )
        except httpx.HTTPError as exc:
            raise DockerError(f"cannot reach the Docker API at {self.host}: {exc!r}") from exc
        if response.status_code not in ok:
            raise DockerError(f"{method} {path}: {response.status_code} {_message(response)}", response.status_code)
        return response

    async def json_lines(
        self, method: str, path: str, params: dict[str, Any], headers: dict[str, str] | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """A streamed answer of JSON objects (image pulls), one per line."""
        try:
            async with self._http.stream(method, path, params=params, headers=headers, timeout=STREAM_TIMEOUT) as response:
                if response.status_code != 200:
                    await response.aread()
                    raise DockerError(f"{method} {path}: {response.status_code} {_message(response)}",
                                      response.status_code)  # fmt: skip
                async for line in response.aiter_lines():
                    if line.strip():
                        try:
                            yield json.loads(line)
                        except ValueError:
                            continue
        except httpx.HTTPError as exc:
            raise DockerError(f"{method} {path}: {exc!r}") from exc

    async def raw_stream(self, path: str, params: dict[str, Any]) -> AsyncIterator[bytes]:
        """A GET whose body is read as it arrives, without a read timeout."""
        try:
            async with self._http.stream("GET", path, params=params, timeout=STREAM_TIMEOUT) as response:
                if response.status_code != 200:
                    await response.aread()
                    raise DockerError(f"GET {path}: {response.status_code} {_message(response)}", response.status_code)
                async for chunk in response.aiter_raw():
                    yield chunk
        except httpx.HTTPError as exc:
            raise DockerError(f"GET {path}: {exc!r}") from exc


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    if isinstance(body, dict):
        return str(body.get("message") or body.get("cause") or body)
    return str(body)[:300]


def demultiplex(buffer: bytearray) -> list[bytes]:
    """Take complete frames of Docker's multiplexed log stream out of ``buffer``.

    Each frame is an 8-byte header (stream type, 3 zero bytes, big-endian payload size) and the
    payload; stdout and stderr are merged, as the shell executor merges them.
    """
    payloads = []
    while len(buffer) >= 8:
        size = int.from_bytes(buffer[4:8], "big")
        if len(buffer) < 8 + size:
            break
        payloads.append(bytes(buffer[8 : 8 + size]))
        del buffer[: 8 + size]
    return payloads
