"""Profiles every Python process started with this directory on PYTHONPATH and
``BENCH_PROFILE_DIR`` set (``bench/e2e.py --profile``): cProfile from start-up to a normal exit,
written to ``$BENCH_PROFILE_DIR/<program>-<pid>.prof``. Processes of the benchmark itself skip it.

With ``BENCH_PROFILE_ON_SIGNAL`` also set (``bench/routes.py --profile``), a server profiles only
between SIGUSR1 and SIGUSR2 (start-up and warm-up left out), and SIGUSR2 writes
``$BENCH_PROFILE_DIR/<name>.prof``, the name read from ``$BENCH_PROFILE_DIR/current``."""

import os

_dir = os.environ.get("BENCH_PROFILE_DIR")
if _dir:
    import atexit
    import cProfile
    import signal
    import sys
    import time

    # ``python -m conveyor server ...``: while site runs, argv is ["-m", "server", ...]
    if sys.argv[:1] == ["-m"] and sys.argv[1:2] in (["server"], ["runner"]) and "register" not in sys.argv:
        _name = sys.argv[1]
        if os.environ.get("BENCH_PROFILE_ON_SIGNAL"):
            _profiles = []

            def _start(_signum, _frame) -> None:
                _profiles.append(cProfile.Profile(time.process_time))
                _profiles[-1].enable()

            def _stop(_signum, _frame) -> None:
                _profiles[-1].disable()
                with open(os.path.join(_dir, "current")) as current:
                    name = current.read().strip()
                _profiles[-1].dump_stats(os.path.join(_dir, f"{name}.prof"))

            if _name == "server":
                signal.signal(signal.SIGUSR1, _start)
                signal.signal(signal.SIGUSR2, _stop)
        else:
            _profile = cProfile.Profile(time.process_time)  # CPU, not wall time: the machine is shared

            def _dump() -> None:
                _profile.disable()
                _profile.dump_stats(os.path.join(_dir, f"{_name}-{os.getpid()}.prof"))

            atexit.register(_dump)
            _profile.enable()
