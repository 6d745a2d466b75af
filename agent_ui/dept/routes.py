"""The department portal (承办单位工作台): the ``/dept`` page and the ``/api/dept/*`` reads behind it.

Only department users with a department come in; every read is the store's, with their own
principal (so it is scoped to the tickets their department handles and masks confidential
reporters). The workflow steps, attachments and their live notices are the ticket store's own
routes (``/api/tickets/{id}/{action}``, ``/api/tickets/{id}/attachments``): the portal posts there.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from agent_ui.dept import worklist
from agent_ui.dept.assessment import own_assessment
from agent_ui.pages import templates
from hotline.identity import Principal, Role, require_roles
from hotline.params import NO_NUL, whole_number
from ticketing.routes import StoreDep, call_store, path_id

router = APIRouter(tags=["承办单位工作台"], dependencies=[NO_NUL])
Departments = Annotated[Principal, Depends(require_roles(Role.DEPARTMENT))]


async def my_department(who: Departments) -> Principal:
    """A department user of a department (an admin has none: the portal is a department's desk)."""
    if who.role is not Role.DEPARTMENT or who.department_id is None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "承办单位工作台仅供承办单位用户使用")
    return who


Mine = Annotated[Principal, Depends(my_department)]


def _staff(request: Request, who: Principal) -> list[dict[str, str]]:
    """Whom the department's lead may choose as a ticket's handler (分派); nobody else chooses."""
    if not who.dept_lead:
        return []
    staff = request.app.state.accounts.department_staff(who.department_id)
    return [{"username": a.username, "display_name": a.display_name or a.username} for a in staff]


@router.get("/dept", response_class=HTMLResponse, include_in_schema=False)
async def portal_page(request: Request, who: Mine, store: StoreDep) -> HTMLResponse:
    try:
        department = await call_store(store.directory.get, who.department_id)
    except HTTPException as exc:  # the account names a department the directory does not hold
        if exc.status_code != status.HTTP_404_NOT_FOUND:
            raise
        return templates.TemplateResponse(request, "dept/missing.html", {
            "user": who, "settings": request.app.state.settings, "department_id": who.department_id})
    return templates.TemplateResponse(request, "dept/portal.html", {
        "user": who, "settings": request.app.state.settings, "department": department})


@router.get("/api/dept/summary", summary="本单位概况：计数（新派单·即将超期·已超期·被退回·督办中）与可分派的承办人")
async def summary(request: Request, who: Mine, store: StoreDep) -> dict[str, Any]:
    department = await call_store(store.directory.get, who.department_id)
    counters = await call_store(store.worklists.department_counters, who)
    staff = await run_in_threadpool(_staff, request, who)
    return {"department": {"id": department.id, "name": department.name}, "counters": counters,
            "dept_lead": who.dept_lead, "staff": staff, "user": who.username}


@router.get("/api/dept/tickets", summary="本单位工单（按视图、时限颜色、全文检索）")
async def tickets(who: Mine, store: StoreDep, view: str = "todo", deadline_state: str = "", q: str = "",
                  sort: str = "current_due", page: str = "1", per_page: str = "50") -> dict[str, Any]:
    if view not in worklist.VIEWS:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "视图取值无效，可选：" + "、".join(worklist.VIEWS))
    if deadline_state not in ("", "green", "yellow", "red"):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "时限颜色取值无效，可选：green、yellow、red")
    if sort not in worklist.SORTS:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "排序取值无效，可选：" + "、".join(worklist.SORTS))
    return await call_store(worklist.tickets, store, who, view, deadline_state, q, sort,
                            _whole(page, "页码", 100_000), _whole(per_page, "每页条数", 100))


def _whole(raw: str, label: str, most: int) -> int:
    found = whole_number(raw, 1, most)  # ASCII digits: "²".isdigit() is true, and int("²") raises
    if found is None:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"{label}应为1到{most}之间的整数")
    return found


@router.get("/api/dept/tickets/{ticket_id}", summary="工单详情：诉求、流转记录、督办、附件")
async def ticket(ticket_id: str, who: Mine, store: StoreDep) -> dict[str, Any]:
    return await call_store(worklist.detail, store, who, path_id(ticket_id))


@router.get("/api/dept/assessment", summary="本单位本月考核得分与扣分明细")
async def assessment(request: Request, who: Mine, store: StoreDep, month: str = "") -> dict[str, Any]:
    tz = ZoneInfo(request.app.state.settings.cti_timezone)
    try:
        first = date.fromisoformat(f"{month}-01") if month else datetime.now(tz).date().replace(day=1)
    except ValueError:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "月份格式应为 2026-11") from None
    return await call_store(own_assessment, store, request.app.state.engine, who.department_id, first, tz)
