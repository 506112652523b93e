"""The SAVEPOINT guard: a test that opens a subtransaction fails; the statement hook sees it."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]

INNER = '''
import asyncio

import pytest
import sqlalchemy as sa

from conveyor.server.db import SavepointDetected, StatementObserver, create_engine

URL = {url!r}


def run(nested, policy="log"):
    observer = StatementObserver(policy)

    async def go():
        engine = create_engine(URL, observer)
        try:
            async with engine.connect() as conn:
                await conn.begin()
                if nested:
                    async with conn.begin_nested():
                        await conn.execute(sa.text("SELECT 1"))
                else:
                    await conn.execute(sa.text("SELECT 1"))
                await conn.commit()
        finally:
            await engine.dispose()

    asyncio.run(go())
    return observer
'''


@pytest.fixture
def inner_env(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.setenv("PYTHONPATH", f"{ROOT}:{ROOT / 'src'}")
    return pytester


def test_guard_fails_a_test_that_uses_begin_nested(inner_env: pytest.Pytester, database_url: str) -> None:
    inner_env.makepyfile(
        test_inner=INNER.format(url=database_url)
        + "\ndef test_with_savepoint():\n    run(True)\n"
        + "\ndef test_without_savepoint():\n    run(False)\n"
    )
    result = inner_env.runpytest_subprocess("-p", "tests.plugins.savepoint_guard", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*test_with_savepoint*", "*sent 1 subtransaction statement*SAVEPOINT*"])


def test_statement_hook_counts_and_refuses_savepoints(inner_env: pytest.Pytester, database_url: str) -> None:
    """Without the guard: policy 'log' counts the savepoint, policy 'raise' refuses it."""
    inner_env.makepyfile(
        test_hook=INNER.format(url=database_url)
        + "\ndef test_log_counts():\n"
        "    observer = run(True)\n"
        "    assert observer.savepoints == 1 and 'begin_nested' in observer.last_savepoint_stack\n"
        "    assert observer.statements >= 3\n"
        "\ndef test_raise_refuses():\n"
        "    with pytest.raises(SavepointDetected):\n"
        "        run(True, policy='raise')\n"
        "\ndef test_plain_transactions_pass():\n"
        "    assert run(False, policy='raise').savepoints == 0\n"
    )
    result = inner_env.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)
