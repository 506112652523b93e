"""config.toml: written by register, read by run, with clear errors for bad files."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.protocol.keepalive import KeepaliveConfig
from conveyor.runner import config
from conveyor.runner.errors import SettingsError

pytestmark = pytest.mark.unit


def entry(**overrides: object) -> config.RunnerEntry:
    values = {"url": "http://ci.example", "token": "glrt-one", "name": "one", "id": 1}
    return config.RunnerEntry(**{**values, **overrides})  # type: ignore[arg-type]


def test_round_trip_keeps_every_field(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    docker = entry(token="glrt-two", name="two", executor="docker", tags=["docker", "linux"], limit=2,
                   keepalive={"idle": 20, "interval": 5, "count": 3},
                   docker={"host": "unix:///run/podman.sock", "image": "alpine:3", "pull_policy": ["never"]})  # fmt: skip
    written = config.RunnerConfig(concurrent=3, check_interval=0.5, listen_address="127.0.0.1:9252",
                                  runners=[entry(), docker])  # fmt: skip
    config.save(written, path)
    assert path.stat().st_mode & 0o777 == 0o600  # it holds tokens
    assert config.load(path) == written


def test_settings_per_entry(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    config.save(config.RunnerConfig(concurrent=2, check_interval=0.5, runners=[
        entry(builds_dir="b1", output_limit=8, limit=1),
        entry(token="glrt-two", executor="docker", keepalive={"idle": 20, "interval": 5, "count": 3},
              docker={"host": "tcp://127.0.0.1:2375", "pull_policy": "if-not-present"}),
    ]), path)  # fmt: skip
    one, two = config.load(path).settings(path)
    assert one.builds_dir == tmp_path / "b1" and one.output_limit == 8 * 1024 and one.limit == 1
    assert one.check_interval == 0.5 and one.docker is None
    assert two.builds_dir == tmp_path / "builds" and two.keepalive == KeepaliveConfig(20, 5, 3)
    assert two.docker is not None and two.docker.pull_policy == ("if-not-present",)
    assert one.system_id == two.system_id == (tmp_path / ".runner_system_id").read_text().strip()


def test_register_again_replaces_the_entry() -> None:
    first = config.RunnerConfig(runners=[entry(), entry(token="glrt-two")])
    updated = first.with_entry(entry(name="renamed"))
    assert [(r.token, r.name) for r in updated.runners] == [("glrt-two", "one"), ("glrt-one", "renamed")]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("concurrent = \n", "config.toml"),
        ("concurrent = 0\n", "concurrent must be an integer >= 1"),
        ('[[runners]]\nurl = "http://x"\ntoken = "glrt-x"\ncolour = "red"\n', "unknown keys ['colour']"),
        ('[[runners]]\nurl = "http://x"\n', "#1"),
    ],
)
def test_bad_files_say_where(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(SettingsError, match=message.replace("[", r"\[").replace("]", r"\]")):
        config.load(path)


def test_bad_values_name_the_entry(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    config.save(config.RunnerConfig(runners=[entry(docker={"pull_policy": ["sometimes"]})]), path)
    with pytest.raises(SettingsError, match=r"#1 \(one\).*unknown pull_policy"):
        config.load(path).settings(path)


def test_missing_file_says_register_first(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="conveyor runner register"):
        config.load(tmp_path / "nope.toml")


def test_keepalive_request_and_pool_idle_timeouts_per_entry(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    config.save(config.RunnerConfig(runners=[entry(request_timeout=30, pool_idle_timeout=4.5, keepalive={
        "idle": 2, "interval": 1, "count": 3, "user_timeout": 5, "enabled": False})]), path)  # fmt: skip
    (settings,) = config.load(path).settings(path)
    assert (settings.request_timeout, settings.pool_idle_timeout) == (30.0, 4.5)
    assert settings.keepalive == KeepaliveConfig(2, 1, 3, enabled=False, user_timeout=5)
