"""The server's event loop and HTTP parser (``CONVEYOR_EVENT_LOOP``): uvloop, httptools and hiredis
by default (5-14% less server CPU per job end to end, bench/README.md), the stdlib loop and h11 when asked.

Read from the running process's own memory map: the compiled modules it loaded, not a flag it reports.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.plugins.live import ROOT_TOKEN

pytestmark = pytest.mark.e2e

FAST = ("uvloop/loop.", "httptools/parser/parser.", "hiredis/hiredis.")


def loaded(pid: int) -> set[str]:
    maps = Path(f"/proc/{pid}/maps").read_text()
    return {name for name in FAST if name in maps}


def served(server) -> None:  # noqa: ANN001
    answer = httpx.get(f"{server.url}/api/v4/projects", headers={"PRIVATE-TOKEN": ROOT_TOKEN}, timeout=10)
    assert answer.status_code == 200, answer.text


def test_the_server_runs_on_uvloop_httptools_and_hiredis_by_default(server_process) -> None:  # noqa: ANN001
    served(server_process)  # a request parsed, a Redis reply read
    assert loaded(server_process.proc.pid) == set(FAST)


@pytest.mark.parametrize("server_env", [{"CONVEYOR_EVENT_LOOP": "asyncio"}])
def test_the_stdlib_loop_and_h11_when_asked(server_process) -> None:  # noqa: ANN001
    served(server_process)
    assert not loaded(server_process.proc.pid) & {"uvloop/loop.", "httptools/parser/parser."}
