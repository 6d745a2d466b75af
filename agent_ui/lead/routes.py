"""The team lead's pages and their API (班长监控): wallboard, alerts, approvals, callbacks, handover,
roster, reports. The alert rules are agent_ui/alerts.py, the figures agent_ui/reports.py, the lead's
own tables :class:`LeadStore`; every store call runs in the thread pool, off the shared loop.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field

from accounts.store import Accounts
from agent_ui import reports
from agent_ui.centre import scope, seat_queues
from agent_ui.lead.runtime import LeadRuntime
from agent_ui.lead.store import Conflict, LeadStore
from agent_ui.pages import templates
from hotline.identity import Principal, Role, require_roles
from hotline.params import NO_NUL, DbId, Limit


async def _store(request: Request) -> LeadStore:
    return LeadStore(request.app.state.engine)


Leads = Annotated[Principal, Depends(require_roles(Role.LEAD))]
Store = Annotated[LeadStore, Depends(_store)]
router = APIRouter(dependencies=[NO_NUL])


# ------------------------------------------------------------------------------------ helpers

def _runtime(request: Request) -> LeadRuntime:
    runtime = getattr(request.app.state, "lead", None)
    if runtime is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "班长监控服务未启动")
    return runtime


def _tz(request: Request) -> ZoneInfo:
    return ZoneInfo(request.app.state.settings.cti_timezone)


def _page(request: Request, name: str, who: Principal, **ctx: Any) -> HTMLResponse:
    return templates.TemplateResponse(request, f"lead/{name}.html", {
        "user": who, "settings": request.app.state.settings, **ctx})


async def board(request: Request, who: Principal) -> dict[str, Any]:
    """Read on the event loop: the bridge's state is mutated there, so its views are taken there too;
    only the call-log read goes to a thread."""
    cti = request.app.state.cti
    runtime = _runtime(request)
    mine, where = scope(request.app, who), seat_queues(request.app)
    tz = _tz(request)
    now = runtime.clock()
    if cti is None:
        queues, seats, calls = [], [], []
    else:
        queues, seats, calls = cti.queues(), cti.seats(), cti.calls()
    queues = [q for q in queues if mine.has_queue(q["queue"])]
    seats = [s for s in seats if mine.has_seat(s)]
    calls = [c for c in calls if mine.has_call(c, where)]
    midnight = datetime.now(tz).replace(hour=0, minute=0, second=0, microsecond=0)
    totals = await run_in_threadpool(runtime.seat_totals, midnight)
    # copies: the views are the node's own, shared with every request and socket until the next picture
    seats = [{**s, "calls_today": int((t := totals.get(s["seat"], {})).get("calls", 0)),
              "talk_s_today": round(t.get("talk_s", 0.0), 1)} for s in seats]
    alerts = [a for a in runtime.engine.listing() if mine.has_alert(a, where)]
    intake = await run_in_threadpool(_intake_today, request.app.state.store, tz)
    return {"now": now, "queues": queues, "seats": seats, "calls": calls, "alerts": alerts, "intake": intake,
            "rule_s": request.app.state.settings.answer_rule_s,
            "targets": {"within_rule": reports.TARGET_WITHIN_RULE, "intake": reports.TARGET_INTAKE,
                        "completion": runtime.config.rules.completion_target},
            "limits": {"busy_s": runtime.config.rules.busy_limit_s, "ring_s": runtime.config.rules.ring_limit_s},
            "bus": {"epoch": request.app.state.bus.epoch, "last_seq": request.app.state.bus.last_seq}}


def _intake_today(store: Any, tz: ZoneInfo) -> dict[str, Any]:
    """The other channels' 3-minute response since local midnight, by the ticket store's clock (the
    one that stamps the submissions), and what waits now."""
    midnight = store.ctx.clock().astimezone(tz).replace(hour=0, minute=0, second=0, microsecond=0)
    return store.intake.figures(midnight, midnight + timedelta(days=1))  # all of today, this moment's too


# ------------------------------------------------------------------------------------ pages

@router.get("/lead", response_class=HTMLResponse, include_in_schema=False)
async def wallboard_page(request: Request, who: Leads, big: bool = False) -> HTMLResponse:
    return _page(request, "wallboard", who, big=big)


@router.get("/lead/callbacks", response_class=HTMLResponse, include_in_schema=False)
async def callbacks_page(request: Request, who: Leads) -> HTMLResponse:
    return _page(request, "callbacks", who)


@router.get("/lead/callers", response_class=HTMLResponse, include_in_schema=False)
async def callers_page(request: Request, who: Leads) -> HTMLResponse:
    return _page(request, "callers", who)


@router.get("/lead/handover", response_class=HTMLResponse, include_in_schema=False)
async def handover_page(request: Request, who: Leads) -> HTMLResponse:
    return _page(request, "handover", who)


@router.get("/lead/reports", response_class=HTMLResponse, include_in_schema=False)
async def reports_page(request: Request, who: Leads) -> HTMLResponse:
    return _page(request, "reports", who, today=datetime.now(_tz(request)).date().isoformat())


# ------------------------------------------------------------------------------------ API

@router.get("/api/lead/board")
async def board_api(request: Request, who: Leads) -> dict[str, Any]:
    return await board(request, who)


@router.get("/api/lead/alerts")
async def alerts_api(request: Request, who: Leads) -> list[dict[str, Any]]:
    mine, where = scope(request.app, who), seat_queues(request.app)
    return [a for a in _runtime(request).engine.listing() if mine.has_alert(a, where)]


@router.post("/api/lead/alerts/{alert_id}/ack")
async def ack_api(alert_id: DbId, request: Request, who: Leads) -> dict[str, Any]:
    runtime = _runtime(request)
    known = runtime.engine.alerts.get(alert_id)
    if known is not None and not scope(request.app, who).has_alert(known.view(), seat_queues(request.app)):
        known = None  # another centre's alert is as unknown here as a wrong id
    if known is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "告警不存在")
    try:
        return await runtime.ack(alert_id, who.username)
    except LookupError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None


@router.get("/api/lead/alerts/log")
async def ack_log_api(request: Request, who: Leads, store: Store, limit: Limit = 100) -> list[dict[str, Any]]:
    mine, where = scope(request.app, who), seat_queues(request.app)
    return [a for a in await run_in_threadpool(store.ack_log, limit) if mine.has_alert(a, where)]


@router.get("/api/lead/tickets")
async def ticket_queue_api(request: Request, _who: Leads) -> dict[str, list[dict[str, Any]]]:
    """What waits for the lead in the ticket store: extension requests, returned tickets, emergencies."""
    return await run_in_threadpool(request.app.state.store.digest.lead_queue)


class HandoverIn(BaseModel):
    shift: str = Field(min_length=1, max_length=32)
    notes: str = Field("", max_length=4000)
    tickets: list[DbId] = Field(default_factory=list, max_length=200)


@router.get("/api/lead/handovers")
async def handovers_api(_who: Leads, store: Store, limit: Limit = 20) -> list[dict[str, Any]]:
    return await run_in_threadpool(store.handovers, limit)


@router.post("/api/lead/handovers", status_code=201)
async def handover_create(body: HandoverIn, who: Leads, store: Store) -> dict[str, Any]:
    """The outgoing lead signs the handover (unfinished tickets, notes); the incoming one countersigns."""
    new_id = await run_in_threadpool(store.create_handover, shift=body.shift, from_lead=who.username,
                                     notes=body.notes, tickets=body.tickets)
    return {"id": new_id}


@router.post("/api/lead/handovers/{handover_id}/sign")
async def handover_sign(handover_id: DbId, who: Leads, store: Store) -> dict[str, Any]:
    try:
        await run_in_threadpool(store.sign_handover, handover_id, who.username)
    except LookupError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except Conflict as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    return {"id": handover_id, "to_lead": who.username}


class RosterIn(BaseModel):
    day: date
    shift: str = Field(min_length=1, max_length=32)
    username: str = Field(min_length=1, max_length=64)
    duty: str = Field("话务员", pattern="^(班长|话务员|专业席)$")
    seat: str = Field("", max_length=32)


@router.get("/api/lead/roster")
async def roster_api(request: Request, _who: Leads, store: Store, day: date | None = None) -> list[dict[str, Any]]:
    """排班 of one day (today by default), by shift."""
    return await run_in_threadpool(store.roster, day or datetime.now(_tz(request)).date())


@router.post("/api/lead/roster", status_code=201)
async def roster_add(body: RosterIn, who: Leads, store: Store) -> dict[str, Any]:
    try:
        new_id = await run_in_threadpool(store.add_roster, **body.model_dump(), created_by=who.username)
    except Conflict as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    return {"id": new_id}


@router.delete("/api/lead/roster/{roster_id}", status_code=204)
async def roster_remove(roster_id: DbId, _who: Leads, store: Store) -> Response:
    await run_in_threadpool(store.remove_roster, roster_id)
    return Response(status_code=204)


class AssessmentIn(BaseModel):
    department: str = Field(min_length=1, max_length=128)
    day: date
    item: str = Field(pattern="^(" + "|".join(reports.MANUAL) + ")$")
    count: int = Field(1, ge=1, le=100)
    note: str = Field("", max_length=255)


@router.post("/api/lead/assessment", status_code=201)
async def assessment_add(body: AssessmentIn, who: Leads, store: Store) -> dict[str, Any]:
    """A circular, a commendation, a false report or a repeat complaint, for the department assessment."""
    new_id = await run_in_threadpool(store.add_assessment, **body.model_dump(), entered_by=who.username)
    return {"id": new_id}


# ------------------------------------------------------------------------------------ reports

def _period(request: Request, kind: str, day: str, until: str) -> reports.Period:
    try:
        d = date.fromisoformat(day) if day else datetime.now(_tz(request)).date()
        u = date.fromisoformat(until) if until else None
    except ValueError:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "日期格式应为 2026-11-22") from None
    if kind not in ("day", "week", "month", "range"):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "报表周期应为 日/周/月/自定义")
    if u is not None and (u < d or (u - d).days > 366):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "自定义区间须在一年之内且结束不早于开始")
    return reports.period_for(kind, d, _tz(request), u)


def _report(request: Request, who: Principal, store: LeadStore, kind: str, day: str, until: str) -> dict[str, Any]:
    """In the thread pool: every read here blocks. The call and seat figures are the lead's
    centre's (tickets carry no centre: their figures are the whole system's)."""
    period = _period(request, kind, day, until)
    engine, tickets_store = request.app.state.engine, request.app.state.store
    mine, where = scope(request.app, who), seat_queues(request.app)
    calls = [c for c in reports.load_calls(tickets_store.calls, period) if mine.has_call(c, where)]
    tickets = tickets_store.digest.facts(period.previous().start, period.end)  # both periods
    # both periods' spells (the report sets this one beside the previous one); this period's entries
    spells = [s for s in store.spells(period.previous().start, period.end)
              if mine.everything or mine.has_seat_queues(where(str(s["seat"])))]
    entered = store.entered(period.start.date(), period.end.date())
    return reports.report(calls, tickets, period, _tz(request), datetime.now(UTC),
                          qa_scores=_qa_scores(engine, request.app.state.accounts, period), spells=spells,
                          entered=entered, intake=reports.load_intake(tickets_store.intake, period))


def _qa_scores(engine: sa.Engine, accounts: Accounts, period: reports.Period) -> dict[str, float]:
    """Mean QA score (%) per operator account, when recordings/ has scored any in the period.
    QA files scores under the job number (工号); the call log names the account."""
    from recordings.scoring import results

    try:
        scored = results(engine, "operator", period.start, period.end)
    except sa.exc.SQLAlchemyError:
        return {}
    by_number = accounts.usernames_by_job_number()
    return {by_number.get(r["operator"], r["operator"]): r["average"] for r in scored if r["operator"]}


@router.get("/api/lead/reports")
async def report_api(request: Request, who: Leads, store: Store, kind: str = "day", day: str = "",
                     until: str = "") -> dict[str, Any]:
    return await run_in_threadpool(_report, request, who, store, kind, day, until)


EXPORTS = {"xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "pdf": "application/pdf"}


@router.get("/api/lead/reports.{fmt}")
async def report_export(request: Request, who: Leads, store: Store, fmt: Literal["xlsx", "pdf"],
                        kind: str = "day", day: str = "", until: str = "") -> Response:
    from agent_ui import reports_export

    data = await run_in_threadpool(_report, request, who, store, kind, day, until)
    body = await run_in_threadpool(getattr(reports_export, f"to_{fmt}"), data)
    return Response(body, media_type=EXPORTS[fmt],
                    headers={"Content-Disposition": f'attachment; filename="report-{kind}.{fmt}"'})


__all__ = ["board", "router"]
