"""approvals: a lead's approval for sign-out / busy in a shift's first or last 30 minutes

Revision ID: ui0002
Revises: ui0001
"""

import sqlalchemy as sa
from alembic import op

revision = "ui0002"
down_revision = "ui0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "seat_approval",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("seat", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(64), nullable=False, server_default=""),
        sa.Column("rule", sa.String(128), nullable=False, server_default=""),
        sa.Column("requested_by", sa.String(64), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(16), nullable=False, server_default="pending"),
        sa.Column("decided_by", sa.String(64), nullable=False, server_default=""),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("note", sa.String(200), nullable=False, server_default=""),
    )
    op.create_index("ix_seat_approval_state", "seat_approval", ["state", "requested_at"])


def downgrade() -> None:
    op.drop_index("ix_seat_approval_state", "seat_approval")
    op.drop_table("seat_approval")
