"""Keepalive options really reach the kernel, and accepted sockets inherit them from the listener."""

from __future__ import annotations

import socket

import pytest

from conveyor.protocol import keepalive

pytestmark = pytest.mark.unit


def test_apply_sets_every_option() -> None:
    config = keepalive.KeepaliveConfig(idle=11, interval=7, count=3)
    with socket.socket() as sock:
        keepalive.apply(sock, config)
        assert keepalive.read(sock) == (True, 11, 7, 3)


def test_defaults_probe_within_thirty_seconds() -> None:
    config = keepalive.KeepaliveConfig()
    assert config.idle <= 30 and (config.idle, config.interval, config.count) == (15, 15, 4)


def test_invalid_values_are_refused() -> None:
    with pytest.raises(ValueError):
        keepalive.KeepaliveConfig(idle=0)


def test_server_listener_passes_keepalive_to_accepted_connections() -> None:
    from conveyor.server.serve import listen_socket

    config = keepalive.KeepaliveConfig(idle=9, interval=5, count=2)
    listener = listen_socket("127.0.0.1", 0, config)
    try:
        with socket.create_connection(listener.getsockname()) as client:
            accepted, _ = listener.accept()
            with accepted:
                assert keepalive.read(accepted) == (True, 9, 5, 2)
            assert client  # the client side is the runner's business (tested there)
    finally:
        listener.close()


def test_server_connections_send_without_delay() -> None:
    """Regression: a listener created with proto 0 kept asyncio from setting TCP_NODELAY, and every
    response waited ~40 ms for a delayed ACK."""
    from conveyor.server.serve import listen_socket

    listener = listen_socket("127.0.0.1", 0, keepalive.KeepaliveConfig())
    try:
        assert listener.proto == socket.IPPROTO_TCP
        with socket.create_connection(listener.getsockname()):
            accepted, _ = listener.accept()
            with accepted:
                assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
    finally:
        listener.close()


def test_configured_off_clears_so_keepalive() -> None:
    """Only by configuration (the middlebox tests' negative controls): SO_KEEPALIVE is then 0."""
    config = keepalive.KeepaliveConfig(enabled=False)
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        keepalive.apply(sock, config)
        assert keepalive.read(sock)[0] is False
    assert keepalive.describe(config) == "off; unacknowledged data fails after 75 s"
    assert keepalive.describe(keepalive.KeepaliveConfig(1, 2, 3, user_timeout=0)) == (
        "idle 1 s, every 2 s, 3 probes (dead after 7 s); no TCP_USER_TIMEOUT")


def test_user_timeout_bounds_unacknowledged_data_with_or_without_probes() -> None:
    with socket.socket() as sock:
        keepalive.apply(sock, keepalive.KeepaliveConfig(2, 3, 4))
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == 14_000  # idle + interval * count
    with socket.socket() as sock:
        keepalive.apply(sock, keepalive.KeepaliveConfig(enabled=False, user_timeout=5))
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == 5_000
        assert keepalive.read(sock)[0] is False
    assert (socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, 0) not in keepalive.socket_options(keepalive.KeepaliveConfig(user_timeout=0))
    with pytest.raises(ValueError):
        keepalive.KeepaliveConfig(user_timeout=-1)
