"""``conveyor doctor network``: the effective settings per connection kind, warnings for unsafe
ones, and the live-socket check over ``ss -tinop`` (here: this process's own sockets)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conveyor.cli import doctor_network
from conveyor.cli.main import app
from conveyor.protocol import keepalive

pytestmark = pytest.mark.unit

SS = """Recv-Q Send-Q Local Address:Port  Peer Address:Port Process
0      0          10.0.0.2:5000    10.0.0.9:5432 users:(("python",pid=41,fd=9)) timer:(keepalive,7.9sec,0)
\t ts sack cubic wscale:10,10 rto:204 rtt:2.054/3.978
0      0          [::1]:6000    [::1]:6379 users:(("conveyor",pid=42,fd=3))
\t ts sack cubic
0      120        10.0.0.2:5001    10.0.0.9:5432 users:(("python",pid=41,fd=10)) timer:(on,204ms,0)
"""


def test_parse_ss_reads_peers_processes_and_keepalive_timers() -> None:
    assert doctor_network.parse_ss(SS) == [
        doctor_network.Socket("10.0.0.2:5000", "10.0.0.9:5432", "python", 41, "keepalive"),
        doctor_network.Socket("[::1]:6000", "[::1]:6379", "conveyor", 42, ""),
        doctor_network.Socket("10.0.0.2:5001", "10.0.0.9:5432", "python", 41, "on"),
    ]
    assert [(sock.keepalive, sock.bare) for sock in doctor_network.parse_ss(SS)] == [(True, False), (False, True), (False, False)]


def test_live_sockets_sees_keepalive_on_a_real_socket() -> None:
    if doctor_network.shutil.which("ss") is None:
        pytest.skip("no ss here")  # CI installs iproute2
    with socket.create_server(("127.0.0.1", 0)) as listener:
        with socket.create_connection(listener.getsockname()) as probing, socket.create_connection(listener.getsockname()) as bare:
            keepalive.apply(probing, keepalive.KeepaliveConfig())
            found = {sock.local: sock.keepalive for sock in doctor_network.live_sockets({os.getpid()}) or []}
            local = "127.0.0.1:{}"
            assert found[local.format(probing.getsockname()[1])] is True
            assert found[local.format(bare.getsockname()[1])] is False
            listener.accept()[0].close()
            listener.accept()[0].close()


def test_doctor_network_prints_every_connection_kind(tmp_path: Path) -> None:
    env = {"CONVEYOR_KEEPALIVE_IDLE": "20", "CONVEYOR_RUNNER_URL": "http://x", "CONVEYOR_RUNNER_TOKEN": "glrt-x",
           "CONVEYOR_RUNNER_BUILDS_DIR": str(tmp_path)}
    result = CliRunner().invoke(app, ["doctor", "network", "--pid", "999999999"], env={**env, "COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    for kind in ("accepted HTTP", "live tail (SSE)", "PostgreSQL pool", "PostgreSQL LISTEN", "Redis", "S3", "-> coordinator"):
        assert kind in result.output
    assert "idle 20 s, every 15 s, 4 probes (dead after 80 s)" in result.output


@pytest.mark.parametrize(("env", "warning"), [
    ({"CONVEYOR_KEEPALIVE_ENABLED": "false"}, "server: TCP keepalive is off"),
    ({"CONVEYOR_KEEPALIVE_IDLE": "600"}, "not below common NAT idle timeouts"),
    ({"CONVEYOR_HTTP_KEEPALIVE_TIMEOUT": "60"}, "is not above the runner's 90 s idle reuse"),
    ({"CONVEYOR_SSE_HEARTBEAT": "75"}, "cuts quiet live tails"),
    ({"CONVEYOR_OBJECT_STORE_POOL_IDLE_TIMEOUT": "120"}, "idle S3 connection may be reused"),
])
def test_doctor_network_warns_and_fails_on_unsafe_settings(env: dict[str, str], warning: str) -> None:
    result = CliRunner().invoke(app, ["doctor", "network", "--pid", "999999999"], env={**env, "COLUMNS": "250"})
    assert result.exit_code == 1
    assert warning in " ".join(result.output.split())
