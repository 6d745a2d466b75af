"""The centre's ticket desk (工单中心) and callback work (回访): the two pages and the reads behind them.

``/tickets`` lists and opens tickets for operators, leads and QA (read-only for QA, apart from
督办); ``/callbacks`` is the operators' 回访 worklist. Departments have their own portal and get 403
here. Workflow steps are not re-served: the pages post them to the ticket store's own routes
(``/api/tickets/{id}/{action}``), which check the workflow; this module serves what those routes
do not: the desk's filters and views, one ticket's whole file at once, the confidential-read log
(leads), the supervision list and the callback worklist. Every store call runs in the thread pool.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from agent_ui.desk.query import BadFilter, DeskParams, DeskQuery, desk_query
from agent_ui.pages import templates
from hotline.calls import SURVEY_LABELS
from hotline.identity import Principal, Role, require_roles
from hotline.params import NO_NUL, DbId, parse_id, query_params
from notify.log import NotificationLog
from ticketing.models import STATUS_LABELS, Category
from ticketing.schemas import Forbidden, InvalidInput, NotFound, Page
from ticketing.steps import SUPERVISE_AUTO
from ticketing.store import Store
from ticketing.workflow import TABLE, TransitionError

router = APIRouter(tags=["工单中心"], dependencies=[NO_NUL])

DeskUsers = Annotated[Principal, Depends(require_roles(Role.OPERATOR, Role.LEAD, Role.QA))]
CallbackUsers = Annotated[Principal, Depends(require_roles(Role.OPERATOR, Role.LEAD))]  # 回访 is the centre's
Leads = Annotated[Principal, Depends(require_roles(Role.LEAD))]

T = TypeVar("T")
# history lines that are not workflow steps
EVENT_LABELS = {"create": "受理", "update": "修改受理内容", "repeat": "重复反映", "link": "关联",
                "survey": "满意度评价", "attach": "上传附件"}
REFUSALS: tuple[tuple[type[Exception], int], ...] = (
    (BadFilter, status.HTTP_422_UNPROCESSABLE_CONTENT), (InvalidInput, status.HTTP_422_UNPROCESSABLE_CONTENT),
    (NotFound, status.HTTP_404_NOT_FOUND), (Forbidden, status.HTTP_403_FORBIDDEN),
    (TransitionError, status.HTTP_409_CONFLICT),
)


def _store(request: Request) -> Store:
    return request.app.state.store


@contextmanager
def _refused() -> Iterator[None]:
    """The store's refusals as HTTP answers with their Chinese message."""
    try:
        yield
    except tuple(kind for kind, _ in REFUSALS) as exc:
        code = next(c for kind, c in REFUSALS if isinstance(exc, kind))
        raise HTTPException(code, str(exc) or "请求无法完成") from None


async def _off_loop(fn: Callable[..., T], *args: Any) -> T:
    with _refused():
        return await run_in_threadpool(fn, *args)


def _ticket_id(raw: str) -> int:
    found = parse_id(raw)
    if found is None:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "工单编号应为正整数")
    return found


def _page(request: Request, name: str, who: Principal, **ctx: Any) -> HTMLResponse:
    return templates.TemplateResponse(request, f"desk/{name}.html", {
        "user": who, "settings": request.app.state.settings, "role": who.role.value, **ctx})


# ------------------------------------------------------------------------------------- pages


@router.get("/tickets", response_class=HTMLResponse, include_in_schema=False)
async def desk_page(request: Request, who: DeskUsers) -> HTMLResponse:
    return _page(request, "tickets", who, statuses=list(STATUS_LABELS.items()),
                 categories=[c.value for c in Category], exports=who.role in (Role.LEAD, Role.QA, Role.ADMIN))


@router.get("/callbacks", response_class=HTMLResponse, include_in_schema=False)
async def callbacks_page(request: Request, who: CallbackUsers) -> HTMLResponse:
    return _page(request, "callbacks", who)


# ------------------------------------------------------------------------------------- tickets


@router.get("/api/desk/tickets", summary="工单中心：按筛选条件与视图查询工单", openapi_extra=query_params(DeskParams))
async def desk_tickets(request: Request, who: DeskUsers) -> dict[str, Any]:
    """Filters: ``status`` (repeat or comma-separated), ``colour`` (green/yellow/red/none),
    ``department_id``, ``category``, ``date_from``/``date_to`` (2026-11-22, the centre's days),
    ``number`` (a 14-digit ticket number, else the caller's number), ``q`` (full text); views:
    ``view`` = all · mine (我的工单) · overdue (今日超期) · callback (待回访); ``page``, ``per_page``."""
    statuses = [s for v in request.query_params.getlist("status") for s in v.split(",") if s]
    with _refused():
        dq = desk_query(request.query_params, statuses, who)
    page = await _off_loop(_search, _store(request), dq, who)
    return {"items": [t.model_dump(mode="json") for t in page.items], "total": page.total,
            "total_capped": page.total_capped, "page": dq.page, "per_page": dq.per_page, "query": dq.store}


def _search(store: Store, dq: DeskQuery, who: Principal) -> Page:
    query = dq.page_query() | ({"operator": dq.mine} if dq.mine else {})
    return store.tickets.search(query, who)


@router.get("/api/desk/tickets/{ticket_id}", summary="工单中心：一件工单的全部内容（流转、督办、通话）")
async def desk_ticket(ticket_id: str, request: Request, who: DeskUsers) -> dict[str, Any]:
    return await _off_loop(_file_of, _store(request), _ticket_id(ticket_id), who)


def _file_of(store: Store, ticket_id: int, who: Principal) -> dict[str, Any]:
    ticket = store.tickets.get(ticket_id, who)
    history = store.tickets.history(ticket_id, who)
    notes = store.tickets.supervisions(ticket_id, who)
    actions = [{"action": a, "label": TABLE[a].label} for a in ticket.allowed_actions]
    if who.role in (Role.OPERATOR, Role.LEAD, Role.ADMIN) and ticket.status != "draft":
        actions.append({"action": "link", "label": "关联"})  # not a step: any report of the same matter
    return {
        "ticket": ticket.model_dump(mode="json"),
        "history": [{
            "at": e.at.isoformat(), "actor": e.actor, "actor_role": e.actor_role, "action": e.action,
            "label": TABLE[e.action].label if e.action in TABLE else EVENT_LABELS.get(e.action, e.action),
            "from": STATUS_LABELS.get(e.from_status, e.from_status), "to": STATUS_LABELS.get(e.to_status, e.to_status),
            "note": e.note,
        } for e in history],
        "supervisions": [{
            "id": n.id, "reason": SUPERVISE_AUTO.get(n.reason, "督办"), "note": n.note, "by": n.by,
            "opened_at": n.opened_at.isoformat(), "answer": n.answer, "answered_by": n.answered_by,
            "answered_at": n.answered_at.isoformat() if n.answered_at else None,
        } for n in notes],
        "calls": store.calls.for_ticket(ticket_id),
        "actions": actions,
    }


@router.get("/api/desk/tickets/{ticket_id}/reads", summary="保密工单的查阅记录（值班长）")
async def confidential_reads(ticket_id: str, request: Request, who: Leads) -> list[dict[str, Any]]:
    return await _off_loop(_store(request).tickets.confidential_reads, _ticket_id(ticket_id), who)


@router.get("/api/desk/supervisions", summary="督办列表：督办意见、承办单位与答复")
async def supervisions(request: Request, _who: DeskUsers, open_only: bool = True,
                       department_id: DbId | None = None) -> list[dict[str, Any]]:
    """Each note with who was told of it, how and when (the notification log)."""
    return await _off_loop(_supervisions, _store(request), open_only, department_id)


def _supervisions(store: Store, open_only: bool, department_id: int | None) -> list[dict[str, Any]]:
    rows = store.worklists.supervisions(open_only, department_id)
    told = NotificationLog(store.engine).for_supervisions([r["id"] for r in rows])
    return [r | {"notified": told.get(r["id"], [])} for r in rows]


@router.get("/api/desk/counts", summary="工单中心各视图的件数")
async def counts(request: Request, who: DeskUsers) -> dict[str, Any]:
    return await _off_loop(_counts, _store(request), who)


def _counts(store: Store, who: Principal) -> dict[str, Any]:
    def total(**q: Any) -> int | str:
        page = store.tickets.count(q, who)
        return f"{page.total}+" if page.total_capped else page.total

    return {"overdue": total(deadline_state="red"), "callback": total(status=["replied"]),
            "supervised": len({s["ticket_id"] for s in store.worklists.supervisions(True)})}


# ------------------------------------------------------------------------------------- 回访


@router.get("/api/desk/callbacks", summary="回访工作单：已答复待回访的工单（答复后3个工作日内）")
async def callbacks_due(request: Request, _who: CallbackUsers) -> list[dict[str, Any]]:
    rows = await _off_loop(_store(request).worklists.callbacks_due)
    for r in rows:  # the citizen's own verdict on the call that produced the ticket (IVR survey)
        r["ivr_survey_label"] = SURVEY_LABELS.get(r["ivr_survey"] or 0, "")
    return rows
