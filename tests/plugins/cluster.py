"""Several ``conveyor server`` processes on one PostgreSQL and one Redis, as in a scaled-out install.

``server_env`` is the environment every process of a cluster shares (the services, one object
store, the root token); each process keeps a data directory of its own. The ``start_servers``
fixture starts N such processes and, when the test ends, stops them and checks that none of
them sent a SAVEPOINT. Benchmarks use ``server_env`` and ``ServerProcess`` directly.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.plugins.live import ROOT_TOKEN, ServerProcess
from tests.plugins.services import free_port


def server_env(workdir: Path, database_url: str, redis_url: str, **settings: object) -> dict[str, str]:
    """The environment of every server of one cluster; ``settings`` become ``CONVEYOR_<NAME>``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    env.update(
        {
            "CONVEYOR_DATABASE_URL": database_url,
            "CONVEYOR_REDIS_URL": redis_url,
            "CONVEYOR_OBJECT_STORE_URL": (workdir / "objects").as_uri(),
            "CONVEYOR_INITIAL_ROOT_TOKEN": ROOT_TOKEN,
        }
    )
    env.update({f"CONVEYOR_{name.upper()}": str(value) for name, value in settings.items()})
    return env


def start_cluster(env: dict[str, str], count: int, workdir: Path) -> list[ServerProcess]:
    """Start ``count`` servers one after the other (each has migrated and is listening on return).

    Sequential on purpose: the first one creates the root token, the others find it.
    """
    servers = []
    try:
        for index in range(count):
            server = ServerProcess(
                {**env, "CONVEYOR_DATA_DIR": str(workdir / f"server-{index}-data")},
                free_port(),
                workdir / f"server-{index}.log",
            )
            servers.append(server)
            server.start()
    except BaseException:
        for server in servers:
            if server.proc is not None:
                server.stop()
        raise
    return servers


StartServers = Callable[..., list[ServerProcess]]


@pytest.fixture
def start_servers(tmp_path: Path, database_url: str, redis_url: str) -> Iterator[StartServers]:
    """``start_servers(count, **settings)``: that many servers sharing the test's services."""
    started: list[ServerProcess] = []

    def start(count: int, **settings: object) -> list[ServerProcess]:
        defaults: dict[str, object] = {"savepoint_policy": "raise", "trace_update_interval": 1}
        env = server_env(tmp_path, database_url, redis_url, **{**defaults, **settings})
        workdir = tmp_path / f"cluster-{len(started)}"
        workdir.mkdir()
        servers = start_cluster(env, count, workdir)
        started.extend(servers)
        return servers

    yield start
    for server in started:
        server.stop()
    sent = {server.url: server.savepoints_seen for server in started if server.savepoints_seen}
    assert not sent, f"server processes sent SAVEPOINTs: {sent}"
