"""duration.parse_seconds: GitLab's (ChronicDuration) forms for timeout:."""

from __future__ import annotations

import pytest

from conveyor.ciconfig.duration import parse_seconds

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (3600, 3600),
        (90.4, 90),
        ("3600", 3600),
        ("3600 seconds", 3600),
        ("60 minutes", 3600),
        ("1h 30m", 5400),
        ("1h30m", 5400),
        ("3h 30m", 12600),
        ("3 hours 30 minutes", 12600),
        ("3 hours and 30 minutes", 12600),
        ("1 hour, 5 mins", 3900),
        ("1.5h", 5400),
        ("2 DAYS", 172800),
        ("1 week", 604800),
        ("1 month", 2592000),
        ("10 min 5", 605),
        ("1:30", 90),
        ("1:30:00", 5400),
        ("  45s  ", 45),
        ("1 hr 1 sec", 3601),
    ],
)
def test_durations(value: str | int | float, seconds: int) -> None:
    assert parse_seconds(value) == seconds


@pytest.mark.parametrize(
    "value", ["", "   ", "soon", "1 fortnight", "h", "1h 2m extra", "1h x 2m", "-3", True, -1]
)
def test_not_durations(value: str | int | bool) -> None:
    assert parse_seconds(value) is None
