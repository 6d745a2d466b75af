"""a call's speaker may have more than one live leg: the operators before and after a transfer

Revision ID: rec0006
Revises: rec0005

Issue #16: a citizen transferred to a specialist seat is heard on by the same citizen leg, and the
specialist's voice is a second operator leg of the call (``part`` 2). Unique per call, speaker and
part (was: per call and speaker).
"""

import sqlalchemy as sa
from alembic import op

revision = "rec0006"
down_revision = "rec0005"
branch_labels = None
depends_on = None

# rec0005 left the unique constraint unnamed: PostgreSQL named it itself; SQLite's batch mode
# names it by this convention to drop it
NAMING = {"uq": "uq_%(table_name)s_%(column_0_name)s_%(column_1_name)s"}


def _old_name() -> str:
    if op.get_bind().dialect.name == "postgresql":
        return "recording_live_leg_call_id_speaker_key"
    return "uq_recording_live_leg_call_id_speaker"


def upgrade() -> None:
    with op.batch_alter_table("recording_live_leg", naming_convention=NAMING) as batch_op:
        batch_op.add_column(sa.Column("part", sa.Integer(), nullable=False, server_default="1"))
        batch_op.drop_constraint(_old_name(), type_="unique")
        batch_op.create_unique_constraint("uq_recording_live_leg_part", ["call_id", "speaker", "part"])


def downgrade() -> None:
    with op.batch_alter_table("recording_live_leg", naming_convention=NAMING) as batch_op:
        batch_op.drop_constraint("uq_recording_live_leg_part", type_="unique")
        batch_op.execute("DELETE FROM recording_live_leg WHERE part > 1")
        batch_op.create_unique_constraint(_old_name(), ["call_id", "speaker"])
        batch_op.drop_column("part")
