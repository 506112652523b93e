"""pipeline states: retried jobs, delayed jobs, resource groups, auto-cancel

Revision ID: 0003
Revises: 0002
"""

from alembic import op
import sqlalchemy as sa

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('pipelines', sa.Column('auto_canceled_by_id', sa.BigInteger(), nullable=True))
    op.create_foreign_key(
        op.f('fk_pipelines_auto_canceled_by_id_pipelines'), 'pipelines', 'pipelines',
        ['auto_canceled_by_id'], ['id'], ondelete='SET NULL',
    )
    op.create_index('ix_pipelines_project_id_ref_id', 'pipelines', ['project_id', 'ref', 'id'], unique=False)

    op.add_column('jobs', sa.Column('scheduled_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('jobs', sa.Column('retried', sa.Boolean(), server_default=sa.text('false'), nullable=False))
    op.add_column('jobs', sa.Column('resource_group', sa.Text(), nullable=True))
    op.execute("UPDATE jobs SET resource_group = spec->>'resource_group' WHERE spec ? 'resource_group'")
    op.drop_constraint('uq_jobs_pipeline_id_name', 'jobs', type_='unique')
    op.create_index(
        'ix_jobs_pipeline_id_name', 'jobs', ['pipeline_id', 'name'], unique=True,
        postgresql_where=sa.text('NOT retried'),
    )
    op.create_index(
        'ix_jobs_scheduled_at', 'jobs', ['scheduled_at'], unique=False,
        postgresql_where=sa.text("status = 'scheduled'"),
    )
    op.create_index(
        'ix_jobs_waiting_for_resource', 'jobs', ['project_id', 'resource_group', 'id'], unique=False,
        postgresql_where=sa.text("status = 'waiting_for_resource'"),
    )

    op.create_table(
        'resource_groups',
        sa.Column('project_id', sa.BigInteger(), nullable=False),
        sa.Column('key', sa.Text(), nullable=False),
        sa.Column('holder_job_id', sa.BigInteger(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.ForeignKeyConstraint(
            ['holder_job_id'], ['jobs.id'], name=op.f('fk_resource_groups_holder_job_id_jobs'), ondelete='SET NULL'
        ),
        sa.ForeignKeyConstraint(
            ['project_id'], ['projects.id'], name=op.f('fk_resource_groups_project_id_projects'), ondelete='CASCADE'
        ),
        sa.PrimaryKeyConstraint('project_id', 'key', name=op.f('pk_resource_groups')),
    )


def downgrade() -> None:
    op.drop_table('resource_groups')
    op.drop_index('ix_jobs_waiting_for_resource', table_name='jobs')
    op.drop_index('ix_jobs_scheduled_at', table_name='jobs')
    op.drop_index('ix_jobs_pipeline_id_name', table_name='jobs')
    op.execute("DELETE FROM jobs WHERE retried")
    op.create_unique_constraint('uq_jobs_pipeline_id_name', 'jobs', ['pipeline_id', 'name'])
    op.drop_column('jobs', 'resource_group')
    op.drop_column('jobs', 'retried')
    op.drop_column('jobs', 'scheduled_at')
    op.drop_index('ix_pipelines_project_id_ref_id', table_name='pipelines')
    op.drop_constraint(op.f('fk_pipelines_auto_canceled_by_id_pipelines'), 'pipelines', type_='foreignkey')
    op.drop_column('pipelines', 'auto_canceled_by_id')
