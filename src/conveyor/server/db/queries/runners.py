"""Runners and their managers: tokens (hashed), settings, contact time, reported info.

A runner manager is one ``gitlab-runner`` process (one ``system_id``) using a runner's token;
GitLab keeps one row per (runner, system_id) and records each manager's version and features.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from conveyor.server.db.tables import runner_managers, runners

_MANAGER_INFO = ("version", "revision", "platform", "architecture", "executor", "features")


def _token_valid() -> sa.ColumnElement[bool]:
    return sa.or_(runners.c.token_expires_at.is_(None), runners.c.token_expires_at > sa.func.now())


# The job-request hot path's lookup, built once: a statement object keeps its cache key, so each
# request skips building the statement and hashing its structure (bound values: ``:token_hash``,
# ``:system_id``). issue 24: SQLAlchemy's statement building was a quarter of the server's CPU.
_BY_TOKEN = sa.select(runners).where(runners.c.token_hash == sa.bindparam("token_hash"), _token_valid())
_BY_TOKEN_WITH_MANAGER = (
    sa.select(
        runners,
        runner_managers.c.id.label("manager_id"),
        runner_managers.c.contacted_at.label("manager_contacted_at"),
        runner_managers.c.features.label("manager_features"),
    )
    .select_from(runners.outerjoin(runner_managers, sa.and_(
        runner_managers.c.runner_id == runners.c.id, runner_managers.c.system_id == sa.bindparam("system_id"))))
    .where(runners.c.token_hash == sa.bindparam("token_hash"), _token_valid())
)


async def insert(conn: AsyncConnection, token_hash: str, description: str = "", **settings: Any) -> int:
    """A new runner; ``settings`` are other runners columns (runner_type, tag_list, paused, ...)."""
    stmt = runners.insert().values(token_hash=token_hash, description=description, **settings).returning(runners.c.id)
    return (await conn.execute(stmt)).scalar_one()


async def by_token(conn: AsyncConnection, token_hash: str, system_id: str | None = None) -> RowMapping | None:
    """The runner of an unexpired token, with its manager ``system_id`` if one is given.

    One statement: the job-request hot path reads runner and manager together. Extra columns
    with ``system_id``: ``manager_id``, ``manager_contacted_at``, ``manager_features`` (NULL
    when that manager does not exist yet).
    """
    if system_id is None:
        return (await conn.execute(_BY_TOKEN, {"token_hash": token_hash})).mappings().first()
    params = {"token_hash": token_hash, "system_id": system_id}
    return (await conn.execute(_BY_TOKEN_WITH_MANAGER, params)).mappings().first()


async def touch(conn: AsyncConnection, runner_id: int, system_id: str | None, info: dict[str, Any] | None) -> None:
    """The runner's contact time, and the last manager's system_id, version and features."""
    values: dict[str, Any] = {"contacted_at": sa.func.now()}
    if system_id:
        values["system_id"] = system_id
    if info:
        values.update(version=info.get("version"), executor=info.get("executor"), features=info.get("features"))
    await conn.execute(runners.update().where(runners.c.id == runner_id).values(**values))


async def upsert_manager(conn: AsyncConnection, runner_id: int, system_id: str, info: dict[str, Any] | None) -> int:
    """Create or refresh the manager (runner_id, system_id); returns its id.

    Sets ``contacted_at``; the info columns only when ``info`` was sent, so a request without
    ``info`` keeps what an earlier one reported.
    """
    reported = {key: (info.get(key) or None) for key in _MANAGER_INFO} if info else {}
    stmt = pg_insert(runner_managers).values(
        runner_id=runner_id, system_id=system_id, contacted_at=sa.func.now(), **reported
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[runner_managers.c.runner_id, runner_managers.c.system_id],
        set_={"contacted_at": stmt.excluded.contacted_at, **{key: stmt.excluded[key] for key in reported}},
    ).returning(runner_managers.c.id)
    return (await conn.execute(stmt)).scalar_one()


async def delete(conn: AsyncConnection, token_hash: str) -> int | None:
    """Delete the runner of an unexpired token (its managers go with it); its id, or None."""
    stmt = runners.delete().where(runners.c.token_hash == token_hash, _token_valid()).returning(runners.c.id)
    return (await conn.execute(stmt)).scalar_one_or_none()


async def delete_manager(conn: AsyncConnection, runner_id: int, system_id: str) -> bool:
    stmt = (
        runner_managers.delete()
        .where(runner_managers.c.runner_id == runner_id, runner_managers.c.system_id == system_id)
        .returning(runner_managers.c.id)
    )
    return (await conn.execute(stmt)).first() is not None


async def replace_token(
    conn: AsyncConnection, runner_id: int, old_hash: str, new_hash: str, expires_at: datetime | None
) -> RowMapping | None:
    """Swap the token if it is still ``old_hash`` (a concurrent reset wins once); token_expires_at or None."""
    stmt = (
        runners.update()
        .where(runners.c.id == runner_id, runners.c.token_hash == old_hash)
        .values(token_hash=new_hash, token_expires_at=expires_at)
        .returning(runners.c.token_expires_at)
    )
    return (await conn.execute(stmt)).mappings().first()


async def get(conn: AsyncConnection, runner_id: int) -> RowMapping | None:
    return (await conn.execute(sa.select(runners).where(runners.c.id == runner_id))).mappings().first()


async def update(conn: AsyncConnection, runner_id: int, values: dict[str, Any]) -> RowMapping | None:
    """Change a runner's settings (description, paused, tag_list, ...); the row, or None."""
    stmt = runners.update().where(runners.c.id == runner_id).values(**values).returning(*runners.c)
    return (await conn.execute(stmt)).mappings().first()


async def delete_by_id(conn: AsyncConnection, runner_id: int) -> bool:
    stmt = runners.delete().where(runners.c.id == runner_id).returning(runners.c.id)
    return (await conn.execute(stmt)).first() is not None


async def managers(conn: AsyncConnection, runner_id: int) -> list[RowMapping]:
    stmt = sa.select(runner_managers).where(runner_managers.c.runner_id == runner_id).order_by(runner_managers.c.id)
    return list((await conn.execute(stmt)).mappings())
