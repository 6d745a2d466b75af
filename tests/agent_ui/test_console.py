"""The console's API: authorisation on every route (and the websocket), CSRF, approvals, and on a
real Asterisk the rule refusal that becomes an approval the lead grants."""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from agent_ui import approvals, console
from hotline.identity import Role
from hotline.settings import Settings
from launch.compose import web_app
from testkit.auth import Bearer, use
from tests.support.routes import flat_routes

# reachable without a session: the login itself, the page that asks for it, the root redirect, the
# logout (which ends whatever session it is given), production's first-admin setup (its one-time
# token is the credential); and, deliberately, what citizens use without an account
# (agent_ui.public: rate-limited, no cookie)
PUBLIC = {"/api/auth/login", "/login", "/", "/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect",
          "/api/auth/logout", "/setup", "/api/auth/setup",
          "/status", "/report", "/api/public/status", "/api/public/rate", "/api/public/submissions"}
MINE = {console.__name__, approvals.__name__}


def bearer(username: str, role: Role, job_number: str = "") -> dict[str, str]:
    return dict(Bearer(username, role, job_number=job_number))


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with use(TestClient(web_app(Settings(var_dir=tmp_path_factory.mktemp("var"), services=[])))) as c:
        yield c


def _concrete(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: "approve" if m.group(1) == "verdict" else "1", path)



def _routes(client: TestClient) -> list[tuple[str, str, object]]:
    out = []
    for r in flat_routes(client.app.routes):
        if isinstance(r, APIRoute) and r.path not in PUBLIC:
            for method in sorted(r.methods - {"HEAD"}):
                out.append((method, _concrete(r.path), r.endpoint))
    return out


def test_every_route_of_the_app_refuses_anonymous_access(client: TestClient) -> None:
    routes = _routes(client)
    assert any(p == "/api/seat/signin" for _, p, _ in routes) and any(p == "/console" for _, p, _ in routes)
    for method, path, _ in routes:
        res = client.request(method, path, json={}, headers={"X-Requested-With": "test"})
        assert res.status_code == 401, (method, path, res.status_code)
        assert "登录" in res.json()["detail"]


@pytest.mark.parametrize("role", [Role.DEPARTMENT, Role.QA])
def test_the_console_and_approval_routes_refuse_other_roles(client: TestClient, role: Role) -> None:
    mine = [(m, p) for m, p, fn in _routes(client) if getattr(fn, "__module__", "") in MINE]
    assert len(mine) >= 15, mine  # every console and approvals route is in the loop
    for method, path in mine:
        res = client.request(method, path, json={}, headers=bearer("someone", role))
        assert res.status_code == 403, (method, path, res.status_code)
        assert res.json()["detail"] == "当前角色无权访问此功能"


def test_operator_only_routes_refuse_a_lead_and_lead_only_decisions_refuse_an_operator(client: TestClient) -> None:
    lead, op = bearer("lead", Role.LEAD), bearer("op1024", Role.OPERATOR)
    for method, path, fn in _routes(client):
        if getattr(fn, "__module__", "") == console.__name__:
            assert client.request(method, path, json={}, headers=lead).status_code == 403, path
    for verdict in ("approve", "refuse"):
        assert client.post(f"/api/approvals/1/{verdict}", json={}, headers=op).status_code == 403


def test_the_websocket_refuses_anonymous_and_foreign_pages(client: TestClient) -> None:
    with pytest.raises(WebSocketDisconnect) as anon, client.websocket_connect("/ws") as ws:
        ws.receive_json()
    assert anon.value.code == 1008
    evil = bearer("op1024", Role.OPERATOR) | {"Origin": "http://evil.example"}
    with pytest.raises(WebSocketDisconnect) as foreign, client.websocket_connect("/ws", headers=evil) as ws:
        ws.receive_json()
    assert foreign.value.code == 1008


def test_cookie_sessions_need_the_csrf_header_for_state_changes(tmp_path: Path) -> None:
    with use(TestClient(web_app(Settings(var_dir=tmp_path, services=[])))) as c:
        assert c.post("/api/auth/login", json={"username": "op1024", "password": "demo1024"}).status_code == 200
        # a form post from another site: no custom header, a "simple" content type
        forged = c.post("/api/seat/ready", content=b"x", headers={"Content-Type": "text/plain"})
        assert forged.status_code == 403 and "防跨站" in forged.json()["detail"]
        cross = c.post("/api/seat/ready", headers={"X-Requested-With": "hotline", "Origin": "http://evil.example"})
        assert cross.status_code == 403 and "来源" in cross.json()["detail"]
        # our own scripts send the header: the request reaches the route (no CTI running here: 503)
        assert c.post("/api/seat/ready", headers={"X-Requested-With": "hotline"}).status_code == 503
        assert c.get("/api/auth/me").status_code == 200  # reads need nothing more
        assert c.post("/api/auth/logout").status_code == 403
        assert c.post("/api/auth/logout", headers={"X-Requested-With": "hotline"}).status_code == 200


def test_each_role_lands_on_its_home(tmp_path: Path) -> None:
    with use(TestClient(web_app(Settings(var_dir=tmp_path, services=[])))) as c:
        for user, password, home in (("op1024", "demo1024", "/console"), ("lead", "demolead", "/lead"),
                                     ("qa", "demoqa", "/qa"), ("dept1", "demodept", "/dept"),
                                     ("dept1a", "demodept", "/dept"), ("admin", "demoadmin", "/admin")):
            c.post("/api/auth/login", json={"username": user, "password": password})
            assert c.get("/", follow_redirects=False).headers["location"] == home, user
            landed = c.get(home, headers={"Accept": "text/html"}, follow_redirects=False)
            assert landed.status_code == 200 and "<html" in landed.text, (user, landed.status_code)  # a page that works
        c.post("/api/auth/login", json={"username": "op1024", "password": "demo1024"})
        page = c.get("/console", headers={"Accept": "text/html"})
        assert page.status_code == 200 and "话务员工作台" in page.text and 'data-job="1024"' in page.text


def test_approvals_are_requested_for_the_own_seat_decided_once_and_published(tmp_path: Path) -> None:
    with use(TestClient(web_app(Settings(var_dir=tmp_path, services=[])))) as c:
        c.app.state.roster = {"op1024": "8001"}.copy  # who sits where (no CTI in this test)
        op, other, lead = bearer("op1024", Role.OPERATOR), bearer("op1025", Role.OPERATOR), bearer("lead", Role.LEAD)
        with c.websocket_connect("/ws", headers=op) as ws:
            assert ws.receive_json()["type"] == "hello"
            refused = c.post("/api/approvals", json={"kind": "busy", "seat": "8002", "reason": "就餐"}, headers=op)
            assert refused.status_code == 403  # not their seat
            made = c.post("/api/approvals", json={"kind": "busy", "seat": "8001", "reason": "就餐"}, headers=op)
            assert made.status_code == 201
            row = made.json()
            assert row["state"] == "pending" and row["kind_label"] == "示忙" and row["requested_by"] == "op1024"
            again = c.post("/api/approvals", json={"kind": "busy", "seat": "8001", "reason": "就餐"}, headers=op)
            assert again.json()["id"] == row["id"]  # one open request per seat and kind
            msg = ws.receive_json()
            assert msg["type"] == "seat_update" and msg["event"] == "ApprovalChanged" and msg["state"] == "pending"

            assert [a["id"] for a in c.get("/api/approvals?state=pending", headers=lead).json()] == [row["id"]]
            assert c.get("/api/approvals", headers=op).json()[0]["id"] == row["id"]
            assert c.get("/api/approvals", headers=other).json() == []  # op1025 is not at 8001

            decided = c.post(f"/api/approvals/{row['id']}/approve", json={"note": "去吧"}, headers=lead)
            # approved, but no CTI here to carry it out: the operator is told why
            assert decided.status_code == 200 and decided.json()["state"] == "failed"
            assert decided.json()["decided_by"] == "lead" and "执行失败" in decided.json()["note"]
            msg = ws.receive_json()
            while msg["state"] == "pending":  # the repeated request was told again
                msg = ws.receive_json()
            assert msg["event"] == "ApprovalChanged" and msg["state"] == "failed" and msg["decided_by"] == "lead"
            twice = c.post(f"/api/approvals/{row['id']}/refuse", json={}, headers=lead)
            assert twice.status_code == 409 and "无需再处理" in twice.json()["detail"]
        second = c.post("/api/approvals", json={"kind": "signout", "seat": "8001"}, headers=op).json()
        assert c.post(f"/api/approvals/{second['id']}/refuse", json={"note": "交班未完成"},
                      headers=lead).json()["state"] == "refused"
        assert c.post("/api/approvals/999/approve", json={}, headers=lead).status_code == 404


def test_rule_reasons_read_in_chinese() -> None:
    assert console._rule_zh("last 30 min of shift 08:00-16:00") == "班次 08:00-16:00 结束前 30 分钟内"
    assert console._rule_zh("first 30 min of shift 16:00-24:00") == "班次 16:00-24:00 开始后 30 分钟内"


# ------------------------------------------------------------------------------ real Asterisk


def _shift_starting_now() -> str:
    """A shift that began 5 minutes ago: we are in its first 30 minutes (restricted)."""
    now = dt.datetime.now(ZoneInfo("Asia/Shanghai"))
    start = now - dt.timedelta(minutes=5)
    end = start + dt.timedelta(hours=8)
    return f"{start:%H:%M}-{end:%H:%M}"


@pytest.fixture
def live(pbx, settings: Settings, tmp_path: Path) -> Iterator[TestClient]:
    cfg = Settings(var_dir=tmp_path / "var", ami_secret=settings.resolved_ami_secret(), services=["cti"],
                   cti_shifts=[_shift_starting_now()])
    with use(TestClient(web_app(cfg))) as c:
        deadline = time.monotonic() + 15
        while not c.app.state.cti.link.logged_in:
            assert time.monotonic() < deadline, "the bridge did not log in to AMI"
            time.sleep(0.1)
        yield c


@pytest.mark.asterisk
def test_busy_in_a_restricted_window_asks_the_lead_who_approves_and_the_seat_pauses(live: TestClient, pbx,
                                                                                     settings: Settings) -> None:
    seat = settings.seats[0]
    op, lead = bearer("op1024", Role.OPERATOR, "1024"), bearer("lead", Role.LEAD)
    assert live.post("/api/seat/signin", json={"seat": seat}, headers=op).json()["ok"] is True
    assert f"PJSIP/{seat}" in pbx.members(settings.queue_name)
    other = bearer("op1025", Role.OPERATOR)
    taken = live.post("/api/seat/signin", json={"seat": seat}, headers=other)
    assert taken.status_code == 409 and "已由 op1024 签入" in taken.json()["detail"]
    assert live.post("/api/seat/busy", json={"reason": "就餐"}, headers=other).json()["detail"] == \
        "尚未签入坐席 — 请选择坐席并签入"  # op1025 acts on no seat at all, least of all op1024's
    for path, body in (("/api/seat/hangup", None), ("/api/seat/transfer", {"target": "expert"}),
                       ("/api/seat/conference", {"number": "2001"})):
        idle = live.post(path, json=body, headers=op)
        assert idle.status_code == 409 and idle.json()["detail"] == "当前没有通话，无法执行此操作", path
    assert live.post("/api/seat/transfer", json={"target": "2001;x"}, headers=op).status_code == 422
    me = live.get("/api/seat", headers=op).json()
    assert me["seat"]["seat"] == seat and me["seat"]["state"] == "ready" and seat not in me["free_seats"]
    refused = live.post("/api/seat/busy", json={"reason": "就餐"}, headers=op)
    assert refused.status_code == 409, refused.text
    body = refused.json()
    assert "开始后 30 分钟内示忙需班长批准" in body["detail"] and body["approval"]["state"] == "pending"
    assert "paused" not in _member_line(pbx, settings, seat)
    decided = live.post(f"/api/approvals/{body['approval']['id']}/approve", json={}, headers=lead).json()
    assert decided["state"] == "approved"
    _until(lambda: "paused" in _member_line(pbx, settings, seat))
    assert live.post("/api/seat/ready", headers=op).json()["ok"] is True
    _until(lambda: "paused" not in _member_line(pbx, settings, seat))
    signout = live.post("/api/seat/signout", headers=op)
    assert signout.status_code == 409 and signout.json()["approval"]["kind"] == "signout"


def _member_line(pbx, settings: Settings, seat: str) -> str:
    return next((line for line in pbx.cli(f"queue show {settings.queue_name}").splitlines()
                 if f"PJSIP/{seat}" in line), "")


def _until(fn, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not fn():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)





# ------------------------------------------------------------------------------ the live path's helpers


def test_the_bus_builds_each_message_once_for_every_subscriber() -> None:
    from cti.domain import LinkStatus
    from hotline.bus import InProcessBus

    bus = InProcessBus()
    subs = [bus.subscribe(), bus.subscribe()]
    heard = []
    bus.add_listener(heard.append)
    env = bus.publish_nowait(LinkStatus(at=1.0, up=False, detail="x"))
    assert env.message() is env.message() and env.message()["seq"] == 1
    assert [s._q.get_nowait() for s in subs] == [env, env] and heard == [env]
    assert bus.replay_nowait(0, bus.epoch).envelopes == [env]
