"""Human durations as GitLab reads them for ``timeout:`` (Ruby's ChronicDuration).

Accepted: a bare number of seconds (``3600``, ``"3600"``); ``h:m:s`` or ``m:s`` clock forms
(``"1:30:00"``); and number/unit pairs in any order and spacing, optionally separated by commas
or ``and`` (``"1h 30m"``, ``"10 minutes"``, ``"3 hours and 30 minutes"``, ``"1.5h"``). A number
without a unit counts as seconds.
"""

from __future__ import annotations

import re

_SECOND, _MINUTE, _HOUR, _DAY = 1, 60, 3600, 86400
UNITS: dict[str, float] = {
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), _SECOND),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), _MINUTE),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), _HOUR),
    **dict.fromkeys(("d", "day", "days"), _DAY),
    **dict.fromkeys(("w", "wk", "wks", "week", "weeks"), 7 * _DAY),
    **dict.fromkeys(("mo", "mos", "month", "months"), 30 * _DAY),
    **dict.fromkeys(("y", "yr", "yrs", "year", "years"), 365.25 * _DAY),
}
_CLOCK = re.compile(r"^(?:(\d+):)?(\d+):(\d{1,2})$")
_PART = re.compile(r"(\d+(?:\.\d+)?|\.\d+)\s*([a-z]*)")
_FILLER = re.compile(r"[\s,]+|\band\b")


def parse_seconds(value: str | int | float) -> int | None:
    """Seconds in ``value``, rounded; None when it is not a duration."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return round(value) if value >= 0 else None
    text = value.strip().lower()
    if not text:
        return None
    clock = _CLOCK.match(text)
    if clock:
        hours, minutes, seconds = (int(part or 0) for part in clock.groups())
        return hours * _HOUR + minutes * _MINUTE + seconds
    total = 0.0
    position = 0
    for match in _PART.finditer(text):
        if _FILLER.sub("", text[position : match.start()]):
            return None  # stray text between the parts
        number, unit = match.groups()
        if unit and unit not in UNITS:
            return None
        total += float(number) * UNITS.get(unit, _SECOND)
        position = match.end()
    if position == 0 or _FILLER.sub("", text[position:]):
        return None
    return round(total)
