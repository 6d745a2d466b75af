"""The ticket's workflow as the users drive it: one action at a time (转办, 签收, 退回, 延期, 答复,
回访, 督办…), links between reports of the same matter, and the deadline sweep that opens
supervision and reminds handlers when tickets turn yellow or red.

One at a time, per ticket: an action, and the sweep, take the ticket (:func:`hold`) before they
read it, so that of two at once (a double click, two operators, two web nodes sweeping) the
second decides on the first's result — a 回访 is recorded once and the second is refused by the
workflow, an automatic supervision is opened once."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from hotline.db import session_scope
from ticketing import steps
from ticketing.context import StoreContext, role_of
from ticketing.deadlines import DeadlineState, state, yellow_boundary
from ticketing.directory import Directory
from ticketing.models import Status, Supervision, Ticket, TicketLink
from ticketing.schemas import (
    ActionParams,
    Actor,
    Forbidden,
    InvalidInput,
    SystemActor,
    TicketRead,
    TicketReminder,
    parse,
)
from ticketing.tickets import Tickets


def hold(s: Session, ticket_ids: Iterable[int]) -> None:
    """Take the tickets for this transaction before anything of them is read.

    PostgreSQL: their row locks (``SELECT … FOR UPDATE``, in id order: two holders never wait on
    each other crosswise), kept until commit. SQLite: the database's write lock, by writing first —
    pysqlite begins the transaction only at the first write, so a step that read first could decide
    on a state another step is changing (both would pass the workflow's check).
    """
    ids = sorted(set(ticket_ids))
    if not ids:
        return
    table = Ticket.__table__  # type: ignore[attr-defined]
    if s.get_bind().dialect.name != "postgresql":  # the lock is the whole database's: one write takes it
        s.execute(sa.update(table).where(table.c.id == ids[0]).values(id=table.c.id))  # and changes nothing
        return
    for i in range(0, len(ids), 1000):  # a city's whole backlog stays far from the parameter limit
        s.execute(sa.select(table.c.id).where(table.c.id.in_(ids[i:i + 1000])).order_by(table.c.id).with_for_update())


class TicketActions:
    def __init__(self, ctx: StoreContext, tickets: Tickets, directory: Directory) -> None:
        self.ctx = ctx
        self.tickets = tickets
        self.directory = directory

    def act(self, ticket_id: int, action: str, params: ActionParams | Mapping[str, Any] | bytes | str | None,
            actor: Actor) -> TicketRead:
        """Apply a workflow action (see ``ticketing.workflow.TABLE``) and record it."""
        p = params if isinstance(params, ActionParams) else parse(ActionParams, params or {})
        now = self.ctx.clock()
        with session_scope(self.ctx.engine) as s:
            hold(s, [ticket_id])  # a second click, or another operator, waits and then sees this one's result
            t = self.tickets.visible(s, ticket_id, actor)
            steps.apply(self.ctx, self.directory, s, t, action, p, actor, now)
            return self.tickets.read(s, t, actor, now)

    # thin, named wrappers for callers that prefer them
    def register(self, ticket_id: int, actor: Actor) -> TicketRead:
        return self.act(ticket_id, "register", None, actor)

    def transfer(self, ticket_id: int, department_id: int, opinion: str, actor: Actor,
                 co_department_ids: Iterable[int] = ()) -> TicketRead:
        return self.act(ticket_id, "transfer", ActionParams(department_id=department_id, opinion=opinion,
                                                            co_department_ids=list(co_department_ids)), actor)

    def accept(self, ticket_id: int, actor: Actor) -> TicketRead:
        return self.act(ticket_id, "accept", None, actor)

    def return_(self, ticket_id: int, reason: str, actor: Actor) -> TicketRead:
        return self.act(ticket_id, "return", ActionParams(reason=reason), actor)

    def reply(self, ticket_id: int, result: str, actor: Actor) -> TicketRead:
        return self.act(ticket_id, "reply", ActionParams(result=result), actor)

    def callback(self, ticket_id: int, satisfaction: str, result: str, actor: Actor) -> TicketRead:
        return self.act(ticket_id, "callback", ActionParams(satisfaction=satisfaction, result=result), actor)

    def supervise(self, ticket_id: int, reason: str, actor: Actor) -> TicketRead:
        return self.act(ticket_id, "supervise", ActionParams(reason=reason), actor)

    def link(self, ticket_id: int, other_id: int, actor: Actor) -> TicketRead:
        """Link two reports of the same matter without closing either; the earlier counts a repeat."""
        if role_of(actor) not in ("operator", "lead", "admin"):
            raise Forbidden("只有话务员和值班长可以关联工单")
        now = self.ctx.clock()
        with session_scope(self.ctx.engine) as s:
            t = self.tickets.visible(s, ticket_id, actor)
            other = self.tickets.visible(s, other_id, actor)
            if t.id == other.id:
                raise InvalidInput(["不能与自身关联"])
            first, second = sorted((t, other), key=lambda x: x.id)
            if s.get(TicketLink, (second.id, first.id)) is None:
                s.add(TicketLink(ticket_id=second.id, other_id=first.id, kind="linked", at=now))
                steps.record_event(s, second, actor, "link", second.status, second.status, now,
                                   f"关联工单{first.number}")
                steps.count_repeat(self.ctx, s, first, actor, now, f"关联工单{second.number}")
            return self.tickets.read(s, t, actor, now)

    def sweep(self) -> list[TicketReminder]:
        """Tickets turning yellow or red: open the automatic supervision once, return reminders.

        Run it periodically (the composition root's housekeeping); reminders go out on the bus.
        """
        now = self.ctx.clock()
        cal = self.ctx.calendar()
        boundary = yellow_boundary(now, cal, self.ctx.limits.yellow_days)
        out = []
        due = (Ticket.current_due.is_not(None), Ticket.current_due <= boundary,  # type: ignore[union-attr,operator]
               Ticket.status.not_in([*steps.CLOSED, Status.DRAFT]))  # type: ignore[attr-defined]
        with session_scope(self.ctx.engine) as s:
            # another node's sweep at the same moment waits, then finds the supervision this one opened
            hold(s, s.exec(select(Ticket.id).where(*due)).all())  # type: ignore[arg-type]
            rows = s.exec(select(Ticket).where(*due)).all()
            for t in rows:
                colour = state(t.current_due, now, cal, self.ctx.limits.yellow_days)
                reason = "overdue" if colour is DeadlineState.RED else "near_deadline"
                done = s.exec(select(Supervision.id).where(
                    Supervision.ticket_id == t.id,
                    Supervision.reason == reason,
                    Supervision.opened_at >= (t.transferred_at or t.created_at),
                )).first()
                if done is None:
                    steps.open_supervision(s, t, reason, "", SystemActor(), now)
                out.append(TicketReminder(at=now.timestamp(), ticket_id=t.id, number=t.number or "",
                                          state=colour.value, due=t.current_due.isoformat(),
                                          department_id=t.lead_department_id))
        return out
