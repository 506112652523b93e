"""bench/traces' accept-and-discard route (``api/bench.py``): mounted only with ``bench_routes``;
answers as the trace PATCH does; its durable twin also writes the body to a segment file."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.integration


@pytest.fixture
def server_settings(server_settings):  # noqa: ANN001, ANN201
    return server_settings.with_overrides(bench_routes=True)


async def test_the_discard_route_answers_like_a_trace_patch_and_the_floor_writes_the_body(live_server) -> None:  # noqa: ANN001
    body = bytes(range(256)) * 1100  # 275 KiB: three 128 KiB pieces
    async with httpx.AsyncClient(base_url=live_server.url) as client:
        response = await client.patch("/bench/discard/7/trace", content=b"abc", headers={"Content-Range": "10-12"})
        assert response.status_code == 202 and response.headers["Range"] == "0-13"
        response = await client.patch("/bench/durable/7/trace", content=body, headers={"Content-Range": f"0-{len(body) - 1}"})
        assert response.status_code == 202 and response.headers["Range"] == f"0-{len(body)}"
    root = Path(live_server.settings.object_store_url.removeprefix("file://")) / "bench-segments" / "bench-7"
    files = list(root.iterdir())
    assert len(files) == 1 and files[0].read_bytes()[: len(body)] == body  # zero-padded past it when O_DIRECT


def test_the_route_is_absent_by_default(tmp_path: Path, database_url: str, redis_url: str) -> None:
    from conveyor.server.app import create_app
    from conveyor.server.settings import ServerSettings

    app = create_app(ServerSettings(database_url=database_url, redis_url=redis_url, data_dir=tmp_path))
    assert not any(getattr(route, "path", "").startswith("/bench/") for route in app.routes)


async def test_the_dispatch_ceiling_answers_like_the_runner_api_without_a_job(live_server) -> None:  # noqa: ANN001
    from tests.plugins.runner_clients import RunnerClient

    base = live_server.url + "/bench/ceiling"
    client = RunnerClient("glrt-not-checked", "s_ceiling", [base])
    try:
        first, second = await client.request_job(base), await client.request_job(base)
        assert first is not None and second is not None and second.id == first.id + 1
        assert first.job["token"] == f"glcbt-bench-{first.id}"
        assert [step["script"] for step in first.job["steps"]] == [["echo one", "echo two", "echo three"]]
        assert any(v["key"] == "CI_JOB_ID" and v["value"] == str(first.id) for v in first.job["variables"])
        response = await client.update(base, first, "running")
        assert response.status_code == 200 and response.headers["Job-Status"] == "running"
    finally:
        await client.aclose()
