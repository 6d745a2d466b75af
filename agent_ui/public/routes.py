"""What citizens use without an account (公众服务): the status page (``/status``: the ticket number
and the query code given at intake; the state, the department's reply, a rating) and the web form
(``/report``) whose submissions wait in the operators' queue (agent_ui.intake).

No session, no cookie read: these routes never ask who is signing in, so the CSRF middleware's
cookie logic has nothing here to defend (a staff browser that carries its cookie along still sends
our header from the page's script, which sends no credentials at all). Answers about a ticket are
``no-store``. A wrong code and an unknown number get the very same answer (status, body,
headers), and every try is rate-limited per client and per ticket number
(:mod:`agent_ui.public.limiter`).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.responses import HTMLResponse, JSONResponse

from agent_ui.intake.common import call, check_submission, publish, read_json, receipt, submission_schema
from agent_ui.pages import templates
from agent_ui.public.limiter import PublicLimits, SlidingWindow, wait_words
from hotline.params import NO_NUL, is_digits, json_body
from ticketing.intake import RESPOND_WITHIN
from ticketing.public import RATINGS, PublicStatus

router = APIRouter(tags=["公众服务"], dependencies=[NO_NUL])

NOT_FOUND = "没有查到该工单，请核对工单编号和查询码"
NO_STORE = {"Cache-Control": "no-store"}
WEB_FIELDS = frozenset({"name", "contact", "place", "text", "confidential"})
# the bodies of the status query and the rating, for the OpenAPI description (read raw, refused in Chinese)
TICKET_KEYS = {"number": {"type": "string", "pattern": "^[0-9 ]{6,40}$", "description": "工单编号（6 至 20 位数字）"},
               "code": {"type": "string", "pattern": "^[0-9 ]{4,32}$", "description": "查询码"}}
STATUS_BODY = {"type": "object", "properties": TICKET_KEYS, "required": ["number", "code"]}
RATE_BODY = {"type": "object", "properties": TICKET_KEYS | {"rating": {"type": "string", "enum": list(RATINGS)}},
             "required": ["number", "code", "rating"]}


def limits(request: Request) -> PublicLimits:
    state = request.app.state
    found = getattr(state, "public_limits", None)
    if found is None:
        found = state.public_limits = PublicLimits.default()
    return found


def _client(request: Request) -> str:
    return request.client.host if request.client else "-"


def _limited(window: SlidingWindow, key: str, what: str) -> None:
    wait = window.hit(key)
    if wait:
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, f"{what}过于频繁，请 {wait_words(wait)}后再试",
                            headers={"Retry-After": str(wait), **NO_STORE})


def _answer(found: PublicStatus | None) -> JSONResponse:
    """The ticket as the citizen may see it, or the one "not found" every miss gets."""
    if found is None:
        return JSONResponse({"detail": NOT_FOUND}, status_code=status.HTTP_404_NOT_FOUND, headers=NO_STORE)
    return JSONResponse(jsonable_encoder(asdict(found)), headers=NO_STORE)


def _ticket_keys(data: dict[str, Any]) -> tuple[str, str]:
    """The number and the code as typed (spaces tolerated), or a 422 about their form alone."""
    number, code = (str(data.get(k) or "").replace(" ", "") for k in ("number", "code"))
    problems = []
    if not (is_digits(number) and 6 <= len(number) <= 20):
        problems.append("请输入工单编号（6 至 20 位数字）")
    if not (is_digits(code) and 4 <= len(code) <= 16):
        problems.append("请输入查询码（受理时告知您的数字）")
    if problems:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "；".join(problems), headers=NO_STORE)
    return number, code


async def _checked(request: Request) -> tuple[dict[str, Any], str, str]:
    """Counted per client before anything is read, then per ticket number once it is one."""
    limit = limits(request)
    _limited(limit.per_client, _client(request), "查询")
    data = read_json(await request.body())
    number, code = _ticket_keys(data)
    _limited(limit.per_number, number, "查询")
    return data, number, code


# ------------------------------------------------------------------------------------- pages

@router.get("/status", response_class=HTMLResponse, include_in_schema=False)
async def status_page(request: Request) -> HTMLResponse:
    return templates.TemplateResponse(request, "public/status.html", {
        "user": None, "settings": request.app.state.settings, "ratings": RATINGS}, headers=NO_STORE)


@router.get("/report", response_class=HTMLResponse, include_in_schema=False)
async def report_page(request: Request) -> HTMLResponse:
    return templates.TemplateResponse(request, "public/report.html", {
        "user": None, "settings": request.app.state.settings,
        "minutes": int(RESPOND_WITHIN.total_seconds() // 60)}, headers=NO_STORE)


# ------------------------------------------------------------------------------------- API

@router.post("/api/public/status", summary="公众查询：工单编号 + 查询码 → 办理状态与答复",
             openapi_extra=json_body(STATUS_BODY))
async def public_status(request: Request) -> JSONResponse:
    _data, number, code = await _checked(request)
    return _answer(await call(request.app.state.store.public.status, number, code))


@router.post("/api/public/rate", summary="公众评价：满意 / 基本满意 / 不满意（答复后）",
             openapi_extra=json_body(RATE_BODY))
async def public_rate(request: Request) -> JSONResponse:
    data, number, code = await _checked(request)
    rating = data.get("rating")
    if rating not in RATINGS:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "请选择评价：" + "、".join(RATINGS),
                            headers=NO_STORE)
    return _answer(await call(request.app.state.store.public.rate, number, code, rating))


@router.post("/api/public/submissions", status_code=201, summary="网上反映：提交后等待话务员受理（3 分钟内响应）",
             openapi_extra=json_body(submission_schema(WEB_FIELDS)))
async def public_submit(request: Request) -> JSONResponse:
    _limited(limits(request).submissions, _client(request), "提交")
    body = check_submission(read_json(await request.body()), allowed=WEB_FIELDS)
    made = await call(request.app.state.store.intake.submit, "web", body)
    await publish(request, made.id, made.channel, made.status)
    minutes = int(RESPOND_WITHIN.total_seconds() // 60)
    return JSONResponse(receipt(made) | {
        "message": f"已收到您的反映（编号 {made.id}），工作人员将在 {minutes} 分钟内处理。受理后会通过您留下的联系方式"
                   "告知工单编号和查询码，凭此可在“工单查询”页查看办理进度。"}, status_code=201, headers=NO_STORE)
