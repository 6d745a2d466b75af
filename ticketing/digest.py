"""What leads, departments and reports read across many tickets: the lead's queue (extension
requests, returned tickets, open emergencies), a department's counters, the callback worklist,
the open supervision notes, and the flattened facts the report figures are computed from.
Read-only; no confidential reporter data leaves here (the worklist is the centre's, which may
call the reporter back; the other reads carry no caller fields)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from hotline.db import in_chunks
from ticketing.context import StoreContext, role_of
from ticketing.deadlines import DeadlineState, state, working_days_left, yellow_boundary
from ticketing.models import (
    CallRecord,
    Department,
    Status,
    Supervision,
    Ticket,
    TicketDepartment,
    TicketEvent,
    dial_line,
)
from ticketing.schemas import Actor, Forbidden

DONE = (Status.CLOSED, Status.ARCHIVED, Status.DRAFT)
QUEUE_LIMIT = 100


@dataclass(frozen=True, slots=True)
class TicketFact:
    """What the reports need of one ticket (the store's row, flattened)."""

    id: int
    created_at: datetime
    category: str
    handling_mode: str
    district: str = ""
    department: str = ""  # the lead department's name ("" = handled by the centre)
    title: str = ""
    text: str = ""  # the matter, for the hotspots
    due_at: datetime | None = None
    replied_at: datetime | None = None
    accept_due: datetime | None = None
    accepted_at: datetime | None = None
    satisfaction: str = ""
    returns: int = 0  # times the department sent it back
    redo_count: int = 0
    repeat_count: int = 0
    emergency: bool = False


@dataclass(frozen=True, slots=True)
class DeadlineFact:
    """What a notification may tell of a ticket: no reporter fields, by construction. Read without
    logging a confidential read (it never holds what that log protects)."""

    id: int
    number: str
    title: str
    status: str
    due: datetime | None  # the deadline that runs now
    department_id: int | None  # the lead department
    confidential: bool


DEADLINE_COLUMNS = (Ticket.id, Ticket.number, Ticket.title, Ticket.status, Ticket.current_due,
                    Ticket.lead_department_id, Ticket.confidential)


@dataclass(frozen=True, slots=True)
class Emergency:
    id: int
    number: str
    title: str
    at: float  # created, epoch seconds


class Digest:
    def __init__(self, ctx: StoreContext) -> None:
        self.ctx = ctx

    def lead_queue(self) -> dict[str, list[dict[str, Any]]]:
        """What waits for a lead: extension requests, returned tickets, open emergencies."""
        with Session(self.ctx.engine) as s:
            def q(*where: Any) -> list[dict[str, Any]]:
                rows = s.exec(select(Ticket).where(*where).order_by(Ticket.id).limit(QUEUE_LIMIT))
                return [_queued(t) for t in rows]

            return {
                "extensions": q(Ticket.status == Status.EXTENSION_REQUESTED),
                "returned": q(Ticket.status == Status.RETURNED),
                "emergencies": q(Ticket.emergency == sa.true(), Ticket.status.not_in(DONE)),  # type: ignore[attr-defined]
            }

    def emergencies(self, since: datetime) -> list[Emergency]:
        """Open emergency tickets (重大紧急) created since ``since``."""
        with Session(self.ctx.engine) as s:
            rows = s.exec(select(Ticket).where(Ticket.emergency == sa.true(), Ticket.created_at >= since,
                                               Ticket.status.not_in(DONE))).all()  # type: ignore[attr-defined]
            return [Emergency(t.id or 0, t.number or "", t.title, t.created_at.timestamp()) for t in rows]

    def facts(self, since: datetime, until: datetime) -> list[TicketFact]:
        """Tickets created in ``[since, until)``, flattened for the report figures."""
        with Session(self.ctx.engine) as s:
            rows = s.exec(select(Ticket).where(Ticket.created_at >= since.astimezone(UTC),
                                               Ticket.created_at < until.astimezone(UTC))).all()
            names = {d.id: d.name for d in s.exec(select(Department)).all()}
            ids = [t.id for t in rows]
            returns: Counter[int] = Counter()
            if ids:
                for tid in s.exec(select(TicketEvent.ticket_id).where(
                        TicketEvent.ticket_id.in_(ids), sa.func.lower(TicketEvent.action) == "return")):  # type: ignore[attr-defined]
                    returns[tid] += 1
        return [TicketFact(
            id=t.id or 0, created_at=t.created_at, category=str(t.category), handling_mode=str(t.handling_mode),
            district=t.district, department=names.get(t.lead_department_id, ""), title=t.title,
            text=f"{t.matter_state} {t.matter_demand}", due_at=t.due_at, replied_at=t.replied_at,
            accept_due=t.accept_due, accepted_at=t.accepted_at, satisfaction=t.satisfaction,
            returns=returns[t.id or 0], redo_count=t.redo_count, repeat_count=t.repeat_count, emergency=t.emergency,
        ) for t in rows]


class Worklists:
    """The centre's and the departments' worklists (read-only)."""

    def __init__(self, ctx: StoreContext) -> None:
        self.ctx = ctx

    def department_counters(self, actor: Actor) -> dict[str, int]:
        """A department's counters (新派单 · 即将超期 · 已超期 · 被退回 · 督办中) over the tickets it
        handles (lead or co-handling)."""
        if role_of(actor) != "department" or actor.department_id is None:
            raise Forbidden("只有承办单位可以查看本单位的工单统计")
        now = self.ctx.clock()
        boundary = yellow_boundary(now, self.ctx.calendar(), self.ctx.limits.yellow_days)
        live = Ticket.status.not_in([*DONE, Status.SATISFIED, Status.REPLIED])  # type: ignore[attr-defined]
        mine = sa.exists().where(TicketDepartment.ticket_id == Ticket.id,
                                 TicketDepartment.department_id == actor.department_id)
        with Session(self.ctx.engine) as s:
            def count(*where: Any) -> int:
                return s.execute(sa.select(sa.func.count()).select_from(Ticket).where(mine, *where)).scalar_one()

            returned = s.execute(sa.select(sa.func.count(sa.distinct(TicketEvent.ticket_id))).where(
                TicketEvent.action == "return", TicketEvent.actor_role == "department",
                TicketEvent.ticket_id.in_(sa.select(TicketDepartment.ticket_id).where(  # type: ignore[attr-defined]
                    TicketDepartment.department_id == actor.department_id)),
                TicketEvent.at >= now - timedelta(days=30))).scalar_one()
            supervised = s.execute(sa.select(sa.func.count(sa.distinct(Supervision.ticket_id))).where(
                Supervision.answered_at.is_(None),  # type: ignore[union-attr]
                Supervision.ticket_id.in_(sa.select(Ticket.id).where(mine, live)))).scalar_one()  # type: ignore[attr-defined]
            return {
                "new": count(Ticket.status == Status.TRANSFERRED),
                "due_soon": count(live, Ticket.current_due >= now, Ticket.current_due <= boundary),
                "overdue": count(live, Ticket.current_due < now),
                "returned": int(returned),
                "supervised": int(supervised),
            }

    def callbacks_due(self) -> list[dict[str, Any]]:
        """回访: replied tickets, the soonest due first (3 working days after the reply; overdue red),
        each with the citizen's IVR survey of the calls that produced it."""
        now = self.ctx.clock()
        cal = self.ctx.calendar()
        with Session(self.ctx.engine) as s:
            rows = s.exec(select(Ticket).where(Ticket.status == Status.REPLIED)
                          .order_by(Ticket.callback_due, Ticket.id).limit(500)).all()  # type: ignore[arg-type]
            ids = [t.id for t in rows]
            surveys: dict[int, int] = {}
            if ids:
                for tid, survey in s.exec(select(CallRecord.ticket_id, CallRecord.survey).where(
                        CallRecord.ticket_id.in_(ids), CallRecord.survey.is_not(None))):  # type: ignore[attr-defined,union-attr]
                    surveys[tid] = survey
            depts = {d.id: d for d in s.exec(select(Department))}
        out = []
        for t in rows:
            colour = state(t.callback_due, now, cal, self.ctx.limits.yellow_days)
            out.append({
                "id": t.id, "number": t.number, "title": t.title, "caller_number": t.caller_number,
                "caller_name": t.caller_name, "contact": t.contact, "confidential": t.confidential,
                "department": dept.name if (dept := depts.get(t.lead_department_id)) else "",
                "department_line": dial_line(dept.sip_line, dept.phones) if dept else "",  # 回访's 三方 rings it
                "reply_text": t.reply_text,
                "replied_at": t.replied_at.isoformat() if t.replied_at else None,
                "callback_due": t.callback_due.isoformat() if t.callback_due else None,
                "deadline_state": colour.value, "overdue": colour is DeadlineState.RED,
                "working_days_left": working_days_left(t.callback_due, now, cal),
                "ivr_survey": surveys.get(t.id or 0), "redo_count": t.redo_count,
            })
        return out

    def running_deadlines(self, until: datetime) -> list[DeadlineFact]:
        """Open tickets whose running deadline falls at or before ``until`` (overdue ones included),
        soonest first: what deadline reminders are about."""
        stmt = (sa.select(*DEADLINE_COLUMNS)
                .where(Ticket.current_due.is_not(None), Ticket.current_due <= until,  # type: ignore[union-attr,operator]
                       Ticket.status.not_in(DONE))  # type: ignore[attr-defined]
                .order_by(Ticket.current_due, Ticket.id))
        with Session(self.ctx.engine) as s:
            return [DeadlineFact(*row) for row in s.execute(stmt)]

    def deadline_facts(self, ids: Iterable[int]) -> dict[int, DeadlineFact]:
        """The same facts for the tickets ``ids`` (the ones a supervision note is about)."""
        wanted = sorted(set(ids))
        out: dict[int, DeadlineFact] = {}
        with Session(self.ctx.engine) as s:
            for chunk in in_chunks(wanted):
                stmt = sa.select(*DEADLINE_COLUMNS).where(Ticket.id.in_(chunk))  # type: ignore[union-attr]
                out.update((f.id, f) for f in (DeadlineFact(*row) for row in s.execute(stmt)))
        return out

    def supervisions(self, open_only: bool = True, department_id: int | None = None) -> list[dict[str, Any]]:
        """督办 notes, newest first: on which ticket, why, by whom, and the department's answer."""
        q = select(Supervision, Ticket).join(Ticket, Ticket.id == Supervision.ticket_id)  # type: ignore[arg-type]
        if open_only:
            q = q.where(Supervision.answered_at.is_(None), Ticket.status.not_in(DONE))  # type: ignore[union-attr,attr-defined]
        if department_id is not None:
            q = q.where(sa.exists().where(TicketDepartment.ticket_id == Ticket.id,
                                          TicketDepartment.department_id == department_id))
        with Session(self.ctx.engine) as s:
            rows = s.exec(q.order_by(Supervision.id.desc()).limit(500)).all()  # type: ignore[union-attr]
            names = {d.id: d.name for d in s.exec(select(Department))}
        return [{
            "id": sup.id, "ticket_id": t.id, "number": t.number, "title": t.title, "reason": sup.reason,
            "note": sup.note, "by": sup.by, "opened_at": sup.opened_at.isoformat(),
            "department": names.get(t.lead_department_id, ""), "lead_department_id": t.lead_department_id,
            "confidential": t.confidential, "answer": sup.answer,
            "answered_by": sup.answered_by, "answered_at": sup.answered_at.isoformat() if sup.answered_at else None,
        } for sup, t in rows]


def _queued(t: Ticket) -> dict[str, Any]:
    return {"id": t.id, "number": t.number, "title": t.title, "status": Status(t.status).label,
            "due": t.current_due.isoformat() if t.current_due else None,
            "extension_days": t.extension_requested_days, "return_reason": t.return_reason,
            "supervised": t.supervision_count}
