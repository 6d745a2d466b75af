"""caller flags set by leads: the elderly (priority in the queue), and who set the flags when

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

from ticketing.models import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

COLUMNS = [
    sa.Column("elderly", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("flags_by", sa.String(64), nullable=False, server_default=""),
    sa.Column("flags_at", UTCDateTime(), nullable=True),
]


def upgrade() -> None:
    with op.batch_alter_table("caller", schema=None) as batch_op:
        for column in COLUMNS:
            batch_op.add_column(column)


def downgrade() -> None:
    with op.batch_alter_table("caller", schema=None) as batch_op:
        for column in reversed(COLUMNS):
            batch_op.drop_column(column.name)
