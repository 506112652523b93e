"""bench/traces_patch's report of a phase over its rounds: medians, per-round values, CPU totals."""

from __future__ import annotations

import pytest

from bench import support, traces_patch

pytestmark = pytest.mark.unit


def _round(patches: int, per_s: float, cpu_s: dict[str, float], errors: list[str]) -> dict:
    return {"patches": patches, "errors": len(errors), "first_errors": errors, "seconds": 6.0,
            "patches_per_s": per_s, "mib_per_s": per_s / 4, "cpu_s": cpu_s}


def test_a_phase_reports_medians_per_round_values_and_cpu_over_all_rounds() -> None:
    machine = support.MachineCpu()
    machine.ticks = (300, 0, 100, 600, 0, 0, 0, 0)
    rounds = [
        _round(1200, 200.0, {"bench_client_cpu_s": 3.0, "servers_cpu_s": 2.0}, []),
        _round(1500, 250.0, {"bench_client_cpu_s": 3.5, "servers_cpu_s": 2.5}, ["500 a", "500 b"]),
        _round(1140, 190.0, {"bench_client_cpu_s": 3.1, "servers_cpu_s": 1.9}, ["409 c", "409 d"]),
    ]
    phase = traces_patch._phase(rounds, machine)
    assert phase["patches_per_s"] == 200.0  # the median, not the mean (213.3)
    assert phase["mib_per_s"] == 50.0
    assert phase["rounds_patches_per_s"] == [200.0, 250.0, 190.0]
    assert phase["rounds_mib_per_s"] == [50.0, 62.5, 47.5]
    assert phase["patches"] == 3840 and phase["seconds"] == 18.0
    assert phase["errors"] == 4 and phase["first_errors"] == ["500 a", "500 b", "409 c"]
    assert phase["cpu_ms_per_patch"] == {"bench_client": 2.5, "servers": 1.67}  # 9.6 s and 6.4 s over 3,840
    assert phase["machine_cpu_pct"]["busy"] == 40.0 and phase["machine_cpu_pct"]["user"] == 30.0


def test_the_median_of_two_rounds_is_their_mean() -> None:
    rounds = [_round(10, 100.0, {}, []), _round(10, 120.0, {}, [])]
    assert traces_patch._phase(rounds, support.MachineCpu())["patches_per_s"] == 110.0
