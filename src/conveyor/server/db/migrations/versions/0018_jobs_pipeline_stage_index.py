"""ix_jobs_pipeline_id_stage_idx: a claimed job's dependencies (its pipeline's earlier stages)
found without walking the pipeline's other jobs (issue 24: a claim read every job of a
10,000-job pipeline once dotenv variables joined the lookup)

Revision ID: 0018
Revises: 0016
"""

import sqlalchemy as sa
from alembic import op

revision = '0018'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_jobs_pipeline_id_stage_idx", "jobs", ["pipeline_id", "stage_idx"], postgresql_where=sa.text("NOT retried"))


def downgrade() -> None:
    op.drop_index("ix_jobs_pipeline_id_stage_idx", table_name="jobs")
