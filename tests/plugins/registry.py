"""A container registry for the tests: the Docker Registry HTTP API v2 (the parts a pull uses) over
plain HTTP on 127.0.0.1, with HTTP Basic authentication, serving one image built from the Podman
fixture's busybox tree (one gzip layer, a config, a schema-2 manifest).

No registry image can be pulled here (no network), so this is the smallest real registry a real
engine can pull from: Podman talks to it with its own client (``/v2/`` challenge, then the
manifest and blobs with the credentials). ``seen`` records every ``Authorization`` it got.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import socket
import tarfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from conveyor.protocol import keepalive

MANIFEST_TYPE = "application/vnd.docker.distribution.manifest.v2+json"


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def build_image(tree: Path) -> tuple[bytes, dict[str, bytes]]:
    """``(manifest, blobs by digest)`` of an image whose only layer is ``tree``."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as archive:
        archive.add(tree, arcname=".")
    layer = gzip.compress(raw.getvalue(), mtime=0)
    config = json.dumps({
        "architecture": "amd64", "os": "linux", "config": {"Env": ["PATH=/bin"], "Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [_digest(raw.getvalue())]},
    }).encode()  # fmt: skip
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": MANIFEST_TYPE,
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": len(config), "digest": _digest(config)},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": len(layer), "digest": _digest(layer)}],
    }).encode()  # fmt: skip
    return manifest, {_digest(config): config, _digest(layer): layer}


@dataclass
class Registry:
    host: str  # 127.0.0.1:PORT
    username: str
    password: str
    repository: str
    tag: str
    seen: list[str] = field(default_factory=list)

    @property
    def image(self) -> str:
        return f"{self.host}/{self.repository}:{self.tag}"


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def get_request(self) -> tuple[socket.socket, object]:
        sock, address = super().get_request()
        return keepalive.apply(sock, keepalive.KeepaliveConfig()), address


def serve(tree: Path, *, username: str = "puller", password: str = "s3cret-pull") -> Iterator[Registry]:
    manifest, blobs = build_image(tree)
    registry = Registry("", username, password, "conveyor/busybox", "1")
    expected = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_HEAD(self) -> None:  # noqa: N802
            self._answer(body=False)

        def do_GET(self) -> None:  # noqa: N802
            self._answer(body=True)

        def _answer(self, *, body: bool) -> None:
            given = self.headers.get("Authorization", "")
            registry.seen.append(given)
            if given != expected:
                self._send(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}',
                           {"WWW-Authenticate": 'Basic realm="conveyor-test"'}, body)  # fmt: skip
                return
            path = self.path.split("?", 1)[0]
            prefix = f"/v2/{registry.repository}/"
            if path in ("/v2/", "/v2"):
                self._send(200, b"{}", {}, body)
            elif path in (f"{prefix}manifests/{registry.tag}", f"{prefix}manifests/{_digest(manifest)}"):
                self._send(200, manifest, {"Content-Type": MANIFEST_TYPE, "Docker-Content-Digest": _digest(manifest)}, body)
            elif path.startswith(f"{prefix}blobs/") and path.rsplit("/", 1)[1] in blobs:
                data = blobs[path.rsplit("/", 1)[1]]
                self._send(200, data, {"Content-Type": "application/octet-stream", "Docker-Content-Digest": _digest(data)}, body)
            else:
                self._send(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"unknown"}]}', {}, body)

        def _send(self, status: int, data: bytes, headers: dict[str, str], body: bool) -> None:
            self.send_response(status)
            self.send_header("Docker-Distribution-API-Version", "registry/2.0")
            self.send_header("Content-Length", str(len(data)))
            for key, value in headers.items():
                self.send_header(key, value)
            if "Content-Type" not in headers:
                self.send_header("Content-Type", "application/json")
            self.end_headers()
            if body:
                self.wfile.write(data)

    server = _Server(("127.0.0.1", 0), Handler)
    registry.host = f"127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield registry
    finally:
        server.shutdown()
        server.server_close()
