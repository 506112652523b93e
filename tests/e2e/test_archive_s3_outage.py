"""A real server archiving to S3 (a local moto server) survives the S3 server going away: the
archive fails, the log stays whole and readable, and once S3 is back the archived log is the
job's output byte for byte."""

from __future__ import annotations

import time
import zlib
from pathlib import Path

import httpx
import pytest

from tests.plugins.repos import make_repo

pytestmark = pytest.mark.e2e

# ~2 MB of output (16 chunks), then a pause in which the test stops the S3 server
NOISY = """
noisy:
  script:
    - head -c 1500000 /dev/urandom | base64 | tee "$CI_PROJECT_DIR/../printed-$CI_JOB_ID.txt"
    - sleep 4
"""


@pytest.fixture
def server_env(private_s3_server) -> dict[str, str]:  # noqa: ANN001
    return {
        **private_s3_server.env("e2e"),
        "CONVEYOR_ARCHIVE_RETRY_BASE_DELAY": "1",
        "CONVEYOR_ARCHIVE_RETRY_MAX_DELAY": "2",
    }


def _failures(url: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return sum(float(l.split()[-1]) for l in text.splitlines() if l.startswith("conveyor_trace_archive_failures_total{"))


def _archive_row(postgres, database_url: str, job_id: int) -> tuple[bool, int, int]:  # noqa: ANN001
    """(trace_archived, durable chunk rows, archive attempts) read straight from PostgreSQL."""
    out = postgres.psql(
        "SELECT j.trace_archived, (SELECT count(*) FROM trace_chunks c WHERE c.job_id = j.id),"
        f" coalesce(a.attempts, 0) FROM jobs j LEFT JOIN trace_archives a ON a.job_id = j.id WHERE j.id = {int(job_id)}",
        database=database_url.rsplit("/", 1)[1],
    )
    archived, chunks, attempts = out.strip().split("|")
    return archived == "t", int(chunks), int(attempts)


def test_archive_waits_out_an_s3_outage(server_process, admin, start_runner, private_s3_server, postgres, tmp_path: Path) -> None:  # noqa: ANN001
    def row() -> tuple[bool, int, int]:
        return _archive_row(postgres, server_process.env["CONVEYOR_DATABASE_URL"], job["id"])

    make_repo(tmp_path / "repo", NOISY)
    project = admin.project(str(tmp_path / "repo"))
    runner = start_runner(server_process.url, admin.runner_token())
    pipeline = admin.pipeline(project["id"])

    deadline = time.monotonic() + 60
    while True:  # the whole output is on the server; the job is sleeping
        job = admin.jobs(project["id"], pipeline["id"])["noisy"]
        if job["trace_size"] >= 2_000_000:
            break
        assert time.monotonic() < deadline, f"the job never logged its output: {job}"
        time.sleep(0.2)
    private_s3_server.stop()  # S3 goes away before the job ends and its log is archived

    final = admin.wait(project["id"], pipeline["id"])
    job = admin.jobs(project["id"], pipeline["id"])["noisy"]
    assert final["status"] == "success", (job, runner.log_path.read_text()[-3000:])
    printed = next(runner.builds_dir.rglob(f"printed-{job['id']}.txt")).read_bytes()
    deadline = time.monotonic() + 60
    while _failures(server_process.url) < 1:  # the archive attempt failed (obstore gave up retrying)
        assert time.monotonic() < deadline, "no archive attempt failed while S3 was down"
        time.sleep(0.3)
    archived, chunks, attempts = row()
    assert not archived and chunks >= 15 and attempts >= 1  # nothing deleted
    log = admin.trace(project["id"], job["id"])
    assert printed in log  # readable from the live chunks meanwhile

    private_s3_server.start()  # back (empty: moto keeps objects in memory); the next retry archives
    deadline = time.monotonic() + 60
    while not row()[0]:
        assert time.monotonic() < deadline, "the log was not archived after S3 came back"
        time.sleep(0.3)
    assert row()[:2] == (True, 0)
    stored = private_s3_server.client().get_object(Bucket=private_s3_server.bucket, Key=f"e2e/traces/{job['id']}/job.log")["Body"].read()
    assert stored == log == admin.trace(project["id"], job["id"])
    assert job["trace_checksum"] == f"crc32:{zlib.crc32(stored):08x}"
