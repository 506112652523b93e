"""Helpers for end-to-end tests: a synchronous admin client and pipeline polling."""

from __future__ import annotations

import time
from typing import Any

from collections.abc import Iterator

import httpx
import pytest

from tests.plugins.live import ROOT_TOKEN

FINISHED = {"success", "failed", "canceled", "skipped"}


class Admin:
    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url + "/api/v4", headers={"PRIVATE-TOKEN": ROOT_TOKEN}, timeout=30)

    def runner_token(self) -> str:
        return self.http.post("/user/runners", json={"description": "e2e"}).raise_for_status().json()["token"]

    def project(self, source: str) -> dict[str, Any]:
        return self.http.post("/projects", json={"source": source}).raise_for_status().json()

    def pipeline(self, project: int) -> dict[str, Any]:
        response = self.http.post(f"/projects/{project}/pipeline")
        assert response.status_code == 201, response.text
        return response.json()

    def jobs(self, project: int, pipeline: int) -> dict[str, dict[str, Any]]:
        return {j["name"]: j for j in self.http.get(f"/projects/{project}/pipelines/{pipeline}/jobs", params={"per_page": 100}).json()}

    def trace(self, project: int, job: int) -> bytes:
        return self.http.get(f"/projects/{project}/jobs/{job}/trace").content

    def wait(self, project: int, pipeline: int, timeout: float = 120.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                state = self.http.get(f"/projects/{project}/pipelines/{pipeline}").json()
            except httpx.TransportError:  # the server may be restarting in a test
                state = {"status": "unknown"}
            if state["status"] in FINISHED:
                return state
            time.sleep(0.3)
        raise TimeoutError(f"pipeline {pipeline} did not finish in {timeout} s")


@pytest.fixture
def admin(server_process) -> Iterator[Admin]:  # noqa: ANN001
    client = Admin(server_process.url)
    yield client
    client.http.close()
