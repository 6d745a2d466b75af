"""The department directory (承办单位名录): who handles what, their lines and duties, and which
departments an operator's words point to."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, select

from hotline.db import session_scope
from ticketing import search
from ticketing.context import StoreContext, role_of
from ticketing.duplicates import tokens
from ticketing.models import Department, dial_line
from ticketing.schemas import Actor, DepartmentCreate, DepartmentRead, Forbidden, InvalidInput, NotFound, parse


@dataclass(frozen=True, slots=True)
class Suggestion:
    """A department whose duties share words with the matter (the console's 承办单位 hint)."""

    id: int
    name: str
    sip_line: str
    hits: tuple[str, ...]


def _read(d: Department) -> DepartmentRead:
    """A department as read, with the number that rings it."""
    return DepartmentRead.model_validate(d, from_attributes=True).model_copy(
        update={"line": dial_line(d.sip_line, d.phones)})


class Directory:
    def __init__(self, ctx: StoreContext) -> None:
        self.ctx = ctx
        self._names: dict[int, str] = {}

    def list(self, q: str = "", include_inactive: bool = False) -> list[DepartmentRead]:
        stmt = select(Department)
        cond = search.text_condition(self.ctx.dialect, Department.__table__, q)
        if cond is not None:
            stmt = stmt.where(cond)
        if not include_inactive:
            stmt = stmt.where(Department.active.is_(True))
        with Session(self.ctx.engine) as s:
            return [
                _read(d) for d in s.exec(stmt.order_by(Department.id))
            ]

    def get(self, department_id: int) -> DepartmentRead:
        with Session(self.ctx.engine) as s:
            d = s.get(Department, department_id)
            if d is None:
                raise NotFound("承办单位不存在")
            return _read(d)

    def save(
        self,
        data: DepartmentCreate | Mapping[str, Any] | bytes | str,
        actor: Actor,
        department_id: int | None = None,
    ) -> DepartmentRead:
        if role_of(actor) != "admin":
            raise Forbidden("只有管理员可以维护单位名录")
        body = data if isinstance(data, DepartmentCreate) else parse(DepartmentCreate, data)
        now = self.ctx.clock()
        with session_scope(self.ctx.engine) as s:
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
            self._names.pop(d.id, None)
            return _read(d)

    def suggest(self, text: str, limit: int = 3) -> list[Suggestion]:
        """承办单位 suggested from the matter's words against each department's name and duties."""
        words = {w for w in tokens(text) if len(w) >= 2}
        if not words:
            return []
        scored = []
        for d in self.list():
            duties = f"{d.name} {d.duties}"
            hits = [w for w in words if w in duties]
            if hits:
                scored.append((len(hits), d, hits))
        scored.sort(key=lambda x: (-x[0], x[1].id))
        return [Suggestion(d.id, d.name, d.sip_line, tuple(hits[:5])) for _, d, hits in scored[:limit]]

    # --- for the other parts of the store, inside their unit of work ---------------------------

    def require_active(self, s: Session, ids: Iterable[int | None]) -> dict[int, str]:
        """Names of the departments ``ids``; refuses an unknown or retired one."""
        wanted = {i for i in ids if i is not None}
        rows = s.exec(select(Department).where(Department.id.in_(wanted), Department.active.is_(True))).all()
        found = {d.id: d.name for d in rows}
        missing = sorted(wanted - set(found))
        if missing:
            raise InvalidInput([f"承办单位不存在或已停用：{'、'.join(map(str, missing))}"])
        return found

    def name(self, s: Session, department_id: int) -> str:
        if department_id not in self._names:
            d = s.get(Department, department_id)
            self._names[department_id] = d.name if d else str(department_id)
        return self._names[department_id]
