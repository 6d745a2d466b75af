"""a lead department's tickets of one status and category, newest first, from one index

The lead's search page filtered by 承办单位 and 状态 (and often 类别 and a window) walked every
archived complaint of the window in the status/category index and read each ticket to test its
department: 130–200 ms for one page at a million tickets (bench/store.py "list"). With the
department, status and category first, the walk covers exactly the tickets asked for.

Revision ID: 0010
Revises: 0009
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_ticket_dept_status_category_created", "ticket",
                    ["lead_department_id", "status", "category", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_ticket_dept_status_category_created", table_name="ticket")
