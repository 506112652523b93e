"""Runner metrics in the Prometheus text format, served on ``listen_address`` at ``/metrics``.

The runner installs with the base dependencies only, so this is a few counters and a tiny
asyncio HTTP/1.1 responder instead of prometheus-client. One ``Metrics`` object is made in
``main`` and passed down; nothing here is module-level state.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict

from conveyor.protocol import keepalive

_HELP = {
    "conveyor_runner_jobs_total": ("counter", "Jobs finished, by runner and final state."),
    "conveyor_runner_job_failures_total": ("counter", "Failed jobs, by runner and failure reason."),
    "conveyor_runner_jobs_running": ("gauge", "Jobs running now, by runner."),
    "conveyor_runner_trace_bytes_sent_total": ("counter", "Trace bytes the coordinator accepted."),
    "conveyor_runner_request_errors_total": ("counter", "Coordinator requests that failed, by endpoint."),
    "conveyor_runner_requests_total": ("counter", "Coordinator requests answered, by endpoint and status."),
}

Labels = tuple[tuple[str, str], ...]


class Metrics:
    """Counters and gauges keyed by (name, labels). Safe from one event loop."""

    def __init__(self) -> None:
        self._values: dict[str, dict[Labels, float]] = defaultdict(lambda: defaultdict(float))

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None:
        self._values[name][tuple(sorted(labels.items()))] += amount

    def value(self, name: str, **labels: str) -> float:
        return self._values[name].get(tuple(sorted(labels.items())), 0.0)

    def job_started(self, runner: str) -> None:
        self.inc("conveyor_runner_jobs_running", 1, runner=runner)

    def job_finished(self, runner: str, state: str, failure_reason: str | None) -> None:
        self.inc("conveyor_runner_jobs_running", -1, runner=runner)
        self.inc("conveyor_runner_jobs_total", runner=runner, state=state)
        if failure_reason:
            self.inc("conveyor_runner_job_failures_total", runner=runner, reason=failure_reason)

    def bytes_sent(self, amount: int) -> None:
        self.inc("conveyor_runner_trace_bytes_sent_total", amount)

    def request_answered(self, endpoint: str, status: int) -> None:
        self.inc("conveyor_runner_requests_total", endpoint=endpoint, status=str(status))

    def request_error(self, endpoint: str) -> None:
        self.inc("conveyor_runner_request_errors_total", endpoint=endpoint)

    def render(self) -> str:
        out = []
        for name, (kind, text) in _HELP.items():
            out += [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
            series = self._values.get(name) or {(): 0.0}
            for labels, value in sorted(series.items()):
                rendered = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
                out.append(f"{name}{{{rendered}}} {value:g}" if rendered else f"{name} {value:g}")
        return "\n".join(out) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class MetricsServer:
    """``GET /metrics`` over HTTP/1.1 (one request per connection)."""

    def __init__(self, metrics: Metrics, address: str, config: keepalive.KeepaliveConfig) -> None:
        host, _, port = address.rpartition(":")
        self._host, self._port = host or "127.0.0.1", int(port)
        self._metrics = metrics
        self._keepalive = config
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.sockets[0].getsockname()[1]

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self._host, self._port)
        for sock in self._server.sockets:
            keepalive.apply(sock, self._keepalive)  # accepted sockets inherit it on Linux

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
            target = request.split(b" ", 2)[1] if request.count(b" ") >= 2 else b""
            if request.startswith(b"GET ") and target.split(b"?")[0] == b"/metrics":
                status, body = "200 OK", self._metrics.render().encode()
            else:
                status, body = "404 Not Found", b"not found\n"
            head = (
                f"HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(head.encode() + body)
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
