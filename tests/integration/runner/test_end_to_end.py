"""A job runs from pickup to final update over real HTTP; the stored log equals the spool."""

from __future__ import annotations

import asyncio
import os
import subprocess
import zlib
from pathlib import Path

import pytest

from conveyor.protocol.trace import PATCH_LIMIT
from conveyor.runner import ExecutorError, FakeExecutor, ShellExecutor, run
from conveyor.runner.settings import RunnerSettings
from conveyor.runner.trace.limit import limit_notice
from tests.integration.runner.fake_coordinator import Canned, Coordinator, crc, eventually, job_payload

pytestmark = pytest.mark.integration
SHELL = {"shell": ShellExecutor}


def spool_bytes(settings: RunnerSettings, job_id: int) -> bytes:
    return (settings.trace_dir / f"job-{job_id}.log").read_bytes()


def assert_log_intact(coordinator: Coordinator, settings: RunnerSettings, job_id: int) -> bytes:
    stored = coordinator.trace(job_id)
    assert stored == spool_bytes(settings, job_id)
    final = coordinator.job(job_id).final
    assert final is not None
    assert final["output"] == {"checksum": crc(stored), "bytesize": len(stored)}
    assert final["checksum"] == crc(stored)
    return stored


def git_repo(path: Path) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@e"}  # fmt: skip
    path.mkdir()
    for args in (["git", "-c", "init.defaultBranch=main", "init", "-q"], ["git", "add", "-A"],
                 ["git", "commit", "-q", "-m", "initial"]):  # fmt: skip
        if args[1] == "add":
            (path / "README.md").write_text("# demo\n")
        subprocess.run(args, cwd=path, env=env, check=True)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=path, check=True, capture_output=True, text=True)
    return head.stdout.strip()


async def test_shell_job_end_to_end(coordinator: Coordinator, settings: RunnerSettings, tmp_path: Path) -> None:
    sha = git_repo(tmp_path / "upstream")
    coordinator.canned.append(Canned("POST", "/jobs/request", 204, {"X-GitLab-Last-Update": "lu-first"}))
    coordinator.add_job(job_payload(
        1001,
        ["cat README.md", "echo hello $SECRET", 'cat "$KUBECONFIG"', "git rev-parse HEAD", "echo token glpat-abc123"],
        after_script=['echo "after: $CI_JOB_STATUS"'],
        variables=[
            {"key": "SECRET", "value": "s3cr3t-value", "public": False, "masked": True},
            {"key": "KUBECONFIG", "value": "apiVersion: v1\n", "public": False, "masked": False, "file": True},
        ],
        repo_url=f"file://{tmp_path / 'upstream'}",
        sha=sha,
    ))  # fmt: skip
    await run(settings, max_jobs=1, executors=SHELL)

    job = coordinator.job(1001)
    assert job.status == "success"
    stored = assert_log_intact(coordinator, settings, 1001).decode()
    assert stored.startswith("\x1b[0KRunning with conveyor-runner ")
    assert f"  on itest-runner t1_Integ, system ID: {settings.system_id}" in stored
    for section in ("prepare_executor", "get_sources", "step_script", "after_script", "cleanup_file_variables"):
        assert f":{section}\r\x1b[0K" in stored
        assert stored.count(f"section_start:") == stored.count("section_end:")
    assert '\x1b[36;1mExecuting "step_script" stage of the job script' in stored
    assert "\x1b[32;1m$ echo hello $SECRET\x1b[0;m\nhello [MASKED]\n" in stored
    assert "s3cr3t" not in stored
    assert "token glpat-[MASKED]\n" in stored
    assert "# demo\n" in stored and "apiVersion: v1\n" in stored
    assert f"\n{sha}\n" in stored
    assert "after: success\n" in stored
    assert stored.endswith("\x1b[32;1mJob succeeded\x1b[0;m\n")

    # Two-phase commit: the first PUT acknowledges with an empty output.
    assert job.puts[0]["state"] == "running" and job.puts[0]["output"] == {}
    assert job.puts[0]["token"] == "glcbt-job1001token"
    assert "exit_code" not in job.final and "failure_reason" not in job.final

    # Wire details, as the Go runner sends them.
    requests = coordinator.recorded("POST", "/jobs/request")
    assert "last_update" not in requests[0].json() and requests[1].json()["last_update"] == "lu-first"
    body = requests[0].json()
    assert body["token"] == settings.token and body["system_id"] == settings.system_id
    features = body["info"]["features"]
    assert features["two_phase_job_commit"] and features["cancel_gracefully"] and features["trace_checksum"]
    assert not features["image"] and features["artifacts"] and features["cache"]  # shell: no image
    assert requests[0].headers["runner-token"] == settings.token
    assert requests[0].headers["accept"] == "application/json"
    assert requests[0].headers["user-agent"].startswith("conveyor-runner 0.1.0")
    put = coordinator.recorded("PUT", "/jobs/1001")[0]
    assert put.headers["job-token"] == "glcbt-job1001token"
    assert put.headers["content-type"] == "application/json"
    assert "accept" not in put.headers
    patches = coordinator.recorded("PATCH", "/jobs/1001/trace")
    offset = 0
    for patch in patches:
        assert patch.query == "debug_trace=false"
        assert patch.headers["content-type"] == "text/plain"
        assert patch.headers["content-range"] == f"{offset}-{offset + len(patch.body) - 1}"
        assert patch.body
        offset += len(patch.body)
    assert offset == len(stored.encode())
    assert not settings.trace_dir.joinpath("job-1001.log").with_suffix(".tmp").exists()


async def test_failing_script_reports_exit_code(coordinator: Coordinator, settings: RunnerSettings) -> None:
    script = ["echo before", "exit 3", "echo never"]
    coordinator.add_job(job_payload(1002, script, after_script=["echo after $CI_JOB_STATUS"]))
    await run(settings, max_jobs=1, executors=SHELL)
    final = coordinator.job(1002).final
    assert (final["state"], final["failure_reason"], final["exit_code"]) == ("failed", "script_failure", 3)
    stored = assert_log_intact(coordinator, settings, 1002).decode()
    assert "never\n" not in stored.replace("$ echo never", "")
    assert "after failed\n" in stored
    assert stored.endswith("\x1b[31;1mERROR: Job failed: exit code 3\x1b[0;m\n")


async def test_job_timeout(coordinator: Coordinator, settings: RunnerSettings) -> None:
    script = ["echo start", "sleep 300"]
    coordinator.add_job(job_payload(1003, script, after_script=["echo after $CI_JOB_STATUS"], timeout=1))
    await run(settings, max_jobs=1, executors=SHELL)
    final = coordinator.job(1003).final
    assert (final["state"], final["failure_reason"]) == ("failed", "job_execution_timeout")
    stored = assert_log_intact(coordinator, settings, 1003).decode()
    assert "after failed\n" in stored
    assert "ERROR: Job failed: execution took longer than 1s seconds" in stored


async def test_large_output_is_limited_and_sent_in_1_mib_patches(
    coordinator: Coordinator, settings: RunnerSettings
) -> None:
    size = 5 * 1024 * 1024
    coordinator.add_job(job_payload(1004, ["fake"], variables=[{"key": "FAKE_OUTPUT_BYTES", "value": str(size)}]))
    await run(settings, max_jobs=1, executors={"shell": FakeExecutor})
    stored = assert_log_intact(coordinator, settings, 1004)
    assert stored.endswith(limit_notice(4 * 1024 * 1024))
    assert len(stored) == 4 * 1024 * 1024 + len(limit_notice(4 * 1024 * 1024))
    patches = coordinator.recorded("PATCH", "/jobs/1004/trace")
    assert len(patches) >= 4
    assert max(len(p.body) for p in patches) <= PATCH_LIMIT
    assert coordinator.job(1004).final["state"] == "success"
    assert zlib.crc32(stored) == int(coordinator.job(1004).final["output"]["checksum"][6:], 16)


async def test_final_update_repeats_on_202(coordinator: Coordinator, settings: RunnerSettings) -> None:
    coordinator.add_job(job_payload(1005, ["echo ok"]), final_accepts=2)
    await run(settings, max_jobs=1, executors=SHELL)
    finals = [p for p in coordinator.job(1005).puts if p["state"] == "success"]
    assert len(finals) == 3
    assert finals[0] == finals[2]
    assert coordinator.job(1005).status == "success"
    assert_log_intact(coordinator, settings, 1005)


class BrokenExecutor(FakeExecutor):
    cleaned = 0

    async def prepare(self) -> None:
        raise ExecutorError("the build host is on fire")

    async def cleanup(self) -> None:
        BrokenExecutor.cleaned += 1


async def test_executor_failure_is_a_runner_system_failure(coordinator: Coordinator, settings: RunnerSettings) -> None:
    coordinator.add_job(job_payload(1006, ["echo never"], after_script=["echo never either"]))
    await run(settings, max_jobs=1, executors={"shell": BrokenExecutor})
    final = coordinator.job(1006).final
    assert (final["state"], final["failure_reason"]) == ("failed", "runner_system_failure")
    assert "exit_code" not in final
    stored = assert_log_intact(coordinator, settings, 1006).decode()
    assert "ERROR: Job failed (system failure): the build host is on fire" in stored
    assert stored.count("section_start:") == stored.count("section_end:") == 1
    assert "never" not in stored
    assert BrokenExecutor.cleaned == 1


async def test_keep_alive_put_during_a_quiet_period(
    coordinator: Coordinator, settings: RunnerSettings, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    coordinator.add_job(job_payload(
        1007,
        ["echo before the quiet period", f"while [ ! -f {go} ]; do sleep 0.02; done", "echo after"],
    ))  # fmt: skip

    def touches() -> list[dict]:
        return [p for p in coordinator.job(1007).puts if p["state"] == "running" and p["output"]]

    runner = asyncio.create_task(run(settings, max_jobs=1, executors=SHELL))
    await eventually(touches, what="a keep-alive PUT")
    go.touch()
    await runner
    touch = touches()[0]
    stored = assert_log_intact(coordinator, settings, 1007)
    size = touch["output"]["bytesize"]
    assert 0 < size <= len(stored)
    assert touch["output"]["checksum"] == crc(stored[:size]) == touch["checksum"]


async def test_ci_debug_trace(coordinator: Coordinator, settings: RunnerSettings) -> None:
    variables = [
        {"key": "CI_DEBUG_TRACE", "value": "true"},
        {"key": "TOKEN", "value": "hunter2hunter2", "masked": True},
    ]
    coordinator.add_job(job_payload(1008, ['echo "$TOKEN"'], variables=variables))
    await run(settings, max_jobs=1, executors=SHELL)
    stored = assert_log_intact(coordinator, settings, 1008)
    assert b"+ echo '[MASKED]'" in stored or b"+ echo [MASKED]" in stored
    assert b"hunter2" not in stored
    assert {p.query for p in coordinator.recorded("PATCH", "/jobs/1008/trace")} == {"debug_trace=true"}
