"""A small GitLab-compatible coordinator for runner integration tests.

A Starlette app under uvicorn, in its own thread, on a real socket on 127.0.0.1. It implements
``runners/verify``, ``jobs/request``, ``PUT jobs/:id`` and ``PATCH jobs/:id/trace`` the way
GitLab does (runner-api.md sections 3-6, 11), records every request, and has knobs to misbehave:
canned responses, lost trace bytes, cancel/abort, 202/412 on the final update, and an outage
mode in which a raw listener resets every connection.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

RUNNER_TOKEN = "glrt-t1_IntegrationRunnerToken"


@dataclass
class Canned:
    """A response to send instead of the normal one, for the next matching request."""

    method: str
    path_suffix: str
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    after_normal: bool = False  # handle the request normally first (state changes), then lie


@dataclass
class Recorded:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Job:
    payload: dict[str, Any]
    status: str = "pending"
    trace: bytearray = field(default_factory=bytearray)
    puts: list[dict[str, Any]] = field(default_factory=list)
    patch_statuses: list[int] = field(default_factory=list)
    final_accepts: int = 0  # answer the final PUT with 202 this many times first
    reset_on_mismatch: bool = False  # answer a final PUT whose bytesize is wrong with 412
    claim_offset: int | None = None  # answer the next PATCH with 416 and this Range end

    @property
    def token(self) -> str:
        return self.payload["token"]

    @property
    def final(self) -> dict[str, Any] | None:
        finals = [p for p in self.puts if p["state"] in ("success", "failed")]
        return finals[-1] if finals else None


class Coordinator:
    """Thread-safe state plus the ASGI app. Handlers run in the server thread."""

    def __init__(self, update_interval: str = "0.05") -> None:
        self.lock = threading.RLock()
        self.queue: list[dict[str, Any]] = []
        self.jobs: dict[int, Job] = {}
        self.requests: list[Recorded] = []
        self.canned: list[Canned] = []
        self.update_interval = update_interval
        self.last_update = "lu-0"
        self.hold_job_requests = threading.Event()  # long poll: hold until cleared
        self.artifacts: dict[int, bytes] = {}  # job id -> the uploaded file (multipart part body)
        self.artifact_tokens: dict[int, str] = {}  # job id -> the token that may download it
        self.app = Starlette(
            routes=[
                Route("/api/v4/runners/verify", self.verify, methods=["POST"]),
                Route("/api/v4/jobs/request", self.request_job, methods=["POST"]),
                Route("/api/v4/jobs/{job_id:int}", self.update_job, methods=["PUT"]),
                Route("/api/v4/jobs/{job_id:int}/trace", self.patch_trace, methods=["PATCH"]),
                Route("/api/v4/jobs/{job_id:int}/artifacts", self.upload_artifact, methods=["POST"]),
                Route("/api/v4/jobs/{job_id:int}/artifacts", self.download_artifact, methods=["GET"]),
            ]
        )

    # -- test helpers ----------------------------------------------------------------------

    def add_job(self, payload: dict[str, Any], **knobs: Any) -> Job:
        with self.lock:
            job = Job(payload, **knobs)
            self.jobs[payload["id"]] = job
            self.queue.append(payload)
            return job

    def job(self, job_id: int) -> Job:
        with self.lock:
            return self.jobs[job_id]

    def trace(self, job_id: int) -> bytes:
        with self.lock:
            return bytes(self.jobs[job_id].trace)

    def set_status(self, job_id: int, status: str) -> None:
        with self.lock:
            self.jobs[job_id].status = status

    def truncate(self, job_id: int, keep: int) -> None:
        with self.lock:
            del self.jobs[job_id].trace[keep:]

    def recorded(self, method: str, suffix: str = "") -> list[Recorded]:
        with self.lock:
            return [r for r in self.requests if r.method == method and r.path.endswith(suffix)]

    # -- handlers ------------------------------------------------------------------------------

    async def _record(self, request: Request) -> tuple[Recorded, Canned | None]:
        body = await request.body()
        record = Recorded(request.method, request.url.path, request.url.query, dict(request.headers), body)
        with self.lock:
            self.requests.append(record)
            canned = next((c for c in self.canned if c.method == request.method and
                           request.url.path.endswith(c.path_suffix)), None)  # fmt: skip
            if canned is not None:
                self.canned.remove(canned)
        return record, canned

    @staticmethod
    def _canned(canned: Canned) -> Response:
        return Response(canned.body, status_code=canned.status, headers=canned.headers)

    async def verify(self, request: Request) -> Response:
        record, canned = await self._record(request)
        if canned:
            return self._canned(canned)
        if record.json().get("token") != RUNNER_TOKEN:
            return JSONResponse({"message": "403 Forbidden"}, status_code=403)
        return JSONResponse({"id": 42, "token": RUNNER_TOKEN, "token_expires_at": None})

    async def request_job(self, request: Request) -> Response:
        record, canned = await self._record(request)
        while self.hold_job_requests.is_set():
            await asyncio.sleep(0.01)
        if canned:
            return self._canned(canned)
        if record.json().get("token") != RUNNER_TOKEN:
            return JSONResponse({"message": "403 Forbidden"}, status_code=403)
        with self.lock:
            if not self.queue:
                return Response(status_code=204, headers={"X-GitLab-Last-Update": self.last_update})
            payload = self.queue.pop(0)
            if self.jobs[payload["id"]].status == "pending":
                self.jobs[payload["id"]].status = "running"
        return Response(json.dumps(payload), status_code=201, media_type="application/json")

    def _forbidden(self, job: Job | None) -> Response | None:
        if job is None:
            return JSONResponse({"message": "404 Not Found"}, status_code=404)
        if job.status not in ("running", "canceling"):
            return JSONResponse({"message": "403 Forbidden - Job is not processing on runner"},
                                status_code=403, headers={"Job-Status": job.status})  # fmt: skip
        return None

    async def update_job(self, request: Request) -> Response:
        record, canned = await self._record(request)
        if canned and not canned.after_normal:
            return self._canned(canned)
        body = record.json()
        with self.lock:
            job = self.jobs.get(request.path_params["job_id"])
            if job is not None and body.get("token") != job.token:
                return JSONResponse({"message": "403 Forbidden"}, status_code=403)
            refused = self._forbidden(job)
            if refused:
                return refused
            assert job is not None
            job.puts.append(body)
            state = body["state"]
            headers = {"Job-Status": job.status, "X-GitLab-Trace-Update-Interval": self.update_interval}
            if state in ("success", "failed"):
                if body["output"].get("bytesize") != len(job.trace):
                    if job.reset_on_mismatch:
                        job.trace.clear()
                        return Response("412", status_code=412, headers=headers)
                    return Response("202", status_code=202, headers=headers)
                if job.final_accepts > 0:
                    job.final_accepts -= 1
                    return Response("202", status_code=202, headers=headers)
                job.status = "canceled" if job.status == "canceling" else state
                headers["Job-Status"] = job.status
            response = Response("200", status_code=200, headers=headers)
        return self._canned(canned) if canned else response

    async def patch_trace(self, request: Request) -> Response:
        record, canned = await self._record(request)
        if canned and not canned.after_normal:
            return self._canned(canned)
        with self.lock:
            job = self.jobs.get(request.path_params["job_id"])
            if job is not None and record.headers.get("job-token") != job.token:
                return JSONResponse({"message": "403 Forbidden"}, status_code=403)
            refused = self._forbidden(job)
            if refused:
                return refused
            assert job is not None
            start = int(record.headers["content-range"].split("-", 1)[0])
            headers = {"Job-Status": job.status, "X-GitLab-Trace-Update-Interval": self.update_interval}
            if job.claim_offset is not None:
                headers["Range"] = f"0-{job.claim_offset}"
                job.claim_offset = None
                job.patch_statuses.append(416)
                return JSONResponse({"message": "416 Range Not Satisfiable"}, status_code=416, headers=headers)
            if start != len(job.trace):
                headers["Range"] = f"0-{len(job.trace)}"
                job.patch_statuses.append(416)
                return JSONResponse({"message": "416 Range Not Satisfiable"}, status_code=416, headers=headers)
            job.trace += record.body
            headers["Range"] = f"0-{len(job.trace)}"
            job.patch_statuses.append(202 if canned is None else canned.status)
            response = Response(status_code=202, headers=headers)
        return self._canned(canned) if canned else response


    async def upload_artifact(self, request: Request) -> Response:
        record, canned = await self._record(request)
        if canned:
            return self._canned(canned)
        with self.lock:
            job = self.jobs.get(request.path_params["job_id"])
            if job is None or record.headers.get("job-token") != job.token:
                return JSONResponse({"message": "403 Forbidden"}, status_code=403)
            boundary = record.headers["content-type"].split("boundary=", 1)[1].encode()
            part = record.body.split(b"--" + boundary)[1]
            self.artifacts[job.payload["id"]] = part.split(b"\r\n\r\n", 1)[1][: -len(b"\r\n")]
        return Response("201", status_code=201)

    async def download_artifact(self, request: Request) -> Response:
        record, canned = await self._record(request)
        if canned:
            return self._canned(canned)
        job_id = request.path_params["job_id"]
        with self.lock:
            if job_id not in self.artifacts:
                return JSONResponse({"message": "404 Not Found"}, status_code=404)
            if record.headers.get("job-token") != self.artifact_tokens.get(job_id):
                return JSONResponse({"message": "403 Forbidden"}, status_code=403)
            return Response(self.artifacts[job_id], media_type="application/zip")


class CoordinatorServer:
    """Runs a Coordinator on 127.0.0.1; can be stopped, reset-flapped and restarted on its port."""

    def __init__(self, coordinator: Coordinator) -> None:
        self.coordinator = coordinator
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._resetter: ResetListener | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        sock = _listener(self.port)
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.coordinator.app, log_config=None, log_level="warning", lifespan="off",
                                ws="none", http="h11", timeout_keep_alive=120, timeout_graceful_shutdown=5)  # fmt: skip
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("coordinator failed to start")
            threading.Event().wait(0.01)

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=30)
            self._server = self._thread = None

    def start_outage(self) -> ResetListener:
        """Stop serving HTTP; every new connection on the port is reset until ``end_outage``."""
        self.stop()
        self._resetter = ResetListener(self.port)
        return self._resetter

    def end_outage(self) -> None:
        if self._resetter is not None:
            self._resetter.close()
            self._resetter = None
        self.start()

    def close(self) -> None:
        if self._resetter is not None:
            self._resetter.close()
            self._resetter = None
        self.stop()


class ResetListener:
    """Accepts connections on a port and resets each one at once (RST), counting them."""

    def __init__(self, port: int) -> None:
        self._sock = _listener(port)
        self._sock.settimeout(0.02)
        self._closed = threading.Event()
        self.resets = 0
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._sock.accept()
            except (TimeoutError, OSError):
                continue
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()
            self.resets += 1

    def close(self) -> None:
        self._closed.set()
        self._thread.join(timeout=10)
        self._sock.close()


def _listener(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(64)
    return sock


def crc(data: bytes) -> str:
    return f"crc32:{zlib.crc32(data):08x}"


def job_payload(
    job_id: int,
    script: list[str],
    *,
    after_script: list[str] | None = None,
    variables: list[dict[str, Any]] | None = None,
    repo_url: str = "https://gitlab-ci-token:glcbt-JOBTOKEN@gitlab.example.com/group/demo.git",
    sha: str = "",
    timeout: int = 3600,
) -> dict[str, Any]:
    """A payload shaped like GitLab's; GIT_STRATEGY=none unless a sha is given."""
    steps = [{"name": "script", "script": script, "timeout": timeout, "when": "on_success", "allow_failure": False}]
    if after_script:
        steps.append({"name": "after_script", "script": after_script, "timeout": timeout, "when": "always",
                      "allow_failure": True})  # fmt: skip
    variables = list(variables or [])
    if not sha:
        variables.insert(0, {"key": "GIT_STRATEGY", "value": "none", "public": True, "masked": False})
    return {
        "id": job_id,
        "token": f"glcbt-job{job_id}token",
        "allow_git_fetch": True,
        "job_info": {"id": job_id, "name": "build", "stage": "test", "project_id": 7, "project_name": "demo",
                     "project_jobs_running_on_instance_runners_count": "+Inf"},  # fmt: skip
        "git_info": {"repo_url": repo_url, "ref": "main", "sha": sha, "before_sha": "", "ref_type": "branch",
                     "refspecs": ["+refs/heads/main:refs/remotes/origin/main"], "depth": 0},  # fmt: skip
        "runner_info": {"timeout": timeout, "runner_session_url": None},
        "variables": variables,
        "steps": steps,
        "image": None,
        "services": [],
        "artifacts": [],
        "cache": [],
        "credentials": [],
        "dependencies": [],
        "features": {"trace_sections": True,
                     "failure_reasons": ["unknown_failure", "script_failure", "runner_system_failure",
                                         "job_execution_timeout"]},  # fmt: skip
    }


async def eventually(predicate: Callable[[], Any], timeout: float = 60.0, what: str = "condition") -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)
