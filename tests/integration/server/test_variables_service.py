"""The variables service against PostgreSQL: values encrypted at rest, a key moved onto a taken
scope refused in GitLab's words, without a subtransaction."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from conveyor.server.db import StatementObserver, create_engine, queries
from conveyor.server.db.tables import project_variables
from conveyor.server.errors import Invalid
from conveyor.server.variables import SecretBox, Variables
from conveyor.server.variables.rules import Attributes

pytestmark = pytest.mark.integration


@pytest.fixture
async def engine(database_url: str):  # noqa: ANN201
    engine = create_engine(database_url, StatementObserver("raise"), pool_size=2)
    yield engine
    await engine.dispose()


async def test_values_are_encrypted_and_scope_clashes_refused(engine) -> None:  # noqa: ANN001
    async with engine.begin() as conn:
        project = await queries.projects.insert(conn, "p", "/nowhere", "main")
    service = Variables(engine, SecretBox(Fernet.generate_key().decode()))
    await service.create(project["id"], Attributes("TOKEN", "deploy-token-value", masked=True))
    await service.create(project["id"], Attributes("TOKEN", "prod-token-value", environment_scope="production"))
    async with engine.connect() as conn:
        stored = list((await conn.execute(sa.select(project_variables.c.value))).scalars())
    assert all("token-value" not in value for value in stored)
    with pytest.raises(Invalid) as clash:
        await service.update(project["id"], "TOKEN", "*", {"environment_scope": "production"})
    assert clash.value.details == {"key": ["(TOKEN) has already been taken"]}
    assert (await service.get(project["id"], "TOKEN", "*"))["value"] == "deploy-token-value"
