"""``conveyor runner register`` and ``conveyor runner run`` as child processes, for e2e tests."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from conveyor.runner import config as config_file


def runner_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}


def register(config: Path, url: str, token: str, *options: str) -> subprocess.CompletedProcess[str]:
    """Run ``conveyor runner register``; raises with its output when it fails."""
    done = subprocess.run(
        [sys.executable, "-m", "conveyor", "runner", "register", "--config", str(config), "--url", url,
         "--token", token, "--check-interval", "0.3", *options],
        env=runner_env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    if done.returncode != 0:
        raise AssertionError(f"register failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    tune(config)
    return done


def tune(config: Path) -> None:
    """Test timing: a keep-alive PUT (which carries cancel requests) after 1 s without a PATCH
    instead of 30 s, and containers get 1 s between SIGTERM and SIGKILL."""
    loaded = config_file.load(config)
    runners = [
        dataclasses.replace(entry, force_send_interval=1.0,
                            docker={**entry.docker, "stop_grace": 1.0} if entry.docker else {})  # fmt: skip
        for entry in loaded.runners
    ]
    config_file.save(dataclasses.replace(loaded, runners=runners), config)


class ConfigRunner:
    """``conveyor runner run --config CONFIG``; the log goes to ``CONFIG.log``."""

    def __init__(self, config: Path) -> None:
        self.config = config
        self.log_path = config.with_suffix(".log")
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "conveyor", "runner", "run", "--config", str(config)],
                env=runner_env(), stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def signal(self, sig: int = signal.SIGTERM) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 60.0) -> int:
        return self.proc.wait(timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.send_signal(signal.SIGTERM)  # the second signal aborts running jobs
                try:
                    self.proc.wait(20)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()


def scrape(address: str, timeout: float = 20.0) -> str:
    """The runner's /metrics text, once it answers."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return httpx.get(f"http://{address}/metrics", timeout=5).raise_for_status().text
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def metric(text: str, name: str, **labels: str) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    series = f"{name}{{{wanted}}}" if wanted else name
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    return 0.0
