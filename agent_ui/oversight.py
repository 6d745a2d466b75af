"""访问记录: who heard which recording and who read which confidential reporter, for leads and
admins, filterable and exportable — the registers 001 asks a centre to keep (查询或提取…做好登记).

The recording-access log is served by recordings/routes.py (``/api/recordings/access-log``);
this module adds the confidential-read log over all tickets and the page that shows both.
Exports are themselves audited (an export of who read a confidential reporter is a read of that
register).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from agent_ui.auth import client_of
from agent_ui.pages import templates
from hotline.identity import Principal, Role, require_roles
from hotline.params import DB_INT_MAX, day_bounds
from hotline.sheets import MEDIA, attachment_headers, local_time, table_bytes
from recordings.access import ACTION_LABELS

router = APIRouter(tags=["访问记录"])
Overseers = Annotated[Principal, Depends(require_roles(Role.LEAD))]  # and admins
Name = Annotated[str, Query(max_length=64)]
EXPORT_MAX = 50_000
# how the reporter was read (ticketing's ``purpose`` of a ConfidentialRead)
PURPOSES = {"create": "受理", "list": "列表", "detail": "查看详情", "export": "导出",
            "caller_lookup": "来电弹屏（IVR 查询）"}
HEADER = ["时间", "工单编号", "查阅人", "角色", "方式", "号码已遮蔽"]


@router.get("/audit", response_class=HTMLResponse)
async def audit_page(request: Request, principal: Overseers) -> HTMLResponse:
    return templates.TemplateResponse(request, "audit.html", {
        "user": principal, "settings": request.app.state.settings, "actions": ACTION_LABELS,
        "nav": "admin/nav.html" if principal.role is Role.ADMIN else "lead/nav.html"})


def _reads(request: Request, who: Principal, username: str, ticket_number: str, date_from: date | None,
           date_to: date | None, limit: int, offset: int = 0) -> tuple[int, list[dict[str, Any]]]:
    since, until = day_bounds(date_from, date_to)
    return request.app.state.store.tickets.confidential_read_log(
        who, username=username, ticket_number=ticket_number, since=since, until=until, limit=limit, offset=offset)


@router.get("/api/audit/confidential-reads")
async def confidential_reads(request: Request, who: Overseers, username: Name = "", ticket_number: Name = "",
                             date_from: date | None = None, date_to: date | None = None,
                             limit: Annotated[int, Query(ge=1, le=500)] = 100,
                             offset: Annotated[int, Query(ge=0, le=DB_INT_MAX)] = 0) -> dict[str, Any]:
    """Every read of a confidential ticket's reporter (who, when, how, masked or not)."""
    total, items = await run_in_threadpool(_reads, request, who, username, ticket_number, date_from, date_to,
                                           limit, offset)
    return {"total": total, "items": [i | {"purpose_label": PURPOSES.get(i["purpose"], i["purpose"])}
                                      for i in items]}


@router.get("/api/audit/confidential-reads/export")
async def confidential_reads_export(request: Request, who: Overseers, fmt: Literal["csv", "xlsx"] = "xlsx",
                                    username: Name = "", ticket_number: Name = "", date_from: date | None = None,
                                    date_to: date | None = None) -> Response:
    _total, items = await run_in_threadpool(_reads, request, who, username, ticket_number, date_from, date_to,
                                            EXPORT_MAX)
    rows = [[local_time(i["at"]), i["ticket_number"], i["username"], i["role"],
             PURPOSES.get(i["purpose"], i["purpose"]), "是" if i["masked"] else "否"] for i in items]
    body = await run_in_threadpool(table_bytes, fmt, "保密工单查阅记录", HEADER, rows)
    await run_in_threadpool(request.app.state.accounts.audit.record, who.username, "log_export",
                            "confidential_read", f"导出保密工单查阅记录 {len(rows)} 行（{fmt}）", client_of(request))
    return Response(body, media_type=MEDIA[fmt], headers=attachment_headers(f"保密工单查阅记录-{date.today()}.{fmt}"))
