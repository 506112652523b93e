"""Live Conveyor servers for tests: in-process (uvicorn on a real socket) and as child processes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.plugins.services import free_port

ROOT_TOKEN = "glpat-conveyor-test-root-token"
READY_LINE = "Conveyor server listening on"


@pytest.fixture
def server_settings(tmp_path: Path, database_url: str, redis_url: str):  # noqa: ANN201
    from conveyor.server.settings import ServerSettings

    return ServerSettings(
        database_url=database_url,
        redis_url=redis_url,
        object_store_url=(tmp_path / "objects").as_uri(),
        data_dir=tmp_path / "data",
        initial_root_token=ROOT_TOKEN,
        savepoint_policy="raise",
        trace_store="redis",  # the test Redis runs with AOF
        trace_update_interval=1,
        long_poll_timeout=2,
        sweep_interval=1,
    )


@dataclass
class LiveServer:
    url: str
    settings: object
    app: object

    @property
    def services(self):  # noqa: ANN201
        return self.app.state.services  # set by the fixture after startup

    def admin(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, headers={"PRIVATE-TOKEN": ROOT_TOKEN}, timeout=30)


@pytest.fixture
async def live_server(server_settings) -> AsyncIterator[LiveServer]:  # noqa: ANN001
    """The real app under uvicorn on a real socket, in this event loop."""
    import uvicorn

    from conveyor.server.app import create_app
    from conveyor.server.serve import listen_socket

    sock = listen_socket("127.0.0.1", 0, server_settings.keepalive)
    settings = server_settings.with_overrides(port=sock.getsockname()[1])
    app = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on", timeout_keep_alive=120))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    live = LiveServer(url=f"http://127.0.0.1:{settings.port}", settings=settings, app=app)
    yield live
    server.should_exit = True
    await task


class ServerProcess:
    """``conveyor server`` as a child process on a fixed port, so it can be killed and restarted."""

    def __init__(self, env: dict[str, str], port: int, log_path: Path, host: str = "127.0.0.1") -> None:
        self.env = env
        self.host = host
        self.port = port
        self.url = f"http://{host}:{port}"
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None
        self.savepoints_seen = 0.0  # summed over every run of the process, read at each stop

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "conveyor", "server", "--host", self.host, "--port", str(self.port)],
                env=self.env, stdout=subprocess.PIPE, stderr=log,
            )
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            if raw.decode().startswith(READY_LINE):
                return
        self.proc.stdout.close()
        raise RuntimeError(f"server did not start:\n{self.log_path.read_text()[-4000:]}")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self._close()

    def _close(self) -> None:
        if self.proc and self.proc.stdout and not self.proc.stdout.closed:
            self.proc.stdout.close()

    def savepoints(self) -> float:
        text = httpx.get(f"{self.url}/metrics", timeout=10).text
        line = next(l for l in text.splitlines() if l.startswith("conveyor_db_savepoints_total"))
        return float(line.split()[-1])

    def stop(self) -> bytes:
        """Stop the server; returns what it wrote to stdout after the ready line."""
        leftover = b""
        if self.proc and self.proc.poll() is None:
            self.savepoints_seen += self.savepoints()
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc and self.proc.stdout and not self.proc.stdout.closed:
            leftover = self.proc.stdout.read()
        self._close()
        # the observer's JSON lines count too: a process killed before its metrics were read
        logged = self.log_path.read_text(errors="replace").count('"event": "savepoint_detected"') if self.log_path.exists() else 0
        self.savepoints_seen = max(self.savepoints_seen, float(logged))
        return leftover


@pytest.fixture
def server_env() -> dict[str, str]:
    """Extra CONVEYOR_* settings for ``server_process``; override in a test module."""
    return {}


@pytest.fixture
def server_process(tmp_path: Path, database_url: str, redis_url: str, server_env: dict[str, str]) -> Iterator[ServerProcess]:
    env = {
        **os.environ,
        "CONVEYOR_DATABASE_URL": database_url,
        "CONVEYOR_REDIS_URL": redis_url,
        "CONVEYOR_OBJECT_STORE_URL": (tmp_path / "objects").as_uri(),
        "CONVEYOR_DATA_DIR": str(tmp_path / "server-data"),
        "CONVEYOR_INITIAL_ROOT_TOKEN": ROOT_TOKEN,
        "CONVEYOR_SAVEPOINT_POLICY": "raise",
        "CONVEYOR_TRACE_UPDATE_INTERVAL": "1",
        "CONVEYOR_LONG_POLL_TIMEOUT": "5",
        "CONVEYOR_SWEEP_INTERVAL": "1",
        **server_env,
    }
    server = ServerProcess(env, free_port(), tmp_path / "server.log")
    server.start()
    yield server
    server.stop()
    assert server.savepoints_seen == 0, "the server process sent a SAVEPOINT"


class RunnerProcess:
    """``conveyor runner`` as a child process."""

    def __init__(
        self, url: str, token: str, builds_dir: Path, log_path: Path, check_interval: float = 0.3,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.builds_dir = builds_dir
        self.log_path = log_path
        env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
        env["CONVEYOR_RUNNER_CHECK_INTERVAL"] = str(check_interval)
        env.update(extra_env or {})
        with open(log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "conveyor", "runner", "--url", url, "--token", token, "--builds-dir", str(builds_dir)],
                env=env, stdout=log, stderr=subprocess.STDOUT,
            )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def start_runner(tmp_path: Path) -> Iterator:
    started: list[RunnerProcess] = []

    def start(url: str, token: str) -> RunnerProcess:
        runner = RunnerProcess(url, token, tmp_path / "builds", tmp_path / f"runner-{len(started)}.log")
        started.append(runner)
        return runner

    yield start
    for runner in started:
        runner.stop()
