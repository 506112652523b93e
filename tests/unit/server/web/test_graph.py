"""Pipeline graph layout: stage columns in order, needs edges without transitive ones."""

from __future__ import annotations

import pytest

from conveyor.server.web import graph

pytestmark = pytest.mark.unit


def job(name: str, stage: str, idx: int, needs: list[str] | None = None) -> dict:
    return {"name": name, "stage": stage, "stage_idx": idx, "needs": needs}


def test_columns_rows_and_reduced_edges() -> None:
    jobs = [
        job("deploy", "deploy", 2, ["build", "test"]),
        job("build", "build", 0),
        job("test", "test", 1, ["build"]),
        job("lint", "test", 1, []),
        job("gone", "test", 1, ["missing"]),
    ]
    out = graph.layout(jobs)
    assert [(name, [c.job["name"] for c in cells]) for name, cells in out.stages] == [
        ("build", ["build"]), ("test", ["test", "lint", "gone"]), ("deploy", ["deploy"]),
    ]
    assert {(e.source, e.target) for e in out.edges} == {("build", "test"), ("test", "deploy")}
    edge = next(e for e in out.edges if e.target == "deploy")
    assert edge.path.startswith(f"M{graph.CARD + graph.COLUMN},{graph.HEAD + 20} ")
    assert out.width == 3 * graph.COLUMN - (graph.COLUMN - graph.CARD)
    assert out.height == graph.HEAD + 3 * graph.ROW


def test_reduce_keeps_needs_no_other_need_reaches() -> None:
    needs = {"a": set(), "b": {"a"}, "c": {"b"}, "d": {"a", "b", "c"}}
    assert graph.reduce(needs["d"], needs) == {"c"}
    assert graph.ancestors("d", needs) == {"a", "b", "c"}
