"""The team lead's pages and their API (班长监控): wallboard, alerts, approvals, callbacks, handover,
reports. The alert rules are agent_ui/alerts.py, the figures agent_ui/reports.py; this module is
the I/O around them: the bus, the call log, the ticket store, the acknowledgement log.

Centres: the setting ``centres`` (``HOTLINE_CENTRES``, JSON, ``{"菏泽中心": ["hotline"]}``) maps a
centre to its queues; a lead whose account names a centre sees only those queues and their seats.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, ClassVar, Literal
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field

from agent_ui import reports
from agent_ui.alerts import AlertEngine, AlertRules
from agent_ui.pages import templates
from hotline.bus import DomainEvent
from hotline.identity import Principal, Role, require_roles
from hotline.settings import Settings

log = logging.getLogger(__name__)

Leads = Annotated[Principal, Depends(require_roles(Role.LEAD))]
router = APIRouter()

TICK_S = 0.5
EMERGENCY_POLL_S = 10.0
TOTALS_TTL_S = 5.0


@dataclass(frozen=True, slots=True, kw_only=True)
class LeadAlert(DomainEvent):
    """An alert raised (or acknowledged) here, for every lead's wallboard."""

    type: ClassVar[str] = "lead_alert"
    alert: dict[str, Any]


@dataclass
class LeadConfig:
    rules: AlertRules = field(default_factory=AlertRules)
    centres: dict[str, list[str]] = field(default_factory=dict)
    tz: str = "Asia/Shanghai"

    @classmethod
    def from_settings(cls, settings: Settings) -> LeadConfig:
        rules = AlertRules(busy_limit_s=settings.lead_busy_limit_s, ring_limit_s=settings.lead_ring_limit_s)
        return cls(rules, {k: list(v) for k, v in settings.centres.items()}, settings.cti_timezone)

    def queues_of(self, who: Principal) -> set[str] | None:
        """The queues this lead may see; None = all."""
        if not who.centre or who.centre not in self.centres:
            return None
        return set(self.centres[who.centre])


class LeadRuntime:
    """Feeds the alert engine from the bus and the clock; publishes what it raises."""

    def __init__(self, app: FastAPI, config: LeadConfig, clock=time.time) -> None:
        self.app = app
        self.config = config
        self.clock = clock
        self.engine = AlertEngine(config.rules)
        self._tasks: list[asyncio.Task[None]] = []
        self._started = clock()
        self._spells: dict[str, tuple[str, str, str, float]] = {}  # seat → (state, reason, operator, since)

    @property
    def services(self):
        return self.app.state.services

    def _publish(self, alerts) -> None:
        for a in alerts:
            self.app.state.bus.publish_nowait(LeadAlert(at=a.at, alert=a.view()))

    async def start(self) -> None:
        cti = self.services.cti
        if cti is not None:
            views = cti.seats()
            self.engine.seed_seats(views)
            for v in views:
                self._spells[str(v["seat"])] = (str(v["state"]), str(v.get("reason") or ""),
                                                str(v.get("operator") or ""), float(v.get("since") or self.clock()))
        self._tasks = [asyncio.create_task(self._listen(), name="lead-alerts"),
                       asyncio.create_task(self._tick(), name="lead-tick")]

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t

    async def _listen(self) -> None:
        sub = self.app.state.bus.subscribe()
        try:
            async for env in sub:
                msg = env.message()
                if msg.get("type") == "lead_alert":
                    continue
                if msg.get("event") == "CallCompleted":
                    self._last_completed = self.clock()  # the seat totals are stale now
                try:
                    self._publish(self.engine.feed(msg))
                    if msg.get("event") == "SeatStateChanged":
                        closed = self._spell(msg)
                        if closed is not None:
                            await asyncio.to_thread(self._store_spell, *closed)
                except Exception:
                    log.exception("alert rule failed on %s", msg.get("event"))
        finally:
            sub.close()

    async def _tick(self) -> None:
        next_poll = 0.0
        while True:
            await asyncio.sleep(TICK_S)
            now = self.clock()
            try:
                cti = self.services.cti
                self._publish(self.engine.check(now, cti.queues() if cti is not None else ()))
                if now >= next_poll:
                    next_poll = now + EMERGENCY_POLL_S
                    for tid, number, title, at in await asyncio.to_thread(self._emergencies):
                        self._publish(self.engine.emergency(tid, number, title, at))
            except Exception:
                log.exception("lead alert tick failed")

    def seat_totals(self, call_log, since: datetime) -> dict[str, dict[str, float]]:
        """Today's calls and talk per seat, cached a moment: every bus message refreshes every lead's
        board, and the call log only changes when a call ends."""
        key = (since, getattr(self, "_last_completed", 0.0))
        cached = getattr(self, "_totals", None)
        if cached and cached[0] == key and self.clock() - cached[1] < TOTALS_TTL_S:
            return cached[2]
        totals = _seat_totals(call_log, since)
        self._totals = (key, self.clock(), totals)
        return totals

    def _spell(self, msg: dict[str, Any]) -> tuple[str, str, str, str, float, float] | None:
        """A seat changed state: the spell it leaves (seat, operator, state, reason, start, end), if any."""
        seat, at = str(msg["seat"]), float(msg.get("at") or self.clock())
        before = self._spells.get(seat)
        self._spells[seat] = (str(msg["state"]), str(msg.get("reason") or ""),
                              str(msg.get("operator") or (before[2] if before else "")), at)
        if before is None or before[0] == "signed_out" or at <= before[3]:
            return None
        state, reason, operator, since = before
        return seat, operator, state, reason, since, at

    def _store_spell(self, seat: str, operator: str, state: str, reason: str, start: float, end: float) -> None:
        with self.app.state.engine.begin() as conn:
            conn.execute(sa.text(
                "INSERT INTO seat_spell (seat, operator, state, reason, started_at, ended_at, seconds) "
                "VALUES (:seat, :op, :st, :r, :a, :b, :s)"),
                {"seat": seat, "op": operator, "st": state, "r": reason[:64], "a": datetime.fromtimestamp(start, UTC),
                 "b": datetime.fromtimestamp(end, UTC), "s": round(end - start, 3)})

    def _emergencies(self) -> list[tuple[int, str, str, float]]:
        """Open emergency tickets of the last day (the ticket store publishes nothing on the bus)."""
        from sqlmodel import Session, select

        from ticketing.models import Status, Ticket

        since = datetime.fromtimestamp(self._started, UTC) - timedelta(days=1)
        done = (Status.CLOSED, Status.ARCHIVED, Status.DRAFT)
        with Session(self.app.state.engine) as s:
            rows = s.exec(select(Ticket).where(Ticket.emergency == sa.true(), Ticket.created_at >= since,
                                               Ticket.status.not_in(done))).all()  # type: ignore[attr-defined]
            return [(t.id, t.number or "", t.title, t.created_at.timestamp()) for t in rows]

    async def ack(self, alert_id: int, who: str) -> dict[str, Any]:
        """On the loop (the engine and the bus live there); the log row is written in a thread."""
        known = self.engine.alerts.get(alert_id)
        first = known is not None and known.acked_at is None  # a second click is not logged again
        alert = self.engine.ack(alert_id, who, self.clock())
        if first:
            await asyncio.to_thread(self._log_ack, alert, who)
            self._publish([alert])
        return alert.view()

    def _log_ack(self, alert, who: str) -> None:
        with self.app.state.engine.begin() as conn:
            conn.execute(sa.text(
                "INSERT INTO lead_alert_ack (kind, alert_key, title, detail, queue, seat, raised_at, acked_by, "
                "acked_at) VALUES (:k, :key, :t, :d, :q, :s, :r, :by, :at)"),
                {"k": alert.kind, "key": alert.key, "t": alert.title, "d": alert.detail[:255], "q": alert.queue,
                 "s": alert.subject_seat, "r": datetime.fromtimestamp(alert.at, UTC), "by": who,
                 "at": datetime.fromtimestamp(alert.acked_at or self.clock(), UTC)})


def start(app: FastAPI, settings) -> LeadRuntime:
    """Called from the app's lifespan once the services run."""
    config = getattr(app.state, "lead_config", None) or LeadConfig.from_settings(settings)
    app.state.lead_config = config
    runtime = LeadRuntime(app, config)
    app.state.lead = runtime
    return runtime


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


def _utc_iso(row: dict[str, Any], *keys: str) -> dict[str, Any]:
    """Stored times as ISO with their UTC offset (SQLite hands them back naive, and a browser would
    read a naive time as its own local time)."""
    for k in keys:
        v = row.get(k)
        if isinstance(v, str) and v:
            v = datetime.fromisoformat(v)
        if isinstance(v, datetime):
            row[k] = (v if v.tzinfo else v.replace(tzinfo=UTC)).isoformat()
    return row


def _seat_totals(call_log, since: datetime) -> dict[str, dict[str, float]]:
    """Calls taken and talk time per seat since ``since`` (today)."""
    totals: dict[str, dict[str, float]] = {}
    offset = 0
    while True:
        page = call_log.list(since, None, "", "", 1000, offset)
        for c in page:
            if c["seat"] and c["answered"]:
                t = totals.setdefault(c["seat"], {"calls": 0, "talk_s": 0.0})
                t["calls"] += 1
                t["talk_s"] += float(c["talk_s"] or 0)
        offset += len(page)
        if len(page) < 1000:
            return totals


async def board(request: Request, who: Principal) -> dict[str, Any]:
    """Read on the event loop: the bridge's state is mutated there, so its views are taken there too;
    only the call-log read goes to a thread."""
    svc = request.app.state.services
    runtime = _runtime(request)
    allowed = runtime.config.queues_of(who)
    tz = _tz(request)
    now = runtime.clock()
    if svc.cti is None:
        queues, seats, calls = [], [], []
    else:
        queues, seats, calls = svc.cti.queues(), svc.cti.seats(), svc.cti.calls()
    if allowed is not None:
        queues = [q for q in queues if q["queue"] in allowed]
        seats = [s for s in seats if set(s["queues"]) & allowed or (not s["signed_in"] and not s["queues"])]
        calls = [c for c in calls if c["queue"] in allowed]
    midnight = datetime.now(tz).replace(hour=0, minute=0, second=0, microsecond=0)
    totals = await run_in_threadpool(runtime.seat_totals, svc.calls, midnight)
    for s in seats:
        t = totals.get(s["seat"], {})
        s["calls_today"] = int(t.get("calls", 0))
        s["talk_s_today"] = round(t.get("talk_s", 0.0), 1)
    alerts = runtime.engine.listing()
    if allowed is not None:
        alerts = [a for a in alerts if not a["queue"] or a["queue"] in allowed]
    return {"now": now, "queues": queues, "seats": seats, "calls": calls, "alerts": alerts,
            "rule_s": request.app.state.settings.answer_rule_s,
            "targets": {"within_rule": reports.TARGET_WITHIN_RULE,
                        "completion": runtime.config.rules.completion_target},
            "limits": {"busy_s": runtime.config.rules.busy_limit_s, "ring_s": runtime.config.rules.ring_limit_s},
            "bus": {"epoch": request.app.state.bus.epoch, "last_seq": request.app.state.bus.last_seq}}


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
async def alerts_api(request: Request, _who: Leads) -> list[dict[str, Any]]:
    return _runtime(request).engine.listing()


@router.post("/api/lead/alerts/{alert_id}/ack")
async def ack_api(alert_id: int, request: Request, who: Leads) -> dict[str, Any]:
    try:
        return await _runtime(request).ack(alert_id, who.username)
    except LookupError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None


@router.get("/api/lead/alerts/log")
async def ack_log_api(request: Request, _who: Leads, limit: int = 100) -> list[dict[str, Any]]:
    with request.app.state.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT kind, title, detail, queue, seat, raised_at, acked_by, acked_at "
                                    "FROM lead_alert_ack ORDER BY id DESC LIMIT :n"), {"n": min(limit, 1000)})
        return [_utc_iso(dict(r._mapping), "raised_at", "acked_at") for r in rows]


@router.get("/api/lead/tickets")
async def ticket_queue_api(request: Request, _who: Leads) -> dict[str, list[dict[str, Any]]]:
    """What waits for the lead in the ticket store: extension requests, returned tickets, emergencies."""

    def load() -> dict[str, list[dict[str, Any]]]:
        from sqlmodel import Session, select

        from ticketing.models import Status, Ticket

        def row(t: Ticket) -> dict[str, Any]:
            return {"id": t.id, "number": t.number, "title": t.title, "status": t.status.label
                    if isinstance(t.status, Status) else Status(t.status).label,
                    "due": t.current_due.isoformat() if t.current_due else None,
                    "extension_days": t.extension_requested_days, "return_reason": t.return_reason,
                    "supervised": t.supervision_count}

        with Session(request.app.state.engine) as s:
            def q(*where):
                return [row(t) for t in s.exec(select(Ticket).where(*where).order_by(Ticket.id).limit(100))]
            return {
                "extensions": q(Ticket.status == Status.EXTENSION_REQUESTED),
                "returned": q(Ticket.status == Status.RETURNED),
                "emergencies": q(Ticket.emergency == sa.true(),
                                 Ticket.status.not_in((Status.CLOSED, Status.ARCHIVED, Status.DRAFT))),  # type: ignore[attr-defined]
            }

    return await run_in_threadpool(load)


class HandoverIn(BaseModel):
    shift: str = Field(min_length=1, max_length=32)
    notes: str = Field("", max_length=4000)
    tickets: list[int] = Field(default_factory=list, max_length=200)


@router.get("/api/lead/handovers")
async def handovers_api(request: Request, _who: Leads, limit: int = 20) -> list[dict[str, Any]]:
    with request.app.state.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT * FROM shift_handover ORDER BY id DESC LIMIT :n"), {"n": min(limit, 200)})
        return [_utc_iso(dict(r._mapping), "created_at", "to_signed_at") for r in rows]


@router.post("/api/lead/handovers", status_code=201)
async def handover_create(body: HandoverIn, request: Request, who: Leads) -> dict[str, Any]:
    """The outgoing lead signs the handover (unfinished tickets, notes); the incoming one countersigns."""
    with request.app.state.engine.begin() as conn:
        new_id = conn.execute(sa.text(
            "INSERT INTO shift_handover (shift, from_lead, notes, tickets, created_at) "
            "VALUES (:s, :f, :n, :t, :at) RETURNING id"),
            {"s": body.shift, "f": who.username, "n": body.notes, "t": ",".join(map(str, body.tickets)),
             "at": datetime.now(UTC)}).scalar_one()
    return {"id": new_id}


@router.post("/api/lead/handovers/{handover_id}/sign")
async def handover_sign(handover_id: int, request: Request, who: Leads) -> dict[str, Any]:
    with request.app.state.engine.begin() as conn:
        row = conn.execute(sa.text("SELECT from_lead, to_signed_at FROM shift_handover WHERE id = :i"),
                           {"i": handover_id}).first()
        if row is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "交接记录不存在")
        if row.from_lead == who.username:
            raise HTTPException(status.HTTP_409_CONFLICT, "交班与接班须由两位班长分别签字")
        if row.to_signed_at is not None:
            raise HTTPException(status.HTTP_409_CONFLICT, "该交接已由接班班长签字")
        conn.execute(sa.text("UPDATE shift_handover SET to_lead = :w, to_signed_at = :at WHERE id = :i"),
                     {"w": who.username, "at": datetime.now(UTC), "i": handover_id})
    return {"id": handover_id, "to_lead": who.username}


class RosterIn(BaseModel):
    day: date
    shift: str = Field(min_length=1, max_length=32)
    username: str = Field(min_length=1, max_length=64)
    duty: str = Field("话务员", pattern="^(班长|话务员|专业席)$")
    seat: str = Field("", max_length=32)


@router.get("/api/lead/roster")
async def roster_api(request: Request, _who: Leads, day: date | None = None) -> list[dict[str, Any]]:
    """排班 of one day (today by default), by shift."""
    day = day or datetime.now(_tz(request)).date()
    with request.app.state.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT id, day, shift, username, duty, seat, created_by FROM roster "
                                    "WHERE day = :d ORDER BY shift, duty, username"), {"d": day})
        return [dict(r._mapping) for r in rows]


@router.post("/api/lead/roster", status_code=201)
async def roster_add(body: RosterIn, request: Request, who: Leads) -> dict[str, Any]:
    try:
        with request.app.state.engine.begin() as conn:
            new_id = conn.execute(sa.text(
                "INSERT INTO roster (day, shift, username, duty, seat, created_by) "
                "VALUES (:d, :s, :u, :duty, :seat, :by) RETURNING id"),
                {"d": body.day, "s": body.shift, "u": body.username, "duty": body.duty, "seat": body.seat,
                 "by": who.username}).scalar_one()
    except sa.exc.IntegrityError:
        raise HTTPException(status.HTTP_409_CONFLICT, f"{body.username} 已排在该班次") from None
    return {"id": new_id}


@router.delete("/api/lead/roster/{roster_id}", status_code=204)
async def roster_remove(roster_id: int, request: Request, _who: Leads) -> Response:
    with request.app.state.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM roster WHERE id = :i"), {"i": roster_id})
    return Response(status_code=204)


class AssessmentIn(BaseModel):
    department: str = Field(min_length=1, max_length=128)
    day: date
    item: str = Field(pattern="^(" + "|".join(reports.MANUAL) + ")$")
    count: int = Field(1, ge=1, le=100)
    note: str = Field("", max_length=255)


@router.post("/api/lead/assessment", status_code=201)
async def assessment_add(body: AssessmentIn, request: Request, who: Leads) -> dict[str, Any]:
    """A circular, a commendation, a false report or a repeat complaint, for the department assessment."""
    with request.app.state.engine.begin() as conn:
        new_id = conn.execute(sa.text(
            "INSERT INTO dept_assessment_entry (department, day, item, count, note, entered_by, entered_at) "
            "VALUES (:d, :day, :i, :c, :n, :by, :at) RETURNING id"),
            {"d": body.department, "day": body.day, "i": body.item, "c": body.count, "n": body.note,
             "by": who.username, "at": datetime.now(UTC)}).scalar_one()
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


def _report(request: Request, kind: str, day: str, until: str) -> dict[str, Any]:
    period = _period(request, kind, day, until)
    svc = request.app.state.services
    calls = reports.load_calls(svc.calls, period)
    tickets = reports.load_tickets(request.app.state.engine, period)
    engine = request.app.state.engine
    return reports.report(calls, tickets, period, _tz(request), datetime.now(UTC),
                          qa_scores=_qa_scores(engine, period), spells=reports.load_spells(engine, period),
                          entered=reports.load_entered(engine, period))


def _qa_scores(engine: sa.Engine, period: reports.Period) -> dict[str, float]:
    """Mean QA score (%) per operator account, when recordings/ has scored any in the period.
    QA files scores under the job number (工号); the call log names the account."""
    from sqlmodel import Session, select

    from agent_ui.accounts import Account
    from recordings.scoring import results

    try:
        scored = results(engine, "operator", period.start, period.end)
    except sa.exc.SQLAlchemyError:
        return {}
    with Session(engine) as s:
        by_number = {a.job_number: a.username for a in s.exec(select(Account)) if a.job_number}
    return {by_number.get(r["operator"], r["operator"]): r["average"] for r in scored if r["operator"]}


@router.get("/api/lead/reports")
async def report_api(request: Request, _who: Leads, kind: str = "day", day: str = "",
                     until: str = "") -> dict[str, Any]:
    return await run_in_threadpool(_report, request, kind, day, until)


EXPORTS = {"xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "pdf": "application/pdf"}


@router.get("/api/lead/reports.{fmt}")
async def report_export(request: Request, _who: Leads, fmt: Literal["xlsx", "pdf"], kind: str = "day",
                        day: str = "", until: str = "") -> Response:
    from agent_ui import reports_export

    data = await run_in_threadpool(_report, request, kind, day, until)
    body = await run_in_threadpool(getattr(reports_export, f"to_{fmt}"), data)
    return Response(body, media_type=EXPORTS[fmt],
                    headers={"Content-Disposition": f'attachment; filename="report-{kind}.{fmt}"'})


__all__ = ["LeadAlert", "LeadConfig", "LeadRuntime", "router", "start"]
