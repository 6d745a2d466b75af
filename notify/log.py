"""The notification log: what was sent to whom, when, and how it went, as the pages show it.

The rows are the outbox's (notify/outbox.py: one per idempotency key, claimed under a lease, sent
once); a failure waiting for its retry says so, and one given up says why, in Chinese.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from notify.models import CHANNEL_LABELS, KIND_LABELS, RETRY_LABEL, STATUS_LABELS, Notification

TABLE = Notification.__table__  # type: ignore[attr-defined]


class NotificationLog:
    """The notification outbox read as a log, for the ticket's page and the 督办 list (the outbox,
    notify/outbox.py, is what writes it)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def for_supervisions(self, note_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
        """Who was told of each supervision note, how and when (the centre's 督办 list)."""
        if not note_ids:
            return {}
        keys = [TABLE.c.key.like(f"supervision:{i}:%") for i in sorted(set(note_ids))]
        out: dict[int, list[dict[str, Any]]] = {}
        with Session(self.engine) as s:
            for i in range(0, len(keys), 200):
                rows = s.exec(select(Notification).where(sa.or_(*keys[i:i + 200])).order_by(TABLE.c.id)).all()
                for r in rows:
                    out.setdefault(_supervision_of(r.key) or 0, []).append(_out(r))
        return out

    def for_ticket(self, ticket_id: int, department_id: int | None = None) -> list[dict[str, Any]]:
        """A ticket's notifications, newest first; given a department, only those sent to it."""
        q = select(Notification).where(Notification.ticket_id == ticket_id)
        if department_id is not None:
            q = q.where(Notification.department_id == department_id)
        with Session(self.engine) as s:
            rows = s.exec(q.order_by(TABLE.c.id.desc()).limit(500)).all()
        return [_out(r) for r in rows]


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _supervision_of(key: str) -> int | None:
    """The supervision note a message was about (its key: ``supervision:<note id>:<channel>:<to>``).

    >>> _supervision_of("supervision:12:email:a@b.example"), _supervision_of("deadline_due:3:x:0:email:a@b")
    (12, None)
    """
    kind, _, rest = key.partition(":")
    note = rest.partition(":")[0]
    return int(note) if kind == "supervision" and note.isdigit() else None


def _out(r: Notification) -> dict[str, Any]:
    return {
        "id": r.id, "ticket_id": r.ticket_id, "supervision_id": _supervision_of(r.key),
        "kind": r.kind, "kind_label": KIND_LABELS.get(r.kind, r.kind),
        "channel": r.channel, "channel_label": CHANNEL_LABELS.get(r.channel, r.channel), "transport": r.transport,
        "audience": "centre" if r.department_id is None else "department", "department_id": r.department_id,
        "recipient": r.recipient, "subject": r.subject, "body": r.body,
        "status": r.status, "status_label": _label(r), "error": r.error,
        "attempts": r.attempts, "created_at": _iso(r.created_at), "sent_at": _iso(r.sent_at),
        "next_attempt_at": _iso(r.next_attempt_at),
    }


def _label(r: Notification) -> str:
    if r.status == "pending" and r.attempts:
        return f"{RETRY_LABEL}（已尝试 {r.attempts} 次）"
    if r.status == "failed":
        return f"{STATUS_LABELS['failed']}（共尝试 {r.attempts} 次）"
    return STATUS_LABELS.get(r.status, r.status)
