"""lead: what the centre enters by hand for the department assessment (circulars, commendations…)

Revision ID: ui0012
Revises: ui0011
"""

import sqlalchemy as sa
from alembic import op

revision = "ui0012"
down_revision = "ui0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dept_assessment_entry",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("department", sa.String(128), nullable=False),
        sa.Column("day", sa.Date, nullable=False, index=True),  # when it happened: it counts in that period
        sa.Column("item", sa.String(32), nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("note", sa.String(255), nullable=False, server_default=""),
        sa.Column("entered_by", sa.String(64), nullable=False),
        sa.Column("entered_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("dept_assessment_entry")
