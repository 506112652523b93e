"""bench/nessie's pgbench write scripts and its summary (the benchmark itself runs only under ./dev bench)."""

from __future__ import annotations

import pytest

from bench import nessie

pytestmark = pytest.mark.unit


def test_write_scripts_have_the_asked_savepoints_and_updates() -> None:
    control = nessie.write_script(1, savepoints=True)
    assert control.count("SAVEPOINT") == 1 and control.count("UPDATE pgbench_accounts") == 1
    heavy = nessie.write_script(70, savepoints=False)
    assert "SAVEPOINT" not in heavy and heavy.count("UPDATE pgbench_accounts") == 70
    lines = nessie.write_script(70, savepoints=True).splitlines()
    assert lines.count("BEGIN;") == 1 and lines[-1] == "END;" and sum(l.startswith("SAVEPOINT") for l in lines) == 70


def test_summary_ratios_and_goals() -> None:
    def phase(tps: float, reads: int = 0, **extra: object) -> dict:
        return {"read_tps": tps, "subtrans_slru_reads": reads, "read_tps_every_5s": [tps * 1.1, tps * 0.5], **extra}

    results = {"phases": {
        "baseline": phase(1000.0), "conveyor": phase(950.0, conveyor={"savepoints": 0.0}), "control": phase(990.0),
        "updates_70": phase(800.0), "savepoints_70": phase(200.0, 5000), "baseline_end": phase(1010.0),
    }}
    summary = nessie.summarize(results, [70])
    assert [goal["passed"] for goal in summary["goals"]] == [True, True, True]
    assert summary["control_ratio"] == 0.99 and summary["baseline_drift"] == 1.01
    [cliff] = summary["cliff"]
    assert cliff["ratio_to_same_updates_without_savepoints"] == 0.25 and cliff["trough_ratio"] == 0.1
    assert summary["phases"]["baseline"]["trough_ratio"] == 0.5
