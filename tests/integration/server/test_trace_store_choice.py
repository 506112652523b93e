"""Which trace store a server uses: Redis only when Redis keeps what it acknowledges (AOF)."""

from __future__ import annotations

from pathlib import Path

import pytest

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
