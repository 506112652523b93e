"""Recorded contract: every request the runner makes, checked against runner-api.md.

One job exercises every call: verify, job request (204 then 201), acknowledgement PUT, trace
PATCHes, a keep-alive PUT during a quiet period, dependency download, artifact upload, the final
PUT; a second job restores the first job's cache. Each recorded request is then checked against
the rules of sections 1.1, 3.1, 4.1, 5.1 and 7.
"""

from __future__ import annotations

import io
import re
import zipfile

import pytest

from conveyor.protocol.models import FEATURE_NAMES
from conveyor.protocol.trace import PATCH_LIMIT
from conveyor.runner import ShellExecutor, run
from conveyor.runner.settings import RunnerSettings
from tests.integration.runner.fake_coordinator import Canned, Coordinator, Recorded, crc, job_payload

pytestmark = pytest.mark.integration
SYSTEM_ID = re.compile(r"^[sr]_[0-9a-zA-Z]{12}$")


def dependency_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("dep/from-build.txt", "from the build job\n")
    return buffer.getvalue()


def jobs(coordinator: Coordinator) -> tuple[dict, dict]:
    first = job_payload(6001, ["cat dep/from-build.txt", "mkdir -p out && echo kept > out/a.txt",
                               "echo quiet now", "sleep 1.5", "echo awake"])  # fmt: skip
    first["artifacts"] = [{"name": "artifacts", "untracked": False, "paths": ["out/"], "when": "on_success",
                           "expire_in": "1 week", "artifact_type": "archive", "artifact_format": "zip"}]  # fmt: skip
    first["cache"] = [{"key": "deps-non_protected", "paths": ["out/"], "policy": "pull-push", "untracked": False,
                       "when": "on_success", "fallback_keys": []}]  # fmt: skip
    first["dependencies"] = [{"id": 5999, "token": "glcbt-dependency", "name": "build",
                              "artifacts_file": {"filename": "artifacts.zip", "size": 100}}]  # fmt: skip
    coordinator.artifacts[5999] = dependency_zip()
    coordinator.artifact_tokens[5999] = "glcbt-dependency"
    second = job_payload(6002, ["cat out/a.txt"], variables=[{"key": "GIT_STRATEGY", "value": "empty"}])
    second["cache"] = [{"key": "missing-non_protected", "fallback_keys": ["deps-non_protected"], "paths": ["out/"],
                        "policy": "pull"}]  # fmt: skip
    return first, second


def check_common(request: Recorded) -> None:
    assert request.headers["user-agent"].startswith("conveyor-runner ")
    assert re.fullmatch(r"[0-9a-f]{32}", request.headers["x-request-id"])


def check_runner_call(request: Recorded, settings: RunnerSettings) -> dict:
    body = request.json()
    assert request.headers["content-type"] == "application/json"
    assert request.headers["accept"] == "application/json"
    assert request.headers["runner-token"] == settings.token == body["token"]
    assert SYSTEM_ID.match(body["system_id"])
    features = body["info"]["features"]
    assert set(FEATURE_NAMES) <= set(features), "every feature key is always sent"
    assert all(isinstance(value, bool) for value in features.values())
    assert body["info"]["executor"] == "shell" and body["info"]["shell"] == "bash"
    return body


def check_put(request: Recorded, job: dict) -> dict:
    body = request.json()
    assert "accept" not in request.headers and request.headers["content-type"] == "application/json"
    assert request.headers["job-token"] == body["token"] == job["token"]
    assert body["state"] in ("running", "success", "failed")
    assert "output" in body
    if body.get("checksum") is not None:
        assert body["checksum"] == body["output"]["checksum"]
        assert re.fullmatch(r"crc32:[0-9a-f]{8}", body["checksum"])
    assert body.get("exit_code", 1) != 0, "exit_code is omitempty"
    assert ("failure_reason" in body) == (body["state"] == "failed")
    return body


def check_patches(patches: list[Recorded], job: dict, stored: bytes) -> None:
    offset = 0
    for patch in patches:
        assert patch.query == "debug_trace=false"
        assert patch.headers["content-type"] == "text/plain" and patch.headers["job-token"] == job["token"]
        assert patch.headers["content-range"] == f"{offset}-{offset + len(patch.body) - 1}"
        assert 0 < len(patch.body) <= PATCH_LIMIT and int(patch.headers["content-length"]) == len(patch.body)
        offset += len(patch.body)
    assert offset == len(stored)


async def test_every_request_follows_the_spec(coordinator: Coordinator, settings: RunnerSettings) -> None:
    first, second = jobs(coordinator)
    coordinator.canned.append(Canned("POST", "/jobs/request", 204, {"X-GitLab-Last-Update": "lu-1"}))
    coordinator.add_job(first)
    coordinator.add_job(second)
    await run(settings, max_jobs=2, executors={"shell": ShellExecutor})

    assert coordinator.job(6001).status == "success", coordinator.trace(6001).decode()
    assert coordinator.job(6002).status == "success", coordinator.trace(6002).decode()
    for request in coordinator.requests:
        check_common(request)
    kinds = {(r.method, re.sub(r"/\d+", "/:id", r.path)) for r in coordinator.requests}
    assert kinds == {
        ("POST", "/api/v4/runners/verify"), ("POST", "/api/v4/jobs/request"), ("PUT", "/api/v4/jobs/:id"),
        ("PATCH", "/api/v4/jobs/:id/trace"), ("POST", "/api/v4/jobs/:id/artifacts"),
        ("GET", "/api/v4/jobs/:id/artifacts"),
    }  # fmt: skip

    verify = check_runner_call(coordinator.recorded("POST", "/runners/verify")[0], settings)
    assert set(verify) == {"token", "system_id", "info"}
    requests = [check_runner_call(r, settings) for r in coordinator.recorded("POST", "/jobs/request")]
    assert "last_update" not in requests[0] and requests[1]["last_update"] == "lu-1"

    puts = [check_put(r, first) for r in coordinator.recorded("PUT", "/jobs/6001")]
    assert puts[0]["state"] == "running" and puts[0]["output"] == {}, "the acknowledgement"
    keepalives = [p for p in puts[1:-1] if p["state"] == "running"]
    assert keepalives and all(p["output"]["bytesize"] > 0 for p in keepalives), "keep-alive PUTs while quiet"
    stored = coordinator.trace(6001)
    assert puts[-1] == {**puts[-1], "state": "success", "output": {"checksum": crc(stored), "bytesize": len(stored)}}
    check_patches(coordinator.recorded("PATCH", "/jobs/6001/trace"), first, stored)

    download = coordinator.recorded("GET", "/jobs/5999/artifacts")[0]
    assert download.query == "direct_download=true" and download.headers["job-token"] == "glcbt-dependency"
    assert b"from the build job" in stored

    upload = coordinator.recorded("POST", "/jobs/6001/artifacts")[0]
    assert upload.query == "artifact_format=zip&artifact_type=archive&expire_in=1+week"
    assert upload.headers["job-token"] == first["token"]
    assert upload.headers.get("transfer-encoding") == "chunked" and "content-length" not in upload.headers
    assert re.fullmatch(r"multipart/form-data; boundary=[0-9a-f]+", upload.headers["content-type"])
    assert b'Content-Disposition: form-data; name="file"; filename="artifacts.zip"' in upload.body
    with zipfile.ZipFile(io.BytesIO(coordinator.artifacts[6001])) as archive:
        assert archive.read("out/a.txt") == b"kept\n"

    # the second job started from an empty directory: out/a.txt came from the cache (fallback key)
    text = coordinator.trace(6002).decode()
    assert "Successfully extracted cache deps-non_protected" in text and "kept\n" in text
    assert [check_put(r, second)["state"] for r in coordinator.recorded("PUT", "/jobs/6002")][-1] == "success"

