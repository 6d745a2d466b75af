"""the work-order loop: departments' handlers, answers to supervision, attachments, the query code,
both callback ratings and the citizen's own, other channels' submissions, departments' contacts

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

import ticketing.models

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

UTC_DT = ticketing.models.UTCDateTime


def upgrade() -> None:
    with op.batch_alter_table("department", schema=None) as batch_op:
        batch_op.add_column(sa.Column("notify_email", sa.String(length=200), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("notify_mobile", sa.String(length=64), nullable=False, server_default=""))
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.add_column(sa.Column("satisfaction_process", sa.String(length=16), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("query_code", sa.String(length=16), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("citizen_rating", sa.String(length=16), nullable=False, server_default=""))
    with op.batch_alter_table("ticket_department", schema=None) as batch_op:
        batch_op.add_column(sa.Column("assignee", sa.String(length=64), nullable=False, server_default=""))
    with op.batch_alter_table("supervision", schema=None) as batch_op:
        batch_op.add_column(sa.Column("answer", sa.String(length=4000), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("answered_by", sa.String(length=64), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("answered_at", UTC_DT(), nullable=True))
    op.create_table(
        "attachment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("content_type", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("path", sa.String(length=200), nullable=False),
        sa.Column("by", sa.String(length=64), nullable=False),
        sa.Column("by_role", sa.String(length=16), nullable=False),
        sa.Column("department_id", sa.Integer(), nullable=True),
        sa.Column("at", UTC_DT(), nullable=False),
        sa.ForeignKeyConstraint(["ticket_id"], ["ticket.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_attachment_ticket_id", "attachment", ["ticket_id"])
    op.create_table(
        "intake_submission",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("external_id", sa.String(length=64), nullable=True),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("contact", sa.String(length=64), nullable=False),
        sa.Column("place", sa.String(length=200), nullable=False),
        sa.Column("text", sa.String(length=4000), nullable=False),
        sa.Column("confidential", sa.Boolean(), nullable=False),
        sa.Column("received_at", UTC_DT(), nullable=False),
        sa.Column("respond_by", UTC_DT(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("handled_at", UTC_DT(), nullable=True),
        sa.Column("handled_by", sa.String(length=64), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=True),
        sa.Column("note", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(["ticket_id"], ["ticket.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("channel", "external_id"),
    )
    op.create_index("ix_intake_submission_received_at", "intake_submission", ["received_at"])
    op.create_index("ix_intake_submission_status", "intake_submission", ["status"])


def downgrade() -> None:
    op.drop_index("ix_intake_submission_status", "intake_submission")
    op.drop_index("ix_intake_submission_received_at", "intake_submission")
    op.drop_table("intake_submission")
    op.drop_index("ix_attachment_ticket_id", "attachment")
    op.drop_table("attachment")
    with op.batch_alter_table("supervision", schema=None) as batch_op:
        batch_op.drop_column("answered_at")
        batch_op.drop_column("answered_by")
        batch_op.drop_column("answer")
    with op.batch_alter_table("ticket_department", schema=None) as batch_op:
        batch_op.drop_column("assignee")
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.drop_column("citizen_rating")
        batch_op.drop_column("query_code")
        batch_op.drop_column("satisfaction_process")
    with op.batch_alter_table("department", schema=None) as batch_op:
        batch_op.drop_column("notify_mobile")
        batch_op.drop_column("notify_email")
