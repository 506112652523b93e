"""FakeExecutor: pretends to run jobs, driven by job variables. For tests only.

Only the ``step_script`` stage behaves specially (like woodpecker's dummy backend); every other
stage succeeds at once without output. Variables (last definition wins):

* ``FAKE_OUTPUT_BYTES``: print this many bytes of numbered lines;
* ``FAKE_SLEEP``: then wait this many seconds (honouring timeout and cancel);
* ``FAKE_EXIT_CODE``: then exit with this code.
"""

from __future__ import annotations

import asyncio

from conveyor.runner.executors.base import Executor, ExitResult, Output

CHUNK = 64 * 1024


def fake_output(size: int) -> bytes:
    """``size`` bytes of ``fake output line NNNNNNN\\n`` lines, the last one cut short."""
    lines = []
    total, number = 0, 0
    while total < size:
        line = f"fake output line {number:07d}\n".encode()
        lines.append(line)
        total += len(line)
        number += 1
    return b"".join(lines)[:size]


class FakeExecutor(Executor):
    name = "fake"

    async def prepare(self) -> None:
        self.prepared = True

    def _variable(self, key: str, default: str) -> str:
        value = default
        for variable in self.context.job.variables:
            if variable.key == key:
                value = variable.value
        return value

    async def run(
        self,
        script: str,
        *,
        stage: str,
        timeout: float,
        output: Output,
        cancel: asyncio.Event | None = None,
    ) -> ExitResult:
        if stage != "step_script":
            return ExitResult(0)
        data = fake_output(int(self._variable("FAKE_OUTPUT_BYTES", "0")))
        for start in range(0, len(data), CHUNK):
            output(data[start : start + CHUNK])
            await asyncio.sleep(0)
        sleep = float(self._variable("FAKE_SLEEP", "0"))
        if sleep > 0 or timeout <= 0:
            waiter = asyncio.create_task((cancel or asyncio.Event()).wait())
            try:
                done, _ = await asyncio.wait({waiter}, timeout=max(min(sleep, timeout), 0.0))
            finally:
                waiter.cancel()
            if done:
                return ExitResult(130, canceled=True)
            if timeout <= sleep:
                return ExitResult(143, timed_out=True)
        return ExitResult(int(self._variable("FAKE_EXIT_CODE", "0")))

    async def cleanup(self) -> None:
        self.cleaned_up = True
