"""pipelines that start themselves, with secrets: variables, triggers, schedules, sources, hooks

CI/CD variables (instance, project; values Fernet-encrypted), pipeline trigger tokens (digests),
pipeline schedules and their variables, per-project push-webhook secret and polling state, the
push events seen (deduplication), project hooks and their delivery log; pipelines learn their
source, before SHA, trigger or schedule, and which of their variables are files.

Revision ID: 0009
Revises: 0008
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def _created_at() -> sa.Column:
    return sa.Column('created_at', sa.DateTime(timezone=True), nullable=False, server_default=sa.text('now()'))


def _variable_columns() -> list[sa.Column]:
    return [
        sa.Column('value', sa.Text(), nullable=False),
        sa.Column('variable_type', sa.Text(), nullable=False, server_default='env_var'),
        sa.Column('protected', sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column('masked', sa.Boolean(), nullable=False, server_default=sa.false()),
    ]


# Webhooks out: a status change of a pipeline or job enqueues one delivery per project hook that
# wants the event, in the transition's own transaction (an INSERT, no network; no EXCEPTION
# block, so no subtransaction). The body is built and sent later (server/automation/hooks.py).
HOOK_FUNCTION = """
CREATE FUNCTION conveyor_hook_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'pipelines' THEN
        INSERT INTO hook_deliveries (hook_id, event, event_uuid, payload, next_attempt_at)
        SELECT h.id, 'Pipeline Hook', gen_random_uuid()::text,
               jsonb_build_object('object_kind', 'pipeline', 'id', NEW.id, 'status', NEW.status), now()
        FROM project_hooks h WHERE h.project_id = NEW.project_id AND h.pipeline_events;
    ELSE
        INSERT INTO hook_deliveries (hook_id, event, event_uuid, payload, next_attempt_at)
        SELECT h.id, 'Job Hook', gen_random_uuid()::text,
               jsonb_build_object('object_kind', 'build', 'id', NEW.id, 'status', NEW.status), now()
        FROM project_hooks h WHERE h.project_id = NEW.project_id AND h.job_events;
    END IF;
    RETURN NULL;
END
$$
"""
CHANGED = "OLD.status IS DISTINCT FROM NEW.status"


def upgrade() -> None:
    op.create_table(
        'instance_variables',
        sa.Column('id', sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column('key', sa.Text(), nullable=False),
        *_variable_columns(),
        sa.Column('raw', sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column('description', sa.Text(), nullable=True),
        _created_at(),
        sa.PrimaryKeyConstraint('id', name='pk_instance_variables'),
        sa.UniqueConstraint('key', name='uq_instance_variables_key'),
    )
    op.create_table(
        'project_variables',
        sa.Column('id', sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column('project_id', sa.BigInteger(), nullable=False),
        sa.Column('key', sa.Text(), nullable=False),
        *_variable_columns(),
        sa.Column('hidden', sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column('raw', sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column('environment_scope', sa.Text(), nullable=False, server_default='*'),
        sa.Column('description', sa.Text(), nullable=True),
        _created_at(),
        sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name='fk_project_variables_project_id_projects', ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name='pk_project_variables'),
        sa.UniqueConstraint('project_id', 'key', 'environment_scope', name='uq_project_variables_project_id_key_environment_scope'),
    )
    op.create_table(
        'pipeline_triggers',
        sa.Column('id', sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column('project_id', sa.BigInteger(), nullable=False),
        sa.Column('token_hash', sa.Text(), nullable=False),
        sa.Column('token_head', sa.Text(), nullable=False),
        sa.Column('description', sa.Text(), nullable=False, server_default=''),
        sa.Column('owner', sa.Text(), nullable=True),
        sa.Column('expires_at', sa.Date(), nullable=True),
        sa.Column('last_used', sa.DateTime(timezone=True), nullable=True),
        _created_at(),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False, server_default=sa.text('now()')),
        sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name='fk_pipeline_triggers_project_id_projects', ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name='pk_pipeline_triggers'),
        sa.UniqueConstraint('token_hash', name='uq_pipeline_triggers_token_hash'),
    )
    op.create_index('ix_pipeline_triggers_project_id', 'pipeline_triggers', ['project_id'])
    op.create_table(
        'pipeline_schedules',
        sa.Column('id', sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column('project_id', sa.BigInteger(), nullable=False),
        sa.Column('description', sa.Text(), nullable=False),
        sa.Column('ref', sa.Text(), nullable=False),
        sa.Column('cron', sa.Text(), nullable=False),
        sa.Column('cron_timezone', sa.Text(), nullable=False, server_default='UTC'),
        sa.Column('active', sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column('owner', sa.Text(), nullable=True),
        sa.Column('next_run_at', sa.DateTime(timezone=True), nullable=False),
        _created_at(),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False, server_default=sa.text('now()')),
        sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name='fk_pipeline_schedules_project_id_projects', ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name='pk_pipeline_schedules'),
    )
    op.create_index('ix_pipeline_schedules_project_id', 'pipeline_schedules', ['project_id'])
    op.create_index('ix_pipeline_schedules_next_run_at', 'pipeline_schedules', ['next_run_at'], postgresql_where=sa.text('active'))
    op.create_table(
        'pipeline_schedule_variables',
        sa.Column('schedule_id', sa.BigInteger(), nullable=False),
        sa.Column('key', sa.Text(), nullable=False),
        sa.Column('value', sa.Text(), nullable=False),
        sa.Column('variable_type', sa.Text(), nullable=False, server_default='env_var'),
        sa.ForeignKeyConstraint(['schedule_id'], ['pipeline_schedules.id'], name='fk_pipeline_schedule_variables_schedule_id_pipeline_schedules', ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('schedule_id', 'key', name='pk_pipeline_schedule_variables'),
    )
    op.create_table(
        'project_sources',
        sa.Column('project_id', sa.BigInteger(), nullable=False),
        sa.Column('webhook_secret', sa.Text(), nullable=True),
        sa.Column('poll_interval', sa.Integer(), nullable=False, server_default='0'),
        sa.Column('next_poll_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('heads', JSONB(), nullable=True),
        sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name='fk_project_sources_project_id_projects', ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('project_id', name='pk_project_sources'),
    )
    op.create_index('ix_project_sources_next_poll_at', 'project_sources', ['next_poll_at'], postgresql_where=sa.text('poll_interval > 0'))
    op.add_column('pipelines', sa.Column('source', sa.Text(), nullable=False, server_default='push'))
    op.add_column('pipelines', sa.Column('before_sha', sa.Text(), nullable=True))
    op.add_column('pipelines', sa.Column('tag', sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column('pipelines', sa.Column('trigger_id', sa.BigInteger(), nullable=True))
    op.add_column('pipelines', sa.Column('schedule_id', sa.BigInteger(), nullable=True))
    op.add_column('pipelines', sa.Column('file_variables', ARRAY(sa.Text()), nullable=False, server_default=sa.text("'{}'::text[]")))
    op.create_foreign_key('fk_pipelines_trigger_id_pipeline_triggers', 'pipelines', 'pipeline_triggers', ['trigger_id'], ['id'], ondelete='SET NULL')
    op.create_foreign_key('fk_pipelines_schedule_id_pipeline_schedules', 'pipelines', 'pipeline_schedules', ['schedule_id'], ['id'], ondelete='SET NULL')
    op.create_table(
        'push_events',
        sa.Column('id', sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column('project_id', sa.BigInteger(), nullable=False),
        sa.Column('forge', sa.Text(), nullable=False),
        sa.Column('delivery_id', sa.Text(), nullable=True),
        sa.Column('ref', sa.Text(), nullable=False),
        sa.Column('before_sha', sa.Text(), nullable=False),
        sa.Column('sha', sa.Text(), nullable=False),
        sa.Column('pipeline_id', sa.BigInteger(), nullable=True),
        _created_at(),
        sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name='fk_push_events_project_id_projects', ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['pipeline_id'], ['pipelines.id'], name='fk_push_events_pipeline_id_pipelines', ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name='pk_push_events'),
        sa.UniqueConstraint('project_id', 'delivery_id', name='uq_push_events_project_id_delivery_id'),
        sa.UniqueConstraint('project_id', 'ref', 'sha', name='uq_push_events_project_id_ref_sha'),
    )
    op.create_table(
        'project_hooks',
        sa.Column('id', sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column('project_id', sa.BigInteger(), nullable=False),
        sa.Column('url', sa.Text(), nullable=False),
        sa.Column('name', sa.Text(), nullable=True),
        sa.Column('description', sa.Text(), nullable=True),
        sa.Column('token', sa.Text(), nullable=True),
        sa.Column('push_events', sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column('tag_push_events', sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column('pipeline_events', sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column('job_events', sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column('enable_ssl_verification', sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column('uuid', sa.Text(), nullable=False),
        sa.Column('recent_failures', sa.Integer(), nullable=False, server_default='0'),
        sa.Column('disabled_until', sa.DateTime(timezone=True), nullable=True),
        _created_at(),
        sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name='fk_project_hooks_project_id_projects', ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name='pk_project_hooks'),
    )
    op.create_index('ix_project_hooks_project_id', 'project_hooks', ['project_id'])
    op.create_table(
        'hook_deliveries',
        sa.Column('id', sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column('hook_id', sa.BigInteger(), nullable=False),
        sa.Column('event', sa.Text(), nullable=False),
        sa.Column('event_uuid', sa.Text(), nullable=False),
        sa.Column('payload', JSONB(), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False, server_default='0'),
        sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('response_status', sa.Integer(), nullable=True),
        sa.Column('error', sa.Text(), nullable=True),
        sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
        _created_at(),
        sa.ForeignKeyConstraint(['hook_id'], ['project_hooks.id'], name='fk_hook_deliveries_hook_id_project_hooks', ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name='pk_hook_deliveries'),
    )
    op.create_index('ix_hook_deliveries_next_attempt_at', 'hook_deliveries', ['next_attempt_at'], postgresql_where=sa.text('next_attempt_at IS NOT NULL'))
    op.create_index('ix_hook_deliveries_hook_id_id', 'hook_deliveries', ['hook_id', 'id'])
    op.execute(HOOK_FUNCTION)
    for table in ('pipelines', 'jobs'):
        op.execute(f"CREATE TRIGGER {table}_hook_on_insert AFTER INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION conveyor_hook_event()")
        op.execute(
            f"CREATE TRIGGER {table}_hook_on_update AFTER UPDATE OF status ON {table} FOR EACH ROW"
            f" WHEN ({CHANGED}) EXECUTE FUNCTION conveyor_hook_event()"
        )


def downgrade() -> None:
    for table in ('pipelines', 'jobs'):
        op.execute(f"DROP TRIGGER {table}_hook_on_update ON {table}")
        op.execute(f"DROP TRIGGER {table}_hook_on_insert ON {table}")
    op.execute("DROP FUNCTION conveyor_hook_event()")
    op.drop_table('hook_deliveries')
    op.drop_table('project_hooks')
    op.drop_table('push_events')
    op.drop_constraint('fk_pipelines_schedule_id_pipeline_schedules', 'pipelines', type_='foreignkey')
    op.drop_constraint('fk_pipelines_trigger_id_pipeline_triggers', 'pipelines', type_='foreignkey')
    for column in ('file_variables', 'schedule_id', 'trigger_id', 'tag', 'before_sha', 'source'):
        op.drop_column('pipelines', column)
    op.drop_table('project_sources')
    op.drop_table('pipeline_schedule_variables')
    op.drop_table('pipeline_schedules')
    op.drop_table('pipeline_triggers')
    op.drop_table('project_variables')
    op.drop_table('instance_variables')
