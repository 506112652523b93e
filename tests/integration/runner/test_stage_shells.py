"""Stages with nothing to do start no shell; the job log and the job's files stay as they were."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from conveyor.runner import ShellExecutor, run
from conveyor.runner.executors.base import ExitResult, Output
from conveyor.runner.settings import RunnerSettings
from tests.integration.runner.fake_coordinator import Coordinator, job_payload

pytestmark = pytest.mark.integration


class CountingShell(ShellExecutor):
    """The real shell executor, noting each stage it starts bash for."""

    started: list[str] = []

    async def run(
        self, script: str, *, stage: str, timeout: float, output: Output, cancel: asyncio.Event | None = None
    ) -> ExitResult:
        CountingShell.started.append(stage)
        return await super().run(script, stage=stage, timeout=timeout, output=output, cancel=cancel)


async def run_job(coordinator: Coordinator, settings: RunnerSettings, payload: dict[str, Any]) -> str:
    CountingShell.started = []
    coordinator.add_job(payload)
    await run(settings, max_jobs=1, executors={"shell": CountingShell})
    assert coordinator.job(payload["id"]).status == "success"
    return coordinator.trace(payload["id"]).decode()


async def test_git_strategy_none_runs_only_the_script_in_a_shell(
    coordinator: Coordinator, settings: RunnerSettings
) -> None:
    log = await run_job(coordinator, settings, job_payload(2001, ['echo "in $(pwd)"']))
    assert CountingShell.started == ["step_script"]
    project = settings.builds_dir / "t1_Integ" / "0" / "group" / "demo"
    assert project.is_dir()
    assert f"in {project}\n" in log
    for section in ("prepare_executor", "get_sources", "step_script", "cleanup_file_variables"):
        assert f":{section}\r\x1b[0K" in log
    sources = log.split(":get_sources\r\x1b[0K", 2)[1].split("section_end:", 1)[0]
    assert sources.endswith("Getting source from Git repository\x1b[0;m\x1b[0;m\n"
                            "\x1b[32;1mSkipping Git repository setup\x1b[0;m\n")  # fmt: skip
    assert log.count("section_start:") == log.count("section_end:")


async def test_debug_trace_and_file_variables_keep_their_shells(
    coordinator: Coordinator, settings: RunnerSettings
) -> None:
    variables = [{"key": "CONF", "value": "secret-file\n", "public": False, "masked": False, "file": True},
                 {"key": "CI_DEBUG_TRACE", "value": "true", "public": True, "masked": False}]  # fmt: skip
    log = await run_job(coordinator, settings, job_payload(2002, ['cat "$CONF"'], variables=variables))
    assert CountingShell.started == ["get_sources", "step_script", "cleanup_file_variables"]
    assert "secret-file\n" in log and "+ mkdir -p" in log
    tmp = settings.builds_dir / "t1_Integ" / "0" / "group" / "demo.tmp"
    assert not tmp.exists()  # the file variable's directory is cleaned up by the shell


async def test_a_temporary_directory_left_by_the_script_is_removed(
    coordinator: Coordinator, settings: RunnerSettings
) -> None:
    await run_job(coordinator, settings, job_payload(2003, ['mkdir -p "$CI_PROJECT_DIR.tmp"', 'touch "$CI_PROJECT_DIR.tmp/x"']))
    assert CountingShell.started == ["step_script", "cleanup_file_variables"]
    assert not (settings.builds_dir / "t1_Integ" / "0" / "group" / "demo.tmp").exists()

