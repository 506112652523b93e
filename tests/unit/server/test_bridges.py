"""A bridge's status for its downstream pipeline's (GitLab's depend and mirror strategies)."""

from __future__ import annotations

import pytest

from conveyor.server.queue.bridges import _followed_status, _member

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("strategy", "downstream", "expected"),
    [
        (None, "failed", None),  # no strategy: the bridge ended when the downstream was made
        ("depend", "success", "success"),
        ("depend", "failed", "failed"),
        ("depend", "canceled", "canceled"),
        ("depend", "skipped", "failed"),
        ("depend", "manual", None),  # stays running
        ("depend", "running", None),
        ("mirror", "skipped", "skipped"),
        ("mirror", "manual", "manual"),
        ("mirror", "running", "running"),
        ("mirror", "failed", "failed"),
    ],
)
def test_followed_status(strategy: str | None, downstream: str, expected: str | None) -> None:
    assert _followed_status({"trigger": {"include": [], "strategy": strategy}}, downstream) == expected


def test_artifact_member() -> None:
    import io
    import zipfile

    data = io.BytesIO()
    with zipfile.ZipFile(data, "w") as archive:
        archive.writestr("gen/child.yml", "a: {script: x}\n")
    assert _member(data.getvalue(), "./gen/child.yml") == "a: {script: x}\n"
    assert _member(data.getvalue(), "missing.yml") == ""  # GitLab: "File `missing.yml` is empty!"
    assert _member(b"not a zip", "x.yml") is None
