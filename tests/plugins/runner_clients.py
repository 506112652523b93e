"""A lightweight stand-in for gitlab-runner that only speaks the job API, for load tests.

One ``RunnerClient`` is one registered runner talking to one or more servers over real HTTP. It
sends what the Go runner sends (runner-api.md 3.1, 4.1, 5.1): the full ``info`` with every
feature key, ``last_update`` echoed from the last 204, the acknowledgement ``PUT state=running``
right after a 201 (two-phase accept), a ``PATCH /trace`` with ``Content-Range``, and a final
``PUT`` carrying the log's ``bytesize`` and CRC-32. It runs no scripts.
"""

from __future__ import annotations

import asyncio
import time
import zlib
from dataclasses import dataclass
from typing import Any

import httpx

# info.features of a Go shell runner (runner-api.md 3.1): every key present, these ones true
_TRUE_FEATURES = {
    "variables", "shared", "session", "terminal", "native_steps_integration", "artifacts",
    "upload_multiple_artifacts", "upload_raw_artifacts", "cache", "fallback_cache_keys", "refspecs",
    "masking", "raw_variables", "artifacts_exclude", "multi_build_steps", "vault_secrets",
    "return_exit_code", "trace_reset", "trace_checksum", "trace_size", "cancelable",
    "cancel_gracefully", "two_phase_job_commit", "job_inputs",
}
_FALSE_FEATURES = {
    "image", "services", "proxy", "service_variables", "service_multiple_aliases",
    "image_executor_opts", "service_executor_opts",
}
INFO: dict[str, Any] = {
    "name": "gitlab-runner",
    "version": "18.5.0",
    "revision": "bench",
    "platform": "linux",
    "architecture": "amd64",
    "executor": "shell",
    "shell": "bash",
    "features": {**{k: True for k in _TRUE_FEATURES}, **{k: False for k in _FALSE_FEATURES}},
    "config": {"gpus": ""},
}


@dataclass(frozen=True)
class Assigned:
    """A 201: the job and the wall-clock time (``time.time()``) its response was in hand."""

    job: dict[str, Any]
    received_at: float
    requested_at: float
    server: str

    @property
    def id(self) -> int:
        return int(self.job["id"])

    @property
    def token(self) -> str:
        return str(self.job["token"])


class RunnerClient:
    """One runner (one ``glrt-`` token, one ``system_id``) with a connection pool per server."""

    def __init__(self, token: str, system_id: str, server_urls: list[str], *, timeout: float = 120.0) -> None:
        self.token = token
        self.system_id = system_id
        self.last_update: str | None = None
        self._http = {url: httpx.AsyncClient(base_url=url + "/api/v4", timeout=timeout) for url in server_urls}

    async def aclose(self) -> None:
        await asyncio.gather(*(client.aclose() for client in self._http.values()))

    async def request_job(self, server: str) -> Assigned | None:
        """``POST /jobs/request``: the job on 201, None on 204 (remembering ``X-GitLab-Last-Update``)."""
        body: dict[str, Any] = {"info": INFO, "token": self.token, "system_id": self.system_id}
        if self.last_update is not None:
            body["last_update"] = self.last_update
        requested_at = time.time()
        response = await self._http[server].post("/jobs/request", json=body)
        received_at = time.time()
        if response.status_code == 201:
            return Assigned(response.json(), received_at, requested_at, server)
        if response.status_code == 204:
            # the Go runner keeps the previous value when a 204 carries no header
            self.last_update = response.headers.get("X-GitLab-Last-Update", self.last_update)
            return None
        raise RuntimeError(f"POST /jobs/request on {server}: {response.status_code} {response.text[:200]}")

    async def update(self, server: str, job: Assigned, state: str, trace: bytes | None = None) -> httpx.Response:
        """``PUT /jobs/:id``; with ``trace`` the output carries its bytesize and checksum."""
        output = {} if trace is None else {"checksum": f"crc32:{zlib.crc32(trace):08x}", "bytesize": len(trace)}
        body = {"info": INFO, "token": job.token, "state": state, "output": output}
        if state == "failed":
            body["failure_reason"] = "script_failure"
        return await self._http[server].put(f"/jobs/{job.id}", json=body, headers={"JOB-TOKEN": job.token})

    async def acknowledge(self, server: str, job: Assigned) -> None:
        """The Go runner's ``PUT state=running`` right after the pickup (two-phase accept)."""
        response = await self.update(server, job, "running")
        if response.status_code != 200:
            raise RuntimeError(f"ack of job {job.id} on {server}: {response.status_code} {response.text[:200]}")

    async def patch_trace(self, server: str, job: Assigned, data: bytes, start: int = 0) -> httpx.Response:
        headers = {
            "JOB-TOKEN": job.token,
            "Content-Range": f"{start}-{start + len(data) - 1}",
            "Content-Type": "text/plain",
        }
        return await self._http[server].patch(
            f"/jobs/{job.id}/trace", params={"debug_trace": "false"}, content=data, headers=headers
        )

    async def finish(self, server: str, job: Assigned, trace: bytes, *, attempts: int = 20) -> httpx.Response:
        """The final ``PUT``, repeated (bounded) while the server answers 202 as the runner does."""
        response = await self.update(server, job, "success", trace)
        for _ in range(attempts):
            if response.status_code != 202:
                break
            await asyncio.sleep(min(float(response.headers.get("X-GitLab-Trace-Update-Interval", 1)), 1.0))
            response = await self.update(server, job, "success", trace)
        return response
