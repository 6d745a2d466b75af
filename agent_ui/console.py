"""The seat operator's console (话务员工作台): the ``/console`` page and the seat API behind it.

Every call-control route goes through ``services.cti.actions`` (the only AMI sender) and acts on
the seat the operator is signed in to — never on a seat named by the browser, except at sign-in.
A sign-out or 示忙 refused by the shift rules becomes an approval request (agent_ui.approvals):
the answer is ``409`` with ``{"detail", "approval"}`` and the lead's decision arrives over the
websocket.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, Field

from agent_ui import approvals
from agent_ui.live import ServicesDep, running_cti
from agent_ui.pages import templates
from agent_ui.services import Services
from cti.actions import ActionFailed, NotOnCall, RuleViolation
from hotline.identity import Principal, Role, require_roles

router = APIRouter(tags=["话务员工作台"])

Operators = Annotated[Principal, Depends(require_roles(Role.OPERATOR))]
BUSY_REASONS = ("就餐", "培训", "工单填写", "短暂离开", "班组会议")
NUMBER = re.compile(r"^\+?\d{3,20}$")


def _my_seat(svc: Services, who: Principal) -> str:
    seat = svc.seat_of(who.username)
    if not seat:
        raise HTTPException(status.HTTP_409_CONFLICT, "尚未签入坐席 — 请选择坐席并签入")
    return seat


def _rule_zh(reason: str) -> str:
    """cti.rules says 'last 30 min of shift 08:00-16:00'; the operator reads Chinese."""
    m = re.match(r"(first|last) (\d+) min of shift (\S+)", reason)
    if not m:
        return reason
    edge = "开始后" if m.group(1) == "first" else "结束前"
    return f"班次 {m.group(3)} {edge} {m.group(2)} 分钟内"


async def _act(coro) -> dict[str, Any]:
    try:
        result = await coro
    except NotOnCall:
        raise HTTPException(status.HTTP_409_CONFLICT, "当前没有通话，无法执行此操作") from None
    except ActionFailed as exc:
        raise HTTPException(status.HTTP_502_BAD_GATEWAY,
                            f"交换机拒绝了操作（{exc}），请稍后重试；仍不行请联系班长") from None
    return {"ok": True, "action": result.action, "detail": result.detail}


# ------------------------------------------------------------------------------------- page


@router.get("/console", response_class=HTMLResponse, include_in_schema=False)
async def console_page(request: Request, who: Operators, svc: ServicesDep) -> HTMLResponse:
    settings = request.app.state.settings
    return templates.TemplateResponse(request, "console/console.html", {
        "user": who, "settings": settings, "seats": settings.seats, "busy_reasons": BUSY_REASONS,
        "job_number": who.job_number or "", "seat": svc.seat_of(who.username) or "",
    })


# ------------------------------------------------------------------------------------- seat


class SignIn(BaseModel):
    seat: str = Field(min_length=1, max_length=16)


class Busy(BaseModel):
    reason: str = Field(min_length=1, max_length=64)


class Transfer(BaseModel):
    target: str = Field(min_length=1, max_length=32)  # "expert" (专业席) or a department line/number


class Conference(BaseModel):
    number: str = Field(min_length=1, max_length=32)  # the department's line (directory sip_line)


class Callback(BaseModel):
    number: str = Field(min_length=3, max_length=32)
    call_id: str = Field("", max_length=64)


@router.get("/api/seat")
async def my_seat(who: Operators, svc: ServicesDep, request: Request) -> dict[str, Any]:
    """The operator's seat (or none), the seats free to sign in to, and their pending approvals."""
    cti = running_cti(svc)
    views = cti.seats()
    taken = {v["seat"] for v in views if v.get("state") != "signed_out" and v.get("operator")}
    mine = next((v for v in views if v.get("operator") == who.username and v.get("state") != "signed_out"), None)
    free = [s for s in request.app.state.settings.seats if s not in taken]
    pending = []
    if mine:
        pending = await run_in_threadpool(approvals.list_approvals, request.app.state.engine, "pending",
                                          mine["seat"], 10)
    return {"seat": mine, "free_seats": free, "job_number": who.job_number, "busy_reasons": list(BUSY_REASONS),
            "approvals": pending}


@router.post("/api/seat/signin")
async def sign_in(body: SignIn, who: Operators, svc: ServicesDep, request: Request) -> dict[str, Any]:
    cti = running_cti(svc)
    if body.seat not in request.app.state.settings.seats:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"没有坐席 {body.seat}，请从列表中选择")
    current = svc.seat_of(who.username)
    if current and current != body.seat:
        raise HTTPException(status.HTTP_409_CONFLICT, f"您已签入坐席 {current}，请先签出")
    holder = svc.operator_at(body.seat)
    if holder and holder != who.username and any(
            v["seat"] == body.seat and v.get("state") != "signed_out" for v in cti.seats()):
        raise HTTPException(status.HTTP_409_CONFLICT, f"坐席 {body.seat} 已由 {holder} 签入，请选择其他坐席")
    return await _act(cti.actions.sign_in(body.seat, operator=who.username))


async def _restricted(request: Request, who: Principal, kind: str, seat: str, reason: str, coro) -> dict[str, Any]:
    """Run a rule-checked action; a refusal becomes an approval request (409 with the request)."""
    try:
        return await _act(coro)
    except RuleViolation as exc:
        rule = _rule_zh(exc.decision.reason)
        row = await run_in_threadpool(approvals.request_approval, request.app.state.engine, kind, seat, reason,
                                      rule, who.username)
        await approvals.publish(request, row)
        label = approvals.KIND_LABELS[kind]
        return JSONResponse({"detail": f"{rule}{label}需班长批准，已向班长发出申请，请等待", "approval": row.as_dict()},
                            status_code=status.HTTP_409_CONFLICT)  # type: ignore[return-value]


@router.post("/api/seat/signout")
async def sign_out(who: Operators, svc: ServicesDep, request: Request) -> dict[str, Any]:
    cti, seat = running_cti(svc), _my_seat(svc, who)
    return await _restricted(request, who, "signout", seat, "", cti.actions.sign_out(seat))


@router.post("/api/seat/busy")
async def busy(body: Busy, who: Operators, svc: ServicesDep, request: Request) -> dict[str, Any]:
    cti, seat = running_cti(svc), _my_seat(svc, who)
    return await _restricted(request, who, "busy", seat, body.reason, cti.actions.busy(seat, body.reason))


@router.post("/api/seat/ready")
async def ready(who: Operators, svc: ServicesDep) -> dict[str, Any]:
    cti, seat = running_cti(svc), _my_seat(svc, who)
    return await _act(cti.actions.ready(seat))


@router.post("/api/seat/wrapup/done")
async def wrapup_done(who: Operators, svc: ServicesDep) -> dict[str, Any]:
    """话后处理 finished early: ready again (ends the countdown and unpauses)."""
    cti, seat = running_cti(svc), _my_seat(svc, who)
    return await _act(cti.actions.ready(seat))


@router.post("/api/seat/transfer")
async def transfer(body: Transfer, who: Operators, svc: ServicesDep) -> dict[str, Any]:
    cti, seat = running_cti(svc), _my_seat(svc, who)
    if body.target == "expert":
        return await _act(cti.actions.transfer_to_specialist(seat))
    if not NUMBER.match(body.target):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "转接目标应为“expert”或部门号码")
    return await _act(cti.actions.transfer_to_department(seat, body.target))


@router.post("/api/seat/conference")
async def conference(body: Conference, who: Operators, svc: ServicesDep) -> dict[str, Any]:
    cti, seat = running_cti(svc), _my_seat(svc, who)
    if not NUMBER.match(body.number):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "三方通话的部门号码格式不正确")
    return await _act(cti.actions.conference(seat, body.number))


@router.post("/api/seat/hangup")
async def hangup(who: Operators, svc: ServicesDep) -> dict[str, Any]:
    cti, seat = running_cti(svc), _my_seat(svc, who)
    return await _act(cti.actions.hangup_seat_call(seat))


@router.post("/api/seat/callback")
async def callback(body: Callback, who: Operators, svc: ServicesDep) -> dict[str, Any]:
    cti, seat = running_cti(svc), _my_seat(svc, who)
    if not NUMBER.match(body.number):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "回拨号码格式不正确")
    return await _act(cti.actions.originate_callback(seat, body.number, call_id=body.call_id))


# ------------------------------------------------------------------------------------- ticket helpers


class Draft(BaseModel):
    caller_number: str = Field("", max_length=32)
    title: str = Field("", max_length=200)
    category: str = Field("", max_length=16)
    district: str = Field("", max_length=64)
    matter_place: str = Field("", max_length=200)
    matter_course: str = Field("", max_length=4000)
    matter_demand: str = Field("", max_length=4000)


@router.post("/api/console/duplicates")
async def duplicates(body: Draft, _who: Operators, request: Request) -> list[dict[str, Any]]:
    """Earlier reports of the matter being typed (the store's own rule, on an unsaved ticket)."""
    return await run_in_threadpool(_propose, request.app.state.tickets, body)


def _propose(svc: Any, body: Draft) -> list[dict[str, Any]]:
    from sqlmodel import Session

    from ticketing.callers import normalize_number
    from ticketing.models import Ticket

    now = svc.clock()
    draft = Ticket(caller_number=normalize_number(body.caller_number, svc.area_code) if body.caller_number else "",
                   title=body.title or "-", category=body.category or "咨询", district=body.district,
                   matter_place=body.matter_place, matter_course=body.matter_course,
                   matter_demand=body.matter_demand, created_at=now, updated_at=now)
    with Session(svc.engine) as s:
        # ticketing has no "propose for an unsaved ticket" entry yet: its private rule is reused as is
        found = svc._propose(s, draft, now)
    return [{"id": p.id, "number": p.number, "score": p.score, "reasons": list(p.reasons)} for p in found]


@router.get("/api/console/suggest")
async def suggest(_who: Operators, request: Request, text: str = "") -> list[dict[str, Any]]:
    """承办单位 suggested from the matter's words against each department's duties."""
    if len(text) > 4000:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "内容过长")
    return await run_in_threadpool(_suggest, request.app.state.tickets, text)


def _suggest(svc: Any, text: str) -> list[dict[str, Any]]:
    from ticketing.duplicates import tokens

    words = {w for w in tokens(text) if len(w) >= 2}
    if not words:
        return []
    scored = []
    for d in svc.departments():
        duties = f"{d.name} {d.duties}"
        hits = [w for w in words if w in duties]
        if hits:
            scored.append((len(hits), d, hits))
    scored.sort(key=lambda x: (-x[0], x[1].id))
    return [{"id": d.id, "name": d.name, "sip_line": d.sip_line, "hits": hits[:5]} for _, d, hits in scored[:3]]


class Link(BaseModel):
    call_id: str = Field(min_length=1, max_length=64)
    ticket_id: int = Field(ge=1)


@router.post("/api/console/link")
async def link(body: Link, who: Operators, svc: ServicesDep) -> dict[str, Any]:
    """Tie the ticket to the call it came from (the call log row; made now if the call is still on)."""
    try:
        await run_in_threadpool(svc.calls.link_ticket, body.call_id, body.ticket_id)
    except LookupError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    return {"ok": True, "linked_at": datetime.now(UTC).isoformat()}
