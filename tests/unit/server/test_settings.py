from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.protocol.keepalive import KeepaliveConfig
from conveyor.server.errors import SettingsError
from conveyor.server.settings import ServerSettings

pytestmark = pytest.mark.unit


def test_nothing_set_means_embedded(tmp_path: Path) -> None:
    settings = ServerSettings.from_env({"CONVEYOR_DATA_DIR": str(tmp_path)})
    assert settings.embedded and settings.database_url is None and settings.data_dir == tmp_path
    assert settings.keepalive.idle == 15 and settings.http_keepalive_timeout > 90


def test_environment_overrides_toml_and_arguments_override_both(tmp_path: Path) -> None:
    config = tmp_path / "conveyor.toml"
    config.write_text('redis_url = "redis://toml"\nport = 9000\nkeepalive_idle = 20\n')
    env = {"CONVEYOR_CONFIG": str(config), "CONVEYOR_PORT": "9100", "CONVEYOR_DATABASE_URL": "postgresql://x/y"}
    settings = ServerSettings.from_env(env, host="0.0.0.0")
    assert settings.redis_url == "redis://toml" and settings.port == 9100 and settings.host == "0.0.0.0"
    assert settings.database_url == "postgresql://x/y" and settings.keepalive.idle == 20


def test_seconds_may_be_fractional_in_the_environment() -> None:
    """Regression: float settings stayed strings when read from the environment."""
    assert ServerSettings.from_env({"CONVEYOR_DB_PING_AFTER_IDLE": "2.5"}).db_ping_after_idle == 2.5


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CONVEYOR_PORT": "eighty"}, "port must be an integer"),
        ({"CONVEYOR_SAVEPOINT_POLICY": "ignore"}, "savepoint_policy"),
        ({"CONVEYOR_KEEPALIVE_IDLE": "0"}, "keepalive idle"),
        ({"CONVEYOR_DB_PING_AFTER_IDLE": "soon"}, "db_ping_after_idle must be a number"),
        ({"CONVEYOR_EVENT_LOOP": "trio"}, "event_loop must be one of auto, uvloop, asyncio, not 'trio'"),
    ],
)
def test_bad_values_fail_at_startup(env: dict[str, str], message: str) -> None:
    with pytest.raises((SettingsError, ValueError), match=message):
        ServerSettings.from_env(env)


def test_unknown_toml_keys_are_refused(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("databse_url = 'typo'\n")
    with pytest.raises(SettingsError, match="databse_url"):
        ServerSettings.from_env({"CONVEYOR_CONFIG": str(config)})


def test_s3_object_store_from_the_environment() -> None:
    env = {
        "CONVEYOR_OBJECT_STORE_BUCKET": "ci-logs",
        "CONVEYOR_OBJECT_STORE_ENDPOINT": "http://127.0.0.1:9000",
        "CONVEYOR_OBJECT_STORE_REGION": "eu-west-1",
        "CONVEYOR_OBJECT_STORE_ACCESS_KEY_ID": "key",
        "CONVEYOR_OBJECT_STORE_SECRET_ACCESS_KEY": "secret",
        "CONVEYOR_OBJECT_STORE_ALLOW_HTTP": "true",
        "CONVEYOR_ARCHIVE_RETRY_BASE_DELAY": "5",
    }
    settings = ServerSettings.from_env(env)
    assert settings.object_store_url == "s3://ci-logs" and settings.object_store_allow_http is True
    assert settings.object_store_endpoint == "http://127.0.0.1:9000" and settings.archive_retry_base_delay == 5
    assert ServerSettings.from_env({"CONVEYOR_OBJECT_STORE_ALLOW_HTTP": "0"}).object_store_allow_http is False


def test_s3_object_store_from_toml(tmp_path: Path) -> None:
    config = tmp_path / "conveyor.toml"
    config.write_text('object_store_url = "s3://ci-logs/conveyor"\nobject_store_bucket = "ci-logs"\nobject_store_allow_http = true\n')
    settings = ServerSettings.from_env({"CONVEYOR_CONFIG": str(config)})
    assert settings.object_store_url == "s3://ci-logs/conveyor" and settings.object_store_allow_http is True


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CONVEYOR_OBJECT_STORE_ALLOW_HTTP": "perhaps"}, "object_store_allow_http must be true or false"),
        ({"CONVEYOR_OBJECT_STORE_BUCKET": "a-bucket", "CONVEYOR_OBJECT_STORE_URL": "s3://a-bucket-2"}, "contradicts"),
    ],
)
def test_bad_object_store_settings_fail_at_startup(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        ServerSettings.from_env(env)


def test_every_keepalive_and_idle_bound_is_configurable() -> None:
    settings = ServerSettings.from_env({
        "CONVEYOR_KEEPALIVE_IDLE": "5", "CONVEYOR_KEEPALIVE_INTERVAL": "2", "CONVEYOR_KEEPALIVE_COUNT": "3",
        "CONVEYOR_KEEPALIVE_ENABLED": "false", "CONVEYOR_KEEPALIVE_USER_TIMEOUT": "9",
        "CONVEYOR_OBJECT_STORE_POOL_IDLE_TIMEOUT": "4", "CONVEYOR_GIT_TIMEOUT": "30",
    })
    assert settings.keepalive == KeepaliveConfig(5, 2, 3, enabled=False, user_timeout=9)
    assert (settings.object_store_pool_idle_timeout, settings.git_timeout) == (4, 30)
    defaults = ServerSettings.from_env({})
    assert defaults.keepalive.unacknowledged_limit == 15 + 15 * 4  # TCP_USER_TIMEOUT follows the probes
    assert defaults.object_store_pool_idle_timeout < 60 and defaults.http_keepalive_timeout > 90
