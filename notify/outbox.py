"""The outbox: every notification is a row under its idempotency key before anything is sent, and
each row is sent by one sender at a time, under a lease.

::

    enqueue ──▶ pending ──claim──▶ sending ──finish──▶ sent / logged
                  ▲                  │  │
                  │  failed, attempts left: pending again after a back-off
                  │                  │  └─ out of attempts ──▶ failed (the reason stays, in Chinese)
                  └── the lease ran out (the sender died): claimable again, one attempt more

- **enqueue** inserts ``ON CONFLICT (key) DO NOTHING``: a sweep that runs twice, two web nodes
  sweeping at once, a restart in the middle of a pass add nothing the key already names;
- **claim** is one ``UPDATE … WHERE id = (SELECT … due … LIMIT 1 [FOR UPDATE SKIP LOCKED])
  RETURNING`` with a fresh token, ``claimed_by`` and ``lease_until``: atomic on SQLite (one writer
  at a time) and on PostgreSQL (the row lock; SKIP LOCKED lets the other senders pass by), the
  pattern of the transcription queue (recordings/worker.py);
- **finish** needs the claim's token while the row is still ``sending``: a sender whose lease ran
  out and whose row another sender took over changes nothing (no "failed" over a "sent", no third
  attempt scheduled by a late loser).

What no outbox can promise: a sender killed *after* the SMTP server answered 250 to the message
(or the SMS gateway 200) and *before* ``finish`` committed leaves a claim that looks unfinished;
when its lease runs out the message is sent again. That window is one round trip to the database
wide. The re-send is recognisable as the same message: every e-mail of one key carries the same
``Message-ID`` (notify.channels.message_id; mail clients and archives fold duplicates by it), and
every SMS the same ``Idempotency-Key`` header (a gateway that honours it sends once). A sender
killed *before* the server's acknowledgement loses nothing and sends nothing twice: an SMTP server
keeps no message whose DATA it has not acknowledged.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from notify.channels import Delivery, Message
from notify.models import Notification

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 4
BACKOFF = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30))  # after failure 1, 2, 3
# far beyond any channel's timeouts (10 s per step): a claim this old has no living sender
LEASE = timedelta(minutes=10)
CHUNK = 200  # rows per INSERT / keys per IN (…): the parameter limits of both databases stay far away
INTERRUPTED = "发送进程在发送中途退出（共尝试 {n} 次，最后一次结果未知），已停止重试"

TABLE = Notification.__table__  # type: ignore[attr-defined]


def backoff(attempts: int) -> timedelta:
    """The wait before attempt ``attempts + 1``.

    >>> [int(backoff(n).total_seconds()) for n in (1, 2, 3, 9)]
    [60, 300, 1800, 1800]
    """
    return BACKOFF[min(attempts, len(BACKOFF)) - 1]


def default_worker() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:64]


@dataclass(frozen=True, slots=True)
class Claim:
    """One message claimed for sending: ``token`` proves it is still ours when it is finished."""

    id: int
    token: str
    attempt: int  # 1 for the first try
    message: Message


class Outbox:
    def __init__(self, engine: sa.Engine, *, worker: str = "", lease: timedelta = LEASE,
                 max_attempts: int = MAX_ATTEMPTS) -> None:
        self.engine = engine
        self.worker = worker or default_worker()
        self.lease = lease
        self.max_attempts = max_attempts

    def enqueue(self, messages: Sequence[Message], now: datetime) -> int:
        """Add the messages whose key is not in the outbox yet, pending; how many were new."""
        fresh = {m.key: m for m in messages}
        if not fresh:
            return 0
        keys = list(fresh)
        with self.engine.connect() as conn:  # a read first: a pass re-plans mostly what is there already
            for i in range(0, len(keys), CHUNK):
                for key in conn.execute(sa.select(TABLE.c.key).where(TABLE.c.key.in_(keys[i:i + CHUNK]))).scalars():
                    fresh.pop(key, None)
        insert = postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert
        rows = [_row(m, now) for m in fresh.values()]
        added = 0
        for i in range(0, len(rows), CHUNK):
            # one statement per transaction: SQLite takes its write lock at once (no read to
            # upgrade, which could fail under another writer), and a key another process inserted
            # since the read above is skipped by the database itself
            stmt = (insert(TABLE).values(rows[i:i + CHUNK]).on_conflict_do_nothing(index_elements=["key"])
                    .returning(TABLE.c.id))  # what was inserted (a multi-row insert's rowcount is -1 on psycopg)
            with self.engine.begin() as conn:
                added += len(conn.execute(stmt).all())
        return added

    def claim(self, now: datetime) -> Claim | None:
        """The oldest message due (pending and past its back-off, or sending with its lease run
        out), claimed for this sender with one more attempt; None when nothing is due."""
        token = uuid.uuid4().hex
        due = self._due(now)
        pick = sa.select(TABLE.c.id).where(due).order_by(TABLE.c.id).limit(1).with_for_update(skip_locked=True)
        stmt = (sa.update(TABLE).where(TABLE.c.id == pick.scalar_subquery(), due)
                .values(status="sending", token=token, claimed_by=self.worker, claimed_at=now,
                        lease_until=now + self.lease, attempts=TABLE.c.attempts + 1, next_attempt_at=None)
                .returning(TABLE.c.id, TABLE.c.attempts, TABLE.c.channel, TABLE.c.recipient, TABLE.c.subject,
                           TABLE.c.body, TABLE.c.ticket_id, TABLE.c.kind, TABLE.c.key, TABLE.c.department_id))
        with self.engine.begin() as conn:
            row = conn.execute(stmt).first()
        if row is None:
            return None
        message = Message(channel=row.channel, to=row.recipient, subject=row.subject, body=row.body,
                          ticket_id=row.ticket_id, kind=row.kind, key=row.key, department_id=row.department_id)
        return Claim(row.id, token, row.attempts, message)

    def finish(self, claim: Claim, delivery: Delivery, now: datetime) -> bool:
        """Record how a claimed send went: sent (or logged), or failed and pending again after
        :func:`backoff`, or failed for good after ``max_attempts``. False (nothing changed) when
        the claim is no longer ours: its lease ran out and another sender took the row over."""
        change: dict[str, Any] = {"status": delivery.status, "transport": delivery.transport,
                                  "error": delivery.error[:500], "lease_until": None, "next_attempt_at": None}
        if delivery.status == "failed" and claim.attempt < self.max_attempts:
            change |= {"status": "pending", "next_attempt_at": now + backoff(claim.attempt)}
        elif delivery.status != "failed":
            change["sent_at"] = now
        ours = (TABLE.c.id == claim.id, TABLE.c.token == claim.token, TABLE.c.status == "sending")
        with self.engine.begin() as conn:
            won = conn.execute(sa.update(TABLE).where(*ours).values(**change)).rowcount == 1
        if not won:
            log.warning("notification %s (%s): claim lost before it was finished (%s); another sender has it",
                        claim.id, claim.message.key, delivery.status)
        return won

    def reap(self, now: datetime) -> int:
        """Give up the claims whose sender died on their last attempt: failed, with why."""
        dead = sa.and_(TABLE.c.status == "sending", TABLE.c.lease_until < now,
                       TABLE.c.attempts >= self.max_attempts)
        with self.engine.begin() as conn:
            n = conn.execute(sa.update(TABLE).where(dead).values(
                status="failed", lease_until=None, next_attempt_at=None,
                error=INTERRUPTED.format(n=self.max_attempts))).rowcount
        return max(n, 0)

    def _due(self, now: datetime) -> sa.ColumnElement[bool]:
        waiting = sa.and_(TABLE.c.status == "pending",
                          sa.or_(TABLE.c.next_attempt_at.is_(None), TABLE.c.next_attempt_at <= now))
        abandoned = sa.and_(TABLE.c.status == "sending", TABLE.c.lease_until < now,
                            TABLE.c.attempts < self.max_attempts)
        return sa.or_(waiting, abandoned)


def _row(m: Message, now: datetime) -> dict[str, Any]:
    return {"key": m.key, "ticket_id": m.ticket_id, "department_id": m.department_id, "kind": m.kind,
            "channel": m.channel, "transport": "", "recipient": m.to[:200], "subject": m.subject[:200],
            "body": m.body, "status": "pending", "error": "", "attempts": 0, "created_at": now,
            "claimed_at": None, "claimed_by": "", "token": "", "lease_until": None, "next_attempt_at": None,
            "sent_at": None}
