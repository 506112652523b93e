from __future__ import annotations

import re
from pathlib import Path

import pytest

from conveyor.protocol.keepalive import KeepaliveConfig
from conveyor.runner.errors import SettingsError
from conveyor.runner.settings import SYSTEM_ID_FILE, RunnerSettings, job_environment

pytestmark = pytest.mark.unit


def env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "CONVEYOR_RUNNER_URL": "https://ci.example.com",
        "CONVEYOR_RUNNER_TOKEN": "glrt-abc",
        "CONVEYOR_RUNNER_BUILDS_DIR": str(tmp_path / "builds"),
        **extra,
    }


def test_defaults(tmp_path: Path) -> None:
    settings = RunnerSettings.from_env(env(tmp_path))
    assert settings.url == "https://ci.example.com"
    assert settings.builds_dir == tmp_path / "builds"
    assert (settings.check_interval, settings.update_interval, settings.force_send_interval) == (3.0, 3.0, 30.0)
    assert settings.output_limit == 4 * 1024 * 1024
    assert settings.keepalive == KeepaliveConfig(15, 15, 4)
    assert settings.request_timeout >= 60
    assert re.fullmatch(r"r_[0-9A-Za-z]{12}", settings.system_id)


def test_system_id_is_generated_once_and_persisted(tmp_path: Path) -> None:
    first = RunnerSettings.from_env(env(tmp_path))
    assert (tmp_path / "builds" / SYSTEM_ID_FILE).read_text().strip() == first.system_id
    assert RunnerSettings.from_env(env(tmp_path)).system_id == first.system_id
    given = RunnerSettings.from_env(env(tmp_path), system_id="s_0123456789ab")
    assert given.system_id == "s_0123456789ab"
    with pytest.raises(SettingsError):
        RunnerSettings.from_env(env(tmp_path), system_id="bogus")


def test_environment_values_and_overrides(tmp_path: Path) -> None:
    settings = RunnerSettings.from_env(
        env(
            tmp_path,
            CONVEYOR_RUNNER_CHECK_INTERVAL="0.5",
            CONVEYOR_RUNNER_UPDATE_INTERVAL="2",
            CONVEYOR_RUNNER_FORCE_SEND_INTERVAL="10",
            CONVEYOR_RUNNER_KEEPALIVE_IDLE="30",
            CONVEYOR_RUNNER_KEEPALIVE_INTERVAL="5",
            CONVEYOR_RUNNER_KEEPALIVE_COUNT="9",
        ),
        check_interval=1.5,
    )
    assert settings.check_interval == 1.5
    assert settings.update_interval == 2.0
    assert settings.force_send_interval == 10.0
    assert settings.keepalive == KeepaliveConfig(30, 5, 9)


def test_update_interval_is_capped_at_15_minutes(tmp_path: Path) -> None:
    assert RunnerSettings.from_env(env(tmp_path), update_interval=5000).update_interval == 900.0


def test_reads_os_environ_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in env(tmp_path).items():
        monkeypatch.setenv(key, value)
    assert RunnerSettings.from_env().token == "glrt-abc"


@pytest.mark.parametrize("missing", ["CONVEYOR_RUNNER_URL", "CONVEYOR_RUNNER_TOKEN"])
def test_missing_url_or_token_fails_clearly(tmp_path: Path, missing: str) -> None:
    values = env(tmp_path)
    del values[missing]
    with pytest.raises(SettingsError, match=missing):
        RunnerSettings.from_env(values)


@pytest.mark.parametrize(
    "extra",
    [
        {"CONVEYOR_RUNNER_CHECK_INTERVAL": "often"},
        {"CONVEYOR_RUNNER_KEEPALIVE_IDLE": "0"},
        {"CONVEYOR_RUNNER_URL": "ci.example.com"},
        {"CONVEYOR_RUNNER_UPDATE_INTERVAL": "-1"},
    ],
)
def test_invalid_values_fail(tmp_path: Path, extra: dict[str, str]) -> None:
    with pytest.raises(SettingsError):
        RunnerSettings.from_env(env(tmp_path, **extra))


def test_settings_are_frozen(tmp_path: Path) -> None:
    settings = RunnerSettings.from_env(env(tmp_path))
    with pytest.raises(AttributeError):
        settings.url = "x"  # type: ignore[misc]


def test_jobs_do_not_inherit_the_runner_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVEYOR_RUNNER_TOKEN", "glrt-secret")
    monkeypatch.setenv("SOME_TOOL_HOME", "/opt/tool")
    environment = job_environment()
    assert "CONVEYOR_RUNNER_TOKEN" not in environment
    assert environment["SOME_TOOL_HOME"] == "/opt/tool"


def test_keepalive_off_and_pool_idle_timeout_from_the_environment(tmp_path: Path) -> None:
    env = {"CONVEYOR_RUNNER_URL": "http://x", "CONVEYOR_RUNNER_TOKEN": "glrt-x", "CONVEYOR_RUNNER_BUILDS_DIR": str(tmp_path),
           "CONVEYOR_RUNNER_KEEPALIVE_ENABLED": "false", "CONVEYOR_RUNNER_KEEPALIVE_IDLE": "2",
           "CONVEYOR_RUNNER_POOL_IDLE_TIMEOUT": "7.5"}
    settings = RunnerSettings.from_env(env)
    assert (settings.keepalive.enabled, settings.keepalive.idle, settings.pool_idle_timeout) == (False, 2, 7.5)
    assert RunnerSettings.from_env({**env, "CONVEYOR_RUNNER_KEEPALIVE_ENABLED": ""}).keepalive.enabled is True
    assert RunnerSettings.from_env({**env, "CONVEYOR_RUNNER_KEEPALIVE_ENABLED": ""}).pool_idle_timeout == 7.5
    with pytest.raises(SettingsError, match="KEEPALIVE_ENABLED"):
        RunnerSettings.from_env({**env, "CONVEYOR_RUNNER_KEEPALIVE_ENABLED": "maybe"})
