"""The notification outbox and log: one row per message to one recipient over one channel, from its
enqueueing to its end (notify/outbox.py moves it along; notify/log.py reads it)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from hotline.db import UTCDateTime

KEY_MAX = 255


class Notification(SQLModel, table=True):
    __tablename__ = "notification"
    __table_args__ = (sa.Index("ix_notification_due", "status", "next_attempt_at"),)  # what a claim looks for

    id: int | None = Field(default=None, primary_key=True)
    # what makes a reminder "the same one": a second sweep (another process, a restart) finds it here
    key: str = Field(max_length=KEY_MAX, sa_column_kwargs={"unique": True})
    ticket_id: int | None = Field(default=None, index=True)  # no foreign key: the ticket store migrates apart
    department_id: int | None = None  # the audience: a department, or None for the centre
    kind: str = Field(max_length=32)  # deadline_before / deadline_due / deadline_overdue / supervision
    channel: str = Field(max_length=16)  # email / sms: what was asked for
    transport: str = Field(default="", max_length=16)  # smtp / sms_gateway / log: what carried it
    recipient: str = Field(max_length=200)
    subject: str = Field(default="", max_length=200)
    body: str = Field(default="", sa_type=sa.Text)
    # pending (to send, at next_attempt_at if set: a retry after a failure) / sending (claimed: a
    # sender holds it until lease_until) / sent / logged (log only: nothing left) / failed (given up)
    status: str = Field(default="pending", max_length=16)
    error: str = Field(default="", max_length=500)  # the last failure, in Chinese: the ticket's page shows it
    attempts: int = 0  # claims so far (a claim whose sender died counts: it may have gone out)
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    claimed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)  # type: ignore[call-overload]
    claimed_by: str = Field(default="", max_length=64)  # host:pid of the sender of the last claim
    token: str = Field(default="", max_length=32)  # the last claim's own: only its holder may finish it
    lease_until: datetime | None = Field(default=None, sa_type=UTCDateTime)  # type: ignore[call-overload]
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)  # type: ignore[call-overload]
    next_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)  # type: ignore[call-overload]

KIND_LABELS = {"deadline_before": "临期提醒", "deadline_due": "到期提醒", "deadline_overdue": "超期提醒",
               "supervision": "督办通知"}
CHANNEL_LABELS = {"email": "邮件", "sms": "短信"}
STATUS_LABELS = {"pending": "待发送", "sending": "发送中", "sent": "已发送", "failed": "发送失败，已停止重试",
                 "logged": "仅记录（未发送）"}
RETRY_LABEL = "发送失败，等待重试"  # pending again after a failure
