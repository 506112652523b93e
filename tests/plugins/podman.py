"""A real container engine for the test session: Podman serving the Docker Engine API.

Set up from scratch, so a fresh Debian machine (CI runs as root) needs nothing beforehand:

1. ``apt-get install podman runc busybox-static`` when any of them is missing;
2. ``containers.conf`` and ``storage.conf`` in a temporary directory (``CONTAINERS_CONF`` /
   ``CONTAINERS_STORAGE_CONF``): ``cgroupfs`` cgroup manager, storage under the temp dir,
   ``overlay`` if a container actually runs on it, else ``vfs``;
3. a ``runc`` wrapper registered under ``[engine.runtimes]`` that deletes ``process.rlimits`` from
   the bundle's ``config.json`` before exec'ing runc: sandboxes without CAP_SYS_RESOURCE cannot
   raise limits, and podman always asks for some;
4. images built with ``podman import`` from a directory tree holding a static busybox (no registry
   is reachable, so nothing is pulled);
5. ``podman system service --time=0 unix://…`` for the session, stopped at its end.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.plugins.services import free_port

IMAGE = "localhost/conveyor-busybox:test"
PACKAGES = {"podman": "podman", "runc": "runc", "busybox": "busybox-static"}
RUNC_WRAPPER = """#!{python}
import json, os, sys
args = sys.argv[1:]
bundle = None
for i, arg in enumerate(args):
    if arg in ("--bundle", "-b") and i + 1 < len(args):
        bundle = args[i + 1]
    elif arg.startswith("--bundle="):
        bundle = arg.split("=", 1)[1]
if bundle and os.path.exists(os.path.join(bundle, "config.json")):
    path = os.path.join(bundle, "config.json")
    with open(path) as f:
        config = json.load(f)
    if config.get("process", {{}}).pop("rlimits", None) is not None:
        with open(path, "w") as f:
            json.dump(config, f)
os.execv({runc!r}, ["runc", *args])
"""


@dataclass
class Podman:
    """The session's engine: ``host`` is the Docker API URL (``unix:///…/podman.sock``)."""

    root: Path
    env: dict[str, str]
    host: str
    image: str
    service: subprocess.Popen

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["podman", *args], env=self.env, capture_output=True, text=True, check=check)

    def containers(self, label: str = "com.conveyor.job") -> list[str]:
        """Names of containers (running or not) carrying ``label``."""
        out = self.cli("ps", "-a", "--filter", f"label={label}", "--format", "{{.Names}}").stdout
        return [line for line in out.splitlines() if line]

    def networks(self) -> list[str]:
        out = self.cli("network", "ls", "--format", "{{.Name}}").stdout
        return [line for line in out.splitlines() if line.startswith("conveyor-")]

    def serve(self, uri: str, log: Path) -> subprocess.Popen:
        """Another ``podman system service`` on ``uri`` (``tcp:127.0.0.1:PORT``); caller stops it."""
        with open(log, "ab") as out:
            return subprocess.Popen(["podman", "system", "service", "--time=0", uri], env=self.env,
                                    stdout=out, stderr=subprocess.STDOUT)  # fmt: skip


def ensure_packages() -> None:
    missing = [package for tool, package in PACKAGES.items() if shutil.which(tool) is None]
    if not missing:
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.fail(f"Podman tests need {missing}: install them (Debian: apt-get install {' '.join(missing)})")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], env=env, check=True, capture_output=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", *missing], env=env, check=True, capture_output=True)


def _write_config(root: Path, driver: str) -> dict[str, str]:
    runc = shutil.which("runc") or "/usr/sbin/runc"
    wrapper = root / "runc-wrapper"
    wrapper.write_text(RUNC_WRAPPER.format(python=sys.executable, runc=runc))
    wrapper.chmod(0o755)
    (root / "containers.conf").write_text(
        "[containers]\nnetns = \"bridge\"\n"
        f"[network]\nnetwork_config_dir = \"{root / 'networks'}\"\n"
        "[engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n"
        f"tmp_dir = \"{root / 'libpod'}\"\nvolume_path = \"{root / 'volumes'}\"\n"
        f"runtime = \"conveyor-runc\"\n[engine.runtimes]\nconveyor-runc = [\"{wrapper}\"]\n"
    )
    (root / "storage.conf").write_text(
        f"[storage]\ndriver = \"{driver}\"\ngraphroot = \"{root / 'storage'}\"\nrunroot = \"{root / 'run'}\"\n"
    )
    return {
        **os.environ,
        "CONTAINERS_CONF": str(root / "containers.conf"),
        "CONTAINERS_STORAGE_CONF": str(root / "storage.conf"),
        "XDG_RUNTIME_DIR": str(root / "xdg"),
    }


def _busybox_tree(root: Path) -> Path:
    tree = root / "rootfs"
    (tree / "bin").mkdir(parents=True)
    for name in ("tmp", "etc", "root"):
        (tree / name).mkdir()
    (tree / "tmp").chmod(0o1777)
    (tree / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/sh\n")
    (tree / "etc" / "group").write_text("root:x:0:\nnogroup:x:65534:\n")
    shutil.copy2(shutil.which("busybox") or "/bin/busybox", tree / "bin" / "busybox")
    applets = subprocess.run([str(tree / "bin" / "busybox"), "--list"], capture_output=True, text=True, check=True)
    for applet in applets.stdout.split():
        if applet != "busybox":
            (tree / "bin" / applet).symlink_to("busybox")
    return tree


def _import_image(env: dict[str, str], tree: Path) -> None:
    archive = tree.parent / "rootfs.tar"
    subprocess.run(["tar", "-C", str(tree), "-cf", str(archive), "."], check=True)
    subprocess.run(["podman", "import", "--change", "ENV=PATH=/bin", str(archive), IMAGE], env=env,
                   check=True, capture_output=True)  # fmt: skip


def _works(env: dict[str, str]) -> bool:
    probe = subprocess.run(["podman", "run", "--rm", IMAGE, "true"], env=env, capture_output=True, text=True)
    return probe.returncode == 0


def start_podman(root: Path) -> Podman:
    ensure_packages()
    (root / "xdg").mkdir(mode=0o700)
    tree = _busybox_tree(root)
    env = {}
    for driver in ("overlay", "vfs"):
        env = _write_config(root, driver)
        try:
            _import_image(env, tree)
        except subprocess.CalledProcessError:
            continue
        if _works(env):
            break
        subprocess.run(["podman", "system", "reset", "--force"], env=env, capture_output=True)
    else:
        pytest.fail(f"podman cannot run containers here (overlay and vfs tried); see {root}")
    sock = root / "podman.sock"
    with open(root / "service.log", "ab") as out:
        service = subprocess.Popen(["podman", "system", "service", "--time=0", f"unix://{sock}"], env=env,
                                   stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
    wait_for_api(f"unix://{sock}", service, root / "service.log")
    return Podman(root=root, env=env, host=f"unix://{sock}", image=IMAGE, service=service)


def wait_for_api(host: str, proc: subprocess.Popen, log: Path, timeout: float = 30.0) -> None:
    if host.startswith("unix://"):
        transport, base = httpx.HTTPTransport(uds=host[len("unix://"):]), "http://podman"
    else:
        transport, base = httpx.HTTPTransport(), "http://" + host.split("://", 1)[1]
    deadline = time.monotonic() + timeout
    with httpx.Client(transport=transport, base_url=base, timeout=5) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"podman system service exited:\n{log.read_text()[-2000:]}")
            if host.startswith("unix://") and not _accepts(host[len("unix://"):]):
                # probed with a socket closed here: a refused connect inside httpx left its socket
                # to the garbage collector, and the ResourceWarning failed the fixture (CI, twice)
                time.sleep(0.1)
                continue
            try:
                if client.get("/_ping").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
    raise TimeoutError(f"the Docker API at {host} did not answer within {timeout} s")


def _accepts(path: str) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        try:
            sock.connect(path)
        except OSError:
            return False
    return True


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def shutdown(engine: Podman) -> None:
    """Stop the service, remove every container and image, and delete the directory."""
    stop(engine.service)
    subprocess.run(["podman", "rm", "-a", "-f"], env=engine.env, capture_output=True)
    subprocess.run(["podman", "system", "reset", "--force"], env=engine.env, capture_output=True)
    subprocess.run(["umount", "-R", str(engine.root / "storage")], capture_output=True)
    shutil.rmtree(engine.root, ignore_errors=True)


@pytest.fixture(scope="session")
def podman() -> Iterator[Podman]:
    root = Path(tempfile.mkdtemp(prefix="conveyor-podman-"))
    engine = start_podman(root)
    yield engine
    shutdown(engine)


@pytest.fixture(scope="session")
def podman_tcp(podman: Podman) -> Iterator[str]:
    """The same engine over ``tcp://127.0.0.1:PORT`` (a second service process)."""
    port = free_port()
    proc = podman.serve(f"tcp:127.0.0.1:{port}", podman.root / "service-tcp.log")
    wait_for_api(f"tcp://127.0.0.1:{port}", proc, podman.root / "service-tcp.log")
    yield f"tcp://127.0.0.1:{port}"
    stop(proc)
