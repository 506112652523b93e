"""The live tail over real HTTP: Server-Sent Events from a live server, real PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from conveyor.cli import sse
from conveyor.server import keys
from tests.plugins.cluster import start_servers  # noqa: F401 (fixture)
from tests.plugins.live import ROOT_TOKEN
from tests.plugins.repos import make_repo

pytestmark = pytest.mark.integration

ONE_JOB = "build:\n  script: [echo build]\n"


@pytest.fixture
def server_settings(server_settings):  # noqa: ANN001, ANN201
    return server_settings.with_overrides(sse_heartbeat=1, trace_update_interval=60, trace_update_interval_watched=3)


class RunnerSide:
    """Plays the runner of one claimed job over the runner API: PATCHes and the final PUT."""

    def __init__(self, url: str, job: dict) -> None:
        self.http = httpx.AsyncClient(base_url=url, timeout=30)
        self.job = job
        self.sent = b""

    async def start(self) -> httpx.Response:
        body = {"token": self.job["token"], "state": "running", "output": {}}
        return await self.http.put(f"/api/v4/jobs/{self.job['id']}", json=body)

    async def patch(self, data: bytes) -> httpx.Response:
        start, end = len(self.sent), len(self.sent) + len(data) - 1
        response = await self.http.patch(
            f"/api/v4/jobs/{self.job['id']}/trace",
            content=data,
            headers={"JOB-TOKEN": self.job["token"], "Content-Range": f"{start}-{end}"},
        )
        assert response.status_code == 202, response.text
        self.sent += data
        return response

    async def finish(self, state: str = "success") -> httpx.Response:
        checksum = f"crc32:{zlib.crc32(self.sent):08x}"
        output = {"checksum": checksum, "bytesize": len(self.sent)}
        body = {"token": self.job["token"], "state": state, "checksum": checksum, "output": output}
        response = await self.http.put(f"/api/v4/jobs/{self.job['id']}", json=body)
        assert response.status_code == 200, response.text
        return response


@pytest.fixture
async def claimed(live_server, tmp_path: Path) -> AsyncIterator[tuple[dict, RunnerSide]]:  # noqa: ANN001
    project, runner = await claim_job(live_server.url, tmp_path)
    yield project, runner
    await runner.http.aclose()


async def next_event(events: AsyncIterator, *, skip: tuple = (None, "log")) -> sse.Event:
    async for event in events:
        if event is not None and event.event not in skip:
            return event
    raise AssertionError("the stream closed")


async def claim_job(url: str, tmp_path: Path) -> tuple[dict, RunnerSide]:
    """A project with one job, a runner, the job claimed by that runner: (project, runner side)."""
    make_repo(tmp_path / "repo", ONE_JOB)
    async with httpx.AsyncClient(base_url=url, headers={"PRIVATE-TOKEN": ROOT_TOKEN}, timeout=30) as admin:
        runner = (await admin.post("/api/v4/user/runners", json={"description": "t"})).json()
        project = (await admin.post("/api/v4/projects", json={"source": str(tmp_path / "repo")})).json()
        await admin.post(f"/api/v4/projects/{project['id']}/pipeline")
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        body = {"token": runner["token"], "info": {"name": "t", "features": {"trace_checksum": True}}}
        job = (await http.post("/api/v4/jobs/request", json=body)).json()
    side = RunnerSide(url, job)
    assert (await side.start()).status_code == 200
    return project, side


@asynccontextmanager
async def tail(url: str, project: dict, job_id: int, last_event_id: int | None = None) -> AsyncIterator[AsyncIterator]:
    """An open SSE connection; yields its parsed events (``None`` for a keepalive comment)."""
    headers = {"PRIVATE-TOKEN": ROOT_TOKEN}
    if last_event_id is not None:
        headers["Last-Event-ID"] = str(last_event_id)
    async with httpx.AsyncClient(base_url=url, timeout=httpx.Timeout(30, read=5)) as http:
        path = f"/api/v4/projects/{project['id']}/jobs/{job_id}/trace/stream"
        async with http.stream("GET", path, headers=headers) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            yield sse.parse(response.aiter_lines())


class Collector:
    """Reassembles the log from ``log`` events and checks that their offsets are contiguous."""

    def __init__(self, start: int = 0) -> None:
        self.offset = start
        self.data = bytearray()

    def take(self, event: sse.Event) -> None:
        piece = sse.log_bytes(event)
        assert event.id is not None and int(event.id) == self.offset + len(piece), "a byte sent twice or skipped"
        self.offset += len(piece)
        self.data += piece

    async def until(self, events: AsyncIterator, size: int) -> None:
        while self.offset < size:
            event = await anext(events)
            if event is not None and event.event == "log":
                self.take(event)


async def test_attach_mid_job_reconnect_and_receive_every_byte_once(live_server, claimed) -> None:  # noqa: ANN001
    project, runner = claimed
    job_id = runner.job["id"]
    # awkward bytes: CRLF and a lone CR, a 4-byte character split across two PATCHes, invalid UTF-8
    pieces = [b"line one\r\n", b"progress 10%\rprogress 99%\n", "snow \u2603 ".encode(), "\U0001f680".encode()[:2],
              "\U0001f680".encode()[2:] + b" launched\n", b"binary \xff\xfe\x00 bytes\n", b"x" * 70_000 + b"\n"]
    await runner.patch(pieces[0])
    collector = Collector()
    async with tail(live_server.url, project, job_id) as events:  # attach mid-job
        first = await anext(events)
        assert first is not None and first.retry is not None
        await collector.until(events, len(runner.sent))
        for piece in pieces[1:4]:  # ends inside the rocket: held back until its last bytes come
            await runner.patch(piece)
        await collector.until(events, len(runner.sent) - 2)
    # disconnected: more bytes arrive meanwhile
    await runner.patch(pieces[4])
    await runner.patch(pieces[5])
    async with tail(live_server.url, project, job_id, last_event_id=collector.offset) as events:
        await collector.until(events, len(runner.sent))
        await runner.patch(pieces[6])
        await collector.until(events, len(runner.sent))
        await runner.finish()
        end = await next_event(events)
    assert bytes(collector.data) == runner.sent == b"".join(pieces)
    assert end.event == "end" and end.data == f'{{"status":"success","size":{len(runner.sent)}}}'
    # a finished job's tail sends what is left and ends at once; ?offset= works like Last-Event-ID
    async with httpx.AsyncClient(base_url=live_server.url, headers={"PRIVATE-TOKEN": ROOT_TOKEN}) as admin:
        path = f"/api/v4/projects/{project['id']}/jobs/{job_id}/trace/stream?offset=10"
        replay = await admin.get(path)
        raw = await admin.get(f"/api/v4/projects/{project['id']}/jobs/{job_id}/trace/raw")
    assert replay.text.endswith(f'event: end\ndata: {{"status":"success","size":{len(runner.sent)}}}\n\n')
    assert raw.content == runner.sent and raw.headers["content-disposition"] == f'attachment; filename="job-{job_id}.log"'


async def test_heartbeat_comes_within_the_configured_interval(live_server, claimed) -> None:  # noqa: ANN001
    project, runner = claimed
    async with tail(live_server.url, project, runner.job["id"]) as events:  # read timeout 5 s, heartbeat 1 s
        seen = [await anext(events) for _ in range(4)]
    assert seen[0] is not None and seen[0].retry == 3000
    assert seen[1:] == [None, None, None]  # three ": keepalive" comments, nothing else on a silent job


async def test_update_interval_is_short_while_someone_watches(live_server, claimed) -> None:  # noqa: ANN001
    project, runner = claimed
    alone = await runner.patch(b"nobody looks\n")
    assert alone.headers["X-GitLab-Trace-Update-Interval"] == "60"
    async with tail(live_server.url, project, runner.job["id"]) as events:
        await Collector().until(events, len(runner.sent))  # attached: the flag is set before the first read
        watched = await runner.patch(b"someone looks\n")
        touch = await runner.start()  # a keep-alive PUT carries it too
        metrics = (await runner.http.get("/metrics")).text
        ttl = await live_server.services.redis.ttl(f"conveyor:trace:{runner.job['id']}:watched")
    assert watched.headers["X-GitLab-Trace-Update-Interval"] == "3"
    assert touch.headers["X-GitLab-Trace-Update-Interval"] == "3"
    assert "conveyor_trace_live_viewers 1.0" in metrics
    assert 0 < ttl <= 10  # lapses by itself once the viewer is gone


async def test_a_canceled_pending_job_ends_its_tail(live_server, tmp_path: Path) -> None:
    make_repo(tmp_path / "repo", ONE_JOB)
    async with live_server.admin() as admin:
        project = (await admin.post("/api/v4/projects", json={"source": str(tmp_path / "repo")})).json()
        pipeline = (await admin.post(f"/api/v4/projects/{project['id']}/pipeline")).json()
        job = (await admin.get(f"/api/v4/projects/{project['id']}/pipelines/{pipeline['id']}/jobs")).json()[0]
        async with tail(live_server.url, project, job["id"]) as events:
            await anext(events)  # retry: the tail is attached and waiting
            await admin.post(f"/api/v4/projects/{project['id']}/jobs/{job['id']}/cancel")
            end = await next_event(events, skip=(None,))
    assert end.event == "end" and '"status":"canceled"' in end.data


async def test_bad_offset_and_unknown_job_are_clear_errors(live_server, claimed) -> None:  # noqa: ANN001
    project, runner = claimed
    async with live_server.admin() as admin:
        base = f"/api/v4/projects/{project['id']}/jobs"
        bad = await admin.get(f"{base}/{runner.job['id']}/trace/stream", headers={"Last-Event-ID": "abc"})
        missing = await admin.get(f"{base}/999999/trace/stream")
    async with httpx.AsyncClient(base_url=live_server.url) as anonymous:
        unauthenticated = await anonymous.get(f"{base}/{runner.job['id']}/trace/stream")
    assert bad.status_code == 400 and "byte count" in bad.text
    assert missing.status_code == 404 and unauthenticated.status_code == 401


async def test_trace_events_resubscribe_after_redis_drops_the_subscription(live_server, claimed) -> None:  # noqa: ANN001
    project, runner = claimed
    events, redis = live_server.services.trace_events, live_server.services.redis
    job_id = runner.job["id"]
    await live_server.services.watchers.mark(job_id)  # as a viewer does: appends are announced
    await runner.patch(b"before the loss\n")
    killed = await redis.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
    assert killed >= 1
    woken = await events.wait(job_id, len(runner.sent), timeout=10)  # everyone re-reads after a loss
    assert woken is not None and woken.resync
    waiting = asyncio.create_task(events.wait(job_id, len(runner.sent), timeout=10))
    await asyncio.sleep(0.1)
    await runner.patch(b"after the loss\n")
    change = await waiting
    assert change is not None and change.size == len(runner.sent)  # delivered by the new subscription


async def test_appends_are_announced_only_while_someone_watches(live_server, claimed) -> None:  # noqa: ANN001
    """Unwatched, an append costs no message to every server process; watched, it is announced
    from the append's own script, with the bytes inline."""
    project, runner = claimed
    services = live_server.services
    job_id = runner.job["id"]
    async with services.redis.pubsub(ignore_subscribe_messages=True) as pubsub:
        await pubsub.subscribe(keys.trace_channel())
        await runner.patch(b"nobody looks\n")
        assert await pubsub.get_message(timeout=0.5) is None
        await services.watchers.mark(job_id)
        await runner.patch(b"someone looks\n")
        message = await pubsub.get_message(timeout=5)
    assert message is not None
    assert json.loads(message["data"]) == {
        "job_id": job_id, "size": len(runner.sent), "data": base64.b64encode(b"someone looks\n").decode()
    }


async def test_a_viewer_on_one_server_sees_patches_taken_by_another(start_servers, tmp_path: Path) -> None:  # noqa: ANN001, F811
    # a long heartbeat: the viewer's timeout re-check cannot be what delivers (read timeout 5 s)
    a, b = start_servers(2, sse_heartbeat=60)
    project, runner = await claim_job(b.url, tmp_path)  # the runner talks to server B only
    collector = Collector()
    try:
        async with tail(a.url, project, runner.job["id"]) as events:  # the viewer to server A
            for number in range(5):
                await runner.patch(f"line {number} from B\n".encode())
                await collector.until(events, len(runner.sent))
            await runner.finish()
            end = await next_event(events)
    finally:
        await runner.http.aclose()
    assert bytes(collector.data) == runner.sent and end.event == "end" and '"success"' in end.data


def _connections(port: int) -> list[tuple[str, socket.socket]]:
    """This process's TCP sockets to or from ``port``: ("server" | "client", a duplicate of it)."""
    found = []
    for name in os.listdir("/proc/self/fd"):
        try:
            sock = socket.socket(fileno=os.dup(int(name)))
        except (OSError, ValueError):
            continue
        try:
            if sock.family != socket.AF_INET or sock.type != socket.SOCK_STREAM:
                raise OSError
            local, peer = sock.getsockname(), sock.getpeername()
        except OSError:
            sock.close()
            continue
        if local[1] == port or peer[1] == port:
            found.append(("server" if local[1] == port else "client", sock))
        else:
            sock.close()
    return found


async def test_cli_follow_keeps_alive_and_resumes_after_a_drop(live_server, claimed) -> None:  # noqa: ANN001
    from conveyor.cli.client import AdminClient
    from conveyor.protocol import keepalive

    project, runner = claimed
    await runner.http.aclose()  # only the CLI's connection to the server stays open
    runner.http = httpx.AsyncClient(base_url=live_server.url, timeout=30, limits=httpx.Limits(max_keepalive_connections=0))
    port = int(live_server.url.rsplit(":", 1)[1])
    received = bytearray()
    await runner.patch(b"before the drop\n")
    async with AdminClient(live_server.url, ROOT_TOKEN) as client:
        follow = asyncio.create_task(client.follow_trace(str(project["id"]), runner.job["id"], received.extend))
        while len(received) < len(runner.sent):
            await asyncio.sleep(0.02)
        ends = _connections(port)
        try:
            assert {role for role, _ in ends} == {"server", "client"}
            expected = (True, 15, 15, 4)  # the server's settings and the CLI's defaults
            assert [keepalive.read(sock) for _, sock in ends] == [expected] * len(ends)
            for role, sock in ends:
                if role == "server":
                    sock.shutdown(socket.SHUT_RDWR)  # the connection dies under the CLI
        finally:
            for _, sock in ends:
                sock.close()
        await runner.patch(b"while it reconnects\n")
        while len(received) < len(runner.sent):  # it came back by itself, from where it was
            await asyncio.sleep(0.02)
        await runner.patch(b"after it came back\n")
        await runner.finish()
        status = await asyncio.wait_for(follow, 30)
    assert status == "success" and bytes(received) == runner.sent
