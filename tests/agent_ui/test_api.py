"""Sign-in and the health API, on a throwaway database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from hotline.identity import TOKEN_COOKIE, Principal, Role, issue_token
from hotline.settings import Settings
from launch.compose import web_app


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = Settings(var_dir=tmp_path_factory.mktemp("var"), ami_port=1, agi_port=1, services=[])  # all down
    with TestClient(web_app(settings)) as c:
        yield c
        c.cookies.clear()


def test_login_sets_a_cookie_and_wrong_passwords_learn_nothing(client: TestClient) -> None:
    bad_user = client.post("/api/auth/login", json={"username": "nobody", "password": "x"})
    bad_pass = client.post("/api/auth/login", json={"username": "lead", "password": "x"})
    assert bad_user.status_code == bad_pass.status_code == 401
    assert bad_user.json() == bad_pass.json() == {"detail": "用户名或密码错误"}
    ok = client.post("/api/auth/login", json={"username": "op1024", "password": "demo1024"})
    assert ok.status_code == 200 and ok.json()["user"]["job_number"] == "1024"
    assert TOKEN_COOKIE in ok.cookies
    assert client.get("/api/auth/me").json()["role"] == "operator"
    client.cookies.clear()


def test_nonsense_login_bodies_get_a_chinese_422(client: TestClient) -> None:
    for body in ({}, {"username": "", "password": "x"}, {"username": "a" * 500, "password": "x"}, [1, 2]):
        r = client.post("/api/auth/login", json=body)
        assert r.status_code == 422 and r.json()["detail"].startswith("请求内容有误")


def test_health_needs_a_lead_or_admin(client: TestClient) -> None:
    assert client.get("/api/health").status_code == 401
    operator = issue_token(Principal("op", Role.OPERATOR))
    assert client.get("/api/health", headers={"Authorization": f"Bearer {operator}"}).status_code == 403
    token = issue_token(Principal("lead", Role.LEAD))
    forged = token[:-1] + ("1" if token[-1] == "0" else "0")  # a signature one digit off (never the same)
    assert client.get("/api/health", headers={"Authorization": f"Bearer {forged}"}).status_code == 401
    lead = issue_token(Principal("lead", Role.LEAD))
    body = client.get("/api/health", headers={"Authorization": f"Bearer {lead}"}).json()
    states = {c["name"]: c["state"] for c in body["components"]}
    assert states["database"] == "ok" and states["ami"] == "down" and states["agi"] == "off"
    assert body["ok"] is False


def test_pages_send_people_without_a_session_to_login(client: TestClient) -> None:
    r = client.get("/health", headers={"Accept": "text/html"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/health"
    page = client.get("/login")
    assert page.status_code == 200 and "登录" in page.text and 'lang="zh-CN"' in page.text


def test_expired_tokens_are_refused(client: TestClient) -> None:
    old = issue_token(Principal("lead", Role.LEAD), ttl_s=60, now=1_000_000)
    assert client.get("/api/auth/me", headers={"Authorization": f"Bearer {old}"}).status_code == 401


def test_the_api_description_is_for_signed_in_users_and_needs_no_cdn(client: TestClient) -> None:
    assert client.get("/api/openapi.json").status_code == 401
    assert client.get("/docs", headers={"Accept": "text/html"}, follow_redirects=False).status_code == 303
    assert client.get("/openapi.json").status_code == client.get("/redoc").status_code == 404
    lead = {"Authorization": f"Bearer {issue_token(Principal('lead', Role.LEAD))}"}
    assert "/api/calls" in client.get("/api/openapi.json", headers=lead).json()["paths"]
    page = client.get("/docs", headers=lead).text
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in page and "cdn" not in page.lower()
    assert client.get("/static/vendor/swagger-ui/swagger-ui-bundle.js").status_code == 200
