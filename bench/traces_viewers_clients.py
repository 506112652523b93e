"""Client processes of ``bench/traces_viewers.py``: live-tail viewers, PATCHing jobs, pollers, and
Redis subscribers. Module-level functions, so ``multiprocessing``'s spawn finds them by name.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402

from tests.plugins.live import ROOT_TOKEN  # noqa: E402

if TYPE_CHECKING:
    from bench.traces_viewers import Config

CHANNEL = "bench:pubsub"
ATTACH_RATE = 25.0  # new live tails per second per viewer process


def _viewer_proc(urls: list[str], targets: list[tuple[int, int, int]], ready: Any, stop: Any, out: Any) -> None:
    """Open one live tail per (project, job, server index); report (job, viewer, end offset, t) per event."""

    async def main() -> list[tuple[int, int, int, float]]:
        got: list[tuple[int, int, int, float]] = []
        attached = reconnects = 0
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=0)
        async with httpx.AsyncClient(headers={"PRIVATE-TOKEN": ROOT_TOKEN}, limits=limits, timeout=httpx.Timeout(60, read=None)) as http:

            async def one(index: int, project: int, job: int, server: int) -> None:
                nonlocal attached, reconnects
                viewer, offset, first = os.getpid() * 100_000 + index, 0, True
                await asyncio.sleep(index * spacing)  # viewers arrive over a few seconds, not in one burst
                path = f"{urls[server]}/api/v4/projects/{project}/jobs/{job}/trace/stream"
                while True:
                    try:
                        async with http.stream("GET", path, headers={"Last-Event-ID": str(offset)}) as response:
                            response.raise_for_status()
                            async for line in response.aiter_lines():
                                if line.startswith("retry:") and first:
                                    attached, first = attached + 1, False
                                elif line.startswith("id: "):
                                    offset = int(line[4:])
                                    got.append((job, viewer, offset, time.monotonic()))
                    except (httpx.TransportError, httpx.HTTPStatusError):
                        reconnects += 1
                        await asyncio.sleep(1.0)

            spacing = 1 / ATTACH_RATE
            tasks = [asyncio.create_task(one(i, *t)) for i, t in enumerate(targets)]
            while attached < len(targets):
                await asyncio.sleep(0.05)
                for task in tasks:
                    if task.done() and task.exception():
                        raise task.exception()  # type: ignore[misc]
            ready.release()
            while not stop.is_set():
                await asyncio.sleep(0.1)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        got.append((-1, -1, reconnects, 0.0))  # the count of reconnections rides along
        return got

    started = time.process_time()
    got = asyncio.run(main())
    out.put((got, time.process_time() - started))


def _patch_proc(urls: list[str], jobs: list[tuple[int, str]], cfg: Config, t0: float, out: Any) -> None:
    """PATCH each job every ``interval`` s from ``t0`` for ``duration`` s; report (job, end, t sent, t 202)."""

    async def main() -> list[tuple[int, int, float, float]]:
        accepted: list[tuple[int, int, float, float]] = []
        limits = httpx.Limits(max_connections=None)
        async with httpx.AsyncClient(limits=limits, timeout=60) as http:

            async def one(index: int, job: int, token: str) -> None:
                sent, line = 0, (b"x" * (cfg.line_bytes - 1)) + b"\n"
                url = f"{urls[index % len(urls)]}/api/v4/jobs/{job}/trace"
                next_at = t0 + cfg.interval * (index % 97) / 97  # staggered phases
                while next_at < t0 + cfg.duration:
                    await asyncio.sleep(max(0.0, next_at - time.monotonic()))
                    headers = {"JOB-TOKEN": token, "Content-Range": f"{sent}-{sent + len(line) - 1}"}
                    sent_at = time.monotonic()
                    try:
                        response = await http.patch(url, content=line, headers=headers)
                    except httpx.TransportError:
                        failures[0] += 1
                    else:
                        if response.status_code == 202:
                            sent += len(line)
                            accepted.append((job, sent, sent_at, time.monotonic()))
                        elif response.status_code == 416:  # an earlier PATCH landed after all: go on from there
                            sent = int(response.headers["Range"].split("-")[1])
                        else:
                            failures[0] += 1
                    next_at += cfg.interval

            failures = [0]
            await asyncio.gather(*(one(i, job, token) for i, (job, token) in enumerate(jobs)))
        accepted.append((-1, failures[0], 0.0, 0.0))  # failed PATCHes ride along
        return accepted

    started = time.process_time()
    accepted = asyncio.run(main())
    out.put((accepted, time.process_time() - started))


def _poller_proc(url: str, targets: list[tuple[int, int]], stop: Any, out: Any) -> None:
    """Baseline: poll ``GET /trace`` with ``Range`` every second per target."""

    async def main() -> list[tuple[int, int, int, float]]:
        got: list[tuple[int, int, int, float]] = []
        async with httpx.AsyncClient(base_url=url, headers={"PRIVATE-TOKEN": ROOT_TOKEN}, timeout=60) as http:

            async def one(index: int, project: int, job: int) -> None:
                offset = 0
                await asyncio.sleep(index % 100 / 100)
                while not stop.is_set():
                    response = await http.get(f"/api/v4/projects/{project}/jobs/{job}/trace", headers={"Range": f"bytes={offset}-"})
                    if response.status_code in (200, 206) and response.content:
                        offset += len(response.content)
                        got.append((job, os.getpid() * 100_000 + index, offset, time.monotonic()))
                    await asyncio.sleep(1.0)

            await asyncio.gather(*(one(i, *t) for i, t in enumerate(targets)))
        return got

    started = time.process_time()
    got = asyncio.run(main())
    out.put((got, time.process_time() - started))


def _subscriber_proc(redis_url: str, ready: Any, out: Any, count: int) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(CHANNEL)
    ready.release()
    got: list[tuple[int, float]] = []
    deadline = time.monotonic() + 60
    while len(got) < count and time.monotonic() < deadline:
        message = pubsub.get_message(timeout=1)  # None for the (ignored) subscribe confirmation too
        if message is not None:
            got.append((int(message["data"]), time.monotonic()))
    out.put(got)


def _channel_proc(redis_url: str, ready: Any, stop: Any, out: Any) -> None:
    """Timestamps every append as the servers announce it (the moment after the append committed)."""
    import json

    import redis

    client = redis.Redis.from_url(redis_url)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe("conveyor:trace:appended")
    ready.release()
    seen: list[tuple[int, int, float, float]] = []
    while not stop.is_set():
        message = pubsub.get_message(timeout=0.2)
        if message is not None:
            body = json.loads(message["data"])
            if "size" in body:
                at = time.monotonic()
                seen.append((int(body["job_id"]), int(body["size"]), at, at))
    out.put(seen)
