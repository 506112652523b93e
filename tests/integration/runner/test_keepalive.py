"""Every TCP connection of the runner's client has SO_KEEPALIVE with the configured timing."""

from __future__ import annotations

import dataclasses
import socket

import httpx
import pytest

from conveyor.protocol import keepalive
from conveyor.protocol.keepalive import KeepaliveConfig
from conveyor.runner import CoordinatorClient
from conveyor.runner.settings import RunnerSettings
from tests.integration.runner.fake_coordinator import Coordinator, CoordinatorServer

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("config", [KeepaliveConfig(), KeepaliveConfig(idle=7, interval=3, count=5)])
async def test_client_sockets_have_tcp_keepalive(
    server: CoordinatorServer, coordinator: Coordinator, settings: RunnerSettings, config: KeepaliveConfig
) -> None:
    settings = dataclasses.replace(settings, keepalive=config)
    observed: list[tuple[tuple[bool, int, int, int], tuple[str, int]]] = []

    async def inspect(response: httpx.Response) -> None:
        # httpcore's documented "network_stream" extension exposes the live socket.
        sock: socket.socket = response.extensions["network_stream"].get_extra_info("socket")
        observed.append((keepalive.read(sock), sock.getpeername()[:2]))

    async with CoordinatorClient(settings) as client:
        client._http.event_hooks["response"].append(inspect)
        assert (await client.verify()).valid
        result = await client.request_job(None)
        assert result.healthy and result.job is None
    assert observed
    for values, peer in observed:
        assert values == (True, config.idle, config.interval, config.count)
        assert peer == ("127.0.0.1", server.port)
