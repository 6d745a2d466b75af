"""lead: seat state spells (busy / wrap-up time per operator) and the roster (排班)

Revision ID: ui0011
Revises: ui0010
"""

import sqlalchemy as sa
from alembic import op

revision = "ui0011"
down_revision = "ui0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "seat_spell",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("seat", sa.String(32), nullable=False),
        sa.Column("operator", sa.String(64), nullable=False, server_default=""),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(64), nullable=False, server_default=""),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seconds", sa.Float, nullable=False),
    )
    op.create_table(
        "roster",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("day", sa.Date, nullable=False, index=True),
        sa.Column("shift", sa.String(32), nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("duty", sa.String(16), nullable=False),  # 班长 / 话务员 / 专业席
        sa.Column("seat", sa.String(32), nullable=False, server_default=""),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.UniqueConstraint("day", "shift", "username"),
    )


def downgrade() -> None:
    op.drop_table("roster")
    op.drop_table("seat_spell")
