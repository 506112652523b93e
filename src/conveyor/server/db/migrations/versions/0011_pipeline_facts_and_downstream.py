"""pipelines: the facts the predefined variables need (iid, source, before SHA, tag, commit,
user) and the links of downstream pipelines (parent pipeline, source bridge job);
projects.last_pipeline_iid; jobs.coverage; environments and deployments

Revision ID: 0011
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

revision = '0011'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # source, before_sha and tag came with 0009 (pipelines that start themselves)
    op.add_column("projects", sa.Column("last_pipeline_iid", sa.BigInteger, nullable=False, server_default="0"))
    op.add_column("pipelines", sa.Column("iid", sa.BigInteger))
    op.add_column("pipelines", sa.Column("commit", JSONB))
    op.add_column("pipelines", sa.Column("user", JSONB))
    op.add_column(
        "pipelines",
        sa.Column("parent_pipeline_id", sa.BigInteger, sa.ForeignKey("pipelines.id", ondelete="SET NULL")),
    )
    op.add_column(
        "pipelines",
        sa.Column("source_job_id", sa.BigInteger, sa.ForeignKey("jobs.id", ondelete="SET NULL")),
    )
    op.create_index("ix_pipelines_source_job_id", "pipelines", ["source_job_id"])
    op.add_column("jobs", sa.Column("coverage", sa.Float))
    op.add_column("jobs", sa.Column("downstream_errors", ARRAY(sa.Text)))
    op.create_index(
        "ix_jobs_active_bridges", "jobs", ["status"],
        postgresql_where=sa.text("(spec ->> 'trigger') IS NOT NULL AND status IN ('pending', 'running', 'manual')"),
    )
    op.create_index(
        "ix_pipelines_active_downstream", "pipelines", ["source_job_id"],
        postgresql_where=sa.text("source_job_id IS NOT NULL AND status NOT IN ('success', 'failed', 'canceled', 'skipped')"),
    )
    op.create_table(
        "environments",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("project_id", sa.BigInteger, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("slug", sa.Text, nullable=False),
        sa.Column("tier", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
        sa.UniqueConstraint("project_id", "name"),
    )
    op.create_table(
        "deployments",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("project_id", sa.BigInteger, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
        sa.Column("environment_id", sa.BigInteger, sa.ForeignKey("environments.id", ondelete="CASCADE"), nullable=False, index=True),
        sa.Column("job_id", sa.BigInteger, sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False, unique=True),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("url", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
    )


def downgrade() -> None:
    op.drop_index("ix_pipelines_active_downstream", "pipelines")
    op.drop_index("ix_jobs_active_bridges", "jobs")
    op.drop_table("deployments")
    op.drop_table("environments")
    op.drop_column("jobs", "downstream_errors")
    op.drop_column("jobs", "coverage")
    op.drop_index("ix_pipelines_source_job_id", "pipelines")
    for column in ("source_job_id", "parent_pipeline_id", "user", "commit", "iid"):
        op.drop_column("pipelines", column)
    op.drop_column("projects", "last_pipeline_iid")
