"""Tickets (工单): intake, reads and search, with confidential reporters masked and every read of
a confidential ticket logged.

Each method is one unit of work (one transaction): it either completes or writes nothing.
Errors are ``InvalidInput`` (422), ``NotFound`` (404), ``Forbidden`` (403) and
``TransitionError`` (409), each with a Chinese message for the user. The workflow's steps are
:mod:`ticketing.actions`.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from hotline.db import log_filter, page_of, session_scope
from ticketing import duplicates, search, steps, workflow
from ticketing.calendar import local_day
from ticketing.callers import normalize_number, touch_caller
from ticketing.context import StoreContext, role_of
from ticketing.deadlines import state, warnings_for, working_days_left, yellow_boundary
from ticketing.directory import Directory
from ticketing.models import Category, ConfidentialRead, Status, Supervision, Ticket, TicketDepartment, TicketEvent
from ticketing.schemas import (
    Actor,
    DepartmentRef,
    EventRead,
    Forbidden,
    InvalidInput,
    NotFound,
    Page,
    TicketChanged,
    TicketCreate,
    TicketQuery,
    TicketRead,
    TicketUpdate,
    parse,
)

MASK = "（保密）"
COUNT_CAP = 200  # "200+" (ten pages): counting every match of a common word costs more than the page
EDITABLE = (Status.DRAFT, Status.REGISTERED, Status.RETURNED)  # still with the centre


class Tickets:
    def __init__(self, ctx: StoreContext, directory: Directory) -> None:
        self.ctx = ctx
        self.directory = directory

    # --- intake --------------------------------------------------------------------------------

    def create(self, data: TicketCreate | Mapping[str, Any] | bytes | str, actor: Actor) -> TicketRead:
        """Record a ticket (registered unless ``draft``), proposing earlier reports of the same matter."""
        if role_of(actor) not in ("operator", "lead", "admin"):
            raise Forbidden("只有话务员和值班长可以受理工单")
        body = data if isinstance(data, TicketCreate) else parse(TicketCreate, data)
        now = self.ctx.clock()
        fields = body.model_dump(exclude={"draft"})
        fields["caller_number"] = normalize_number(fields["caller_number"], self.ctx.area_code)
        with session_scope(self.ctx.engine) as s:
            t = Ticket(**fields, status=Status.DRAFT, created_at=now, updated_at=now,
                       operator=getattr(actor, "job_number", "") or actor.username, query_code=new_query_code())
            t.search_text = steps.text_of(t)
            s.add(t)
            s.flush()
            t.number = f"{local_day(now):%Y%m%d}{t.id:06d}"
            steps.record_event(s, t, actor, "create", "", Status.DRAFT, now)
            if t.caller_number:
                touch_caller(s, t.caller_number, t.caller_name, now)
            if not body.draft:
                steps.apply(self.ctx, self.directory, s, t, "register", None, actor, now)
            proposals = self._propose(s, t, now)
            s.flush()
            read = self.read(s, t, actor, now, purpose="create")
        read.duplicates = [p.__dict__ for p in proposals]
        return read

    def update(self, ticket_id: int, data: TicketUpdate | Mapping[str, Any] | bytes | str, actor: Actor) -> TicketRead:
        """Correct the intake while the ticket is still with the centre."""
        if role_of(actor) not in ("operator", "lead", "admin"):
            raise Forbidden("只有话务员和值班长可以修改工单")
        body = data if isinstance(data, TicketUpdate) else parse(TicketUpdate, data)
        now = self.ctx.clock()
        with session_scope(self.ctx.engine) as s:
            t = self.visible(s, ticket_id, actor)
            if t.status not in EDITABLE:
                raise workflow.TransitionError(f"工单已{Status(t.status).label}，不能再修改受理内容")
            changes = body.model_dump(exclude_unset=True, exclude_none=True)
            for k, v in changes.items():
                setattr(t, k, v)
            t.search_text = steps.text_of(t)
            t.updated_at = now
            steps.record_event(s, t, actor, "update", t.status, t.status, now, "修改：" + "、".join(changes))
            return self.read(s, t, actor, now)

    def propose(self, draft: Mapping[str, str]) -> list[duplicates.Proposal]:
        """Earlier reports of a matter still being typed (an unsaved ticket): the rule ``create`` uses."""
        now = self.ctx.clock()
        number = draft.get("caller_number") or ""
        t = Ticket(caller_number=normalize_number(number, self.ctx.area_code) if number else "",
                   title=draft.get("title") or "-", category=draft.get("category") or Category.ENQUIRY,
                   district=draft.get("district") or "", matter_place=draft.get("matter_place") or "",
                   matter_course=draft.get("matter_course") or "", matter_demand=draft.get("matter_demand") or "",
                   created_at=now, updated_at=now)
        with Session(self.ctx.engine) as s:
            return self._propose(s, t, now)

    # --- reads ---------------------------------------------------------------------------------

    def get(self, ticket_id: int, actor: Actor) -> TicketRead:
        now = self.ctx.clock()
        with session_scope(self.ctx.engine) as s:
            return self.read(s, self.visible(s, ticket_id, actor), actor, now)

    def history(self, ticket_id: int, actor: Actor) -> list[EventRead]:
        with session_scope(self.ctx.engine) as s:
            self.visible(s, ticket_id, actor)
            rows = s.exec(select(TicketEvent).where(TicketEvent.ticket_id == ticket_id).order_by(TicketEvent.id)).all()
            return [EventRead.model_validate(r, from_attributes=True) for r in rows]

    def supervisions(self, ticket_id: int, actor: Actor) -> list[Supervision]:
        with session_scope(self.ctx.engine) as s:
            self.visible(s, ticket_id, actor)
            return list(s.exec(select(Supervision).where(Supervision.ticket_id == ticket_id).order_by(Supervision.id)))

    def search(self, query: TicketQuery | Mapping[str, Any] | None, actor: Actor, count_cap: int = COUNT_CAP) -> Page:
        """Tickets by number, caller, department, status, category, time, colour and full text.

        ``total`` stops counting at ``count_cap`` (``total_capped``): exact counts of a common word
        over a million tickets cost more than the page itself.
        """
        q = query if isinstance(query, TicketQuery) else parse(TicketQuery, dict(query or {}))
        now = self.ctx.clock()
        source, where, order = self.query(q, actor, now)
        with session_scope(self.ctx.engine) as s:
            capped = sa.select(sa.literal(1)).select_from(source).where(*where).limit(count_cap + 1).subquery()
            total = s.execute(sa.select(sa.func.count()).select_from(capped)).scalar_one()
            stmt = select(Ticket).select_from(source).where(*where).order_by(*order)
            rows = s.exec(stmt.offset((q.page - 1) * q.per_page).limit(q.per_page)).all()
            items = self.reads(s, rows, actor, now, purpose="list")
        return Page(items=items, total=min(total, count_cap), total_capped=total > count_cap, page=q.page,
                    per_page=q.per_page)

    def count(self, query: TicketQuery | Mapping[str, Any] | None, actor: Actor, count_cap: int = COUNT_CAP) -> Page:
        """How many tickets a search finds (up to ``count_cap``), without reading any: the badges of a
        desk's views count tickets, and a count is no read of a confidential reporter."""
        q = query if isinstance(query, TicketQuery) else parse(TicketQuery, dict(query or {}))
        source, where, _order_by = self.query(q, actor, self.ctx.clock())
        with Session(self.ctx.engine) as s:
            capped = sa.select(sa.literal(1)).select_from(source).where(*where).limit(count_cap + 1).subquery()
            total = s.execute(sa.select(sa.func.count()).select_from(capped)).scalar_one()
        return Page(items=[], total=min(total, count_cap), total_capped=total > count_cap, page=1, per_page=0)

    def caller_history(self, number: str, actor: Actor, limit: int = 50) -> list[TicketRead]:
        """Every ticket from a number, newest first (the operator's screen-pop list)."""
        return self.search({"caller_number": number, "per_page": min(limit, 200)}, actor).items

    def confidential_reads(self, ticket_id: int, actor: Actor) -> list[dict[str, Any]]:
        """Who read a confidential ticket, as what and how (leads and admins only)."""
        if role_of(actor) not in ("lead", "admin"):
            raise Forbidden("只有值班长和管理员可以查看保密工单的查阅记录")
        with session_scope(self.ctx.engine) as s:
            self.visible(s, ticket_id, actor)
            rows = s.exec(select(ConfidentialRead).where(ConfidentialRead.ticket_id == ticket_id)
                          .order_by(ConfidentialRead.id.desc()).limit(500))  # type: ignore[union-attr]
            return [{"at": r.at.isoformat(), "username": r.username, "role": r.role, "purpose": r.purpose,
                     "masked": r.masked} for r in rows]

    def confidential_read_log(self, actor: Actor, *, username: str = "", ticket_number: str = "",
                              since: datetime | None = None, until: datetime | None = None, limit: int = 200,
                              offset: int = 0) -> tuple[int, list[dict[str, Any]]]:
        """Every read of every confidential ticket, newest first, filtered (leads and admins):
        (how many match, one page of them)."""
        if role_of(actor) not in ("lead", "admin"):
            raise Forbidden("只有值班长和管理员可以查看保密工单的查阅记录")
        q = log_filter(sa.select(ConfidentialRead, Ticket.number).join(Ticket, Ticket.id == ConfidentialRead.ticket_id),
                       ConfidentialRead.at, since, until,
                       [(ConfidentialRead.username, username), (Ticket.number, ticket_number)])
        with session_scope(self.ctx.engine) as s:
            total, rows = page_of(s, q, ConfidentialRead.id.desc(), limit=limit, offset=offset)  # type: ignore[union-attr]
            return total, [{"at": r.at.isoformat(), "ticket_id": r.ticket_id, "ticket_number": number,
                            "username": r.username, "role": r.role, "purpose": r.purpose, "masked": r.masked}
                           for r, number in rows]

    def duplicates_for(self, ticket_id: int, actor: Actor) -> list[duplicates.Proposal]:
        now = self.ctx.clock()
        with session_scope(self.ctx.engine) as s:
            return self._propose(s, self.visible(s, ticket_id, actor), now)

    def changed(self, ticket_id: int, action: str, by: str) -> TicketChanged:
        """The bus event for a change just made: where the ticket is now (number, state, the
        departments handling it, lead first). Reads no reporter data, so it logs no read."""
        with Session(self.ctx.engine) as s:
            t = s.get(Ticket, ticket_id)
            if t is None:
                raise NotFound("工单不存在")
            links = s.exec(select(TicketDepartment).where(TicketDepartment.ticket_id == ticket_id)).all()
            depts = tuple(td.department_id for td in sorted(links, key=lambda x: (not x.is_lead, x.department_id)))
            return TicketChanged(at=self.ctx.clock().timestamp(), ticket_id=ticket_id, number=t.number or "",
                                 action=action, status=str(t.status), department_ids=depts, by=by)

    def check_visible(self, ticket_id: int, actor: Actor) -> None:
        """``NotFound`` unless this actor may see the ticket (no read is logged: nothing is read)."""
        with Session(self.ctx.engine) as s:
            self.visible(s, ticket_id, actor)

    # --- for the other parts of the store, inside their unit of work ---------------------------

    def visible(self, s: Session, ticket_id: int, actor: Actor) -> Ticket:
        """The ticket, if this actor may see it (a department: only its own and co-handled ones)."""
        t = s.get(Ticket, ticket_id)
        if t is None or not self._may_see(s, t, actor):
            raise NotFound("工单不存在或无权查看")
        return t

    def query(self, q: TicketQuery, actor: Actor, now: datetime) -> tuple[Any, list, list]:
        """FROM, WHERE and ORDER BY of a ticket query."""
        where = self._filtered(q, actor, now)
        tm = search.text_match(self.ctx.dialect, Ticket.__table__, q.q)
        where += tm.where
        source: Any = Ticket.__table__
        order = _order(q.sort)
        if tm.fts is not None:
            source = source.join(tm.fts, tm.fts.c.rowid == Ticket.__table__.c.id)
            if q.sort.lstrip("-") == "created_at":
                # intake order is id order (created_at is stamped at insert): let FTS5 supply it
                order = [tm.fts.c.rowid.desc() if q.sort.startswith("-") else tm.fts.c.rowid.asc()]
        return source, where, order

    def reads(self, s: Session, rows: Iterable[Ticket], actor: Actor, now: datetime, purpose: str,
              force_mask: bool = False) -> list[TicketRead]:
        rows = list(rows)
        links: dict[int, list[TicketDepartment]] = {}
        noted: set[int] = set()
        if rows:
            ids = [r.id for r in rows]
            for td in s.exec(select(TicketDepartment).where(TicketDepartment.ticket_id.in_(ids))):
                links.setdefault(td.ticket_id, []).append(td)
            noted = _with_open_notes(s, ids)
        return [self.read(s, t, actor, now, purpose, force_mask, links.get(t.id, []), t.id in noted) for t in rows]

    def read(self, s: Session, t: Ticket, actor: Actor, now: datetime, purpose: str = "detail",
             force_mask: bool = False, links: list[TicketDepartment] | None = None,
             open_notes: bool | None = None) -> TicketRead:
        """What ``actor`` sees of ``t``: deadline colour, allowed actions, the reporter masked for a
        department (and in exports); a read of a confidential ticket is logged."""
        if links is None:
            links = list(s.exec(select(TicketDepartment).where(TicketDepartment.ticket_id == t.id)))
        if open_notes is None:
            open_notes = bool(_with_open_notes(s, [t.id]))
        cal = self.ctx.calendar()
        colour = state(t.current_due, now, cal, self.ctx.limits.yellow_days)
        role = role_of(actor)
        masked = bool(t.confidential and (force_mask or role == "department"))
        read = TicketRead.model_validate(t, from_attributes=True, update={
            "status_label": Status(t.status).label,
            "deadline_state": colour.value,
            "deadline_label": colour.label,
            "working_days_left": working_days_left(t.current_due, now, cal),
            "calendar_warnings": warnings_for(t.current_due, now, cal),
            "masked": masked,
            "allowed_actions": _allowed(t, actor, open_notes),
            "departments": [
                DepartmentRef(id=td.department_id, name=self.directory.name(s, td.department_id), is_lead=td.is_lead,
                              assignee=td.assignee)
                for td in sorted(links, key=lambda x: (not x.is_lead, x.department_id))
            ],
        })
        if masked:
            read.caller_number = read.caller_name = read.caller_address = read.contact = MASK
        if role == "department":
            read.query_code = ""  # the citizen's key: the centre tells them, nobody else needs it
        if t.confidential:
            s.add(ConfidentialRead(ticket_id=t.id, at=now, username=actor.username, role=role, purpose=purpose,
                                   masked=masked))
        return read

    # --- internals ------------------------------------------------------------------------------

    def _may_see(self, s: Session, t: Ticket, actor: Actor) -> bool:
        if role_of(actor) != "department":
            return True
        if actor.department_id is None:
            return False
        return s.get(TicketDepartment, (t.id, actor.department_id)) is not None

    def _filtered(self, q: TicketQuery, actor: Actor, now: datetime) -> list[sa.ColumnElement[bool]]:
        c = Ticket.__table__.c
        where: list[sa.ColumnElement[bool]] = []
        if role_of(actor) == "department":
            if actor.department_id is None:
                return [sa.false()]
            where.append(sa.exists().where(TicketDepartment.ticket_id == c.id,
                                           TicketDepartment.department_id == actor.department_id))
            if q.caller_number or q.caller_name:
                # a department may not find a confidential reporter by identity
                where.append(c.confidential.is_(False))
        if q.caller_number:
            where.append(c.caller_number == normalize_number(q.caller_number, self.ctx.area_code))
        if q.number:
            where.append(c.number == q.number)
        if q.caller_name:
            where.append(c.caller_name == q.caller_name)
        if q.operator:
            where.append(c.operator == q.operator)
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
            boundary = yellow_boundary(now, self.ctx.calendar(), self.ctx.limits.yellow_days)
            due = c.current_due
            where.append({
                "red": due < now,
                "yellow": sa.and_(due >= now, due <= boundary),
                "green": due > boundary,
                "none": due.is_(None),
            }[q.deadline_state])
        return where

    def _propose(self, s: Session, t: Ticket, now: datetime) -> list[duplicates.Proposal]:
        since = now - self.ctx.duplicate_window
        near = [Ticket.caller_number == t.caller_number] if t.caller_number else []
        if t.matter_place:
            near.append(Ticket.matter_place == t.matter_place)
            if t.district:
                near.append(sa.and_(Ticket.district == t.district, Ticket.category == t.category))
        # the newest 200 of the window that share any of them: each kind newest-first from its own
        # index (migration 0011), then merged; as one OR the database walked the whole window by date.
        # The columns a comparison reads, not 200 whole tickets: at a million tickets loading them was
        # a third of an intake.
        c = Ticket.__table__.c
        found: dict[int, Any] = {}
        for kind in near:
            for r in s.execute(
                sa.select(c.id, c.caller_number, c.matter_place, c.title, c.matter_course, c.matter_state,
                          c.matter_demand, c.created_at, c.number)
                .where(kind, c.created_at >= since, c.id != t.id, c.duplicate_of_id.is_(None))
                .order_by(c.created_at.desc())
                .limit(200)
            ):
                found[r.id] = r
        rows = sorted(found.values(), key=lambda r: (r.created_at, r.id), reverse=True)[:200]
        return duplicates.propose(_candidate(t), (_candidate(r) for r in rows), now=now,
                                  window=self.ctx.duplicate_window, threshold=self.ctx.duplicate_threshold)


def new_query_code() -> str:
    """Six digits the citizen gets with the ticket number, for the public status page and the IVR."""
    return f"{secrets.randbelow(10**6):06d}"


def _with_open_notes(s: Session, ids: list[int | None]) -> set[int]:
    """Which of these tickets have a supervision note still waiting for its answer."""
    q = select(Supervision.ticket_id).where(Supervision.ticket_id.in_(ids), Supervision.answered_at.is_(None))  # type: ignore[attr-defined,union-attr]
    return set(s.exec(q.distinct()))


def _allowed(t: Ticket, actor: Actor, open_notes: bool) -> list[str]:
    """The workflow's actions for this actor on this ticket: a co-handling department only records
    its part, only a department's lead chooses the handler, and an answer needs a note to answer."""
    role = role_of(actor)
    actions = workflow.allowed_actions(t.status, role)
    if not open_notes:
        actions = [a for a in actions if a != "answer_supervision"]
    if role != "department":
        return actions
    if t.lead_department_id != actor.department_id:
        actions = [a for a in actions if a in workflow.CO_HANDLER]
    if not getattr(actor, "dept_lead", False):
        actions = [a for a in actions if a != "assign"]
    return actions


def _order(sort: str) -> list[sa.ColumnElement]:
    desc = sort.startswith("-")
    col = Ticket.__table__.c[sort.lstrip("-")]
    tie = Ticket.__table__.c.id
    first = col.desc() if desc else col.asc()
    if col.nullable:  # tickets with no running deadline come last either way, on every backend
        first = first.nulls_last()
    return [first, tie.desc() if desc else tie.asc()]


def _candidate(t: Ticket | sa.Row) -> duplicates.Candidate:
    return duplicates.Candidate(
        id=t.id or 0,
        caller_number=t.caller_number,
        place=t.matter_place,
        text=search.build_text(t.title, t.matter_course, t.matter_state, t.matter_demand),
        created_at=t.created_at,
        number=t.number or "",
    )
