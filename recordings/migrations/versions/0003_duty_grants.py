"""listening approvals may cover a QA reviewer's duty (all recordings) for a while

Revision ID: rec0003
Revises: rec0002

Nobody approves their own listening any more (issue #13): a QA reviewer asks a lead or an admin
for a duty grant (质检授权, ``scope = 'duty'``, no recording) instead of approving themselves at
every play; everyone else asks per recording as before.
"""

import sqlalchemy as sa
from alembic import op

revision = "rec0003"
down_revision = "rec0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("recording_access_request", schema=None) as batch_op:
        batch_op.add_column(sa.Column("scope", sa.String(length=16), nullable=False, server_default="recording"))
        batch_op.alter_column("recording_id", existing_type=sa.Integer(), nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM recording_access_request WHERE recording_id IS NULL")
    with op.batch_alter_table("recording_access_request", schema=None) as batch_op:
        batch_op.alter_column("recording_id", existing_type=sa.Integer(), nullable=False)
        batch_op.drop_column("scope")
