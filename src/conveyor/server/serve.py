"""Run the server: embedded services if needed, a keepalive listening socket, uvicorn.

Sockets accepted from a listener inherit its SO_KEEPALIVE and TCP_KEEP* options on Linux, so
setting them on the listener covers every connection the server accepts.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import socket
import sys
from types import FrameType

import structlog
import uvicorn
from fastapi import FastAPI

from conveyor.protocol import keepalive
from conveyor.server import embedded
from conveyor.server.app import create_app
from conveyor.server.settings import ServerSettings

READY_LINE = "Conveyor server listening on"


def listen_socket(host: str, port: int, config: keepalive.KeepaliveConfig) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted sockets only when the listener's
    # proto says TCP; with proto 0 every response waited ~40 ms for a delayed ACK (headers and
    # body go out as two packets).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    keepalive.apply(sock, config)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def configure_logging() -> None:
    """Logs go to stderr: stdout carries only the ready line, which a parent may stop reading."""
    structlog.configure(
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
    )


def _exit(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def run(settings: ServerSettings) -> None:
    """Serve until SIGINT/SIGTERM. Prints ``READY_LINE <url>`` once listening.

    uvicorn re-raises the signal that stopped it once it has shut down; with the default SIGTERM
    disposition that would kill the process before the embedded services are stopped, so SIGTERM
    becomes SystemExit here and the ``finally`` below always runs.
    """
    configure_logging()
    signal.signal(signal.SIGTERM, _exit)
    settings, services = embedded.start(settings)
    try:
        sock = listen_socket(settings.host, settings.port, settings.keepalive)
        settings = settings.with_overrides(port=sock.getsockname()[1])
        app = create_app(settings)
        config = uvicorn.Config(
            app,
            loop=settings.event_loop,
            http="h11" if settings.event_loop == "asyncio" else "auto",
            timeout_keep_alive=settings.http_keepalive_timeout,
            log_level="warning",
            access_log=False,
            lifespan="on",
        )
        server = uvicorn.Server(config)
        with asyncio.Runner(loop_factory=config.get_loop_factory()) as runner:
            runner.run(_serve(server, sock, settings, app))
    finally:
        services.stop()


async def _serve(server: uvicorn.Server, sock: socket.socket, settings: ServerSettings, app: FastAPI) -> None:
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started and not task.done():
        await asyncio.sleep(0.05)
    if server.started:
        # everything imported and built at start-up lives as long as the process: out of the
        # collector's sight, full collections stop walking it (they were ~10% of a PATCH's CPU)
        gc.collect()
        gc.freeze()
        print(f"{READY_LINE} http://{settings.host}:{settings.port}", flush=True)
    # uvicorn drains open requests before the lifespan ends; long polls would hold it for up to
    # long_poll_timeout and live tails until their jobs end, so release them once a stop is asked for.
    while not server.should_exit and not task.done():
        await asyncio.sleep(0.1)
    services = getattr(app.state, "services", None)
    if services is not None:
        await services.notifier.close()
        services.trace_events.close()  # open live tails end; clients resume elsewhere by offset
    await task
