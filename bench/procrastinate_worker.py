"""One procrastinate worker process for ``bench/dispatch.py`` (not a benchmark on its own).

Started as ``run([DSN, CONCURRENCY, POOL_SIZE, MODE])`` by ``dispatch_setup.ProcrastinateWorkers``. It opens its pool, prints
``ready``, waits for a line on stdin (the start signal shared by every worker), then:

- ``drain``: runs until the queue is empty (``wait=False``);
- ``listen``: runs with LISTEN/NOTIFY until stdin closes (the pickup-latency phase).

The task records ``time.time()`` when it starts, which is when the worker holds the job. At the
end one JSON line goes to stdout: ``{"started": [[job_id, epoch_seconds], ...]}``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import procrastinate

TASK_NAME = "bench_noop"
QUEUE = "bench"


def make_app(dsn: str, pool_size: int) -> tuple[procrastinate.App, list[list[float]]]:
    started: list[list[float]] = []
    app = procrastinate.App(
        connector=procrastinate.PsycopgConnector(conninfo=dsn, min_size=pool_size, max_size=pool_size)
    )

    @app.task(name=TASK_NAME, queue=QUEUE, pass_context=True)
    async def noop(context: procrastinate.JobContext) -> None:
        started.append([context.job.id, time.time()])

    return app, started


async def main(dsn: str, concurrency: int, pool_size: int, mode: str) -> None:
    app, started = make_app(dsn, pool_size)
    loop = asyncio.get_running_loop()
    async with app.open_async():
        print("ready", flush=True)
        await loop.run_in_executor(None, sys.stdin.readline)
        options = {"concurrency": concurrency, "queues": [QUEUE], "install_signal_handlers": False}
        if mode == "drain":
            await app.run_worker_async(wait=False, listen_notify=False, **options)
        else:
            worker = asyncio.create_task(app.run_worker_async(wait=True, listen_notify=True, **options))
            await loop.run_in_executor(None, sys.stdin.readline)  # EOF: the phase is over
            worker.cancel()
            try:
                await worker
            except asyncio.CancelledError:
                pass
    print(json.dumps({"started": started}), flush=True)


def run(argv: list[str]) -> None:
    dsn, concurrency, pool_size, mode = argv[:4]
    asyncio.run(main(dsn, int(concurrency), int(pool_size), mode))
