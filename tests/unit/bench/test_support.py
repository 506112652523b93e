"""bench/support's machine-CPU split: parsing ``/proc/stat`` and the percentages over intervals."""

from __future__ import annotations

import pytest

from bench import support

pytestmark = pytest.mark.unit

STAT = "cpu  100 20 50 800 10 5 15 0 7 0\ncpu0 50 10 25 400 5 2 8 0 0 0\nintr 123\n"


def test_machine_ticks_reads_the_first_eight_fields_of_the_machine_line() -> None:
    assert support.machine_ticks(STAT) == (100, 20, 50, 800, 10, 5, 15, 0)  # guest (7) is already in user


def test_machine_ticks_refuses_a_per_core_line() -> None:
    with pytest.raises(ValueError, match="cpu0"):
        support.machine_ticks("cpu0 1 2 3 4 5 6 7 8\n")


def test_machine_split_groups_the_ticks_into_percentages() -> None:
    split = support.machine_split((100, 20, 50, 800, 10, 5, 15, 0))  # 1,000 ticks
    assert split == {"user": 12.0, "system": 5.0, "irq": 2.0, "idle": 80.0, "other": 1.0, "busy": 20.0}


def test_machine_split_of_no_time_is_unknown() -> None:
    assert support.machine_split((0,) * 8) == dict.fromkeys(["user", "system", "irq", "idle", "other", "busy"])


def test_machine_cpu_adds_up_its_intervals_and_skips_the_gaps(monkeypatch: pytest.MonkeyPatch) -> None:
    readings = iter([
        (100, 0, 0, 100, 0, 0, 0, 0),
        (150, 0, 0, 150, 0, 0, 0, 0),  # interval 1: 50 user, 50 idle
        (900, 0, 0, 900, 0, 0, 0, 0),  # not measured
        (1000, 0, 0, 900, 0, 0, 0, 0),  # interval 2: 100 user
    ])
    monkeypatch.setattr(support, "machine_ticks", lambda: next(readings))
    machine = support.MachineCpu()
    for _ in range(2):
        machine.start()
        machine.stop()
    assert machine.ticks == (150, 0, 0, 50, 0, 0, 0, 0)
    assert machine.split()["busy"] == 75.0


def test_machine_cpu_on_this_machine_adds_up_to_a_hundred() -> None:
    machine = support.MachineCpu()
    machine.start()
    sum(range(2_000_000))  # spend a few ticks
    machine.stop()
    split = machine.split()
    assert sum(machine.ticks) > 0
    assert split["busy"] == pytest.approx(100 - split["idle"], abs=0.1)
    assert sum(split[name] for name in ("user", "system", "irq", "idle", "other")) == pytest.approx(100, abs=0.3)


def test_machine_cpu_stop_without_start_is_an_error() -> None:
    with pytest.raises(RuntimeError):
        support.MachineCpu().stop()
