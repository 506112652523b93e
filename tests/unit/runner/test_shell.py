from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from conveyor.runner.errors import ExecutorError
from conveyor.runner.executors.base import ExecutorContext
from conveyor.runner.executors.shell import ShellExecutor
from tests.plugins.processes import alive, gone

pytestmark = pytest.mark.unit


@pytest.fixture
async def executor(tmp_path: Path, job_factory):
    project = tmp_path / "builds" / "project"
    project.mkdir(parents=True)
    context = ExecutorContext(job_factory(), tmp_path / "builds", project, tmp_path / "project.tmp",
                              {"PATH": os.environ["PATH"], "LANG": "C.UTF-8"})  # fmt: skip
    shell = ShellExecutor(context, kill_grace=5.0)
    await shell.prepare()
    yield shell
    await shell.cleanup()


async def run(shell: ShellExecutor, script: str, timeout: float = 60.0, cancel: asyncio.Event | None = None):
    out = bytearray()
    result = await shell.run(script, stage="step_script", timeout=timeout, output=out.extend, cancel=cancel)
    return result, bytes(out)


@pytest.mark.parametrize("code", [0, 1, 3, 42, 255])
async def test_exit_codes(executor: ShellExecutor, code: int) -> None:
    result, _ = await run(executor, f"exit {code}\n")
    assert (result.exit_code, result.timed_out, result.canceled) == (code, False, False)
    assert result.ok is (code == 0)


async def test_stdout_and_stderr_are_merged_in_order(executor: ShellExecutor) -> None:
    result, out = await run(executor, "echo one; echo two >&2; echo three\n")
    assert result.exit_code == 0
    assert out == b"one\ntwo\nthree\n"


async def test_runs_in_the_project_dir_with_the_given_environment(executor: ShellExecutor) -> None:
    _, out = await run(executor, 'pwd; echo "lang=$LANG"; read -r line || echo "stdin is empty"\n')
    assert out.decode().splitlines() == [str(executor.context.project_dir), "lang=C.UTF-8", "stdin is empty"]


async def test_timeout_kills_the_whole_process_group(executor: ShellExecutor, tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild.pid"
    script = f"(sleep 300; echo late) &\necho $! > {pidfile}\necho started\nsleep 300\n"
    result, out = await run(executor, script, timeout=1.0)
    assert result.timed_out and not result.canceled
    assert result.exit_code == 128 + 15
    assert out == b"started\n"
    assert not alive(int(pidfile.read_text()))


async def test_cancel_kills_the_whole_process_group(executor: ShellExecutor, tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild.pid"
    cancel = asyncio.Event()
    script = f"bash -c 'sleep 300' &\necho $! > {pidfile}\necho started\nwait\n"

    async def cancel_when_started() -> None:
        while not pidfile.exists() or not pidfile.read_text().strip():
            await asyncio.sleep(0.01)
        cancel.set()

    canceller = asyncio.create_task(cancel_when_started())
    result, out = await run(executor, script, cancel=cancel)
    await canceller
    assert result.canceled and not result.timed_out
    assert out == b"started\n"
    assert not alive(int(pidfile.read_text()))


async def test_sigterm_ignoring_processes_are_killed_after_the_grace_period(
    executor: ShellExecutor, tmp_path: Path
) -> None:
    pidfile = tmp_path / "stubborn.pid"
    executor._kill_grace = 0.5
    script = f"bash -c 'trap \"\" TERM; echo $$ > {pidfile}; while true; do sleep 0.1; done' &\nwait\n"
    result, _ = await run(executor, script, timeout=3.0)  # room for a loaded machine to start it
    assert result.timed_out
    assert await gone(int(pidfile.read_text()))


async def test_leftover_background_jobs_do_not_hang_the_stage(executor: ShellExecutor, tmp_path: Path) -> None:
    pidfile = tmp_path / "bg.pid"
    result, out = await run(executor, f"sleep 300 &\necho $! > {pidfile}\necho done\n")
    assert result.exit_code == 0 and not result.timed_out
    assert out == b"done\n"
    assert not alive(int(pidfile.read_text()))


async def test_task_cancellation_kills_the_group_and_propagates(executor: ShellExecutor, tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    task = asyncio.create_task(run(executor, f"sleep 300 &\necho $! > {pidfile}\nwait\n"))
    while not pidfile.exists() or not pidfile.read_text().strip():
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await gone(int(pidfile.read_text()))  # SIGKILL lands asynchronously


async def test_large_output_is_complete(executor: ShellExecutor) -> None:
    result, out = await run(executor, "head -c 3000000 /dev/zero | tr '\\0' 'x'\n")
    assert result.exit_code == 0
    assert out == b"x" * 3_000_000


async def test_prepare_fails_without_bash(tmp_path: Path, job_factory) -> None:
    context = ExecutorContext(job_factory(), tmp_path, tmp_path / "p", tmp_path / "p.tmp", {"PATH": str(tmp_path)})
    shell = ShellExecutor(context, bash="no-such-shell")
    with pytest.raises(ExecutorError) as info:
        await shell.prepare()
    assert info.value.reason == "runner_system_failure"
    await shell.cleanup()  # safe after a failed prepare
    await shell.cleanup()


async def test_run_without_prepare_is_an_executor_error(tmp_path: Path, job_factory) -> None:
    context = ExecutorContext(job_factory(), tmp_path, tmp_path / "p", tmp_path / "p.tmp", {})
    with pytest.raises(ExecutorError):
        await ShellExecutor(context).run("true", stage="step_script", timeout=1, output=lambda _: None)


async def test_cancellation_while_bash_starts_kills_the_group(
    executor: ShellExecutor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Regression: on a busy event loop the script can start children before run() gets the
    # process object; a cancel then made asyncio kill bash alone and the children lived on.
    real = asyncio.create_subprocess_exec

    async def slow_start(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        proc = await real(*args, **kwargs)
        await asyncio.sleep(2)
        return proc

    monkeypatch.setattr(asyncio, "create_subprocess_exec", slow_start)
    pidfile = tmp_path / "child.pid"
    task = asyncio.create_task(run(executor, f"sleep 300 &\necho $! > {pidfile}\nwait\n"))
    while not pidfile.exists() or not pidfile.read_text().strip():
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await gone(int(pidfile.read_text()))
