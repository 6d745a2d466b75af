"""lead: acknowledged alerts and the shift handover log

Revision ID: ui0010
Revises: ui0002
"""

import sqlalchemy as sa
from alembic import op

revision = "ui0010"
down_revision = "ui0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "lead_alert_ack",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("alert_key", sa.String(128), nullable=False),
        sa.Column("title", sa.String(64), nullable=False),
        sa.Column("detail", sa.String(255), nullable=False, server_default=""),
        sa.Column("queue", sa.String(64), nullable=False, server_default=""),
        sa.Column("seat", sa.String(32), nullable=False, server_default=""),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acked_by", sa.String(64), nullable=False),
        sa.Column("acked_at", sa.DateTime(timezone=True), nullable=False, index=True),
    )
    op.create_table(
        "shift_handover",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("shift", sa.String(32), nullable=False),
        sa.Column("from_lead", sa.String(64), nullable=False),
        sa.Column("to_lead", sa.String(64), nullable=False, server_default=""),
        sa.Column("notes", sa.Text, nullable=False, server_default=""),
        sa.Column("tickets", sa.Text, nullable=False, server_default=""),  # comma-separated ticket ids
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("to_signed_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("shift_handover")
    op.drop_table("lead_alert_ack")
