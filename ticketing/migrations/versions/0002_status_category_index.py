"""ticket lists filtered by status and category, newest first, served by one index

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 02:50:00
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # the console's usual list: 状态 + 类别 + 时间范围, newest first (bench/store.py "list")
    op.create_index("ix_ticket_status_category_created", "ticket", ["status", "category", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_ticket_status_category_created", table_name="ticket")
