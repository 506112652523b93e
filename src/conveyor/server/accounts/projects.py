"""Projects: add (name + git source, in a namespace), look up by id, name or full path."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote

from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine

from conveyor.server.db import queries, single_statements
from conveyor.server.errors import BadRequest, Conflict, Invalid, NotFound
from conveyor.server.sources import GitSources
from conveyor.server.sources.git import is_remote


class Projects:
    def __init__(self, engine: AsyncEngine, sources: GitSources) -> None:
        self._engine = engine
        self._reads = single_statements(engine)  # one SELECT needs no BEGIN and ROLLBACK round trips
        self._sources = sources

    async def add(self, name: str | None, source: str, namespace_id: int = 1) -> RowMapping:
        """Register a repository. Local paths are made absolute and must be git repositories."""
        if not source:
            raise BadRequest("400 Bad request - source is missing")
        if not is_remote(source) and not source.startswith("file://"):
            path = Path(source).expanduser().resolve()
            if not (path / ".git").exists() and not (path / "HEAD").exists():
                raise BadRequest(f"400 Bad request - {source} is not a git repository")
            source = str(path)
        name = name or _default_name(source)
        branch = await self._sources.default_branch(source)
        async with self._engine.begin() as conn:
            project = await queries.projects.insert(conn, name, source, branch, namespace_id)
        if project is None:
            raise Conflict(f"Project name {name!r} has already been taken")
        return project

    async def get(self, id_or_name: str) -> RowMapping:
        """By id, name, or full path (``group/project``, also still URL-encoded): 404 otherwise."""
        id_or_name = unquote(id_or_name)
        key: int | str = int(id_or_name) if id_or_name.isdigit() else id_or_name
        async with self._reads.connect() as conn:  # every project route asks
            project = await queries.projects.get(conn, key)
        if project is None:
            raise NotFound("404 Project Not Found")
        return project

    async def page(
        self, search: str | None, order_by: str, sort: str, limit: int, offset: int, ids: set[int] | None = None
    ) -> tuple[list[RowMapping], int]:
        """A page of projects matching ``search`` (in the name), among ``ids`` if given, and how many match."""
        async with self._engine.connect() as conn:
            return await queries.browse.projects_page(conn, search, order_by, sort, limit, offset, ids)

    async def update(self, project: RowMapping, changes: dict[str, str]) -> RowMapping:
        """Rename, or point at another default branch or source; 400 when the name is taken."""
        if "source" in changes:
            source = changes["source"]
            changes = {**changes, "source": source if is_remote(source) else str(Path(source).expanduser().resolve())}
        async with self._engine.begin() as conn:
            row = await queries.projects.update(conn, project["id"], changes)
        if row is None:
            raise Invalid({"name": ["has already been taken"], "path": ["has already been taken"]})
        return row

    async def delete(self, project_id: int) -> None:
        async with self._engine.begin() as conn:
            await queries.projects.delete(conn, project_id)

    async def list(self) -> list[RowMapping]:
        async with self._engine.connect() as conn:
            return await queries.projects.list_all(conn)


def _default_name(source: str) -> str:
    tail = source.rstrip("/").rsplit("/", 1)[-1]
    return tail.removesuffix(".git") or "project"
