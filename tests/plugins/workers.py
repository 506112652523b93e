"""Which tests share a worker when ``./dev test`` runs the suite on several (pytest-xdist).

Most fixtures are private to a worker (PostgreSQL, Redis, S3 and servers on free ports, temporary
directories). Two are not meant to run twice at once on one machine:

- ``middlebox``: fixed network namespace names and one private address range;
- ``podman`` / ``podman_tcp``: a container engine each (image import, storage, cgroups); one is
  enough and two double the setup;
- ``runner_venv`` (tests/e2e/test_runner_install.py): a virtualenv installed from the runner lock,
  module-scoped; split across workers it was built twice (54 s and 43 s of setup).

Tests using them get an ``xdist_group`` so ``--dist loadgroup`` keeps each group on one worker.
Without xdist the marker is inert.
"""

from __future__ import annotations

import pytest

GROUPS = {"middlebox": "middlebox", "podman": "podman", "podman_tcp": "podman", "runner_venv": "runner-venv"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        names = getattr(item, "fixturenames", ())
        for fixture, group in GROUPS.items():
            if fixture in names:
                item.add_marker(pytest.mark.xdist_group(group))
                break
