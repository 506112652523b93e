"""Job artifacts over real HTTP: streamed multipart uploads, dependency downloads, limits, expiry."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import threading
import tracemalloc
import zipfile
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from tests.integration.server.test_runner_api import _request, _setup

pytestmark = pytest.mark.integration

BOUNDARY = "2f1c6a0e9d8b7c6a5f4e3d2c1b0a"
PARALLEL = """
a:
  script: [echo a]
b:
  script: [echo b]
"""
SMALL_LIMIT = 64 * 1024


def _zip(**files: bytes) -> bytes:
    """A zip archive, the same bytes for the same files (fixed timestamps)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0)), data)
    return buffer.getvalue()


async def _multipart(pieces: Iterable[bytes], filename: str = "artifacts.zip") -> AsyncIterator[bytes]:
    """The body the runner's helper streams (Example 9), sent in pieces of unknown total length."""
    yield (
        f"--{BOUNDARY}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    for piece in pieces:
        yield piece
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


def _split(data: bytes, size: int = 16 * 1024) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


async def _upload(live, job: dict, pieces: Iterable[bytes], query: str = "artifact_format=zip&artifact_type=archive&expire_in=1+week",  # noqa: ANN001
                  filename: str = "artifacts.zip", token: str | None = None) -> httpx.Response:
    async with httpx.AsyncClient(base_url=live.url, timeout=120) as client:
        return await client.post(
            f"/api/v4/jobs/{job['id']}/artifacts?{query}",
            content=_multipart(pieces, filename),
            headers={"JOB-TOKEN": token or job["token"], "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
        )


async def _download(live, job_id: int, token: str | None, query: str = "") -> httpx.Response:  # noqa: ANN001
    async with httpx.AsyncClient(base_url=live.url, timeout=60) as client:
        return await client.get(f"/api/v4/jobs/{job_id}/artifacts{query}", headers={"JOB-TOKEN": token} if token else {})


async def _running_jobs(live, tmp_path: Path, count: int, yaml: str = PARALLEL) -> tuple[httpx.AsyncClient, dict, list[dict]]:  # noqa: ANN001
    """A pipeline whose first ``count`` jobs a runner has taken and confirmed (running)."""
    admin, token, project = await _setup(live, tmp_path, yaml)
    assert (await admin.post(f"/api/v4/projects/{project['id']}/pipeline")).status_code == 201
    jobs = []
    for _ in range(count):
        response = await _request(live, token)
        assert response.status_code == 201, response.text
        jobs.append(response.json())
    async with httpx.AsyncClient(base_url=live.url) as client:
        for job in jobs:
            ack = await client.put(f"/api/v4/jobs/{job['id']}", json={"token": job["token"], "state": "running", "output": {}})
            assert ack.status_code == 200 and ack.headers["Job-Status"] == "running"
    return admin, {"project": project, "runner_token": token}, jobs


async def _finish(live, job: dict) -> None:  # noqa: ANN001
    async with httpx.AsyncClient(base_url=live.url) as client:
        done = await client.put(f"/api/v4/jobs/{job['id']}", json={"token": job["token"], "state": "success", "output": {"bytesize": 0}})
    assert done.status_code == 200


async def _stored(live, key: str) -> bytes:  # noqa: ANN001
    return b"".join([piece async for piece in live.services.artifacts.objects.open_read(key)])


async def _rows(live, job_id: int) -> list[dict]:  # noqa: ANN001
    async with live.services.engine.connect() as conn:
        result = await conn.execute(sa.text("SELECT * FROM artifacts WHERE job_id = :id ORDER BY file_type"), {"id": job_id})
        return [dict(row) for row in result.mappings()]


def _stored_files(settings) -> list[Path]:  # noqa: ANN001
    root = Path(settings.object_store_url.removeprefix("file://")) / "artifacts"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


async def test_upload_as_the_runner_does_then_download_with_the_job_token(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    admin, _, (job,) = await _running_jobs(live_server, tmp_path, 1)
    data = _zip(**{"out/a.txt": b"hello\n" * 1000, "out/b.bin": os.urandom(100_000)})
    response = await _upload(live_server, job, _split(data))
    assert response.request.headers["Transfer-Encoding"] == "chunked" and "Content-Length" not in response.request.headers
    assert response.status_code == 201 and response.text == "201"
    key = f"artifacts/{job['id']}/archive/artifacts.zip"
    assert await _stored(live_server, key) == data
    (row,) = await _rows(live_server, job["id"])
    assert (row["file_type"], row["file_format"], row["filename"], row["size"], row["object_key"]) == ("archive", "zip", "artifacts.zip", len(data), key)
    assert abs(row["expire_at"] - (datetime.now(UTC) + timedelta(weeks=1))) < timedelta(minutes=1)
    for query in ("?direct_download=true", ""):  # the helper tries direct_download first, then without
        got = await _download(live_server, job["id"], job["token"], query)
        assert got.status_code == 200, got.text
        assert got.headers["Content-Type"] == "application/zip"
        assert got.headers["Content-Disposition"] == 'attachment; filename="artifacts.zip"'
        assert got.content == data
    with zipfile.ZipFile(io.BytesIO(got.content)) as archive:
        assert archive.read("out/a.txt") == b"hello\n" * 1000
    await admin.aclose()


async def test_a_running_job_of_the_same_pipeline_may_download(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    admin, ctx, (a, b) = await _running_jobs(live_server, tmp_path, 2)
    data = _zip(result=b"built by a")
    assert (await _upload(live_server, a, [data])).status_code == 201
    await _finish(live_server, a)
    by_owner = await _download(live_server, a["id"], a["token"])  # the dependency's own token, now finished: dead
    by_running = await _download(live_server, a["id"], b["token"], "?direct_download=true")  # the running job's token
    assert by_owner.status_code == 403 and by_owner.json() == {"message": "403 Forbidden"}  # issue 20: it downloaded
    assert by_running.status_code == 200 and by_running.content == data
    # a running job of another pipeline may not
    assert (await admin.post(f"/api/v4/projects/{ctx['project']['id']}/pipeline")).status_code == 201
    other = (await _request(live_server, ctx["runner_token"])).json()
    assert other["id"] not in (a["id"], b["id"])
    foreign = await _download(live_server, a["id"], other["token"])
    assert foreign.status_code == 403 and foreign.json() == {"message": "403 Forbidden"}
    # nor a job of the same pipeline once it has finished
    await _finish(live_server, b)
    assert (await _download(live_server, a["id"], b["token"])).status_code == 403
    await admin.aclose()


async def test_a_finished_jobs_own_token_no_longer_downloads(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    """Regression (issue 20): a job's token died with the job everywhere but here."""
    admin, _, (job,) = await _running_jobs(live_server, tmp_path, 1)
    data = _zip(result=b"x")
    assert (await _upload(live_server, job, [data])).status_code == 201
    assert (await _download(live_server, job["id"], job["token"])).content == data  # running: its own artifacts
    await _finish(live_server, job)
    for query in ("", "?direct_download=true"):
        refused = await _download(live_server, job["id"], job["token"], query)
        assert refused.status_code == 403 and refused.json() == {"message": "403 Forbidden"}
    async with httpx.AsyncClient(base_url=live_server.url) as client:
        by_param = await client.get(f"/api/v4/jobs/{job['id']}/artifacts", params={"job_token": job["token"]})
    assert by_param.status_code == 403
    await admin.aclose()


async def test_wrong_or_missing_token_is_403_and_absent_artifacts_404(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    admin, _, (job,) = await _running_jobs(live_server, tmp_path, 1)
    absent = await _download(live_server, job["id"], job["token"])
    assert absent.status_code == 404 and absent.json() == {"message": "404 Not Found"}
    unknown = await _download(live_server, 987654321, job["token"])
    assert unknown.status_code == 404 and unknown.json() == {"message": "404 Not Found"}
    assert (await _upload(live_server, job, [_zip(x=b"x")])).status_code == 201
    wrong = await _download(live_server, job["id"], "glcbt-wrong")
    assert wrong.status_code == 403 and wrong.json() == {"message": "403 Forbidden"}
    assert (await _download(live_server, job["id"], None)).status_code == 403
    # uploading with another token is refused, and nothing is replaced
    refused = await _upload(live_server, job, [b"evil"], token="glcbt-wrong")
    assert refused.status_code == 403
    assert (await _download(live_server, job["id"], job["token"])).content == _zip(x=b"x")
    await admin.aclose()


async def test_upload_after_the_job_finished_is_403_with_job_status(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    admin, _, (job,) = await _running_jobs(live_server, tmp_path, 1)
    await _finish(live_server, job)
    late = await _upload(live_server, job, [_zip(x=b"late")])
    assert late.status_code == 403 and late.headers["Job-Status"] == "success"
    assert await _rows(live_server, job["id"]) == [] and _stored_files(live_server.settings) == []
    await admin.aclose()


async def test_reupload_replaces_and_parameters_are_validated(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    admin, _, (job,) = await _running_jobs(live_server, tmp_path, 1)
    first, second = _zip(v=b"1"), _zip(v=b"2")
    assert (await _upload(live_server, job, [first])).status_code == 201
    again = await _upload(live_server, job, [second], query="artifact_format=zip&artifact_type=archive&expire_in=never", filename="build.zip")
    assert again.status_code == 201
    (row,) = await _rows(live_server, job["id"])
    assert row["filename"] == "build.zip" and row["expire_at"] is None and row["size"] == len(second)
    assert await live_server.services.artifacts.objects.size(f"artifacts/{job['id']}/archive/artifacts.zip") is None
    got = await _download(live_server, job["id"], job["token"])
    assert got.content == second and got.headers["Content-Disposition"] == 'attachment; filename="build.zip"'
    # a report artifact is kept beside the archive; the download serves the archive
    report = await _upload(live_server, job, [b"<testsuites/>"], query="artifact_format=gzip&artifact_type=junit&expire_in=2+hrs+20+min", filename="junit.xml.gz")
    assert report.status_code == 201
    rows = {r["file_type"]: r for r in await _rows(live_server, job["id"])}
    assert set(rows) == {"archive", "junit"} and rows["junit"]["file_format"] == "gzip"
    assert abs(rows["junit"]["expire_at"] - (datetime.now(UTC) + timedelta(hours=2, minutes=20))) < timedelta(minutes=1)
    assert (await _download(live_server, job["id"], job["token"])).content == second
    for query in ("expire_in=soon", "artifact_format=rar", "artifact_type=../x"):
        bad = await _upload(live_server, job, [b"x"], query=query)
        assert bad.status_code == 400, (query, bad.text)
        assert "400 Bad request" in bad.json()["message"]
    async with httpx.AsyncClient(base_url=live_server.url) as client:
        not_multipart = await client.post(f"/api/v4/jobs/{job['id']}/artifacts", content=b"raw", headers={"JOB-TOKEN": job["token"]})
        cut = await client.post(  # the closing boundary never comes
            f"/api/v4/jobs/{job['id']}/artifacts?artifact_type=dotenv", content=b"".join(
                [p async for p in _multipart([b"A=1"])])[: -len(f"\r\n--{BOUNDARY}--\r\n")],
            headers={"JOB-TOKEN": job["token"], "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
        )
    assert not_multipart.status_code == 400
    assert cut.status_code == 400 and "dotenv" not in {r["file_type"] for r in await _rows(live_server, job["id"])}
    assert await live_server.services.artifacts.objects.size(f"artifacts/{job['id']}/dotenv/artifacts.zip") is None
    await admin.aclose()


class TestExpiry:
    @pytest.fixture
    def server_settings(self, server_settings):  # noqa: ANN001, ANN201
        return server_settings.with_overrides(sweep_interval=3600)  # this test sweeps by hand

    async def test_expired_artifacts_are_404_then_swept(self, live_server, tmp_path: Path) -> None:  # noqa: ANN001
        admin, _, (job,) = await _running_jobs(live_server, tmp_path, 1)
        data = _zip(x=b"short-lived")
        assert (await _upload(live_server, job, [data], query="artifact_type=archive&expire_in=1+sec")).status_code == 201
        key = f"artifacts/{job['id']}/archive/artifacts.zip"
        service = live_server.services.artifacts
        await asyncio.sleep(1.5)
        gone = await _download(live_server, job["id"], job["token"])
        assert gone.status_code == 404 and gone.json() == {"message": "404 Not Found"}
        # a failing object delete leaves the row, and a later sweep retries: a non-empty directory
        # where the object was makes the store's delete fail for real
        path = Path(live_server.settings.object_store_url.removeprefix("file://")) / key
        path.unlink()
        path.mkdir()
        (path / "blocker").write_bytes(b"x")
        failures = service.failures
        assert await service.expire() == 0
        assert service.failures == failures + 1 and len(await _rows(live_server, job["id"])) == 1
        (path / "blocker").unlink()
        path.rmdir()
        assert await service.expire() == 1
        assert await _rows(live_server, job["id"]) == [] and await service.objects.size(key) is None
        assert await service.expire() == 0
        await admin.aclose()


class TestSweepLoop:
    @pytest.fixture
    def server_settings(self, server_settings):  # noqa: ANN001, ANN201
        return server_settings.with_overrides(sweep_interval=1)

    async def test_the_server_sweeps_expired_artifacts_by_itself(self, live_server, tmp_path: Path) -> None:  # noqa: ANN001
        admin, _, (job,) = await _running_jobs(live_server, tmp_path, 1)
        assert (await _upload(live_server, job, [_zip(x=b"x")], query="expire_in=1+second")).status_code == 201
        key = f"artifacts/{job['id']}/archive/artifacts.zip"
        for _ in range(100):
            if not await _rows(live_server, job["id"]):
                break
            await asyncio.sleep(0.1)
        assert await _rows(live_server, job["id"]) == []
        assert await live_server.services.artifacts.objects.size(key) is None
        await admin.aclose()


def test_expire_in_follows_gitlab() -> None:
    from conveyor.server.archive.artifacts import parse_expire_in

    assert parse_expire_in("1 week") == timedelta(weeks=1)
    assert parse_expire_in("30 days") == timedelta(days=30)
    assert parse_expire_in("2 hrs 20 min") == timedelta(hours=2, minutes=20)
    assert parse_expire_in("3 mins 4 sec") == timedelta(minutes=3, seconds=4)
    assert parse_expire_in("Never") is None
    assert parse_expire_in("42") == timedelta(seconds=42)
    for bad in ("", "soon", "1 fortnight"):
        with pytest.raises(ValueError):
            parse_expire_in(bad)


class TestSizeLimit:
    @pytest.fixture
    def server_settings(self, server_settings):  # noqa: ANN001, ANN201
        return server_settings.with_overrides(artifact_size_limit=SMALL_LIMIT)

    async def test_oversize_upload_is_413_and_nothing_is_stored(self, live_server, tmp_path: Path) -> None:  # noqa: ANN001
        admin, _, (job,) = await _running_jobs(live_server, tmp_path, 1)
        too_big = os.urandom(SMALL_LIMIT + 1)
        refused = await _upload(live_server, job, _split(too_big, 8192))
        assert refused.status_code == 413 and refused.json() == {"message": "413 Request Entity Too Large"}
        assert await _rows(live_server, job["id"]) == [] and _stored_files(live_server.settings) == []
        # far over the limit, with a declared length: refused before the body is read
        async with httpx.AsyncClient(base_url=live_server.url) as client:
            body = b"".join([p async for p in _multipart([b"x" * (SMALL_LIMIT + 2 * 1024 * 1024)])])
            declared = await client.post(f"/api/v4/jobs/{job['id']}/artifacts", content=body, headers={
                "JOB-TOKEN": job["token"], "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})
        assert declared.status_code == 413 and declared.json() == {"message": "413 Request Entity Too Large"}
        assert await _rows(live_server, job["id"]) == [] and _stored_files(live_server.settings) == []
        # exactly at the limit is fine, and the job can still upload
        exact = os.urandom(SMALL_LIMIT)
        assert (await _upload(live_server, job, _split(exact, 8192))).status_code == 201
        assert await _stored(live_server, f"artifacts/{job['id']}/archive/artifacts.zip") == exact
        await admin.aclose()


class _RssPeak:
    """Samples this process's resident set size from a thread, keeping the peak."""

    def __init__(self) -> None:
        self.peak = self.base = self.read()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    @staticmethod
    def read() -> int:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self.read())

    def __enter__(self) -> _RssPeak:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.read())


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="reads RSS from /proc")
@pytest.mark.skipif(tracemalloc.is_tracing(), reason="tracemalloc's own bookkeeping grows with every allocation")
async def test_a_50_mib_upload_streams_without_growing_memory(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    admin, _, (job,) = await _running_jobs(live_server, tmp_path, 1)
    size, piece = 50 * 1024 * 1024, os.urandom(64 * 1024)
    expected = hashlib.sha256()
    for _ in range(size // len(piece)):
        expected.update(piece)
    warm = await _upload(live_server, job, [piece] * 16, query="artifact_type=junit&artifact_format=raw", filename="warm")
    assert warm.status_code == 201  # first-use allocations (parser, store, pools) are not counted
    with _RssPeak() as rss:
        response = await _upload(live_server, job, (piece for _ in range(size // len(piece))))
    assert response.status_code == 201, response.text
    growth = rss.peak - rss.base
    assert growth < 30 * 1024 * 1024, f"RSS grew by {growth / 2**20:.1f} MiB during a 50 MiB upload"
    stored = hashlib.sha256()
    async for chunk in live_server.services.artifacts.objects.open_read(f"artifacts/{job['id']}/archive/artifacts.zip"):
        stored.update(chunk)
    assert stored.hexdigest() == expected.hexdigest()
    (row,) = [r for r in await _rows(live_server, job["id"]) if r["file_type"] == "archive"]
    assert row["size"] == size
    await admin.aclose()


async def test_people_download_with_a_reporters_token(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    """``GET /jobs/:id/artifacts`` with a personal access token: reporters of the project only."""
    admin, ctx, (job,) = await _running_jobs(live_server, tmp_path, 1)
    data = _zip(result=b"for people")
    assert (await _upload(live_server, job, [data])).status_code == 201
    await _finish(live_server, job)
    tokens = {}
    for name, level in (("guest", 10), ("reporter", 20), ("stranger", None)):
        user = (await admin.post("/api/v4/users", json={"email": f"{name}@x.org", "username": name, "name": name})).json()
        tokens[name] = (await admin.post(f"/api/v4/users/{user['id']}/personal_access_tokens", json={"name": "t", "scopes": ["read_api"]})).json()["token"]
        if level:
            await admin.post(f"/api/v4/projects/{ctx['project']['id']}/members", json={"user_id": user["id"], "access_level": level})
    async with httpx.AsyncClient(base_url=live_server.url) as client:
        path = f"/api/v4/jobs/{job['id']}/artifacts"
        assert (await client.get(path, headers={"PRIVATE-TOKEN": tokens["reporter"]})).content == data
        assert (await client.get(path, headers={"Authorization": f"Bearer {tokens['reporter']}"})).content == data
        assert (await client.get(path, headers={"PRIVATE-TOKEN": tokens["guest"]})).status_code == 403
        hidden = await client.get(path, headers={"PRIVATE-TOKEN": tokens["stranger"]})
        assert (hidden.status_code, hidden.json()) == (404, {"message": "404 Project Not Found"})
        assert (await client.get(path, headers={"PRIVATE-TOKEN": "glpat-wrong"})).status_code == 401
        assert (await client.get(path)).status_code == 403  # no credential at all: the runner API's answer
    await admin.aclose()
