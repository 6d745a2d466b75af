"""What comes in (validated, Chinese error messages) and what goes out of the ticket store."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Literal, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator
from sqlmodel import SQLModel

from hotline.bus import DomainEvent
from hotline.params import DbId
from ticketing.models import (
    LONG,
    MEDIUM,
    SHORT,
    ArticleBase,
    Category,
    DepartmentBase,
    HandlingMode,
    TicketBase,
)


class Actor(Protocol):
    """Who acts: ``hotline.identity.Principal`` fits, as does ``SystemActor``."""

    username: str
    role: str
    department_id: int | None


@dataclass(frozen=True)
class SystemActor:
    username: str = "system"
    role: str = "admin"
    department_id: int | None = None
    display_name: str = ""
    job_number: str = ""


class InvalidInput(Exception):
    """Refused input: ``messages`` are Chinese, one per problem; nothing was written."""

    def __init__(self, messages: list[str]) -> None:
        super().__init__("；".join(messages))
        self.messages = messages


class NotFound(Exception):
    pass


class Forbidden(Exception):
    pass


# --- validation helpers -----------------------------------------------------------------------

_ALLOWED_CONTROLS = {"\n", "\t"}


def check_text(value: Any) -> Any:
    """Refuse control characters (they break exports, logs and the console); strip the ends.

    Markup such as ``<script>`` is kept as text: it is data, escaped wherever it is shown.
    """
    if isinstance(value, str):
        value = value.replace("\r\n", "\n").strip()
        for ch in value:
            if ch not in _ALLOWED_CONTROLS and unicodedata.category(ch) in ("Cc", "Cs", "Co"):
                raise ValueError("不能包含控制字符")
    return value


class _Strict(SQLModel):
    """Unknown fields refused; JSON booleans and integers must be real ones ("yes" is no bool)."""

    model_config = ConfigDict(extra="forbid")
    _lax: ClassVar[bool] = False  # query strings arrive as text: no type strictness there

    @field_validator("*", mode="before")
    @classmethod
    def _types(cls, v: Any, info: ValidationInfo) -> Any:
        if not cls._lax and v is not None and info.field_name is not None:
            ann = str(cls.model_fields[info.field_name].annotation)
            if "bool" in ann and not isinstance(v, bool):
                raise ValueError("应为 true 或 false")
            if "int" in ann and "list" not in ann and (isinstance(v, bool) or not isinstance(v, int)):
                raise ValueError("应为整数")
        if isinstance(v, str):
            return check_text(v)  # before length checks: "   " is empty, not three characters
        return v


FIELD_LABELS = {
    "channel": "受理渠道",
    "caller_number": "来电号码",
    "caller_name": "来电人姓名",
    "caller_address": "来电人地址",
    "contact": "联系方式",
    "category": "诉求类别",
    "subcategory": "细分类别",
    "confidential": "是否保密",
    "emergency": "是否突发紧急",
    "handling_mode": "办理方式",
    "title": "标题",
    "district": "所属区县",
    "matter_time": "事发时间",
    "matter_place": "事发地点",
    "matter_course": "事件经过",
    "matter_state": "现状",
    "matter_demand": "诉求",
    "draft": "是否存为草稿",
    "department_id": "承办单位",
    "co_department_ids": "协办单位",
    "opinion": "转办意见",
    "reason": "原因",
    "result": "办理结果",
    "days": "延期天数",
    "satisfaction": "满意度",
    "duplicate_of": "重复的原工单",
    "note": "备注",
    "q": "关键词",
    "number": "工单编号",
    "status": "状态",
    "created_from": "起始时间",
    "created_to": "截止时间",
    "deadline_state": "时限状态",
    "page": "页码",
    "per_page": "每页条数",
    "sort": "排序",
    "name": "名称",
    "body": "正文",
    "query": "查询内容",
    "workday": "是否工作日",
    "day": "日期",
    "other_id": "关联工单",
    "operator": "受理人",
    "text": "反映内容",
    "place": "地点",
    "external_id": "来件编号",
    "assignee": "承办人",
    "satisfaction_process": "办理过程满意度",
    "supervision_id": "督办记录",
    "notify_email": "通知邮箱",
    "notify_mobile": "通知手机",
    "resolves": "对应的查无信息记录",
}


def zh_errors(exc: ValidationError) -> list[str]:
    """pydantic's errors, told in Chinese with the field's label."""
    out = []
    for err in exc.errors():
        loc = [str(x) for x in err.get("loc", ()) if not isinstance(x, int)]
        field = loc[-1] if loc else ""
        label = FIELD_LABELS.get(field, field or "请求")
        kind, ctx = err.get("type", ""), err.get("ctx") or {}
        if kind == "missing":
            msg = f"缺少{label}"
        elif kind == "string_too_long":
            msg = f"{label}过长（最多{ctx.get('max_length')}个字）"
        elif kind == "string_too_short":
            msg = f"{label}不能为空"
        elif kind == "extra_forbidden":
            msg = f"不认识的字段“{field}”"
        elif kind in ("string_type",):
            msg = f"{label}应为文本"
        elif kind in ("bool_type", "bool_parsing"):
            msg = f"{label}应为 true 或 false"
        elif kind in ("int_type", "int_parsing", "int_from_float"):
            msg = f"{label}应为整数"
        elif kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
            msg = f"{label}超出范围"
        elif kind in ("float_type", "float_parsing"):
            msg = f"{label}应为数字"
        elif kind in ("list_type", "too_long"):
            msg = f"{label}应为列表（且不能过多）"
        elif kind in ("enum", "literal_error"):
            expected = ctx.get("expected", "")
            expected = str(expected).replace("'", "").replace(" or ", "、").replace(", ", "、")
            msg = f"{label}取值无效，可选：{expected}"
        elif kind.startswith("datetime") or kind.startswith("date") or kind.startswith("timezone"):
            msg = f"{label}应为带时区的时间，例如 2026-11-23T09:00:00+08:00"
        elif kind == "json_invalid":
            msg = "请求体不是有效的 JSON"
        elif kind in ("model_type", "model_attributes_type", "dict_type"):
            msg = "请求体应为 JSON 对象"
        elif kind == "value_error":
            msg = f"{label}{ctx.get('error', err.get('msg', ''))!s}"
        else:
            msg = f"{label}格式不正确"
        out.append(msg)
    return out


M = TypeVar("M", bound=BaseModel)


def parse(model: type[M], raw: bytes | str | dict | None) -> M:
    """Validate JSON text (strict JSON types) or a dict into ``model``, or raise ``InvalidInput``."""
    try:
        if isinstance(raw, (bytes, str)):
            return model.model_validate_json(raw or b"{}")
        return model.model_validate(raw or {})
    except ValidationError as exc:
        raise InvalidInput(zh_errors(exc)) from None


# --- tickets ----------------------------------------------------------------------------------


class TicketCreate(_Strict, TicketBase):
    """Intake. ``draft`` true keeps a draft (the operator is still on the call)."""

    draft: bool = False


class TicketUpdate(_Strict):
    """Corrections while the ticket is still with the centre (draft or registered)."""

    caller_name: str | None = Field(default=None, max_length=SHORT)
    caller_address: str | None = Field(default=None, max_length=MEDIUM)
    contact: str | None = Field(default=None, max_length=SHORT)
    category: Category | None = None
    subcategory: str | None = Field(default=None, max_length=SHORT)
    confidential: bool | None = None
    emergency: bool | None = None
    handling_mode: HandlingMode | None = None
    title: str | None = Field(default=None, min_length=1, max_length=MEDIUM)
    district: str | None = Field(default=None, max_length=SHORT)
    matter_time: str | None = Field(default=None, max_length=SHORT)
    matter_place: str | None = Field(default=None, max_length=MEDIUM)
    matter_course: str | None = Field(default=None, max_length=LONG)
    matter_state: str | None = Field(default=None, max_length=LONG)
    matter_demand: str | None = Field(default=None, max_length=LONG)


class ActionParams(_Strict):
    """Parameters of a workflow action (which ones are needed depends on the action)."""

    department_id: DbId | None = None  # ids the database can hold: a larger one was a 500 (issue #13)
    co_department_ids: list[DbId] = Field(default_factory=list, max_length=10)
    opinion: str = Field(default="", max_length=LONG)
    reason: str = Field(default="", max_length=LONG)
    result: str = Field(default="", max_length=LONG)
    days: int | None = None
    satisfaction: str = Field(default="", max_length=16)  # 回访: with the result
    satisfaction_process: str = Field(default="", max_length=16)  # 回访: with how it was handled
    duplicate_of: DbId | None = None
    note: str = Field(default="", max_length=LONG)
    assignee: str = Field(default="", max_length=SHORT)  # 分派: a user name of the department
    supervision_id: DbId | None = None  # 回复督办: which note (default: the oldest unanswered)


SORTS = (
    "created_at",
    "-created_at",
    "current_due",
    "-current_due",
    "number",
    "-number",
    "status",
    "-status",
    "category",
    "-category",
)


class TicketQuery(_Strict):
    _lax: ClassVar[bool] = True

    q: str = Field(default="", max_length=100)
    caller_number: str = Field(default="", max_length=SHORT)
    number: str = Field(default="", max_length=SHORT)
    caller_name: str = Field(default="", max_length=SHORT)
    operator: str = Field(default="", max_length=SHORT)  # who took it: the job number (else user name) at intake
    department_id: DbId | None = None
    status: list[str] = Field(default_factory=list, max_length=12)
    category: Category | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    deadline_state: Literal["green", "yellow", "red", "none"] | None = None
    page: int = Field(default=1, ge=1, le=100000)
    per_page: int = Field(default=20, ge=1, le=200)
    sort: Literal[SORTS] = "-created_at"  # type: ignore[valid-type]

    @field_validator("created_from", "created_to")
    @classmethod
    def _aware(cls, v: datetime | None) -> datetime | None:
        if v is not None and v.tzinfo is None:
            raise ValueError("须带时区，例如 2026-11-23T09:00:00+08:00")
        return v


class DepartmentRef(BaseModel):
    id: int
    name: str
    is_lead: bool
    assignee: str = ""  # the handler its lead chose


class TicketRead(TicketBase):
    id: int
    number: str | None
    status: str
    status_label: str
    operator: str
    lead_department_id: int | None
    departments: list[DepartmentRef] = Field(default_factory=list)
    transfer_opinion: str
    reply_text: str
    return_reason: str
    callback_result: str
    satisfaction: str
    satisfaction_process: str = ""
    citizen_rating: str = ""
    query_code: str = ""  # shown to the centre only: the citizen's key to the public status page
    extension_days: int
    extension_requested_days: int
    redo_count: int
    repeat_count: int
    supervision_count: int
    duplicate_of_id: int | None
    created_at: datetime
    updated_at: datetime
    registered_at: datetime | None
    transferred_at: datetime | None
    accepted_at: datetime | None
    replied_at: datetime | None
    closed_at: datetime | None
    archived_at: datetime | None
    transfer_due: datetime | None
    accept_due: datetime | None
    due_at: datetime | None
    callback_due: datetime | None
    current_due: datetime | None
    deadline_state: str
    deadline_label: str
    working_days_left: int | None = None  # to the deadline that runs now (negative: overdue)
    calendar_warnings: list[str] = Field(default_factory=list)
    masked: bool = False  # the reporter's identity is hidden from this reader
    allowed_actions: list[str] = Field(default_factory=list)
    duplicates: list[dict] = Field(default_factory=list)  # proposals at intake: {id, number, score, reasons}


class EventRead(BaseModel):
    at: datetime
    actor: str
    actor_role: str
    action: str
    from_status: str
    to_status: str
    note: str


class Page(BaseModel):
    items: list[TicketRead]
    total: int
    total_capped: bool  # more than ``total`` match; counting stopped there to stay fast
    page: int
    per_page: int


@dataclass(frozen=True)
class RecentTicket:
    id: int
    number: str
    status: str
    status_label: str
    category: str
    title: str
    created_at: datetime
    deadline_state: str


@dataclass(frozen=True)
class CallerSummary:
    """What the AGI pre-queue lookup and the screen-pop need about a number."""

    number: str
    location: str
    blacklisted: bool
    vip: bool
    total: int
    open: int
    recent_30d: int
    repeat: bool  # called about something within the duplicate window
    recent: list[RecentTicket]
    elderly: bool = False


class CallerFlagsIn(_Strict):
    """A lead marks a number: harassment (骚扰), special unit (重点), elderly (老年人). Unset keeps."""

    blacklisted: bool | None = None
    vip: bool | None = None
    elderly: bool | None = None
    note: str | None = Field(default=None, max_length=200)


@dataclass(frozen=True)
class CallerFlags:
    number: str
    location: str
    name: str
    blacklisted: bool
    vip: bool
    elderly: bool
    note: str
    flags_by: str
    flags_at: datetime | None
    last_seen: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class TicketChanged(DomainEvent):
    """A ticket moved or gained something (a step, a note, an attachment, a supervision): the pages
    that show it refresh it. The departments that handle it now hear of it, nobody else outside the
    centre; it carries no reporter data."""

    type: ClassVar[str] = "ticket_update"
    ticket_id: int
    number: str
    action: str  # the workflow's action, or create / update / attach
    status: str
    department_ids: tuple[int, ...] = ()  # who handles it now
    by: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class SubmissionChanged(DomainEvent):
    """A submission from another channel arrived or was handled: the operators' queue refreshes."""

    type: ClassVar[str] = "intake_update"
    submission_id: int
    channel: str
    status: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TicketReminder(DomainEvent):
    """A ticket turned yellow (near its deadline) or red (overdue): its handler is to be told.
    The deadline sweep finds them; the composition root publishes them on the bus."""

    type: ClassVar[str] = "alert"
    kind: str = "ticket_deadline"
    ticket_id: int
    number: str
    state: str  # yellow | red
    due: str  # ISO 8601
    department_id: int | None = None


# --- directory and knowledge base --------------------------------------------------------------


class DepartmentCreate(_Strict, DepartmentBase):
    pass


class DepartmentRead(DepartmentBase):
    id: int
    line: str = ""  # what 三方 and 转接 dial: the SIP line, else the first phone (ticketing.models.dial_line)


class ArticleCreate(_Strict, ArticleBase):
    department_id: DbId | None = None  # the table's column takes any int; a request only what it can hold
    resolves: list[DbId] = Field(default_factory=list, max_length=50)  # 查无信息 requests it answers


class ArticleRead(ArticleBase):
    id: int
    updated_at: datetime | None
    updated_by: str


class MissingCreate(_Strict):
    query: str = Field(min_length=1, max_length=MEDIUM)
    note: str = Field(default="", max_length=LONG)


class MissingRead(BaseModel):
    id: int
    query: str
    note: str
    asked_by: str
    asked_at: datetime
    article_id: int | None
    resolved_at: datetime | None


class CalendarDayIn(_Strict):
    day: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$")
    workday: bool
    note: str = Field(default="", max_length=SHORT)
