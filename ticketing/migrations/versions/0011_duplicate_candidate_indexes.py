"""the tickets an intake compares itself with, each kind from an index of its own

An intake's duplicate check reads the newest 200 tickets of the last 30 days that share its
caller, its place, or its district and category. As one OR, SQLite walked the whole window by
date and tested every ticket: at a million tickets 4.5 ms at the median and 15–20 ms for a caller
and place nobody else has. Each kind by its own index, newest first, is 0.7 ms and 1.2 ms at most
(measured on the 1 M-ticket benchmark store; ticketing/tickets.py merges the three).

Revision ID: 0011
Revises: 0010
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_ticket_place_created", "ticket", ["matter_place", "created_at"])
    op.create_index("ix_ticket_district_category_created", "ticket", ["district", "category", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_ticket_district_category_created", table_name="ticket")
    op.drop_index("ix_ticket_place_created", table_name="ticket")
