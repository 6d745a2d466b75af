"""The authorisation matrix (issue #13): every route of the whole app, the websocket and the static
files, against every role, in two centres and two departments, with the expected outcome written
once in :data:`RULES`.

* A route of the app without a rule fails :func:`test_every_route_of_the_app_has_a_rule` (add one
  to :data:`RULES`); a rule for a route that no longer exists fails it too.
* For each rule, each principal of :data:`PRINCIPALS` sends the route a minimal request (path
  parameters filled with ids that exist: a ticket of department 1, its attachment, a recording of
  the north centre; an empty JSON body): anonymous gets 401 (a page: a redirect to ``/login``)
  on everything not public, a role the rule does not name 403, a role it names anything but
  401/403 — 404 where the route hides what the principal may not see (another department's
  ticket, another operator's or another centre's recording). Nobody ever gets a 5xx.
* The ``test_centre_*`` and ``test_department_*`` tests below put data in both centres and both
  departments and say what each side must (not) see: live calls, queues, seats, alerts, the
  wallboard, reports and their export, the call log and callbacks, approvals, recordings and
  their access, websocket traffic; another department's tickets and attachments, and a
  confidential reporter.

Centres are the setting ``centres`` (centre → its queues, see agent_ui.lead.runtime): the north
centre has the queue ``north`` and seat 8001, the south centre ``south`` and seat 8101. A lead
whose account names a centre sees that centre only (``hotline.identity.Principal.centre``).
"""

from __future__ import annotations

import io
import re
import time
import wave
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.routing import APIRoute, APIWebSocketRoute
from fastapi.testclient import TestClient
from sqlmodel import Session
from starlette.routing import Mount
from starlette.websockets import WebSocketDisconnect

from agent_ui import approvals
from agent_ui.public.limiter import PublicLimits
from cti.domain import AnswerRuleBreached, CallAnswered, CallOffered, LinkStatus, SeatRinging, SeatStateChanged
from hotline.calls import FinishedCall
from hotline.identity import Role
from hotline.settings import Settings
from launch.compose import web_app
from recordings.models import Recording, RecordingFile
from testkit.auth import session_for
from tests.support.routes import flat_routes
from ticketing.schemas import SystemActor

# ------------------------------------------------------------------------------------ the rules

PUBLIC = "public"  # anyone, without a session
SIGNED_IN = "signed-in"  # any role with a session
BRIDGE = "bridge-key"  # the channel's own key (settings.intake_bridge_keys), never a session
OP, LEAD, QA, ADMIN, DEPT = "operator", "lead", "qa", "admin", "department"

# what a route hides (404) from a principal who may use the route but not see the thing it names
TICKET = "ticket"  # a department that does not handle the ticket (department 1's here)
RECORDING = "recording"  # an operator other than the recording's; anyone of another centre
AUDIO = "audio"  # as RECORDING, where a refusal (403) hides it as well as a 404


@dataclass(frozen=True)
class Rule:
    who: str | frozenset[str]
    hides: str = ""
    query: str = ""  # added to the request so that it reaches what it is about
    note: str = ""


def R(*roles: str, hides: str = "", query: str = "", note: str = "") -> Rule:
    if len(roles) == 1 and roles[0] in (PUBLIC, SIGNED_IN, BRIDGE):
        return Rule(roles[0], hides, query, note)
    return Rule(frozenset(roles), hides, query, note)


CENTRE_STAFF = (OP, LEAD, ADMIN)  # 话务员, 班长 (and the admin): the live floor
DESK = (OP, LEAD, QA, ADMIN)  # the centre's desk: QA reads it
LEADS = (LEAD, ADMIN)
RECORDING_VIEWERS = (OP, LEAD, QA, ADMIN)

# (method, path template) → who may use it. Websocket routes are "WS"; the static files' mount "GET".
RULES: dict[tuple[str, str], Rule] = {
    # --- sign-in (agent_ui.auth) and the pages around it (agent_ui.pages)
    ("POST", "/api/auth/login"): R(PUBLIC),
    ("POST", "/api/auth/logout"): R(PUBLIC, note="ends whatever session it is given"),
    ("GET", "/api/auth/me"): R(SIGNED_IN),
    ("POST", "/api/auth/password"): R(SIGNED_IN),
    ("POST", "/api/auth/setup"): R(PUBLIC, note="the one-time setup token is the credential"),
    ("GET", "/"): R(PUBLIC, note="redirects to the login page or the role's home"),
    ("GET", "/login"): R(PUBLIC),
    ("GET", "/account/password"): R(SIGNED_IN),
    ("GET", "/setup"): R(PUBLIC, note="404 unless a setup token waits and no admin exists"),
    ("GET", "/health"): R(*LEADS),
    ("GET", "/docs"): R(SIGNED_IN),
    ("GET", "/api/health"): R(*LEADS),
    ("GET", "/api/openapi.json"): R(SIGNED_IN),
    ("GET", "/static"): R(PUBLIC, note="the page scripts and styles"),
    # --- the admin's rooms (agent_ui.admin)
    ("GET", "/admin"): R(ADMIN),
    ("GET", "/api/admin/accounts"): R(ADMIN),
    ("POST", "/api/admin/accounts"): R(ADMIN),
    ("PATCH", "/api/admin/accounts/{username}"): R(ADMIN),
    ("POST", "/api/admin/accounts/{username}/disable"): R(ADMIN),
    ("POST", "/api/admin/accounts/{username}/enable"): R(ADMIN),
    ("POST", "/api/admin/accounts/{username}/reset-password"): R(ADMIN),
    ("POST", "/api/admin/accounts/{username}/logout"): R(ADMIN),
    ("GET", "/api/admin/accounts/{username}/sessions"): R(ADMIN),
    ("GET", "/admin/audit"): R(ADMIN),
    ("GET", "/api/admin/audit"): R(ADMIN),
    ("GET", "/api/admin/audit/export"): R(ADMIN),
    ("GET", "/admin/sip"): R(ADMIN),
    ("GET", "/api/admin/sip"): R(ADMIN),
    ("POST", "/api/admin/sip/{line}/reveal"): R(ADMIN),
    ("POST", "/api/admin/sip/{line}/rotate"): R(ADMIN),
    ("GET", "/admin/imports"): R(ADMIN),
    ("GET", "/api/admin/imports"): R(ADMIN),
    ("POST", "/api/admin/imports"): R(ADMIN),
    ("GET", "/api/admin/imports/{upload_id}"): R(ADMIN),
    ("POST", "/api/admin/imports/{upload_id}/check"): R(ADMIN),
    ("POST", "/api/admin/imports/{upload_id}/import"): R(ADMIN),
    ("DELETE", "/api/admin/imports/{upload_id}"): R(ADMIN),
    # --- live (agent_ui.ws, agent_ui.live)
    ("WS", "/ws"): R(SIGNED_IN, note="what each one sees: agent_ui.ws.Audience, and test_centre_websocket_*"),
    ("GET", "/api/queues"): R(*CENTRE_STAFF),
    ("GET", "/api/seats"): R(*CENTRE_STAFF, note="an operator: their own seat only"),
    ("GET", "/api/calls/live"): R(*LEADS),
    ("GET", "/api/calls"): R(*DESK, note="an operator: their own calls only"),
    ("GET", "/api/callbacks"): R(*CENTRE_STAFF),
    ("POST", "/api/callbacks/{uniqueid}/done"): R(*CENTRE_STAFF),
    # --- the lead (agent_ui.lead)
    ("GET", "/lead"): R(*LEADS),
    ("GET", "/lead/callbacks"): R(*LEADS),
    ("GET", "/lead/callers"): R(*LEADS),
    ("GET", "/lead/handover"): R(*LEADS),
    ("GET", "/lead/reports"): R(*LEADS),
    ("GET", "/api/lead/board"): R(*LEADS),
    ("GET", "/api/lead/alerts"): R(*LEADS),
    ("POST", "/api/lead/alerts/{alert_id}/ack"): R(*LEADS),
    ("GET", "/api/lead/alerts/log"): R(*LEADS),
    ("GET", "/api/lead/live/{call_id}"): R(*LEADS, note="another centre's call is hidden: test_lead_transcripts"),
    ("GET", "/api/lead/tickets"): R(*LEADS),
    ("GET", "/api/lead/handovers"): R(*LEADS),
    ("POST", "/api/lead/handovers"): R(*LEADS),
    ("POST", "/api/lead/handovers/{handover_id}/sign"): R(*LEADS),
    ("GET", "/api/lead/roster"): R(*LEADS),
    ("POST", "/api/lead/roster"): R(*LEADS),
    ("DELETE", "/api/lead/roster/{roster_id}"): R(*LEADS),
    ("POST", "/api/lead/assessment"): R(*LEADS),
    ("GET", "/api/lead/reports"): R(*LEADS),
    ("GET", "/api/lead/reports.{fmt}"): R(*LEADS),
    # --- the operator's console (agent_ui.console) and approvals (agent_ui.approvals)
    ("GET", "/console"): R(OP, ADMIN),
    ("GET", "/api/seat"): R(OP, ADMIN),
    ("POST", "/api/seat/signin"): R(OP, ADMIN),
    ("POST", "/api/seat/signout"): R(OP, ADMIN),
    ("POST", "/api/seat/busy"): R(OP, ADMIN),
    ("POST", "/api/seat/ready"): R(OP, ADMIN),
    ("POST", "/api/seat/wrapup/done"): R(OP, ADMIN),
    ("POST", "/api/seat/transfer"): R(OP, ADMIN),
    ("POST", "/api/seat/conference"): R(OP, ADMIN),
    ("POST", "/api/seat/hangup"): R(OP, ADMIN),
    ("GET", "/api/seat/phone"): R(OP, ADMIN),  # the browser phone: only for the seat signed in to
    ("POST", "/api/seat/callback"): R(OP, ADMIN),
    ("POST", "/api/console/duplicates"): R(OP, ADMIN),
    ("GET", "/api/console/suggest"): R(OP, ADMIN),
    ("POST", "/api/console/link"): R(OP, ADMIN),
    ("POST", "/api/approvals"): R(*CENTRE_STAFF, note="an operator: for their own seat only"),
    ("GET", "/api/approvals"): R(*CENTRE_STAFF, note="an operator: their own seat's only"),
    ("POST", "/api/approvals/{approval_id}/{verdict}"): R(*LEADS),
    # --- QA pages (agent_ui.qa)
    ("GET", "/qa"): R(*RECORDING_VIEWERS),
    ("GET", "/qa/{recording_id}"): R(*RECORDING_VIEWERS, hides=RECORDING),
    # --- the centre's desk (agent_ui.desk)
    ("GET", "/tickets"): R(*DESK),
    ("GET", "/callbacks"): R(*CENTRE_STAFF),
    ("GET", "/api/desk/tickets"): R(*DESK),
    ("GET", "/api/desk/tickets/{ticket_id}"): R(*DESK),
    ("GET", "/api/desk/tickets/{ticket_id}/reads"): R(*LEADS),
    ("GET", "/api/desk/supervisions"): R(*DESK),
    ("GET", "/api/desk/counts"): R(*DESK),
    ("GET", "/api/desk/callbacks"): R(*CENTRE_STAFF),
    # --- the department portal (agent_ui.dept): departments only, not even the admin
    ("GET", "/dept"): R(DEPT),
    ("GET", "/api/dept/summary"): R(DEPT),
    ("GET", "/api/dept/tickets"): R(DEPT),
    ("GET", "/api/dept/tickets/{ticket_id}"): R(DEPT, hides=TICKET),
    ("GET", "/api/dept/assessment"): R(DEPT),
    # --- attachments (ticketing.attachment_routes): whoever sees the ticket; QA does not upload
    ("POST", "/api/tickets/{ticket_id}/attachments"): R(OP, LEAD, DEPT, ADMIN, hides=TICKET),
    ("GET", "/api/tickets/{ticket_id}/attachments"): R(SIGNED_IN, hides=TICKET),
    ("GET", "/api/tickets/{ticket_id}/attachments/{attachment_id}"): R(SIGNED_IN, hides=TICKET),
    # --- tickets (ticketing.routes)
    ("GET", "/api/tickets"): R(SIGNED_IN, note="a department: the tickets it handles (test_department_*)"),
    ("GET", "/api/tickets/export"): R(LEAD, QA, ADMIN),
    ("POST", "/api/tickets"): R(*CENTRE_STAFF),
    ("GET", "/api/tickets/{ticket_id}"): R(SIGNED_IN, hides=TICKET),
    ("PATCH", "/api/tickets/{ticket_id}"): R(*CENTRE_STAFF),
    ("GET", "/api/tickets/{ticket_id}/history"): R(SIGNED_IN, hides=TICKET),
    ("GET", "/api/tickets/{ticket_id}/duplicates"): R(*DESK),
    ("POST", "/api/tickets/{ticket_id}/{action}"): R(
        SIGNED_IN, note="each step's roles are the workflow's (ticketing.workflow); sent here: link, no body"),
    ("GET", "/api/callers"): R(*LEADS),
    ("PUT", "/api/callers/{number}/flags"): R(*LEADS),
    ("GET", "/api/callers/{number}"): R(*DESK),
    ("GET", "/api/kb"): R(SIGNED_IN),
    ("GET", "/api/kb/missing"): R(*DESK),
    ("POST", "/api/kb/missing"): R(*DESK),
    ("GET", "/api/kb/{article_id}"): R(SIGNED_IN),
    ("POST", "/api/kb"): R(*LEADS),
    ("PUT", "/api/kb/{article_id}"): R(*LEADS),
    ("GET", "/api/departments"): R(SIGNED_IN),
    ("GET", "/api/departments/{department_id}"): R(SIGNED_IN),
    ("POST", "/api/departments"): R(ADMIN),
    ("PUT", "/api/departments/{department_id}"): R(ADMIN),
    ("GET", "/api/calendar"): R(SIGNED_IN),
    ("PUT", "/api/calendar"): R(ADMIN),
    # --- recordings and QA scoring (recordings.routes): departments get nothing
    ("GET", "/api/qa/progress"): R(*RECORDING_VIEWERS),
    ("GET", "/api/recordings/access-requests"): R(*RECORDING_VIEWERS, note="an operator: their own requests"),
    ("POST", "/api/recordings/access-requests"): R(*RECORDING_VIEWERS),
    ("POST", "/api/recordings/access-requests/{request_id}/{decision}"): R(*LEADS, note="never one's own request"),
    ("GET", "/api/recordings/access-log"): R(QA, LEAD, ADMIN),
    ("GET", "/api/recordings/access-log/export"): R(QA, LEAD, ADMIN),
    ("GET", "/api/recordings"): R(*RECORDING_VIEWERS, note="an operator: their own calls and voice messages"),
    ("GET", "/api/recordings/{recording_id}"): R(*RECORDING_VIEWERS, hides=RECORDING),
    ("GET", "/api/recordings/{recording_id}/audio/{leg}"): R(
        *RECORDING_VIEWERS, hides=AUDIO,
        note="only with someone else's approval (QA: a duty grant), which the world gives each of them; "
             "a department never"),
    ("GET", "/api/recordings/{recording_id}/peaks"): R(*RECORDING_VIEWERS, hides=AUDIO, note="as the audio"),
    ("GET", "/api/qa/check-items"): R(*RECORDING_VIEWERS),
    ("PUT", "/api/qa/check-items"): R(ADMIN),
    ("POST", "/api/qa/scores"): R(QA, ADMIN),
    ("GET", "/api/qa/scores"): R(*RECORDING_VIEWERS, hides=RECORDING, query="recording_id={recording_id}"),
    ("GET", "/api/qa/results"): R(QA, LEAD, ADMIN),
    # --- 访问记录: the confidential-read log (agent_ui.oversight; the recording-access log is above)
    ("GET", "/audit"): R(*LEADS),
    ("GET", "/api/audit/confidential-reads"): R(*LEADS),
    ("GET", "/api/audit/confidential-reads/export"): R(*LEADS),
    # --- notifications (notify.routes)
    ("GET", "/api/notifications"): R(OP, LEAD, QA, DEPT, ADMIN, hides=TICKET, query="ticket_id={ticket_id}"),
    # --- the other channels' queue (agent_ui.intake)
    ("GET", "/intake"): R(*CENTRE_STAFF),
    ("GET", "/api/intake/queue"): R(*CENTRE_STAFF),
    ("POST", "/api/intake/queue/{submission_id}/confirm"): R(*CENTRE_STAFF),
    ("POST", "/api/intake/queue/{submission_id}/reject"): R(*CENTRE_STAFF),
    ("POST", "/api/intake/{channel}"): R(BRIDGE, note="a session is no bridge key: 401 for every principal"),
    # --- what citizens use without an account (agent_ui.public)
    ("GET", "/status"): R(PUBLIC),
    ("GET", "/report"): R(PUBLIC),
    ("POST", "/api/public/status"): R(PUBLIC),
    ("POST", "/api/public/rate"): R(PUBLIC),
    ("POST", "/api/public/submissions"): R(PUBLIC),
}

# ------------------------------------------------------------------------------------ who asks

NORTH, SOUTH = "北区中心", "南区中心"
CENTRES = {NORTH: ["north"], SOUTH: ["south"]}
SEAT_N, SEAT_S = "8001", "8101"
JOB_N, JOB_S = "7101", "7201"  # not a demo account's 工号
BRIDGE_KEY = "k" * 40


@dataclass(frozen=True)
class Who:
    key: str
    username: str = ""
    role: Role | None = None
    centre: str = ""
    department_id: int | None = None
    dept_lead: bool = False
    job_number: str = ""

    @property
    def kind(self) -> str:
        return self.role.value if self.role else "anonymous"


ANON = Who("anonymous")
OP_N = Who("operator@north", "mx_op_n", Role.OPERATOR, NORTH, job_number=JOB_N)
OP_S = Who("operator@south", "mx_op_s", Role.OPERATOR, SOUTH, job_number=JOB_S)
LEAD_N = Who("lead@north", "mx_lead_n", Role.LEAD, NORTH)
LEAD_S = Who("lead@south", "mx_lead_s", Role.LEAD, SOUTH)
QA_N = Who("qa@north", "mx_qa_n", Role.QA, NORTH)
QA_S = Who("qa@south", "mx_qa_s", Role.QA, SOUTH)
ADMIN_ = Who("admin", "mx_admin", Role.ADMIN)
DEPT1 = Who("department 1", "mx_dept1", Role.DEPARTMENT, department_id=1)
DEPT1_LEAD = Who("department 1 lead", "mx_dept1_lead", Role.DEPARTMENT, department_id=1, dept_lead=True)
DEPT2_LEAD = Who("department 2 lead", "mx_dept2_lead", Role.DEPARTMENT, department_id=2, dept_lead=True)
PRINCIPALS = (ANON, OP_N, OP_S, LEAD_N, LEAD_S, QA_N, QA_S, ADMIN_, DEPT1, DEPT1_LEAD, DEPT2_LEAD)

# ------------------------------------------------------------------------------------ the world


class _Actions:
    """The bridge's call control, answering every action at once (no Asterisk here)."""

    def __getattr__(self, name: str):
        async def act(*_args: Any, **_kw: Any) -> SimpleNamespace:
            return SimpleNamespace(action=name, detail="", call_id="")

        return act


class FakeCti:
    """The three live views, with a queue, a seat and a call in each centre."""

    def __init__(self) -> None:
        self.actions = _Actions()

    def queues(self) -> list[dict[str, Any]]:
        return [{"queue": "north", "waiting": 1, "members": [SEAT_N]}, {"queue": "south", "waiting": 2,
                                                                        "members": [SEAT_S]}]

    def seats(self) -> list[dict[str, Any]]:
        return [{"seat": SEAT_N, "queues": ["north"], "signed_in": True, "state": "ready", "operator": OP_N.username},
                {"seat": SEAT_S, "queues": ["south"], "signed_in": True, "state": "ready", "operator": OP_S.username}]

    def seat_queues(self, seat: str) -> frozenset[str]:
        return frozenset({SEAT_N: {"north"}, SEAT_S: {"south"}}.get(seat, ()))

    def calls(self) -> list[dict[str, Any]]:
        return [{"call_id": "live-north", "queue": "north", "seat": SEAT_N, "waiting_s": 3.0},
                {"call_id": "live-south", "queue": "south", "seat": SEAT_S, "waiting_s": 5.0}]


@dataclass
class World:
    client: TestClient
    ticket: int  # department 1's (lead), with an attachment
    attachment: int
    ticket2: int  # department 2's
    secret: int  # department 1's, confidential reporter
    rec_n: int  # recordings: the north operator's at the north seat, the south one's
    rec_s: int
    approval_n: int
    approval_s: int
    tokens: dict[str, str] = field(default_factory=dict)
    day: str = ""  # the centre's day the calls were made on (calls_at)

    @property
    def app(self) -> Any:
        return self.client.app

    def headers(self, who: Who) -> dict[str, str]:
        if who.role is None:
            return {}
        if who.key not in self.tokens:
            self.tokens[who.key] = session_for(self.app, who.username, who.role, centre=who.centre,
                                               department_id=who.department_id, dept_lead=who.dept_lead,
                                               job_number=who.job_number)
        return {"Authorization": f"Bearer {self.tokens[who.key]}"}

    def get(self, path: str, who: Who, **kw: Any):
        self.client.cookies.clear()
        return self.client.get(path, headers=self.headers(who), follow_redirects=False, **kw)

    def post(self, path: str, who: Who, **kw: Any):
        self.client.cookies.clear()
        return self.client.post(path, headers=self.headers(who), follow_redirects=False, **kw)


SECRET_NUMBER, SECRET_NAME = "13953099876", "韩秘密"
JPEG = b"\xff\xd8\xff\xe0" + b"\0" * 512


def _wav(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\x10\x00\xf0\xff" * 400)


def _recording(engine: Any, folder: Path, base: str, seat: str, job: str, uid: str) -> int:
    with Session(engine) as s:
        rec = Recording(base=base, uniqueid=uid, seat=seat, operator=job, caller_num="13953012345",
                        started_at=datetime.now(UTC), status="ok", duration_s=0.2)
        s.add(rec)
        s.flush()
        for leg, suffix in (("mixed", ""), ("citizen", "-in"), ("operator", "-out")):
            path = folder / f"{base}{suffix}.wav"
            _wav(path)
            s.add(RecordingFile(recording_id=rec.id, leg=leg, path=str(path), size_bytes=path.stat().st_size,
                                duration_s=0.2))
        s.commit()
        return int(rec.id)


def calls_at(tz: ZoneInfo, now: float) -> float:
    """When the world's calls start: 10 minutes ago, or 3 minutes before the centre's midnight if
    the calls (from 5 minutes earlier to 2 minutes later) would straddle it. The lead's day report asks for that day; a
    run at 00:05 in Shanghai put them in yesterday's report and the south lead saw nobody."""
    midnight = datetime.fromtimestamp(now, tz).replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
    return now - 600 if now - 900 >= midnight else midnight - 180


def _call(call_id: str, queue: str, seat: str, who: Who, at: float, *, abandoned: bool = False,
          earlier_s: float = 0) -> FinishedCall:
    start = at - earlier_s
    if abandoned:
        return FinishedCall(call_id=call_id, caller_num="13953011111" if queue == "north" else "13953022222",
                            offered_at=start, ended_at=start + 20, queue=queue, wait_ms=20000, abandoned=True)
    return FinishedCall(call_id=call_id, caller_num="13953033333", offered_at=start, ended_at=start + 120,
                        queue=queue, seats_rung=(seat,), seat=seat, operator=who.username, job_number=who.job_number,
                        answered_at=start + 5, wait_ms=5000, within_rule=True, talk_s=115.0)


def _approved(w: World, asker: Who, approver: Who, recording_id: int | None) -> None:
    asked = w.post("/api/recordings/access-requests", asker, json={"recording_id": recording_id, "reason": "复核"})
    assert asked.status_code == 201, asked.text
    decided = w.post(f"/api/recordings/access-requests/{asked.json()['id']}/approve", approver)
    assert decided.status_code == 200, decided.text


def _ticket(w: World, department_id: int, **over: Any) -> int:
    body = {"category": "投诉举报", "title": "夜市占道经营", "caller_number": "13953012345", "caller_name": "张桂兰",
            "contact": "13953012345", "district": "牡丹区", "matter_place": "牡丹区中华路夜市",
            "matter_course": "每晚摊位占满人行道", "matter_demand": "请清理占道摊位"} | over
    made = w.post("/api/tickets", OP_N, json=body)
    assert made.status_code == 201, made.text
    tid = made.json()["id"]
    moved = w.post(f"/api/tickets/{tid}/transfer", OP_N, json={"department_id": department_id, "opinion": "请核实处理"})
    assert moved.status_code == 200, moved.text
    return int(tid)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    var = tmp_path_factory.mktemp("var")
    settings = Settings(var_dir=var, services=[], ami_port=1, agi_port=1, centres=CENTRES,
                        seats=[SEAT_N, "8002", SEAT_S, "8102"], intake_bridge_keys={"wechat": BRIDGE_KEY})
    with TestClient(web_app(settings)) as client:
        app = client.app
        app.state.cti = FakeCti()
        app.state.roster = {OP_N.username: SEAT_N, OP_S.username: SEAT_S}.copy
        for name in ("菏泽市城市管理局", "菏泽市水务集团有限公司"):  # departments 1 and 2
            app.state.store.directory.save({"name": name, "duties": "城市管理"}, SystemActor())
        w = World(client, 0, 0, 0, 0, 0, 0, 0, 0)
        w.ticket = _ticket(w, 1)
        w.ticket2 = _ticket(w, 2, title="丽景花园停水", matter_place="牡丹区丽景花园")
        w.secret = _ticket(w, 1, confidential=True, title="举报违建", caller_number=SECRET_NUMBER,
                           caller_name=SECRET_NAME, contact=SECRET_NUMBER, caller_address="牡丹区某小区3号楼")
        up = w.post(f"/api/tickets/{w.ticket}/attachments", OP_N, files={"file": ("现场.jpg", JPEG, "image/jpeg")})
        assert up.status_code == 201, up.text
        w.attachment = int(up.json()["id"])
        engine = app.state.engine
        w.rec_n = _recording(engine, var / "rec", "mx-north-1", SEAT_N, JOB_N, "call-north-1")
        w.rec_s = _recording(engine, var / "rec", "mx-south-1", SEAT_S, JOB_S, "call-south-1")
        calls = app.state.store.calls
        tz = ZoneInfo(settings.cti_timezone)
        at = calls_at(tz, time.time())
        w.day = datetime.fromtimestamp(at, tz).date().isoformat()
        for call in (_call("call-north-1", "north", SEAT_N, OP_N, at), _call("call-south-1", "south", SEAT_S, OP_S, at),
                     _call("missed-north-1", "north", "", OP_N, at, abandoned=True, earlier_s=300),
                     _call("missed-south-1", "south", "", OP_S, at, abandoned=True, earlier_s=200)):
            calls.record(call)
        # listening needs someone else's approval: each one who may hear a recording here has one (QA: a
        # duty grant, None: every recording it may see)
        for asker, approver, rid in ((OP_N, ADMIN_, w.rec_n), (LEAD_N, ADMIN_, w.rec_n), (ADMIN_, LEAD_N, w.rec_n),
                                     (LEAD_S, ADMIN_, w.rec_s), (QA_N, LEAD_N, None), (QA_S, ADMIN_, None)):
            _approved(w, asker, approver, rid)
        w.approval_n = int(approvals.request_approval(engine, "busy", SEAT_N, "就餐", "", OP_N.username).id)
        w.approval_s = int(approvals.request_approval(engine, "busy", SEAT_S, "就餐", "", OP_S.username).id)
        yield w


# ------------------------------------------------------------------------------------ the routes



def app_routes(app: Any) -> set[tuple[str, str]]:
    out: set[tuple[str, str]] = set()
    for r in flat_routes(app.routes):
        if isinstance(r, APIWebSocketRoute):
            out.add(("WS", r.path))
        elif isinstance(r, Mount):
            out.add(("GET", r.path))
        elif isinstance(r, APIRoute):
            out |= {(m, r.path) for m in r.methods - {"HEAD"}}
        else:  # a plain starlette route or websocket: it needs a rule just the same
            methods = getattr(r, "methods", None) or {"WS"}
            out |= {(m, getattr(r, "path", repr(r))) for m in methods - {"HEAD"}}
    return out


def test_every_route_of_the_app_has_a_rule(world: World) -> None:
    routes = app_routes(world.app)
    assert ("WS", "/ws") in routes and ("POST", "/api/seat/signin") in routes and len(routes) > 100
    missing = sorted(routes - RULES.keys())
    stale = sorted(RULES.keys() - routes)
    assert not missing, ("routes without an authorisation rule — add each to RULES in "
                         f"tests/agent_ui/test_authz_matrix.py (who may use it): {missing}")
    assert not stale, f"RULES name routes the app no longer has — remove or rename them: {stale}"


# ------------------------------------------------------------------------------------ the matrix


def _fill(w: World, path: str) -> str:
    values = {"ticket_id": w.ticket, "attachment_id": w.attachment, "recording_id": w.rec_n, "leg": "mixed",
              "username": "nobody-here", "uniqueid": "no-such-call", "call_id": "no-such-call",
              "alert_id": 999999, "handover_id": 999999,
              "roster_id": 999999, "fmt": "xlsx", "approval_id": 999999, "verdict": "refuse",
              "request_id": 999999, "decision": "refuse", "action": "link", "number": "13953012345",
              "article_id": 1, "department_id": 1, "submission_id": 999999, "channel": "wechat",
              "line": "0000",  # no such line: an admin's rotation here would write secrets
              "upload_id": "0123456789abcdef"}  # no such upload: nothing to check or import

    def one(m: re.Match[str]) -> str:
        name = m.group(1)
        assert name in values, f"no value for the path parameter {{{name}}}: add one to _fill"
        return str(values[name])

    return re.sub(r"\{(\w+)\}", one, path)


def _hidden(rule: Rule, who: Who, w: World) -> set[int] | None:
    """The answers that hide the thing from ``who``, or None if ``who`` may see it."""
    if rule.hides == TICKET and who.role is Role.DEPARTMENT and who.department_id != 1:
        return {404}
    # a recording: another operator's call, or another centre's (anyone whose account names a centre)
    theirs = (who.role is Role.OPERATOR and who.job_number != JOB_N) or who.centre not in ("", NORTH)
    if rule.hides in (RECORDING, AUDIO) and theirs:
        return {404} if rule.hides == RECORDING else {403, 404}
    return None


def expected(rule: Rule, who: Who, w: World, page: bool) -> tuple[str, set[int] | None]:
    """(what, the acceptable statuses; None: anything but 401, 403 and 5xx)."""
    if rule.who == BRIDGE:
        return "401 (no bridge key)", {401}
    if who.role is None:
        if rule.who == PUBLIC:
            return "allowed", None
        return ("303 → /login", {303}) if page else ("401", {401})
    if rule.who not in (PUBLIC, SIGNED_IN) and who.kind not in rule.who:
        return "403", {403}
    hidden = _hidden(rule, who, w)
    if hidden is not None:
        return f"hidden {sorted(hidden)}", hidden
    return "allowed", None


def _send(w: World, method: str, path: str, rule: Rule, who: Who, page: bool):
    url = _fill(w, path) if path != "/static" else "/static/hotline.css"
    if rule.query:
        url += "?" + rule.query.format(ticket_id=w.ticket, recording_id=w.rec_n)
    headers = w.headers(who) | ({"Accept": "text/html"} if page else {})
    if path.startswith("/api/public/"):
        w.app.state.public_limits = PublicLimits.default()  # each principal's try is its own
    kw: dict[str, Any] = {}
    if method in ("POST", "PUT", "PATCH"):
        if path == "/api/tickets/{ticket_id}/attachments":
            kw["files"] = {"file": ("现场.jpg", JPEG, "image/jpeg")}
        else:
            kw["json"] = {}
    w.client.cookies.clear()
    res = w.client.request(method, url, headers=headers, follow_redirects=False, **kw)
    if path == "/api/auth/logout":
        w.tokens.pop(who.key, None)  # that session is over: the next request opens another
    return res


def _ws(w: World, who: Who) -> int | str:
    """The websocket's answer: "hello" once in, else the close code."""
    try:
        with w.client.websocket_connect("/ws", headers=w.headers(who)) as ws:
            return str(ws.receive_json().get("type"))
    except WebSocketDisconnect as exc:
        return exc.code


@pytest.mark.parametrize("route", sorted(RULES), ids=[f"{m} {p}" for m, p in sorted(RULES)])
def test_each_route_answers_each_role_as_its_rule_says(world: World, route: tuple[str, str]) -> None:
    method, path = route
    rule = RULES[route]
    page = not path.startswith(("/api", "/ws", "/static"))
    wrong: list[str] = []
    for who in PRINCIPALS:
        if method == "WS":
            got = _ws(world, who)
            want = "hello" if (who.role is not None or rule.who == PUBLIC) else 1008
            if got != want:
                wrong.append(f"{who.key}: expected {want}, got {got}")
            continue
        what, ok = expected(rule, who, world, page)
        res = _send(world, method, path, rule, who, page)
        code = res.status_code
        refused = code in (401, 403) if ok is None else code not in ok
        if code >= 500 or refused:
            wrong.append(f"{who.key}: expected {what}, got {code} {res.text[:120]}")
        elif what.startswith("303") and not res.headers.get("location", "").startswith("/login"):
            wrong.append(f"{who.key}: expected {what}, went to {res.headers.get('location')}")
    if rule.who == BRIDGE:  # and the channel's own key does get in
        res = world.client.post(_fill(world, path), json={}, headers={"Authorization": f"Bearer {BRIDGE_KEY}"})
        if res.status_code in (401, 403) or res.status_code >= 500:
            wrong.append(f"the bridge key: expected allowed, got {res.status_code}")
    assert not wrong, f"{method} {path} ({rule.who if isinstance(rule.who, str) else sorted(rule.who)}):\n" + \
        "\n".join(wrong)


# ------------------------------------------------------------------------------------ centre isolation


def _json(res: Any) -> Any:
    assert res.status_code == 200, (res.status_code, res.text[:300])
    return res.json()


def test_centre_the_wallboard_shows_a_lead_their_own_centre(world: World) -> None:
    for who, mine, theirs in ((LEAD_N, "north", "south"), (LEAD_S, "south", "north")):
        board = _json(world.get("/api/lead/board", who))
        assert {q["queue"] for q in board["queues"]} == {mine}, who.key
        assert {c["queue"] for c in board["calls"]} == {mine}, who.key
        assert theirs not in {q for s in board["seats"] for q in s["queues"]}, who.key


def test_centre_live_queues_are_the_leads_own_centres(world: World) -> None:
    got = {q["queue"] for q in _json(world.get("/api/queues", LEAD_S))}
    assert got == {"south"}, f"a south lead sees the queues {sorted(got)}"


def test_centre_live_seats_are_the_leads_own_centres(world: World) -> None:
    got = {s["seat"] for s in _json(world.get("/api/seats", LEAD_S))}
    assert got == {SEAT_S}, f"a south lead sees the seats {sorted(got)}"


def test_centre_live_calls_are_the_leads_own_centres(world: World) -> None:
    got = {c["call_id"] for c in _json(world.get("/api/calls/live", LEAD_S))}
    assert got == {"live-south"}, f"a south lead sees the live calls {sorted(got)}"


def test_centre_the_call_log_is_the_leads_own_centres(world: World) -> None:
    rows = _json(world.get("/api/calls", LEAD_S))
    assert {r["id"] for r in rows} == {"call-south-1", "missed-south-1"}, [r["id"] for r in rows]
    assert _json(world.get("/api/calls", LEAD_S, params={"queue": "north"})) == []


def test_centre_the_callback_list_is_the_leads_own_centres(world: World) -> None:
    rows = _json(world.get("/api/callbacks", LEAD_S))
    assert [r["id"] for r in rows] == ["missed-south-1"], [r["id"] for r in rows]


def test_centre_an_operator_sees_their_own_centres_queues_and_callbacks(world: World) -> None:
    queues = {q["queue"] for q in _json(world.get("/api/queues", OP_S))}
    assert queues == {"south"}, f"a south operator sees the queues {sorted(queues)}"
    missed = [r["id"] for r in _json(world.get("/api/callbacks", OP_S))]
    assert missed == ["missed-south-1"], f"a south operator's callback list: {missed}"


def test_centre_qa_sees_their_own_centres_calls_and_recordings(world: World) -> None:
    calls = {r["id"] for r in _json(world.get("/api/calls", QA_S))}
    assert calls == {"call-south-1", "missed-south-1"}, f"a south QA reviewer's call log: {sorted(calls)}"
    recs = {r["id"] for r in _json(world.get("/api/recordings", QA_S))}
    assert world.rec_s in recs and world.rec_n not in recs, f"a south QA reviewer's recordings: {sorted(recs)}"


def _alert(world: World, call_id: str, queue: str) -> int:
    runtime = world.app.state.lead
    [alert] = runtime.engine.feed({"event": "AnswerRuleBreached", "call_id": call_id, "queue": queue,
                                   "at": time.time(), "caller_num": "13953012345", "waited_ms": 16000,
                                   "seats_rung": [SEAT_N if queue == "north" else SEAT_S]})
    return alert.id


def test_centre_alerts_are_the_leads_own_centres(world: World) -> None:
    north, south = _alert(world, "alert-north-1", "north"), _alert(world, "alert-south-1", "south")
    got = {a["id"]: a["queue"] for a in _json(world.get("/api/lead/alerts", LEAD_S))}
    assert south in got and north not in got, f"a south lead's alerts: {got}"


def test_centre_the_wallboards_alerts_are_the_leads_own_centres(world: World) -> None:
    north, south = _alert(world, "alert-north-4", "north"), _alert(world, "alert-south-4", "south")
    board = {a["id"] for a in _json(world.get("/api/lead/board", LEAD_S))["alerts"]}
    assert south in board and north not in board, sorted(board)


def test_centre_a_lead_cannot_acknowledge_another_centres_alert(world: World) -> None:
    north = _alert(world, "alert-north-2", "north")
    res = world.post(f"/api/lead/alerts/{north}/ack", LEAD_S)
    assert res.status_code in (403, 404), (res.status_code, res.text[:200])


def test_centre_the_acknowledgement_log_is_the_leads_own_centres(world: World) -> None:
    north = _alert(world, "alert-north-3", "north")
    assert world.post(f"/api/lead/alerts/{north}/ack", LEAD_N).status_code == 200
    rows = _json(world.get("/api/lead/alerts/log", LEAD_S))
    assert all(r["queue"] != "north" for r in rows), [(r["queue"], r["detail"]) for r in rows]


def test_the_worlds_calls_fall_on_one_day_of_the_centre_whatever_the_hour_the_tests_run() -> None:
    tz = ZoneInfo("Asia/Shanghai")
    for hh, mm in ((0, 5), (0, 16), (12, 0), (23, 59)):
        now = datetime(2026, 12, 7, hh, mm, tzinfo=tz).timestamp()
        at = calls_at(tz, now)
        days = {datetime.fromtimestamp(t, tz).date() for t in (at - 300, at + 120)}  # the first start, the last end
        assert len(days) == 1 and at <= now - 60, (hh, mm, days)


def _report(world: World, who: Who) -> dict[str, Any]:
    return _json(world.get("/api/lead/reports", who, params={"kind": "day", "day": world.day}))["calls"]


def test_centre_reports_count_the_leads_own_centres_calls(world: World) -> None:
    north, south = _report(world, LEAD_N), _report(world, LEAD_S)
    assert {o["operator"] for o in south["per_operator"]} == {OP_S.username}, south["per_operator"]
    assert south["offered"] == 2, south["offered"]  # the south call and the south missed call
    assert {o["operator"] for o in north["per_operator"]} == {OP_N.username}, north["per_operator"]


def test_centre_the_report_export_holds_the_leads_own_centres_calls(world: World) -> None:
    from openpyxl import load_workbook

    res = world.get("/api/lead/reports.xlsx", LEAD_S, params={"kind": "day", "day": world.day})
    assert res.status_code == 200, res.text[:200]
    book = load_workbook(io.BytesIO(res.content), read_only=True)
    cells = {str(c) for sheet in book.worksheets for row in sheet.iter_rows(values_only=True) for c in row if c}
    assert OP_N.username not in cells, "the south lead's export names the north operator"
    assert OP_S.username in cells


def test_centre_approvals_are_the_leads_own_centres(world: World) -> None:
    ids = {a["id"] for a in _json(world.get("/api/approvals", LEAD_S))}
    assert world.approval_s in ids and world.approval_n not in ids, sorted(ids)


def test_centre_a_lead_cannot_decide_another_centres_approval(world: World) -> None:
    res = world.post(f"/api/approvals/{world.approval_n}/refuse", LEAD_S, json={})
    assert res.status_code in (403, 404), (res.status_code, res.text[:200])


def test_centre_recordings_list_the_leads_own_centres(world: World) -> None:
    ids = {r["id"] for r in _json(world.get("/api/recordings", LEAD_S))}
    assert world.rec_s in ids and world.rec_n not in ids, sorted(ids)


NORTH_RECORDING_PATHS = ("/api/recordings/{id}", "/qa/{id}", "/api/qa/scores?recording_id={id}",
                         "/api/recordings/{id}/audio/mixed", "/api/recordings/{id}/peaks")


@pytest.mark.parametrize("path", NORTH_RECORDING_PATHS)
@pytest.mark.parametrize("who", [LEAD_S, QA_S], ids=lambda w: w.key)
def test_centre_another_centres_recording_is_hidden(world: World, who: Who, path: str) -> None:
    res = world.get(path.format(id=world.rec_n), who)
    hidden = {403, 404} if "/audio/" in path or path.endswith("/peaks") else {404}  # audio: a refusal hides it too
    assert res.status_code in hidden, (res.status_code, res.text[:200])
    assert world.get(path.format(id=world.rec_s), who).status_code not in (401, 403, 404)  # their own is there


def test_centre_a_lead_cannot_ask_to_hear_another_centres_recording(world: World) -> None:
    res = world.post("/api/recordings/access-requests", LEAD_S, json={"recording_id": world.rec_n, "reason": "复核"})
    assert res.status_code in (403, 404), (res.status_code, res.text[:200])


def test_centre_a_lead_cannot_approve_listening_to_another_centres_recording(world: World) -> None:
    made = world.post("/api/recordings/access-requests", OP_N, json={"recording_id": world.rec_n, "reason": "复核"})
    assert made.status_code == 201, made.text
    res = world.post(f"/api/recordings/access-requests/{made.json()['id']}/approve", LEAD_S)
    assert res.status_code in (403, 404), (res.status_code, res.text[:200])


def test_centre_a_lead_lists_only_their_own_centres_listening_requests(world: World) -> None:
    made = world.post("/api/recordings/access-requests", OP_N, json={"recording_id": world.rec_n, "reason": "复听"})
    assert made.status_code == 201, made.text
    listed = {r["id"] for r in _json(world.get("/api/recordings/access-requests", LEAD_S))}
    assert made.json()["id"] not in listed, "a south lead lists the north operator's listening request"


def test_centre_the_recording_access_log_is_the_leads_own_centres(world: World) -> None:
    assert world.get(f"/api/recordings/{world.rec_n}/audio/mixed", LEAD_N).status_code == 200
    got = _json(world.get("/api/recordings/access-log", LEAD_S))
    rows = got["items"] if isinstance(got, dict) else got
    assert all(r["recording_id"] != world.rec_n for r in rows), "a south lead reads who heard a north recording"


def test_centre_the_recording_access_log_export_is_the_leads_own_centres(world: World) -> None:
    from openpyxl import load_workbook

    assert world.get(f"/api/recordings/{world.rec_n}/audio/mixed", LEAD_N).status_code == 200
    res = world.get("/api/recordings/access-log/export", LEAD_S, params={"fmt": "xlsx"})
    assert res.status_code == 200, res.text[:200]
    book = load_workbook(io.BytesIO(res.content), read_only=True)
    rows = [row for sheet in book.worksheets for row in sheet.iter_rows(values_only=True)]
    column = rows[0].index("录音")
    north = [r for r in rows[1:] if str(r[column]) == str(world.rec_n)]
    assert not north, f"a south lead's export lists who heard or asked for a north recording: {north[:3]}"


def _until_marker(ws: Any) -> list[dict[str, Any]]:
    """Every message up to the marker (a LinkStatus, which everyone gets, published last)."""
    got = []
    while True:
        msg = ws.receive_json()
        if msg.get("type") == "link_status" and msg.get("detail") == "marker":
            return got
        got.append(msg)


def _north_and_south_traffic(world: World) -> None:
    bus = world.app.state.bus
    for queue, seat, op in (("north", SEAT_N, OP_N), ("south", SEAT_S, OP_S)):
        cid = f"ws-{queue}-1"
        bus.publish_nowait(CallOffered(at=1.0, call_id=cid, queue=queue, caller_num="13953012345", caller_name=""))
        bus.publish_nowait(SeatRinging(at=2.0, call_id=cid, seat=seat, queue=queue, caller_num="13953012345",
                                       caller_name="", waited_ms=1000, operator=op.username))
        bus.publish_nowait(CallAnswered(at=3.0, call_id=cid, seat=seat, queue=queue, wait_ms=2000, within_rule=True))
        bus.publish_nowait(AnswerRuleBreached(at=4.0, call_id=f"ws-{queue}-2", queue=queue, caller_num="1395301",
                                              waited_ms=16000, rule_s=15, seats_rung=(seat,)))
        bus.publish_nowait(SeatStateChanged(at=5.0, seat=seat, state="busy", previous="ready", reason="就餐",
                                            operator=op.username))
    # the lead runtime raises its own alert (a lead_alert) from each breach: wait for both, then the marker
    engine = world.app.state.lead.engine
    deadline = time.monotonic() + 10
    while not {"ws-north-2", "ws-south-2"} <= {a.call_id for a in engine.alerts.values()}:
        assert time.monotonic() < deadline, "the lead runtime raised no alert from the breaches"
        time.sleep(0.02)
    bus.publish_nowait(LinkStatus(at=6.0, up=True, detail="marker"))


def _mentions_north(msg: dict[str, Any]) -> bool:
    alert = msg.get("alert") if isinstance(msg.get("alert"), dict) else {}
    return "north" in (msg.get("queue"), alert.get("queue")) or SEAT_N in (
        msg.get("seat"), msg.get("ringing_seat"), alert.get("subject_seat")) or "ws-north" in str(msg.get("call_id"))


@pytest.mark.timeout(60)
def test_centre_websocket_gives_a_lead_only_their_own_centres_traffic(world: World) -> None:
    with world.client.websocket_connect("/ws", headers=world.headers(LEAD_S)) as south, \
            world.client.websocket_connect("/ws", headers=world.headers(LEAD_N)) as north:
        assert south.receive_json()["type"] == north.receive_json()["type"] == "hello"
        _north_and_south_traffic(world)
        seen_s, seen_n = _until_marker(south), _until_marker(north)
    assert any("ws-south" in str(m.get("call_id")) for m in seen_s)  # the south lead does follow the south
    assert any(m.get("type") == "lead_alert" and m["alert"]["queue"] == "south" for m in seen_s)
    assert any("ws-north" in str(m.get("call_id")) for m in seen_n)
    leaked = [(m.get("type"), m.get("event"), m.get("call_id") or m.get("seat")) for m in seen_s if _mentions_north(m)]
    assert not leaked, f"the south lead's websocket carried the north centre's traffic: {leaked}"


# ------------------------------------------------------------------------------------ department isolation


def test_department_another_departments_ticket_is_hidden(world: World) -> None:
    t = world.ticket
    for path in (f"/api/tickets/{t}", f"/api/tickets/{t}/history", f"/api/dept/tickets/{t}",
                 f"/api/tickets/{t}/attachments", f"/api/tickets/{t}/attachments/{world.attachment}",
                 f"/api/notifications?ticket_id={t}"):
        res = world.get(path, DEPT2_LEAD)
        assert res.status_code == 404, (path, res.status_code)
        assert world.get(path, DEPT1).status_code == 200, path
    up = world.post(f"/api/tickets/{t}/attachments", DEPT2_LEAD, files={"file": ("x.jpg", JPEG, "image/jpeg")})
    assert up.status_code == 404, ("upload", up.status_code)
    for action in ("accept", "start"):
        res = world.post(f"/api/tickets/{t}/{action}", DEPT2_LEAD, json={})
        assert res.status_code == 404, (action, res.status_code)


def test_department_lists_hold_only_the_departments_tickets(world: World) -> None:
    for who, mine, theirs in ((DEPT1, world.ticket, world.ticket2), (DEPT2_LEAD, world.ticket2, world.ticket)):
        listed = {t["id"] for t in _json(world.get("/api/tickets", who, params={"per_page": 100}))["items"]}
        assert mine in listed and theirs not in listed, (who.key, sorted(listed))
        portal = {t["id"] for t in _json(world.get("/api/dept/tickets", who, params={"view": "all"}))["items"]}
        assert mine in portal and theirs not in portal, (who.key, sorted(portal))
        found = _json(world.get("/api/tickets", who, params={"q": "停水" if who is DEPT1 else "夜市"}))["items"]
        assert theirs not in {t["id"] for t in found}, who.key


def test_department_never_sees_a_confidential_reporter(world: World) -> None:
    start = world.app.state.bus.last_seq
    for who in (DEPT1, DEPT1_LEAD):
        for path in (f"/api/tickets/{world.secret}", f"/api/dept/tickets/{world.secret}",
                     "/api/tickets?per_page=100", "/api/dept/tickets?view=all", f"/api/tickets/{world.secret}/history"):
            res = world.get(path, who)
            assert res.status_code == 200, (who.key, path, res.status_code)
            assert SECRET_NUMBER not in res.text and SECRET_NAME not in res.text, (who.key, path)
        by_number = _json(world.get("/api/tickets", who, params={"caller_number": SECRET_NUMBER}))["items"]
        assert by_number == [], who.key  # nor find the ticket by the reporter's identity
    assert world.get(f"/api/tickets/{world.secret}", OP_N).json()["caller_name"] == SECRET_NAME  # the centre has it
    msgs = [e.message() for e in world.app.state.bus.replay_nowait(start).envelopes]
    assert SECRET_NUMBER not in str(msgs) and SECRET_NAME not in str(msgs)


@pytest.mark.timeout(60)
def test_department_websocket_gets_only_its_own_tickets_changes(world: World) -> None:
    with world.client.websocket_connect("/ws", headers=world.headers(DEPT2_LEAD)) as two, \
            world.client.websocket_connect("/ws", headers=world.headers(DEPT1)) as one:
        assert two.receive_json()["type"] == one.receive_json()["type"] == "hello"
        note = world.post(f"/api/tickets/{world.ticket}/attachments", OP_N,
                          files={"file": ("补充.jpg", JPEG, "image/jpeg")})
        assert note.status_code == 201, note.text
        world.app.state.bus.publish_nowait(LinkStatus(at=7.0, up=True, detail="marker"))
        seen_two, seen_one = _until_marker(two), _until_marker(one)
    assert any(m.get("ticket_id") == world.ticket for m in seen_one)
    leaked = [m for m in seen_two if m.get("ticket_id") == world.ticket]
    assert not leaked, f"department 2's websocket carried department 1's ticket: {leaked}"
