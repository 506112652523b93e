"""Wait for services: the script starts once every service accepts TCP connections (gitlab-runner's
``wait-for-service`` health check), or the wait times out with gitlab-runner's warning.

The ports are the service's ``HEALTHCHECK_TCP_PORT`` variable, else the ports its image exposes; a
service with neither is not waited for. gitlab-runner dials from a helper container on the job's
network; Conveyor has no helper image and dials from the runner's host to the service's address
on that network (a local engine, as Podman's and Docker's bridge networks are reachable from
their host; for an engine on another machine the runner says so and does not wait). Each dial is a socket with TCP keepalive set, closed at once. A service ready on
any of its ports is ready. At the timeout (``[runners.docker] wait_for_services_timeout``,
default 30 s; negative: no waiting) the job log gets gitlab-runner's text, with the dial log and
the service's own output, and the job goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from conveyor.protocol import keepalive
from conveyor.runner.executors.docker.api import DockerAPI, DockerError, demultiplex
from conveyor.runner.trace import ansi

DIAL_TIMEOUT = 1.0
RETRY_EVERY = 1.0
SERVICE_LOG_LIMIT = 64 * 1024  # bytes of the service's output shown (gitlab-runner: ServiceLogOutputLimit)


def reachable(docker_host: str) -> bool:
    """Whether the engine's job networks are reachable from here: a unix socket or a loopback
    TCP address (a remote engine's bridge networks are not; its services are not waited for)."""
    if docker_host.startswith("unix://"):
        return True
    address = docker_host.split("://", 1)[-1].rsplit(":", 1)[0].strip("[]")
    return address in ("localhost", "127.0.0.1", "::1")


def ports(service: Mapping[str, Any], inspected: Mapping[str, Any]) -> list[int]:
    """``HEALTHCHECK_TCP_PORT`` of the service, else its exposed TCP ports, sorted."""
    for variable in service.get("variables") or []:
        if isinstance(variable, Mapping) and variable.get("key") == "HEALTHCHECK_TCP_PORT":
            value = str(variable.get("value", "")).strip()
            return [int(value)] if value.isdigit() else []
    exposed = (inspected.get("Config") or {}).get("ExposedPorts") or {}
    found = {int(key.split("/")[0]) for key in exposed if key.endswith("/tcp") and key.split("/")[0].isdigit()}
    return sorted(found)


def address(inspected: Mapping[str, Any], network: str) -> str:
    networks = (inspected.get("NetworkSettings") or {}).get("Networks") or {}
    chosen = networks.get(network) or next(iter(networks.values()), {})
    return str(chosen.get("IPAddress") or "")


async def dial(host: str, port: int, config: keepalive.KeepaliveConfig) -> bool:
    loop = asyncio.get_running_loop()
    sock = keepalive.apply(socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM), config)
    sock.setblocking(False)
    try:
        await asyncio.wait_for(loop.sock_connect(sock, (host, port)), DIAL_TIMEOUT)
        return True
    except (OSError, asyncio.TimeoutError):
        return False
    finally:
        sock.close()


async def wait_for(
    host: str, wanted: list[int], timeout: float, config: keepalive.KeepaliveConfig, log: list[str]
) -> bool:
    """Dial ``host`` on ``wanted`` ports every second until one answers (True) or ``timeout``."""
    deadline = time.monotonic() + timeout
    log.append(f"{_now()} waiting for TCP connection to {host} on {wanted}...".replace(",", ""))
    while True:
        attempts = []
        for port in wanted:
            log.append(f"{_now()} dialing {host}:{port}...")
            attempts.append(dial(host, port, config))
        if any(await asyncio.gather(*attempts)):
            return True
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        await asyncio.sleep(min(RETRY_EVERY, remaining))


async def check(
    api: DockerAPI,
    container: str,
    service: Mapping[str, Any],
    network: str,
    timeout: float,
    config: keepalive.KeepaliveConfig,
) -> str | None:
    """None when the service is ready (or has no port to wait for); else the warning for the log."""
    inspected = (await api.call("GET", f"/containers/{container}/json")).json()
    wanted = ports(service, inspected)
    name = str(inspected.get("Name") or container).lstrip("/")
    if not wanted:
        return None
    host = address(inspected, network)
    dials: list[str] = []
    if host and await wait_for(host, wanted, timeout, config, dials):
        return None
    error = f'service "{name}-wait-for-service" timeout' if host else f'service "{name}" has no address on the job network'
    return warning(name, error, "\n".join(dials), await service_logs(api, container))


def warning(name: str, error: str, health_logs: str, service_logs: str) -> str:
    """gitlab-runner's text (``waitForServiceContainer``)."""
    return (
        f"\n{ansi.YELLOW}*** WARNING:{ansi.RESET} Service {name} probably didn't start properly.\n\n"
        f"Health check error:\n{error.strip()}\n\n"
        f"Health check container logs:\n{health_logs}\n\n"
        f"Service container logs:\n{service_logs}\n\n"
        f"{ansi.YELLOW}*********{ansi.RESET}\n\n"
    )


async def service_logs(api: DockerAPI, container: str) -> str:
    with contextlib.suppress(DockerError):
        params = {"stdout": "true", "stderr": "true", "timestamps": "true", "tail": "100"}
        response = await api.call("GET", f"/containers/{container}/logs", params=params)
        buffer = bytearray(response.content)
        frames = demultiplex(buffer)
        data = b"".join(frames) + bytes(buffer)  # a stream that is not multiplexed stays as it came
        return data[-SERVICE_LOG_LIMIT:].decode("utf-8", errors="replace").rstrip("\n")
    return ""


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
