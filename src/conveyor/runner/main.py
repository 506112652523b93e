"""Runner wiring: build the manager, the executors and the metrics server; handle signals.

``run`` serves one entry (tests, ``CONVEYOR_RUNNER_*`` configuration); ``serve`` serves every
entry of a ``config.toml`` (``conveyor runner run``). Under ``main`` the first SIGTERM/SIGINT stops
polling and lets running jobs finish; the second aborts them (``runner_interrupted``).
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Mapping, Sequence

import structlog

from conveyor.runner.errors import SettingsError
from conveyor.runner.executors import ExecutorFactory, default_executors
from conveyor.runner.manager import Manager
from conveyor.runner.metrics import Metrics, MetricsServer
from conveyor.runner.settings import RunnerSettings, job_environment

log = structlog.get_logger(__name__)


async def run(
    settings: RunnerSettings,
    *,
    stop: asyncio.Event | None = None,
    max_jobs: int | None = None,
    executors: Mapping[str, ExecutorFactory] | None = None,
    abort: asyncio.Event | None = None,
    env: Mapping[str, str] | None = None,
) -> None:
    """Poll for jobs with one entry, one job at a time, until ``stop`` or ``max_jobs`` ran.

    Args:
        stop: set to stop polling; a running job is finished first.
        max_jobs: return after this many jobs (tests, one-shot runners).
        executors: name -> factory; ``settings.executor`` picks one. Default: shell and docker.
        abort: set to abort the running job (reported as ``runner_interrupted``) and return.
        env: base environment of jobs; default: this process's minus ``CONVEYOR_*``.

    Raises:
        SettingsError: unknown executor, or the coordinator rejected the runner token.
    """
    await serve(
        [settings], concurrent=1, stop=stop, abort=abort, max_jobs=max_jobs, executors=executors, env=env
    )


async def serve(
    entries: Sequence[RunnerSettings],
    *,
    concurrent: int = 1,
    stop: asyncio.Event | None = None,
    abort: asyncio.Event | None = None,
    max_jobs: int | None = None,
    executors: Mapping[str, ExecutorFactory] | None = None,
    env: Mapping[str, str] | None = None,
    listen_address: str = "",
    metrics: Metrics | None = None,
) -> None:
    """Serve every entry at once, at most ``concurrent`` jobs in total.

    Args:
        listen_address: ``host:port`` for the Prometheus ``/metrics`` endpoint; empty: none.
    """
    manager = Manager(
        entries,
        executors=default_executors() if executors is None else executors,
        env=job_environment() if env is None else env,
        concurrent=concurrent,
        metrics=metrics,
    )
    server = None
    if listen_address:
        server = MetricsServer(manager.metrics, listen_address, entries[0].keepalive)
        await server.start()
        log.info("metrics listening", address=listen_address, port=server.port)
    try:
        await manager.serve(stop or asyncio.Event(), abort, max_jobs=max_jobs)
    finally:
        if server is not None:
            await server.close()


def main(
    settings: RunnerSettings | Sequence[RunnerSettings],
    *,
    concurrent: int = 1,
    listen_address: str = "",
    executors: Mapping[str, ExecutorFactory] | None = None,
) -> int:
    """Run until signalled; returns the process exit code."""
    entries = [settings] if isinstance(settings, RunnerSettings) else list(settings)
    return asyncio.run(_main(entries, concurrent, listen_address, executors))


async def _main(
    entries: list[RunnerSettings],
    concurrent: int,
    listen_address: str,
    executors: Mapping[str, ExecutorFactory] | None,
) -> int:
    stop, abort = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal(name: str) -> None:
        if not stop.is_set():
            log.warning("signal received: finishing running jobs; send it again to abort them", signal=name)
            stop.set()
        else:
            log.warning("second signal: aborting running jobs", signal=name)
            abort.set()

    signals = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)
    for sig in signals:
        loop.add_signal_handler(sig, on_signal, sig.name)
    try:
        await serve(
            entries, concurrent=concurrent, stop=stop, abort=abort, executors=executors,
            listen_address=listen_address,
        )  # fmt: skip
    except SettingsError as exc:
        log.error(str(exc))
        return 1
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
    return 0
