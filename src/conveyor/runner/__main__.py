"""``python -m conveyor.runner``: run a runner configured from ``CONVEYOR_RUNNER_*`` variables."""

from __future__ import annotations

import sys

from conveyor.runner.errors import SettingsError
from conveyor.runner.main import main
from conveyor.runner.settings import RunnerSettings


def cli() -> int:
    try:
        settings = RunnerSettings.from_env()
    except SettingsError as exc:
        print(f"conveyor-runner: {exc}", file=sys.stderr)
        return 2
    return main(settings)


if __name__ == "__main__":
    sys.exit(cli())
