"""Waiting for services: which ports, which engines, gitlab-runner's warning text."""

from __future__ import annotations

import pytest

from conveyor.runner.executors.docker import health

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("host", "reachable"),
    [("unix:///run/podman/podman.sock", True), ("tcp://127.0.0.1:2375", True), ("tcp://localhost:2376", True),
     ("tcp://[::1]:2375", True), ("tcp://docker.internal:2376", False), ("tcp://10.0.0.5:2375", False)],
)
def test_services_are_waited_for_only_on_a_local_engine(host: str, reachable: bool) -> None:
    assert health.reachable(host) is reachable


def test_ports_from_healthcheck_variable_else_exposed_tcp_ports() -> None:
    inspected = {"Config": {"ExposedPorts": {"5432/tcp": {}, "53/udp": {}, "2376/tcp": {}}}}
    assert health.ports({}, inspected) == [2376, 5432]
    assert health.ports({"variables": [{"key": "HEALTHCHECK_TCP_PORT", "value": "8080"}]}, inspected) == [8080]
    assert health.ports({"variables": [{"key": "HEALTHCHECK_TCP_PORT", "value": "x"}]}, inspected) == []
    assert health.ports({}, {"Config": {}}) == []


def test_address_on_the_job_network() -> None:
    inspected = {"NetworkSettings": {"Networks": {"other": {"IPAddress": "10.1.0.2"}, "job-net": {"IPAddress": "10.89.0.3"}}}}
    assert health.address(inspected, "job-net") == "10.89.0.3"
    assert health.address({"NetworkSettings": {}}, "job-net") == ""


def test_warning_is_gitlab_runners_text() -> None:
    text = health.warning("svc-0", 'service "svc-0-wait-for-service" timeout', "dialing 10.0.0.2:5432...", "ready?")
    assert text == (
        "\n\x1b[0;33m*** WARNING:\x1b[0;m Service svc-0 probably didn't start properly.\n\n"
        'Health check error:\nservice "svc-0-wait-for-service" timeout\n\n'
        "Health check container logs:\ndialing 10.0.0.2:5432...\n\n"
        "Service container logs:\nready?\n\n"
        "\x1b[0;33m*********\x1b[0;m\n\n"
    )
