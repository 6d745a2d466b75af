"""Live state and the call log over REST (DESIGN.md §3): queues, seats, calls, the callback list.

The websocket pushes changes; these answer a page that (re)loads its whole picture.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from agent_ui.centre import scope, seat_queues
from cti.service import Live
from hotline.identity import Principal, Role, require_roles
from hotline.params import NO_NUL, Limit, Offset
from recordings import catalog
from ticketing.calls import CallLog

router = APIRouter(prefix="/api", dependencies=[NO_NUL])

Centre = Annotated[Principal, Depends(require_roles(Role.OPERATOR, Role.LEAD))]
Leads = Annotated[Principal, Depends(require_roles(Role.LEAD))]
CallReaders = Annotated[Principal, Depends(require_roles(Role.OPERATOR, Role.LEAD, Role.QA))]


async def running_cti(request: Request) -> Live:
    """The CTI bridge, or a 503 that says what to do when this node does not run it."""
    cti = request.app.state.cti
    if cti is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "实时话务服务未运行，请联系管理员检查 CTI 配置")
    return cti


async def call_log(request: Request) -> CallLog:
    return request.app.state.store.calls


CtiDep = Annotated[Live, Depends(running_cti)]
CallLogDep = Annotated[CallLog, Depends(call_log)]


def _when(raw: str | None, name: str) -> datetime | None:
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            f"{name} 时间格式应为 2026-11-22T08:00:00+08:00") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@router.get("/queues")
async def queues(request: Request, who: Centre, cti: CtiDep) -> list[dict]:
    mine = scope(request.app, who)
    return [q for q in cti.queues() if mine.has_queue(q["queue"])]


@router.get("/seats")
async def seats(request: Request, who: Centre, cti: CtiDep) -> list[dict]:
    views = cti.seats()
    if who.role is Role.OPERATOR:  # an operator sees their own seat, not the whole wall
        return [v for v in views if v.get("operator") == who.username]
    mine = scope(request.app, who)
    return [v for v in views if mine.has_seat(v)]


@router.get("/calls/live")
async def live_calls(request: Request, who: Leads, cti: CtiDep) -> list[dict]:
    mine, where = scope(request.app, who), seat_queues(request.app)
    return [c for c in cti.calls() if mine.has_call(c, where)]


@router.get("/calls")
async def calls(request: Request, who: CallReaders, log: CallLogDep, since: str | None = None, until: str | None = None,
                number: Annotated[str, Query(max_length=32)] = "", queue: Annotated[str, Query(max_length=64)] = "",
                limit: Limit = 200, offset: Offset = 0) -> list[dict]:
    rows = await run_in_threadpool(log.list, _when(since, "since"), _when(until, "until"), number, queue,
                                   limit, offset)
    if who.role is Role.OPERATOR:
        rows = [r for r in rows if r["operator"] == who.username]
    mine, where = scope(request.app, who), seat_queues(request.app)
    return [r for r in rows if mine.has_call(r, where)]


@router.get("/callbacks")
async def callbacks(request: Request, who: Centre, log: CallLogDep, include_done: bool = False,
                    days: Annotated[int, Query(ge=1, le=90)] = 7) -> list[dict]:
    mine, where = scope(request.app, who), seat_queues(request.app)
    rows = [r for r in await run_in_threadpool(log.callbacks, include_done, days) if mine.has_call(r, where)]
    # a voice message (留言) is a recording in the catalog: the page links to its replay
    messages = [str(r["recording_id"]) for r in rows if r["message"]]
    ids = await run_in_threadpool(catalog.ids_of, request.app.state.engine, messages)
    for r in rows:
        r["message_recording"] = ids.get(str(r["recording_id"])) if r["message"] else None
    return rows


class CallbackDone(BaseModel):
    note: str = Field("", max_length=200)


@router.post("/callbacks/{uniqueid}/done")
async def callback_done(uniqueid: str, body: CallbackDone, who: Centre, log: CallLogDep, request: Request) -> dict:
    if len(uniqueid) > 64:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "通话编号过长")
    call = await run_in_threadpool(log.get, uniqueid)
    if call is not None and not scope(request.app, who).has_call(
            {"queue": call.queue, "seat": call.seat}, seat_queues(request.app)):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "通话记录不存在")  # another centre's: as unknown as a wrong id
    try:
        return await run_in_threadpool(log.mark_called_back, uniqueid, who.username, body.note)
    except LookupError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
