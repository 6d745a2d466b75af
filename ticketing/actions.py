"""The ticket's workflow as the users drive it: one action at a time (转办, 签收, 退回, 延期, 答复,
回访, 督办…), links between reports of the same matter, and the deadline sweep that opens
supervision and reminds handlers when tickets turn yellow or red."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlmodel import select

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
        with session_scope(self.ctx.engine) as s:
            rows = s.exec(select(Ticket).where(
                Ticket.current_due.is_not(None),
                Ticket.current_due <= boundary,
                Ticket.status.not_in([*steps.CLOSED, Status.DRAFT]),
            )).all()
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
