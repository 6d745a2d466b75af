"""notification: the log of reminders and supervision notes sent by e-mail and SMS

Revision ID: ntf0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "ntf0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notification",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("key", sa.String(255), nullable=False, unique=True),
        sa.Column("ticket_id", sa.Integer, nullable=True),
        sa.Column("department_id", sa.Integer, nullable=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("transport", sa.String(16), nullable=False, server_default=""),
        sa.Column("recipient", sa.String(200), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False, server_default=""),
        sa.Column("body", sa.Text, nullable=False, server_default=""),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.String(500), nullable=False, server_default=""),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_notification_ticket_id", "notification", ["ticket_id"])
    op.create_index("ix_notification_next_attempt_at", "notification", ["next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_notification_next_attempt_at", "notification")
    op.drop_index("ix_notification_ticket_id", "notification")
    op.drop_table("notification")
