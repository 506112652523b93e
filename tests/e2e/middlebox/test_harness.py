"""The middlebox itself: an idle flow without keepalive is forgotten and its data silently
dropped; the same flow with keepalive probes shorter than the idle timeout survives."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from conveyor.protocol import keepalive
from tests.plugins.middlebox import Middlebox

pytestmark = pytest.mark.e2e


def _echo_server(listener: socket.socket) -> None:
    def serve(conn: socket.socket) -> None:
        with conn:
            while data := conn.recv(1024):
                conn.sendall(data)

    while True:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


def _listen() -> socket.socket:
    listener = socket.create_server(("0.0.0.0", 0))
    threading.Thread(target=_echo_server, args=(listener,), daemon=True).start()
    return listener


def _idle_echo(address: tuple[str, int], config: keepalive.KeepaliveConfig, idle: float) -> tuple[bytes, str]:
    """Echo once, stay idle ``idle`` seconds, echo again: (second answer or b"", how it ended)."""
    with socket.create_connection(address, timeout=5) as sock:
        keepalive.apply(sock, config)
        sock.sendall(b"one")
        assert sock.recv(16) == b"one"
        time.sleep(idle)
        sock.sendall(b"two")
        sock.settimeout(2)
        try:
            return sock.recv(16), "answered"
        except TimeoutError:
            return b"", "silence"  # no reset, no error: the packet just vanished


def test_idle_flow_is_forgotten_without_keepalive_and_kept_with_it(middlebox: Middlebox) -> None:
    listener = middlebox.server.run(_listen)
    address = (middlebox.server.address, listener.getsockname()[1])
    idle = 2 * middlebox.idle_timeout
    dropped_before = middlebox.dropped()
    started = time.monotonic()
    with_ka = middlebox.client.submit(_idle_echo, address, keepalive.KeepaliveConfig(1, 1, 3), idle)
    without = middlebox.client.submit(_idle_echo, address, keepalive.KeepaliveConfig(enabled=False), idle)
    assert with_ka.result(30) == (b"two", "answered")
    assert without.result(30) == (b"", "silence")
    assert middlebox.dropped() > dropped_before  # the data and its retransmissions, dropped at the box
    assert time.monotonic() - started < idle + 6
    listener.close()


def test_nothing_but_syn_opens_a_flow(middlebox: Middlebox) -> None:
    """A new flow from the server side to the client is fine too (SYN), the box routes both ways;
    and the client reaches nothing outside the three namespaces."""
    listener = middlebox.client.run(_listen)
    with middlebox.server.run(socket.create_connection, (middlebox.client.address, listener.getsockname()[1]), 5) as sock:
        sock.sendall(b"x")
        assert sock.recv(4) == b"x"
    listener.close()
    with pytest.raises(OSError):  # no route out of the namespaces
        middlebox.client.run(socket.create_connection, ("192.0.2.1", 80), 1)
