"""trace chunks stored uncompressed: no pglz on the append path

A sealed chunk is 128 KiB of log, written once and deleted after the archive. PostgreSQL's default
(EXTENDED) storage compresses it with pglz on every write: 2-4 ms of CPU per MiB in the database
(bench/traces part a). EXTERNAL keeps it out of line, uncompressed. The archive compresses nothing
either; the chunks are transient.

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE trace_chunks ALTER COLUMN data SET STORAGE EXTERNAL")


def downgrade() -> None:
    op.execute("ALTER TABLE trace_chunks ALTER COLUMN data SET STORAGE EXTENDED")
