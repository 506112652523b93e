"""users, namespaces (user namespaces and groups), group and project members; personal access
tokens get an owner, expiry and revocation; projects belong to a namespace (root's for those
that exist). Root (user 1, admin) owns every token stored before.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def _created_at() -> sa.Column:
    return sa.Column('created_at', sa.DateTime(timezone=True), nullable=False, server_default=sa.text('now()'))


def _member_columns() -> list[sa.Column]:
    return [
        sa.Column('user_id', sa.BigInteger, sa.ForeignKey('users.id', ondelete='CASCADE'), primary_key=True, index=True),
        sa.Column('access_level', sa.Integer, nullable=False),
        sa.Column('expires_at', sa.Date),
        _created_at(),
    ]


def upgrade() -> None:
    op.create_table(
        'users',
        sa.Column('id', sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column('username', sa.Text, nullable=False),
        sa.Column('name', sa.Text, nullable=False),
        sa.Column('email', sa.Text),
        sa.Column('admin', sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column('state', sa.Text, nullable=False, server_default='active'),
        _created_at(),
    )
    op.create_index('uq_users_username_lower', 'users', [sa.text('lower(username)')], unique=True)
    op.create_index('uq_users_email_lower', 'users', [sa.text('lower(email)')], unique=True)
    op.execute("INSERT INTO users (username, name, admin) VALUES ('root', 'Administrator', true)")
    op.create_table(
        'namespaces',
        sa.Column('id', sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column('name', sa.Text, nullable=False),
        sa.Column('path', sa.Text, nullable=False),
        sa.Column('kind', sa.Text, nullable=False),
        sa.Column('owner_id', sa.BigInteger, sa.ForeignKey('users.id', ondelete='CASCADE'), unique=True),
        sa.Column('description', sa.Text, nullable=False, server_default=''),
        _created_at(),
    )
    op.create_index('uq_namespaces_path_lower', 'namespaces', [sa.text('lower(path)')], unique=True)
    op.execute("INSERT INTO namespaces (name, path, kind, owner_id) VALUES ('Administrator', 'root', 'user', 1)")
    op.create_table(
        'group_members',
        sa.Column('namespace_id', sa.BigInteger, sa.ForeignKey('namespaces.id', ondelete='CASCADE'), primary_key=True),
        *_member_columns(),
    )
    op.add_column(
        'projects',
        sa.Column('namespace_id', sa.BigInteger, sa.ForeignKey('namespaces.id'), nullable=False, server_default='1'),
    )
    op.create_index('ix_projects_namespace_id', 'projects', ['namespace_id'])
    op.add_column(
        'tokens',
        sa.Column('user_id', sa.BigInteger, sa.ForeignKey('users.id', ondelete='CASCADE'), nullable=False, server_default='1'),
    )
    op.create_index('ix_tokens_user_id', 'tokens', ['user_id'])
    op.add_column('tokens', sa.Column('description', sa.Text))
    op.add_column('tokens', sa.Column('expires_at', sa.Date))
    op.add_column('tokens', sa.Column('revoked', sa.Boolean, nullable=False, server_default=sa.false()))
    op.add_column('tokens', sa.Column('last_used_at', sa.DateTime(timezone=True)))
    op.create_table(
        'project_members',
        sa.Column('project_id', sa.BigInteger, sa.ForeignKey('projects.id', ondelete='CASCADE'), primary_key=True),
        *_member_columns(),
    )


def downgrade() -> None:
    op.drop_table('project_members')
    for column in ('last_used_at', 'revoked', 'expires_at', 'description', 'user_id'):
        op.drop_column('tokens', column)
    op.drop_column('projects', 'namespace_id')
    op.drop_table('group_members')
    op.drop_table('namespaces')
    op.drop_table('users')
