"""The Docker API client: quiet streams are not cut by a read timeout, and TCP sockets to the
Docker host carry keepalives (the two ways a long job's log stream dies silently)."""

from __future__ import annotations

import asyncio
import re
import subprocess

import pytest

from conveyor.protocol.keepalive import KeepaliveConfig
from conveyor.runner.executors.docker import containers
from conveyor.runner.executors.docker.api import DockerAPI
from conveyor.runner.settings import DockerSettings

pytestmark = pytest.mark.integration


async def quiet_container(api: DockerAPI, image: str, seconds: float) -> str:
    spec = containers.ContainerSpec(name=f"conveyor-quiet-{id(api)}", image=image, job_id=0,
                                    cmd=["sh", "-c", f"echo early; sleep {seconds}; echo late"])  # fmt: skip
    container = await containers.create(api, spec)
    await containers.start(api, container)
    return container


async def test_a_quiet_stream_outlives_the_call_timeout(podman) -> None:  # noqa: ANN001
    # Every ordinary call times out after 1 s, the container is silent for 3 s: the log stream and
    # the wait must not use that timeout (docker-py's client-wide timeout ends such streams).
    async with DockerAPI(DockerSettings(host=podman.host), KeepaliveConfig(), call_timeout=1.0) as api:
        container = await quiet_container(api, podman.image, 3)
        chunks: list[bytes] = []
        try:
            code, _ = await asyncio.gather(containers.wait(api, container),
                                           containers.stream_logs(api, container, chunks.append))  # fmt: skip
        finally:
            await containers.remove(api, container)
    assert code == 0 and b"".join(chunks) == b"early\nlate\n"


def keepalive_timers(port: int) -> list[str]:
    out = subprocess.run(["ss", "-tnoH", "state", "established", f"( dport = :{port} )"],
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    return [line for line in out.splitlines() if line.strip()]


async def test_tcp_sockets_to_the_docker_host_keep_alive(podman, podman_tcp: str) -> None:  # noqa: ANN001
    port = int(podman_tcp.rsplit(":", 1)[1])
    config = KeepaliveConfig(idle=7, interval=3, count=2)
    async with DockerAPI(DockerSettings(host=podman_tcp), config) as api:
        container = await quiet_container(api, podman.image, 2)
        try:
            stream = asyncio.create_task(containers.stream_logs(api, container, lambda _: None))
            await asyncio.sleep(0.5)
            lines = keepalive_timers(port)
            await stream
        finally:
            await containers.remove(api, container)
    assert lines, "no connection to the Docker host was open"
    assert all("timer:(keepalive" in line for line in lines), lines
    # the first probe is due within TCP_KEEPIDLE (7 s), not the kernel's default 2 hours
    timers = [re.search(r"timer:\(keepalive,([\d.]+)(ms|sec)", line) for line in lines]
    remaining = [float(t.group(1)) / (1000 if t.group(2) == "ms" else 1) for t in timers if t]
    assert all(value <= 7 for value in remaining), lines
