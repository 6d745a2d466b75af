"""accounts: server-side sessions, sign-in attempts (the throttle), the security audit trail;
accounts learn whether they are a demo account and whether their password must be changed

Revision ID: acc0003
Revises: acc0002
"""

import sqlalchemy as sa
from alembic import op

from hotline.db import UTCDateTime

revision = "acc0003"
down_revision = "acc0002"
branch_labels = None
depends_on = None

DEMO_USERNAMES = ("op1024", "op1025", "lead", "qa", "dept1", "dept1a", "dept2", "admin")


def upgrade() -> None:
    with op.batch_alter_table("account", schema=None) as batch_op:
        batch_op.add_column(sa.Column("demo", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("must_change_password", sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
        batch_op.add_column(sa.Column("password_changed_at", UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("last_login_at", UTCDateTime(), nullable=True))
    # accounts the demo made before this revision are demo accounts: production must see them
    account = sa.table("account", sa.column("username", sa.String), sa.column("demo", sa.Boolean))
    op.execute(account.update().where(account.c.username.in_(DEMO_USERNAMES)).values(demo=True))
    op.create_table(
        "account_session",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("username", sa.String(64), nullable=False, index=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.Column("revoked_reason", sa.String(32), nullable=False, server_default=""),
        sa.Column("client", sa.String(64), nullable=False, server_default=""),
        sa.Column("user_agent", sa.String(200), nullable=False, server_default=""),
    )
    op.create_table(
        "login_attempt",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("at", UTCDateTime(), nullable=False, index=True),
        sa.Column("username", sa.String(64), nullable=False, index=True),
        sa.Column("client", sa.String(64), nullable=False, server_default="", index=True),
        sa.Column("ok", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.create_table(
        "audit_event",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("at", UTCDateTime(), nullable=False, index=True),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("action", sa.String(32), nullable=False, index=True),
        sa.Column("target", sa.String(64), nullable=False, server_default=""),
        sa.Column("detail", sa.String(500), nullable=False, server_default=""),
        sa.Column("client", sa.String(64), nullable=False, server_default=""),
    )


def downgrade() -> None:
    op.drop_table("audit_event")
    op.drop_table("login_attempt")
    op.drop_table("account_session")
    with op.batch_alter_table("account", schema=None) as batch_op:
        for column in ("last_login_at", "password_changed_at", "must_change_password", "demo"):
            batch_op.drop_column(column)
