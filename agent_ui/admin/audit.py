"""审计日志: the security audit trail (sign-ins, account changes, revocations, credential
rotations) for admins, filterable and exportable (CSV/XLSX).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from accounts.audit import ACTIONS
from agent_ui.pages import templates
from hotline.identity import Principal, Role, require_roles
from hotline.sheets import MEDIA, table_bytes
from ticketing.calendar import TZ

router = APIRouter(tags=["审计日志"])
Admins = Annotated[Principal, Depends(require_roles(Role.ADMIN))]
Name = Annotated[str, Query(max_length=64)]
EXPORT_MAX = 50000


def _bounds(date_from: date | None, date_to: date | None) -> tuple[datetime | None, datetime | None]:
    """Calendar days in the centre's time zone, ``date_to`` included."""
    since = datetime.combine(date_from, time(), TZ) if date_from else None
    until = datetime.combine(date_to + timedelta(days=1), time(), TZ) if date_to else None
    if since and until and since >= until:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "结束日期不能早于开始日期")
    return since, until


@router.get("/admin/audit", response_class=HTMLResponse)
async def audit_page(request: Request, principal: Admins) -> HTMLResponse:
    return templates.TemplateResponse(request, "admin/audit.html", {
        "user": principal, "settings": request.app.state.settings, "active": "audit", "actions": ACTIONS})


@router.get("/api/admin/audit")
async def audit_events(request: Request, _principal: Admins, actor: Name = "", target: Name = "",
                       action: Annotated[str, Query(max_length=32)] = "", date_from: date | None = None,
                       date_to: date | None = None, limit: Annotated[int, Query(ge=1, le=500)] = 100,
                       offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0) -> dict[str, Any]:
    since, until = _bounds(date_from, date_to)
    total, items = await run_in_threadpool(request.app.state.accounts.audit.list, actor=actor, target=target,
                                           action=action, since=since, until=until, limit=limit, offset=offset)
    return {"total": total, "items": items}


@router.get("/api/admin/audit/export")
async def audit_export(request: Request, _principal: Admins, fmt: Literal["csv", "xlsx"] = "xlsx",
                       actor: Name = "", target: Name = "", action: Annotated[str, Query(max_length=32)] = "",
                       date_from: date | None = None, date_to: date | None = None) -> Response:
    since, until = _bounds(date_from, date_to)
    _total, items = await run_in_threadpool(request.app.state.accounts.audit.list, actor=actor, target=target,
                                            action=action, since=since, until=until, limit=EXPORT_MAX)
    rows = [[datetime.fromisoformat(str(e["at"])).astimezone(TZ).strftime("%Y-%m-%d %H:%M:%S"), e["actor"],
             e["action_label"], e["target"], e["detail"], e["client"]] for e in items]
    header = ["时间", "操作人", "操作", "对象", "详情", "来源地址"]
    body = await run_in_threadpool(table_bytes, fmt, "审计日志", header, rows)
    return Response(body, media_type=MEDIA[fmt], headers={
        "Content-Disposition": f"attachment; filename*=UTF-8''audit-{date.today().isoformat()}.{fmt}",
        "Cache-Control": "no-store"})
