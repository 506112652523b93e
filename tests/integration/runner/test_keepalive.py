"""Every TCP connection of the runner's client has SO_KEEPALIVE with the configured timing."""

from __future__ import annotations

import dataclasses
import socket
from pathlib import Path

import httpx
import pytest

from conveyor.protocol import keepalive
from conveyor.protocol.keepalive import KeepaliveConfig
from conveyor.runner import CoordinatorClient
from conveyor.runner.lean_http import Answer
from conveyor.runner.settings import RunnerSettings
from tests.integration.runner.fake_coordinator import Coordinator, CoordinatorServer, job_payload

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("config", [KeepaliveConfig(), KeepaliveConfig(idle=7, interval=3, count=5)])
async def test_client_sockets_have_tcp_keepalive(
    server: CoordinatorServer, coordinator: Coordinator, settings: RunnerSettings, config: KeepaliveConfig,
    tmp_path: Path,
) -> None:
    settings = dataclasses.replace(settings, keepalive=config)
    observed: list[tuple[tuple[bool, int, int, int], tuple[str, int]]] = []

    async def inspect(response: httpx.Response | Answer) -> None:
        # httpcore's documented "network_stream" extension exposes the live socket.
        sock: socket.socket = response.extensions["network_stream"].get_extra_info("socket")
        observed.append((keepalive.read(sock), sock.getpeername()[:2]))

    async with CoordinatorClient(settings) as client:
        client._http.event_hooks["response"].append(inspect)  # artifacts
        client._lean.event_hooks["response"].append(inspect)  # verify, job requests, updates, PATCHes
        assert (await client.verify()).valid
        result = await client.request_job(None)
        assert result.healthy and result.job is None
        assert len(observed) == 2
        job = coordinator.add_job(job_payload(5101, ["true"]))
        job.status = "running"
        assert not (await client.download_artifact(5101, job.token, tmp_path / "none.zip")).ok
    assert len(observed) == 3
    for values, peer in observed:
        assert values == (True, config.idle, config.interval, config.count)
        assert peer == ("127.0.0.1", server.port)


@pytest.mark.parametrize(("pool_idle", "same"), [(30.0, True), (0.3, False)])
async def test_idle_pooled_connection_is_reused_within_pool_idle_timeout_only(
    server: CoordinatorServer, coordinator: Coordinator, settings: RunnerSettings, pool_idle: float, same: bool
) -> None:
    """Regression: ``pool_idle_timeout`` went to the client, which ignores ``limits`` when given a
    transport, so httpx's 5 s applied whatever was configured."""
    import asyncio

    settings = dataclasses.replace(settings, pool_idle_timeout=pool_idle)
    ports: list[int] = []

    async def local_port(response: httpx.Response | Answer) -> None:
        ports.append(response.extensions["network_stream"].get_extra_info("socket").getsockname()[1])

    async with CoordinatorClient(settings) as client:
        client._http.event_hooks["response"].append(local_port)
        client._lean.event_hooks["response"].append(local_port)
        assert (await client.verify()).valid
        await asyncio.sleep(0.8)
        assert (await client.verify()).valid
    assert (ports[0] == ports[1]) is same, ports
