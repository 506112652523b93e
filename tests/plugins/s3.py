"""A local S3 server for the test session: moto's ``moto_server`` as a child process.

``s3_server`` starts it once on a free port with a bucket; ``object_store`` is parametrised over
``filesystem`` and ``s3`` and yields the settings that point Conveyor at a fresh, empty place in
either (a per-test prefix in the shared bucket), so one test body runs against both backends.
A test that stops the server uses ``private_s3_server``, its own instance: moto keeps objects in
memory, so a restart empties it (the bucket is created again on each start).
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.plugins.services import free_port, wait_for_port

BUCKET = "conveyor-test"
ACCESS_KEY = "conveyor-test-key"
SECRET_KEY = "conveyor-test-secret"
REGION = "us-east-1"


class S3Server:
    """``moto_server`` on a fixed port, so it can be stopped and started again at the same address."""

    def __init__(self, log_path: Path, bucket: str = BUCKET, address: str | None = None) -> None:
        """``address``: listen on every address and be reached at this one (a test namespace's)."""
        self.port = free_port()
        self.listen = "0.0.0.0" if address else "127.0.0.1"
        self.endpoint = f"http://{address or '127.0.0.1'}:{self.port}"
        self.bucket = bucket
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", "import sys; from moto.server import main; sys.exit(main())",
                 "-H", self.listen, "-p", str(self.port)],
                stdout=log, stderr=subprocess.STDOUT,
            )
        wait_for_port(self.port, timeout=60, proc=self.proc)
        self.client().create_bucket(Bucket=self.bucket)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def client(self) -> Any:
        import boto3  # moto's own dependency

        return boto3.client(
            "s3", endpoint_url=self.endpoint, region_name=REGION,
            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
        )

    def settings(self, prefix: str, timeout: int = 5, retry_timeout: int = 3) -> dict[str, Any]:
        """ServerSettings fields for a store under ``prefix`` in the bucket (short timeouts by
        default: a test that stops the server should not wait long for obstore to give up)."""
        return {
            "object_store_url": f"s3://{self.bucket}/{prefix}",
            "object_store_endpoint": self.endpoint,
            "object_store_region": REGION,
            "object_store_access_key_id": ACCESS_KEY,
            "object_store_secret_access_key": SECRET_KEY,
            "object_store_allow_http": True,
            "object_store_timeout": timeout,
            "object_store_retry_timeout": retry_timeout,
        }

    def env(self, prefix: str) -> dict[str, str]:
        """The same as CONVEYOR_* variables, for a server process."""
        return {f"CONVEYOR_{name.upper()}": str(value).lower() if isinstance(value, bool) else str(value)
                for name, value in self.settings(prefix).items()}


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    server = S3Server(tmp_path_factory.mktemp("moto") / "moto.log")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def private_s3_server(tmp_path: Path) -> Iterator[S3Server]:
    server = S3Server(tmp_path / "moto.log")
    server.start()
    yield server
    server.stop()


@pytest.fixture(params=["filesystem", "s3"])
def object_store(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    """ServerSettings fields for an empty object store of each kind."""
    if request.param == "filesystem":
        return {"object_store_url": (tmp_path / "objects").as_uri()}
    server: S3Server = request.getfixturevalue("s3_server")
    return server.settings(f"test-{uuid.uuid4().hex[:12]}")


class KeepAliveFront:
    """An HTTP/1.1 front for ``S3Server`` that keeps client connections open, as S3 does (moto's
    Werkzeug answers ``Connection: close`` to every request, so a client never reuses one).

    Each request is passed on, headers and body as they came (the signature's ``Host`` too), over a
    new connection to moto. Listens on ``listen``; reached at ``endpoint``.
    """

    def __init__(self, backend: S3Server, address: str, listen: str = "0.0.0.0") -> None:
        import http.server

        self.backend = backend
        front = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _forward(self) -> None:
                front.forward(self)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward

        self.server = http.server.ThreadingHTTPServer((listen, 0), Handler)
        self.server.daemon_threads = True
        self.endpoint = f"http://{address}:{self.server.server_address[1]}"

    def forward(self, handler: Any) -> None:
        import http.client

        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else None
        upstream = http.client.HTTPConnection("127.0.0.1", self.backend.port, timeout=30)
        try:
            upstream.request(handler.command, handler.path, body=body, headers=dict(handler.headers.items()))
            response = upstream.getresponse()
            data = response.read()
        finally:
            upstream.close()
        handler.send_response(response.status)
        for name, value in response.getheaders():
            if name.lower() not in ("connection", "content-length", "transfer-encoding", "server", "date"):
                handler.send_header(name, value)
        # a HEAD answer's length is the object's, not its (empty) body's
        length = response.getheader("Content-Length") if handler.command == "HEAD" else None
        handler.send_header("Content-Length", length or str(len(data)))
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(data)

    def start(self) -> None:
        import threading

        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def env(self, prefix: str) -> dict[str, str]:
        return {**self.backend.env(prefix), "CONVEYOR_OBJECT_STORE_ENDPOINT": self.endpoint}
