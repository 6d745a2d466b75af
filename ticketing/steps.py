"""What each workflow step does to a ticket, inside the caller's unit of work.

:mod:`ticketing.workflow` says which step is allowed from which state for which role (pure);
this module carries a step out on the ticket's row: deadlines on working days, the departments
of a transfer, supervision opened automatically (emergency, repeats, an unsatisfied callback),
and one history line per step.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, select

from ticketing import search, workflow
from ticketing.context import StoreContext, role_of
from ticketing.deadlines import current_due
from ticketing.directory import Directory
from ticketing.models import Satisfaction, Status, Supervision, Ticket, TicketDepartment, TicketEvent, TicketLink
from ticketing.schemas import ActionParams, Actor, Forbidden, InvalidInput
from ticketing.workflow import CO_HANDLER

CLOSED = (Status.CLOSED, Status.ARCHIVED)
MAX_REDO = 2  # after two redos still unsatisfied, the lead decides (close with a reason, or redo again)
SUPERVISE_AUTO = {
    "emergency": "突发紧急事项",
    "repeat": "重复反映",
    "near_deadline": "临近办理时限",
    "overdue": "超期未办结",
    "unsatisfied": "回访不满意",
}


def record_event(s: Session, t: Ticket, actor: Actor, action: str, before: str, after: str, now: datetime,
                 note: str = "") -> None:
    """One line of the ticket's history (流转记录)."""
    s.add(TicketEvent(ticket_id=t.id, at=now, actor=actor.username, actor_role=role_of(actor), action=action,
                      from_status=str(before), to_status=str(after), note=note[:4000]))


def text_of(t: Ticket) -> str:
    """What full-text search indexes of a ticket."""
    return search.build_text(t.title, t.district, t.matter_place, t.matter_course, t.matter_state, t.matter_demand,
                             t.reply_text)


def apply(ctx: StoreContext, directory: Directory, s: Session, t: Ticket, action: str, p: ActionParams | None,
          actor: Actor, now: datetime) -> None:
    """Carry out ``action`` on ``t`` as ``actor`` (``TransitionError`` if the workflow refuses it)."""
    p = p or ActionParams()
    role = role_of(actor)
    if role == "department" and action in workflow.TABLE and "department" in workflow.TABLE[action].roles:
        if t.lead_department_id != actor.department_id and action not in CO_HANDLER:
            raise Forbidden("只有牵头承办单位可以执行此操作")
        if action == "assign" and not getattr(actor, "dept_lead", False):
            raise Forbidden("只有承办单位负责人可以分派承办人")
    before = Status(t.status)
    after = workflow.decide(before, action, role, p.model_dump(), now=now, transferred_at=t.transferred_at,
                            return_hours=ctx.limits.return_hours, handling_mode=t.handling_mode)
    cal = ctx.calendar()
    lim = ctx.limits
    note = p.note
    auto: list[tuple[str, str]] = []  # supervision opened by this move, recorded after it
    if action == "register":
        t.registered_at = now
        t.transfer_due = cal.add_working_days(now, lim.transfer_days)
        if t.emergency:
            auto.append(("emergency", ""))
    elif action == "close_directly":
        t.reply_text, t.closed_at, note = p.result, now, p.result
    elif action == "merge":
        merge(ctx, s, t, p.duplicate_of, actor, now)
        note = f"与工单{p.duplicate_of}重复，已合并"
    elif action == "transfer":
        depts = directory.require_active(s, [p.department_id, *p.co_department_ids])
        s.execute(sa.delete(TicketDepartment).where(TicketDepartment.ticket_id == t.id))
        for d in dict.fromkeys([p.department_id, *p.co_department_ids]):
            s.add(TicketDepartment(ticket_id=t.id, department_id=d, is_lead=d == p.department_id))
        t.lead_department_id = p.department_id
        t.transfer_opinion, t.transferred_at = p.opinion, now
        t.accept_due = cal.add_working_days(now, lim.accept_days)
        t.due_at = cal.add_working_days(now, lim.completion_days(t.category, t.subcategory))
        t.return_reason = ""
        note = f"转{depts[p.department_id]}：{p.opinion}"
    elif action == "accept":
        t.accepted_at = now
    elif action == "return":
        t.return_reason, note = p.reason, p.reason
        t.transfer_due = cal.add_working_days(now, lim.accept_days)  # reassign within a working day
    elif action == "request_extension":
        t.extension_requested_days, note = p.days or 0, f"申请延期{p.days}个工作日：{p.reason}"
    elif action == "approve_extension":
        days = t.extension_requested_days
        t.due_at = cal.add_working_days(t.due_at or now, days)
        t.extension_days += days
        t.extension_requested_days = 0
        note = f"批准延期{days}个工作日" + (f"：{p.note}" if p.note else "")
    elif action == "refuse_extension":
        t.extension_requested_days, note = 0, p.reason
    elif action == "reply":
        t.reply_text, t.replied_at, note = p.result, now, p.result
        t.callback_due = cal.add_working_days(now, lim.callback_days)
        t.search_text = text_of(t)
    elif action == "callback":
        t.satisfaction, t.callback_result = p.satisfaction, p.result
        t.satisfaction_process = p.satisfaction_process
        process = f"办理过程{p.satisfaction_process}，" if p.satisfaction_process else ""
        note = f"{process}办理结果{p.satisfaction}" + (f"：{p.result}" if p.result else "")
        if p.satisfaction == Satisfaction.UNSATISFIED:
            auto.append(("unsatisfied", p.result))
    elif action == "progress":
        note = p.note
    elif action == "assign":
        row = s.get(TicketDepartment, (t.id, actor.department_id)) if actor.department_id is not None else None
        if row is None:
            raise Forbidden("只能为本单位承办的工单分派承办人")
        row.assignee, note = p.assignee, f"分派给{p.assignee}" + (f"：{p.note}" if p.note else "")
    elif action == "answer_supervision":
        note = answer_supervision(s, t, p, actor, now)
    elif action == "redo":
        t.redo_count += 1
        t.due_at = cal.add_working_days(now, lim.completion_days(t.category, t.subcategory))
        t.replied_at = None  # the next reply is the one the callback judges
    elif action == "close":
        t.closed_at = now
        note = p.reason or p.note
    elif action == "archive":
        t.archived_at = now
    elif action == "supervise":
        open_supervision(s, t, "manual", p.reason, actor, now)
        note = p.reason
    if after in CLOSED and t.closed_at is None:
        t.closed_at = now
    t.status = after
    t.updated_at = now
    t.current_due = current_due(after, transfer_due=t.transfer_due, accept_due=t.accept_due, due_at=t.due_at,
                                callback_due=t.callback_due)
    if action != "supervise":  # supervision writes its own event
        record_event(s, t, actor, action, before, after, now, note)
    for reason, why in auto:
        open_supervision(s, t, reason, why, actor, now)
    if after is Status.UNSATISFIED and t.redo_count < MAX_REDO:
        # 回访不满意 → 重办: back to the department at once, with the citizen's reason
        apply(ctx, directory, s, t, "redo", ActionParams(note=p.result or "回访不满意"), actor, now)


def answer_supervision(s: Session, t: Ticket, p: ActionParams, actor: Actor, now: datetime) -> str:
    """A department answers a supervision note (the one named, else the oldest still unanswered)."""
    q = select(Supervision).where(Supervision.ticket_id == t.id)
    q = q.where(Supervision.id == p.supervision_id) if p.supervision_id else q.where(Supervision.answered_at.is_(None))
    note = s.exec(q.order_by(Supervision.id)).first()
    if note is None:
        raise InvalidInput(["没有待回复的督办"] if not p.supervision_id else ["督办记录不存在"])
    note.answer, note.answered_by, note.answered_at = p.note, actor.username, now
    return f"回复督办（{SUPERVISE_AUTO.get(note.reason, '督办')}）：{p.note}"


def merge(ctx: StoreContext, s: Session, t: Ticket, original_id: int | None, actor: Actor, now: datetime) -> None:
    original = s.get(Ticket, original_id) if original_id else None
    if original is None or original.id == t.id:
        raise InvalidInput(["重复的原工单不存在"])
    if original.duplicate_of_id is not None:
        raise InvalidInput([f"工单{original.number}本身已合并到其他工单，请合并到原始工单"])
    t.duplicate_of_id = original.id
    s.add(TicketLink(ticket_id=t.id, other_id=original.id, kind="merged", at=now))
    count_repeat(ctx, s, original, actor, now, f"工单{t.number}合并至此")


def count_repeat(ctx: StoreContext, s: Session, original: Ticket, actor: Actor, now: datetime, note: str) -> None:
    """Another report of the same matter: counted on the original, supervised once repeats pile up."""
    original.repeat_count += 1
    record_event(s, original, actor, "repeat", original.status, original.status, now, note)
    live = original.status not in (Status.DRAFT, *CLOSED)
    if live and original.repeat_count >= ctx.repeat_supervision:
        open_supervision(s, original, "repeat", f"已重复反映{original.repeat_count}次", actor, now)


def open_supervision(s: Session, t: Ticket, reason: str, note: str, actor: Actor, now: datetime) -> None:
    """督办: a supervision note on the ticket (manual, or one of ``SUPERVISE_AUTO``)."""
    s.add(Supervision(ticket_id=t.id, reason=reason, note=note, by=actor.username, opened_at=now))
    t.supervision_count += 1
    label = SUPERVISE_AUTO.get(reason, "督办")
    text = note if reason == "manual" else label + (f"：{note}" if note else "")
    record_event(s, t, actor, "supervise", t.status, t.status, now, text)
