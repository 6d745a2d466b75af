"""The department portal's API on the whole web app: who may come in, a department's scope (only
the tickets it handles; dept2 gets 404 on dept1's), confidential reporters masked in the list and
the detail, what a co-handling department and a non-lead may do, the own assessment, and the
ticket_update messages every write publishes (which the websocket gives only to the departments
handling the ticket)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from agent_ui.dept.worklist import waits_for
from agent_ui.lead import LeadStore
from hotline.identity import Role
from hotline.settings import Settings
from launch.compose import web_app
from testkit.auth import Bearer, use
from ticketing.schemas import SystemActor

CITY, WATER = "菏泽市城市管理局", "菏泽市水务集团有限公司"
SECRET_NUMBER, SECRET_NAME = "13953099876", "韩秘密"


def bearer(username: str, role: Role, **kw) -> Bearer:
    return Bearer(username, role, **kw)


OP = bearer("op1024", Role.OPERATOR, job_number="1024")
LEAD = bearer("lead", Role.LEAD)
DEPT1 = bearer("dept1", Role.DEPARTMENT, department_id=1, dept_lead=True)
DEPT1A = bearer("dept1a", Role.DEPARTMENT, department_id=1)
DEPT2 = bearer("dept2", Role.DEPARTMENT, department_id=2, dept_lead=True)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with use(TestClient(web_app(Settings(var_dir=tmp_path_factory.mktemp("var"), services=[])))) as c:
        admin = SystemActor()
        for name in (CITY, WATER):  # ids 1 and 2, as the demo accounts dept1 / dept2 expect
            c.app.state.store.directory.save({"name": name, "duties": "城市管理"}, admin)
        yield c


def ticket(client: TestClient, department_id: int, co: tuple[int, ...] = (), **over) -> dict:
    """Filed and transferred by an operator over HTTP, as the console does."""
    body = {"category": "投诉举报", "title": "夜市占道经营", "caller_number": "13953012345", "caller_name": "张桂兰",
            "contact": "13953012345", "district": "牡丹区", "matter_place": "牡丹区中华路夜市",
            "matter_course": "每晚摊位占满人行道", "matter_demand": "请清理占道摊位"} | over
    made = client.post("/api/tickets", json=body, headers=OP)
    assert made.status_code == 201, made.text
    moved = client.post(f"/api/tickets/{made.json()['id']}/transfer", headers=OP,
                        json={"department_id": department_id, "opinion": "请核实处理", "co_department_ids": list(co)})
    assert moved.status_code == 200, moved.text
    return moved.json()


def act(client: TestClient, tid: int, action: str, headers: dict, **params):
    return client.post(f"/api/tickets/{tid}/{action}", json=params, headers=headers)


def listed(client: TestClient, headers: dict, **query) -> list[dict]:
    got = client.get("/api/dept/tickets", params={"view": "all", **query}, headers=headers)
    assert got.status_code == 200, got.text
    return got.json()["items"]


def messages_since(client: TestClient, seq: int) -> list[dict]:
    return [e.message() for e in client.app.state.bus.replay_nowait(seq).envelopes]


def test_the_portal_is_a_department_users_own(client: TestClient) -> None:
    page = client.get("/dept", headers=DEPT1)
    assert page.status_code == 200 and CITY in page.text and "承办单位工作台" in page.text
    for who in (OP, LEAD, bearer("qa", Role.QA)):
        assert client.get("/dept", headers=who).status_code == 403
        assert client.get("/api/dept/summary", headers=who).status_code == 403
    admin = client.get("/api/dept/tickets", headers=bearer("admin", Role.ADMIN))
    assert admin.status_code == 403 and admin.json()["detail"] == "承办单位工作台仅供承办单位用户使用"
    assert client.get("/api/dept/summary").status_code == 401
    summary = client.get("/api/dept/summary", headers=DEPT1).json()
    assert summary["department"] == {"id": 1, "name": CITY}
    assert set(summary["counters"]) == {"new", "due_soon", "overdue", "returned", "supervised"}
    # the lead chooses among the department's own staff; a member of staff chooses nobody
    assert [s["username"] for s in summary["staff"]] == ["dept1", "dept1a"]
    assert client.get("/api/dept/summary", headers=DEPT1A).json()["staff"] == []


def test_a_department_sees_only_the_tickets_it_handles(client: TestClient) -> None:
    mine = ticket(client, 1, title="中华路夜市占道")
    theirs = ticket(client, 2, category="求助", title="丽景花园停水", matter_place="牡丹区丽景花园",
                    matter_course="小区停水", matter_demand="尽快恢复供水")
    new = client.get("/api/dept/summary", headers=DEPT1).json()["counters"]["new"]
    assert new >= 1
    in_dept1 = {t["id"] for t in listed(client, DEPT1)}
    in_dept2 = {t["id"] for t in listed(client, DEPT2)}
    assert mine["id"] in in_dept1 and theirs["id"] not in in_dept1
    assert theirs["id"] in in_dept2 and mine["id"] not in in_dept2
    for path in (f"/api/dept/tickets/{mine['id']}", f"/api/tickets/{mine['id']}", f"/api/tickets/{mine['id']}/history"):
        refused = client.get(path, headers=DEPT2)
        assert refused.status_code == 404 and refused.json()["detail"] == "工单不存在或无权查看", path
    assert act(client, mine["id"], "accept", DEPT2).status_code == 404
    # an attachment follows its ticket: through the whole app (its route comes before the workflow's /{action})
    photo = client.post(f"/api/tickets/{mine['id']}/attachments", headers=DEPT1,
                        files={"file": ("现场.jpg", b"\xff\xd8\xff\xe0" + b"\0" * 512, "image/jpeg")})
    assert photo.status_code == 201, photo.text
    url = f"/api/tickets/{mine['id']}/attachments/{photo.json()['id']}"
    assert client.get(url, headers=DEPT1).status_code == 200
    assert client.get(url, headers=DEPT2).status_code == 404
    assert client.get(f"/api/tickets/{mine['id']}/attachments", headers=DEPT2).status_code == 404
    shown = client.get(f"/api/dept/tickets/{mine['id']}", headers=DEPT1).json()["attachments"]
    assert [(a["name"], a["url"]) for a in shown] == [("现场.jpg", url)]
    # full text and the views stay inside the department too
    assert [t["id"] for t in listed(client, DEPT2, q="夜市")] == []
    row = next(t for t in listed(client, DEPT1, view="new") if t["id"] == mine["id"])
    assert row["waits_for"] == "签收" and row["lead"] is True


def test_a_confidential_reporter_never_reaches_the_department(client: TestClient) -> None:
    start = client.app.state.bus.last_seq
    secret = ticket(client, 1, confidential=True, title="举报违建", caller_number=SECRET_NUMBER,
                    caller_name=SECRET_NAME, contact=SECRET_NUMBER, caller_address="牡丹区某小区3号楼")
    assert client.get(f"/api/tickets/{secret['id']}", headers=OP).json()["query_code"]  # the centre has it
    got = client.get("/api/dept/tickets", params={"view": "new"}, headers=DEPT1)
    row = next(t for t in got.json()["items"] if t["id"] == secret["id"])
    assert row["caller_number"] == row["caller_name"] == "（保密）" and row["masked"] is True
    detail = client.get(f"/api/dept/tickets/{secret['id']}", headers=DEPT1)
    t = detail.json()["ticket"]
    assert t["caller_number"] == t["caller_name"] == t["contact"] == t["caller_address"] == "（保密）"
    assert t["query_code"] == ""
    for text in (got.text, detail.text, json.dumps(messages_since(client, start), ensure_ascii=False)):
        assert SECRET_NUMBER not in text and SECRET_NAME not in text


def test_a_co_handling_department_records_progress_but_does_not_reply(client: TestClient) -> None:
    shared = ticket(client, 1, co=(2,), title="排水管网堵塞")
    assert act(client, shared["id"], "accept", DEPT2).status_code == 403  # the lead department signs
    assert act(client, shared["id"], "accept", DEPT1).json()["status"] == "accepted"
    co = client.get(f"/api/dept/tickets/{shared['id']}", headers=DEPT2).json()
    assert co["lead"] is False and co["ticket"]["waits_for"] == "协办：办理进展"
    assert co["ticket"]["allowed_actions"] == ["progress"]  # no supervision note waits for an answer yet
    noted = act(client, shared["id"], "progress", DEPT2, note="已疏通水务侧管道")
    assert noted.status_code == 200, noted.text
    refused = act(client, shared["id"], "reply", DEPT2, result="已处理")
    assert refused.status_code == 403 and refused.json()["detail"] == "只有牵头承办单位可以执行此操作"
    history = client.get(f"/api/dept/tickets/{shared['id']}", headers=DEPT1).json()["history"]
    assert history[-1]["action"] == "progress" and history[-1]["note"] == "已疏通水务侧管道"


def test_only_a_department_lead_assigns_and_only_to_its_own_staff(client: TestClient) -> None:
    t = ticket(client, 1, title="路灯不亮")
    staff_view = client.get(f"/api/dept/tickets/{t['id']}", headers=DEPT1A).json()["ticket"]
    assert "assign" not in staff_view["allowed_actions"] and "accept" in staff_view["allowed_actions"]
    refused = act(client, t["id"], "assign", DEPT1A, assignee="dept1a")
    assert refused.status_code == 403 and refused.json()["detail"] == "只有承办单位负责人可以分派承办人"
    stranger = act(client, t["id"], "assign", DEPT1, assignee="dept2")
    assert stranger.status_code == 422 and "不是本单位的用户" in stranger.json()["detail"]
    done = act(client, t["id"], "assign", DEPT1, assignee="dept1a")
    assert done.status_code == 200 and done.json()["departments"][0]["assignee"] == "dept1a"
    row = next(r for r in listed(client, DEPT1) if r["id"] == t["id"])
    assert row["assignee"] == "dept1a"


def test_the_workflow_in_the_portal_and_the_messages_it_publishes(client: TestClient) -> None:
    start = client.app.state.bus.last_seq
    t = ticket(client, 1, co=(2,), title="渣土车遗撒")
    tid = t["id"]
    detail = client.get(f"/api/dept/tickets/{tid}", headers=DEPT1).json()
    assert detail["return_until"] and detail["ticket"]["waits_for"] == "签收"
    assert act(client, tid, "accept", DEPT1).status_code == 200
    assert act(client, tid, "request_extension", DEPT1, days=3, reason="需协调交警").json()["status"] == \
        "extension_requested"
    due = client.get(f"/api/dept/tickets/{tid}", headers=DEPT1).json()["ticket"]["due_at"]
    assert act(client, tid, "approve_extension", LEAD).status_code == 200
    later = client.get(f"/api/dept/tickets/{tid}", headers=DEPT1).json()["ticket"]
    assert later["due_at"] > due and later["extension_days"] == 3
    assert act(client, tid, "supervise", LEAD, reason="请加快处置").status_code == 200
    notes = client.get(f"/api/dept/tickets/{tid}", headers=DEPT1).json()["supervisions"]
    assert notes[-1]["note"] == "请加快处置" and notes[-1]["answered_at"] is None
    row = next(r for r in listed(client, DEPT1, view="supervised") if r["id"] == tid)
    assert row["waits_for"] == "回复督办" and row["open_supervision"] is True
    assert act(client, tid, "answer_supervision", DEPT1, note="已安排夜间巡查").status_code == 200
    answered = client.get(f"/api/dept/tickets/{tid}", headers=DEPT1).json()["supervisions"][-1]
    assert answered["answer"] == "已安排夜间巡查" and answered["answered_by"] == "dept1"
    assert act(client, tid, "reply", DEPT1, result="已清理路面并处罚").json()["status"] == "replied"

    mine = [m for m in messages_since(client, start) if m["ticket_id"] == tid]
    assert all(m["type"] == "ticket_update" for m in mine)
    assert [m["action"] for m in mine] == ["create", "transfer", "accept", "request_extension", "approve_extension",
                                           "supervise", "answer_supervision", "reply"]
    assert mine[0]["department_ids"] == [] and all(m["department_ids"] == [1, 2] for m in mine[1:])  # lead first
    assert mine[-1]["status"] == "replied" and mine[-1]["by"] == "dept1" and mine[-1]["number"] == t["number"]


def test_the_websocket_tells_a_department_only_of_its_tickets(client: TestClient) -> None:
    bus = client.app.state.bus
    start = bus.last_seq
    other = ticket(client, 1, title="油烟扰民")
    own = ticket(client, 2, category="求助", title="水表漏水")
    headers = {"cookie": f"hotline_token={DEPT2['Authorization'][7:]}"}
    with client.websocket_connect(f"/ws?since={start}&epoch={bus.epoch}", headers=headers) as ws:
        assert ws.receive_json()["type"] == "hello"
        seen = []
        while not seen or seen[-1]["action"] != "transfer":
            seen.append(ws.receive_json())
    assert {m["ticket_id"] for m in seen} == {own["id"]} and other["id"] not in {m["ticket_id"] for m in seen}


def test_bad_filters_are_refused_in_chinese(client: TestClient) -> None:
    for query, message in (({"view": "x"}, "视图取值无效"), ({"deadline_state": "purple"}, "时限颜色取值无效"),
                           ({"sort": "title"}, "排序取值无效"), ({"per_page": "1000"}, "每页条数"),
                           ({"page": "-1"}, "页码应为1到100000之间的整数"), ({"q": "长" * 101}, "关键词过长")):
        got = client.get("/api/dept/tickets", params=query, headers=DEPT1)
        assert got.status_code == 422 and message in got.json()["detail"], (query, got.text)
    assert client.get("/api/dept/tickets/abc", headers=DEPT1).status_code == 422
    bad_month = client.get("/api/dept/assessment", params={"month": "2026-13"}, headers=DEPT1)
    assert bad_month.status_code == 422 and bad_month.json()["detail"] == "月份格式应为 2026-11"


def test_the_assessment_is_the_departments_own(client: TestClient) -> None:
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    engine = client.app.state.engine
    LeadStore(engine).add_assessment(department=CITY, day=today, item="city_circulars", count=1, note="市级通报",
                                     entered_by="lead")
    returned = ticket(client, 1, title="不属于城管的事项")
    assert act(client, returned["id"], "return", DEPT1, reason="属于供电公司职责").json()["status"] == "returned"
    mine = client.get("/api/dept/assessment", headers=DEPT1).json()
    assert mine["department"] == CITY and mine["period"]["label"] == f"{today.year}年{today.month}月"
    items = {d["key"]: d for d in mine["deductions"]}
    assert items["city_circulars"]["points"] == -10 and items["city_circulars"]["entered"] is True
    assert items["returned"]["count"] >= 1 and returned["id"] in {t["id"] for t in items["returned"]["tickets"]}
    assert mine["score"] == 20 + mine["results"] and mine["results"] <= 80 - 10 - items["returned"]["count"]
    theirs = client.get("/api/dept/assessment", headers=DEPT2).json()
    assert theirs["department"] == WATER and "city_circulars" not in {d["key"] for d in theirs["deductions"]}
    text = json.dumps(theirs, ensure_ascii=False)
    assert CITY not in text and returned["title"] not in text


def test_what_a_ticket_waits_for_depends_on_where_the_department_stands(client: TestClient) -> None:
    t = ticket(client, 1, co=(2,), title="井盖缺失")
    read = client.app.state.store.tickets.get(t["id"], SystemActor())
    assert waits_for(read, 1, False) == "签收" and waits_for(read, 2, False) == "主办单位签收"
    replied = read.model_copy(update={"status": "replied"})
    assert waits_for(replied, 1, False) == "回访（热线中心）"
    noted = read.model_copy(update={"allowed_actions": ["answer_supervision"]})
    assert waits_for(noted, 2, True) == "回复督办"
