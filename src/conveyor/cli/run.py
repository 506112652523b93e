"""``conveyor run``: embedded server + runner as child processes, one pipeline for HEAD, live logs.

Steps: start ``conveyor server`` on a free port (embedded PostgreSQL/Redis under the data dir),
create a runner and start ``conveyor runner`` with its token, register the repository, create a
pipeline for HEAD, stream every job's log live (SSE), print the status table, stop the children.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console

from conveyor.cli.client import AdminClient
from conveyor.cli.display import LogPrinter, status_table

FINISHED = {"success", "failed", "canceled", "skipped"}
BLOCKED = "manual"  # GitLab's "blocked": waiting for someone to play a manual job
NOT_STARTED = {"created", "pending", "skipped", "manual", "scheduled", "waiting_for_resource"}
READY_LINE = "Conveyor server listening on"  # printed by conveyor.server.serve


class RunError(Exception):
    pass


def git(path: Path, *args: str) -> str:
    out = subprocess.run(["git", "-C", str(path), *args], capture_output=True, text=True)
    if out.returncode != 0:
        raise RunError(out.stderr.strip() or f"git {' '.join(args)} failed")
    return out.stdout.strip()


def admin_token(data_dir: Path) -> str:
    """The CLI's own admin token, kept (mode 0600) in the data dir and reused across runs."""
    path = data_dir / "cli-admin-token"
    if path.exists():
        return path.read_text().strip()
    token = "glpat-" + secrets.token_urlsafe(32)
    data_dir.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(token)
    return token


class Child:
    """A child process of ours, stopped with SIGTERM (then SIGKILL) when we are done."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path, *, pipe_stdout: bool = False) -> None:
        self.log_path = log_path
        with open(log_path, "ab") as log:
            stdout = subprocess.PIPE if pipe_stdout else log
            self.proc = subprocess.Popen(args, env=env, stdout=stdout, stderr=log)

    def stop(self, timeout: float = 20.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()


def start_server(data_dir: Path, env: dict[str, str]) -> tuple[Child, str]:
    child = Child(
        [sys.executable, "-m", "conveyor", "server", "--host", "127.0.0.1", "--port", "0"],
        env,
        data_dir / "server.log",
        pipe_stdout=True,
    )
    assert child.proc.stdout is not None
    for raw in child.proc.stdout:
        line = raw.decode(errors="replace").strip()
        if line.startswith(READY_LINE):
            return child, line.split()[-1]
    child.stop()
    raise RunError(f"the server did not start; see {child.log_path}:\n{child.log_path.read_text()[-3000:]}")


def run(path: Path, data_dir: Path, console: Console) -> int:
    repo = Path(git(path, "rev-parse", "--show-toplevel"))
    if not git(repo, "ls-tree", "--name-only", "HEAD", ".gitlab-ci.yml"):
        raise RunError(f"{repo} has no committed .gitlab-ci.yml at HEAD")
    if git(repo, "status", "--porcelain", "--", ".gitlab-ci.yml"):
        console.print("[yellow]note: .gitlab-ci.yml has uncommitted changes; running the committed HEAD[/]")
    ref = git(repo, "rev-parse", "--abbrev-ref", "HEAD")
    ref = git(repo, "rev-parse", "HEAD") if ref == "HEAD" else ref
    data_dir.mkdir(parents=True, exist_ok=True)
    token = admin_token(data_dir)
    env = {**os.environ, "CONVEYOR_DATA_DIR": str(data_dir), "CONVEYOR_INITIAL_ROOT_TOKEN": token}
    env.setdefault("CONVEYOR_TRACE_UPDATE_INTERVAL", "1")
    console.print(f"[dim]starting the embedded server (data in {data_dir})…[/]")
    server, url = start_server(data_dir, env)
    runner: Child | None = None
    try:
        async def setup() -> str:
            async with AdminClient(url, token) as client:
                return (await client.create_runner(f"conveyor run {repo.name}"))["token"]

        runner_token = asyncio.run(setup())
        runner_env = {**env, "CONVEYOR_RUNNER_CHECK_INTERVAL": env.get("CONVEYOR_RUNNER_CHECK_INTERVAL", "0.5")}
        runner = Child(
            [sys.executable, "-m", "conveyor", "runner", "--url", url, "--token", runner_token,
             "--builds-dir", str(data_dir / "builds")],
            runner_env,
            data_dir / "runner.log",
        )
        children = {"server": server, "runner": runner}
        return asyncio.run(_pipeline(url, token, repo, ref, console, children))
    finally:
        if runner:
            runner.stop()
        server.stop()


def _check_alive(children: dict[str, Child]) -> None:
    for name, child in children.items():
        if child.proc.poll() is not None:
            tail = child.log_path.read_text(errors="replace")[-2000:]
            raise RunError(f"the {name} exited with code {child.proc.returncode}; see {child.log_path}:\n{tail}")


async def _pipeline(url: str, token: str, repo: Path, ref: str, console: Console, children: dict[str, Child]) -> int:
    async with AdminClient(url, token) as client:
        project = await _project(client, repo)
        pipeline = await client.create_pipeline(str(project["id"]), ref)
        console.print(f"[bold]Pipeline #{pipeline['id']}[/] for {project['name']} {ref} @ {pipeline['sha'][:8]}")
        final = await follow(client, str(project["id"]), pipeline["id"], LogPrinter(console), lambda: _check_alive(children))
        console.print(status_table(final, await client.jobs(str(project["id"]), pipeline["id"])))
        return 0 if final["status"] == "success" else 1


async def _project(client: AdminClient, repo: Path) -> dict[str, Any]:
    name = repo.name
    existing = await client.project(name)
    if existing and Path(existing["source"]) != repo.resolve():
        name = f"{repo.name}-{hashlib.sha256(str(repo.resolve()).encode()).hexdigest()[:8]}"
        existing = await client.project(name)
    return existing or await client.add_project(str(repo), name)


async def follow(
    client: AdminClient, project: str, pipeline_id: int, printer: LogPrinter, check: Callable[[], None], poll: float = 0.3
) -> dict[str, Any]:
    """Print every job's log live until the pipeline finishes and every log is drained.

    Each job that has started gets a live tail (SSE, resumed by offset after a drop) that ends
    when the job does; the pipeline's state is polled only to find jobs and the pipeline's end.
    ``check`` runs on every round and raises if the pipeline can no longer finish (a child died).
    """
    tails: dict[int, asyncio.Task[str]] = {}
    try:
        while True:
            check()
            for task in tails.values():
                if task.done():
                    task.result()  # a tail that failed (not a dropped connection: those resume) stops the run
            pipeline = await client.pipeline(project, pipeline_id)
            jobs = await client.jobs(project, pipeline_id)
            for job in jobs:
                if job["id"] not in tails and job["status"] not in NOT_STARTED:
                    tails[job["id"]] = asyncio.create_task(_tail(client, project, job, printer))
            settled = all(
                tails[j["id"]].done() if j["id"] in tails else j["status"] in FINISHED | {BLOCKED, "created"}
                for j in jobs
            )
            if pipeline["status"] in FINISHED | {BLOCKED} and settled:
                return pipeline
            await asyncio.sleep(poll)
    finally:
        for task in tails.values():
            task.cancel()
        await asyncio.gather(*tails.values(), return_exceptions=True)


async def _tail(client: AdminClient, project: str, job: dict[str, Any], printer: LogPrinter) -> str:
    status = await client.follow_trace(project, job["id"], lambda data: printer.feed(job["id"], job["name"], data))
    printer.flush(job["id"], job["name"])
    return status
