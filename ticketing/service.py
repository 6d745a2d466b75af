"""The ticket store's public API: what the console, AGI and reports call.

Each method is one unit of work (one transaction): it either completes or writes nothing.
Errors are ``InvalidInput`` (422), ``NotFound`` (404), ``Forbidden`` (403) and
``TransitionError`` (409), each with a Chinese message for the user.
"""

from __future__ import annotations

import csv
import io
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from hotline.db import make_engine, session_scope
from ticketing import duplicates, search, workflow
from ticketing.calendar import WorkCalendar, local_day
from ticketing.callers import location_of, normalize_number
from ticketing.db import PreparedQuery
from ticketing.deadlines import DeadlineState, Limits, current_due, state, warnings_for, yellow_boundary
from ticketing.models import (
    Article,
    CalendarDay,
    Caller,
    CallRecord,
    ConfidentialRead,
    Department,
    MissingInfo,
    Satisfaction,
    Status,
    Supervision,
    Ticket,
    TicketDepartment,
    TicketEvent,
    TicketLink,
    UTCDateTime,
    utcnow,
)
from ticketing.schemas import (
    ActionParams,
    Actor,
    ArticleCreate,
    ArticleRead,
    CallerFlags,
    CallerSummary,
    DepartmentCreate,
    DepartmentRead,
    DepartmentRef,
    EventRead,
    Forbidden,
    InvalidInput,
    MissingCreate,
    MissingRead,
    NotFound,
    Page,
    RecentTicket,
    Reminder,
    SystemActor,
    TicketCreate,
    TicketQuery,
    TicketRead,
    TicketUpdate,
    parse,
)

CLOSED = (Status.CLOSED, Status.ARCHIVED)
OPEN_STATUSES = [st.value for st in Status if st not in (*CLOSED, Status.DRAFT)]
MASK = "（保密）"
CALENDAR_TTL_S = 300
COUNT_CAP = 200  # "200+" (ten pages): counting every match of a common word costs more than the page
EXPORT_MAX = 50000
SUPERVISE_AUTO = {
    "emergency": "突发紧急事项",
    "repeat": "重复反映",
    "near_deadline": "临近办理时限",
    "overdue": "超期未办结",
    "unsatisfied": "回访不满意",
}


def _role(actor: Actor) -> str:
    return str(getattr(actor, "role", ""))


class TicketService:
    """The ticket store. ``clock`` returns an aware "now" (tests inject a fixed one)."""

    def __init__(
        self,
        engine: sa.Engine,
        *,
        limits: Limits | None = None,
        clock: Callable[[], datetime] = utcnow,
        area_code: str = "0530",
        duplicate_window: timedelta = timedelta(days=30),
        duplicate_threshold: float = 42.0,
        repeat_supervision: int = 1,
    ) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self.limits = limits or Limits()
        self.clock = clock
        self.area_code = area_code
        self.duplicate_window = duplicate_window
        self.duplicate_threshold = duplicate_threshold
        self.repeat_supervision = repeat_supervision
        self._calendar: WorkCalendar | None = None
        self._lookup = PreparedQuery(engine, _lookup_statement())
        self._calendar_at = 0.0
        self._cal_lock = threading.Lock()
        self._dept_names: dict[int, str] = {}

    # --- calendar ---------------------------------------------------------------------------

    def calendar(self) -> WorkCalendar:
        """The working-day calendar with the admins' overrides.

        Cached; reloaded when changed here or after ``CALENDAR_TTL_S`` (another web node may
        have changed it).
        """
        with self._cal_lock:
            stale = time.monotonic() - self._calendar_at > CALENDAR_TTL_S
            if self._calendar is None or stale:
                with Session(self.engine) as s:
                    days = {d.day: d.workday for d in s.exec(select(CalendarDay))}
                self._calendar = WorkCalendar(days)
                self._calendar_at = time.monotonic()
            return self._calendar

    def set_calendar_days(self, days: Iterable[Mapping[str, Any]], actor: Actor) -> int:
        """Enter a year's schedule: ``[{"day": "2027-01-01", "workday": false, "note": "元旦"}, …]``."""
        if _role(actor) != "admin":
            raise Forbidden("只有管理员可以设置节假日")
        from ticketing.schemas import CalendarDayIn

        rows = [parse(CalendarDayIn, dict(d)) for d in days]
        try:
            parsed = [(date.fromisoformat(r.day), r) for r in rows]
        except ValueError:
            raise InvalidInput(["日期无效"]) from None
        with session_scope(self.engine) as s:
            for day, r in parsed:
                s.merge(CalendarDay(day=day, workday=r.workday, note=r.note))
        with self._cal_lock:
            self._calendar = None
        return len(parsed)

    def calendar_status(self, years: Iterable[int]) -> list[dict]:
        cal = self.calendar()
        return [{"year": y, "source": cal.source(y), "warning": cal.warning(y)} for y in years]

    # --- intake --------------------------------------------------------------------------------

    def create(self, data: TicketCreate | Mapping[str, Any] | bytes | str, actor: Actor) -> TicketRead:
        """Record a ticket (registered unless ``draft``), proposing earlier reports of the same matter."""
        if _role(actor) not in ("operator", "lead", "admin"):
            raise Forbidden("只有话务员和值班长可以受理工单")
        body = data if isinstance(data, TicketCreate) else parse(TicketCreate, data)
        now = self.clock()
        fields = body.model_dump(exclude={"draft"})
        fields["caller_number"] = normalize_number(fields["caller_number"], self.area_code)
        with session_scope(self.engine) as s:
            t = Ticket(
                **fields,
                status=Status.DRAFT,
                created_at=now,
                updated_at=now,
                operator=getattr(actor, "job_number", "") or actor.username,
            )
            t.search_text = self._text_of(t)
            s.add(t)
            s.flush()
            t.number = f"{local_day(now):%Y%m%d}{t.id:06d}"
            self._event(s, t, actor, "create", "", Status.DRAFT, now)
            if t.caller_number:
                self._touch_caller(s, t.caller_number, t.caller_name, now)
            if not body.draft:
                self._apply(s, t, "register", ActionParams(), actor, now)
            proposals = self._propose(s, t, now)
            s.flush()
            read = self._read(s, t, actor, now, purpose="create")
        read.duplicates = [p.__dict__ for p in proposals]
        return read

    def update(self, ticket_id: int, data: TicketUpdate | Mapping[str, Any] | bytes | str, actor: Actor) -> TicketRead:
        """Correct the intake while the ticket is still with the centre."""
        if _role(actor) not in ("operator", "lead", "admin"):
            raise Forbidden("只有话务员和值班长可以修改工单")
        body = data if isinstance(data, TicketUpdate) else parse(TicketUpdate, data)
        now = self.clock()
        with session_scope(self.engine) as s:
            t = self._get(s, ticket_id, actor)
            if t.status not in (Status.DRAFT, Status.REGISTERED, Status.RETURNED):
                raise workflow.TransitionError(f"工单已{Status(t.status).label}，不能再修改受理内容")
            changes = body.model_dump(exclude_unset=True, exclude_none=True)
            for k, v in changes.items():
                setattr(t, k, v)
            t.search_text = self._text_of(t)
            t.updated_at = now
            self._event(s, t, actor, "update", t.status, t.status, now, "修改：" + "、".join(changes))
            return self._read(s, t, actor, now)

    # --- workflow -----------------------------------------------------------------------------

    def act(
        self,
        ticket_id: int,
        action: str,
        params: ActionParams | Mapping[str, Any] | bytes | str | None,
        actor: Actor,
    ) -> TicketRead:
        """Apply a workflow action (see ``ticketing.workflow.TABLE``) and record it."""
        p = params if isinstance(params, ActionParams) else parse(ActionParams, params or {})
        now = self.clock()
        with session_scope(self.engine) as s:
            t = self._get(s, ticket_id, actor)
            self._apply(s, t, action, p, actor, now)
            return self._read(s, t, actor, now)

    # thin, named wrappers for callers that prefer them
    def register(self, ticket_id: int, actor: Actor) -> TicketRead:
        return self.act(ticket_id, "register", None, actor)

    def transfer(
        self,
        ticket_id: int,
        department_id: int,
        opinion: str,
        actor: Actor,
        co_department_ids: Iterable[int] = (),
    ) -> TicketRead:
        return self.act(
            ticket_id,
            "transfer",
            ActionParams(department_id=department_id, opinion=opinion, co_department_ids=list(co_department_ids)),
            actor,
        )

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

    def _apply(self, s: Session, t: Ticket, action: str, p: ActionParams, actor: Actor, now: datetime) -> None:
        role = _role(actor)
        if (
            role == "department"
            and action in workflow.TABLE
            and "department" in workflow.TABLE[action].roles
            and t.lead_department_id != actor.department_id
        ):
            raise Forbidden("只有牵头承办单位可以执行此操作")
        params = p.model_dump()
        before = Status(t.status)
        after = workflow.decide(
            before,
            action,
            role,
            params,
            now=now,
            transferred_at=t.transferred_at,
            return_hours=self.limits.return_hours,
            handling_mode=t.handling_mode,
        )
        cal = self.calendar()
        lim = self.limits
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
            self._merge(s, t, p.duplicate_of, actor, now)
            note = f"与工单{p.duplicate_of}重复，已合并"
        elif action == "transfer":
            depts = self._departments_exist(s, [p.department_id, *p.co_department_ids])
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
            t.search_text = self._text_of(t)
        elif action == "callback":
            t.satisfaction, t.callback_result = p.satisfaction, p.result
            note = f"{p.satisfaction}" + (f"：{p.result}" if p.result else "")
            if p.satisfaction == Satisfaction.UNSATISFIED:
                auto.append(("unsatisfied", p.result))
        elif action == "redo":
            t.redo_count += 1
            t.due_at = cal.add_working_days(now, lim.completion_days(t.category, t.subcategory))
        elif action == "close":
            t.closed_at = now
            note = p.reason or p.note
        elif action == "archive":
            t.archived_at = now
        elif action == "supervise":
            self._open_supervision(s, t, "manual", p.reason, actor, now)
            note = p.reason
        if after in CLOSED and t.closed_at is None:
            t.closed_at = now
        t.status = after
        t.updated_at = now
        t.current_due = current_due(
            after,
            transfer_due=t.transfer_due,
            accept_due=t.accept_due,
            due_at=t.due_at,
            callback_due=t.callback_due,
        )
        if action != "supervise":  # supervision writes its own event
            self._event(s, t, actor, action, before, after, now, note)
        for reason, why in auto:
            self._open_supervision(s, t, reason, why, actor, now)

    def _merge(self, s: Session, t: Ticket, original_id: int | None, actor: Actor, now: datetime) -> None:
        original = s.get(Ticket, original_id) if original_id else None
        if original is None or original.id == t.id:
            raise InvalidInput(["重复的原工单不存在"])
        if original.duplicate_of_id is not None:
            raise InvalidInput([f"工单{original.number}本身已合并到其他工单，请合并到原始工单"])
        t.duplicate_of_id = original.id
        s.add(TicketLink(ticket_id=t.id, other_id=original.id, kind="merged", at=now))
        self._count_repeat(s, original, actor, now, f"工单{t.number}合并至此")

    def link(self, ticket_id: int, other_id: int, actor: Actor) -> TicketRead:
        """Link two reports of the same matter without closing either; the earlier counts a repeat."""
        if _role(actor) not in ("operator", "lead", "admin"):
            raise Forbidden("只有话务员和值班长可以关联工单")
        now = self.clock()
        with session_scope(self.engine) as s:
            t = self._get(s, ticket_id, actor)
            other = self._get(s, other_id, actor)
            if t.id == other.id:
                raise InvalidInput(["不能与自身关联"])
            first, second = sorted((t, other), key=lambda x: x.id)
            if s.get(TicketLink, (second.id, first.id)) is None:
                s.add(TicketLink(ticket_id=second.id, other_id=first.id, kind="linked", at=now))
                self._event(s, second, actor, "link", second.status, second.status, now, f"关联工单{first.number}")
                self._count_repeat(s, first, actor, now, f"关联工单{second.number}")
            return self._read(s, t, actor, now)

    def _count_repeat(self, s: Session, original: Ticket, actor: Actor, now: datetime, note: str) -> None:
        original.repeat_count += 1
        self._event(s, original, actor, "repeat", original.status, original.status, now, note)
        live = original.status not in (Status.DRAFT, *CLOSED)
        if live and original.repeat_count >= self.repeat_supervision:
            self._open_supervision(s, original, "repeat", f"已重复反映{original.repeat_count}次", actor, now)

    def _open_supervision(self, s: Session, t: Ticket, reason: str, note: str, actor: Actor, now: datetime) -> None:
        s.add(Supervision(ticket_id=t.id, reason=reason, note=note, by=actor.username, opened_at=now))
        t.supervision_count += 1
        label = SUPERVISE_AUTO.get(reason, "督办")
        self._event(
            s,
            t,
            actor,
            "supervise",
            t.status,
            t.status,
            now,
            f"{label}" + (f"：{note}" if note else "") if reason != "manual" else note,
        )

    def sweep(self) -> list[Reminder]:
        """Tickets turning yellow or red: open the automatic supervision once, return reminders.

        Run it periodically (the app's scheduler); reminders go out on the bus.
        """
        now = self.clock()
        cal = self.calendar()
        boundary = yellow_boundary(now, cal, self.limits.yellow_days)
        out = []
        with session_scope(self.engine) as s:
            rows = s.exec(
                select(Ticket).where(
                    Ticket.current_due.is_not(None),
                    Ticket.current_due <= boundary,
                    Ticket.status.not_in([*CLOSED, Status.DRAFT]),
                )
            ).all()
            for t in rows:
                colour = state(t.current_due, now, cal, self.limits.yellow_days)
                reason = "overdue" if colour is DeadlineState.RED else "near_deadline"
                done = s.exec(
                    select(Supervision.id).where(
                        Supervision.ticket_id == t.id,
                        Supervision.reason == reason,
                        Supervision.opened_at >= (t.transferred_at or t.created_at),
                    )
                ).first()
                if done is None:
                    self._open_supervision(s, t, reason, "", SystemActor(), now)
                out.append(Reminder(t.id, t.number or "", colour.value, t.current_due, t.lead_department_id))
        return out

    # --- reads ---------------------------------------------------------------------------------

    def get(self, ticket_id: int, actor: Actor) -> TicketRead:
        now = self.clock()
        with session_scope(self.engine) as s:
            t = self._get(s, ticket_id, actor)
            return self._read(s, t, actor, now)

    def history(self, ticket_id: int, actor: Actor) -> list[EventRead]:
        with session_scope(self.engine) as s:
            self._get(s, ticket_id, actor)
            rows = s.exec(select(TicketEvent).where(TicketEvent.ticket_id == ticket_id).order_by(TicketEvent.id)).all()
            return [EventRead.model_validate(r, from_attributes=True) for r in rows]

    def supervisions(self, ticket_id: int, actor: Actor) -> list[Supervision]:
        with session_scope(self.engine) as s:
            self._get(s, ticket_id, actor)
            return list(s.exec(select(Supervision).where(Supervision.ticket_id == ticket_id).order_by(Supervision.id)))

    def search(self, query: TicketQuery | Mapping[str, Any] | None, actor: Actor, count_cap: int = COUNT_CAP) -> Page:
        """Tickets by number, caller, department, status, category, time, colour and full text.

        ``total`` stops counting at ``count_cap`` (``total_capped``): exact counts of a common word
        over a million tickets cost more than the page itself.
        """
        q = query if isinstance(query, TicketQuery) else parse(TicketQuery, dict(query or {}))
        now = self.clock()
        source, where, order = self._query(q, actor, now)
        with session_scope(self.engine) as s:
            capped = sa.select(sa.literal(1)).select_from(source).where(*where).limit(count_cap + 1).subquery()
            total = s.execute(sa.select(sa.func.count()).select_from(capped)).scalar_one()
            stmt = select(Ticket).select_from(source).where(*where).order_by(*order)
            rows = s.exec(stmt.offset((q.page - 1) * q.per_page).limit(q.per_page)).all()
            items = self._reads(s, rows, actor, now, purpose="list")
        return Page(
            items=items,
            total=min(total, count_cap),
            total_capped=total > count_cap,
            page=q.page,
            per_page=q.per_page,
        )

    def _query(self, q: TicketQuery, actor: Actor, now: datetime) -> tuple[Any, list, list]:
        """FROM, WHERE and ORDER BY of a ticket query."""
        where = self._filtered(q, actor, now)
        tm = search.text_match(self.dialect, Ticket.__table__, q.q)
        where += tm.where
        source: Any = Ticket.__table__
        order = self._order(q.sort)
        if tm.fts is not None:
            source = source.join(tm.fts, tm.fts.c.rowid == Ticket.__table__.c.id)
            if q.sort.lstrip("-") == "created_at":
                # intake order is id order (created_at is stamped at insert): let FTS5 supply it
                order = [tm.fts.c.rowid.desc() if q.sort.startswith("-") else tm.fts.c.rowid.asc()]
        return source, where, order

    def caller_history(self, number: str, actor: Actor, limit: int = 50) -> list[TicketRead]:
        """Every ticket from a number, newest first (the operator's screen-pop list)."""
        return self.search({"caller_number": number, "per_page": min(limit, 200)}, actor).items

    def recent_for_number(self, number: str, limit: int = 5) -> CallerSummary:
        """The AGI pre-queue lookup: counts, flags and the latest tickets of a number.

        One prepared read on the (caller_number, created_at) index: no ORM objects, no scan.
        """
        n = normalize_number(number, self.area_code)
        now = self.clock()
        since = now - self.duplicate_window
        cal = self.calendar()
        found = self._lookup.all(n=n, since=since, lim=limit)
        first = found[0]
        total, open_, recent30 = first.total, first.open, first.r30
        caller = first if first.location is not None else None
        rows = [r for r in found if r.id is not None]
        secret = [r.id for r in rows if r.confidential]
        if secret:  # the lookup reads confidential tickets too: log it like any other read
            with self.engine.begin() as c:
                c.execute(
                    sa.insert(ConfidentialRead),
                    [
                        {
                            "ticket_id": i,
                            "at": now,
                            "username": "agi",
                            "role": "system",
                            "purpose": "caller_lookup",
                            "masked": False,
                        }
                        for i in secret
                    ],
                )
        recent = [
            RecentTicket(
                r.id,
                r.number or "",
                r.status,
                Status(r.status).label,
                r.category,
                r.title,
                r.created_at,
                state(r.current_due, now, cal, self.limits.yellow_days).value,
            )
            for r in rows
        ]
        return CallerSummary(
            number=n,
            location=caller.location if caller else location_of(n),
            blacklisted=bool(caller and caller.blacklisted),
            vip=bool(caller and caller.vip),
            elderly=bool(caller and caller.elderly),
            total=int(total),
            open=int(open_),
            recent_30d=int(recent30),
            repeat=int(recent30) > 0,
            recent=recent,
        )

    def duplicates_for(self, ticket_id: int, actor: Actor) -> list[duplicates.Proposal]:
        now = self.clock()
        with session_scope(self.engine) as s:
            t = self._get(s, ticket_id, actor)
            return self._propose(s, t, now)

    def export(self, query: TicketQuery | Mapping[str, Any] | None, actor: Actor, fmt: str = "csv") -> bytes:
        """CSV (UTF-8 with BOM, for Excel) or XLSX; confidential reporters are always masked."""
        if _role(actor) not in ("lead", "qa", "admin"):
            raise Forbidden("只有值班长、质检和管理员可以导出工单")
        if fmt not in ("csv", "xlsx"):
            raise InvalidInput(["导出格式须为 csv 或 xlsx"])
        q = query if isinstance(query, TicketQuery) else parse(TicketQuery, dict(query or {}))
        now = self.clock()
        source, where, order = self._query(q, actor, now)
        with session_scope(self.engine) as s:
            rows = s.exec(select(Ticket).select_from(source).where(*where).order_by(*order).limit(EXPORT_MAX)).all()
            reads = self._reads(s, rows, actor, now, purpose="export", force_mask=True)
        header = [
            "工单编号",
            "状态",
            "受理时间",
            "来电号码",
            "来电人",
            "联系方式",
            "类别",
            "保密",
            "标题",
            "区县",
            "事发地点",
            "诉求",
            "承办单位",
            "办理时限",
            "时限状态",
            "满意度",
        ]
        table = [
            [
                r.number,
                r.status_label,
                _fmt(r.created_at),
                r.caller_number,
                r.caller_name,
                r.contact,
                r.category,
                "是" if r.confidential else "否",
                r.title,
                r.district,
                r.matter_place,
                r.matter_demand,
                "、".join(d.name for d in r.departments),
                _fmt(r.current_due),
                r.deadline_label,
                r.satisfaction,
            ]
            for r in reads
        ]
        table = [[_cell(v) for v in row] for row in table]
        if fmt == "csv":
            buf = io.StringIO()
            w = csv.writer(buf)
            w.writerow(header)
            w.writerows(table)
            return ("\ufeff" + buf.getvalue()).encode("utf-8")
        from openpyxl import Workbook

        wb = Workbook(write_only=True)
        ws = wb.create_sheet("工单")
        ws.append(header)
        for row in table:
            ws.append(row)
        out = io.BytesIO()
        wb.save(out)
        return out.getvalue()

    # --- calls ------------------------------------------------------------------------------------

    def log_call(
        self,
        uniqueid: str,
        caller_number: str,
        started_at: datetime,
        seat: str = "",
        recording_id: str = "",
        ticket_id: int | None = None,
    ) -> int:
        """Record (or update) a call from the CTI; idempotent on ``uniqueid``."""
        n = normalize_number(caller_number, self.area_code)
        with session_scope(self.engine) as s:
            rec = s.exec(select(CallRecord).where(CallRecord.uniqueid == uniqueid)).first()
            if rec is None:
                rec = CallRecord(uniqueid=uniqueid, caller_number=n, started_at=started_at)
                s.add(rec)
                if n:
                    self._touch_caller(s, n, "", started_at)
            rec.seat = seat or rec.seat
            rec.recording_id = recording_id or rec.recording_id
            if ticket_id is not None:
                if s.get(Ticket, ticket_id) is None:
                    raise NotFound("工单不存在")
                rec.ticket_id = ticket_id
            s.flush()
            return rec.id

    def calls_for_ticket(self, ticket_id: int) -> list[CallRecord]:
        with Session(self.engine) as s:
            return list(s.exec(select(CallRecord).where(CallRecord.ticket_id == ticket_id)))

    def set_caller_flags(
        self,
        number: str,
        actor: Actor,
        *,
        blacklisted: bool | None = None,
        vip: bool | None = None,
        elderly: bool | None = None,
        note: str | None = None,
    ) -> CallerFlags:
        """A lead marks a number (None keeps a flag as it is); the AGI lookup reads the flags on the
        next call: a harassment number hears the warning, the elderly and special units go ahead."""
        if _role(actor) not in ("lead", "admin"):
            raise Forbidden("只有值班长和管理员可以设置来电标记")
        n = normalize_number(number, self.area_code)
        if not 5 <= len(n) <= 20:
            raise InvalidInput(["号码应为 5 到 20 位数字"])
        now = self.clock()
        with session_scope(self.engine) as s:
            c = self._touch_caller(s, n, "", None)
            for name, value in (("blacklisted", blacklisted), ("vip", vip), ("elderly", elderly)):
                if value is not None:
                    setattr(c, name, value)
            if note is not None:
                c.note = note[:200]
            c.flags_by, c.flags_at = actor.username, now
            s.flush()
            return _caller_flags(c)

    def flagged_callers(self, actor: Actor) -> list[CallerFlags]:
        """Every number with a flag, the most recently marked first (the lead's 特殊号码 page)."""
        if _role(actor) not in ("lead", "admin"):
            raise Forbidden("只有值班长和管理员可以查看来电标记")
        flagged = sa.or_(Caller.blacklisted.is_(True), Caller.vip.is_(True), Caller.elderly.is_(True))
        with Session(self.engine) as s:
            rows = s.exec(select(Caller).where(flagged).order_by(Caller.flags_at.desc(), Caller.number))
            return [_caller_flags(c) for c in rows]

    # --- department directory ---------------------------------------------------------------

    def departments(self, q: str = "", include_inactive: bool = False) -> list[DepartmentRead]:
        stmt = select(Department)
        cond = search.text_condition(self.dialect, Department.__table__, q)
        if cond is not None:
            stmt = stmt.where(cond)
        if not include_inactive:
            stmt = stmt.where(Department.active.is_(True))
        with Session(self.engine) as s:
            return [
                DepartmentRead.model_validate(d, from_attributes=True) for d in s.exec(stmt.order_by(Department.id))
            ]

    def department(self, department_id: int) -> DepartmentRead:
        with Session(self.engine) as s:
            d = s.get(Department, department_id)
            if d is None:
                raise NotFound("承办单位不存在")
            return DepartmentRead.model_validate(d, from_attributes=True)

    def save_department(
        self,
        data: DepartmentCreate | Mapping[str, Any] | bytes | str,
        actor: Actor,
        department_id: int | None = None,
    ) -> DepartmentRead:
        if _role(actor) != "admin":
            raise Forbidden("只有管理员可以维护单位名录")
        body = data if isinstance(data, DepartmentCreate) else parse(DepartmentCreate, data)
        now = self.clock()
        with session_scope(self.engine) as s:
            if department_id is None:
                if s.exec(select(Department).where(Department.name == body.name)).first():
                    raise InvalidInput([f"单位“{body.name}”已存在"])
                d = Department(**body.model_dump())
                s.add(d)
            else:
                d = s.get(Department, department_id)
                if d is None:
                    raise NotFound("承办单位不存在")
                for k, v in body.model_dump().items():
                    setattr(d, k, v)
            d.search_text = search.build_text(d.name, d.short_name, d.duties, d.address, d.phones)
            d.updated_at = now
            s.flush()
            self._dept_names.pop(d.id, None)
            return DepartmentRead.model_validate(d, from_attributes=True)

    # --- knowledge base -------------------------------------------------------------------------

    def kb_search(self, q: str = "", topic: str = "", limit: int = 20) -> list[ArticleRead]:
        stmt = select(Article)
        cond = search.text_condition(self.dialect, Article.__table__, q)
        if cond is not None:
            stmt = stmt.where(cond)
        if topic:
            stmt = stmt.where(Article.topic == topic)
        with Session(self.engine) as s:
            return [
                ArticleRead.model_validate(a, from_attributes=True)
                for a in s.exec(
                    stmt.order_by(Article.updated_at.desc(), Article.id.desc()).limit(max(1, min(limit, 100)))
                )
            ]

    def kb_get(self, article_id: int) -> ArticleRead:
        with Session(self.engine) as s:
            a = s.get(Article, article_id)
            if a is None:
                raise NotFound("知识条目不存在")
            return ArticleRead.model_validate(a, from_attributes=True)

    def save_article(
        self,
        data: ArticleCreate | Mapping[str, Any] | bytes | str,
        actor: Actor,
        article_id: int | None = None,
    ) -> ArticleRead:
        """Write a KB article; ``resolves`` closes the 查无信息 requests it answers."""
        if _role(actor) not in ("lead", "admin"):
            raise Forbidden("只有值班长和管理员可以编辑知识库")
        body = data if isinstance(data, ArticleCreate) else parse(ArticleCreate, data)
        now = self.clock()
        with session_scope(self.engine) as s:
            if body.department_id is not None:
                self._departments_exist(s, [body.department_id])
            fields = body.model_dump(exclude={"resolves"})
            if article_id is None:
                a = Article(**fields)
                s.add(a)
            else:
                a = s.get(Article, article_id)
                if a is None:
                    raise NotFound("知识条目不存在")
                for k, v in fields.items():
                    setattr(a, k, v)
            a.search_text = search.build_text(a.title, a.topic, a.tags, a.body)
            a.updated_at, a.updated_by = now, actor.username
            s.flush()
            for mid in body.resolves:
                m = s.get(MissingInfo, mid)
                if m is None:
                    raise NotFound(f"查无信息记录{mid}不存在")
                m.article_id, m.resolved_at = a.id, now
            return ArticleRead.model_validate(a, from_attributes=True)

    def report_missing(self, data: MissingCreate | Mapping[str, Any] | bytes | str, actor: Actor) -> MissingRead:
        """查无信息: the operator found nothing; an editor will fill the gap."""
        body = data if isinstance(data, MissingCreate) else parse(MissingCreate, data)
        with session_scope(self.engine) as s:
            m = MissingInfo(query=body.query, note=body.note, asked_by=actor.username, asked_at=self.clock())
            s.add(m)
            s.flush()
            return MissingRead.model_validate(m, from_attributes=True)

    def missing(self, open_only: bool = True) -> list[MissingRead]:
        stmt = select(MissingInfo)
        if open_only:
            stmt = stmt.where(MissingInfo.resolved_at.is_(None))
        with Session(self.engine) as s:
            return [
                MissingRead.model_validate(m, from_attributes=True)
                for m in s.exec(stmt.order_by(MissingInfo.id.desc()))
            ]

    # --- internals ------------------------------------------------------------------------------

    def _get(self, s: Session, ticket_id: int, actor: Actor) -> Ticket:
        t = s.get(Ticket, ticket_id)
        if t is None or not self._visible(s, t, actor):
            raise NotFound("工单不存在或无权查看")
        return t

    def _visible(self, s: Session, t: Ticket, actor: Actor) -> bool:
        if _role(actor) != "department":
            return True
        if actor.department_id is None:
            return False
        return s.get(TicketDepartment, (t.id, actor.department_id)) is not None

    def _filtered(self, q: TicketQuery, actor: Actor, now: datetime) -> list[sa.ColumnElement[bool]]:
        c = Ticket.__table__.c
        where: list[sa.ColumnElement[bool]] = []
        if _role(actor) == "department":
            if actor.department_id is None:
                return [sa.false()]
            where.append(
                sa.exists().where(
                    TicketDepartment.ticket_id == c.id, TicketDepartment.department_id == actor.department_id
                )
            )
            if q.caller_number or q.caller_name:
                # a department may not find a confidential reporter by identity
                where.append(c.confidential.is_(False))
        if q.caller_number:
            where.append(c.caller_number == normalize_number(q.caller_number, self.area_code))
        if q.number:
            where.append(c.number == q.number)
        if q.caller_name:
            where.append(c.caller_name == q.caller_name)
        if q.department_id is not None:
            where.append(c.lead_department_id == q.department_id)
        if q.status:
            try:
                where.append(c.status.in_([Status(x).value for x in q.status]))
            except ValueError:
                raise InvalidInput(["状态取值无效，可选：" + "、".join(s.value for s in Status)]) from None
        if q.category is not None:
            where.append(c.category == q.category)
        if q.created_from is not None:
            where.append(c.created_at >= q.created_from)
        if q.created_to is not None:
            where.append(c.created_at < q.created_to)
        if q.deadline_state:
            boundary = yellow_boundary(now, self.calendar(), self.limits.yellow_days)
            due = c.current_due
            where.append(
                {
                    "red": due < now,
                    "yellow": sa.and_(due >= now, due <= boundary),
                    "green": due > boundary,
                    "none": due.is_(None),
                }[q.deadline_state]
            )
        return where

    @staticmethod
    def _order(sort: str) -> list[sa.ColumnElement]:
        desc = sort.startswith("-")
        col = Ticket.__table__.c[sort.lstrip("-")]
        tie = Ticket.__table__.c.id
        return [col.desc(), tie.desc()] if desc else [col.asc(), tie.asc()]

    def _departments_exist(self, s: Session, ids: list[int | None]) -> dict[int, str]:
        wanted = {i for i in ids if i is not None}
        rows = s.exec(select(Department).where(Department.id.in_(wanted), Department.active.is_(True))).all()
        found = {d.id: d.name for d in rows}
        missing = sorted(wanted - set(found))
        if missing:
            raise InvalidInput([f"承办单位不存在或已停用：{'、'.join(map(str, missing))}"])
        return found

    def _dept_name(self, s: Session, dept_id: int) -> str:
        if dept_id not in self._dept_names:
            d = s.get(Department, dept_id)
            self._dept_names[dept_id] = d.name if d else str(dept_id)
        return self._dept_names[dept_id]

    @staticmethod
    def _text_of(t: Ticket) -> str:
        return search.build_text(
            t.title,
            t.district,
            t.matter_place,
            t.matter_course,
            t.matter_state,
            t.matter_demand,
            t.reply_text,
        )

    def _touch_caller(self, s: Session, number: str, name: str, now: datetime | None) -> Caller:
        c = s.exec(select(Caller).where(Caller.number == number)).first()
        if c is None:
            c = Caller(number=number, location=location_of(number), first_seen=now)
            s.add(c)
        if name:
            c.name = name
        if now is not None:
            c.last_seen = now
        return c

    def _event(
        self,
        s: Session,
        t: Ticket,
        actor: Actor,
        action: str,
        before: str,
        after: str,
        now: datetime,
        note: str = "",
    ) -> None:
        s.add(
            TicketEvent(
                ticket_id=t.id,
                at=now,
                actor=actor.username,
                actor_role=_role(actor),
                action=action,
                from_status=str(before),
                to_status=str(after),
                note=note[:4000],
            )
        )

    def _propose(self, s: Session, t: Ticket, now: datetime) -> list[duplicates.Proposal]:
        since = now - self.duplicate_window
        near = [Ticket.caller_number == t.caller_number] if t.caller_number else []
        if t.matter_place:
            near.append(Ticket.matter_place == t.matter_place)
            if t.district:
                near.append(sa.and_(Ticket.district == t.district, Ticket.category == t.category))
        if not near:
            return []
        rows = s.exec(
            select(Ticket)
            .where(sa.or_(*near), Ticket.created_at >= since, Ticket.id != t.id, Ticket.duplicate_of_id.is_(None))
            .order_by(Ticket.created_at.desc())
            .limit(200)
        ).all()
        new = _candidate(t)
        return duplicates.propose(
            new,
            (_candidate(r) for r in rows),
            now=now,
            window=self.duplicate_window,
            threshold=self.duplicate_threshold,
        )

    def _reads(
        self,
        s: Session,
        rows: Iterable[Ticket],
        actor: Actor,
        now: datetime,
        purpose: str,
        force_mask: bool = False,
    ) -> list[TicketRead]:
        rows = list(rows)
        links: dict[int, list[TicketDepartment]] = {}
        if rows:
            for td in s.exec(select(TicketDepartment).where(TicketDepartment.ticket_id.in_([r.id for r in rows]))):
                links.setdefault(td.ticket_id, []).append(td)
        return [self._read(s, t, actor, now, purpose, force_mask, links.get(t.id, [])) for t in rows]

    def _read(
        self,
        s: Session,
        t: Ticket,
        actor: Actor,
        now: datetime,
        purpose: str = "detail",
        force_mask: bool = False,
        links: list[TicketDepartment] | None = None,
    ) -> TicketRead:
        if links is None:
            links = list(s.exec(select(TicketDepartment).where(TicketDepartment.ticket_id == t.id)))
        cal = self.calendar()
        colour = state(t.current_due, now, cal, self.limits.yellow_days)
        role = _role(actor)
        masked = bool(t.confidential and (force_mask or role == "department"))
        read = TicketRead.model_validate(
            t,
            from_attributes=True,
            update={
                "status_label": Status(t.status).label,
                "deadline_state": colour.value,
                "deadline_label": colour.label,
                "calendar_warnings": warnings_for(t.current_due, now, cal),
                "masked": masked,
                "allowed_actions": workflow.allowed_actions(t.status, role),
                "departments": [
                    DepartmentRef(id=td.department_id, name=self._dept_name(s, td.department_id), is_lead=td.is_lead)
                    for td in sorted(links, key=lambda x: (not x.is_lead, x.department_id))
                ],
            },
        )
        if masked:
            read.caller_number = read.caller_name = read.caller_address = read.contact = MASK
        if t.confidential:
            s.add(
                ConfidentialRead(
                    ticket_id=t.id, at=now, username=actor.username, role=role, purpose=purpose, masked=masked
                )
            )
        return read


@lru_cache(maxsize=1)
def _lookup_statement() -> sa.Select:
    """The AGI lookup in one round trip (counts, the latest tickets, the caller's flags).

    Built once and run as a :class:`~ticketing.db.PreparedQuery`: composing and executing it
    through SQLAlchemy costs more than running it on SQLite.
    """
    T = Ticket.__table__.c
    n, since = sa.bindparam("n", type_=sa.String), sa.bindparam("since", type_=UTCDateTime)
    open_ = [sa.literal_column(f"'{s}'") for s in sorted(OPEN_STATUSES)]
    agg = (
        sa.select(
            sa.func.count().label("total"),
            # the statuses inline (our own constants): an expanding IN would be re-rendered on every call
            sa.func.coalesce(sa.func.sum(sa.case((T.status.in_(open_), 1), else_=0)), 0).label("open"),
            sa.func.coalesce(sa.func.sum(sa.case((T.created_at >= since, 1), else_=0)), 0).label("r30"),
        )
        .where(T.caller_number == n)
        .subquery("agg")
    )
    rec = (
        sa.select(T.id, T.number, T.status, T.category, T.title, T.created_at, T.current_due, T.confidential)
        .where(T.caller_number == n)
        .order_by(T.caller_number.desc(), T.created_at.desc())
        .limit(sa.bindparam("lim", type_=sa.Integer))
        .subquery("rec")
    )
    who = (
        sa.select(Caller.location, Caller.blacklisted, Caller.vip, Caller.elderly)
        .where(Caller.number == n)
        .subquery("who")
    )
    return (
        sa.select(agg, rec, who)
        .select_from(agg.outerjoin(rec, sa.true()).outerjoin(who, sa.true()))
        .order_by(rec.c.created_at.desc())
    )


def _caller_flags(c: Caller) -> CallerFlags:
    return CallerFlags(c.number, c.location, c.name, c.blacklisted, c.vip, c.elderly, c.note, c.flags_by,
                       c.flags_at, c.last_seen)


def _candidate(t: Ticket) -> duplicates.Candidate:
    return duplicates.Candidate(
        id=t.id or 0,
        caller_number=t.caller_number,
        place=t.matter_place,
        text=search.build_text(t.title, t.matter_course, t.matter_state, t.matter_demand),
        created_at=t.created_at,
        number=t.number or "",
    )


def _fmt(moment: datetime | None) -> str:
    from ticketing.calendar import TZ

    return moment.astimezone(TZ).strftime("%Y-%m-%d %H:%M") if moment else ""


def _cell(value: Any) -> Any:
    """Neutralise spreadsheet formulas in exported text (=, +, -, @ at the start)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def warm_up() -> None:
    """Load jieba's dictionary and the phone-number geocoder now, not on the first call (≈2 s)."""
    duplicates.warm_up()
    location_of("05305550000")
    location_of("13800000000")


def service_from_settings(settings: Any = None, migrate_db: bool = True) -> TicketService:
    """The wiring: a service on the configured database, migrated to head."""
    from hotline.settings import get_settings
    from ticketing.db import migrate

    st = settings or get_settings()
    engine = make_engine(st.db_url)
    if migrate_db:
        migrate(engine)
    completion = getattr(st, "ticket_completion_days", None)
    limits = Limits(
        yellow_days=getattr(st, "ticket_yellow_days", 2),
        completion=dict(completion) if completion else Limits().completion,
    )
    return TicketService(
        engine,
        limits=limits,
        area_code=st.local_area_code,
        duplicate_window=timedelta(days=getattr(st, "ticket_duplicate_window_days", 30)),
        duplicate_threshold=getattr(st, "ticket_duplicate_threshold", 42.0),
    )
