"""callback_dial: each dial of a callback request (a missed call, a ticket), claimed before the
Originate leaves, unique on (request, attempt) and on the call's id

Revision ID: ui0013
Revises: ui0012
"""

import sqlalchemy as sa
from alembic import op

revision = "ui0013"
down_revision = "ui0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "callback_dial",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("request", sa.String(80), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("number", sa.String(32), nullable=False),
        sa.Column("seat", sa.String(16), nullable=False),
        sa.Column("requested_by", sa.String(64), nullable=False),
        sa.Column("token", sa.String(32), nullable=False),
        sa.Column("channel_id", sa.String(64), nullable=False),
        sa.Column("error", sa.String(500), nullable=False, server_default=""),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("dialled_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("request", "attempt", name="uq_callback_dial_attempt"),
        sa.UniqueConstraint("channel_id", name="uq_callback_dial_channel"),
    )


def downgrade() -> None:
    op.drop_table("callback_dial")
