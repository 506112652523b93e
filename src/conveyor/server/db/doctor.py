"""``conveyor doctor postgres``: the subtransaction danger, read from any PostgreSQL 13 to 17.

Each check runs against one server (the primary or a replica, named by URL) and returns a
``Finding`` at level ``ok``, ``warning`` or ``danger``; the worst level is the command's exit code
(0, 1, 2). What is checked and why is in ``../shared/spec/postgres-subtransactions.md``:

- ``long_transactions`` / ``idle_in_transaction``: the long transaction is half of the trigger;
- ``subtrans_waits``: sessions waiting on the subtransaction SLRU, under each version's names
  (``SubtransControlLock``/``subtrans`` up to 12, ``SubtransSLRU``/``SubtransBuffer`` from 13);
- ``subtrans_slru``: the ``pg_stat_slru`` hit ratio (row ``Subtrans`` before 17, ``subtransaction`` from 17);
- ``subxact_backends`` (16+): ``pg_stat_get_backend_subxact`` per *backend id* from
  ``pg_stat_get_backend_idset()`` (not a pid): a cache in use, or overflowed past 64 (its columns
  are ``subxact_count`` and ``subxact_overflowed``, whatever some write-ups say);
- ``replication``: lag and paused replay, from the replica's side or the primary's
  (``pg_stat_replication``);
- ``subtransaction_buffers`` (17+), and the fixed 32 pages before it;
- ``exception_blocks``: PL/pgSQL functions with an ``EXCEPTION`` block, and triggers that run one
  (every write through such a trigger opens a subtransaction).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

import asyncpg

LEVELS = ("ok", "warning", "danger")
SUBXACT_CACHE = 64  # PGPROC_MAX_CACHED_SUBXIDS


@dataclass(frozen=True)
class Thresholds:
    long_transaction: float = 60.0  # seconds: warning; 10x: danger
    idle_in_transaction: float = 30.0  # seconds: warning; 10x: danger
    replica_lag: float = 30.0  # seconds: warning; 10x: danger
    slru_hit_ratio: float = 0.95  # below it (with reads): warning


@dataclass
class Finding:
    check: str
    level: str
    summary: str
    details: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Report:
    url: str
    role: str = "unreachable"
    version: str = ""
    findings: list[Finding] = field(default_factory=list)

    @property
    def level(self) -> str:
        return max((f.level for f in self.findings), key=LEVELS.index, default="ok")

    def as_dict(self) -> dict[str, Any]:
        return {"url": self.url, "role": self.role, "version": self.version, "level": self.level,
                "findings": [asdict(f) for f in self.findings]}


def wait_events(version_num: int) -> tuple[str, ...]:
    """The wait events of sessions waiting on the subtransaction SLRU, by server version."""
    return ("SubtransControlLock", "subtrans") if version_num < 130000 else ("SubtransSLRU", "SubtransBuffer")


def slru_name(version_num: int) -> str:
    return "subtransaction" if version_num >= 170000 else "Subtrans"


def safe_url(url: str) -> str:
    return re.sub(r"//([^:@/]*):[^@/]*@", r"//\1:***@", url)


def _plain(url: str) -> str:
    for prefix in ("postgresql+asyncpg://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix):]
    return url


async def examine(url: str, thresholds: Thresholds = Thresholds()) -> Report:
    """Every check against the server at ``url``; an unreachable server is one ``danger`` finding."""
    report = Report(safe_url(url))
    try:
        conn = await asyncpg.connect(_plain(url), timeout=10, server_settings={
            "application_name": "conveyor-doctor", "statement_timeout": "10000"})
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        report.findings.append(Finding("connection", "danger", f"cannot connect: {type(exc).__name__}: {exc}"))
        return report
    try:
        version_num = int(await conn.fetchval("SHOW server_version_num"))
        report.version = await conn.fetchval("SHOW server_version")
        replica = await conn.fetchval("SELECT pg_is_in_recovery()")
        report.role = "replica" if replica else "primary"
        for check in (_long_transactions, _idle_in_transaction, _subtrans_waits, _subtrans_slru,
                      _subxact_backends, _replication, _subtransaction_buffers, _exception_blocks):
            report.findings.append(await check(conn, version_num, replica, thresholds))
    finally:
        await conn.close()
    return report


def _graded(value: float, warning: float) -> str:
    return "danger" if value >= warning * 10 else "warning" if value >= warning else "ok"


async def _long_transactions(conn: asyncpg.Connection, _v: int, _r: bool, t: Thresholds) -> Finding:
    rows = await conn.fetch(
        "SELECT pid, datname, usename, application_name, state, backend_type, "
        "EXTRACT(EPOCH FROM now() - xact_start)::float8 AS age_s, backend_xid IS NOT NULL AS wrote, left(query, 120) AS query "
        "FROM pg_stat_activity WHERE xact_start IS NOT NULL AND pid <> pg_backend_pid() "
        "AND now() - xact_start >= make_interval(secs => $1) ORDER BY xact_start", t.long_transaction)
    details = [dict(row) for row in rows]
    level = max((_graded(d["age_s"], t.long_transaction) for d in details), key=LEVELS.index, default="ok")
    oldest = f", oldest {details[0]['age_s']:.0f} s (pid {details[0]['pid']})" if details else ""
    return Finding("long_transactions", level, f"{len(details)} transaction(s) open >= {t.long_transaction:g} s{oldest}", details)


async def _idle_in_transaction(conn: asyncpg.Connection, _v: int, _r: bool, t: Thresholds) -> Finding:
    rows = await conn.fetch(
        "SELECT pid, datname, application_name, state, EXTRACT(EPOCH FROM now() - state_change)::float8 AS idle_s, "
        "left(query, 120) AS last_query FROM pg_stat_activity "
        "WHERE state LIKE 'idle in transaction%' AND now() - state_change >= make_interval(secs => $1) "
        "ORDER BY state_change", t.idle_in_transaction)
    details = [dict(row) for row in rows]
    level = max((_graded(d["idle_s"], t.idle_in_transaction) for d in details), key=LEVELS.index, default="ok")
    return Finding("idle_in_transaction", level, f"{len(details)} session(s) idle in transaction >= {t.idle_in_transaction:g} s", details)


async def _subtrans_waits(conn: asyncpg.Connection, version_num: int, _r: bool, _t: Thresholds) -> Finding:
    events = list(wait_events(version_num))
    rows = await conn.fetch(
        "SELECT wait_event_type, wait_event, count(*) AS sessions FROM pg_stat_activity "
        "WHERE wait_event = ANY($1::text[]) GROUP BY 1, 2", events)
    waiting = sum(row["sessions"] for row in rows)
    return Finding("subtrans_waits", "danger" if waiting else "ok",
                   f"{waiting} session(s) waiting on {' / '.join(events)}",
                   [{"wait_events": events}, *(dict(row) for row in rows)])


async def _subtrans_slru(conn: asyncpg.Connection, version_num: int, _r: bool, t: Thresholds) -> Finding:
    name = slru_name(version_num)
    row = await conn.fetchrow(
        "SELECT name, blks_zeroed, blks_hit, blks_read, blks_written, blks_exists, flushes, truncates, stats_reset::text "
        "FROM pg_stat_slru WHERE name = $1", name)
    if row is None:
        return Finding("subtrans_slru", "warning", f"pg_stat_slru has no row {name!r}")
    hit, read = row["blks_hit"], row["blks_read"]
    ratio = hit / (hit + read) if hit + read else None
    level = "warning" if ratio is not None and read and ratio < t.slru_hit_ratio else "ok"
    shown = "no lookups yet" if ratio is None else f"hit ratio {ratio:.4f} ({read} block reads)"
    return Finding("subtrans_slru", level, f"pg_stat_slru {name!r}: {shown}", [{**dict(row), "hit_ratio": ratio}])


async def _subxact_backends(conn: asyncpg.Connection, version_num: int, _r: bool, _t: Thresholds) -> Finding:
    if version_num < 160000:
        return Finding("subxact_backends", "ok", "pg_stat_get_backend_subxact needs PostgreSQL 16+: not checked")
    rows = await conn.fetch(
        "SELECT b.id AS backend_id, pg_stat_get_backend_pid(b.id) AS pid, s.subxact_count, s.subxact_overflowed, "
        "a.datname, a.application_name, a.state, EXTRACT(EPOCH FROM now() - a.xact_start)::float8 AS xact_age_s, "
        "left(a.query, 120) AS query "
        "FROM pg_stat_get_backend_idset() AS b(id) "
        "CROSS JOIN LATERAL pg_stat_get_backend_subxact(b.id) AS s "
        "LEFT JOIN pg_stat_activity a ON a.pid = pg_stat_get_backend_pid(b.id) "
        "WHERE s.subxact_count > 0 OR s.subxact_overflowed")
    details = [dict(row) for row in rows]
    overflowed = [d for d in details if d["subxact_overflowed"]]
    level = "danger" if overflowed else "warning" if details else "ok"
    return Finding("subxact_backends", level,
                   f"{len(details)} backend(s) inside subtransactions, {len(overflowed)} overflowed past {SUBXACT_CACHE}", details)


async def _replication(conn: asyncpg.Connection, _v: int, replica: bool, t: Thresholds) -> Finding:
    if replica:
        row = await conn.fetchrow(
            "SELECT pg_last_wal_receive_lsn()::text AS received, pg_last_wal_replay_lsn()::text AS replayed, "
            "pg_is_wal_replay_paused() AS paused, "
            "CASE WHEN pg_last_wal_receive_lsn() IS NULL OR pg_last_wal_receive_lsn() <= pg_last_wal_replay_lsn() THEN 0 "
            "ELSE COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0) END::float8 AS lag_s, "
            "(SELECT status FROM pg_stat_wal_receiver) AS receiver")
        details = [dict(row)]
        level = _graded(row["lag_s"], t.replica_lag)
        if row["paused"] and level == "ok":
            level = "warning"
        if row["receiver"] is None:
            level = "danger" if level == "danger" else "warning"
        paused = ", replay paused" if row["paused"] else ""
        return Finding("replication", level, f"replica {row['lag_s']:.1f} s behind{paused}, receiver {row['receiver'] or 'not running'}", details)
    rows = await conn.fetch(
        "SELECT application_name, client_addr::text, state, sync_state, "
        "pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::float8 AS replay_lag_bytes, "
        "COALESCE(EXTRACT(EPOCH FROM replay_lag), 0)::float8 AS replay_lag_s FROM pg_stat_replication")
    details = [dict(row) for row in rows]
    level = max((_graded(d["replay_lag_s"], t.replica_lag) for d in details), key=LEVELS.index, default="ok")
    return Finding("replication", level, f"primary with {len(details)} streaming replica(s)", details)


async def _subtransaction_buffers(conn: asyncpg.Connection, version_num: int, _r: bool, _t: Thresholds) -> Finding:
    if version_num < 170000:
        return Finding("subtransaction_buffers", "ok",
                       "fixed at 32 pages (65,536 xids) before PostgreSQL 17: a long transaction plus overflow thrashes it")
    value = await conn.fetchval("SHOW subtransaction_buffers")
    shared = await conn.fetchval("SHOW shared_buffers")
    return Finding("subtransaction_buffers", "ok", f"subtransaction_buffers = {value} (0 = shared_buffers/512; shared_buffers = {shared})",
                   [{"subtransaction_buffers": value, "shared_buffers": shared}])


async def _exception_blocks(conn: asyncpg.Connection, _v: int, _r: bool, _t: Thresholds) -> Finding:
    functions = await conn.fetch(
        "SELECT p.oid::regprocedure::text AS function, n.nspname AS schema FROM pg_proc p "
        "JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_language l ON l.oid = p.prolang "
        "WHERE l.lanname = 'plpgsql' AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
        "AND p.prosrc ~* '\\mEXCEPTION\\M\\s+WHEN\\M'")
    triggers = await conn.fetch(
        "SELECT t.tgname AS trigger, t.tgrelid::regclass::text AS \"table\", t.tgfoid::regprocedure::text AS function "
        "FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid JOIN pg_language l ON l.oid = p.prolang "
        "WHERE NOT t.tgisinternal AND l.lanname = 'plpgsql' AND p.prosrc ~* '\\mEXCEPTION\\M\\s+WHEN\\M'")
    details = [{"kind": "function", **dict(row)} for row in functions] + [{"kind": "trigger", **dict(row)} for row in triggers]
    level = "danger" if triggers else "warning" if functions else "ok"
    return Finding("exception_blocks", level,
                   f"{len(functions)} PL/pgSQL function(s) with EXCEPTION blocks, {len(triggers)} trigger(s) running one", details)


async def examine_all(urls: list[str], thresholds: Thresholds = Thresholds()) -> list[Report]:
    """One report per URL, in order (the primary first, by convention)."""
    return [await examine(url, thresholds) for url in urls]


def exit_code(reports: list[Report]) -> int:
    """0 all fine, 1 a warning, 2 danger (or a server that cannot be reached)."""
    return max((LEVELS.index(report.level) for report in reports), default=0)
