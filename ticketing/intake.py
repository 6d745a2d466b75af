"""Other channels (网站、微信、短信): submissions wait here until an operator confirms each into a
ticket or rejects it, and the standard's 3-minute response (004 §5.1.2.3) is measured from the
moment a submission arrived to the moment an operator handled it.

A bridge (WeChat, SMS gateway) may send the same message twice: its ``external_id`` keeps one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from pydantic import Field
from sqlmodel import Session, select

from hotline.db import session_scope
from ticketing.context import StoreContext, role_of
from ticketing.models import LONG, MEDIUM, SHORT, IntakeSubmission
from ticketing.schemas import Actor, Forbidden, InvalidInput, NotFound, TicketCreate, TicketRead, _Strict, parse
from ticketing.tickets import Tickets

RESPOND_WITHIN = timedelta(minutes=3)
CHANNELS = {"web": "网站", "wechat": "微信", "sms": "短信", "api": "接口"}


class SubmissionIn(_Strict):
    """What a citizen (or a bridge on their behalf) sends."""

    name: str = Field(default="", max_length=SHORT)
    contact: str = Field(min_length=5, max_length=SHORT)
    place: str = Field(default="", max_length=MEDIUM)
    text: str = Field(min_length=5, max_length=LONG)
    confidential: bool = False
    external_id: str | None = Field(default=None, max_length=SHORT)


@dataclass(frozen=True, slots=True)
class SubmissionRead:
    id: int
    channel: str
    channel_label: str
    name: str
    contact: str
    place: str
    text: str
    confidential: bool
    received_at: datetime
    respond_by: datetime
    status: str
    handled_at: datetime | None
    handled_by: str
    ticket_id: int | None
    note: str
    on_time: bool | None  # handled within 3 minutes; None while pending and not yet late


class Intake:
    def __init__(self, ctx: StoreContext, tickets: Tickets) -> None:
        self.ctx = ctx
        self.tickets = tickets

    def submit(self, channel: str, data: SubmissionIn | Mapping[str, Any] | bytes | str) -> SubmissionRead:
        if channel not in CHANNELS:
            raise InvalidInput([f"渠道须为：{'、'.join(CHANNELS)}"])
        body = data if isinstance(data, SubmissionIn) else parse(SubmissionIn, data)
        now = self.ctx.clock()
        with session_scope(self.ctx.engine) as s:
            if body.external_id:
                known = s.exec(select(IntakeSubmission).where(IntakeSubmission.channel == channel,
                                                              IntakeSubmission.external_id == body.external_id)).first()
                if known is not None:
                    return self._read(known, now)
            row = IntakeSubmission(channel=channel, received_at=now, respond_by=now + RESPOND_WITHIN,
                                   **body.model_dump())
            s.add(row)
            s.flush()
            return self._read(row, now)

    def pending(self) -> list[SubmissionRead]:
        """What waits for an operator, the oldest (the most urgent) first."""
        now = self.ctx.clock()
        with Session(self.ctx.engine) as s:
            rows = s.exec(select(IntakeSubmission).where(IntakeSubmission.status.in_(("pending", "handling")))  # type: ignore[attr-defined]
                          .order_by(IntakeSubmission.received_at).limit(200))
            return [self._read(r, now) for r in rows]

    def recent(self, since: datetime) -> list[SubmissionRead]:
        now = self.ctx.clock()
        with Session(self.ctx.engine) as s:
            rows = s.exec(select(IntakeSubmission).where(IntakeSubmission.received_at >= since)
                          .order_by(IntakeSubmission.received_at.desc()).limit(500))
            return [self._read(r, now) for r in rows]

    def confirm(self, submission_id: int, ticket: TicketCreate | Mapping[str, Any] | bytes | str,
                actor: Actor) -> TicketRead:
        """An operator turns the submission into a ticket (the form filled from it, then corrected).
        Two operators confirming the same submission at once get one ticket: the first claims it."""
        body = ticket if isinstance(ticket, TicketCreate) else parse(TicketCreate, ticket)
        channel = self._claim(submission_id, actor)
        try:
            created = self.tickets.create(body.model_copy(update={"channel": channel}), actor)
        except BaseException:
            self._release(submission_id)
            raise
        with session_scope(self.ctx.engine) as s:
            row = s.get(IntakeSubmission, submission_id)
            assert row is not None
            row.status, row.handled_at, row.ticket_id = "confirmed", self.ctx.clock(), created.id
        return created

    def reject(self, submission_id: int, reason: str, actor: Actor) -> SubmissionRead:
        """Not a matter for a ticket (spam, a duplicate, out of scope): the reason is kept."""
        if not reason.strip():
            raise InvalidInput(["请填写不受理的原因"])
        self._claim(submission_id, actor)
        now = self.ctx.clock()
        with session_scope(self.ctx.engine) as s:
            row = s.get(IntakeSubmission, submission_id)
            assert row is not None
            row.status, row.handled_at, row.note = "rejected", now, reason[:MEDIUM]
            s.flush()
            return self._read(row, now)

    def figures(self, since: datetime, until: datetime | None = None) -> dict[str, Any]:
        """The 3-minute response over submissions received in ``[since, until)``: handled on time,
        late, and what still waits (and for how long)."""
        now = self.ctx.clock()
        until = until or now
        with Session(self.ctx.engine) as s:
            rows = list(s.exec(select(IntakeSubmission).where(IntakeSubmission.received_at >= since,
                                                              IntakeSubmission.received_at < until)))
            waiting = list(s.exec(select(IntakeSubmission.received_at).where(
                IntakeSubmission.status.in_(("pending", "handling")))))  # type: ignore[attr-defined]
        judged = [r for r in (self._on_time(x, now) for x in rows) if r is not None]
        oldest = min(waiting, default=None)
        return {
            "received": len(rows),
            "handled": sum(1 for r in rows if r.status != "pending"),
            "on_time": sum(judged),
            "late": len(judged) - sum(judged),
            "pct_on_time": round(100.0 * sum(judged) / len(judged), 1) if judged else None,
            "pending": len(waiting),
            "oldest_wait_s": round((now - oldest).total_seconds(), 1) if oldest else None,
            "target_s": int(RESPOND_WITHIN.total_seconds()),
        }

    # --- internals ------------------------------------------------------------------------------

    def _claim(self, submission_id: int, actor: Actor) -> str:
        """Take a pending submission for this operator (one statement: no second taker); its channel label."""
        if role_of(actor) not in ("operator", "lead", "admin"):
            raise Forbidden("只有话务员和值班长可以处理网络来件")
        table = IntakeSubmission.__table__
        with session_scope(self.ctx.engine) as s:
            taken = s.execute(sa.update(table).where(table.c.id == submission_id, table.c.status == "pending")
                              .values(status="handling", handled_by=actor.username)).rowcount
            row = s.get(IntakeSubmission, submission_id)
            if row is None:
                raise NotFound("来件不存在")
            if not taken:
                raise InvalidInput([f"该来件已由{row.handled_by}处理"])
            return CHANNELS.get(row.channel, row.channel)

    def _release(self, submission_id: int) -> None:
        table = IntakeSubmission.__table__
        with session_scope(self.ctx.engine) as s:
            s.execute(sa.update(table).where(table.c.id == submission_id, table.c.status == "handling")
                      .values(status="pending", handled_by=""))

    @staticmethod
    def _on_time(row: IntakeSubmission, now: datetime) -> bool | None:
        due = row.respond_by
        if row.handled_at is not None:
            return row.handled_at <= due
        return False if now > due else None

    def _read(self, r: IntakeSubmission, now: datetime) -> SubmissionRead:
        return SubmissionRead(r.id or 0, r.channel, CHANNELS.get(r.channel, r.channel), r.name, r.contact, r.place,
                              r.text, r.confidential, r.received_at, r.respond_by, r.status, r.handled_at,
                              r.handled_by, r.ticket_id, r.note, self._on_time(r, now))
