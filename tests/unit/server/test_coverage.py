"""coverage: the value GitLab's extract_coverage finds in a job's log."""

from __future__ import annotations

import pytest

from conveyor.server.queue.coverage import extract

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("pattern", "text", "expected"),
    [
        (r"Coverage: \d+\.\d+%", "Coverage: 10.0%\nmore\nCoverage: 87.5%\n", 87.5),  # the last line wins
        (r"TOTAL.+ (\d+%)", "TOTAL  120  15  88%\n", 88.0),  # a capture group
        (r"lines\.*: \d+", "lines......: 91\n", 91.0),
        (r"Cov: \d+", "\x1b[32;1mCov: 75\x1b[0;m\n", 75.0),  # colours do not hide it
        (r"Cov: \d+", "progress\rCov: 60\n", 60.0),  # what a carriage return overwrote is gone
        (r"Cov: \d+", "nothing here\n", None),
        (r"Cov: (", "Cov: 1\n", None),  # not a regex
        (r"(a)|(\d+)%", "x 42%\n", 42.0),  # the last non-empty group
    ],
)
def test_extract(pattern: str, text: str, expected: float | None) -> None:
    assert extract(pattern, text) == expected
