"""jobs.dotenv_variables: the variables of a job's ``artifacts:reports:dotenv`` report
(GitLab's ``ci_job_variables`` with source ``dotenv``), kept after the artifact expires;
environments.stopped_at: an environment stopped without a stop job

Revision ID: 0015
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = '0015'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("dotenv_variables", JSONB))
    op.add_column("environments", sa.Column("stopped_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    op.drop_column("environments", "stopped_at")
    op.drop_column("jobs", "dotenv_variables")
