"""trace chunks may live in segment files: segment and segment_offset

When the object store is a local directory, a sealed chunk's bytes are appended to a segment file
of its job's (``storage.segments``): ``segment`` names the file, ``segment_offset`` is where the
chunk's ``data_size`` bytes start; ``data`` is NULL.

Revision ID: 0008
Revises: 0007
"""

from alembic import op
import sqlalchemy as sa

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('trace_chunks', sa.Column('segment', sa.Text(), nullable=True))
    op.add_column('trace_chunks', sa.Column('segment_offset', sa.BigInteger(), nullable=True))


def downgrade() -> None:
    op.execute("DELETE FROM trace_chunks WHERE segment IS NOT NULL")
    op.drop_column('trace_chunks', 'segment_offset')
    op.drop_column('trace_chunks', 'segment')
