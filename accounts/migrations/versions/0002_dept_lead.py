"""account: a department's lead (负责人), who chooses the handler of each of its tickets

Revision ID: acc0002
Revises: acc0001
"""

import sqlalchemy as sa
from alembic import op

revision = "acc0002"
down_revision = "acc0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("account", schema=None) as batch_op:
        batch_op.add_column(sa.Column("dept_lead", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("account", schema=None) as batch_op:
        batch_op.drop_column("dept_lead")
