"""What the department portal reads of the ticket store, as one department sees it: its tickets by
view, each with the step it waits for, and one ticket with everything the side panel shows.

Every read goes through the store with the department's own principal, so the store scopes it
(only tickets the department handles, as lead or co-handler) and masks a confidential reporter;
nothing here widens that. Synchronous: the routes call these in the thread pool.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import timedelta
from typing import Any

from hotline.identity import Principal
from notify.log import NotificationLog
from ticketing.schemas import TicketRead
from ticketing.steps import SUPERVISE_AUTO
from ticketing.store import Store

# the portal's filter → the statuses it shows ("supervised" is the open supervision notes instead)
VIEWS: dict[str, tuple[str, ...]] = {
    "todo": ("transferred", "accepted", "in_progress", "extension_requested"),
    "new": ("transferred",),
    "handling": ("accepted", "in_progress"),
    "extension": ("extension_requested",),
    "supervised": (),
    "replied": ("replied", "satisfied", "unsatisfied"),
    "returned": ("returned",),
    "closed": ("closed", "archived"),
    "all": (),
}
SORTS = ("current_due", "-created_at")
SUPERVISED_CAP = 100  # tickets under open supervision listed at once (a department has a handful)

# what a ticket waits for, from where this department stands
_LEAD_WAITS = {
    "transferred": "签收",
    "accepted": "办理",
    "in_progress": "答复",
    "extension_requested": "延期审批（热线中心）",
    "returned": "重新派单（热线中心）",
    "replied": "回访（热线中心）",
    "satisfied": "办结（热线中心）",
    "unsatisfied": "重办或办结（热线中心）",
}
_CO_WAITS = _LEAD_WAITS | {"transferred": "主办单位签收", "accepted": "协办：办理进展",
                           "in_progress": "协办：办理进展", "extension_requested": "协办：办理进展"}


def waits_for(t: TicketRead, department_id: int, open_note: bool) -> str:
    """The step the ticket waits for (签收 / 办理 / 答复 …); an unanswered supervision note comes first.

    The centre's steps say so, so a department does not wait on itself.
    """
    if open_note and "answer_supervision" in t.allowed_actions:
        return "回复督办"
    lead = t.lead_department_id == department_id
    return (_LEAD_WAITS if lead else _CO_WAITS).get(t.status, "—")


def _row(t: TicketRead, who: Principal, open_notes: set[int]) -> dict[str, Any]:
    mine = next((d for d in t.departments if d.id == who.department_id), None)
    row = t.model_dump(mode="json", include={
        "id", "number", "title", "category", "status", "status_label", "deadline_state", "deadline_label",
        "working_days_left", "current_due", "caller_name", "caller_number", "masked", "emergency",
        "created_at", "allowed_actions", "extension_requested_days"})
    row.update(lead=t.lead_department_id == who.department_id, assignee=mine.assignee if mine else "",
               open_supervision=t.id in open_notes, waits_for=waits_for(t, who.department_id or 0, t.id in open_notes))
    return row


def open_notes(store: Store, who: Principal) -> list[dict[str, Any]]:
    """The department's unanswered supervision notes, newest first (the worklist's own read)."""
    return store.worklists.supervisions(open_only=True, department_id=who.department_id)


def tickets(store: Store, who: Principal, view: str, deadline_state: str, q: str, sort: str,
            page: int, per_page: int) -> dict[str, Any]:
    """One page of the department's tickets in ``view`` (``InvalidInput`` for a bad filter)."""
    notes = open_notes(store, who)
    noted = {n["ticket_id"] for n in notes}
    if view == "supervised":
        ids = list(dict.fromkeys(n["ticket_id"] for n in notes))[:SUPERVISED_CAP]
        reads = [store.tickets.get(i, who) for i in ids]
        reads = [t for t in reads if not deadline_state or t.deadline_state == deadline_state]
        return {"items": [_row(t, who, noted) for t in reads], "total": len(reads), "total_capped": False,
                "page": 1, "per_page": len(reads) or per_page}
    query: dict[str, Any] = {"status": list(VIEWS[view]), "q": q, "sort": sort, "page": page, "per_page": per_page}
    if deadline_state:
        query["deadline_state"] = deadline_state
    found = store.tickets.search(query, who)
    return {"items": [_row(t, who, noted) for t in found.items], "total": found.total,
            "total_capped": found.total_capped, "page": found.page, "per_page": found.per_page}


def detail(store: Store, who: Principal, ticket_id: int) -> dict[str, Any]:
    """Everything the side panel shows of one ticket (``NotFound`` if the department does not handle it)."""
    t = store.tickets.get(ticket_id, who)
    notes = store.tickets.supervisions(ticket_id, who)
    out: dict[str, Any] = {
        "ticket": t.model_dump(mode="json"),
        "lead": t.lead_department_id == who.department_id,
        "history": [e.model_dump(mode="json") for e in store.tickets.history(ticket_id, who)],
        "supervisions": [{
            "id": n.id, "reason": SUPERVISE_AUTO.get(n.reason, "督办"), "note": n.note, "by": n.by,
            "opened_at": n.opened_at.isoformat(), "answer": n.answer, "answered_by": n.answered_by,
            "answered_at": n.answered_at.isoformat() if n.answered_at else None,
        } for n in notes],
        "attachments": [asdict(a) | {"url": f"/api/tickets/{ticket_id}/attachments/{a.id}"}
                        for a in store.attachments.list(ticket_id, who)],
        "notified": NotificationLog(store.engine).for_ticket(ticket_id, who.department_id),  # what reached us
        "return_until": None,
    }
    if t.status == "transferred" and t.transferred_at is not None and "return" in t.allowed_actions:
        until = t.transferred_at + timedelta(hours=store.ctx.limits.return_hours)
        out["return_until"] = until.isoformat()  # after it the store refuses 退回: say so beforehand
    out["ticket"]["waits_for"] = waits_for(t, who.department_id or 0, any(n.answered_at is None for n in notes))
    return out
