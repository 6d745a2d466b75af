"""REST route of notify/ (``router``): a ticket's notifications, for the ticket's page.

``GET /api/notifications?ticket_id=N`` → ``{"ticket_id": N, "items": [...]}``, newest first.
The centre (operators, leads, QA, admins) sees all of them; a department only for a ticket it
handles (404 otherwise, as the ticket store answers) and only those sent to it.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool

from hotline.identity import Principal, Role, require_roles
from hotline.params import NO_NUL, parse_id
from notify.log import NotificationLog
from ticketing.schemas import NotFound
from ticketing.store import Store

router = APIRouter(prefix="/api", tags=["notifications"], dependencies=[NO_NUL])

Readers = Annotated[Principal, Depends(require_roles(Role.OPERATOR, Role.LEAD, Role.QA, Role.DEPARTMENT))]


@router.get("/notifications")
async def ticket_notifications(request: Request, principal: Readers, ticket_id: str = "") -> dict[str, Any]:
    tid = parse_id(ticket_id)
    if tid is None:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "请提供工单编号 ticket_id（正整数）")
    store: Store = request.app.state.store
    department = principal.department_id if principal.role is Role.DEPARTMENT else None
    if principal.role is Role.DEPARTMENT and department is None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "账号未关联承办单位")

    def read() -> list[dict[str, Any]]:
        store.tickets.check_visible(tid, principal)  # a department: only tickets it handles
        return NotificationLog(store.engine).for_ticket(tid, department)

    try:
        items = await run_in_threadpool(read)
    except NotFound:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "工单不存在或无权查看") from None
    return {"ticket_id": tid, "items": items}
