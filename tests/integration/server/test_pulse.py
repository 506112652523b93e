"""The per-second background passes of an idle server (scheduler, bridges, hook deliveries) cost
one statement a second together (``periodic.Pulse``), and a pass still runs once it has work."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from tests.integration.server.test_pipeline_life import Transactions
from tests.plugins.repos import make_repo

pytestmark = pytest.mark.integration

DELAYED = "rollout:\n  when: delayed\n  start_in: 1 second\n  script: [y]\n"
PASSES = ("queue-scheduler", "queue-bridges", "hook-deliverer")


async def test_idle_passes_ask_one_question_a_second_and_run_when_there_is_work(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    await asyncio.sleep(0.5)  # the first beat and the passes it started are done
    counted = Transactions(live_server.services.engine)
    try:
        started = time.monotonic()
        await asyncio.sleep(2.6)
        idle = dict(counted.counts)
        beats = live_server.services.pulse.beats
        # was 3 transactions (8 statements) a second: the scheduler's two work lists, the
        # bridges' five, the hook deliveries' claim
        assert {name: idle.get(name, 0) for name in PASSES} == dict.fromkeys(PASSES, 0), idle
        assert 2 <= idle.get("background-pulse", 0) <= 3 + (time.monotonic() - started), idle
        assert counted.savepoints == 0

        make_repo(tmp_path / "app", DELAYED)
        async with live_server.admin() as admin:
            project = (await admin.post("/api/v4/projects", json={"source": str(tmp_path / "app")})).json()
            base = f"/api/v4/projects/{project['id']}"
            created = (await admin.post(f"{base}/pipeline")).json()
            deadline = time.monotonic() + 10
            while (jobs := (await admin.get(f"{base}/pipelines/{created['id']}/jobs")).json())[0]["status"] != "pending":
                assert jobs[0]["status"] == "scheduled" and time.monotonic() < deadline, jobs
                await asyncio.sleep(0.1)
        assert counted.counts["queue-scheduler"] >= 1  # the pulse saw the job due: the scheduler ran
        assert live_server.services.pulse.beats > beats
    finally:
        counted.close()
