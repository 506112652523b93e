"""Integration tests of conveyor.runner against a fake coordinator on a real socket."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_coordinator import RUNNER_TOKEN, Coordinator, CoordinatorServer

from conveyor.runner.settings import RunnerSettings


@pytest.fixture(autouse=True)
def _clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("CONVEYOR_"):
            monkeypatch.delenv(key)


@pytest.fixture
def server() -> Iterator[CoordinatorServer]:
    server = CoordinatorServer(Coordinator())
    server.start()
    yield server
    server.close()


@pytest.fixture
def coordinator(server: CoordinatorServer) -> Coordinator:
    return server.coordinator


@pytest.fixture
def settings(server: CoordinatorServer, tmp_path: Path) -> RunnerSettings:
    return RunnerSettings(
        url=server.url,
        token=RUNNER_TOKEN,
        builds_dir=tmp_path / "builds",
        name="itest-runner",
        check_interval=0.05,
        update_interval=0.05,
        force_send_interval=0.3,
        request_timeout=30.0,
        keep_traces=True,
    )
