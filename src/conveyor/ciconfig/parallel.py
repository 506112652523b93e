"""``parallel:`` and ``parallel:matrix``: one job becomes several named jobs (GitLab's
``Config::Normalizer``).

``parallel: N`` (1..200) gives ``job 1/N`` .. ``job N/N``. ``parallel:matrix`` (a list of
hashes; each value a string or a list) gives the cartesian product of each entry, entries
concatenated, at most 200 jobs, named ``job: [v1, v2]`` (the values in key order). Each
instance gets its matrix values as job variables and ``CI_NODE_INDEX``/``CI_NODE_TOTAL``.
Needs and dependencies on the original name mean every instance.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from conveyor.ciconfig.model import JobConfig, Need
from conveyor.ciconfig.values import is_int, is_scalar, scalar_text

MAX_PARALLEL = 200
_IDENTIFIER = re.compile(r"^[A-Za-z0-9_]+$")


@dataclass(frozen=True)
class Parallel:
    total: int | None = None  # parallel: N
    matrix: tuple[tuple[tuple[str, tuple[str, ...]], ...], ...] | None = None


def parse(value: Any, location: str, problems: list[str]) -> Parallel | None:
    """``parallel:`` -> ``Parallel``, or None after appending a problem."""
    if is_int(value):
        if value < 1:
            problems.append(f"{location}:parallel config must be greater than or equal to 1")
        elif value > MAX_PARALLEL:
            problems.append(f"{location}:parallel config must be less than or equal to {MAX_PARALLEL}")
        else:
            return Parallel(total=value)
        return None
    if not isinstance(value, dict):
        problems.append(f"{location}:parallel should be an integer or a hash")
        return None
    if set(value) != {"matrix"}:
        extra = [str(key) for key in value if key != "matrix"]
        problems.append(f"{location}:parallel config contains unknown keys: {', '.join(extra)}" if extra
                        else f"{location}:parallel config missing required keys: matrix")
        return None
    rows = value["matrix"]
    at = f"{location}:parallel:matrix"
    if not isinstance(rows, list) or not rows or not all(isinstance(row, dict) and row for row in rows):
        problems.append(f"{at} config should be an array of hashes")
        return None
    parsed = []
    count = 0
    for row in rows:
        entries = []
        for name, raw in row.items():
            listed = raw if isinstance(raw, list) else [raw]
            if not isinstance(name, str) or not _IDENTIFIER.match(name):
                problems.append(f"{at} variables config uses invalid names: {name}")
                return None
            if not listed or not all(is_scalar(item) for item in listed):
                problems.append(f"{at} variables config should be a hash of key value pairs, "
                                "value can be an array")
                return None
            entries.append((name, tuple(scalar_text(item) for item in listed)))
        count += _product_size(entries)
        parsed.append(tuple(entries))
    if count > MAX_PARALLEL:
        problems.append(f"{at} config generates too many jobs (maximum is {MAX_PARALLEL})")
        return None
    return Parallel(matrix=tuple(parsed))


def _product_size(entries: Sequence[tuple[str, tuple[str, ...]]]) -> int:
    size = 1
    for _, listed in entries:
        size *= len(listed)
    return size


def instances(parallel: Parallel) -> list[tuple[str, dict[str, str]]]:
    """``(name suffix, matrix variables)`` of each instance, in order."""
    if parallel.total is not None:
        return [(f" {i}/{parallel.total}", {}) for i in range(1, parallel.total + 1)]
    found = []
    for row in parallel.matrix or ():
        names = [name for name, _ in row]
        for combination in itertools.product(*(listed for _, listed in row)):
            found.append((f": [{', '.join(combination)}]", dict(zip(names, combination, strict=True))))
    return found


def expand(jobs: Mapping[str, JobConfig]) -> tuple[dict[str, JobConfig], dict[str, list[JobConfig]]]:
    """The jobs with every parallel job replaced by its instances, and the instances by
    original name. Later instances with the same name replace earlier ones (GitLab)."""
    expanded: dict[str, JobConfig] = {}
    groups: dict[str, list[JobConfig]] = {}
    for name, job in jobs.items():
        if job.parallel is None:
            expanded[name] = job
            continue
        made = instances(job.parallel)
        group: dict[str, JobConfig] = {}
        for index, (suffix, matrix) in enumerate(made, start=1):
            instance = dataclasses.replace(
                job,
                name=f"{name}{suffix}",
                variables={**job.variables, **matrix},
                node_index=index,
                node_total=len(made),
                matrix=matrix or None,
                parallel_base=name,
            )
            group[instance.name] = instance
        expanded.update(group)
        groups[name] = list(group.values())
    return expanded, groups


def expand_needs(needs: Sequence[Need] | None, groups: Mapping[str, Sequence[JobConfig]]) -> list[Need] | None:
    """Needs on a parallel job's original name become needs on its instances (GitLab's
    ``Normalizer``): all of them, or for ``needs:parallel:matrix`` the names that the need's
    own matrix generates (values in the need's key order), which are then validated like any
    name, so a selector that matches no instance is an undefined need. A selector on a job
    that is not parallel is ignored, as GitLab does."""
    if needs is None:
        return None
    result: list[Need] = []
    for need in needs:
        if need.cross or need.job not in groups:
            result.append(dataclasses.replace(need, matrix=None) if not need.cross else need)
        elif need.matrix is not None:
            made = instances(Parallel(matrix=need.matrix))
            result.extend(dataclasses.replace(need, job=f"{need.job}{suffix}", matrix=None) for suffix, _ in made)
        else:
            result.extend(dataclasses.replace(need, job=job.name, matrix=None) for job in groups[need.job])
    return result


def expand_names(names: Sequence[str] | None, groups: Mapping[str, Sequence[JobConfig]]) -> list[str] | None:
    """``dependencies`` on a parallel job's original name mean every instance."""
    if names is None:
        return None
    result: list[str] = []
    for name in names:
        result.extend([job.name for job in groups[name]] if name in groups else [name])
    return result
