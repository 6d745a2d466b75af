"""The notification log: what was sent to whom, and the guard that sends each message once.

A sweep *claims* a message by inserting its row under its idempotency key before sending; a key
already there (sent, failed, or claimed by another process a moment ago) is skipped. So two web
nodes, or a restart in the middle of a sweep, never send a reminder twice. A failed send is
claimed again after a back-off, a few times; a claim whose process died mid-send is taken over
once it is stale.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, select

from notify.channels import Delivery, Message
from notify.models import CHANNEL_LABELS, KIND_LABELS, STATUS_LABELS, Notification

MAX_ATTEMPTS = 4
BACKOFF = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30))  # after failure 1, 2, 3
STALE = timedelta(minutes=10)  # far beyond any channel's timeout: the claiming process is gone
CHUNK = 500  # keys per IN (…): SQLite's and PostgreSQL's parameter limits stay far away
RETRY_BATCH = 200

TABLE = Notification.__table__


def backoff(attempts: int) -> timedelta:
    """The wait before attempt ``attempts + 1``.

    >>> [int(backoff(n).total_seconds()) for n in (1, 2, 3, 9)]
    [60, 300, 1800, 1800]
    """
    return BACKOFF[min(attempts, len(BACKOFF)) - 1]


class NotificationLog:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def claim_new(self, messages: Sequence[Message], now: datetime) -> list[tuple[int, Message]]:
        """The messages whose key is not in the log yet, each inserted as claimed (``sending``, one
        attempt) for this caller to send now."""
        fresh = {m.key: m for m in messages}
        if not fresh:
            return []
        with self.engine.connect() as conn:
            keys = list(fresh)
            for i in range(0, len(keys), CHUNK):
                for key in conn.execute(sa.select(TABLE.c.key).where(TABLE.c.key.in_(keys[i:i + CHUNK]))).scalars():
                    fresh.pop(key, None)
        insert = postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert
        out = []
        for m in fresh.values():
            # one statement per transaction: SQLite takes its write lock at once (no read to upgrade,
            # which could fail under another writer), and a key another process inserted since the
            # look-up is skipped by the database itself
            stmt = (insert(TABLE).values(**_row(m, now)).on_conflict_do_nothing(index_elements=["key"])
                    .returning(TABLE.c.id))
            with self.engine.begin() as conn:
                row_id = conn.execute(stmt).scalar_one_or_none()
            if row_id is not None:
                out.append((row_id, m))
        return out

    def claim_retries(self, now: datetime, limit: int = RETRY_BATCH) -> list[tuple[int, Message]]:
        """Failed sends whose back-off has passed, and stale claims, claimed again (one more
        attempt); a stale claim that used its last attempt is marked failed for good."""
        due = sa.or_(sa.and_(TABLE.c.status == "failed", TABLE.c.next_attempt_at <= now),
                     sa.and_(TABLE.c.status == "sending", TABLE.c.claimed_at < now - STALE))
        with Session(self.engine) as s:
            rows = s.exec(select(Notification).where(due).order_by(TABLE.c.id).limit(limit)).all()
        out = []
        for r in rows:
            # compare-and-set: of two processes retrying the same row, one wins
            same = (TABLE.c.id == r.id, TABLE.c.status == r.status, TABLE.c.attempts == r.attempts)
            if r.attempts >= MAX_ATTEMPTS:
                change = {"status": "failed", "next_attempt_at": None, "error": (r.error or "发送中断，结果未知")[:500]}
            else:
                change = {"status": "sending", "attempts": r.attempts + 1, "claimed_at": now, "next_attempt_at": None}
            with self.engine.begin() as conn:
                won = conn.execute(sa.update(TABLE).where(*same).values(**change)).rowcount == 1
            if won and change["status"] == "sending":
                out.append((r.id, _message(r)))
        return out

    def finish(self, notification_id: int, delivery: Delivery, now: datetime) -> None:
        """Record how a claimed send went; a failure is retried after :func:`backoff` until
        ``MAX_ATTEMPTS``."""
        change: dict[str, Any] = {"status": delivery.status, "transport": delivery.transport,
                                  "error": delivery.error[:500], "next_attempt_at": None}
        if delivery.status != "failed":
            change["sent_at"] = now
        with self.engine.begin() as conn:
            # the row is ours while it is claimed: nobody else changes its attempts meanwhile
            attempts = conn.execute(sa.select(TABLE.c.attempts).where(TABLE.c.id == notification_id)).scalar()
            if delivery.status == "failed" and attempts is not None and attempts < MAX_ATTEMPTS:
                change["next_attempt_at"] = now + backoff(attempts)
            conn.execute(sa.update(TABLE).where(TABLE.c.id == notification_id).values(**change))

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


def _row(m: Message, now: datetime) -> dict[str, Any]:
    return {"key": m.key, "ticket_id": m.ticket_id, "department_id": m.department_id, "kind": m.kind,
            "channel": m.channel, "transport": "", "recipient": m.to[:200], "subject": m.subject[:200],
            "body": m.body, "status": "sending", "error": "", "attempts": 1, "created_at": now, "claimed_at": now}


def _message(r: Notification) -> Message:
    return Message(channel=r.channel, to=r.recipient, subject=r.subject, body=r.body,  # type: ignore[arg-type]
                   ticket_id=r.ticket_id, kind=r.kind, key=r.key, department_id=r.department_id)


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
        "status": r.status, "status_label": STATUS_LABELS.get(r.status, r.status), "error": r.error,
        "attempts": r.attempts, "created_at": _iso(r.created_at), "sent_at": _iso(r.sent_at),
        "next_attempt_at": _iso(r.next_attempt_at),
    }
