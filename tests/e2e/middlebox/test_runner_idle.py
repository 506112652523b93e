"""A runner behind the middlebox: the long poll and a quiet job's pooled connection stay alive
with keepalives, and without them (turned off by configuration) the flow is lost and Conveyor
notices within its configured bounds (the runner's request timeout, the server's ack timeout).

Each test runs its scenarios at once, one ``conveyor server`` (server namespace) and one runner
(client namespace) each, so the waits overlap.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.middlebox.conftest import (
    IDLE,
    QUIET_JOB,
    RUNNER_KEEPALIVE_OFF,
    RUNNER_KEEPALIVE_ON,
    SERVER_KEEPALIVE_OFF,
    SERVER_KEEPALIVE_ON,
    concurrently,
)
from tests.plugins.middlebox import Middlebox
from tests.plugins.repos import make_repo

pytestmark = pytest.mark.e2e

LONG_POLL = 20  # CONVEYOR_LONG_POLL_TIMEOUT: the held request outlives the idle period
ACK_TIMEOUT = 4  # CONVEYOR_ACK_TIMEOUT: a hand-out whose answer was lost goes back to pending
POLL_REQUEST_TIMEOUT = 13  # the runner's request timeout in the long-poll test
PATCH_REQUEST_TIMEOUT = 6  # ... in the quiet-job test


def _wait_for_connection(middlebox: Middlebox, port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while "ESTAB" not in middlebox.sockets(middlebox.client, port):
        assert time.monotonic() < deadline, "the runner never connected through the box"
        time.sleep(0.1)


def _long_poll(deploy, start_runner_in, middlebox: Middlebox, tmp_path: Path, name: str, keepalive: bool) -> dict[str, Any]:  # noqa: ANN001
    server_env = {"CONVEYOR_LONG_POLL_TIMEOUT": str(LONG_POLL), "CONVEYOR_ACK_TIMEOUT": str(ACK_TIMEOUT),
                  **(SERVER_KEEPALIVE_ON if keepalive else SERVER_KEEPALIVE_OFF)}
    deployment = deploy(name, server_env)
    make_repo(tmp_path / name / "repo", "picked:\n  script:\n    - echo picked up after the quiet poll\n")
    project = deployment.admin.project(str(tmp_path / name / "repo"))["id"]
    runner_env = {"CONVEYOR_RUNNER_REQUEST_TIMEOUT": str(POLL_REQUEST_TIMEOUT),
                  **(RUNNER_KEEPALIVE_ON if keepalive else RUNNER_KEEPALIVE_OFF)}
    runner = start_runner_in(middlebox.client, deployment, name, runner_env)
    _wait_for_connection(middlebox, deployment.server.port)
    time.sleep(1 + IDLE)  # the runner's request is held, nothing on the wire
    created = time.time()
    pipeline = deployment.admin.pipeline(project)["id"]
    job_id = deployment.job(project, pipeline, "picked")["id"]
    picked = deployment.wait_for_trace(project, job_id, b"picked up after the quiet poll")  # ran, not only claimed
    final = deployment.admin.wait(project, pipeline, timeout=60)
    job = deployment.job(project, pipeline, "picked")
    return {"pickup": picked - created, "status": final["status"], "job": job,
            "trace": deployment.admin.trace(project, job["id"]), "runner_log": runner.log_path.read_text()}


def test_long_poll_survives_the_idle_timeout_only_with_keepalives(deploy, start_runner_in, middlebox: Middlebox, tmp_path: Path) -> None:  # noqa: ANN001
    dropped = middlebox.dropped()
    kept, lost = concurrently(
        (_long_poll, deploy, start_runner_in, middlebox, tmp_path, "poll-keepalive", True),
        (_long_poll, deploy, start_runner_in, middlebox, tmp_path, "poll-no-keepalive", False),
    )
    # with keepalives the held request answers the moment the job is queued
    assert kept["status"] == "success" and b"picked up after the quiet poll" in kept["trace"]
    assert kept["pickup"] < 4, kept
    assert "checking for jobs failed" not in kept["runner_log"]
    # without: the answer carrying the job vanished in the box; the runner gives up on the request
    # after its request timeout, the server puts the unconfirmed job back after its ack timeout,
    # and the next poll runs it: late, but within the configured bounds, and never lost
    assert middlebox.dropped() > dropped
    assert "checking for jobs failed" in lost["runner_log"] and "ReadTimeout" in lost["runner_log"]
    assert ACK_TIMEOUT - 1 < lost["pickup"] < POLL_REQUEST_TIMEOUT + ACK_TIMEOUT + 5, lost
    assert lost["status"] == "success" and b"picked up after the quiet poll" in lost["trace"]


def _quiet_job(deploy, start_runner_in, middlebox: Middlebox, tmp_path: Path, name: str, keepalive: bool, pool_idle: float) -> dict[str, Any]:  # noqa: ANN001
    deployment = deploy(name, {"CONVEYOR_LONG_POLL_TIMEOUT": "5", **(SERVER_KEEPALIVE_ON if keepalive else SERVER_KEEPALIVE_OFF)})
    printed = tmp_path / name / "printed"  # when the second line was printed (the file system is shared)
    make_repo(tmp_path / name / "repo", QUIET_JOB.format(idle=IDLE, printed=printed))
    project = deployment.admin.project(str(tmp_path / name / "repo"))["id"]
    runner_env = {"CONVEYOR_RUNNER_REQUEST_TIMEOUT": str(PATCH_REQUEST_TIMEOUT), "CONVEYOR_RUNNER_POOL_IDLE_TIMEOUT": str(pool_idle),
                  **(RUNNER_KEEPALIVE_ON if keepalive else RUNNER_KEEPALIVE_OFF)}
    runner = start_runner_in(middlebox.client, deployment, name, runner_env)
    pipeline = deployment.admin.pipeline(project)["id"]
    job = deployment.job(project, pipeline, "quiet")
    deployment.wait_for_trace(project, job["id"], b"first-line")
    second = deployment.wait_for_trace(project, job["id"], b"second-line")
    final = deployment.admin.wait(project, pipeline, timeout=60)
    return {"delay": second - float(printed.read_text()), "status": final["status"], "job": deployment.job(project, pipeline, "quiet"),
            "runner_log": runner.log_path.read_text()}


def test_quiet_job_output_arrives_over_a_kept_or_replaced_pooled_connection(deploy, start_runner_in, middlebox: Middlebox, tmp_path: Path) -> None:  # noqa: ANN001
    dropped = middlebox.dropped()
    kept, lost, replaced = concurrently(
        (_quiet_job, deploy, start_runner_in, middlebox, tmp_path, "quiet-keepalive", True, 90),
        (_quiet_job, deploy, start_runner_in, middlebox, tmp_path, "quiet-no-keepalive", False, 90),
        # no keepalive, but idle pooled connections closed before the box forgets them
        (_quiet_job, deploy, start_runner_in, middlebox, tmp_path, "quiet-short-pool", False, 2),
    )
    # the pooled connection idled IDLE seconds and was reused: the second line came at once
    assert kept["status"] == "success" and kept["delay"] < 4, kept
    assert "trace patch failed" not in kept["runner_log"]
    assert replaced["status"] == "success" and replaced["delay"] < 4, replaced
    assert "trace patch failed" not in replaced["runner_log"]
    # reused dead: the PATCH vanished, the runner noticed after its request timeout and resent
    assert middlebox.dropped() > dropped
    assert "trace patch failed" in lost["runner_log"]
    assert PATCH_REQUEST_TIMEOUT - 1 < lost["delay"] < 3 * PATCH_REQUEST_TIMEOUT + 5, lost
    assert lost["status"] == "success", lost
