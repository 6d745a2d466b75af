"""notification: the outbox's lease (who claimed a message, with which token, until when) and a
pending state of its own (a retry waits as pending, a message given up is failed)

Revision ID: ntf0002
Revises: ntf0001
"""

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision = "ntf0002"
down_revision = "ntf0001"
branch_labels = None
depends_on = None

STALE = timedelta(minutes=10)  # ntf0001's sweeps took a claim over after this long

T = sa.table("notification", sa.column("id", sa.Integer), sa.column("status", sa.String),
             sa.column("attempts", sa.Integer), sa.column("created_at", sa.DateTime(timezone=True)),
             sa.column("claimed_at", sa.DateTime(timezone=True)), sa.column("lease_until", sa.DateTime(timezone=True)),
             sa.column("next_attempt_at", sa.DateTime(timezone=True)))


def upgrade() -> None:
    op.add_column("notification", sa.Column("claimed_by", sa.String(64), nullable=False, server_default=""))
    op.add_column("notification", sa.Column("token", sa.String(32), nullable=False, server_default=""))
    op.add_column("notification", sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
    # a failure waiting for its retry was "failed" with a next attempt: now "pending" until then
    op.execute(T.update().where(T.c.status == "failed", T.c.next_attempt_at.is_not(None)).values(status="pending"))
    # a send in flight keeps the time the old sweeps gave it; then the outbox takes it over
    conn = op.get_bind()
    for row_id, claimed in conn.execute(sa.select(T.c.id, T.c.claimed_at).where(T.c.status == "sending")).all():
        lease = (claimed or datetime.now(UTC)) + STALE
        conn.execute(T.update().where(T.c.id == row_id).values(lease_until=lease))
    op.create_index("ix_notification_due", "notification", ["status", "next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_notification_due", "notification")
    # ntf0001 had no pending state: a retry is "failed" with a next attempt, a message never tried
    # one due now (its sweeps claim both)
    op.execute(T.update().where(T.c.status == "pending", T.c.attempts > 0).values(status="failed"))
    op.execute(T.update().where(T.c.status == "pending", T.c.attempts == 0)
               .values(status="failed", next_attempt_at=sa.func.coalesce(T.c.next_attempt_at, T.c.created_at)))
    with op.batch_alter_table("notification") as batch:
        batch.drop_column("lease_until")
        batch.drop_column("token")
        batch.drop_column("claimed_by")
