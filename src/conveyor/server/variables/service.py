"""CRUD of instance and project CI/CD variables, as GitLab's variables API behaves (rest-api.md 2.7).

``project_id`` None means the instance level (no environment scope, no hidden variables).
Values are encrypted before they reach the database and decrypted only to answer a maintainer
(every admin-token caller here) or to build a job's payload; hidden ones never leave again.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine

from conveyor.server.db import queries
from conveyor.server.errors import Conflict, NotFound
from conveyor.server.variables import rules
from conveyor.server.variables.crypto import SecretBox

AMBIGUOUS = "There are multiple variables with provided parameters. Please use 'filter[environment_scope]'"
_FIELDS = ("variable_type", "protected", "masked", "raw", "environment_scope", "description")


class Variables:
    def __init__(self, engine: AsyncEngine, box: SecretBox) -> None:
        self._engine = engine
        self._box = box

    async def list(self, project_id: int | None, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
        """One page of the variables and how many there are."""
        async with self._engine.connect() as conn:
            rows, total = await queries.variables.list_for(conn, project_id, limit, offset)
        return [self.present(row, project_id) for row in rows], total

    async def get(self, project_id: int | None, key: str, scope: str | None = None) -> dict[str, Any]:
        return self.present(await self._one(project_id, key, scope), project_id)

    async def create(self, project_id: int | None, attrs: rules.Attributes) -> dict[str, Any]:
        rules.check(attrs)
        values = {
            "key": attrs.key, "value": self._box.encrypt(attrs.value), "hidden": attrs.hidden,
            **{name: getattr(attrs, name) for name in _FIELDS},
        }
        async with self._engine.begin() as conn:
            row = await queries.variables.insert(conn, project_id, values)
        if row is None:
            raise rules.taken(attrs.key)
        return self.present(row, project_id)

    async def update(
        self, project_id: int | None, key: str, scope: str | None, changes: dict[str, Any], hidden: bool | None = None
    ) -> dict[str, Any]:
        """Apply ``changes`` (attribute -> new value; ``value`` in clear) to the variable."""
        row = await self._one(project_id, key, scope)
        current_hidden = bool(row.get("hidden", False))
        rules.hidden_is_fixed(hidden, current_hidden, changes.get("masked"))
        value = changes["value"] if "value" in changes else self._box.decrypt(row["value"])
        merged = {name: changes.get(name, row.get(name)) for name in _FIELDS}
        attrs = rules.Attributes(
            key=changes.get("key", key), value=value, hidden=current_hidden,
            **{k: v for k, v in merged.items() if v is not None},
        )
        rules.check(attrs)
        values = {**{k: v for k, v in merged.items() if k in changes}, "key": attrs.key}
        if "value" in changes:
            values["value"] = self._box.encrypt(value)
        async with self._engine.begin() as conn:
            updated = await queries.variables.update(conn, project_id, row["id"], values)
        if updated is None:
            raise rules.taken(attrs.key)
        return self.present(updated, project_id)

    async def delete(self, project_id: int | None, key: str, scope: str | None = None) -> None:
        row = await self._one(project_id, key, scope)
        async with self._engine.begin() as conn:
            await queries.variables.delete(conn, project_id, row["id"])

    async def _one(self, project_id: int | None, key: str, scope: str | None) -> RowMapping:
        async with self._engine.connect() as conn:
            rows = await queries.variables.find(conn, project_id, key, scope)
        if not rows:
            raise NotFound("404 Variable Not Found")
        if len(rows) > 1:
            raise Conflict(AMBIGUOUS)
        return rows[0]

    def present(self, row: RowMapping, project_id: int | None) -> dict[str, Any]:
        """GitLab's variable object: ``value`` null for a hidden variable."""
        hidden = bool(row.get("hidden", False))
        body: dict[str, Any] = {
            "key": row["key"],
            "value": None if hidden else self._box.decrypt(row["value"]),
            "variable_type": row["variable_type"],
            "protected": row["protected"],
            "masked": row["masked"],
            "raw": row["raw"],
            "description": row["description"],
        }
        if project_id is not None:
            body["hidden"] = hidden
            body["environment_scope"] = row["environment_scope"]
        return body
