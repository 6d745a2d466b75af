"""The seat operator's console (话务员工作台): the ``/console`` page and the seat API behind it.

Every call-control route goes through the bridge's ``actions`` (the only AMI sender) and acts on
the seat the operator is signed in to (the :data:`MySeat` dependency) — never on a seat named by
the browser, except at sign-in.
A sign-out or 示忙 refused by the shift rules becomes an approval request (agent_ui.approvals):
the answer is ``409`` with ``{"detail", "approval"}`` and the lead's decision arrives over the
websocket.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, Field

from agent_ui import approvals, dialing
from agent_ui.centre import scope, seat_queues
from agent_ui.live import CallLogDep, CtiDep
from agent_ui.pages import templates
from cti.actions import ActionFailed, NotOnCall, RuleViolation
from cti.link import AmiError, AmiNotSent
from cti.service import Live
from hotline.identity import Principal, Role, require_roles
from hotline.params import NO_NUL, DbId

router = APIRouter(tags=["话务员工作台"], dependencies=[NO_NUL])

Operators = Annotated[Principal, Depends(require_roles(Role.OPERATOR))]
BUSY_REASONS = ("就餐", "培训", "工单填写", "短暂离开", "班组会议")
NUMBER = re.compile(r"^\+?[0-9]{3,20}$")  # ASCII: "\d" takes "١٢٣" too, which is no number to dial
CALL_ID = re.compile(r"^[A-Za-z0-9_.-]*$")  # it rides in a channel-variable list: no "," or "="


@dataclass(frozen=True, slots=True)
class Seat:
    """The seat the operator is signed in to, and the bridge that controls it."""

    cti: Live
    seat: str


async def my_seat(request: Request, who: Operators, cti: CtiDep) -> Seat:
    seat = request.app.state.seat_of(who.username)
    if not seat:
        raise HTTPException(status.HTTP_409_CONFLICT, "尚未签入坐席 — 请选择坐席并签入")
    return Seat(cti, seat)


MySeat = Annotated[Seat, Depends(my_seat)]


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
    except AmiNotSent as exc:  # never left: nothing was done
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE,
                            f"交换机暂未连接，操作没有执行（{exc}），请稍后重试") from None
    except AmiError as exc:  # sent, no answer: it may have been done
        raise HTTPException(status.HTTP_504_GATEWAY_TIMEOUT,
                            f"交换机未应答，操作结果未知（{exc}），请查看坐席状态后再操作") from None
    out = {"ok": True, "action": result.action, "detail": result.detail}
    return out | {"call_id": result.call_id} if result.call_id else out


# ------------------------------------------------------------------------------------- page


@router.get("/console", response_class=HTMLResponse, include_in_schema=False)
async def console_page(request: Request, who: Operators) -> HTMLResponse:
    settings = request.app.state.settings
    return templates.TemplateResponse(request, "console/console.html", {
        "user": who, "settings": settings, "seats": settings.seats, "busy_reasons": BUSY_REASONS,
        "job_number": who.job_number or "", "seat": request.app.state.seat_of(who.username) or "",
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
    call_id: str = Field("", max_length=64)  # the call-log entry it belongs to: the missed call it answers
    ticket_id: DbId | None = None  # else the ticket it is about (回访, a callback from the caller's history)
    after: int = Field(0, ge=0, le=1000)  # 再拨一次: the attempt already seen (0: the first dial)


@router.get("/api/seat")
async def seat_status(who: Operators, cti: CtiDep, request: Request) -> dict[str, Any]:
    """The operator's seat (or none), the seats free to sign in to, and their pending approvals."""
    views = cti.seats()
    taken = {v["seat"] for v in views if v.get("state") != "signed_out" and v.get("operator")}
    mine = next((v for v in views if v.get("operator") == who.username and v.get("state") != "signed_out"), None)
    free = [s for s in request.app.state.settings.seats if s not in taken]
    pending = []
    if mine:
        pending = await run_in_threadpool(approvals.list_approvals, request.app.state.engine, "pending",
                                          mine["seat"], 10)
    return {"seat": mine, "free_seats": free, "job_number": who.job_number, "busy_reasons": list(BUSY_REASONS),
            "approvals": pending, "browser_seats": request.app.state.settings.browser_phone_seats}


@router.get("/api/seat/phone")
async def seat_phone(mine: MySeat, request: Request) -> JSONResponse:
    """The browser phone of the seat the operator is signed in to: where Asterisk's SIP-over-WebSocket
    listens and the seat's own SIP credentials. Only for a browser seat, only to its operator, never
    cached; a seat with a desk phone has none (404)."""
    settings = request.app.state.settings
    if mine.seat not in settings.browser_phone_seats:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"坐席 {mine.seat} 使用桌面话机，不是浏览器话机")
    password = await run_in_threadpool(settings.seat_password, mine.seat)
    if not password:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "坐席的 SIP 密码尚未生成：请先安装并启动交换机")
    return JSONResponse({
        "seat": mine.seat, "ws_url": settings.browser_phone_url, "uri": f"sip:{mine.seat}@{settings.sip_host_in_uri}",
        "username": mine.seat, "password": password, "auto_answer": settings.browser_auto_answer,
    }, headers={"Cache-Control": "no-store"})


@router.post("/api/seat/signin")
async def sign_in(body: SignIn, who: Operators, cti: CtiDep, request: Request) -> dict[str, Any]:
    if body.seat not in request.app.state.settings.seats:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"没有坐席 {body.seat}，请从列表中选择")
    current = request.app.state.seat_of(who.username)
    if current and current != body.seat:
        raise HTTPException(status.HTTP_409_CONFLICT, f"您已签入坐席 {current}，请先签出")
    view = next((v for v in cti.seats() if v["seat"] == body.seat), {})
    holder = view.get("operator")
    if holder and holder != who.username and view.get("state") != "signed_out":
        raise HTTPException(status.HTTP_409_CONFLICT, f"坐席 {body.seat} 已由 {holder} 签入，请选择其他坐席")
    return await _act(cti.actions.sign_in(body.seat, operator=who.username, job_number=who.job_number))


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
async def sign_out(who: Operators, mine: MySeat, request: Request) -> dict[str, Any]:
    return await _restricted(request, who, "signout", mine.seat, "", mine.cti.actions.sign_out(mine.seat))


@router.post("/api/seat/busy")
async def busy(body: Busy, who: Operators, mine: MySeat, request: Request) -> dict[str, Any]:
    action = mine.cti.actions.busy(mine.seat, body.reason)
    return await _restricted(request, who, "busy", mine.seat, body.reason, action)


@router.post("/api/seat/ready")
async def ready(mine: MySeat) -> dict[str, Any]:
    return await _act(mine.cti.actions.ready(mine.seat))


@router.post("/api/seat/wrapup/done")
async def wrapup_done(mine: MySeat) -> dict[str, Any]:
    """话后处理 finished early: ready again (ends the countdown and unpauses)."""
    return await _act(mine.cti.actions.ready(mine.seat))


@router.post("/api/seat/transfer")
async def transfer(body: Transfer, mine: MySeat, request: Request) -> dict[str, Any]:
    if body.target == "expert":
        return await _act(mine.cti.actions.transfer_to_specialist(mine.seat))
    if not NUMBER.match(body.target):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "转接目标应为“expert”或部门号码")
    await _department_only(request, body.target, "转接")  # a transfer must not carry the citizen anywhere
    return await _act(mine.cti.actions.transfer_to_department(mine.seat, body.target))


@router.post("/api/seat/conference")
async def conference(body: Conference, mine: MySeat, request: Request) -> dict[str, Any]:
    if not NUMBER.match(body.number):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "三方通话的部门号码格式不正确")
    await _department_only(request, body.number, "邀请三方通话")  # nor bring just anyone into the call
    return await _act(mine.cti.actions.conference(mine.seat, body.number))


async def _department_only(request: Request, number: str, what: str) -> None:
    """A department's SIP line or a phone in the department directory, else 403."""
    if number not in request.app.state.settings.department_lines and not await run_in_threadpool(
            request.app.state.store.outside.department_number, number):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"{number} 不是部门号码：只能{what}部门线路或部门名录中的电话")


@router.post("/api/seat/hangup")
async def hangup(mine: MySeat) -> dict[str, Any]:
    return await _act(mine.cti.actions.hangup_seat_call(mine.seat))


@router.post("/api/seat/callback")
async def callback(body: Callback, who: Operators, mine: MySeat, log: CallLogDep, request: Request) -> Any:
    """Ring the seat, then the citizen, about a missed call (``call_id``) or a ticket (``ticket_id``).
    The answer's ``call_id`` is the new call's own id (its recording's too), to link to a ticket.
    Only a number of a ticket or of a logged call (ticketing/dialable.py): no toll fraud.

    Each dial is claimed before the switch rings anyone (agent_ui.dialing): a second click,
    another operator or web process, a restart gets ``409 {"detail", "dial"}`` with the dial that
    stands; ``after`` (the attempt seen) dials again on purpose. A missed call dialled back is
    marked called back here, not by a second request the browser might never send."""
    if not NUMBER.match(body.number):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "回拨号码格式不正确")
    if not CALL_ID.match(body.call_id):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "通话编号格式不正确")
    if not await run_in_threadpool(request.app.state.store.outside.may_call_back, body.number):
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            f"{body.number} 不属于任何工单或来电记录：只能回拨工单或来电中的号码")
    wanted = dialing.request_of(body.call_id, body.ticket_id)
    if not wanted:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            "请说明回拨的是哪一通来电（call_id）或哪张工单（ticket_id）")
    call = await run_in_threadpool(log.get, body.call_id) if body.call_id else None
    if call is not None and not scope(request.app, who).has_call(
            {"queue": call.queue, "seat": call.seat}, seat_queues(request.app)):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "通话记录不存在")  # another centre's: as unknown
    try:
        dial, result = await dialing.dial(request.app.state.engine, mine.cti.actions, wanted, body.after,
                                          seat=mine.seat, number=body.number, by=who.username, call_id=body.call_id)
    except dialing.AlreadyDialled as exc:
        stood = exc.latest
        if call is not None and stood and stood["state"] == "dialled":
            # dialled (the process may have stopped before the list heard of it): the list says so, as it was
            await run_in_threadpool(log.mark_called_back, body.call_id, stood["by"], "话务员回拨",
                                    datetime.fromisoformat(stood["at"]))
        return JSONResponse({"detail": str(exc), "dial": stood}, status_code=status.HTTP_409_CONFLICT)
    except dialing.Refused as exc:
        raise HTTPException(status.HTTP_502_BAD_GATEWAY,
                            f"交换机拒绝了回拨（{exc}），没有拨出，请稍后重试；仍不行请联系班长") from None
    except dialing.Unanswered:
        raise HTTPException(status.HTTP_504_GATEWAY_TIMEOUT,
                            "交换机没有应答，回拨是否拨出未知：请留意话机是否振铃；未振铃可再点“回拨”重拨") from None
    if body.call_id:
        with contextlib.suppress(LookupError):  # not stored yet: the dial stands, the list shows it until then
            await run_in_threadpool(log.mark_called_back, body.call_id, who.username, "话务员回拨")
    return {"ok": True, "action": result.action, "detail": result.detail, "call_id": result.call_id,
            "attempt": dial.attempt}


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
    found = await run_in_threadpool(request.app.state.store.tickets.propose, body.model_dump())
    return [{"id": p.id, "number": p.number, "score": p.score, "reasons": list(p.reasons)} for p in found]


@router.get("/api/console/suggest")
async def suggest(_who: Operators, request: Request, text: str = "") -> list[dict[str, Any]]:
    """承办单位 suggested from the matter's words against each department's duties."""
    if len(text) > 4000:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "内容过长")
    found = await run_in_threadpool(request.app.state.store.directory.suggest, text)
    return [{"id": d.id, "name": d.name, "sip_line": d.sip_line, "hits": list(d.hits)} for d in found]


class Link(BaseModel):
    call_id: str = Field(min_length=1, max_length=64)
    ticket_id: DbId


@router.post("/api/console/link")
async def link(body: Link, _who: Operators, log: CallLogDep) -> dict[str, Any]:
    """Tie the ticket to the call it came from (the call log row; made now if the call is still on)."""
    try:
        await run_in_threadpool(log.link_ticket, body.call_id, body.ticket_id)
    except LookupError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    return {"ok": True, "linked_at": datetime.now(UTC).isoformat()}
