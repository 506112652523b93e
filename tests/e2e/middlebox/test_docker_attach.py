"""The Docker executor's log stream through the middlebox, to Podman's Docker API over TCP in
the server namespace (the seed's failure: a dialer without keepalives lost job output for weeks).

The Conveyor server runs beside the runner (client namespace); only the Docker API crosses the
box. With ``[runners.keepalive]`` at 1 s the quiet log stream and the container wait survive the
idle period: the second line arrives and the exit code is right. With it turned off both vanish
in the box, and the job timeout is what ends the job (``job_execution_timeout``), not never.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conveyor.runner import config as config_file
from tests.e2e.middlebox.conftest import IDLE, SERVER_KEEPALIVE_ON, concurrently
from tests.integration.runner.cli import ConfigRunner, register
from tests.plugins import podman as podman_plugin
from tests.plugins.middlebox import Middlebox
from tests.plugins.repos import make_repo
from tests.plugins.services import free_port

pytestmark = pytest.mark.e2e

JOB_TIMEOUT = 16  # the job's ``timeout:``, the bound within which a lost stream ends the job
STOP_GRACE = 1.0  # [runners.docker] stop_grace: SIGTERM to SIGKILL, and the wait for the last output
QUIET = f"""
quiet:
  image: {{image}}
  timeout: {JOB_TIMEOUT}s
  script:
    - echo first-line
    - sleep {IDLE:g}
    - echo second-line
    - exit 3
"""


@pytest.fixture
def podman_behind_box(podman, middlebox: Middlebox, tmp_path: Path) -> Iterator[str]:  # noqa: ANN001
    """The session's engine served over TCP on the server namespace's address."""
    host = f"tcp://{middlebox.server.address}:{free_port()}"
    log = tmp_path / "podman-tcp.log"
    proc = middlebox.server.run(podman.serve, host.replace("tcp://", "tcp:"), log)
    try:
        middlebox.server.run(podman_plugin.wait_for_api, host, proc, log)
        yield host
    finally:
        podman_plugin.stop(proc)


def _docker_job(deploy, middlebox: Middlebox, tmp_path: Path, docker_host: str, name: str, keepalive: bool) -> dict[str, Any]:  # noqa: ANN001
    from tests.plugins.podman import IMAGE

    deployment = deploy(name, SERVER_KEEPALIVE_ON, middlebox.client)
    make_repo(tmp_path / name / "repo", QUIET.format(image=IMAGE))
    project = deployment.admin.project(str(tmp_path / name / "repo"))["id"]
    config = tmp_path / name / "runner" / "config.toml"
    middlebox.client.run(register, config, deployment.url, deployment.admin.runner_token(), "--executor", "docker",
                         "--docker-host", docker_host, "--docker-image", IMAGE, "--docker-pull-policy", "if-not-present")  # fmt: skip
    loaded = config_file.load(config)
    timing = {"idle": 1, "interval": 1, "count": 3} if keepalive else {"enabled": False}
    entries = [dataclasses.replace(entry, keepalive=timing, docker={**entry.docker, "stop_grace": STOP_GRACE})
               for entry in loaded.runners]
    config_file.save(dataclasses.replace(loaded, runners=entries), config)
    runner = middlebox.client.run(ConfigRunner, config)
    try:
        pipeline = deployment.admin.pipeline(project)["id"]
        started = time.monotonic()
        deployment.admin.wait(project, pipeline, timeout=JOB_TIMEOUT + 40)
        took = time.monotonic() - started
        job = deployment.job(project, pipeline, "quiet")
        return {"job": job, "took": took, "trace": deployment.admin.trace(project, job["id"]), "log": runner.log()}
    finally:
        runner.stop()


def test_docker_log_stream_to_a_tcp_engine_survives_only_with_keepalives(deploy, middlebox: Middlebox, podman_behind_box: str, podman, tmp_path: Path) -> None:  # noqa: ANN001
    dropped = middlebox.dropped()
    kept, lost = concurrently(
        (_docker_job, deploy, middlebox, tmp_path, podman_behind_box, "docker-keepalive", True),
        (_docker_job, deploy, middlebox, tmp_path, podman_behind_box, "docker-no-keepalive", False),
    )
    # the stream idled IDLE seconds and carried the second line; the exit code came through the wait
    assert b"second-line" in kept["trace"].replace(b"echo second-line", b""), kept["trace"][-600:]
    assert kept["job"]["status"] == "failed" and kept["job"]["failure_reason"] == "script_failure", kept["job"]
    assert b"exit code 3" in kept["trace"]
    assert kept["took"] < JOB_TIMEOUT
    # without keepalives the stream and the wait died in the box: the job timeout ended it
    assert middlebox.dropped() > dropped
    assert lost["job"]["status"] == "failed" and lost["job"]["failure_reason"] == "job_execution_timeout", lost["job"]
    assert b"second-line" not in lost["trace"].replace(b"echo second-line", b""), lost["trace"][-600:]
    # regression: after SIGKILL the stop asks the engine on a new request instead of waiting 30 s
    # more on the dead wait, so the job ends within its timeout plus the stop grace twice
    assert JOB_TIMEOUT - 1 < lost["took"] < JOB_TIMEOUT + 2 * STOP_GRACE + 6, lost["took"]
    assert podman.containers() == []  # both jobs' containers removed, through new connections
