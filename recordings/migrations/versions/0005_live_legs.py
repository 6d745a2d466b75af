"""the live transcript's legs, kept for after the call

Revision ID: rec0005
Revises: rec0004

Issue #16: each leg a listening node heard while the call was up, with its settled sentences and
timed words; the post-call transcription uses a complete leg instead of hearing it again.
"""

import sqlalchemy as sa
from alembic import op

revision = "rec0005"
down_revision = "rec0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "recording_live_leg",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.String(length=64), nullable=False),
        sa.Column("speaker", sa.String(length=16), nullable=False),
        sa.Column("seat", sa.String(length=32), nullable=False),
        sa.Column("node", sa.String(length=100), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("audio_s", sa.Float(), nullable=False),
        sa.Column("lines", sa.JSON(), nullable=False),
        sa.Column("words", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("call_id", "speaker"),
    )
    with op.batch_alter_table("recording_live_leg", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_recording_live_leg_call_id"), ["call_id"], unique=False)


def downgrade() -> None:
    op.drop_table("recording_live_leg")
