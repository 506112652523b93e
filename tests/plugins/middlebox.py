"""A kernel middlebox for the test session: a NAT or cloud firewall that forgets idle TCP flows.

Three network namespaces, ``client``, ``box`` and ``server``, joined by two veth pairs in the
private range ``10.231.0.0/16`` (used only between these namespaces; none of them has a route
anywhere else). The box forwards with nftables and conntrack: ``ct state established,related``
is accepted, a new TCP flow only when SYN alone is set, everything else is counted and dropped.
Its ``nf_conntrack_tcp_timeout_established`` is ``IDLE_TIMEOUT`` seconds (Google Cloud: 600), so
a flow idle longer is forgotten and its next data packet vanishes without a reset, while a
socket whose keepalive probes come sooner keeps its flow. A user-space proxy could not show this:
keepalive probes never reach user space.

Names carry the pid and a random suffix (a crashed run never collides with the next one, and
namespaces left by a dead pid are removed); the fixture deletes everything, also after a failure.
``Namespace.run`` calls a function on a thread that has entered the namespace (``setns``): the
sockets it opens, and the processes it starts, live there.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import secrets
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest

IDLE_TIMEOUT = 4  # seconds: the box's conntrack established timeout, scaled down from 600
PREFIX = "cvymb"
CLIENT_ADDRESS, CLIENT_GATEWAY = "10.231.1.2", "10.231.1.1"
SERVER_ADDRESS, SERVER_GATEWAY = "10.231.2.2", "10.231.2.1"
CLONE_NEWNET = 0x40000000
RULES = """
table inet middlebox {
  counter dropped { }
  chain forward {
    type filter hook forward priority 0; policy drop;
    ct state established,related accept
    tcp flags & (fin | syn | rst | ack) == syn ct state new accept
    counter name "dropped" drop
  }
}
"""
T = TypeVar("T")
_libc = ctypes.CDLL(None, use_errno=True)


@dataclass(frozen=True)
class Namespace:
    name: str
    address: str

    @property
    def path(self) -> str:
        return f"/run/netns/{self.name}"

    def argv(self, *command: str) -> list[str]:
        """``command`` run inside the namespace (network only: the file system is shared)."""
        return ["nsenter", f"--net={self.path}", *command]

    def submit(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> Future[T]:
        """Call ``fn`` on a new thread inside the namespace; its sockets and children live there."""
        future: Future[T] = Future()

        def body() -> None:
            fd = os.open(self.path, os.O_RDONLY)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), f"setns({self.path})")
            except BaseException as exc:  # noqa: BLE001
                future.set_exception(exc)
                return
            finally:
                os.close(fd)
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as exc:  # noqa: BLE001
                future.set_exception(exc)

        threading.Thread(target=body, name=f"netns-{self.name}", daemon=True).start()
        return future

    def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return self.submit(fn, *args, **kwargs).result()

    def sh(self, *command: str) -> str:
        return subprocess.run(self.argv(*command), check=True, capture_output=True, text=True).stdout


@dataclass(frozen=True)
class Middlebox:
    client: Namespace
    box: Namespace
    server: Namespace
    idle_timeout: int

    def dropped(self) -> int:
        """Packets the box has dropped so far (data of forgotten flows, mostly)."""
        out = json.loads(self.box.sh("nft", "-j", "list", "counter", "inet", "middlebox", "dropped"))
        return next(item["counter"]["packets"] for item in out["nftables"] if "counter" in item)

    def sockets(self, namespace: Namespace, port: int) -> str:
        """``ss -tino`` of the TCP connections to or from ``port`` in ``namespace``."""
        return namespace.sh("ss", "-tino", f"( sport = :{port} or dport = :{port} )")


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


def _remove_stale() -> None:
    """Namespaces of earlier sessions whose process is gone (a crashed run)."""
    listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    for match in re.finditer(rf"^({PREFIX}(\d+)x\w+)", listing, re.MULTILINE):
        name, pid = match.group(1), int(match.group(2))
        if not os.path.exists(f"/proc/{pid}"):
            subprocess.run(["ip", "netns", "delete", name], capture_output=True)


def build(idle_timeout: int = IDLE_TIMEOUT) -> Middlebox:
    stem = f"{PREFIX}{os.getpid()}x{secrets.token_hex(3)}"
    client, box, server = Namespace(stem + "c", CLIENT_ADDRESS), Namespace(stem + "m", ""), Namespace(stem + "s", SERVER_ADDRESS)
    made: list[Namespace] = []
    try:
        for ns in (client, box, server):
            _ip("netns", "add", ns.name)
            made.append(ns)
            _ip("-n", ns.name, "link", "set", "lo", "up")
        for side, local, gateway, other in ((client, "toc", CLIENT_GATEWAY, SERVER_ADDRESS), (server, "tos", SERVER_GATEWAY, CLIENT_ADDRESS)):
            # made inside the namespaces: nothing of this ever exists in the host's namespace
            _ip("-n", box.name, "link", "add", local, "type", "veth", "peer", "name", "mb0", "netns", side.name)
            _ip("-n", box.name, "addr", "add", f"{gateway}/24", "dev", local)
            _ip("-n", box.name, "link", "set", local, "up")
            _ip("-n", side.name, "addr", "add", f"{side.address}/24", "dev", "mb0")
            _ip("-n", side.name, "link", "set", "mb0", "up")
            _ip("-n", side.name, "route", "add", other.rsplit(".", 1)[0] + ".0/24", "via", gateway)
        subprocess.run(box.argv("nft", "-f", "-"), input=RULES, text=True, check=True, capture_output=True)
        box.sh("sysctl", "-q", "-w", "net.ipv4.ip_forward=1",
               f"net.netfilter.nf_conntrack_tcp_timeout_established={idle_timeout}",
               "net.netfilter.nf_conntrack_tcp_loose=0")  # fmt: skip
    except BaseException:
        for ns in made:
            subprocess.run(["ip", "netns", "delete", ns.name], capture_output=True)
        raise
    return Middlebox(client, box, server, idle_timeout)


def teardown(middlebox: Middlebox) -> None:
    for ns in (middlebox.client, middlebox.box, middlebox.server):
        subprocess.run(["ip", "netns", "delete", ns.name], capture_output=True)


@pytest.fixture(scope="session")
def middlebox() -> Iterator[Middlebox]:
    if os.geteuid() != 0 or not (shutil.which("ip") and shutil.which("nft") and shutil.which("nsenter")):
        pytest.fail("the middlebox tests need root, iproute2, nftables and nsenter (.ci/run installs them)")
    _remove_stale()
    box = build()
    try:
        yield box
    finally:
        teardown(box)
