"""jobs: NOTIFY conveyor_job_revoked when a running job's token stops working or its status moves

Each server process keeps the rows of running jobs whose tokens it checked
(``server/accounts/job_tokens.py``) and LISTENs on this channel to drop one the moment its job
finishes, is canceled or requeued, or is deleted, whichever code path does it. A plain
``PERFORM pg_notify`` (no EXCEPTION block: no subtransaction); PostgreSQL sends it at commit.

Revision ID: 0007
Revises: 0006
"""

from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

FUNCTION = """
CREATE FUNCTION conveyor_job_revoked() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('conveyor_job_revoked', OLD.id::text);
    RETURN NULL;
END
$$
"""
ACTIVE = "OLD.status IN ('running', 'canceling')"


def upgrade() -> None:
    op.execute(FUNCTION)
    op.execute(
        "CREATE TRIGGER jobs_revoked_on_update AFTER UPDATE OF status, token_hash ON jobs FOR EACH ROW"
        f" WHEN ({ACTIVE} AND (OLD.status IS DISTINCT FROM NEW.status OR OLD.token_hash IS DISTINCT FROM NEW.token_hash))"
        " EXECUTE FUNCTION conveyor_job_revoked()"
    )
    op.execute(
        f"CREATE TRIGGER jobs_revoked_on_delete AFTER DELETE ON jobs FOR EACH ROW WHEN ({ACTIVE})"
        " EXECUTE FUNCTION conveyor_job_revoked()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER jobs_revoked_on_delete ON jobs")
    op.execute("DROP TRIGGER jobs_revoked_on_update ON jobs")
    op.execute("DROP FUNCTION conveyor_job_revoked()")
