"""The reminder rules, pure: which threshold a deadline has reached, who is told, and what the
message says.

Thresholds, on working days (the store's calendar): ``before_days`` working days before the due
day, the due day itself, then overdue (once, and again every ``overdue_every`` working days). A
stage and its round go into each message's idempotency key, with the deadline itself: a new
deadline (the next step, an extension, a redo) starts its reminders afresh.

What a message may carry: the ticket's number, title, department, state, deadline and a link.
Never the reporter: :class:`TicketFacts` has no field for the caller's name, number, address or
contact, so no message can hold them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from notify.channels import ChannelName, Message
from notify.models import KEY_MAX, KIND_LABELS
from ticketing.calendar import TZ, WorkCalendar
from ticketing.deadlines import working_days_left
from ticketing.digest import DeadlineFact
from ticketing.models import Status
from ticketing.schemas import DepartmentRead
from ticketing.steps import SUPERVISE_AUTO

# whose deadline runs in each status: the department's (sign for it, finish it) or the centre's
# (transfer it, call the citizen back); the centre hears of every one
DEADLINE_OF = {
    Status.REGISTERED: ("转办时限", False), Status.RETURNED: ("转办时限", False),
    Status.TRANSFERRED: ("签收时限", True), Status.ACCEPTED: ("办结时限", True),
    Status.IN_PROGRESS: ("办结时限", True), Status.EXTENSION_REQUESTED: ("办结时限", True),
    Status.UNSATISFIED: ("办结时限", True), Status.REPLIED: ("回访时限", False),
}
# the pages a link opens: the department portal and the centre's ticket desk, on the ticket
DEPT_LINK = "{base}/dept?ticket={id}"
CENTRE_LINK = "{base}/tickets?ticket={id}"
# the store opens these supervisions itself as a deadline nears or passes: the deadline
# reminders already tell the department, a second message would say the same
COVERED_BY_REMINDERS = frozenset({"near_deadline", "overdue"})


TicketFacts = DeadlineFact  # what a notification may tell of a ticket: the store's projection, no reporter fields


@dataclass(frozen=True, slots=True)
class Stage:
    kind: str  # deadline_before / deadline_due / deadline_overdue
    days: int  # working days left (before) or late (overdue)
    round: int = 0  # overdue: 0 the first time, one more every ``overdue_every`` working days


@dataclass(frozen=True)
class Rules:
    before_days: int = 1
    overdue_every: int = 1
    centre_email: str = ""
    centre_mobile: str = ""
    link_base: str = "http://127.0.0.1:8000"
    hotline_name: str = "12345政务服务热线"

    @classmethod
    def from_settings(cls, settings: Any) -> Rules:
        return cls(before_days=settings.notify_before_days, overdue_every=settings.notify_overdue_every_days,
                   centre_email=settings.notify_centre_email, centre_mobile=settings.notify_centre_mobile,
                   link_base=(settings.notify_link_base or f"http://{settings.web_host}:{settings.web_port}"
                              ).rstrip("/"),
                   hotline_name=settings.hotline_name)


def stage(due: datetime, now: datetime, cal: WorkCalendar, before_days: int, overdue_every: int) -> Stage | None:
    """The threshold a deadline has reached at ``now``, if any.

    >>> cal = WorkCalendar({})
    >>> due = datetime(2026, 11, 23, 23, 59, 59, tzinfo=TZ)  # a Monday
    >>> at = lambda d, h=9: stage(due, datetime(2026, 11, d, h, tzinfo=TZ), cal, 1, 1)
    >>> at(19), at(20), at(21), at(23)  # Thursday: 2 left; Friday and Saturday: 1 left; Monday: due
    (None, Stage(kind='deadline_before', days=1, round=0), Stage(kind='deadline_before', days=1, round=0), \
Stage(kind='deadline_due', days=0, round=0))
    >>> [(s.days, s.round) for s in (at(24), at(25), at(26))]  # then overdue, again each working day
    [(1, 0), (2, 1), (3, 2)]
    >>> [stage(due, datetime(2026, 11, d, 9, tzinfo=TZ), cal, 1, 2).round for d in (24, 25, 26, 27)]
    [0, 0, 1, 1]
    """
    left = working_days_left(due, now, cal)
    assert left is not None
    if now > due:
        late = max(0, -left)
        return Stage("deadline_overdue", late, max(0, late - 1) // max(1, overdue_every))
    if left == 0:
        return Stage("deadline_due", 0)
    if 0 < left <= before_days:
        return Stage("deadline_before", left)
    return None


@dataclass(frozen=True, slots=True)
class Recipient:
    channel: ChannelName
    to: str
    department_id: int | None  # None: the centre


def department_recipients(dept: DepartmentRead | None) -> list[Recipient]:
    if dept is None:
        return []
    out = [Recipient("email", dept.notify_email.strip(), dept.id),
           Recipient("sms", dept.notify_mobile.strip(), dept.id)]
    return [r for r in out if r.to]


def centre_recipients(rules: Rules) -> list[Recipient]:
    out = [Recipient("email", rules.centre_email.strip(), None), Recipient("sms", rules.centre_mobile.strip(), None)]
    return [r for r in out if r.to]


def deadline_messages(t: TicketFacts, st: Stage, dept: DepartmentRead | None, rules: Rules) -> list[Message]:
    """The reminders of one stage of one ticket's deadline: the centre, and the lead department
    when the deadline is its own."""
    if t.due is None:
        return []
    what, departments = DEADLINE_OF.get(t.status, ("办理时限", True))  # type: ignore[call-overload]
    people = centre_recipients(rules) + (department_recipients(dept) if departments else [])
    if st.kind == "deadline_before":
        state = f"还剩{st.days}个工作日到期"
    elif st.kind == "deadline_due":
        state = "今天到期"
    else:
        state = "已超期" + (f"{st.days}个工作日" if st.days else "")
    subject = f"【{rules.hotline_name}】{KIND_LABELS[st.kind]}：工单{t.number}{state}"
    base = f"{st.kind}:{t.id}:{t.due.astimezone(TZ):%Y%m%dT%H%M%S}:{st.round}"
    due_text = f"{t.due.astimezone(TZ):%Y-%m-%d %H:%M}"
    out = []
    for r in people:
        link = _link(t, r, rules)
        facts = [("工单编号", t.number), ("标题", t.title), ("承办单位", _dept(dept)),
                 ("当前状态", _status_label(t.status)), (what, due_text), ("时限情况", state), ("查看工单", link)]
        out.append(_message(r, t, st.kind, f"{base}:{r.channel}:{r.to}", subject, facts, rules,
                            sms=f"工单{t.number}「{t.title}」{state}（{what}{due_text}），承办单位{_dept(dept)}。详情：{link}"))
    return out


def supervision_messages(note: dict[str, Any], t: TicketFacts, dept: DepartmentRead | None,
                         rules: Rules) -> list[Message]:
    """督办: a supervision note opened on a ticket, told to its lead department. The note's own
    words are left out for a confidential ticket (free text may name the reporter)."""
    if note["reason"] in COVERED_BY_REMINDERS:
        return []
    reason = SUPERVISE_AUTO.get(note["reason"], "中心督办")  # manual: written by the centre's lead
    words = "（保密工单，请登录系统查看）" if t.confidential else (note["note"] or "（无）")
    subject = f"【{rules.hotline_name}】督办通知：工单{t.number}（{reason}）"
    opened = datetime.fromisoformat(note["opened_at"]).astimezone(TZ)
    out = []
    for r in department_recipients(dept):
        link = _link(t, r, rules)
        facts = [("工单编号", t.number), ("标题", t.title), ("承办单位", _dept(dept)),
                 ("当前状态", _status_label(t.status)), ("督办原因", reason), ("督办意见", words),
                 ("督办时间", f"{opened:%Y-%m-%d %H:%M}"), ("查看工单", link)]
        sms = f"工单{t.number}「{t.title}」被督办（{reason}），请及时办理并回复。详情：{link}"
        out.append(_message(r, t, "supervision", f"supervision:{note['id']}:{r.channel}:{r.to}", subject, facts,
                            rules, sms=sms))
    return out


def _message(r: Recipient, t: TicketFacts, kind: str, key: str, subject: str, facts: list[tuple[str, str]],
             rules: Rules, sms: str) -> Message:
    if r.channel == "sms":
        return Message("sms", r.to, "", f"【{rules.hotline_name}】{sms}", t.id, kind, _key(key), r.department_id)
    greeting = "热线中心值班人员" if r.department_id is None else dict(facts)["承办单位"]
    body = "\n".join([f"{greeting}：", "", *(f"{k}：{v}" for k, v in facts), "",
                      f"此邮件由{rules.hotline_name}系统自动发送，请勿直接回复。"])
    return Message("email", r.to, subject, body, t.id, kind, _key(key), r.department_id)


def _key(key: str) -> str:
    """The idempotency key, hashed where a long address would pass the column's width."""
    if len(key) <= KEY_MAX:
        return key
    head = key.rsplit(":", 1)[0][:KEY_MAX - 41]
    return f"{head}:{hashlib.sha256(key.encode()).hexdigest()[:40]}"


def _link(t: TicketFacts, r: Recipient, rules: Rules) -> str:
    return (CENTRE_LINK if r.department_id is None else DEPT_LINK).format(base=rules.link_base, id=t.id)


def _dept(dept: DepartmentRead | None) -> str:
    return dept.name if dept else "（尚未转办）"


def _status_label(status: str) -> str:
    try:
        return Status(status).label
    except ValueError:
        return status
