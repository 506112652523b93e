"""The cache shared by runners in S3 (gitlab-runner's ``[runners.cache]``), against the local S3
server: a job on one runner saves, a job on another runner (own builds and cache directories)
restores; object names as gitlab-runner's; a missing or unreachable bucket is only a warning."""

from __future__ import annotations

import dataclasses
import uuid
from pathlib import Path

import pytest

from conveyor.runner import run
from conveyor.runner.executors import default_executors
from conveyor.runner.settings import RunnerSettings, S3CacheSettings
from tests.integration.runner.fake_coordinator import Coordinator, job_payload
from tests.plugins.s3 import ACCESS_KEY, REGION, SECRET_KEY

pytestmark = pytest.mark.integration


def _cache(key: str, policy: str = "pull-push", fallback: list[str] | None = None) -> list[dict]:
    return [{"key": key, "paths": ["out/"], "policy": policy, "untracked": False, "when": "on_success",
             "fallback_keys": fallback or []}]  # fmt: skip


def _runner(settings: RunnerSettings, tmp_path: Path, name: str, cache: S3CacheSettings) -> RunnerSettings:
    return dataclasses.replace(settings, builds_dir=tmp_path / name / "builds", cache_dir=tmp_path / name / "cache", cache=cache)


async def test_a_cache_saved_on_one_runner_is_restored_on_another(
    coordinator: Coordinator, settings: RunnerSettings, s3_server, tmp_path: Path  # noqa: ANN001
) -> None:
    prefix = f"cache-{uuid.uuid4().hex[:8]}"
    shared = S3CacheSettings(server_address=s3_server.endpoint.removeprefix("http://"), access_key=ACCESS_KEY,
                             secret_key=SECRET_KEY, bucket_name=s3_server.bucket, bucket_location=REGION,
                             insecure=True, path=prefix, shared=True)  # fmt: skip
    first = job_payload(7001, ["mkdir -p out && echo from-runner-a > out/a.txt"])
    first["cache"] = _cache("deps-non_protected")
    coordinator.add_job(first)
    await run(_runner(settings, tmp_path, "a", shared), max_jobs=1, executors=default_executors())
    text = coordinator.trace(7001).decode()
    assert coordinator.job(7001).status == "success", text
    assert "Uploading cache.zip to http://" in text and "X-Amz-Signature=[MASKED]" in text and "Created cache" in text
    names = [o["Key"] for o in s3_server.client().list_objects_v2(Bucket=s3_server.bucket, Prefix=prefix)["Contents"]]
    assert names == [f"{prefix}/project/7/deps-non_protected"]  # Shared: no runner/<token> part

    second = job_payload(7002, ["cat out/a.txt"])
    second["cache"] = _cache("missing-non_protected", "pull", ["deps-non_protected"])
    coordinator.add_job(second)
    await run(_runner(settings, tmp_path, "b", shared), max_jobs=1, executors=default_executors())
    text = coordinator.trace(7002).decode()
    assert coordinator.job(7002).status == "success", text
    assert "missing-non_protected: not found in the shared cache" in text
    assert "Downloading cache from http://" in text and "Successfully extracted cache deps-non_protected" in text
    assert "from-runner-a\n" in text

    # not shared: under runner/<short token>; an unreachable bucket warns and the job goes on
    own = dataclasses.replace(shared, shared=False)
    third = job_payload(7003, ["mkdir -p out && echo x > out/b.txt"])
    third["cache"] = _cache("own-non_protected")
    coordinator.add_job(third)
    await run(_runner(settings, tmp_path, "c", own), max_jobs=1, executors=default_executors())
    assert coordinator.job(7003).status == "success"
    names = [o["Key"] for o in s3_server.client().list_objects_v2(Bucket=s3_server.bucket, Prefix=f"{prefix}/runner")["Contents"]]
    assert names == [f"{prefix}/runner/t1_Integ/project/7/own-non_protected"]
    gone = dataclasses.replace(shared, server_address="127.0.0.1:9")
    fourth = job_payload(7004, ["mkdir -p out && echo y > out/c.txt"])
    fourth["cache"] = _cache("deps-non_protected")
    coordinator.add_job(fourth)
    await run(_runner(settings, tmp_path, "d", gone), max_jobs=1, executors=default_executors())
    text = coordinator.trace(7004).decode()
    assert coordinator.job(7004).status == "success", text
    assert "Failed to download cache from the shared cache" in text and "Failed to upload cache to the shared cache" in text
