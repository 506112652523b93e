"""TCP keepalive settings applied to every socket Conveyor opens or accepts.

Idle flows die silently at NAT and firewall timeouts (Google Cloud: 10 minutes). Probes after
``idle`` seconds, every ``interval`` seconds, ``count`` times, keep the flow alive and detect a
dead peer in ``idle + interval * count`` seconds. ``enabled=False`` (configuration only: for
diagnosing, and the middlebox tests' negative controls) sets SO_KEEPALIVE to 0 instead.

``user_timeout`` (TCP_USER_TIMEOUT, seconds; default the same ``idle + interval * count``, 0 =
the kernel's ~15 minutes of retransmissions) bounds how long data sent may stay unacknowledged:
a request written onto a flow a firewall already forgot (keepalive off, or a box that ignores
probes) fails within it instead of hanging. It applies whether keepalive is on or off.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass


@dataclass(frozen=True)
class KeepaliveConfig:
    idle: int = 15
    interval: int = 15
    count: int = 4
    enabled: bool = True
    user_timeout: int | None = None  # None: idle + interval * count

    def __post_init__(self) -> None:
        for name in ("idle", "interval", "count"):
            if getattr(self, name) < 1:
                raise ValueError(f"keepalive {name} must be >= 1")
        if self.user_timeout is not None and self.user_timeout < 0:
            raise ValueError("keepalive user_timeout must be >= 0")

    @property
    def dead_after(self) -> int:
        """Seconds after which keepalive declares a silent peer dead."""
        return self.idle + self.interval * self.count

    @property
    def unacknowledged_limit(self) -> int:
        """TCP_USER_TIMEOUT in seconds (0: not set)."""
        return self.dead_after if self.user_timeout is None else self.user_timeout


def socket_options(config: KeepaliveConfig) -> list[tuple[int, int, int]]:
    """(level, option, value) triples, as httpx's ``socket_options`` takes them."""
    options = [(socket.SOL_SOCKET, socket.SO_KEEPALIVE, int(config.enabled))]
    if config.enabled and hasattr(socket, "TCP_KEEPIDLE"):
        options += [
            (socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, config.idle),
            (socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, config.interval),
            (socket.IPPROTO_TCP, socket.TCP_KEEPCNT, config.count),
        ]
    if config.unacknowledged_limit and hasattr(socket, "TCP_USER_TIMEOUT"):
        options.append((socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, config.unacknowledged_limit * 1000))
    return options


def apply(sock: socket.socket, config: KeepaliveConfig) -> socket.socket:
    """Set SO_KEEPALIVE and the probe timing on ``sock``; returns it for chaining."""
    for level, option, value in socket_options(config):
        sock.setsockopt(level, option, value)
    return sock


def describe(config: KeepaliveConfig) -> str:
    """``idle 15 s, every 15 s, 4 probes (dead after 75 s)``, or ``off``: for the doctor and logs."""
    limit = config.unacknowledged_limit
    unacked = f"unacknowledged data fails after {limit} s" if limit else "no TCP_USER_TIMEOUT"
    if not config.enabled:
        return f"off; {unacked}"
    probes = f"idle {config.idle} s, every {config.interval} s, {config.count} probes (dead after {config.dead_after} s)"
    return f"{probes}; {unacked}"


def read(sock: socket.socket) -> tuple[bool, int, int, int]:
    """(enabled, idle, interval, count) as the kernel reports them; for tests and diagnostics."""
    enabled = bool(sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE))
    return (
        enabled,
        sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
        sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
        sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
    )
