"""Render cProfile files (``bench/e2e.py --profile DIR``) as text: CPU self time by package, the
functions with the most self time, and Conveyor's own functions by cumulative time.

``python bench/profile_report.py DIR/server-*.prof > bench/results/e2e-profile-server.txt``

py-spy is not in the lock, so there is no flame graph: cProfile on process CPU time
(``bench/profiling/sitecustomize.py``) is what the stdlib offers. Two caveats when reading it:
coroutines count one call per resumption, and SQLAlchemy's greenlet switches generate no
return events, so cumulative times of functions that await the database also hold CPU the event
loop spent elsewhere meanwhile. Self time (``tottime``) has neither problem.
"""

from __future__ import annotations

import collections
import io
import pstats
import sys


def package(filename: str) -> str:
    if "site-packages/" in filename:
        return filename.split("site-packages/")[1].split("/")[0]
    if "/src/conveyor/" in filename:
        return "conveyor/" + "/".join(filename.split("/src/conveyor/")[1].split("/")[:2])
    if "/lib/python3" in filename:
        rest = filename.split("/lib/python3")[1].split("/", 2)
        return "stdlib/" + (rest[1] if len(rest) > 1 else filename)
    if filename == "~":
        return "C functions (builtins, sockets, ...)"
    return filename if filename.startswith("<") else "other"


def render(paths: list[str]) -> str:
    stats = pstats.Stats(*paths, stream=io.StringIO())
    by_package: collections.Counter[str] = collections.Counter()
    for (filename, _line, _name), (_cc, _nc, tottime, _ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        by_package[package(filename)] += tottime
    total = sum(by_package.values())
    out = [f"profiles: {', '.join(paths)}", f"CPU seconds (self time, all functions): {total:.2f}", "",
           "self time by package", "--------------------"]  # fmt: skip
    out += [f"{seconds:8.2f} s {100 * seconds / total:5.1f}%  {name}" for name, seconds in by_package.most_common(25)]
    for title, key, restriction in (("functions by self time", "tottime", 40),
                                    ("Conveyor's functions by cumulative time", "cumulative", ("src/conveyor/", 40))):  # fmt: skip
        stream = io.StringIO()
        stats.stream = stream  # type: ignore[attr-defined]
        restrictions = restriction if isinstance(restriction, tuple) else (restriction,)
        stats.sort_stats(key).print_stats(*restrictions)
        body = stream.getvalue()
        out += ["", title, "-" * len(title), body[body.find("   ncalls"):].rstrip()]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render(sys.argv[1:]))
