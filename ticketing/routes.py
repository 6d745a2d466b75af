"""REST routes of the ticket store: ``/api/tickets``, ``/api/kb``, ``/api/departments``, ``/api/callers``.

The app includes ``router`` and holds the store it serves as ``app.state.store`` (the composition
root puts it there); every route depends on the identity of the ground floor
(``hotline.identity``). Bodies are read as raw JSON
and validated by ``ticketing.schemas`` so that every refusal carries a Chinese message (FastAPI's
own validation would answer in English). The store is synchronous: calls go to the threadpool.
Every successful write to a ticket is published as :class:`~ticketing.schemas.TicketChanged` on
``app.state.bus`` (when the app has one), so the pages that show the ticket refresh it live.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from fastapi.concurrency import run_in_threadpool

from hotline.identity import CurrentPrincipal, Principal, Role, require_roles
from hotline.params import NO_NUL, inline_defs, json_body, parse_id, query_params
from ticketing.schemas import (
    ActionParams,
    ArticleCreate,
    CalendarDayIn,
    CallerFlagsIn,
    DepartmentCreate,
    Forbidden,
    InvalidInput,
    MissingCreate,
    NotFound,
    TicketCreate,
    TicketQuery,
    TicketUpdate,
    parse,
)
from ticketing.store import Store
from ticketing.workflow import TransitionError

T = TypeVar("T")

async def get_store(request: Request) -> Store:
    """The store this app serves."""
    store = getattr(request.app.state, "store", None)
    if store is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "工单库未启动")
    return store


StoreDep = Annotated[Store, Depends(get_store)]
Centre = Annotated[Principal, Depends(require_roles(Role.OPERATOR, Role.LEAD))]
Editors = Annotated[Principal, Depends(require_roles(Role.LEAD))]
Admin = Annotated[Principal, Depends(require_roles())]
Exporters = Annotated[Principal, Depends(require_roles(Role.LEAD, Role.QA))]
CentreReaders = Annotated[Principal, Depends(require_roles(Role.OPERATOR, Role.LEAD, Role.QA))]

router = APIRouter(dependencies=[NO_NUL])
log = logging.getLogger("ticketing.routes")


@contextmanager
def _errors() -> Iterator[None]:
    try:
        yield
    except InvalidInput as e:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "；".join(e.messages)) from None
    except TransitionError as e:
        raise HTTPException(status.HTTP_409_CONFLICT, e.reason) from None
    except NotFound as e:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(e) or "不存在") from None
    except Forbidden as e:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(e) or "无权操作") from None


async def _call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    with _errors():
        return await run_in_threadpool(fn, *args, **kwargs)


def _id(raw: str, what: str = "工单") -> int:
    found = parse_id(raw)  # ASCII digits, within what the database holds
    if found is None:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"{what}编号应为正整数")
    return found


# the same two, for the routes of other rooms that serve this store (the department portal): their
# refusals read exactly like these
call_store = _call
path_id = _id


def _query(request: Request, *, multi: tuple[str, ...] = ("status",)) -> dict[str, Any]:
    """Query parameters as a dict; ``status`` may repeat or be comma-separated."""
    out: dict[str, Any] = {}
    for key in request.query_params:
        if key in multi:
            values = request.query_params.getlist(key)
            out[key] = [v for value in values for v in value.split(",") if v]
        elif key != "format":
            out[key] = request.query_params[key]
    return out


async def publish_change(request: Request, ticket_id: int, action: str, by: str) -> None:
    """Tell the pages that show the ticket (the centre's, and the departments handling it now) that
    it changed. No reporter data goes out: the pages read the ticket again themselves."""
    bus = getattr(request.app.state, "bus", None)
    if bus is not None:
        # stored already: the consoles' refresh never fails the request (a Redis bus away sends it when back)
        bus.publish_nowait(await run_in_threadpool(request.app.state.store.tickets.changed, ticket_id, action, by))


_body_doc = json_body  # the body's schema whole: its enums in place, no "#/$defs/…" the document lacks


# --- tickets ------------------------------------------------------------------------------------


@router.get("/api/tickets", tags=["工单"], summary="查询工单（分页、排序、全文检索）",
            openapi_extra=query_params(TicketQuery))
async def list_tickets(request: Request, principal: CurrentPrincipal, store: StoreDep):
    return await _call(store.tickets.search, _query(request), principal)


@router.get("/api/tickets/export", tags=["工单"], summary="导出工单（CSV 或 XLSX，保密信息脱敏）",
            openapi_extra=query_params(TicketQuery))
async def export_tickets(request: Request, principal: Exporters, store: StoreDep, format: str = "csv"):
    data = await _call(store.export.export, _query(request), principal, format)
    media = (
        "text/csv; charset=utf-8"
        if format == "csv"
        else ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    )
    return Response(data, media_type=media, headers={"Content-Disposition": f'attachment; filename="tickets.{format}"'})


@router.post(
    "/api/tickets", tags=["工单"], status_code=201, summary="受理登记工单", openapi_extra=_body_doc(TicketCreate)
)
async def create_ticket(request: Request, principal: Centre, store: StoreDep):
    created = await _call(store.tickets.create, await request.body(), principal)
    await publish_change(request, created.id, "create", principal.username)
    return created


@router.get("/api/tickets/{ticket_id}", tags=["工单"], summary="工单详情")
async def get_ticket(ticket_id: str, principal: CurrentPrincipal, store: StoreDep):
    return await _call(store.tickets.get, _id(ticket_id), principal)


@router.patch(
    "/api/tickets/{ticket_id}", tags=["工单"], summary="修改受理内容（转办前）", openapi_extra=_body_doc(TicketUpdate)
)
async def update_ticket(ticket_id: str, request: Request, principal: Centre, store: StoreDep):
    updated = await _call(store.tickets.update, _id(ticket_id), await request.body(), principal)
    await publish_change(request, updated.id, "update", principal.username)
    return updated


@router.get("/api/tickets/{ticket_id}/history", tags=["工单"], summary="工单流转记录")
async def ticket_history(ticket_id: str, principal: CurrentPrincipal, store: StoreDep):
    return await _call(store.tickets.history, _id(ticket_id), principal)


@router.get("/api/tickets/{ticket_id}/duplicates", tags=["工单"], summary="疑似重复工单")
async def ticket_duplicates(ticket_id: str, principal: CentreReaders, store: StoreDep):
    return await _call(store.tickets.duplicates_for, _id(ticket_id), principal)


@router.post(
    "/api/tickets/{ticket_id}/{action}",
    tags=["工单"],
    summary="流转操作：register/transfer/accept/return/start/request_extension/approve_extension/"
    "refuse_extension/reply/callback/redo/close/archive/supervise/merge/close_directly/link",
    openapi_extra=_body_doc(ActionParams),
)
async def ticket_action(ticket_id: str, action: str, request: Request, principal: CurrentPrincipal, store: StoreDep):
    tid = _id(ticket_id)
    raw = await request.body()
    if action == "link":
        params = await _call(_parse_action, raw)
        if params.duplicate_of is None:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "关联需要填写：重复的原工单")
        linked = await _call(store.actions.link, tid, params.duplicate_of, principal)
        await publish_change(request, linked.id, "link", principal.username)
        await publish_change(request, params.duplicate_of, "link", principal.username)  # it counts a repeat
        return linked
    if action == "assign":
        await _check_assignee(request, principal, await _call(_parse_action, raw))
    moved = await _call(store.actions.act, tid, action, raw or b"{}", principal)
    await publish_change(request, moved.id, action, principal.username)
    return moved


def _parse_action(raw: bytes) -> ActionParams:
    return parse(ActionParams, raw or b"{}")


async def _check_assignee(request: Request, principal: Principal, params: ActionParams) -> None:
    """分派 names a user of the assigning department (the accounts store knows who works where;
    the ticket store only records the name)."""
    accounts = getattr(request.app.state, "accounts", None)
    if accounts is None or principal.department_id is None or not params.assignee:
        return  # the store refuses what is missing, and whoever is not a department
    staff = await run_in_threadpool(accounts.department_staff, principal.department_id)
    if params.assignee not in {a.username for a in staff}:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            f"承办人“{params.assignee}”不是本单位的用户，请从名单中选择")


@router.get("/api/callers", tags=["特殊号码"], summary="有标记的号码：骚扰、重点单位、老年人（值班长）")
async def callers_flagged(principal: Editors, store: StoreDep):
    return await _call(store.callers.flagged, principal)


@router.put(
    "/api/callers/{number}/flags",
    tags=["特殊号码"],
    summary="标记号码：骚扰号码听警示语，老年人与重点单位优先接入（值班长）",
    openapi_extra=_body_doc(CallerFlagsIn),
)
async def caller_flags_set(number: str, request: Request, principal: Editors, store: StoreDep):
    if len(number) > 32:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "号码过长")
    with _errors():
        flags = parse(CallerFlagsIn, await request.body()).model_dump(exclude_unset=True)
    saved = await _call(store.callers.set_flags, number, principal, **flags)
    log.info("caller flags number=%s by=%s %s", saved.number, principal.username, flags)
    return saved


@router.get("/api/callers/{number}", tags=["工单"], summary="来电号码的历史工单与标记（弹屏、AGI）")
async def caller_summary(number: str, principal: CentreReaders, store: StoreDep):
    if len(number) > 32:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "号码过长")
    return await _call(store.callers.summary, number)


# --- knowledge base -------------------------------------------------------------------------


@router.get("/api/kb", tags=["知识库"], summary="检索知识库")
async def kb_search(principal: CurrentPrincipal, store: StoreDep, q: str = "", topic: str = "", limit: str = "20"):
    if len(q) > 100:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "关键词过长（最多100个字）")
    return await _call(store.kb.search, q, topic, _id(limit, "条数"))


@router.get("/api/kb/missing", tags=["知识库"], summary="查无信息记录（待补充）")
async def kb_missing(principal: CentreReaders, store: StoreDep, open_only: bool = True):
    return await _call(store.kb.missing, open_only)


@router.post(
    "/api/kb/missing", tags=["知识库"], status_code=201, summary="登记查无信息", openapi_extra=_body_doc(MissingCreate)
)
async def kb_report_missing(request: Request, principal: CentreReaders, store: StoreDep):
    return await _call(store.kb.report_missing, await request.body(), principal)


@router.get("/api/kb/{article_id}", tags=["知识库"], summary="知识条目")
async def kb_get(article_id: str, principal: CurrentPrincipal, store: StoreDep):
    return await _call(store.kb.get, _id(article_id, "知识条目"))


@router.post(
    "/api/kb", tags=["知识库"], status_code=201, summary="新增知识条目", openapi_extra=_body_doc(ArticleCreate)
)
async def kb_create(request: Request, principal: Editors, store: StoreDep):
    return await _call(store.kb.save, await request.body(), principal)


@router.put("/api/kb/{article_id}", tags=["知识库"], summary="修改知识条目", openapi_extra=_body_doc(ArticleCreate))
async def kb_update(article_id: str, request: Request, principal: Editors, store: StoreDep):
    return await _call(store.kb.save, await request.body(), principal, _id(article_id, "知识条目"))


# --- department directory ---------------------------------------------------------------------


@router.get("/api/departments", tags=["单位名录"], summary="承办单位名录")
async def departments(principal: CurrentPrincipal, store: StoreDep, q: str = ""):
    if len(q) > 100:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "关键词过长（最多100个字）")
    return await _call(store.directory.list, q)


@router.get("/api/departments/{department_id}", tags=["单位名录"], summary="承办单位详情")
async def department(department_id: str, principal: CurrentPrincipal, store: StoreDep):
    return await _call(store.directory.get, _id(department_id, "单位"))


@router.post(
    "/api/departments",
    tags=["单位名录"],
    status_code=201,
    summary="新增承办单位",
    openapi_extra=_body_doc(DepartmentCreate),
)
async def department_create(request: Request, principal: Admin, store: StoreDep):
    return await _call(store.directory.save, await request.body(), principal)


@router.put(
    "/api/departments/{department_id}",
    tags=["单位名录"],
    summary="修改承办单位",
    openapi_extra=_body_doc(DepartmentCreate),
)
async def department_update(department_id: str, request: Request, principal: Admin, store: StoreDep):
    return await _call(store.directory.save, await request.body(), principal, _id(department_id, "单位"))


# --- working-day calendar -------------------------------------------------------------------


@router.get("/api/calendar", tags=["节假日"], summary="各年份节假日数据来源与提示")
async def calendar_status(principal: CurrentPrincipal, store: StoreDep, years: str = "2026,2027"):
    try:
        ys = [int(y) for y in years.split(",") if y.strip()][:10]
    except ValueError:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "年份应为整数，用逗号分隔") from None
    return await _call(store.holidays.status, ys)


@router.put("/api/calendar", tags=["节假日"], summary="录入节假日与调休（管理员）", openapi_extra=json_body(
    {"type": "array", "maxItems": 400, "items": inline_defs(CalendarDayIn.model_json_schema())}, required=False))
async def calendar_set(request: Request, principal: Admin, store: StoreDep):
    import json

    try:
        days = json.loads(await request.body() or b"[]")
    except ValueError:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "请求体不是有效的 JSON") from None
    if not isinstance(days, list) or not all(isinstance(d, dict) for d in days) or len(days) > 400:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "请求体应为日期对象的列表（最多400条）")
    return {"saved": await _call(store.holidays.set_days, days, principal)}
