"""Which trace store a server uses: Redis only when Redis keeps what it acknowledges (AOF)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from conveyor.server.app import build_services
from conveyor.server.embedded import trace_store
from conveyor.server.settings import ServerSettings
from tests.plugins.services import start_redis

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def volatile_redis():  # noqa: ANN201
    server = start_redis(appendonly=False)
    yield server.url
    server.stop()


def _settings(redis_url: str, tmp_path: Path, **overrides: object) -> ServerSettings:
    return ServerSettings(redis_url=redis_url, data_dir=tmp_path, **overrides)


def test_auto_takes_redis_when_it_has_aof(redis_url: str, tmp_path: Path) -> None:
    assert trace_store(_settings(redis_url, tmp_path)) == "redis"


def test_auto_takes_postgres_when_redis_would_lose_acknowledged_bytes(volatile_redis: str, tmp_path: Path) -> None:
    assert trace_store(_settings(volatile_redis, tmp_path)) == "postgres"


def test_redis_without_aof_is_refused_unless_volatile_is_accepted(volatile_redis: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="appendonly yes"):
        trace_store(_settings(volatile_redis, tmp_path, trace_store="redis"))
    assert trace_store(_settings(volatile_redis, tmp_path, trace_store="redis", trace_redis_volatile_ok=True)) == "redis"


def test_postgres_is_taken_as_asked(redis_url: str, tmp_path: Path) -> None:
    assert trace_store(_settings(redis_url, tmp_path, trace_store="postgres")) == "postgres"


@pytest.mark.parametrize("object_store", ["filesystem", "s3"], indirect=True)
@pytest.mark.parametrize("chunk_store", [None, "auto", "database", "object"])
async def test_where_sealed_chunks_go(
    redis_url: str, database_url: str, tmp_path: Path, object_store: dict[str, Any], chunk_store: str | None
) -> None:
    """By default: segment files beside a local object store; the rows with S3 (a live log must
    stay readable while S3 is down), unless asked for objects."""
    chosen = {"trace_chunk_store": chunk_store} if chunk_store else {}
    settings = _settings(redis_url, tmp_path, database_url=database_url, trace_store="redis", **object_store, **chosen)
    services = build_services(settings)
    local = "object_store_endpoint" not in object_store
    expected = {"database": "database", "object": "segments" if local else "objects"}.get(
        chunk_store or "auto", "segments" if local else "database"
    )
    try:
        assert services.traces.durable.where == expected
        if expected == "segments":
            objects_dir = Path(object_store["object_store_url"].removeprefix("file://"))
            assert services.traces.durable._segments.root == objects_dir / "trace-segments"
    finally:
        await services.engine.dispose()
        await services.redis.aclose()


def test_an_unknown_chunk_store_is_refused(redis_url: str, database_url: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="trace_chunk_store"):
        build_services(_settings(redis_url, tmp_path, database_url=database_url, trace_store="redis", trace_chunk_store="disk"))
