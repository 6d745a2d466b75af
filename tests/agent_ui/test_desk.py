"""The centre's ticket desk (工单中心) and callback worklist (回访) over HTTP: who may use them, the
filters and saved views the page sends, one ticket's file, the confidential-read log (leads only),
the supervision list, the callback worklist with the IVR survey, and the seat's callback call id."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from agent_ui import desk
from hotline.calls import FinishedCall
from hotline.identity import Principal, Role
from hotline.settings import Settings
from launch.compose import web_app
from testkit.auth import Bearer, use
from ticketing.calendar import TZ
from ticketing.schemas import SystemActor
from ticketing.store import Store, context_from

ADMIN = SystemActor()
OP = Principal("op1024", Role.OPERATOR, job_number="1024")
OP2 = Principal("op1025", Role.OPERATOR, job_number="1025")
LEAD = Principal("lead", Role.LEAD)
QA = Principal("qa", Role.QA)
DEPT = Principal("dept1", Role.DEPARTMENT, department_id=1, dept_lead=True)


def bearer(who: Principal) -> Bearer:
    return Bearer(who)


@dataclass
class Desk:
    client: TestClient
    store: Store
    noise: object  # 夜间施工噪音: a confidential complaint by op1024, transferred to 城管局 with 水务集团
    lamp: object  # 路灯不亮: an enquiry by op1025, registered
    old: object  # a leak reported 10 days ago, transferred to 水务集团 and never accepted: overdue
    replied: object  # answered by 城管局, waiting for the callback


@pytest.fixture(scope="module")
def desk_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desk]:
    with use(TestClient(web_app(Settings(var_dir=tmp_path_factory.mktemp("var"), services=[])))) as c:
        store: Store = c.app.state.store
        city = store.directory.save({"name": "菏泽市城市管理局", "duties": "路灯 噪音 占道",
                                     "phones": "0530-555 1234（值班），0530-5555678"}, ADMIN)
        water = store.directory.save({"name": "菏泽市水务集团", "duties": "供水 停水 漏水"}, ADMIN)
        assert (city.id, water.id) == (1, 2)
        noise = store.tickets.create({"caller_number": "13953012345", "caller_name": "王先生", "category": "投诉举报",
                                      "subcategory": "举报", "confidential": True, "title": "夜间施工噪音扰民",
                                      "matter_place": "牡丹区花园小区", "matter_demand": "停止夜间施工"}, OP)
        store.actions.transfer(noise.id, city.id, "请核查夜间施工", ADMIN, co_department_ids=[water.id])
        lamp = store.tickets.create({"caller_number": "05305551234", "category": "咨询", "title": "路灯不亮怎么报修",
                                     "handling_mode": "工单转办"}, OP2)
        ten_days_ago = datetime.now(UTC) - timedelta(days=10)
        past = Store.on(context_from(c.app.state.settings, store.engine, clock=lambda: ten_days_ago))
        old = past.tickets.create({"caller_number": "13800000001", "category": "一般诉求", "title": "水管漏水",
                                   "matter_place": "中华路"}, OP2)
        past.actions.transfer(old.id, water.id, "请尽快维修", ADMIN)
        replied = store.tickets.create({"caller_number": "13953099999", "category": "一般诉求", "title": "井盖缺失",
                                        "contact": "0530-5550000"}, OP)
        store.actions.transfer(replied.id, city.id, "请处理", ADMIN)
        for step in ("accept", "start"):
            store.actions.act(replied.id, step, None, ADMIN)
        store.actions.reply(replied.id, "已补装井盖", ADMIN)
        # the call that produced it, and the citizen's IVR verdict on it
        store.calls.record(FinishedCall(call_id="1795400000.7", caller_num="13953099999", offered_at=1795400000.0,
                                        ended_at=1795400090.0, queue="hotline", seat="8001", operator="op1024",
                                        answered_at=1795400004.0, talk_s=80.0))
        store.calls.link_ticket("1795400000.7", replied.id)
        store.calls.record_survey("1795400000.7", 3)
        yield Desk(c, store, noise, lamp, old, replied)


def _concrete(path: str) -> str:
    return re.sub(r"\{\w+\}", "1", path)


def desk_routes() -> list[tuple[str, str]]:
    return [(m, _concrete(r.path)) for r in desk.router.routes if isinstance(r, APIRoute) for m in r.methods - {"HEAD"}]


def numbers(d: Desk, who: Principal = LEAD, **params: str) -> set[str]:
    res = d.client.get("/api/desk/tickets", params=params, headers=bearer(who))
    assert res.status_code == 200, res.text
    return {t["number"] for t in res.json()["items"]}


# ------------------------------------------------------------------------------------- access


def test_the_desk_refuses_anonymous_users_and_departments(desk_app: Desk) -> None:
    routes = desk_routes()
    assert {p for _, p in routes} >= {"/tickets", "/callbacks", "/api/desk/tickets", "/api/desk/tickets/1",
                                      "/api/desk/tickets/1/reads", "/api/desk/supervisions", "/api/desk/callbacks"}
    for method, path in routes:
        anonymous = desk_app.client.request(method, path)
        assert anonymous.status_code == 401 and "登录" in anonymous.json()["detail"], path
        dept = desk_app.client.request(method, path, headers=bearer(DEPT))
        assert dept.status_code == 403 and dept.json()["detail"] == "当前角色无权访问此功能", path
    # a page asked for by a browser without a session goes to the login page
    page = desk_app.client.get("/tickets", headers={"Accept": "text/html"}, follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "/login?next=/tickets"


def test_qa_reads_the_desk_but_callbacks_are_the_centres(desk_app: Desk) -> None:
    c = desk_app.client
    assert c.get("/tickets", headers=bearer(QA)).status_code == 200
    assert numbers(desk_app, QA) == numbers(desk_app, LEAD)
    for path in ("/callbacks", "/api/desk/callbacks"):
        assert c.get(path, headers=bearer(QA)).status_code == 403
    # what QA may do to a ticket is the workflow's: 督办, nothing else
    file = c.get(f"/api/desk/tickets/{desk_app.lamp.id}", headers=bearer(QA)).json()
    assert [a["action"] for a in file["actions"]] == ["supervise"]


# ------------------------------------------------------------------------------------- filters


def test_every_filter_of_the_row_narrows_the_table(desk_app: Desk) -> None:
    d = desk_app
    noise, lamp, old, replied = (t.number for t in (d.noise, d.lamp, d.old, d.replied))
    assert numbers(d) == {noise, lamp, old, replied}
    assert numbers(d, status="transferred") == {noise, old}
    assert numbers(d, status="registered,replied") == {lamp, replied}
    assert numbers(d, colour="red") == {old}
    assert numbers(d, colour="none") == set()
    assert numbers(d, department_id="2") == {old}  # the lead department, not a co-handling one
    assert numbers(d, category="咨询") == {lamp}
    ten_days_ago = (datetime.now(UTC) - timedelta(days=10)).astimezone(TZ).date()
    assert numbers(d, date_from=str(ten_days_ago), date_to=str(ten_days_ago)) == {old}
    assert numbers(d, date_from=str(ten_days_ago + timedelta(days=1))) == {noise, lamp, replied}
    assert numbers(d, number=noise) == {noise}  # a ticket number
    assert numbers(d, number="139 5301 2345") == {noise}  # a caller's number, as it is read out
    assert numbers(d, q="路灯") == {lamp}  # full text
    assert numbers(d, q="路灯", category="投诉举报") == set()


def test_saved_views_mine_overdue_and_callbacks(desk_app: Desk) -> None:
    d = desk_app
    assert numbers(d, OP, view="mine") == {d.noise.number, d.replied.number}  # taken under job number 1024
    assert numbers(d, OP2, view="mine") == {d.lamp.number, d.old.number}
    assert numbers(d, OP, view="overdue") == {d.old.number}
    assert numbers(d, OP, view="callback") == {d.replied.number}
    page = d.client.get("/api/desk/tickets", params={"view": "callback", "q": "井盖"}, headers=bearer(LEAD)).json()
    # the export link sends the same store query the table used
    assert page["query"] == {"status": ["replied"], "q": "井盖", "sort": "current_due"}
    export = d.client.get("/api/tickets/export", params=page["query"] | {"format": "csv"}, headers=bearer(LEAD))
    assert export.status_code == 200 and d.replied.number in export.text and d.noise.number not in export.text
    counts = d.client.get("/api/desk/counts", headers=bearer(OP)).json()
    assert counts["overdue"] == 1 and counts["callback"] == 1


def test_paging_counts_the_matches(desk_app: Desk) -> None:
    got = desk_app.client.get("/api/desk/tickets", params={"per_page": "3", "page": "2"}, headers=bearer(LEAD)).json()
    assert got["total"] == 4 and got["page"] == 2 and len(got["items"]) == 1


@pytest.mark.parametrize(("params", "says"), [
    ({"colour": "purple"}, "颜色取值无效"), ({"status": "lost"}, "状态取值无效"),
    ({"category": "闲聊"}, "分类取值无效"), ({"date_from": "2026-13-01"}, "日期格式"), ({"number": "abc"}, "号码应为"),
    ({"department_id": "x"}, "承办单位应为"), ({"view": "everything"}, "视图取值无效"),
    ({"sort": "title"}, "排序取值无效"), ({"q": "长" * 101}, "过长"),
])
def test_bad_filters_are_told_in_chinese(desk_app: Desk, params: dict[str, str], says: str) -> None:
    res = desk_app.client.get("/api/desk/tickets", params=params, headers=bearer(LEAD))
    assert res.status_code == 422 and says in res.json()["detail"], res.text


# ------------------------------------------------------------------------------------- one ticket


def test_a_ticket_file_has_its_history_departments_notes_and_the_steps_the_role_may_take(desk_app: Desk) -> None:
    c, noise = desk_app.client, desk_app.noise
    c.post(f"/api/tickets/{noise.id}/supervise", json={"reason": "噪音投诉较多，请加快"}, headers=bearer(LEAD))
    file = c.get(f"/api/desk/tickets/{noise.id}", headers=bearer(OP)).json()
    t = file["ticket"]
    assert t["caller_name"] == "王先生" and t["query_code"]  # the centre sees the reporter and the code
    departments = [(x["name"], x["is_lead"]) for x in t["departments"]]
    assert departments == [("菏泽市城市管理局", True), ("菏泽市水务集团", False)]
    history = [(e["label"], e["to"]) for e in file["history"]]
    assert history[:3] == [("受理", "草稿"), ("登记", "已登记"), ("转办", "已转办")]
    [note] = file["supervisions"]
    assert note["reason"] == "督办" and note["note"] == "噪音投诉较多，请加快" and note["answered_at"] is None
    assert [a["action"] for a in file["actions"]] == ["link"]  # transferred: the department's turn
    lamp = c.get(f"/api/desk/tickets/{desk_app.lamp.id}", headers=bearer(OP)).json()
    assert {a["action"]: a["label"] for a in lamp["actions"]} == {
        "close_directly": "直接办结", "merge": "合并为重复件", "transfer": "转办", "link": "关联"}
    assert c.get("/api/desk/tickets/99999", headers=bearer(OP)).status_code == 404
    assert c.get("/api/desk/tickets/x1", headers=bearer(OP)).json()["detail"] == "工单编号应为正整数"


def test_a_lead_sees_who_read_a_confidential_ticket_and_an_operator_may_not(desk_app: Desk) -> None:
    c, noise = desk_app.client, desk_app.noise
    c.get(f"/api/desk/tickets/{noise.id}", headers=bearer(OP2))  # op1025 opens the file
    refused = c.get(f"/api/desk/tickets/{noise.id}/reads", headers=bearer(OP))
    assert refused.status_code == 403
    assert c.get(f"/api/desk/tickets/{noise.id}/reads", headers=bearer(QA)).status_code == 403
    reads = c.get(f"/api/desk/tickets/{noise.id}/reads", headers=bearer(LEAD)).json()
    assert {"username": "op1025", "role": "operator", "purpose": "detail", "masked": False} in [
        {k: r[k] for k in ("username", "role", "purpose", "masked")} for r in reads]


def test_the_supervision_list_shows_each_note_its_department_and_the_answer(desk_app: Desk) -> None:
    c, store, old = desk_app.client, desk_app.store, desk_app.old
    assert c.post(f"/api/tickets/{old.id}/supervise", json={"reason": "漏水十天未修"},
                  headers=bearer(LEAD)).status_code == 200
    water = Principal("dept2", Role.DEPARTMENT, department_id=2, dept_lead=True)
    store.actions.act(old.id, "accept", None, water)
    store.actions.act(old.id, "answer_supervision", {"note": "今日已派人维修"}, water)
    every = c.get("/api/desk/supervisions", params={"open_only": "false"}, headers=bearer(OP)).json()
    mine = [s for s in every if s["ticket_id"] == old.id and s["note"] == "漏水十天未修"]
    assert mine and mine[0]["department"] == "菏泽市水务集团" and mine[0]["answer"] == "今日已派人维修"
    still_open = c.get("/api/desk/supervisions", headers=bearer(OP)).json()
    assert "漏水十天未修" not in [s["note"] for s in still_open]
    assert c.get("/api/desk/supervisions", params={"department_id": "0"}, headers=bearer(OP)).status_code == 422


# ------------------------------------------------------------------------------------- 回访


def test_the_callback_worklist_carries_the_due_date_and_the_ivr_survey(desk_app: Desk) -> None:
    rows = desk_app.client.get("/api/desk/callbacks", headers=bearer(OP)).json()
    [row] = [r for r in rows if r["id"] == desk_app.replied.id]
    assert row["callback_due"] and row["deadline_state"] in ("green", "yellow") and row["overdue"] is False
    assert row["ivr_survey"] == 3 and row["ivr_survey_label"] == "不满意"
    assert row["reply_text"] == "已补装井盖" and row["department"] == "菏泽市城市管理局"
    assert row["contact"] == "0530-5550000"
    # no SIP line: the 回访's 三方 rings its first directory phone, as digits the conference accepts
    assert row["department_line"] == "05305551234"


def test_the_seat_callback_names_its_call_for_the_link_and_refuses_variable_injection(tmp_path: Path) -> None:
    from cti.actions import CtiActions
    from cti.state import CtiState
    from tests.cti.test_actions import FakeLink

    with use(TestClient(web_app(Settings(var_dir=tmp_path, services=[])))) as c:
        link = FakeLink()  # no Asterisk here: the real actions, and what they would send is kept
        c.app.state.cti = SimpleNamespace(actions=CtiActions(link, CtiState()))
        c.app.state.roster = {"op1024": "8001"}.copy
        # only a number the centre has a reason to dial: nothing of a stranger's goes out (toll fraud)
        stranger = c.post("/api/seat/callback", json={"number": "013800138000"}, headers=bearer(OP))
        assert stranger.status_code == 403 and "不属于任何工单或来电记录" in stranger.json()["detail"]
        store = c.app.state.store
        t = store.tickets.create({"caller_number": "13953012345", "category": "咨询", "title": "路灯",
                                  "contact": "0530-5550000 王先生"}, OP)
        assert store.outside.may_call_back("05305550000") and store.outside.may_call_back("5550000")
        for path, body in (("/api/seat/transfer", {"target": "013800138000"}),
                           ("/api/seat/conference", {"number": "013800138000"}),  # nor into a 三方
                           ("/api/seat/conference", {"number": "8002"})):  # another seat is no department
            out = c.post(path, json=body, headers=bearer(OP))
            assert out.status_code == 403 and "不是部门号码" in out.json()["detail"], (path, body)
        about = c.post("/api/seat/callback", json={"number": "13953012345"}, headers=bearer(OP))  # about nothing
        assert about.status_code == 422 and "哪一通来电（call_id）或哪张工单（ticket_id）" in about.json()["detail"]
        got = c.post("/api/seat/callback", json={"number": "13953012345", "ticket_id": t.id}, headers=bearer(OP)).json()
        # the new call's own id, set on its channel before it rings: the link reaches its recording
        assert got["ok"] is True and re.fullmatch(r"\d+\.\d+", got["call_id"])
        again = c.post("/api/seat/callback", json={"number": "13953012345", "call_id": "1795400000.2"},
                       headers=bearer(OP)).json()
        assert again["call_id"] != got["call_id"]
        bad = c.post("/api/seat/callback", json={"number": "13953012345", "call_id": "x,HL_SEAT=8009"},
                     headers=bearer(OP))
        assert bad.status_code == 422 and bad.json()["detail"] == "通话编号格式不正确"
        assert [o["ChannelId"] for o in link.sent] == [got["call_id"], again["call_id"]]  # nothing for the refused
        assert "HL_CALLBACK_OF=1795400000.2" in link.sent[1]["Variable"]  # the missed call it answers
