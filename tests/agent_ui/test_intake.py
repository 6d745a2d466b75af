"""网络来件: the bridges' keyed entry (constant-time keys, idempotent by external_id), the operators'
queue (who may use it, 受理 into a ticket with the channel set, 不受理 with a reason, live over the
websocket), and the 3-minute response measured by the store's injected clock on the wallboard's
board and in the report."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from io import BytesIO
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from agent_ui.ws import Audience
from hotline.bus import to_message
from hotline.identity import Principal, Role
from hotline.settings import Settings
from launch.compose import web_app
from testkit.auth import Bearer, use
from tests.ticketing.conftest import Clock
from ticketing.calendar import TZ
from ticketing.schemas import SubmissionChanged

WECHAT_KEY = "wx-" + "k" * 40
SMS_KEY = "sms-" + "s" * 40
REPORT = {"text": "中华路与人民路路口的红绿灯不亮了，早高峰很危险", "contact": "13953012345", "place": "牡丹区中华路"}


def bearer(username: str, role: Role, **kw: object) -> Bearer:
    return Bearer(username, role, **kw)


OP = bearer("op1024", Role.OPERATOR, job_number="1024")
LEAD = bearer("lead", Role.LEAD)


def key(k: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {k}"}


def ticket_form(**over: object) -> dict[str, object]:
    body: dict[str, object] = {"title": "路口红绿灯不亮", "category": "一般诉求", "caller_number": "13953012345",
                               "contact": "13953012345", "matter_place": "牡丹区中华路",
                               "matter_course": REPORT["text"]}
    return body | over


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(var_dir=tmp_path, services=[], intake_bridge_keys={"wechat": WECHAT_KEY, "sms": SMS_KEY})
    with use(TestClient(web_app(settings))) as c:
        yield c


# ------------------------------------------------------------------------------------ bridges

def test_without_keys_the_bridge_entry_refuses_everything(tmp_path: Path) -> None:
    with use(TestClient(web_app(Settings(var_dir=tmp_path, services=[])))) as c:
        for headers in ({}, key(""), key(WECHAT_KEY), key("\0"), OP):
            got = c.post("/api/intake/wechat", json={**REPORT, "external_id": "m1"}, headers=headers)
            assert got.status_code == 401 and "接口密钥" in got.json()["detail"], headers
        assert c.app.state.store.intake.pending() == []


def test_each_bridge_has_its_key_and_every_refusal_is_the_same(client: TestClient) -> None:
    refusals = [client.post(f"/api/intake/{channel}", json={**REPORT, "external_id": "m1"}, headers=headers)
                for channel, headers in (("wechat", {}), ("wechat", key(WECHAT_KEY[:-1])), ("wechat", key(SMS_KEY)),
                                         ("sms", key(WECHAT_KEY)), ("api", key(WECHAT_KEY)), ("web", key(WECHAT_KEY)),
                                         ("nonsense", key(WECHAT_KEY)), ("wechat", {"Authorization": WECHAT_KEY}))]
    first = refusals[0]
    assert first.status_code == 401 and first.headers["www-authenticate"] == "Bearer"
    assert {(r.status_code, r.content) for r in refusals} == {(first.status_code, first.content)}
    assert client.app.state.store.intake.pending() == []


def test_a_bridge_message_is_queued_once_however_often_it_is_sent(client: TestClient) -> None:
    sent = {**REPORT, "contact": "wx:o6_bmjrPTlm6_2sgVt7hMZOPfL2M", "external_id": "wx-msg-7781"}
    first = client.post("/api/intake/wechat", json=sent, headers=key(WECHAT_KEY))
    assert first.status_code == 200, first.text
    again = client.post("/api/intake/wechat", json=sent, headers=key(WECHAT_KEY))
    assert again.json() == first.json() and first.json()["channel"] == "wechat"
    sms = client.post("/api/intake/sms", json={**REPORT, "external_id": "wx-msg-7781"}, headers=key(SMS_KEY))
    assert sms.json()["id"] != first.json()["id"]  # the same id from another bridge is another message
    assert [(s.channel_label, s.contact) for s in client.app.state.store.intake.pending()] == [
        ("微信", sent["contact"]), ("短信", REPORT["contact"])]
    for body, words in (({**REPORT}, "external_id"), ({**REPORT, "external_id": "x", "text": "短"}, "反映内容"),
                        ({**REPORT, "external_id": "x", "status": "confirmed"}, "不认识的字段")):
        got = client.post("/api/intake/wechat", json=body, headers=key(WECHAT_KEY))
        assert got.status_code == 422 and words in got.json()["detail"], got.text
    assert client.post("/api/intake/wechat", content=b"[", headers=key(WECHAT_KEY)).status_code == 422


# ------------------------------------------------------------------------------------ the queue

def test_only_operators_and_leads_use_the_queue(client: TestClient) -> None:
    made = client.post("/api/public/submissions", json=REPORT).json()
    for role in (Role.DEPARTMENT, Role.QA):
        who = bearer("someone", role, department_id=1 if role is Role.DEPARTMENT else None)
        for method, path in (("GET", "/intake"), ("GET", "/api/intake/queue"),
                             ("POST", f"/api/intake/queue/{made['id']}/confirm"),
                             ("POST", f"/api/intake/queue/{made['id']}/reject")):
            assert client.request(method, path, json={}, headers=who).status_code == 403, (role, path)
    assert client.get("/api/intake/queue").status_code == 401
    assert client.get("/intake", headers={"Accept": "text/html"}, follow_redirects=False).headers["location"] == \
        "/login?next=/intake"
    page = client.get("/intake", headers=OP)
    assert page.status_code == 200 and "网络来件" in page.text and 'href="/console"' in page.text
    assert 'href="/lead"' in client.get("/intake", headers=LEAD).text
    assert 'id="intake-link"' in client.get("/console", headers=OP).text  # the console's badge


def test_confirm_makes_the_ticket_with_the_channel_and_the_query_code_once(client: TestClient) -> None:
    made = client.post("/api/public/submissions", json=REPORT).json()
    [queued] = client.get("/api/intake/queue", headers=OP).json()["items"]
    assert (queued["id"], queued["contact"], queued["status"], queued["channel_label"]) == (
        made["id"], REPORT["contact"], "pending", "网站")
    bad = client.post(f"/api/intake/queue/{made['id']}/confirm", json=ticket_form(category="闲聊"), headers=OP)
    assert bad.status_code == 422 and "诉求类别" in bad.json()["detail"]  # and the submission is still free:
    ticket = client.post(f"/api/intake/queue/{made['id']}/confirm", json=ticket_form(), headers=OP)
    assert ticket.status_code == 200, ticket.text
    t = ticket.json()
    assert (t["channel"], t["status"], t["operator"]) == ("网站", "registered", "1024")
    assert len(t["query_code"]) == 6 and t["number"]
    twice = client.post(f"/api/intake/queue/{made['id']}/confirm", json=ticket_form(), headers=LEAD)
    assert twice.status_code == 422 and "已由op1024处理" in twice.json()["detail"]
    assert client.get("/api/intake/queue", headers=OP).json()["items"] == []
    shown = client.post("/api/public/status", json={"number": t["number"], "code": t["query_code"]}).json()
    assert shown["state"] == "已受理，正在分派承办单位"
    assert client.post("/api/intake/queue/999/confirm", json=ticket_form(), headers=OP).status_code == 404
    assert client.post("/api/intake/queue/abc/confirm", json=ticket_form(), headers=OP).status_code == 422


def test_reject_needs_a_reason_and_keeps_it(client: TestClient) -> None:
    made = client.post("/api/public/submissions", json=REPORT).json()
    for body in ({}, {"reason": "  "}, {"reason": 5}):
        got = client.post(f"/api/intake/queue/{made['id']}/reject", json=body, headers=LEAD)
        assert got.status_code == 422 and got.json()["detail"] == "请填写不受理的原因"
    done = client.post(f"/api/intake/queue/{made['id']}/reject", json={"reason": "重复来件，已并入工单"}, headers=LEAD)
    assert done.status_code == 200
    assert (done.json()["status"], done.json()["note"]) == ("rejected", "重复来件，已并入工单")
    assert client.get("/api/intake/queue", headers=OP).json()["items"] == []


def test_arrivals_and_decisions_reach_operators_and_leads_live(client: TestClient) -> None:
    with client.websocket_connect("/ws", headers=dict(OP)) as op, \
            client.websocket_connect("/ws", headers=dict(LEAD)) as lead:
        assert op.receive_json()["type"] == lead.receive_json()["type"] == "hello"
        made = client.post("/api/public/submissions", json=REPORT).json()
        for ws in (op, lead):
            msg = ws.receive_json()
            assert (msg["type"], msg["submission_id"], msg["status"], msg["channel"]) == (
                "intake_update", made["id"], "pending", "web")
        client.post(f"/api/intake/queue/{made['id']}/confirm", json=ticket_form(), headers=OP)
        got = [op.receive_json(), op.receive_json()]
        assert [(m["type"], m.get("status")) for m in got] == [("intake_update", "confirmed"),
                                                               ("ticket_update", "registered")]
        assert "13953012345" not in str(got)  # the bus carries ids and states, no reporter data
    event = to_message(SubmissionChanged(at=0.0, submission_id=1, channel="web", status="pending"), seq=1)
    for who in (Principal("dept1", Role.DEPARTMENT, department_id=1), Principal("qa", Role.QA)):
        assert not Audience(who, lambda _u: None).visible(event)


# ------------------------------------------------------------------------------------ 3 minutes

def test_within_three_minutes_is_on_time_later_is_late_on_the_board_and_in_the_report(client: TestClient) -> None:
    clock = Clock(datetime(2026, 11, 16, 9, 30, tzinfo=TZ))  # a Monday morning, by the store's clock
    client.app.state.store.ctx.clock = clock
    quick = client.post("/api/public/submissions", json=REPORT).json()
    clock.advance(seconds=30)
    slow = client.post("/api/intake/wechat", json={**REPORT, "external_id": "m-2"}, headers=key(WECHAT_KEY)).json()
    clock.advance(seconds=150)  # 09:33:00 — the first is 3:00 old: still on time
    assert client.post(f"/api/intake/queue/{quick['id']}/confirm", json=ticket_form(), headers=OP).status_code == 200
    clock.advance(seconds=31)  # 09:33:31 — the second is 3:01 old
    assert client.post(f"/api/intake/queue/{slow['id']}/confirm", json=ticket_form(), headers=OP).status_code == 200
    waiting = client.post("/api/public/submissions", json=REPORT).json()

    board = client.get("/api/lead/board", headers=LEAD).json()
    f = board["intake"]
    assert (f["received"], f["on_time"], f["late"], f["pct_on_time"], f["pending"]) == (3, 1, 1, 50.0, 1)
    assert (f["oldest_wait_s"], f["target_s"], board["targets"]["intake"]) == (0.0, 180, 95.0)
    clock.advance(minutes=4)  # nobody takes the third: past its mark, it counts as late while it waits
    f = client.get("/api/lead/board", headers=LEAD).json()["intake"]
    assert (f["on_time"], f["late"], f["pct_on_time"], f["pending"], f["oldest_wait_s"]) == (1, 2, 33.3, 1, 240.0)

    report = client.get("/api/lead/reports?kind=day&day=2026-11-16", headers=LEAD).json()
    assert report["intake"] == {"received": 3, "handled": 2, "on_time": 1, "late": 2, "pct_on_time": 33.3,
                                "target_s": 180}
    assert report["intake_previous"]["received"] == 0 and report["intake_previous"]["pct_on_time"] is None
    assert client.get("/api/lead/reports?kind=day&day=2026-11-17", headers=LEAD).json()["intake"]["received"] == 0
    xlsx = client.get("/api/lead/reports.xlsx?kind=day&day=2026-11-16", headers=LEAD)
    overview = {r[0]: r[1:] for r in load_workbook(BytesIO(xlsx.content))["话务总览"].iter_rows(values_only=True)}
    assert overview["网络来件"] == ("3", "0") and overview["网络来件 3 分钟响应率"] == ("33.3 %", "—")
    assert overview["网络来件超时"] == ("2", "0")
    assert waiting["id"] in [s["id"] for s in client.get("/api/intake/queue", headers=OP).json()["items"]]
