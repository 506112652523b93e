"""Runners: create and register (token shown once), authenticate, managers, unregister, token reset.

Token forms (runner-api.md 2.1): runners created through the API get ``glrt-t<type>_…``, which
makes the real gitlab-runner use the verify / unregister-manager flow; runners registered with
the registration token get ``t<type>_…`` as current GitLab issues. Only SHA-256 digests are stored.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine

from conveyor.protocol import RunnerInfo
from conveyor.server import auth
from conveyor.server.db import queries, single_statements
from conveyor.server.errors import BadRequest, Forbidden, Gone, NotFound

CONTACT_GRANULARITY = timedelta(seconds=60)  # contacted_at is written at most once a minute
LEGACY_SYSTEM_ID = "<legacy>"  # GitLab's manager for requests without system_id
RUNNER_TYPES = {"instance_type": 1, "group_type": 2, "project_type": 3}  # the t<n>_ token partition
ACCESS_LEVELS = ("not_protected", "ref_protected")
MIN_MAXIMUM_TIMEOUT = 600  # GitLab: "needs to be at least 10 minutes"


@dataclass(frozen=True)
class RunnerOptions:
    """What a runner is allowed to pick; validated as GitLab does (400 otherwise)."""

    description: str = ""
    runner_type: str = "instance_type"
    tag_list: tuple[str, ...] = ()
    run_untagged: bool = True
    locked: bool = False
    paused: bool = False
    access_level: str = "not_protected"
    maximum_timeout: int | None = None

    @classmethod
    def build(cls, *, tag_list: str | Sequence[str] | None = None, **values: Any) -> RunnerOptions:
        """From request fields: ``None`` means the default; tags as a list or "a,b" string."""
        return cls(tag_list=parse_tags(tag_list), **{k: v for k, v in values.items() if v is not None})

    def __post_init__(self) -> None:
        if self.runner_type not in RUNNER_TYPES:
            raise BadRequest("400 Bad request - runner_type does not have a valid value")
        if self.access_level not in ACCESS_LEVELS:
            raise BadRequest("400 Bad request - access_level does not have a valid value")
        if self.maximum_timeout is not None and self.maximum_timeout < MIN_MAXIMUM_TIMEOUT:
            raise BadRequest("400 Bad request - maximum_timeout needs to be at least 10 minutes")
        if not self.run_untagged and not self.tag_list:
            raise BadRequest(
                "400 Bad request - tags_list can not be empty when runner is not allowed to pick untagged jobs"
            )

    def columns(self) -> dict[str, Any]:
        return {**asdict(self), "tag_list": list(self.tag_list)}


def parse_tags(value: str | Sequence[str] | None) -> tuple[str, ...]:
    """``"docker, linux"`` or ``["docker", "linux"]`` -> ``("docker", "linux")``, without duplicates."""
    items = [value] if isinstance(value, str) else list(value or [])
    tags = (tag.strip() for item in items for tag in str(item).split(","))
    return tuple(dict.fromkeys(tag for tag in tags if tag))


@dataclass(frozen=True)
class Registered:
    """A new or re-keyed runner; ``token`` is shown this once."""

    id: int
    token: str
    token_expires_at: datetime | None


@dataclass(frozen=True)
class RunnerContext(Mapping[str, Any]):
    """An authenticated runner and the manager (``system_id``) that sent the request.

    Reads as a mapping too (``runner["id"]``), like the row ``authenticate`` used to return.
    ``features`` are the manager's ``info.features`` (this request's, else the last stored).
    """

    id: int
    manager_id: int | None
    system_id: str
    description: str
    runner_type: str
    paused: bool
    locked: bool
    run_untagged: bool
    tag_list: tuple[str, ...]
    access_level: str
    maximum_timeout: int | None
    token_expires_at: datetime | None
    features: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(
        cls, row: RowMapping, *, manager_id: int | None, system_id: str, features: Mapping[str, Any] | None
    ) -> RunnerContext:
        return cls(
            id=row["id"],
            manager_id=manager_id,
            system_id=system_id,
            description=row["description"],
            runner_type=row["runner_type"],
            paused=row["paused"],
            locked=row["locked"],
            run_untagged=row["run_untagged"],
            tag_list=tuple(row["tag_list"]),
            access_level=row["access_level"],
            maximum_timeout=row["maximum_timeout"],
            token_expires_at=row["token_expires_at"],
            features=dict(features or row["manager_features"] or {}),
        )

    def __getitem__(self, key: str) -> Any:
        if key not in self.__dataclass_fields__:
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(self.__dataclass_fields__)

    def __len__(self) -> int:
        return len(self.__dataclass_fields__)


def _stale(contacted_at: datetime | None, now: datetime) -> bool:
    return contacted_at is None or now - contacted_at > CONTACT_GRANULARITY


class Runners:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._reads = single_statements(engine)  # the polling hot path's lookup: no BEGIN/ROLLBACK

    async def create(self, settings: Mapping[str, Any], *, project_id: int | None = None, namespace_id: int | None = None) -> Registered:
        """A runner created through ``POST /user/runners``: ``glrt-`` token.

        Args:
            settings: ``RunnerOptions`` fields as sent (``None`` = default); 400 when invalid.
            project_id: a project runner's owner project (the caller checked its role there).
            namespace_id: a group runner's group.
        """
        options = RunnerOptions.build(**settings)
        return await self._insert(
            _new_token(options.runner_type, created=True), options, None, None, project_id=project_id, namespace_id=namespace_id
        )

    async def register(
        self,
        registration_token: str,
        settings: Mapping[str, Any],
        *,
        accepted: str | None,
        system_id: str | None = None,
        info: RunnerInfo | None = None,
    ) -> Registered:
        """Legacy registration (``POST /runners``, runner-api.md 2.3): a ``t1_`` token.

        Args:
            registration_token: what the runner presented, compared in constant time.
            settings: as for ``create``; validated after the token, as GitLab does.
            accepted: the instance's registration token; unset means registration is off (410).
            system_id: when sent, the manager is recorded at once.
        """
        if not accepted:
            raise Gone("410 Gone")
        if not auth.matches(registration_token, accepted):
            raise Forbidden("403 Forbidden")
        options = RunnerOptions.build(**settings)
        return await self._insert(_new_token(options.runner_type, created=False), options, system_id, info)

    async def _insert(
        self, token: str, options: RunnerOptions, system_id: str | None, info: RunnerInfo | None,
        *, project_id: int | None = None, namespace_id: int | None = None,
    ) -> Registered:
        async with self._engine.begin() as conn:
            runner_id = await queries.runners.insert(conn, auth.digest(token), **options.columns())
            if options.runner_type == "project_type" and project_id is not None:
                await queries.runner_scopes.add_project(conn, runner_id, project_id)
            elif options.runner_type == "group_type" and namespace_id is not None:
                await queries.runner_scopes.set_namespace(conn, runner_id, namespace_id)
            if system_id:
                await queries.runners.upsert_manager(conn, runner_id, system_id, _info(info))
        return Registered(runner_id, token, None)  # no token lifetime is configured

    async def authenticate(
        self, token: str, system_id: str | None = None, info: RunnerInfo | None = None
    ) -> RunnerContext:
        """The runner owning ``token``, seen through manager ``system_id``; 403 for unknown tokens.

        Records the contact (runner and manager row, ``info``) at most once a minute each, so
        the polling hot path is one SELECT. Paused runners authenticate (the queue answers 204).
        """
        return await self._authenticate(token, system_id, info, heartbeat=False)

    async def verify(self, token: str, system_id: str | None, info: RunnerInfo | None) -> RunnerContext:
        """``POST /runners/verify``: like ``authenticate``, but always stores the manager's info."""
        return await self._authenticate(token, system_id, info, heartbeat=True)

    async def _authenticate(
        self, token: str, system_id: str | None, info: RunnerInfo | None, *, heartbeat: bool
    ) -> RunnerContext:
        manager = system_id or LEGACY_SYSTEM_ID
        async with self._reads.connect() as conn:
            row = await queries.runners.by_token(conn, auth.digest(token), manager)
        if row is None:
            raise Forbidden("403 Forbidden")
        now = datetime.now(UTC)
        manager_id = row["manager_id"]
        touch_runner = heartbeat or _stale(row["contacted_at"], now)
        touch_manager = heartbeat or manager_id is None or _stale(row["manager_contacted_at"], now)
        reported = _info(info)
        if touch_runner or touch_manager:
            # runner row first, then the manager: the same order as a cascading DELETE of the runner
            async with self._engine.begin() as conn:
                if touch_runner:
                    await queries.runners.touch(conn, row["id"], system_id, reported)
                if touch_manager:
                    manager_id = await queries.runners.upsert_manager(conn, row["id"], manager, reported)
        features = reported.get("features") if reported else None
        return RunnerContext.of(row, manager_id=manager_id, system_id=manager, features=features)

    async def with_jobs(self) -> list[tuple[RowMapping, list[RowMapping]]]:
        """Every runner and the jobs it runs now (the runners page)."""
        async with self._engine.connect() as conn:
            return await queries.overview.runners_with_jobs(conn)

    async def unregister(self, token: str) -> None:
        """``DELETE /runners``: the runner and its managers; 403 for unknown tokens."""
        async with self._engine.begin() as conn:
            deleted = await queries.runners.delete(conn, auth.digest(token))
        if deleted is None:
            raise Forbidden("403 Forbidden")

    async def unregister_manager(self, token: str, system_id: str) -> None:
        """``DELETE /runners/managers``: one manager; 403 unknown token, 404 unknown manager."""
        async with self._engine.begin() as conn:
            runner = await queries.runners.by_token(conn, auth.digest(token), system_id)
            if runner is None:
                raise Forbidden("403 Forbidden")
            if not await queries.runners.delete_manager(conn, runner["id"], system_id):
                raise NotFound("404 Runner manager not found")

    async def reset_token(self, token: str) -> Registered:
        """A new token of the same kind; the old one stops working at once. 403 for unknown tokens."""
        async with self._engine.begin() as conn:
            runner = await queries.runners.by_token(conn, auth.digest(token))
            if runner is None:
                raise Forbidden("403 Forbidden")
            new = _new_token(runner["runner_type"], created=token.startswith(auth.RUNNER_PREFIX))
            # no token lifetime is configured: the new token does not expire
            row = await queries.runners.replace_token(conn, runner["id"], auth.digest(token), auth.digest(new), None)
        if row is None:  # a concurrent reset replaced it first
            raise Forbidden("403 Forbidden")
        return Registered(runner["id"], new, row["token_expires_at"])


def _new_token(runner_type: str, *, created: bool) -> str:
    partition = f"t{RUNNER_TYPES[runner_type]}_"
    return auth.generate((auth.RUNNER_PREFIX if created else "") + partition)


def _info(info: RunnerInfo | None) -> dict[str, Any] | None:
    return info.model_dump(mode="json") if info else None
