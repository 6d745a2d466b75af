"""The QA pages (质检回放): the list of recordings and one recording's replay. Both are shells the
page scripts fill from recordings/'s API; the replay page refuses a recording the user may not see."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from agent_ui.pages import templates
from hotline.identity import Principal, Role, require_roles
from hotline.params import NO_NUL, DbId
from recordings.service import centre_filter, find_visible

router = APIRouter(include_in_schema=False, dependencies=[NO_NUL])
Viewer = Annotated[Principal, Depends(require_roles(Role.QA, Role.LEAD, Role.OPERATOR))]


@router.get("/qa", response_class=HTMLResponse)
async def qa_list(request: Request, principal: Viewer) -> HTMLResponse:
    return templates.TemplateResponse(request, "qa/list.html", {"user": principal,
                                                                "settings": request.app.state.settings})


@router.get("/qa/{recording_id}", response_class=HTMLResponse)
async def qa_replay(recording_id: DbId, request: Request, principal: Viewer) -> HTMLResponse:
    centre = centre_filter(request.app.state.settings, request.app.state.cti, principal)
    rec = await run_in_threadpool(find_visible, request.app.state.engine, principal, recording_id, centre)
    if rec is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "录音不存在或无权查看")
    return templates.TemplateResponse(request, "qa/replay.html", {"user": principal,
                                                                  "settings": request.app.state.settings, "rec": rec})
