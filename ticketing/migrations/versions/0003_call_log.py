"""call log: the CTI's view of every call, the callback list

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

from ticketing.models import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

COLUMNS = [
    sa.Column("caller_name", sa.String(64), nullable=False, server_default=""),
    sa.Column("location", sa.String(64), nullable=False, server_default=""),
    sa.Column("queue", sa.String(64), nullable=False, server_default=""),
    sa.Column("seats_rung", sa.String(200), nullable=False, server_default=""),
    sa.Column("operator", sa.String(64), nullable=False, server_default=""),
    sa.Column("answered_at", UTCDateTime(), nullable=True),
    sa.Column("ended_at", UTCDateTime(), nullable=True),
    sa.Column("wait_ms", sa.Integer(), nullable=True),
    sa.Column("within_rule", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("talk_s", sa.Float(), nullable=False, server_default="0"),
    sa.Column("abandoned", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("lost", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("transferred_to", sa.String(64), nullable=False, server_default=""),
    sa.Column("conference", sa.String(64), nullable=False, server_default=""),
    sa.Column("recordings", sa.String(4000), nullable=False, server_default=""),
    sa.Column("survey", sa.Integer(), nullable=True),
    sa.Column("callback_requested", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("callback_reason", sa.String(64), nullable=False, server_default=""),
    sa.Column("called_back_at", UTCDateTime(), nullable=True),
    sa.Column("called_back_by", sa.String(64), nullable=False, server_default=""),
    sa.Column("callback_note", sa.String(200), nullable=False, server_default=""),
]


def upgrade() -> None:
    with op.batch_alter_table("call_record", schema=None) as batch_op:
        for column in COLUMNS:
            batch_op.add_column(column)
        batch_op.create_index("ix_call_record_queue", ["queue"])
        batch_op.create_index("ix_call_record_ended_at", ["ended_at"])
        batch_op.create_index("ix_call_record_abandoned", ["abandoned"])
        batch_op.create_index("ix_call_record_started_at", ["started_at"])


def downgrade() -> None:
    with op.batch_alter_table("call_record", schema=None) as batch_op:
        for name in ("ix_call_record_started_at", "ix_call_record_abandoned", "ix_call_record_ended_at",
                     "ix_call_record_queue"):
            batch_op.drop_index(name)
        for column in reversed(COLUMNS):
            batch_op.drop_column(column.name)
