"""Tables of the ticket store (SQLModel, ``Base / Create / Update / table`` pattern).

Every datetime is timezone-aware: ``UTCDateTime`` stores UTC (naive on SQLite, which has no
zone) and always hands back an aware value, so comparisons never mix naive and aware times.
"""

from __future__ import annotations

import enum
import re
from datetime import UTC, date, datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from hotline.db import UTCDateTime  # the migrations name it here

# Length limits, shared by the schemas (validation) and the tables (column sizes).
SHORT = 64
MEDIUM = 200
LONG = 4000


def utcnow() -> datetime:
    return datetime.now(UTC)


def _dt(nullable: bool = True, index: bool = False):
    return Field(default=None, sa_type=UTCDateTime, nullable=nullable, index=index)


class Category(enum.StrEnum):
    """The six call purposes (002)."""

    SUGGESTION = "建议"
    REQUEST = "一般诉求"
    HELP = "求助"
    COMPLAINT = "投诉举报"
    ENQUIRY = "咨询"
    PRAISE = "表扬"


class HandlingMode(enum.StrEnum):
    DIRECT = "直接办理"  # answered on the spot, closed when the call ends
    PHONE = "电话交办"  # urgent: phone the department first, still log a ticket
    TRANSFER = "工单转办"  # ticket transferred to departments


class Status(enum.StrEnum):
    DRAFT = "draft"
    REGISTERED = "registered"
    TRANSFERRED = "transferred"
    RETURNED = "returned"
    ACCEPTED = "accepted"
    IN_PROGRESS = "in_progress"
    EXTENSION_REQUESTED = "extension_requested"
    REPLIED = "replied"
    SATISFIED = "satisfied"
    UNSATISFIED = "unsatisfied"
    CLOSED = "closed"
    ARCHIVED = "archived"

    @property
    def label(self) -> str:
        return STATUS_LABELS[self]


STATUS_LABELS = {
    Status.DRAFT: "草稿",
    Status.REGISTERED: "已登记",
    Status.TRANSFERRED: "已转办",
    Status.RETURNED: "已退回",
    Status.ACCEPTED: "已签收",
    Status.IN_PROGRESS: "办理中",
    Status.EXTENSION_REQUESTED: "延期申请中",
    Status.REPLIED: "已答复",
    Status.SATISFIED: "回访满意",
    Status.UNSATISFIED: "回访不满意",
    Status.CLOSED: "已办结",
    Status.ARCHIVED: "已归档",
}


class Satisfaction(enum.StrEnum):
    VERY = "非常满意"
    SATISFIED = "满意"
    BASIC = "基本满意"
    UNSATISFIED = "不满意"


# --- department directory -------------------------------------------------------------------


# a phone number inside free text: digits with the spaces and dashes people write in them
PHONE_IN_TEXT = re.compile(r"\+?\d[\d \-]{3,}\d")


def dial_line(sip_line: str, phones: str) -> str:
    """The number that rings a department (三方, transfer): its SIP line, else the first phone of
    its directory entry, as digits ("0530-555 1234，…" → "05305551234"); "" if it has neither."""
    if sip_line:
        return sip_line
    found = PHONE_IN_TEXT.search(phones or "")
    return re.sub(r"[ \-]", "", found.group()) if found else ""


class DepartmentBase(SQLModel):
    name: str = Field(max_length=SHORT, unique=True)
    short_name: str = Field(default="", max_length=SHORT)
    phones: str = Field(default="", max_length=MEDIUM)
    address: str = Field(default="", max_length=MEDIUM)
    hours: str = Field(default="", max_length=MEDIUM)
    duties: str = Field(default="", max_length=LONG)
    contact_person: str = Field(default="", max_length=SHORT)
    sip_line: str = Field(default="", max_length=SHORT)  # extension for three-party calls
    notify_email: str = Field(default="", max_length=MEDIUM)  # reminders and supervision notes go here
    notify_mobile: str = Field(default="", max_length=SHORT)  # … and, by SMS, here
    active: bool = True


class Department(DepartmentBase, table=True):
    id: int | None = Field(default=None, primary_key=True)
    search_text: str = Field(default="", max_length=LONG * 2)
    updated_at: datetime | None = _dt()


# --- callers ---------------------------------------------------------------------------------


class Caller(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    number: str = Field(max_length=SHORT, unique=True)
    location: str = Field(default="", max_length=SHORT)
    name: str = Field(default="", max_length=SHORT)
    blacklisted: bool = False  # 骚扰号码: a recorded warning instead of the queue (settings.agi_blacklist)
    vip: bool = False  # 重点单位 / special unit: ahead in the queue
    elderly: bool = False  # 老年人: ahead in the queue (适老化)
    note: str = Field(default="", max_length=MEDIUM)
    first_seen: datetime | None = _dt()
    last_seen: datetime | None = _dt()
    flags_by: str = Field(default="", max_length=SHORT)  # the lead who last set the flags
    flags_at: datetime | None = _dt()


# --- tickets ---------------------------------------------------------------------------------


class TicketBase(SQLModel):
    """What an operator records at intake (004 §5.1.2.5, 附录B)."""

    channel: str = Field(default="电话", max_length=SHORT)
    caller_number: str = Field(default="", max_length=SHORT)
    caller_name: str = Field(default="", max_length=SHORT)
    caller_address: str = Field(default="", max_length=MEDIUM)
    contact: str = Field(default="", max_length=SHORT)
    category: Category = Field(sa_type=sa.String(16))
    subcategory: str = Field(default="", max_length=SHORT)  # e.g. 投诉 / 举报 under 投诉举报
    confidential: bool = False
    emergency: bool = False
    handling_mode: HandlingMode = Field(default=HandlingMode.TRANSFER, sa_type=sa.String(16))
    title: str = Field(min_length=1, max_length=MEDIUM)
    district: str = Field(default="", max_length=SHORT)
    matter_time: str = Field(default="", max_length=SHORT)  # as told: "昨晚十点起"
    matter_place: str = Field(default="", max_length=MEDIUM)
    matter_course: str = Field(default="", max_length=LONG)
    matter_state: str = Field(default="", max_length=LONG)
    matter_demand: str = Field(default="", max_length=LONG)


class Ticket(TicketBase, table=True):
    __table_args__ = (
        sa.Index("ix_ticket_caller_created", "caller_number", "created_at"),
        sa.Index("ix_ticket_status_created", "status", "created_at"),
        sa.Index("ix_ticket_status_category_created", "status", "category", "created_at"),  # migration 0002
        sa.Index("ix_ticket_category_created", "category", "created_at"),
        sa.Index("ix_ticket_dept_created", "lead_department_id", "created_at"),
        sa.Index("ix_ticket_dept_status_category_created", "lead_department_id", "status", "category",
                 "created_at"),  # migration 0010
        sa.Index("ix_ticket_created", "created_at"),
        sa.Index("ix_ticket_current_due", "current_due"),
        sa.Index("ix_ticket_place_created", "matter_place", "created_at"),  # migration 0011
        sa.Index("ix_ticket_district_category_created", "district", "category", "created_at"),  # migration 0011
    )

    id: int | None = Field(default=None, primary_key=True)
    number: str | None = Field(default=None, max_length=SHORT, unique=True)
    status: Status = Field(default=Status.DRAFT, sa_type=sa.String(24))
    operator: str = Field(default="", max_length=SHORT)  # job number of the first responder
    lead_department_id: int | None = Field(default=None, foreign_key="department.id")
    transfer_opinion: str = Field(default="", max_length=LONG)
    reply_text: str = Field(default="", max_length=LONG)  # the department's result
    return_reason: str = Field(default="", max_length=LONG)
    callback_result: str = Field(default="", max_length=LONG)
    satisfaction: str = Field(default="", max_length=16)  # 回访: with the result
    satisfaction_process: str = Field(default="", max_length=16)  # 回访: with how it was handled
    query_code: str = Field(default="", max_length=16)  # told to the citizen with the number (公众查询)
    citizen_rating: str = Field(default="", max_length=16)  # the citizen's own rating, on the status page
    extension_days: int = 0  # granted so far
    extension_requested_days: int = 0  # pending request
    redo_count: int = 0
    repeat_count: int = 0  # other reports of the same matter linked or merged into this one
    supervision_count: int = 0
    duplicate_of_id: int | None = Field(default=None, foreign_key="ticket.id")
    source: str = Field(default="", max_length=16)  # "demo" for seeded rows
    search_text: str = Field(default="", max_length=LONG * 5)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    registered_at: datetime | None = _dt()
    transferred_at: datetime | None = _dt()
    accepted_at: datetime | None = _dt()
    replied_at: datetime | None = _dt()
    closed_at: datetime | None = _dt()
    archived_at: datetime | None = _dt()
    transfer_due: datetime | None = _dt()
    accept_due: datetime | None = _dt()
    due_at: datetime | None = _dt()  # completion deadline (extended on approval)
    callback_due: datetime | None = _dt()
    current_due: datetime | None = _dt()  # whichever deadline applies in the current status


class TicketDepartment(SQLModel, table=True):
    """Departments handling a ticket: one lead (牵头) and any co-handlers (协办)."""

    __tablename__ = "ticket_department"
    ticket_id: int = Field(foreign_key="ticket.id", primary_key=True)
    department_id: int = Field(foreign_key="department.id", primary_key=True, index=True)
    is_lead: bool = False
    assignee: str = Field(default="", max_length=SHORT)  # the handler a department lead chose (分派)


class TicketEvent(SQLModel, table=True):
    """Append-only history: who did what, when, from which state to which."""

    __tablename__ = "ticket_event"
    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id", index=True)
    at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    actor: str = Field(max_length=SHORT)
    actor_role: str = Field(max_length=16)
    action: str = Field(max_length=32)
    from_status: str = Field(default="", max_length=24)
    to_status: str = Field(default="", max_length=24)
    note: str = Field(default="", max_length=LONG)


class Supervision(SQLModel, table=True):
    """督办 record (004 §5.2.3.4): why, by whom, when."""

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id", index=True)
    reason: str = Field(max_length=16)  # manual, emergency, repeat, near_deadline, overdue, unsatisfied
    note: str = Field(default="", max_length=LONG)
    by: str = Field(max_length=SHORT)
    opened_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    answer: str = Field(default="", max_length=LONG)  # the department's answer to the note
    answered_by: str = Field(default="", max_length=SHORT)
    answered_at: datetime | None = _dt()


class TicketLink(SQLModel, table=True):
    """Two reports of the same matter: ``merged`` (the later closed into the earlier) or ``linked``."""

    __tablename__ = "ticket_link"
    ticket_id: int = Field(foreign_key="ticket.id", primary_key=True)
    other_id: int = Field(foreign_key="ticket.id", primary_key=True)
    kind: str = Field(max_length=16)
    at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class CallRecord(SQLModel, table=True):
    """A call as the CTI saw it, linked to the ticket it produced (if any)."""

    __tablename__ = "call_record"
    id: int | None = Field(default=None, primary_key=True)
    uniqueid: str = Field(max_length=SHORT, unique=True)
    caller_number: str = Field(default="", max_length=SHORT, index=True)
    ticket_id: int | None = Field(default=None, foreign_key="ticket.id", index=True)
    seat: str = Field(default="", max_length=SHORT)
    recording_id: str = Field(default="", max_length=MEDIUM)
    started_at: datetime | None = _dt(index=True)
    # --- the call log (ticketing.calls): what the CTI bridge saw, persisted when the call ends
    caller_name: str = Field(default="", max_length=SHORT)
    location: str = Field(default="", max_length=SHORT)
    queue: str = Field(default="", max_length=SHORT, index=True)
    seats_rung: str = Field(default="", max_length=MEDIUM)  # comma separated, in ringing order
    operator: str = Field(default="", max_length=SHORT)  # account user name at the answering seat
    job_number: str = Field(default="", max_length=SHORT)  # its 工号 (QA files the recording under it)
    answered_at: datetime | None = _dt()
    ended_at: datetime | None = _dt(index=True)
    wait_ms: int | None = None  # join → answer (or → abandon), from Asterisk's timestamps
    within_rule: bool = False  # answered within the 15 s rule
    talk_s: float = 0.0  # answered → the seat hung up, hold included
    hold_s: float = 0.0  # of which the citizen was on hold
    abandoned: bool = Field(default=False, index=True)
    lost: bool = False  # cut by an Asterisk restart: neither answered nor abandoned
    transferred_to: str = Field(default="", max_length=SHORT)
    conference: str = Field(default="", max_length=SHORT)
    recordings: str = Field(default="", max_length=LONG)  # file names, comma separated
    survey: int | None = None  # 1 满意, 2 基本满意, 3 不满意
    callback_requested: bool = False
    callback_reason: str = Field(default="", max_length=SHORT)
    called_back_at: datetime | None = _dt()  # 未接来电回拨: when someone called the citizen back
    called_back_by: str = Field(default="", max_length=SHORT)
    callback_note: str = Field(default="", max_length=MEDIUM)
    reconstructed: bool = False  # rebuilt from Asterisk's own records (the bridge did not see the call)


class ConfidentialRead(SQLModel, table=True):
    """Every read of a confidential ticket: who, as what, how (detail, list, export…)."""

    __tablename__ = "confidential_read"
    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id", index=True)
    at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    username: str = Field(max_length=SHORT)
    role: str = Field(max_length=16)
    purpose: str = Field(max_length=32)
    masked: bool = False


class Attachment(SQLModel, table=True):
    """A file on a ticket (a department's photo of the repair, a scan): stored under var/, served
    with the ticket's own access rules."""

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id", index=True)
    name: str = Field(max_length=MEDIUM)  # as uploaded, for the download
    content_type: str = Field(max_length=SHORT)
    size: int
    sha256: str = Field(max_length=SHORT)
    path: str = Field(max_length=MEDIUM)  # relative to the attachments folder
    by: str = Field(max_length=SHORT)
    by_role: str = Field(max_length=16)
    department_id: int | None = None  # the uploading department (None: the centre)
    at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class IntakeSubmission(SQLModel, table=True):
    """A citizen's report from another channel (web form, WeChat/SMS bridge), waiting for an
    operator to confirm it into a ticket: the standard's 3-minute response runs from ``received_at``."""

    __tablename__ = "intake_submission"
    __table_args__ = (sa.UniqueConstraint("channel", "external_id"),)
    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=16)  # web | wechat | sms | api
    external_id: str | None = Field(default=None, max_length=SHORT)  # the bridge's own id: sent twice, kept once
    name: str = Field(default="", max_length=SHORT)
    contact: str = Field(default="", max_length=SHORT)
    place: str = Field(default="", max_length=MEDIUM)
    text: str = Field(max_length=LONG)
    confidential: bool = False
    received_at: datetime = Field(sa_type=UTCDateTime, nullable=False, index=True)
    respond_by: datetime = Field(sa_type=UTCDateTime, nullable=False)
    status: str = Field(default="pending", max_length=16, index=True)  # pending | handling | confirmed | rejected
    handled_at: datetime | None = _dt()
    handled_by: str = Field(default="", max_length=SHORT)
    ticket_id: int | None = Field(default=None, foreign_key="ticket.id")
    note: str = Field(default="", max_length=MEDIUM)


# --- knowledge base ---------------------------------------------------------------------------


class ArticleBase(SQLModel):
    title: str = Field(max_length=MEDIUM)
    body: str = Field(max_length=LONG * 3)
    topic: str = Field(default="", max_length=SHORT)
    tags: str = Field(default="", max_length=MEDIUM)
    department_id: int | None = Field(default=None, foreign_key="department.id")


class Article(ArticleBase, table=True):
    id: int | None = Field(default=None, primary_key=True)
    search_text: str = Field(default="", max_length=LONG * 4)
    updated_at: datetime | None = _dt()
    updated_by: str = Field(default="", max_length=SHORT)


class MissingInfo(SQLModel, table=True):
    """查无信息: what an operator looked for and the base did not have, for an editor to fill."""

    __tablename__ = "missing_info"
    id: int | None = Field(default=None, primary_key=True)
    query: str = Field(max_length=MEDIUM)
    note: str = Field(default="", max_length=LONG)
    asked_by: str = Field(max_length=SHORT)
    asked_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    article_id: int | None = Field(default=None, foreign_key="article.id")
    resolved_at: datetime | None = _dt()


# --- working-day calendar overrides ---------------------------------------------------------


class CalendarDay(SQLModel, table=True):
    """An admin's entry for a day the packaged calendar does not know (a new year's schedule)."""

    __tablename__ = "calendar_day"
    day: date = Field(primary_key=True)
    workday: bool
    note: str = Field(default="", max_length=SHORT)
