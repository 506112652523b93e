"""The Docker API client: quiet streams are not cut by a read timeout, TCP sockets to the Docker
host carry keepalives (the two ways a long job's log stream dies silently), and TCP with TLS."""

from __future__ import annotations

import asyncio
import re
import ssl
import subprocess
from pathlib import Path

import pytest

from conveyor.protocol.keepalive import KeepaliveConfig
from conveyor.runner.executors.docker import containers
from conveyor.runner.executors.docker.api import DockerAPI, DockerError
from conveyor.runner.settings import DockerSettings

pytestmark = pytest.mark.integration


async def quiet_container(api: DockerAPI, image: str, seconds: float) -> str:
    spec = containers.ContainerSpec(name=f"conveyor-quiet-{id(api)}", image=image, job_id=0,
                                    cmd=["sh", "-c", f"echo early; sleep {seconds}; echo late"])  # fmt: skip
    container = await containers.create(api, spec)
    await containers.start(api, container)
    return container


async def test_a_quiet_stream_outlives_the_call_timeout(podman) -> None:  # noqa: ANN001
    # Every ordinary call times out after 1 s, the container is silent for 3 s: the log stream and
    # the wait must not use that timeout (docker-py's client-wide timeout ends such streams).
    async with DockerAPI(DockerSettings(host=podman.host), KeepaliveConfig(), call_timeout=1.0) as api:
        container = await quiet_container(api, podman.image, 3)
        chunks: list[bytes] = []
        try:
            code, _ = await asyncio.gather(containers.wait(api, container),
                                           containers.stream_logs(api, container, chunks.append))  # fmt: skip
        finally:
            await containers.remove(api, container)
    assert code == 0 and b"".join(chunks) == b"early\nlate\n"


def keepalive_timers(port: int) -> list[str]:
    out = subprocess.run(["ss", "-tnoH", "state", "established", f"( dport = :{port} )"],
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    return [line for line in out.splitlines() if line.strip()]


async def test_tcp_sockets_to_the_docker_host_keep_alive(podman, podman_tcp: str) -> None:  # noqa: ANN001
    port = int(podman_tcp.rsplit(":", 1)[1])
    config = KeepaliveConfig(idle=7, interval=3, count=2)
    async with DockerAPI(DockerSettings(host=podman_tcp), config) as api:
        container = await quiet_container(api, podman.image, 2)
        try:
            stream = asyncio.create_task(containers.stream_logs(api, container, lambda _: None))
            await asyncio.sleep(0.5)
            lines = keepalive_timers(port)
            await stream
        finally:
            await containers.remove(api, container)
    assert lines, "no connection to the Docker host was open"
    assert all("timer:(keepalive" in line for line in lines), lines
    # the first probe is due within TCP_KEEPIDLE (7 s), not the kernel's default 2 hours
    timers = [re.search(r"timer:\(keepalive,([\d.]+)(ms|sec)", line) for line in lines]
    remaining = [float(t.group(1)) / (1000 if t.group(2) == "ms" else 1) for t in timers if t]
    assert all(value <= 7 for value in remaining), lines


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def certificates(root: Path) -> Path:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, as Docker lays them out."""
    root.mkdir()
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca-key.pem", "-out", "ca.pem", "-days",
            "1", "-subj", "/CN=conveyor-test-ca", cwd=root)  # fmt: skip
    (root / "san.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    for name, extra in (("server", ["-extfile", "san.cnf"]), ("client", [])):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}-key.pem", "-out", f"{name}.csr",
                "-subj", f"/CN={name}", cwd=root)  # fmt: skip
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial",
                "-out", f"{name}-cert.pem", "-days", "1", *extra, cwd=root)  # fmt: skip
    (root / "cert.pem").write_bytes((root / "client-cert.pem").read_bytes())
    (root / "key.pem").write_bytes((root / "client-key.pem").read_bytes())
    return root


async def tls_proxy(certs: Path, socket_path: str) -> asyncio.Server:
    """A TLS endpoint (client certificates required) in front of the engine's unix socket."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(certs / "ca.pem"))
    context.load_cert_chain(certs / "server-cert.pem", certs / "server-key.pem")
    context.verify_mode = ssl.CERT_REQUIRED

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_unix_connection(socket_path)
        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))

    return await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)


async def test_tcp_with_tls_verify_and_client_certificates(podman, tmp_path: Path) -> None:  # noqa: ANN001
    certs = certificates(tmp_path / "certs")
    server = await tls_proxy(certs, podman.host[len("unix://"):])
    port = server.sockets[0].getsockname()[1]
    try:
        settings = DockerSettings(host=f"tcp://127.0.0.1:{port}", tls_verify=True, tls_cert_path=str(certs))
        async with DockerAPI(settings, KeepaliveConfig()) as api:
            version = (await api.call("GET", "/version")).json()
        assert version["Components"]
        (tmp_path / "other").mkdir()
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "k.pem", "-out", "ca.pem", "-days", "1",
                "-subj", "/CN=someone-else", cwd=tmp_path / "other")  # fmt: skip
        for name in ("cert.pem", "key.pem"):
            (tmp_path / "other" / name).write_bytes((certs / name).read_bytes())
        wrong_ca = DockerSettings(host=f"tcp://127.0.0.1:{port}", tls_verify=True, tls_cert_path=str(tmp_path / "other"))
        async with DockerAPI(wrong_ca, KeepaliveConfig()) as api:
            with pytest.raises(DockerError, match="cannot reach the Docker API"):
                await api.call("GET", "/version")
    finally:
        server.close()
        await server.wait_closed()
