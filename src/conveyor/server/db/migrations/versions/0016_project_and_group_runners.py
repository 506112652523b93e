"""Project and group runners: runner_projects (the projects a project runner serves, the first one
its owner; GitLab's ``ci_runner_projects``) and runner_namespaces (a group runner's group;
``ci_runner_namespaces``)

Revision ID: 0016
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "runner_projects",
        sa.Column("id", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("runner_id", sa.BigInteger, nullable=False),
        sa.Column("project_id", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["runner_id"], ["runners.id"], name="fk_runner_projects_runner_id_runners", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name="fk_runner_projects_project_id_projects", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_runner_projects"),
        sa.UniqueConstraint("runner_id", "project_id", name="uq_runner_projects_runner_id_project_id"),
    )
    op.create_index("ix_runner_projects_project_id", "runner_projects", ["project_id"])
    op.create_table(
        "runner_namespaces",
        sa.Column("runner_id", sa.BigInteger, nullable=False),
        sa.Column("namespace_id", sa.BigInteger, nullable=False),
        sa.ForeignKeyConstraint(["runner_id"], ["runners.id"], name="fk_runner_namespaces_runner_id_runners", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["namespace_id"], ["namespaces.id"], name="fk_runner_namespaces_namespace_id_namespaces", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("runner_id", name="pk_runner_namespaces"),
    )
    op.create_index("ix_runner_namespaces_namespace_id", "runner_namespaces", ["namespace_id"])


def downgrade() -> None:
    op.drop_table("runner_namespaces")
    op.drop_table("runner_projects")
