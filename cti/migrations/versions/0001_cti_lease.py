"""cti_lease: each Asterisk server's lease term (the CTI bridges' fencing number), and who took it when

Revision ID: cti0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "cti0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cti_lease",
        sa.Column("name", sa.String(128), primary_key=True),  # the Asterisk server (AMI host:port, or its name)
        sa.Column("term", sa.BigInteger, nullable=False),
        sa.Column("holder", sa.String(200), nullable=False, server_default=""),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("cti_lease")
