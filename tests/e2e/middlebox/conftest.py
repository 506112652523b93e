"""Conveyor deployed across the middlebox: services, servers and runners in its namespaces.

PostgreSQL runs in the ``server`` namespace for the session, listening on its address (reachable
from the ``client`` namespace only through the box). ``deploy`` starts a ``conveyor server`` in a
namespace with its own database (a copy of a migrated template) and its own Redis in the server
namespace (pub/sub channels ignore database indexes: two deployments on one Redis would hear each
other's job ids); ``start_runner_in`` starts a ``conveyor runner`` in a namespace. Admin calls go through
``InNamespace`` so their sockets never cross the box.

Every timing is scaled with the box's idle timeout (4 s instead of 600 s): keepalives probe after
1 s, every 1 s; each test stays idle ``IDLE`` = more than twice the timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Admin
from tests.plugins import services
from tests.plugins.live import ROOT_TOKEN, RunnerProcess, ServerProcess
from tests.plugins.middlebox import Middlebox, Namespace

IDLE = 9.0  # seconds a connection stays quiet in each test: over twice the box's 4 s
SERVER_KEEPALIVE_ON = {"CONVEYOR_KEEPALIVE_IDLE": "1", "CONVEYOR_KEEPALIVE_INTERVAL": "1", "CONVEYOR_KEEPALIVE_COUNT": "3"}
SERVER_KEEPALIVE_OFF = {"CONVEYOR_KEEPALIVE_ENABLED": "false"}
RUNNER_KEEPALIVE_ON = {"CONVEYOR_RUNNER_KEEPALIVE_IDLE": "1", "CONVEYOR_RUNNER_KEEPALIVE_INTERVAL": "1",
                       "CONVEYOR_RUNNER_KEEPALIVE_COUNT": "3"}
RUNNER_KEEPALIVE_OFF = {"CONVEYOR_RUNNER_KEEPALIVE_ENABLED": "false"}
# prints, stays quiet, prints; writes when it printed the second line (the file system is shared)
QUIET_JOB = "quiet:\n  script:\n    - echo first-line\n    - sleep {idle:g}\n    - date +%s.%N > {printed}\n    - echo second-line\n"
TEMPLATE = "middlebox_template"
_counter = itertools.count(1)


def concurrently(*calls: tuple[Any, ...]) -> list[Any]:
    """Run each ``(fn, *args)`` on its own thread; their results in order (the waits overlap)."""
    with ThreadPoolExecutor(len(calls)) as pool:
        futures = [pool.submit(*call) for call in calls]
        return [future.result() for future in futures]


class InNamespace:
    """``obj`` whose every method runs inside ``ns`` (so does every socket it opens)."""

    def __init__(self, ns: Namespace, obj: Any) -> None:
        self._ns, self._obj = ns, obj

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._obj, name)
        if not callable(attr):
            return attr
        return lambda *args, **kwargs: self._ns.run(attr, *args, **kwargs)


@dataclass
class Services:
    postgres: services.Postgres
    host: str  # the server namespace's address

    def database_url(self, name: str) -> str:
        return f"postgresql://postgres@{self.host}:{self.postgres.port}/{name}"


@pytest.fixture(scope="session")
def box_services(middlebox: Middlebox) -> Iterator[Services]:
    from conveyor.server.db import StatementObserver, create_engine, upgrade

    server = middlebox.server
    postgres = server.run(services.start_postgres, listen="0.0.0.0")
    try:
        server.run(postgres.psql, f"CREATE DATABASE {TEMPLATE}")

        async def migrate() -> None:
            engine = create_engine(postgres.url(TEMPLATE), StatementObserver("raise"))
            await upgrade(engine)
            await engine.dispose()

        server.run(asyncio.run, migrate())
        yield Services(postgres, server.address)
    finally:
        postgres.stop()


@dataclass
class Deployment:
    server: ServerProcess
    ns: Namespace
    admin: Any  # an InNamespace(Admin)
    database: str
    redis: services.RedisServer

    @property
    def url(self) -> str:
        return self.server.url

    def job(self, project: int, pipeline: int, name: str) -> dict[str, Any]:
        return self.admin.jobs(project, pipeline)[name]

    def wait_for_trace(self, project: int, job: int, needle: bytes, timeout: float = 60.0) -> float:
        """Wall-clock time (``time.time()``) at which ``needle`` was first seen in the job's stored log."""
        deadline = time.monotonic() + timeout
        while needle not in self.admin.trace(project, job):
            assert time.monotonic() < deadline, f"{needle!r} never reached the server"
            time.sleep(0.1)
        return time.time()


@pytest.fixture
def deploy(middlebox: Middlebox, box_services: Services, tmp_path: Path) -> Iterator[Callable[..., Deployment]]:
    """``deploy(name, env, ns=server namespace)``: a running ``conveyor server``; stopped after."""
    made: list[Deployment] = []

    def start(name: str, env: dict[str, str], ns: Namespace | None = None) -> Deployment:
        ns = ns or middlebox.server
        index = next(_counter)
        database = f"mb_{os.getpid()}_{index}"
        middlebox.server.run(box_services.postgres.psql, f"CREATE DATABASE {database} TEMPLATE {TEMPLATE}")
        redis = middlebox.server.run(services.start_redis, listen="0.0.0.0")
        full_env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")},
            "CONVEYOR_DATABASE_URL": box_services.database_url(database),
            "CONVEYOR_REDIS_URL": f"redis://{box_services.host}:{redis.port}/0",
            "CONVEYOR_OBJECT_STORE_URL": (tmp_path / name / "objects").as_uri(),
            "CONVEYOR_DATA_DIR": str(tmp_path / name / "data"),
            "CONVEYOR_INITIAL_ROOT_TOKEN": ROOT_TOKEN,
            "CONVEYOR_SAVEPOINT_POLICY": "raise",
            "CONVEYOR_TRACE_UPDATE_INTERVAL": "1",
            "CONVEYOR_SWEEP_INTERVAL": "1",
            **env,
        }
        (tmp_path / name).mkdir(exist_ok=True)
        server = ServerProcess(full_env, services.free_port(), tmp_path / name / "server.log", host=ns.address)
        try:
            ns.run(server.start)
        except BaseException:
            redis.stop()
            raise
        deployment = Deployment(server, ns, InNamespace(ns, Admin(server.url)), database, redis)
        made.append(deployment)
        return deployment

    yield start
    for deployment in made:
        deployment.ns.run(deployment.server.stop)
        deployment.admin.http.close()
        deployment.redis.stop()
        middlebox.server.run(box_services.postgres.psql, f"DROP DATABASE IF EXISTS {deployment.database} WITH (FORCE)")
    for deployment in made:
        assert deployment.server.savepoints_seen == 0, "a server process sent a SAVEPOINT"


@pytest.fixture
def start_runner_in(tmp_path: Path) -> Iterator[Callable[..., RunnerProcess]]:
    """``start_runner_in(ns, deployment, name, env)``: a shell runner for ``deployment`` in ``ns``."""
    started: list[RunnerProcess] = []

    def start(ns: Namespace, deployment: Deployment, name: str, env: dict[str, str]) -> RunnerProcess:
        token = deployment.admin.runner_token()
        runner = ns.run(RunnerProcess, deployment.url, token, tmp_path / name / "builds", tmp_path / name / "runner.log",
                        extra_env=env)  # fmt: skip
        started.append(runner)
        return runner

    yield start
    for runner in started:
        runner.stop()


HOOK = "#!/bin/sh\n# pack-objects hook: a slow remote while the repository holds a file named slow\n[ -e slow ] && sleep {idle:g}\nexec \"$@\"\n"


@dataclass
class SlowGit:
    """``git daemon`` in a namespace whose repositories turn slow on demand: while ``slow`` exists
    in one, packing its objects waits ``IDLE`` seconds, the remote's ``uploadpack.keepAlive``
    (its heartbeat, 0 = none) all that crosses the wire meanwhile."""

    root: Path
    url: str

    def repo(self, name: str, heartbeat: int) -> str:
        from tests.plugins.repos import make_repo

        make_repo(self.root / "work" / name, "later:\n  when: manual\n  script: [echo later]\n")
        bare = self.root / "repos" / f"{name}.git"
        subprocess.run(["git", "clone", "--quiet", "--bare", str(self.root / "work" / name), str(bare)], check=True)
        subprocess.run(["git", "-C", str(bare), "config", "uploadpack.keepAlive", str(heartbeat)], check=True)
        return f"{self.url}/{name}.git"

    def slow_commit(self, name: str) -> None:
        """A new commit the next fetch must pack, slowly."""
        work = self.root / "work" / name
        git = ["git", "-C", str(work), "-c", "user.name=t", "-c", "user.email=t@conveyor.invalid"]
        (work / "more.txt").write_text("more\n")
        subprocess.run(git + ["add", "-A"], check=True)
        subprocess.run(git + ["commit", "--quiet", "-m", "more"], check=True)
        subprocess.run(git + ["push", "--quiet", str(self.root / "repos" / f"{name}.git"), "HEAD:main"], check=True)
        (self.root / "repos" / f"{name}.git" / "slow").touch()


@pytest.fixture
def slow_git(middlebox: Middlebox, tmp_path: Path) -> Iterator[SlowGit]:
    """The remote in the client namespace: a server in the server namespace fetches through the box."""
    root = tmp_path / "git-remote"
    (root / "repos").mkdir(parents=True)
    hook = root / "slow-pack-objects"
    hook.write_text(HOOK.format(idle=IDLE))
    hook.chmod(0o755)
    port = services.free_port()
    env = {**os.environ, "GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "uploadpack.packObjectsHook", "GIT_CONFIG_VALUE_0": str(hook)}
    ns = middlebox.client
    proc = ns.run(subprocess.Popen, ["git", "daemon", "--reuseaddr", "--export-all", f"--base-path={root / 'repos'}",
                                     f"--listen={ns.address}", f"--port={port}", str(root / "repos")],
                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    try:
        ns.run(_wait_for_tcp, ns.address, port, proc)
        yield SlowGit(root, f"git://{ns.address}:{port}")
    finally:
        # the daemon and its upload-packs (one may still write into a forgotten flow)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def _wait_for_tcp(host: str, port: int, proc: subprocess.Popen, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, "git daemon exited"
        try:
            socket.create_connection((host, port), timeout=1).close()
            return
        except OSError:
            assert time.monotonic() < deadline, "git daemon never listened"
            time.sleep(0.05)
