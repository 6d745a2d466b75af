"""accounts (the account table now belongs to accounts/, whose acc0001 creates it or adopts the one
this revision made in databases that ran it before; kept so their history stays valid)

Revision ID: ui0001
Revises:
"""

revision = "ui0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
