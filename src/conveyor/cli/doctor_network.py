"""``conveyor doctor network``: what keeps each kind of Conveyor connection alive behind a NAT,
cloud firewall or load balancer, and whether the live sockets really have it.

Prints, for every connection kind, the effective TCP keepalive (``protocol.keepalive``), the
heartbeat or idle timeout that also bounds it, and warnings where a setting is off or longer
than common middlebox idle timeouts. Then it reads ``ss -tinop`` (Linux, iproute2) for the live
established TCP sockets of Conveyor processes (this machine's, or ``--pid``) and reports each
without a keepalive timer. Settings come from ``CONVEYOR_*`` (the server's) and a runner's
``config.toml`` or ``CONVEYOR_RUNNER_*``; nothing is changed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from conveyor.protocol import keepalive
from conveyor.protocol.keepalive import KeepaliveConfig

if TYPE_CHECKING:
    from conveyor.runner.settings import RunnerSettings
    from conveyor.server.settings import ServerSettings

NAT_IDLE = 240  # seconds: the shortest common idle timeout of the middleboxes (Azure LB 4 min)
LB_IDLE = 60  # seconds: a typical HTTP load balancer's idle timeout (AWS ALB)
RUNNER_POOL_IDLE = 90.0  # the runner's default idle reuse of a connection to the coordinator


@dataclass(frozen=True)
class Row:
    kind: str
    keepalive: str
    bound: str


@dataclass(frozen=True)
class Socket:
    """One established TCP socket as ``ss -tinop`` shows it."""

    local: str
    peer: str
    process: str
    pid: int
    timer: str  # ss's timer: "keepalive", "on" (data in flight: the keepalive timer is not shown), "" (none)

    @property
    def keepalive(self) -> bool:
        return self.timer == "keepalive"

    @property
    def bare(self) -> bool:
        """Idle with no keepalive timer: SO_KEEPALIVE is off (a busy socket shows another timer)."""
        return self.timer == ""


def server_rows(s: ServerSettings) -> tuple[list[Row], list[str]]:
    """Rows and warnings for the server's settings."""
    ka = s.keepalive
    text = keepalive.describe(ka)
    rows = [
        Row("server: accepted HTTP (runners, API, live tails)", text,
            f"HTTP keep-alive {s.http_keepalive_timeout} s; long poll {s.long_poll_timeout} s"),
        Row("server: live tail (SSE)", "as accepted HTTP", f"`: keepalive` after {s.sse_heartbeat} s of silence"),
        Row("server -> PostgreSQL pool", text, f"pinged on checkout after {s.db_ping_after_idle:g} s idle"),
        Row("server -> PostgreSQL LISTEN", text, f"pinged every {s.db_listen_ping_interval:g} s, reconnected on a failed ping"),
        Row("server -> Redis (pool, pub/sub, append client)", text, "pub/sub re-checked every heartbeat"),
        Row("server -> S3 object store", "none (obstore has no option)",
            f"idle connections dropped after {s.object_store_pool_idle_timeout} s; "
            f"{s.object_store_timeout} s per request, retried {s.object_store_retry_timeout} s"),
        Row("server -> include:remote (HTTP)", keepalive.describe(KeepaliveConfig()), "request timeout"),
    ]
    warnings = _keepalive_warnings("server", ka)
    if s.http_keepalive_timeout <= RUNNER_POOL_IDLE:
        warnings.append(f"CONVEYOR_HTTP_KEEPALIVE_TIMEOUT={s.http_keepalive_timeout} s is not above the runner's "
                        f"{RUNNER_POOL_IDLE:g} s idle reuse: a runner's request can race the server's close")
    if s.sse_heartbeat >= LB_IDLE:
        warnings.append(f"CONVEYOR_SSE_HEARTBEAT={s.sse_heartbeat} s: a load balancer idle timeout of {LB_IDLE} s "
                        "cuts quiet live tails (set the balancer's idle timeout above it)")
    if s.object_store_pool_idle_timeout >= LB_IDLE:
        warnings.append(f"CONVEYOR_OBJECT_STORE_POOL_IDLE_TIMEOUT={s.object_store_pool_idle_timeout} s: an idle S3 "
                        "connection may be reused after a NAT forgot it (each such request waits its timeout)")
    return rows, warnings


def runner_rows(name: str, settings: RunnerSettings) -> tuple[list[Row], list[str]]:
    """Rows and warnings for one runner entry's settings."""
    ka = settings.keepalive
    text = keepalive.describe(ka)
    rows = [Row(f"runner {name} -> coordinator", text,
                f"idle reuse {settings.pool_idle_timeout:g} s; request timeout {settings.request_timeout:g} s")]
    docker = settings.docker
    if docker is not None and not docker.host.startswith("unix://"):
        rows.append(Row(f"runner {name} -> Docker API {docker.host}", text, "log stream and wait: no read timeout"))
    return rows, _keepalive_warnings(f"runner {name}", ka)


def _keepalive_warnings(who: str, ka: KeepaliveConfig) -> list[str]:
    if not ka.enabled:
        return [f"{who}: TCP keepalive is off: idle connections die silently at NAT and firewall timeouts"]
    if ka.idle >= NAT_IDLE:
        return [f"{who}: keepalive idle {ka.idle} s is not below common NAT idle timeouts ({NAT_IDLE} s)"]
    return []


def parse_ss(text: str) -> list[Socket]:
    """Established sockets from ``ss -tinop`` output (the info lines start with a tab)."""
    sockets = []
    for line in text.splitlines():
        if line.startswith(("\t", " ")) or not line.strip() or line.startswith(("Recv-Q", "State")):
            continue
        fields = line.split()
        addresses = [f for f in fields if re.match(r"^(\[.*\]|[\d.]+|\*):\d+$", f)]
        process = re.search(r'users:\(\("([^"]+)",pid=(\d+)', line)
        if len(addresses) < 2:
            continue
        timer = re.search(r"timer:\((\w+)", line)
        sockets.append(Socket(addresses[0], addresses[1], process.group(1) if process else "",
                              int(process.group(2)) if process else 0, timer.group(1) if timer else ""))  # fmt: skip
    return sockets


def live_sockets(pids: set[int] | None = None) -> list[Socket] | None:
    """Established TCP sockets of Conveyor processes (``pids``, else every process running
    ``conveyor``); None when ``ss`` is not available."""
    ss = shutil.which("ss")
    if ss is None:
        return None
    out = subprocess.run([ss, "-tinop", "state", "established"], capture_output=True, text=True, check=False).stdout
    wanted = pids if pids is not None else conveyor_pids()
    return [sock for sock in parse_ss(out) if sock.pid in wanted]


def conveyor_pids() -> set[int]:
    """Processes whose command line runs ``conveyor`` (server or runner), this one excluded."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(part.endswith(b"conveyor") for part in argv[:3]) and b"doctor" not in argv:
            found.add(int(entry.name))
    return found


def _runner_settings(config: Path | None) -> list[RunnerSettings]:
    from conveyor.runner import config as config_file
    from conveyor.runner.errors import SettingsError
    from conveyor.runner.settings import RunnerSettings

    if config is not None:
        return config_file.load(config).settings(config)
    try:
        return [RunnerSettings.from_env()]
    except SettingsError:
        return []  # no runner configured here


def network_command(
    config: Annotated[Optional[Path], typer.Option(help="A runner's config.toml to check as well.")] = None,
    pid: Annotated[Optional[list[int]], typer.Option(help="Check these processes' sockets (default: every conveyor process).")] = None,
) -> None:
    """Effective keepalive, heartbeat and idle timeout of each connection kind; live sockets' keepalive."""
    from conveyor.server.settings import ServerSettings

    console = Console()
    rows, warnings = server_rows(ServerSettings.from_env())
    for settings in _runner_settings(config):
        more, warned = runner_rows(settings.name, settings)
        rows += more
        warnings += warned
    table = Table("connection", "TCP keepalive", "heartbeat / idle bound", title="Connections")
    for row in rows:
        table.add_row(row.kind, row.keepalive, row.bound)
    console.print(table)
    sockets = live_sockets(set(pid) if pid else None)
    if sockets is None:
        console.print("live sockets: `ss` (iproute2) not found; skipped")
    else:
        bare = [sock for sock in sockets if sock.bare]
        console.print(f"live sockets: {len(sockets)} established TCP connection(s) of Conveyor processes, "
                      f"{len(sockets) - len(bare)} with a keepalive timer")  # fmt: skip
        for sock in bare:
            warnings.append(f"{sock.process} (pid {sock.pid}) {sock.local} -> {sock.peer} has no keepalive timer")
    for warning in warnings:
        console.print(f"[yellow]warning:[/yellow] {warning}")
    if warnings:
        raise typer.Exit(1)
