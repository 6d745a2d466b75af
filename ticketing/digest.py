"""What leads and reports read across many tickets: the lead's queue (extension requests,
returned tickets, open emergencies) and the flattened facts the report figures are computed from.
Read-only; no confidential reporter data leaves here (facts carry no caller fields)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from ticketing.context import StoreContext
from ticketing.models import Department, Status, Ticket, TicketEvent

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


def _queued(t: Ticket) -> dict[str, Any]:
    return {"id": t.id, "number": t.number, "title": t.title, "status": Status(t.status).label,
            "due": t.current_due.isoformat() if t.current_due else None,
            "extension_days": t.extension_requested_days, "return_reason": t.return_reason,
            "supervised": t.supervision_count}
