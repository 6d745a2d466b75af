"""Attachments over HTTP: multipart upload checked by its bytes and its size, listed and served as
a download (never rendered), exactly to whoever may see the ticket, and announced on the bus."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from hotline.bus import InProcessBus
from testkit.auth import Bearer, with_sessions
from tests.ticketing.conftest import intake
from ticketing import attachment_routes, routes

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 4
LIMIT = 64 * 1024  # the store of these tests keeps files up to 64 KB


@pytest.fixture
def client(svc, depts):
    app = FastAPI()
    app.include_router(attachment_routes.router)  # before the workflow's /{action}, as the web app does
    app.include_router(routes.router)
    app.state.store = svc
    app.state.bus = InProcessBus()
    with_sessions(app, svc.ctx.engine)
    with TestClient(app) as c:
        yield c


def auth(username: str, role: str, **kw) -> Bearer:
    return Bearer(username, role, **kw)


OP = auth("op8001", "operator", job_number="017")


@pytest.fixture
def city_ticket(client, svc, depts, people) -> int:
    """A ticket the city department (城管局) handles, the water company (水务集团) co-handling it."""
    t = svc.tickets.create(intake(title="夜市占道经营"), people.operator)
    svc.actions.transfer(t.id, depts["城市"], "请核实处理", people.operator, co_department_ids=[depts["水务"]])
    return t.id


def upload(client, tid: int, headers: dict, name: str = "现场照片.jpg", data: bytes = JPEG, field: str = "file"):
    return client.post(f"/api/tickets/{tid}/attachments", files={field: (name, data, "image/jpeg")}, headers=headers)


def test_every_attachment_route_needs_a_login(client, city_ticket) -> None:
    for method, path in (("POST", f"/api/tickets/{city_ticket}/attachments"),
                         ("GET", f"/api/tickets/{city_ticket}/attachments"),
                         ("GET", f"/api/tickets/{city_ticket}/attachments/1")):
        got = client.request(method, path)
        assert got.status_code == 401 and got.json()["detail"] == "未登录或登录已过期，请重新登录"


def test_a_department_uploads_lists_and_downloads_and_the_bus_hears_of_it(client, city_ticket, depts) -> None:
    city = auth("city", "department", department_id=depts["城市"])
    start = client.app.state.bus.last_seq
    saved = upload(client, city_ticket, city)
    assert saved.status_code == 201, saved.text
    a = saved.json()
    assert a["name"] == "现场照片.jpg" and a["content_type"] == "image/jpeg" and a["size"] == len(JPEG)
    assert a["by"] == "city" and a["by_role"] == "department"
    assert [x["id"] for x in client.get(f"/api/tickets/{city_ticket}/attachments", headers=OP).json()] == [a["id"]]
    got = client.get(f"/api/tickets/{city_ticket}/attachments/{a['id']}", headers=city)
    assert got.status_code == 200 and got.content == JPEG
    assert got.headers["content-type"] == "image/jpeg"
    assert got.headers["content-disposition"].startswith("attachment;") and "filename*=utf-8''" in \
        got.headers["content-disposition"]
    assert got.headers["x-content-type-options"] == "nosniff" and got.headers["cache-control"] == "no-store"
    [msg] = [e.message() for e in client.app.state.bus.replay_nowait(start).envelopes]
    assert msg["type"] == "ticket_update" and msg["action"] == "attach" and msg["ticket_id"] == city_ticket
    assert msg["department_ids"] == [depts["城市"], depts["水务"]] and msg["by"] == "city"
    history = client.get(f"/api/tickets/{city_ticket}/history", headers=OP).json()
    assert history[-1]["action"] == "attach" and history[-1]["note"] == "上传附件：现场照片.jpg"


def test_html_named_jpg_and_files_over_the_limit_are_refused_in_chinese(client, city_ticket, depts) -> None:
    city = auth("city", "department", department_id=depts["城市"])
    html = upload(client, city_ticket, city, name="photo.jpg", data=b"<html><script>alert(1)</script></html>")
    assert html.status_code == 422
    assert html.json()["detail"] == "附件类型不支持：仅限 JPG、PNG、PDF、Word（docx）、Excel（xlsx）"
    over = upload(client, city_ticket, city, data=JPEG[:4] + b"\0" * (LIMIT - 3))  # one byte over
    assert over.status_code == 413 and over.json()["detail"] == "附件过大：不能超过 64 KB"
    huge = upload(client, city_ticket, city, data=JPEG[:4] + b"\0" * (4 * LIMIT))  # refused by its length alone
    assert huge.status_code == 413 and huge.json()["detail"] == "附件过大：不能超过 64 KB"
    empty = upload(client, city_ticket, city, data=b"")
    assert empty.status_code == 422 and empty.json()["detail"] == "附件为空"
    no_file = upload(client, city_ticket, city, field="photo")
    assert no_file.status_code == 422 and no_file.json()["detail"] == "请选择要上传的文件"
    as_json = client.post(f"/api/tickets/{city_ticket}/attachments", json={"file": "x"}, headers=city)
    assert as_json.status_code == 422 and "表单文件" in as_json.json()["detail"]
    two = client.post(f"/api/tickets/{city_ticket}/attachments", headers=city,
                      files=[("file", ("a.jpg", JPEG, "image/jpeg")), ("file", ("b.jpg", JPEG, "image/jpeg"))])
    assert two.status_code == 400 and two.json()["detail"] == "上传内容格式不正确：每次只能上传一个文件"
    assert client.get(f"/api/tickets/{city_ticket}/attachments", headers=city).json() == []  # nothing kept
    assert upload(client, city_ticket, city, data=JPEG[:4] + b"\0" * (LIMIT - 4)).status_code == 201  # the limit itself


def test_attachments_are_seen_exactly_by_who_sees_the_ticket(client, city_ticket, depts) -> None:
    city = auth("city", "department", department_id=depts["城市"])
    water = auth("water", "department", department_id=depts["水务"])  # co-handling: sees it
    market = auth("market", "department", department_id=depts["市场"])  # not involved
    a = upload(client, city_ticket, city).json()
    assert upload(client, city_ticket, water).status_code == 201  # a co-handler adds its own part
    assert client.get(f"/api/tickets/{city_ticket}/attachments/{a['id']}", headers=water).status_code == 200
    for path in (f"/api/tickets/{city_ticket}/attachments", f"/api/tickets/{city_ticket}/attachments/{a['id']}"):
        refused = client.get(path, headers=market)
        assert refused.status_code == 404 and refused.json()["detail"] == "工单不存在或无权查看"
    assert upload(client, city_ticket, market).status_code == 404
    qa = upload(client, city_ticket, auth("qa1", "qa"))
    assert qa.status_code == 403 and qa.json()["detail"] == "当前角色不能上传附件"
    assert client.get(f"/api/tickets/{city_ticket}/attachments/99999", headers=city).status_code == 404
    assert client.get(f"/api/tickets/{city_ticket}/attachments/x", headers=city).status_code == 422
    assert upload(client, 99999, city).status_code == 404
