"""``artifacts:reports:junit``: a pipeline's test report (GitLab's
``GET /projects/:id/pipelines/:pipeline_id/test_report``), parsed from its jobs' JUnit XML.

One test suite per job (named after it), holding the test cases of every JUnit file the job
uploaded (gitlab-runner gzips each file as one gzip member). A case is ``success``, ``failed``
(``<failure>``), ``error`` (``<error>``) or ``skipped`` (``<skipped>``). Reports are read when
asked for; a file that is not valid XML is skipped and counted in ``suite_error``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
import zlib
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from conveyor.server.db import queries
from conveyor.server.storage import ObjectStore

MAX_REPORT_BYTES = 30 * 1024 * 1024  # GitLab's junit limit per job, uncompressed
COUNTS = ("success", "failed", "skipped", "error")


class TestReports:
    __test__ = False  # not a pytest class

    def __init__(self, engine: AsyncEngine, objects: ObjectStore) -> None:
        self._engine, self._objects = engine, objects

    async def for_pipeline(self, pipeline_id: int) -> dict[str, Any]:
        async with self._engine.connect() as conn:
            reports = await queries.artifacts.of_pipeline(conn, pipeline_id, "junit")
        suites = []
        for report in reports:
            data = await self._objects.get_bytes(report["object_key"])
            suites.append(suite(report["job_name"], documents(data or b"", report["file_format"])))
        return _totals({"test_suites": suites})


def documents(data: bytes, file_format: str) -> list[bytes]:
    """The XML files of an uploaded report: each gzip member, or the raw bytes."""
    if file_format != "gzip":
        return [data[:MAX_REPORT_BYTES]]
    found, total = [], 0
    while data:
        inflater = zlib.decompressobj(zlib.MAX_WBITS | 16)
        try:
            member = inflater.decompress(data, MAX_REPORT_BYTES - total)
        except zlib.error:
            break
        found.append(member)
        total += len(member)
        if total >= MAX_REPORT_BYTES or not inflater.eof:
            break
        data = inflater.unused_data
    return found


def suite(name: str, files: list[bytes]) -> dict[str, Any]:
    cases: list[dict[str, Any]] = []
    broken = None
    for text in files:
        try:
            root = ElementTree.fromstring(text)
        except ElementTree.ParseError as exc:
            broken = f"JUnit XML parsing failed: {exc}"
            continue
        cases += [_case(element) for element in root.iter("testcase")]
    result = _totals({"name": name, "test_cases": cases})
    result["suite_error"] = broken
    return result


def _case(element: ElementTree.Element) -> dict[str, Any]:
    status, trace = "success", None
    for tag, meaning in (("failure", "failed"), ("error", "error"), ("skipped", "skipped")):
        found = element.find(tag)
        if found is not None:
            status = meaning
            trace = (found.text or found.get("message") or "").strip() or None
            break
    output = element.find("system-out")
    return {
        "status": status,
        "name": element.get("name", ""),
        "classname": element.get("classname", ""),
        "file": element.get("file"),
        "execution_time": _seconds(element.get("time")),
        "system_output": trace if status in ("failed", "error") else (output.text if output is not None else None),
        "stack_trace": trace if status in ("failed", "error") else None,
    }


def _seconds(value: str | None) -> float:
    try:
        return float(value or 0)
    except ValueError:
        return 0.0


def _totals(holder: dict[str, Any]) -> dict[str, Any]:
    """Counts and time over ``test_cases`` (a suite) or ``test_suites`` (the report)."""
    if "test_cases" in holder:
        items = holder["test_cases"]
        counts = {key: sum(case["status"] == key for case in items) for key in COUNTS}
        time = sum(case["execution_time"] for case in items)
    else:
        items = holder["test_suites"]
        counts = {key: sum(suite[f"{key}_count"] for suite in items) for key in COUNTS}
        time = sum(suite["total_time"] for suite in items)
    return {
        **({"name": holder["name"]} if "name" in holder else {}),
        "total_time": round(time, 3),
        "total_count": sum(counts.values()),
        **{f"{key}_count": value for key, value in counts.items()},
        **{k: v for k, v in holder.items() if k != "name"},
    }
