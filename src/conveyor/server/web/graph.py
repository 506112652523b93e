"""Pipeline graph layout, pure: stage columns, each job's cell, and ``needs`` edges as SVG paths.

Cells sit on a fixed grid (``COLUMN`` x ``ROW`` pixels, the sizes ``web.css`` gives job cards),
so the edges are computed here from grid coordinates and sent as inline SVG: no layout code runs
in the browser. Transitive edges are dropped (``a -> c`` when ``a -> b -> c``), as GitLab does.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

COLUMN = 240  # px per stage column (card 200 + gap 40)
CARD = 200
ROW = 48  # px per job row (card 40 + gap 8)
HEAD = 40  # px of the column heading above the first card


@dataclass
class Cell:
    job: dict
    column: int
    row: int


@dataclass
class Edge:
    source: str
    target: str
    path: str


@dataclass
class Layout:
    stages: list[tuple[str, list[Cell]]] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    width: int = 0
    height: int = 0


def layout(jobs: Sequence[dict]) -> Layout:
    """Jobs (each with ``name``, ``stage``, ``stage_idx``, ``needs``) in stage columns, in order."""
    columns: dict[int, tuple[str, list[Cell]]] = {}
    for job in jobs:
        name, cells = columns.setdefault(job["stage_idx"], (job["stage"], []))
        cells.append(Cell(job, 0, len(cells)))
    out = Layout()
    for column, key in enumerate(sorted(columns)):
        name, cells = columns[key]
        for cell in cells:
            cell.column = column
        out.stages.append((name, cells))
    where = {cell.job["name"]: cell for _, cells in out.stages for cell in cells}
    needs = {name: set(cell.job.get("needs") or ()) & where.keys() for name, cell in where.items()}
    for target, sources in sorted(needs.items()):
        for source in sorted(reduce(sources, needs)):
            out.edges.append(Edge(source, target, _path(where[source], where[target])))
    out.width = max(len(out.stages) * COLUMN - (COLUMN - CARD), 0)
    out.height = HEAD + max((len(cells) for _, cells in out.stages), default=0) * ROW
    return out


def reduce(direct: Iterable[str], needs: dict[str, set[str]]) -> set[str]:
    """``direct`` without the needs some other direct need already reaches."""
    direct = set(direct)
    reached: set[str] = set()
    for need in direct:
        reached |= ancestors(need, needs)
    return direct - reached


def ancestors(name: str, needs: dict[str, set[str]]) -> set[str]:
    seen: set[str] = set()
    todo = list(needs.get(name, ()))
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            todo.extend(needs.get(current, ()))
    return seen


def _path(source: Cell, target: Cell) -> str:
    x1, y1 = source.column * COLUMN + CARD, HEAD + source.row * ROW + 20
    x2, y2 = target.column * COLUMN, HEAD + target.row * ROW + 20
    bend = max((x2 - x1) // 2, 20)
    return f"M{x1},{y1} C{x1 + bend},{y1} {x2 - bend},{y2} {x2},{y2}"
