"""Finished tickets from the centre's previous system, in bulk (``hotline tickets import FILE``).

A centre that switches to hotline brings years of 工单 with it: the repeat-caller flag, the
caller's history in the screen-pop, duplicate proposals and the reports are only as good as that
history. Tickets still open at the cut-over stay in the old system until they close (the usual
"新单新系统，老单老系统"), so an import holds finished tickets only (办结 or 归档).

Each row is validated as strictly as an intake (``TicketImport``: unknown fields refused, the
category and departments must exist, times must carry their zone) and a bad row is reported by
its line, never half-written. Rows go in batches, one transaction each, through SQLAlchemy Core
rather than one ORM object per ticket (a million rows in minutes, not hours), writing what the
store's own intake writes: the ticket with its search text (the full-text indexes follow by
themselves), its departments, its history and the caller's row. The old system's number is kept
(citizens quote it), which makes a re-run idempotent: numbers already present are skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from types import SimpleNamespace
from typing import Any, Literal

import sqlalchemy as sa
from pydantic import AwareDatetime
from sqlmodel import Field

from ticketing.callers import location_of, normalize_number
from ticketing.context import StoreContext, role_of
from ticketing.directory import Directory
from ticketing.models import SHORT, Caller, Category, Status, Ticket, TicketBase, TicketDepartment, TicketEvent
from ticketing.schemas import Actor, Forbidden, InvalidInput, _Strict, parse
from ticketing.steps import text_of
from ticketing.tickets import new_query_code

BATCH = 2000


class TicketImport(_Strict, TicketBase):
    """One finished ticket of the old system (the intake's fields, and how it ended)."""

    number: str = Field(min_length=1, max_length=SHORT)
    status: Literal["closed", "archived"] = "archived"
    created_at: AwareDatetime
    closed_at: AwareDatetime | None = None
    operator: str = Field(default="", max_length=SHORT)  # the old system's job number
    lead_department: str = Field(default="", max_length=SHORT)  # name or short name in the directory
    co_departments: list[str] = Field(default_factory=list, max_length=10)
    reply_text: str = Field(default="", max_length=4000)
    callback_result: str = Field(default="", max_length=4000)
    satisfaction: str = Field(default="", max_length=16)


@dataclass
class ImportReport:
    read: int = 0
    imported: int = 0
    already_present: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)  # (line, reason), the first 100

    @property
    def rejected(self) -> int:
        return self.read - self.imported - self.already_present


class Importer:
    def __init__(self, ctx: StoreContext, directory: Directory) -> None:
        self.ctx = ctx
        self.directory = directory

    def tickets(self, rows: Iterable[Mapping[str, Any] | bytes | str], actor: Actor, *, dry_run: bool = False,
                batch: int = BATCH, progress: Callable[[ImportReport], None] | None = None) -> ImportReport:
        """Validate and (unless ``dry_run``) write ``rows``; line numbers in the report count from 1."""
        if role_of(actor) != "admin":
            raise Forbidden("只有管理员可以导入历史工单")
        report = ImportReport()
        departments = self._departments()
        pending: list[tuple[int, TicketImport]] = []
        for line, raw in enumerate(rows, start=1):
            report.read += 1
            try:
                row = parse(TicketImport, raw)
                _check_departments(row, departments)
            except InvalidInput as e:
                if len(report.errors) < 100:
                    report.errors.append((line, str(e)))
                continue
            pending.append((line, row))
            if len(pending) >= batch:
                self._write(pending, departments, actor, report, dry_run)
                pending = []
                if progress:
                    progress(report)
        if pending:
            self._write(pending, departments, actor, report, dry_run)
        if progress:
            progress(report)
        return report

    # --- internals ------------------------------------------------------------------------------

    def _departments(self) -> dict[str, int]:
        with self.ctx.engine.connect() as c:
            found: dict[str, int] = {}
            for i, name, short in c.execute(sa.text("SELECT id, name, short_name FROM department")):
                found[name] = i
                if short:
                    found.setdefault(short, i)
        return found

    def _write(self, pending: list[tuple[int, TicketImport]], departments: dict[str, int], actor: Actor,
               report: ImportReport, dry_run: bool) -> None:
        by_number: dict[str, TicketImport] = {}
        for line, row in pending:
            if row.number in by_number:
                report.errors.append((line, f"工单编号 {row.number} 在文件中重复"))
            else:
                by_number[row.number] = row
        t = Ticket.__table__
        with self.ctx.engine.begin() as c:
            present = {n for (n,) in c.execute(sa.select(t.c.number).where(t.c.number.in_(list(by_number))))}
            report.already_present += len(present)
            rows = [r for n, r in by_number.items() if n not in present]
            if dry_run or not rows:
                report.imported += len(rows)
                return
            values = [self._ticket(r, departments) for r in rows]
            ids = _insert_tickets(c, values)
            links = [{"ticket_id": ids[r.number], "department_id": d, "is_lead": lead, "assignee": ""}
                     for r in rows for d, lead in _handlers(r, departments)]
            if links:
                c.execute(sa.insert(TicketDepartment.__table__), links)
            now = self.ctx.clock()
            c.execute(sa.insert(TicketEvent.__table__),
                      [ev for r in rows for ev in _history(r, ids[r.number], actor, now)])
            self._callers(c, values)
        report.imported += len(rows)

    def _ticket(self, r: TicketImport, departments: dict[str, int]) -> dict[str, Any]:
        fields = r.model_dump(exclude={"lead_department", "co_departments", "created_at", "closed_at"})
        fields["caller_number"] = normalize_number(r.caller_number, self.ctx.area_code)
        fields["status"] = Status(r.status)
        created = r.created_at.astimezone(UTC)
        closed = (r.closed_at or r.created_at).astimezone(UTC)
        # a plain row, not a Ticket object: building a million ORM objects cost a fifth of the import
        out = {**_blank_ticket(), **fields, "lead_department_id": departments.get(r.lead_department),
               "created_at": created, "updated_at": closed, "registered_at": created, "closed_at": closed,
               "archived_at": closed if r.status == Status.ARCHIVED else None, "query_code": new_query_code(),
               "source": "import", "status": str(r.status), "category": str(r.category),
               "handling_mode": str(r.handling_mode)}
        out["search_text"] = text_of(SimpleNamespace(**out))
        return out

    def _callers(self, c: sa.Connection, values: list[dict[str, Any]]) -> None:
        """Each number's first and last sight over its imported tickets; rows made on first sight."""
        seen: dict[str, tuple[datetime, datetime, str]] = {}
        for v in values:
            n = v["caller_number"]
            if not n:
                continue
            first, last, name = seen.get(n, (v["created_at"], v["created_at"], v["caller_name"]))
            seen[n] = (min(first, v["created_at"]), max(last, v["created_at"]), v["caller_name"] or name)
        ct = Caller.__table__
        known = {number: (i, first, last) for i, number, first, last in c.execute(
            sa.select(ct.c.id, ct.c.number, ct.c.first_seen, ct.c.last_seen).where(ct.c.number.in_(list(seen))))}
        new = [{"number": n, "location": location_of(n), "name": name, "first_seen": first, "last_seen": last,
                "note": "", "flags_by": ""}
               for n, (first, last, name) in seen.items() if n not in known]
        if new:
            c.execute(sa.insert(ct), new)
        changed = []
        for n, (i, first, last) in known.items():
            f, la, _ = seen[n]
            first_seen = min(x for x in (first, f) if x is not None)
            last_seen = max(x for x in (last, la) if x is not None)
            if (first_seen, last_seen) != (first, last):
                changed.append({"cid": i, "f": first_seen, "l": last_seen})
        if changed:  # one executemany: a statement per caller was a quarter of the import on PostgreSQL
            c.execute(sa.update(ct).where(ct.c.id == sa.bindparam("cid"))
                      .values(first_seen=sa.bindparam("f"), last_seen=sa.bindparam("l")), changed)


@lru_cache(maxsize=1)
def _blank_ticket() -> dict[str, Any]:
    """Every column of a ticket with the model's defaults (the rows are written with Core)."""
    return Ticket(category=Category.HELP, title="-").model_dump(exclude={"id"})


def _insert_tickets(c: sa.Connection, values: list[dict[str, Any]]) -> dict[str, int]:
    """Write the tickets; their ids by number.

    PostgreSQL: the ids are drawn from the sequence first and the rows sent as one pipelined
    ``executemany`` (an ``INSERT … RETURNING`` of thousands of rows is one huge statement that the
    driver parses anew for every batch). SQLite: ``RETURNING`` is cheap there, and the writer lock
    the batch holds keeps the ids in order.
    """
    t = Ticket.__table__
    if c.dialect.name == "postgresql":
        fresh = c.execute(sa.text("SELECT nextval(pg_get_serial_sequence('ticket', 'id')) FROM generate_series(1, :n)"),
                          {"n": len(values)}).scalars().all()
        for v, i in zip(values, fresh, strict=True):
            v["id"] = i
        c.execute(sa.insert(t), values)
        return {v["number"]: v["id"] for v in values}
    return {n: i for n, i in c.execute(sa.insert(t).returning(t.c.number, t.c.id), values)}


def _check_departments(row: TicketImport, departments: dict[str, int]) -> None:
    unknown = [d for d in (row.lead_department, *row.co_departments) if d and d not in departments]
    if unknown:
        raise InvalidInput([f"单位不在单位目录中：{'、'.join(unknown)}"])


def _handlers(r: TicketImport, departments: dict[str, int]) -> list[tuple[int, bool]]:
    lead = departments.get(r.lead_department)
    out = [(lead, True)] if lead else []
    for name in r.co_departments:
        d = departments[name]
        if d != lead and all(d != x for x, _ in out):
            out.append((d, False))
    return out


def _history(r: TicketImport, ticket_id: int, actor: Actor, now: datetime) -> list[dict[str, Any]]:
    """The imported ticket's 流转记录: its intake in the old system, its ending, and the import."""
    created = r.created_at.astimezone(UTC)
    closed = (r.closed_at or r.created_at).astimezone(UTC)
    base = {"ticket_id": ticket_id, "actor_role": "import", "from_status": "", "note": ""}
    return [
        {**base, "at": created, "actor": r.operator or "原系统", "action": "create", "to_status": "registered"},
        {**base, "at": closed, "actor": "原系统", "action": "close", "from_status": "registered",
         "to_status": str(r.status), "note": r.reply_text[:4000]},
        {**base, "at": now, "actor": actor.username, "action": "import", "actor_role": "admin",
         "from_status": str(r.status), "to_status": str(r.status), "note": "从原系统导入"},
    ]
