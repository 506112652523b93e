"""Pipeline states under concurrency on a live server: runners finishing (and failed deploys
retried) while people cancel never run two jobs of one resource group together, and never
deadlock."""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from tests.integration.server.test_runner_api import _setup

pytestmark = pytest.mark.integration

YAML = """
stages: [build, deploy]
build:
  script: [x]
  stage: build
deploy:
  stage: deploy
  resource_group: production
  retry: 1
  script: [y]
"""
PIPELINES = 8
FINISHED = {"success", "failed", "canceled", "skipped"}


async def test_resource_group_holds_under_concurrent_finishes_and_cancels(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    admin, _, project = await _setup(live_server, tmp_path, YAML)
    base = f"/api/v4/projects/{project['id']}"
    tokens = [(await admin.post("/api/v4/user/runners", json={})).json()["token"] for _ in range(4)]
    pipelines = [(await admin.post(f"{base}/pipeline")).json()["id"] for _ in range(PIPELINES)]
    rng = random.Random(7)
    worst = 0
    errors: list[str] = []
    done = asyncio.Event()

    async def watch() -> None:
        nonlocal worst
        while not done.is_set():
            async with live_server.services.engine.connect() as conn:
                holding = (await conn.execute(sa.text(
                    "SELECT count(*) FROM jobs WHERE resource_group = 'production' "
                    "AND status IN ('pending', 'running', 'canceling')"))).scalar()
            worst = max(worst, holding)
            await asyncio.sleep(0.01)

    async def runner(token: str) -> None:
        async with httpx.AsyncClient(base_url=live_server.url, timeout=30) as client:
            while not done.is_set():
                response = await client.post("/api/v4/jobs/request", json={"token": token})
                if response.status_code == 204:
                    await asyncio.sleep(0.05)
                    continue
                if response.status_code != 201:
                    errors.append(f"request {response.status_code} {response.text}")
                    continue
                job = response.json()
                await asyncio.sleep(rng.random() * 0.05)
                state = rng.choice(["success", "success", "failed"])
                body = {"token": job["token"], "state": state, "output": {"checksum": "crc32:00000000", "bytesize": 0}}
                put = await client.put(f"/api/v4/jobs/{job['id']}", json=body)
                if put.status_code not in (200, 403):  # 403: canceled under it
                    errors.append(f"put {put.status_code} {put.text}")

    async def person() -> None:
        for pipeline_id in rng.sample(pipelines, 3):
            await asyncio.sleep(rng.random() * 0.3)
            response = await admin.post(f"{base}/pipelines/{pipeline_id}/cancel")
            if response.status_code != 200:
                errors.append(f"cancel {response.status_code} {response.text}")

    watcher = asyncio.create_task(watch())
    workers = [asyncio.create_task(runner(t)) for t in tokens]
    await person()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        states = [(await admin.get(f"{base}/pipelines/{p}")).json()["status"] for p in pipelines]
        if all(s in FINISHED for s in states):
            break
        await asyncio.sleep(0.2)
    done.set()
    await asyncio.gather(watcher, *workers)
    await admin.aclose()
    assert errors == []
    assert all(s in FINISHED for s in states), states
    assert worst == 1  # the group was used, and never by two jobs at once
    async with live_server.services.engine.connect() as conn:
        deploys = (await conn.execute(sa.text(
            "SELECT status, count(*) FROM jobs WHERE name = 'deploy' AND NOT retried GROUP BY status"))).all()
    assert sum(count for _, count in deploys) == PIPELINES  # one current deploy per pipeline
