"""A live tail (SSE) behind the middlebox, watching a quiet job: with the heartbeat (and
keepalives) it sees the next line at once and the end of the job on one connection; with both
turned off by configuration the line vanishes in the box, and Conveyor's client notices after its
configured silence, reconnects with ``Last-Event-ID`` and still gets every byte exactly once.

The runner runs beside the server (its connections do not cross the box); only the viewer does.
Meanwhile, on the same servers (the waits overlap), the git fetch of a slow remote across the box:
with the remote's heartbeat (``uploadpack.keepAlive``, 1 s) the slow fetch completes; without it
the flow is forgotten, and ``CONVEYOR_GIT_TIMEOUT`` ends the fetch with a clear error.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from conveyor.cli import sse
from conveyor.protocol import keepalive
from tests.e2e.middlebox.conftest import (
    IDLE,
    QUIET_JOB,
    RUNNER_KEEPALIVE_ON,
    SERVER_KEEPALIVE_OFF,
    SERVER_KEEPALIVE_ON,
    Deployment,
    SlowGit,
    concurrently,
)
from tests.plugins.live import ROOT_TOKEN
from tests.plugins.middlebox import Middlebox
from tests.plugins.repos import make_repo

pytestmark = pytest.mark.e2e

SILENCE = 15.0  # the viewer's bound: no byte and no heartbeat for this long, and it reconnects
HEARTBEAT_OFF = 3600  # CONVEYOR_SSE_HEARTBEAT far beyond the test: no comment ever comes
GIT_TIMEOUT = 14  # CONVEYOR_GIT_TIMEOUT: above the slow remote's IDLE seconds of packing


async def _follow(deployment: Deployment, project: int, job: int, config: keepalive.KeepaliveConfig) -> dict[str, Any]:
    received: list[tuple[float, bytes]] = []
    opens = 0

    async def count(request: httpx.Request) -> None:
        nonlocal opens
        opens += request.url.path.endswith("/trace/stream")

    transport = httpx.AsyncHTTPTransport(socket_options=keepalive.socket_options(config))
    async with httpx.AsyncClient(base_url=deployment.url + "/api/v4", transport=transport, headers={"PRIVATE-TOKEN": ROOT_TOKEN},
                                 event_hooks={"request": [count]}) as http:  # fmt: skip
        status = await sse.follow_log(http, f"/projects/{project}/jobs/{job}/trace/stream",
                                      lambda data: received.append((time.time(), data)), silence=SILENCE)  # fmt: skip
    return {"status": status, "received": received, "opens": opens}


def _slow_fetch(deployment: Deployment, remote: SlowGit, name: str, heartbeat: bool) -> dict[str, Any]:
    project = deployment.admin.project(remote.repo(name, 1 if heartbeat else 0))["id"]  # the clone is quick
    remote.slow_commit(name)
    started = time.monotonic()
    response = deployment.ns.run(deployment.admin.http.post, f"/projects/{project}/pipeline")  # fetches first
    return {"status": response.status_code, "body": response.text, "took": time.monotonic() - started}


def _watch(deploy, start_runner_in, middlebox: Middlebox, remote: SlowGit, tmp_path: Path, name: str, heartbeat: bool) -> dict[str, Any]:  # noqa: ANN001
    env = {"CONVEYOR_SSE_HEARTBEAT": "1" if heartbeat else str(HEARTBEAT_OFF), "CONVEYOR_TRACE_UPDATE_INTERVAL_WATCHED": "1",
           "CONVEYOR_GIT_TIMEOUT": str(GIT_TIMEOUT), **(SERVER_KEEPALIVE_ON if heartbeat else SERVER_KEEPALIVE_OFF)}
    deployment = deploy(name, env)
    fetch = middlebox.server.submit(_slow_fetch, deployment, remote, name, heartbeat)
    printed = tmp_path / name / "printed"
    make_repo(tmp_path / name / "repo", QUIET_JOB.format(idle=IDLE, printed=printed))
    project = deployment.admin.project(str(tmp_path / name / "repo"))["id"]
    start_runner_in(middlebox.server, deployment, name, RUNNER_KEEPALIVE_ON)
    pipeline = deployment.admin.pipeline(project)["id"]
    job = deployment.job(project, pipeline, "quiet")["id"]
    config = keepalive.KeepaliveConfig(1, 1, 3) if heartbeat else keepalive.KeepaliveConfig(enabled=False)
    seen = middlebox.client.run(asyncio.run, _follow(deployment, project, job, config))
    log = b"".join(data for _, data in seen["received"])
    second = next(at for at, _ in _accumulated(seen["received"]) if b"second-line" in _)
    return {**seen, "fetch": fetch.result(60), "log": log, "stored": deployment.admin.trace(project, job), "delay": second - float(printed.read_text())}


def _accumulated(received: list[tuple[float, bytes]]) -> list[tuple[float, bytes]]:
    """(time, log so far) after each piece."""
    out, so_far = [], b""
    for at, data in received:
        so_far += data
        out.append((at, so_far))
    return out


def test_live_tail_of_a_quiet_job_and_git_fetch_of_a_slow_remote(deploy, start_runner_in, middlebox: Middlebox, slow_git: SlowGit, tmp_path: Path) -> None:  # noqa: ANN001
    dropped = middlebox.dropped()
    kept, lost = concurrently(
        (_watch, deploy, start_runner_in, middlebox, slow_git, tmp_path, "tail-heartbeat", True),
        (_watch, deploy, start_runner_in, middlebox, slow_git, tmp_path, "tail-no-heartbeat", False),
    )
    # the slow fetch: kept alive by the remote's heartbeat; without it, ended by the git timeout
    assert kept["fetch"]["status"] == 201 and IDLE - 1 < kept["fetch"]["took"] < GIT_TIMEOUT, kept["fetch"]
    assert lost["fetch"]["status"] == 400 and f"timed out after {GIT_TIMEOUT} s" in lost["fetch"]["body"], lost["fetch"]
    assert GIT_TIMEOUT - 1 < lost["fetch"]["took"] < GIT_TIMEOUT + 5, lost["fetch"]
    for seen in (kept, lost):  # every byte exactly once, and the end of the job
        assert seen["status"] == "success"
        assert seen["log"] == seen["stored"], (seen["log"][:200], seen["stored"][:200])
        assert seen["log"].count(b"second-line") == 2, seen["log"]  # the command and its output
    # heartbeats kept the flow: one connection, the line within the runner's update interval
    assert kept["opens"] == 1 and kept["delay"] < 4, kept
    # without: the line was dropped in the box; the viewer noticed after SILENCE and resumed
    assert middlebox.dropped() > dropped
    assert lost["opens"] >= 2 and SILENCE - IDLE - 1 < lost["delay"] < SILENCE + 5, lost
