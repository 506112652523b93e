"""``python -m conveyor.runner`` as a real process: configuration errors and signal handling."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

import conveyor
from tests.integration.runner.fake_coordinator import RUNNER_TOKEN, Coordinator, CoordinatorServer, eventually, job_payload

pytestmark = pytest.mark.integration
SRC = str(Path(conveyor.__file__).resolve().parents[1])


def runner_env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [SRC, env.get("PYTHONPATH")]))
    env.update(values)
    return env


async def start(env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "conveyor.runner", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip


async def test_missing_configuration_exits_with_a_clear_error() -> None:
    proc = await start(runner_env())
    out, _ = await proc.communicate()
    assert proc.returncode == 2
    assert b"CONVEYOR_RUNNER_URL is not set" in out


async def test_first_signal_finishes_the_job_second_aborts_it(
    server: CoordinatorServer, coordinator: Coordinator, tmp_path: Path
) -> None:
    pidfile, marker = tmp_path / "sleep.pid", tmp_path / "after-first-signal"
    coordinator.add_job(job_payload(7001, [
        f"sleep 300 & echo $! > {pidfile}; wait || true",
        f"touch {marker}",
        "sleep 300",
    ]))  # fmt: skip
    env = runner_env(
        CONVEYOR_RUNNER_URL=server.url,
        CONVEYOR_RUNNER_TOKEN=RUNNER_TOKEN,
        CONVEYOR_RUNNER_BUILDS_DIR=str(tmp_path / "builds"),
        CONVEYOR_RUNNER_CHECK_INTERVAL="0.05",
        CONVEYOR_RUNNER_UPDATE_INTERVAL="0.05",
    )
    proc = await start(env)
    try:
        await eventually(lambda: pidfile.exists() and pidfile.read_text().strip(), what="job running")
        proc.send_signal(signal.SIGTERM)  # stop polling, keep the job
        os.kill(int(pidfile.read_text()), signal.SIGKILL)  # let the script move on
        await eventually(marker.exists, what="the job continuing after the first signal")
        assert proc.returncode is None
        proc.send_signal(signal.SIGTERM)  # abort the job
        out, _ = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, out.decode()
    job = coordinator.job(7001)
    assert (job.final["state"], job.final["failure_reason"]) == ("failed", "unknown_failure")
    assert b"job interrupted" in coordinator.trace(7001)
    assert len(coordinator.recorded("POST", "/jobs/request")) == 1
