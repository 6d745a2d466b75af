"""Live state and the call log over REST (DESIGN.md §3): queues, seats, calls, the callback list.

The websocket pushes changes; these answer a page that (re)loads its whole picture.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from agent_ui.services import Services
from hotline.identity import Principal, Role, require_roles
from recordings import catalog

router = APIRouter(prefix="/api")

Centre = Annotated[Principal, Depends(require_roles(Role.OPERATOR, Role.LEAD))]
Leads = Annotated[Principal, Depends(require_roles(Role.LEAD))]
CallReaders = Annotated[Principal, Depends(require_roles(Role.OPERATOR, Role.LEAD, Role.QA))]


def services(request: Request) -> Services:
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(services)]


def running_cti(svc: Services):
    """The CTI bridge, or a 503 that says what to do when this node does not run it."""
    if svc.cti is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "实时话务服务未运行，请联系管理员检查 CTI 配置")
    return svc.cti


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
async def queues(_who: Centre, svc: ServicesDep) -> list[dict]:
    return running_cti(svc).queues()


@router.get("/seats")
async def seats(who: Centre, svc: ServicesDep) -> list[dict]:
    views = running_cti(svc).seats()
    if who.role is Role.OPERATOR:  # an operator sees their own seat, not the whole wall
        return [v for v in views if v.get("operator") == who.username]
    return views


@router.get("/calls/live")
async def live_calls(_who: Leads, svc: ServicesDep) -> list[dict]:
    return running_cti(svc).calls()


@router.get("/calls")
async def calls(who: CallReaders, svc: ServicesDep, since: str | None = None, until: str | None = None,
                number: Annotated[str, Query(max_length=32)] = "", queue: Annotated[str, Query(max_length=64)] = "",
                limit: Annotated[int, Query(ge=1, le=1000)] = 200,
                offset: Annotated[int, Query(ge=0)] = 0) -> list[dict]:
    rows = await run_in_threadpool(svc.calls.list, _when(since, "since"), _when(until, "until"), number, queue,
                                   limit, offset)
    if who.role is Role.OPERATOR:
        rows = [r for r in rows if r["operator"] == who.username]
    return rows


@router.get("/callbacks")
async def callbacks(_who: Centre, svc: ServicesDep, include_done: bool = False,
                    days: Annotated[int, Query(ge=1, le=90)] = 7) -> list[dict]:
    rows = await run_in_threadpool(svc.calls.callbacks, include_done, days)
    # a voice message (留言) is a recording in the catalog: the page links to its replay
    ids = await run_in_threadpool(catalog.ids_of, svc.engine, [str(r["recording_id"]) for r in rows if r["message"]])
    for r in rows:
        r["message_recording"] = ids.get(str(r["recording_id"])) if r["message"] else None
    return rows


class CallbackDone(BaseModel):
    note: str = Field("", max_length=200)


@router.post("/callbacks/{uniqueid}/done")
async def callback_done(uniqueid: str, body: CallbackDone, who: Centre, svc: ServicesDep) -> dict:
    if len(uniqueid) > 64:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "通话编号过长")
    try:
        return await run_in_threadpool(svc.calls.mark_called_back, uniqueid, who.username, body.note)
    except LookupError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
