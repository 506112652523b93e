"""TCP keepalive settings applied to every socket Conveyor opens or accepts.

Idle flows die silently at NAT and firewall timeouts (Google Cloud: 10 minutes). Probes after
``idle`` seconds, every ``interval`` seconds, ``count`` times, keep the flow alive and detect a
dead peer in ``idle + interval * count`` seconds. ``enabled=False`` (configuration only: for
diagnosing, and the middlebox tests' negative controls) sets SO_KEEPALIVE to 0 instead.
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

    def __post_init__(self) -> None:
        for name in ("idle", "interval", "count"):
            if getattr(self, name) < 1:
                raise ValueError(f"keepalive {name} must be >= 1")


def socket_options(config: KeepaliveConfig) -> list[tuple[int, int, int]]:
    """(level, option, value) triples, as httpx's ``socket_options`` takes them."""
    if not config.enabled:
        return [(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 0)]
    options = [(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)]
    if hasattr(socket, "TCP_KEEPIDLE"):
        options += [
            (socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, config.idle),
            (socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, config.interval),
            (socket.IPPROTO_TCP, socket.TCP_KEEPCNT, config.count),
        ]
    return options


def apply(sock: socket.socket, config: KeepaliveConfig) -> socket.socket:
    """Set SO_KEEPALIVE and the probe timing on ``sock``; returns it for chaining."""
    for level, option, value in socket_options(config):
        sock.setsockopt(level, option, value)
    return sock


def describe(config: KeepaliveConfig) -> str:
    """``idle 15 s, every 15 s, 4 probes (dead after 75 s)``, or ``off``: for the doctor and logs."""
    if not config.enabled:
        return "off"
    dead = config.idle + config.interval * config.count
    return f"idle {config.idle} s, every {config.interval} s, {config.count} probes (dead after {dead} s)"


def read(sock: socket.socket) -> tuple[bool, int, int, int]:
    """(enabled, idle, interval, count) as the kernel reports them; for tests and diagnostics."""
    enabled = bool(sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE))
    return (
        enabled,
        sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
        sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
        sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
    )
