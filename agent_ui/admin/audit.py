"""审计日志: the security audit trail (sign-ins, account changes, revocations, credential
rotations) for admins, filterable and exportable (CSV/XLSX).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from accounts.audit import ACTIONS
from agent_ui.pages import templates
from hotline.identity import Principal, Role, require_roles
from hotline.params import day_bounds
from hotline.sheets import MEDIA, attachment_headers, local_time, table_bytes

router = APIRouter(tags=["审计日志"])
Admins = Annotated[Principal, Depends(require_roles(Role.ADMIN))]
Name = Annotated[str, Query(max_length=64)]
EXPORT_MAX = 50000


@router.get("/admin/audit", response_class=HTMLResponse)
async def audit_page(request: Request, principal: Admins) -> HTMLResponse:
    return templates.TemplateResponse(request, "admin/audit.html", {
        "user": principal, "settings": request.app.state.settings, "active": "audit", "actions": ACTIONS})


@router.get("/api/admin/audit")
async def audit_events(request: Request, _principal: Admins, actor: Name = "", target: Name = "",
                       action: Annotated[str, Query(max_length=32)] = "", date_from: date | None = None,
                       date_to: date | None = None, limit: Annotated[int, Query(ge=1, le=500)] = 100,
                       offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0) -> dict[str, Any]:
    since, until = day_bounds(date_from, date_to)
    total, items = await run_in_threadpool(request.app.state.accounts.audit.list, actor=actor, target=target,
                                           action=action, since=since, until=until, limit=limit, offset=offset)
    return {"total": total, "items": items}


@router.get("/api/admin/audit/export")
async def audit_export(request: Request, _principal: Admins, fmt: Literal["csv", "xlsx"] = "xlsx",
                       actor: Name = "", target: Name = "", action: Annotated[str, Query(max_length=32)] = "",
                       date_from: date | None = None, date_to: date | None = None) -> Response:
    since, until = day_bounds(date_from, date_to)
    _total, items = await run_in_threadpool(request.app.state.accounts.audit.list, actor=actor, target=target,
                                            action=action, since=since, until=until, limit=EXPORT_MAX)
    rows = [[local_time(str(e["at"])), e["actor"], e["action_label"], e["target"], e["detail"], e["client"]]
            for e in items]
    header = ["时间", "操作人", "操作", "对象", "详情", "来源地址"]
    body = await run_in_threadpool(table_bytes, fmt, "审计日志", header, rows)
    return Response(body, media_type=MEDIA[fmt], headers=attachment_headers(f"审计日志-{date.today()}.{fmt}"))
