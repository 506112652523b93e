"""Integration tests of conveyor.runner against a fake coordinator on a real socket."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.runner.settings import RunnerSettings
from tests.integration.runner.fake_coordinator import RUNNER_TOKEN, Coordinator, CoordinatorServer


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
