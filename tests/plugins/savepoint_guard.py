"""Fail any test during which this process sends a SAVEPOINT to PostgreSQL.

Listens on SQLAlchemy's ``Engine`` class, so every engine in the process is covered whoever
created it. Server processes started by tests run with ``CONVEYOR_SAVEPOINT_POLICY=raise`` and
their ``conveyor_db_savepoints_total`` metric is checked by the e2e fixtures.
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

_SUBTRANSACTION = re.compile(r"^\s*SAVEPOINT\b", re.I)  # opening one; RELEASE/ROLLBACK TO follow it


class _Seen:
    statements: list[str] = []


@event.listens_for(Engine, "before_cursor_execute")
def _watch(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
    if _SUBTRANSACTION.match(statement):
        _Seen.statements.append(statement)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):  # noqa: ANN201
    before = len(_Seen.statements)
    try:
        return (yield)
    finally:
        sent = _Seen.statements[before:]
        if sent:
            pytest.fail(f"the test sent {len(sent)} subtransaction statement(s): {sent[:3]}", pytrace=False)

