"""The health API and the API description, on a throwaway database (sign-in: test_auth.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from hotline.identity import Role
from hotline.settings import Settings
from launch.compose import web_app
from testkit.auth import bearer, use


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = Settings(var_dir=tmp_path_factory.mktemp("var"), ami_port=1, agi_port=1, services=[])  # all down
    with use(TestClient(web_app(settings))) as c:
        yield c
        c.cookies.clear()


def test_nonsense_login_bodies_get_a_chinese_422(client: TestClient) -> None:
    for body in ({}, {"username": "", "password": "x"}, {"username": "a" * 500, "password": "x"}, [1, 2]):
        r = client.post("/api/auth/login", json=body)
        assert r.status_code == 422 and r.json()["detail"].startswith("请求内容有误")


def test_health_needs_a_lead_or_admin(client: TestClient) -> None:
    assert client.get("/api/health").status_code == 401
    assert client.get("/api/health", headers=bearer(client, "op", Role.OPERATOR, job_number="4401")).status_code == 403
    lead = bearer(client, "lead", Role.LEAD)
    forged = {"Authorization": lead["Authorization"][:-1] + ("A" if lead["Authorization"][-1] != "A" else "B")}
    assert client.get("/api/health", headers=forged).status_code == 401
    body = client.get("/api/health", headers=lead).json()
    states = {c["name"]: c["state"] for c in body["components"]}
    assert states["database"] == "ok" and states["ami"] == "down" and states["agi"] == "off"
    assert states["call_log"] == "ok" and body["ok"] is False
    assert states["recordings"] == "ok" and states["witness"] == "off"  # no CTI node has compared yet
    assert states["listen"] == "off"  # no listening node: transcribed after the call, nothing wrong
    # a finished call the database refused waits in the outbox: the page says so until it is stored
    from hotline.calls import FinishedCall
    from hotline.outbox import Outbox

    settings = client.app.state.settings
    Outbox(settings.call_outbox_dir).put("1.1", FinishedCall(call_id="1.1", caller_num="", offered_at=1.0,
                                                             ended_at=2.0).as_record())
    waiting = {c["name"]: c for c in client.get("/api/health", headers=lead).json()["components"]}["call_log"]
    assert waiting["state"] == "down" and waiting["detail"].startswith("1 通已结束的通话尚未写入通话记录")
    Outbox(settings.call_outbox_dir).done("1.1")


def test_pages_send_people_without_a_session_to_login(client: TestClient) -> None:
    r = client.get("/health", headers={"Accept": "text/html"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/health"
    page = client.get("/login")
    assert page.status_code == 200 and "登录" in page.text and 'lang="zh-CN"' in page.text


def test_the_api_description_is_for_signed_in_users_and_needs_no_cdn(client: TestClient) -> None:
    assert client.get("/api/openapi.json").status_code == 401
    assert client.get("/docs", headers={"Accept": "text/html"}, follow_redirects=False).status_code == 303
    assert client.get("/openapi.json").status_code == client.get("/redoc").status_code == 404
    lead = bearer(client, "lead", Role.LEAD)
    assert "/api/calls" in client.get("/api/openapi.json", headers=lead).json()["paths"]
    page = client.get("/docs", headers=lead).text
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in page and "cdn" not in page.lower()
    assert client.get("/static/vendor/swagger-ui/swagger-ui-bundle.js").status_code == 200
