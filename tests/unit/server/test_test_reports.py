"""JUnit reports -> GitLab's test report: gzip members, statuses, counts, broken XML."""

from __future__ import annotations

import gzip

import pytest

from conveyor.server.archive.test_reports import documents, suite

pytestmark = pytest.mark.unit

RSPEC = b"""<?xml version="1.0"?>
<testsuites><testsuite name="rspec">
  <testcase classname="spec.user" name="saves" time="0.5"/>
  <testcase classname="spec.user" name="validates" time="0.25"><failure message="expected true">Failure/Error: x</failure></testcase>
  <testcase classname="spec.user" name="later" time="0"><skipped/></testcase>
</testsuite></testsuites>"""
PYTEST = b'<testsuite><testcase classname="t" name="boom" time="1"><error message="ZeroDivisionError"/></testcase></testsuite>'


def test_two_gzip_members_make_one_suite() -> None:
    data = gzip.compress(RSPEC) + gzip.compress(PYTEST)
    found = suite("test", documents(data, "gzip"))
    assert {key: found[key] for key in ("name", "total_count", "success_count", "failed_count", "skipped_count", "error_count")} == {
        "name": "test", "total_count": 4, "success_count": 1, "failed_count": 1, "skipped_count": 1, "error_count": 1,
    }
    assert found["total_time"] == 1.75 and found["suite_error"] is None
    failed = next(case for case in found["test_cases"] if case["status"] == "failed")
    assert (failed["name"], failed["classname"], failed["stack_trace"]) == ("validates", "spec.user", "Failure/Error: x")
    errored = next(case for case in found["test_cases"] if case["status"] == "error")
    assert errored["stack_trace"] == "ZeroDivisionError"


def test_broken_xml_is_reported_and_the_rest_kept() -> None:
    found = suite("test", documents(gzip.compress(b"<testsuite><testcase") + gzip.compress(PYTEST), "gzip"))
    assert found["total_count"] == 1 and found["suite_error"].startswith("JUnit XML parsing failed")
