"""Containers: create, start, stream, wait, stop and remove, over the Engine API.

A stage runs in its own container (gitlab-runner does the same per stage), created from the job
image with the project and temporary directories bind-mounted. Its output is read from
``GET /containers/{id}/logs?follow=1`` (multiplexed frames, stdout and stderr merged) while
``POST /containers/{id}/wait`` waits for the exit; neither has a read timeout (TCP keepalive
guards them). A stop does not trust the wait alone: a wait whose flow a firewall forgot never
answers, so after SIGKILL the container's state is asked on a new request as well.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

from conveyor.runner.executors.base import Output
from conveyor.runner.executors.docker.api import STREAM_TIMEOUT, DockerAPI, DockerError, demultiplex

LABEL = "com.conveyor.job"


@dataclass(frozen=True)
class ContainerSpec:
    """What a container is made of; ``to_api`` gives the ``POST /containers/create`` body."""

    name: str
    image: str
    cmd: list[str]
    job_id: int
    entrypoint: list[str] | None = None
    env: dict[str, str] = field(default_factory=dict)
    binds: list[str] = field(default_factory=list)
    working_dir: str = ""
    network: str = ""
    aliases: list[str] = field(default_factory=list)
    user: str = ""
    privileged: bool = False
    role: str = "build"

    def to_api(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "Image": self.image,
            "Env": [f"{key}={value}" for key, value in self.env.items()],
            "Labels": {LABEL: str(self.job_id), "com.conveyor.role": self.role},
            "Tty": False,
            "OpenStdin": False,
            "AttachStdout": True,
            "AttachStderr": True,
            "HostConfig": {"Binds": self.binds, "Privileged": self.privileged},
        }
        if self.cmd:
            body["Cmd"] = self.cmd
        if self.entrypoint is not None:
            body["Entrypoint"] = self.entrypoint
        if self.working_dir:
            body["WorkingDir"] = self.working_dir
        if self.user:
            body["User"] = self.user
        if self.network:
            body["HostConfig"]["NetworkMode"] = self.network
            body["NetworkingConfig"] = {"EndpointsConfig": {self.network: {"Aliases": self.aliases}}}
        return body


async def create(api: DockerAPI, spec: ContainerSpec) -> str:
    response = await api.call("POST", "/containers/create", params={"name": spec.name}, body=spec.to_api())
    return response.json()["Id"]


async def start(api: DockerAPI, container: str) -> None:
    await api.call("POST", f"/containers/{container}/start")


async def remove(api: DockerAPI, container: str) -> None:
    """Force-remove with its anonymous volumes; a container already gone is fine."""
    await api.call("DELETE", f"/containers/{container}", params={"force": "true", "v": "true"}, ok=(200, 204, 404))


async def signal(api: DockerAPI, container: str, name: str) -> None:
    # 409/500: not running any more, which is what we wanted
    await api.call("POST", f"/containers/{container}/kill", params={"signal": name}, ok=(200, 204, 404, 409, 500))


async def wait(api: DockerAPI, container: str) -> int:
    response = await api.call("POST", f"/containers/{container}/wait", timeout=STREAM_TIMEOUT)
    body = response.json()
    if body.get("Error") and body["Error"].get("Message"):
        raise DockerError(f"waiting for {container}: {body['Error']['Message']}")
    return int(body.get("StatusCode", -1))


async def stream_logs(api: DockerAPI, container: str, output: Output) -> None:
    """Forward the container's merged output to ``output`` until it exits."""
    buffer = bytearray()
    params = {"follow": "true", "stdout": "true", "stderr": "true"}
    async for chunk in api.raw_stream(f"/containers/{container}/logs", params):
        buffer += chunk
        for payload in demultiplex(buffer):
            output(payload)
    if buffer:
        output(bytes(buffer))


async def stop(api: DockerAPI, container: str, exited: asyncio.Task[int], grace: float) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds: every process in the container dies."""
    if exited.done():
        return
    await signal(api, container, "SIGTERM")
    done, _ = await asyncio.wait({exited}, timeout=grace)
    if not done:
        await signal(api, container, "SIGKILL")
        with contextlib.suppress(asyncio.TimeoutError, DockerError):
            await asyncio.wait_for(_stopped(api, container, exited), timeout=30)


async def running(api: DockerAPI, container: str) -> bool:
    """``State.Running`` of the container, asked now (a container already removed is not)."""
    response = await api.call("GET", f"/containers/{container}/json", ok=(200, 404))
    return response.status_code == 200 and bool(response.json().get("State", {}).get("Running"))


async def _stopped(api: DockerAPI, container: str, exited: asyncio.Task[int], poll: float = 0.5) -> None:
    """Until the wait answers or the engine says the container is not running, whichever first."""
    while not exited.done():
        if not await running(api, container):
            return
        await asyncio.wait({exited}, timeout=poll)
