"""The REST routes through a small app: auth on every route, Chinese 4xx errors, department scope."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from testkit.auth import Bearer, with_sessions
from tests.ticketing.conftest import intake
from ticketing import routes


@pytest.fixture
def client(svc, depts):
    app = FastAPI()
    app.include_router(routes.router)
    app.state.store = svc  # as the composition root serves it
    with_sessions(app, svc.ctx.engine)
    with TestClient(app) as c:
        yield c


def auth(role: str, **kw) -> Bearer:
    return Bearer(f"u-{role}", role, **kw)


OP, LEAD, ADMIN = auth("operator", job_number="017"), auth("lead"), auth("admin")


def test_every_route_needs_a_login(client):
    paths = [r.path for r in routes.router.routes]
    assert {
        "/api/tickets",
        "/api/tickets/{ticket_id}",
        "/api/tickets/{ticket_id}/{action}",
        "/api/kb",
        "/api/departments",
    } <= set(paths)
    for route in routes.router.routes:
        path = route.path.replace("{ticket_id}", "1").replace("{action}", "accept").replace("{article_id}", "1")
        path = path.replace("{department_id}", "1").replace("{number}", "13853012345")
        for method in route.methods:
            r = client.request(method, path)
            assert r.status_code == 401, (method, path)
            assert r.json()["detail"] == "未登录或登录已过期，请重新登录"


def test_create_read_and_act_over_http(client, depts):
    r = client.post("/api/tickets", json=intake(title="<script>alert(1)</script>停水"), headers=OP)
    assert r.status_code == 201, r.text
    t = r.json()
    assert t["title"] == "<script>alert(1)</script>停水" and t["status"] == "registered"
    assert t["operator"] == "017" and t["deadline_state"] == "green"
    r = client.post(
        f"/api/tickets/{t['id']}/transfer", json={"department_id": depts["水务"], "opinion": "请办理"}, headers=OP
    )
    assert r.status_code == 200 and r.json()["status"] == "transferred"
    water = auth("department", department_id=depts["水务"])
    assert client.post(f"/api/tickets/{t['id']}/accept", headers=water).json()["status"] == "accepted"
    hist = client.get(f"/api/tickets/{t['id']}/history", headers=LEAD).json()
    assert [e["action"] for e in hist] == ["create", "register", "transfer", "accept"]
    page = client.get("/api/tickets", params={"q": "停水", "status": "accepted,transferred"}, headers=LEAD).json()
    assert page["total"] == 1 and page["items"][0]["id"] == t["id"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"title": "长" * 201}, "标题过长（最多200个字）"),
        ({"confidential": "yes"}, "是否保密应为 true 或 false"),
        ({"category": "吐槽"}, "诉求类别取值无效"),
        ({"matter_course": "a\x07b"}, "事件经过不能包含控制字符"),
    ],
)
def test_bad_bodies_get_422_in_chinese(client, svc, people, body, message):
    r = client.post("/api/tickets", json=intake(**body), headers=OP)
    assert r.status_code == 422 and message in r.json()["detail"]
    assert svc.tickets.search({}, people.lead).total == 0


def test_malformed_requests(client):
    assert client.post("/api/tickets", content=b"{not json", headers=OP).json()["detail"] == "请求体不是有效的 JSON"
    assert client.post("/api/tickets", json=[1, 2], headers=OP).json()["detail"] == "请求体应为 JSON 对象"
    r = client.get("/api/tickets/abc", headers=LEAD)
    assert r.status_code == 422 and r.json()["detail"] == "工单编号应为正整数"
    r = client.get("/api/tickets", params={"page": "x", "sort": "evil"}, headers=LEAD)
    assert r.status_code == 422 and "页码应为整数" in r.json()["detail"] and "排序取值无效" in r.json()["detail"]
    r = client.get("/api/tickets", params={"status": "flying"}, headers=LEAD)
    assert r.status_code == 422 and "状态取值无效" in r.json()["detail"]
    assert client.get("/api/tickets/999", headers=LEAD).status_code == 404


def test_unknown_department_and_illegal_moves(client, depts):
    t = client.post("/api/tickets", json=intake(), headers=OP).json()
    r = client.post(f"/api/tickets/{t['id']}/transfer", json={"department_id": 4242, "opinion": "x"}, headers=OP)
    assert r.status_code == 422 and "承办单位不存在" in r.json()["detail"]
    r = client.post(f"/api/tickets/{t['id']}/archive", headers=LEAD)
    assert r.status_code == 409 and "不能归档" in r.json()["detail"]
    r = client.post(f"/api/tickets/{t['id']}/fly", headers=LEAD)
    assert r.status_code == 409 and "未知操作" in r.json()["detail"]
    r = client.post(f"/api/tickets/{t['id']}/transfer", json={"department_id": "1", "opinion": "x"}, headers=OP)
    assert r.status_code == 422 and "承办单位应为整数" in r.json()["detail"]


def test_roles(client):
    assert client.post("/api/tickets", json=intake(), headers=auth("qa")).status_code == 403
    assert client.post("/api/departments", json={"name": "新单位"}, headers=LEAD).status_code == 403
    assert client.get("/api/tickets/export", headers=OP).status_code == 403
    r = client.post("/api/kb", json={"title": "x", "body": "y"}, headers=OP)
    assert r.status_code == 403 and r.json()["detail"] == "当前角色无权访问此功能"


def test_department_scope_and_confidential_masking(client, depts):
    secret = client.post(
        "/api/tickets",
        json=intake(category="投诉举报", confidential=True, caller_name="周保密", caller_number="13853000001"),
        headers=OP,
    ).json()
    other = client.post("/api/tickets", json=intake(caller_number="13853000002"), headers=OP).json()
    client.post(
        f"/api/tickets/{secret['id']}/transfer", json={"department_id": depts["水务"], "opinion": "请查处"}, headers=OP
    )
    client.post(
        f"/api/tickets/{other['id']}/transfer", json={"department_id": depts["城市"], "opinion": "请办理"}, headers=OP
    )
    water = auth("department", department_id=depts["水务"])
    r = client.get(f"/api/tickets/{secret['id']}", headers=water)
    assert r.status_code == 200 and "周保密" not in r.text and "13853000001" not in r.text and r.json()["masked"]
    assert client.get(f"/api/tickets/{other['id']}", headers=water).status_code == 404
    listed = client.get("/api/tickets", headers=water).json()
    assert [t["id"] for t in listed["items"]] == [secret["id"]] and "周保密" not in str(listed)
    assert "周保密" in client.get(f"/api/tickets/{secret['id']}", headers=LEAD).text
    assert client.get("/api/callers/13853000001", headers=water).status_code == 403


def test_export_formats(client):
    client.post("/api/tickets", json=intake(confidential=True, caller_name="吴保密"), headers=OP)
    r = client.get("/api/tickets/export", params={"format": "csv", "q": "停水"}, headers=LEAD)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "吴保密" not in r.content.decode("utf-8-sig") and "停水" in r.content.decode("utf-8-sig")
    r = client.get("/api/tickets/export", params={"format": "xlsx"}, headers=auth("qa"))
    assert r.status_code == 200 and r.content[:2] == b"PK"
    assert client.get("/api/tickets/export", params={"format": "pdf"}, headers=LEAD).status_code == 422


def test_caller_summary_for_the_screen_pop(client):
    client.post("/api/tickets", json=intake(), headers=OP)
    s = client.get("/api/callers/13853012345", headers=OP).json()
    assert s["total"] == 1 and s["recent"][0]["title"] == "丽景花园停水"


def test_knowledge_base_and_directory(client, depts):
    r = client.post(
        "/api/kb",
        json={"title": "居住证办理：所需材料", "body": "身份证、居住证明、照片", "topic": "居住证"},
        headers=LEAD,
    )
    assert r.status_code == 201
    assert [a["title"] for a in client.get("/api/kb", params={"q": "居住证"}, headers=OP).json()] == [
        "居住证办理：所需材料"
    ]
    assert client.get(f"/api/kb/{r.json()['id']}", headers=OP).json()["body"].startswith("身份证")
    assert client.get("/api/kb", params={"q": "长" * 101}, headers=OP).status_code == 422
    m = client.post("/api/kb/missing", json={"query": "充电桩补贴"}, headers=OP)
    assert m.status_code == 201
    assert [x["query"] for x in client.get("/api/kb/missing", headers=LEAD).json()] == ["充电桩补贴"]
    ds = client.get("/api/departments", params={"q": "停水"}, headers=OP).json()
    assert [d["name"] for d in ds] == ["菏泽市水务集团有限公司"]
    r = client.post("/api/departments", json={"name": "菏泽市水务集团有限公司"}, headers=ADMIN)
    assert r.status_code == 422 and "已存在" in r.json()["detail"]
    r = client.put(
        f"/api/departments/{depts['水务']}",
        json={"name": "菏泽市水务集团有限公司", "phones": "0530-1234567"},
        headers=ADMIN,
    )
    assert r.status_code == 200 and r.json()["phones"] == "0530-1234567"


def test_calendar_routes(client):
    s = client.get("/api/calendar", params={"years": "2026,2027"}, headers=OP).json()
    assert [x["source"] for x in s] == ["chinesecalendar", "fallback"] and "2027" in s[1]["warning"]
    assert client.put("/api/calendar", json=[{"day": "2027-01-01", "workday": False}], headers=LEAD).status_code == 403
    r = client.put("/api/calendar", json=[{"day": "2027-01-01", "workday": False, "note": "元旦"}], headers=ADMIN)
    assert r.json() == {"saved": 1}
    assert client.get("/api/calendar", params={"years": "2027"}, headers=OP).json()[0]["warning"] is None


def test_leads_mark_numbers_and_the_next_lookup_sees_the_flags(client, clock):
    r = client.put("/api/callers/+86 139-5301-2345/flags", json={"elderly": True, "note": "独居老人，听力不好"},
                   headers=LEAD)
    assert r.status_code == 200, r.text
    saved = r.json()
    assert (saved["number"], saved["elderly"], saved["vip"], saved["flags_by"]) == ("13953012345", True, False,
                                                                                  "u-lead")
    assert saved["location"] == "山东省菏泽市" and saved["flags_at"]
    clock.advance(minutes=1)
    client.put("/api/callers/5551234/flags", json={"blacklisted": True}, headers=ADMIN)
    clock.advance(minutes=1)
    client.put("/api/callers/13953012345/flags", json={"vip": True}, headers=LEAD)  # the other flags stay
    listed = client.get("/api/callers", headers=LEAD).json()
    assert [(c["number"], c["blacklisted"], c["vip"], c["elderly"]) for c in listed] == [
        ("13953012345", False, True, True), ("05305551234", True, False, False)]
    assert listed[0]["note"] == "独居老人，听力不好"
    summary = client.get("/api/callers/13953012345", headers=OP).json()
    assert summary["elderly"] and summary["vip"] and not summary["blacklisted"]
    client.put("/api/callers/13953012345/flags", json={"vip": False, "elderly": False}, headers=LEAD)
    assert [c["number"] for c in client.get("/api/callers", headers=LEAD).json()] == ["05305551234"]


@pytest.mark.parametrize("body, message", [
    ({"elderly": "yes"}, "true 或 false"),
    ({"vip": True, "colour": "red"}, ""),
    ({"note": "x" * 201}, ""),
    ({"note": "a\x00b"}, "控制字符"),
])
def test_caller_flags_refuse_nonsense(client, body, message):
    r = client.put("/api/callers/13953012345/flags", json=body, headers=LEAD)
    assert r.status_code == 422 and message in r.json()["detail"]
    for bad in ("12", "1" * 25, "abc"):
        assert client.put(f"/api/callers/{bad}/flags", json={"vip": True}, headers=LEAD).status_code == 422
    assert client.get("/api/callers", headers=LEAD).json() == []  # nothing was written


def test_only_leads_and_admins_see_or_set_caller_flags(client, depts):
    for who in (OP, auth("qa"), auth("department", department_id=depts["水务"])):
        assert client.get("/api/callers", headers=who).status_code == 403
        assert client.put("/api/callers/13953012345/flags", json={"vip": True}, headers=who).status_code == 403
