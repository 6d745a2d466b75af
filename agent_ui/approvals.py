"""A lead's approval for what the shift rules refuse (DOMAIN.md: no sign-out and no 示忙 in the
first or last 30 minutes of a shift without it).

The console asks (``POST /api/approvals``, or automatically when ``/api/seat/signout|busy`` is
refused); a lead decides (``POST /api/approvals/{id}/approve|refuse``). Approving *does* the
action, with ``approved_by`` set, so the operator does not have to ask twice. Every change is
published on the bus as an :class:`ApprovalChanged` (``type: seat_update``): the operator's
websocket sees their own seat's, the lead's sees all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, ClassVar, Literal

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field
from sqlmodel import Field as SqlField
from sqlmodel import Index, Session, SQLModel, select

from agent_ui.centre import scope, seat_queues
from hotline.bus import DomainEvent
from hotline.identity import Principal, Role, require_roles
from hotline.params import NO_NUL, DbId, Limit

KINDS = ("signout", "busy")
KIND_LABELS = {"signout": "签出", "busy": "示忙"}
STATE_LABELS = {"pending": "待审批", "approved": "已批准", "refused": "已拒绝", "failed": "批准后执行失败"}


class SeatApproval(SQLModel, table=True):
    __tablename__ = "seat_approval"
    __table_args__ = (Index("ix_seat_approval_state", "state", "requested_at"),)  # migration ui0002

    id: int | None = SqlField(default=None, primary_key=True)
    kind: str = SqlField(max_length=16)
    seat: str = SqlField(max_length=16)
    reason: str = SqlField(default="", max_length=64)
    rule: str = SqlField(default="", max_length=128)  # which window refused it
    requested_by: str = SqlField(max_length=64)
    requested_at: datetime
    state: str = SqlField(default="pending", max_length=16)
    decided_by: str = SqlField(default="", max_length=64)
    decided_at: datetime | None = None
    note: str = SqlField(default="", max_length=200)

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id, "kind": self.kind, "kind_label": KIND_LABELS.get(self.kind, self.kind),
            "seat": self.seat, "reason": self.reason, "rule": self.rule,
            "requested_by": self.requested_by, "requested_at": _iso(self.requested_at),
            "state": self.state, "state_label": STATE_LABELS.get(self.state, self.state),
            "decided_by": self.decided_by, "decided_at": _iso(self.decided_at), "note": self.note,
        }


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()


@dataclass(frozen=True, slots=True, kw_only=True)
class ApprovalChanged(DomainEvent):
    """An approval was requested or decided (``state``: pending / approved / refused / failed)."""

    type: ClassVar[str] = "seat_update"
    approval_id: int
    seat: str
    kind: str
    reason: str
    state: str
    requested_by: str
    decided_by: str = ""
    note: str = ""


# ---------------------------------------------------------------------------------------- store


def request_approval(engine, kind: str, seat: str, reason: str, rule: str, who: str) -> SeatApproval:
    with Session(engine) as s:
        # one open request per seat and kind: a second click must not queue a second one
        open_ = s.exec(select(SeatApproval).where(SeatApproval.seat == seat, SeatApproval.kind == kind,
                                                  SeatApproval.state == "pending")).first()
        if open_ is not None:
            return open_
        row = SeatApproval(kind=kind, seat=seat, reason=reason, rule=rule, requested_by=who,
                           requested_at=datetime.now(UTC))
        s.add(row)
        s.commit()
        s.refresh(row)
        return row


def list_approvals(engine, state: str | None, seat: str | None, limit: int) -> list[dict]:
    q = select(SeatApproval)
    if state:
        q = q.where(SeatApproval.state == state)
    if seat:
        q = q.where(SeatApproval.seat == seat)
    with Session(engine) as s:
        return [r.as_dict() for r in s.exec(q.order_by(SeatApproval.id.desc()).limit(limit))]  # type: ignore[union-attr]


def decide(engine, approval_id: int, state: str, who: str, note: str,
           seat_allowed: Callable[[str], bool] = lambda _seat: True) -> SeatApproval:
    """``seat_allowed``: the decider's centre (another centre's request is as unknown as a wrong id)."""
    with Session(engine) as s:
        row = s.get(SeatApproval, approval_id)
        if row is None or not seat_allowed(row.seat):
            raise LookupError("审批申请不存在")
        if row.state != "pending":
            raise ValueError(f"该申请已{STATE_LABELS.get(row.state, row.state)}，无需再处理")
        row.state, row.decided_by, row.decided_at, row.note = state, who, datetime.now(UTC), note
        s.add(row)
        s.commit()
        s.refresh(row)
        return row


def mark(engine, approval_id: int, state: str, note: str) -> SeatApproval:
    with Session(engine) as s:
        row = s.get(SeatApproval, approval_id)
        assert row is not None
        row.state, row.note = state, note[:200]
        s.add(row)
        s.commit()
        s.refresh(row)
        return row


async def publish(request: Request, row: SeatApproval) -> None:
    # not awaited: the decision is stored; the consoles' refresh must not fail it (a Redis bus
    # away keeps the event and sends it when back)
    request.app.state.bus.publish_nowait(ApprovalChanged(
        at=datetime.now(UTC).timestamp(), approval_id=row.id or 0, seat=row.seat, kind=row.kind,
        reason=row.reason, state=row.state, requested_by=row.requested_by, decided_by=row.decided_by,
        note=row.note))


# ---------------------------------------------------------------------------------------- routes

router = APIRouter(prefix="/api/approvals", tags=["审批"], dependencies=[NO_NUL])
Centre = Annotated[Principal, Depends(require_roles(Role.OPERATOR, Role.LEAD))]
Leads = Annotated[Principal, Depends(require_roles(Role.LEAD))]


class ApprovalRequest(BaseModel):
    kind: Literal["signout", "busy"]
    seat: str = Field(min_length=1, max_length=16)
    reason: str = Field("", max_length=64)


class Decision(BaseModel):
    note: str = Field("", max_length=200)


def _own_seat(request: Request, who: Principal, seat: str) -> None:
    if who.role is Role.OPERATOR and request.app.state.seat_of(who.username) != seat:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "只能为自己签入的坐席申请审批")
    if who.role is not Role.OPERATOR and not _in_centre(request, who)(seat):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "该坐席不属于您所在的中心")


def _in_centre(request: Request, who: Principal) -> Callable[[str], bool]:
    """Whether a seat serves one of ``who``'s centre's queues now (hotline/centres.py)."""
    mine, where = scope(request.app, who), seat_queues(request.app)
    return lambda seat: mine.everything or mine.has_seat_queues(where(seat))


@router.post("", status_code=201)
async def create(body: ApprovalRequest, who: Centre, request: Request) -> dict:
    _own_seat(request, who, body.seat)
    row = await run_in_threadpool(request_approval, request.app.state.engine, body.kind, body.seat, body.reason,
                                  "", who.username)
    await publish(request, row)
    return row.as_dict()


@router.get("")
async def index(who: Centre, request: Request, state: Literal["pending", "approved", "refused", "failed"] | None = None,
                limit: Limit = 100) -> list[dict]:
    seat = None
    if who.role is Role.OPERATOR:  # an operator sees their own seat's requests only
        seat = request.app.state.seat_of(who.username) or "-"
    rows = await run_in_threadpool(list_approvals, request.app.state.engine, state, seat, max(1, min(limit, 500)))
    if who.role is Role.OPERATOR:
        return rows
    mine = _in_centre(request, who)
    return [r for r in rows if mine(str(r["seat"]))]


@router.post("/{approval_id}/{verdict}")
async def verdict(approval_id: DbId, verdict: Literal["approve", "refuse"], body: Decision, who: Leads,
                  request: Request) -> dict:
    engine = request.app.state.engine
    try:
        row = await run_in_threadpool(decide, engine, approval_id, "approved" if verdict == "approve" else "refused",
                                      who.username, body.note, _in_centre(request, who))
    except LookupError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except ValueError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    if row.state == "approved":
        row = await _carry_out(request, row, who.username)
    await publish(request, row)
    return row.as_dict()


async def _carry_out(request: Request, row: SeatApproval, lead: str) -> SeatApproval:
    """Approved: do the action now, under the lead's name (the rule lets it through)."""
    cti = request.app.state.cti
    try:
        if cti is None:
            raise RuntimeError("实时话务服务未运行")
        if row.kind == "busy":
            await cti.actions.busy(row.seat, row.reason or "其他", approved_by=lead)
        else:
            await cti.actions.sign_out(row.seat, approved_by=lead)
    except Exception as exc:  # the decision stands; the operator is told it could not be done
        return await run_in_threadpool(mark, request.app.state.engine, row.id, "failed", f"已批准，但执行失败：{exc}")
    return row
