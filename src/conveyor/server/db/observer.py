"""The one hook every SQL statement of a process passes: subtransactions and transaction lengths.

Conveyor issues zero ``SAVEPOINT``s: one savepoint while a long transaction runs makes replicas
thrash ``pg_subtrans`` (``../shared/spec/postgres-subtransactions.md``). ``StatementObserver``
sees each statement before it reaches PostgreSQL and follows each transaction from its first
statement to its commit or rollback, as GitLab's transaction observer does:

- ``SAVEPOINT``, ``RELEASE SAVEPOINT`` and ``ROLLBACK TO SAVEPOINT`` are counted per transaction
  and per process. Policy ``log`` lets them through; ``raise`` refuses a ``SAVEPOINT`` before it
  is sent (``SavepointDetected``), which is what every test and every process a test starts uses.
- A transaction that used a savepoint, or lasted ``long_transaction`` seconds or more, is written
  as ONE JSON line (``sink``, stderr by default): result, duration, the counts, its first
  statements, the stack of each savepoint and the stack that ended it.
- Listeners get every finished transaction (``add_transaction_listener``): the Prometheus
  histogram in ``server/metrics.py`` is one.
"""

from __future__ import annotations

import json
import re
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event

try:
    import greenlet
except ImportError:  # pragma: no cover - SQLAlchemy's asyncio support needs it
    greenlet = None
from sqlalchemy.ext.asyncio import AsyncEngine

from conveyor.protocol.errors import ConveyorError

_LEADING_COMMENT = re.compile(r"^\s*(/\*.*?\*/\s*)*", re.S)
_KINDS = (
    ("rollback_to", re.compile(r"^ROLLBACK\s+TO\b", re.I)),
    ("release", re.compile(r"^RELEASE\b", re.I)),
    ("savepoint", re.compile(r"^SAVEPOINT\b", re.I)),
)
_FIRST = frozenset({"/*", "SA", "RE", "RO"})  # how a statement the patterns match starts (after blanks)
KEPT_STATEMENTS = 20  # statements of one transaction kept for its log line
STACK_LIMIT = 40
_TX_KEY = "conveyor_transaction"
_LIBRARY_PATHS = ("/sqlalchemy/", "/asyncio/", "/greenlet/", "/asyncpg/", "/conveyor/server/db/observer.py")

Listener = Callable[[str, Any], None]
Sink = Callable[[dict[str, Any]], None]


class SavepointDetected(ConveyorError):
    """A SAVEPOINT (subtransaction) was sent to PostgreSQL; Conveyor issues none."""


def subtransaction_kind(statement: str) -> str | None:
    """``savepoint``, ``release``, ``rollback_to`` or None; a leading ``/* comment */`` is skipped."""
    if statement.lstrip()[:2].upper() not in _FIRST:  # every ordinary statement: no regular expression run
        return None
    text = _LEADING_COMMENT.sub("", statement, count=1)
    for kind, pattern in _KINDS:
        if pattern.match(text):
            return kind
    return None


def json_lines(record: dict[str, Any]) -> None:
    """The default sink: one JSON object per line on stderr (stdout may carry a ready line)."""
    sys.stderr.write(json.dumps(record, default=str) + "\n")
    sys.stderr.flush()


@dataclass
class TransactionRecord:
    started: float = field(default_factory=time.monotonic)
    statements: list[str] = field(default_factory=list)
    savepoints: int = 0
    releases: int = 0
    rollbacks_to: int = 0
    savepoint_stacks: list[str] = field(default_factory=list)

    def see(self, statement: str, kind: str | None) -> None:
        if len(self.statements) < KEPT_STATEMENTS:
            self.statements.append(statement)
        if kind == "savepoint":
            self.savepoints += 1
            self.savepoint_stacks.append(_stack())
        elif kind == "release":
            self.releases += 1
        elif kind == "rollback_to":
            self.rollbacks_to += 1


def _stack() -> str:
    """The caller's stack, cleaned as GitLab cleans its backtraces: SQLAlchemy's async engine runs
    the statement in a greenlet whose own stack starts inside SQLAlchemy, so the frames of the
    coroutine that awaited it (the parent greenlet's) come first; library frames are left out."""
    frames = traceback.extract_stack()[:-2]
    current = greenlet.getcurrent() if greenlet is not None else None
    parent = getattr(current, "parent", None)
    if parent is not None and parent.gr_frame is not None:
        frames = traceback.extract_stack(parent.gr_frame) + frames
    kept = [frame for frame in frames if not any(part in frame.filename for part in _LIBRARY_PATHS)]
    return "".join(traceback.format_list((kept or frames)[-STACK_LIMIT:]))


class StatementObserver:
    """Counts statements and subtransactions and times transactions; one per process or engine."""

    def __init__(self, policy: str = "log", *, long_transaction: float = 10.0, sink: Sink = json_lines) -> None:
        if policy not in ("log", "raise"):
            raise ValueError("policy must be 'log' or 'raise'")
        self.policy = policy
        self.long_transaction = long_transaction
        self.sink = sink
        self.statements = 0
        self.savepoints = 0
        self.releases = 0
        self.rollbacks_to = 0
        self.transactions = 0
        self.logged_transactions = 0
        self.last_savepoint_stack: str | None = None
        self._listeners: list[Listener] = []
        self._transaction_listeners: list[Callable[[float, TransactionRecord], None]] = []

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(statement, parameters)`` for every statement, before it runs."""
        self._listeners.append(listener)

    def add_transaction_listener(self, listener: Callable[[float, TransactionRecord], None]) -> None:
        """Call ``listener(duration_s, record)`` when a transaction commits or rolls back."""
        self._transaction_listeners.append(listener)

    def attach(self, engine: AsyncEngine) -> None:
        sync = engine.sync_engine
        event.listen(sync, "before_cursor_execute", self._before_cursor_execute)
        event.listen(sync, "begin", self._begin)
        event.listen(sync, "commit", lambda conn: self._end(conn, "commit"))
        event.listen(sync, "rollback", lambda conn: self._end(conn, "rollback"))

    def observe(self, statement: str, parameters: Any = None, transaction: TransactionRecord | None = None) -> None:
        """Count ``statement``; refuse it under policy ``raise`` if it opens a subtransaction."""
        self.statements += 1
        for listener in self._listeners:
            listener(statement, parameters)
        kind = subtransaction_kind(statement)
        if transaction is not None:
            transaction.see(statement, kind)
        if kind is None:
            return
        if kind == "release":
            self.releases += 1
            return
        if kind == "rollback_to":
            self.rollbacks_to += 1
            return
        self.savepoints += 1
        self.last_savepoint_stack = transaction.savepoint_stacks[-1] if transaction else _stack()
        self.sink({"event": "savepoint_detected", "statement": statement, "policy": self.policy,
                   "stack": self.last_savepoint_stack})
        if self.policy == "raise":
            raise SavepointDetected(f"subtransaction refused: {statement}")

    def _before_cursor_execute(self, conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
        self.observe(statement, parameters, conn.info.get(_TX_KEY))

    def _begin(self, conn: Any) -> None:
        conn.info[_TX_KEY] = TransactionRecord()

    def _end(self, conn: Any, result: str) -> None:
        if conn.invalidated:  # the session died (e.g. idle_in_transaction timeout): its info is gone
            return
        record: TransactionRecord | None = conn.info.pop(_TX_KEY, None)
        if record is None:
            return
        duration = time.monotonic() - record.started
        self.transactions += 1
        for listener in self._transaction_listeners:
            listener(duration, record)
        if record.savepoints or record.releases or record.rollbacks_to or duration >= self.long_transaction:
            self.logged_transactions += 1
            self.sink({
                "event": "db_transaction", "result": result, "duration_s": round(duration, 6),
                "long": duration >= self.long_transaction, "savepoints_count": record.savepoints,
                "releases_count": record.releases, "rollbacks_to_count": record.rollbacks_to,
                "sql": record.statements, "savepoint_backtraces": record.savepoint_stacks, "stack": _stack(),
            })
