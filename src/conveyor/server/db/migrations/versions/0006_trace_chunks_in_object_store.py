"""trace chunks may live in the object store: data nullable, data_size recorded

A sealed chunk's bytes are either in the row (``data``) or, when the trace chunk store is the
object store, in ``traces/<job>/chunks/<index>`` with ``data`` NULL. ``data_size`` is the chunk's
length either way.

Revision ID: 0006
Revises: 0005
"""

from alembic import op
import sqlalchemy as sa

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('trace_chunks', sa.Column('data_size', sa.Integer(), nullable=True))
    op.alter_column('trace_chunks', 'data', existing_type=sa.LargeBinary(), nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM trace_chunks WHERE data IS NULL")
    op.alter_column('trace_chunks', 'data', existing_type=sa.LargeBinary(), nullable=False)
    op.drop_column('trace_chunks', 'data_size')
