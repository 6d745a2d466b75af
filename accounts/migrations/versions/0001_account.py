"""account: who may sign in (until now created by agent_ui's migration ui0001, which a database
upgraded from then already ran: the table is adopted as it is)

Revision ID: acc0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "acc0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    if sa.inspect(op.get_bind()).has_table("account"):
        return
    op.create_table(
        "account",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("username", sa.String(64), nullable=False, unique=True),
        sa.Column("display_name", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("job_number", sa.String(16), nullable=False, server_default=""),
        sa.Column("department_id", sa.Integer, nullable=True),
        sa.Column("centre", sa.String(32), nullable=False, server_default=""),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("account")
