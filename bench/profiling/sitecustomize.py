"""Profiles every Python process started with this directory on PYTHONPATH and
``BENCH_PROFILE_DIR`` set (``bench/e2e.py --profile``): cProfile from start-up to a normal exit,
written to ``$BENCH_PROFILE_DIR/<program>-<pid>.prof``. Processes of the benchmark itself skip it."""

import os

_dir = os.environ.get("BENCH_PROFILE_DIR")
if _dir:
    import atexit
    import cProfile
    import sys
    import time

    # ``python -m conveyor server ...``: while site runs, argv is ["-m", "server", ...]
    if sys.argv[:1] == ["-m"] and sys.argv[1:2] in (["server"], ["runner"]) and "register" not in sys.argv:
        _profile = cProfile.Profile(time.process_time)  # CPU, not wall time: the machine is shared
        _name = sys.argv[1]

        def _dump() -> None:
            _profile.disable()
            _profile.dump_stats(os.path.join(_dir, f"{_name}-{os.getpid()}.prof"))

        atexit.register(_dump)
        _profile.enable()
