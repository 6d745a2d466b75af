"""分机密码 over HTTP: admins only; the list never carries a password; a password is answered only
when asked for (查看) or when made (更换), each time audited and never cached."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from hotline.asterisk import secrets
from hotline.identity import Role
from hotline.settings import Settings
from launch.compose import web_app
from testkit.auth import Bearer, use

ADMIN = Bearer("sipadmin", Role.ADMIN)
OTHERS = {
    "lead": Bearer("siplead", Role.LEAD),
    "operator": Bearer("sipop", Role.OPERATOR, job_number="7001"),
    "qa": Bearer("sipqa", Role.QA),
    "department": Bearer("sipdept", Role.DEPARTMENT, department_id=1),
}
ROUTES = [("GET", "/api/admin/sip"), ("GET", "/admin/sip"), ("POST", "/api/admin/sip/8001/reveal"),
          ("POST", "/api/admin/sip/8001/rotate")]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # mode remote: a rotation renders pjsip.conf for that server and reloads nothing here
    return Settings(var_dir=tmp_path, services=[], seats=["8001", "8002"], department_lines=["2001"],
                    asterisk_mode="remote")


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with use(TestClient(web_app(settings))) as c:
        yield c


def audited(client: TestClient, action: str) -> list[dict[str, object]]:
    return client.app.state.accounts.audit.list(action=action)[1]


def test_only_admins_reach_the_page_and_its_api(client: TestClient, settings: Settings) -> None:
    secrets.ensure_passwords(settings)
    before = settings.seat_password("8001")
    for method, path in ROUTES:
        anonymous = client.request(method, path, headers={"X-Requested-With": "hotline"})
        assert anonymous.status_code == 401, (method, path)
        for role, headers in OTHERS.items():
            res = client.request(method, path, headers=headers)
            assert res.status_code == 403, (role, method, path, res.status_code)
            assert res.json()["detail"] == "当前角色无权访问此功能"
    assert settings.seat_password("8001") == before  # nobody but an admin changed anything
    assert audited(client, "sip_reveal") == audited(client, "sip_rotate") == []
    page = client.get("/admin/sip", headers=ADMIN)
    assert page.status_code == 200 and "分机密码" in page.text and 'href="/admin/sip"' in page.text


def test_the_list_says_which_lines_have_a_password_but_never_shows_one(client: TestClient,
                                                                       settings: Settings) -> None:
    fresh = client.get("/api/admin/sip", headers=ADMIN).json()
    assert [(line["line"], line["kind"], line["label"], line["has_password"]) for line in fresh["lines"]] == [
        ("8001", "seat", "坐席 8001", False), ("8002", "seat", "坐席 8002", False),
        ("2001", "department", "部门线路 2001", False)]
    assert "坐席 8001 的 SIP 密码尚未生成：请运行 hotline asterisk install" in fresh["problems"]

    secrets.ensure_passwords(settings)
    settings.resolved_ami_secret(create=True)
    got = client.get("/api/admin/sip", headers=ADMIN)
    assert all(line["has_password"] and line["changed_at"] for line in got.json()["lines"])
    assert got.json()["problems"] == []
    for sip in secrets.lines(settings):
        assert sip.password not in got.text


def test_reveal_answers_the_password_once_asked_and_audits_it(client: TestClient, settings: Settings) -> None:
    secrets.ensure_passwords(settings)
    res = client.post("/api/admin/sip/2001/reveal", headers=ADMIN)
    assert res.status_code == 200 and res.headers["cache-control"] == "no-store"
    assert res.json()["password"] == settings.seat_password("2001") and res.json()["label"] == "部门线路 2001"
    [event] = audited(client, "sip_reveal")
    assert (event["actor"], event["target"], event["action_label"]) == ("sipadmin", "2001", "查看分机密码")
    assert settings.seat_password("2001") not in str(event)  # the log says who looked, not what they saw


def test_rotate_stores_a_new_password_answers_it_once_and_audits_it(client: TestClient,
                                                                     settings: Settings) -> None:
    secrets.ensure_passwords(settings)
    old = settings.seat_password("8002")
    res = client.post("/api/admin/sip/8002/rotate", headers=ADMIN)
    assert res.status_code == 200 and res.headers["cache-control"] == "no-store"
    body = res.json()
    new = settings.seat_password("8002")
    assert new != old and body["password"] == new and len(new) >= secrets.MIN_LENGTH
    assert body["reloaded"] is False and "etc-remote" in body["note"]  # mode remote: copy it to that server
    assert f"password = {new}" in (settings.asterisk_dir / "etc-remote" / "pjsip.conf").read_text()
    assert settings.seat_password("8001") != new  # the other lines keep theirs
    [event] = audited(client, "sip_rotate")
    assert (event["actor"], event["target"], event["action_label"]) == ("sipadmin", "8002", "更换分机密码")
    assert new not in str(event) and old not in str(event)
    listed = client.get("/api/admin/sip", headers=ADMIN)
    assert new not in listed.text


def test_an_unknown_line_is_a_404_in_chinese_and_nothing_is_written(client: TestClient,
                                                                    settings: Settings) -> None:
    for line in ("9999", "ami", ".lock", "8001x"):
        for action in ("reveal", "rotate"):
            res = client.post(f"/api/admin/sip/{line}/{action}", headers=ADMIN)
            assert res.status_code == 404, (line, action)
            assert res.json()["detail"].startswith("没有这条线路"), res.json()
    assert not secrets.sip_dir(settings).exists()
    assert audited(client, "sip_reveal") == audited(client, "sip_rotate") == []


def test_a_line_without_a_password_cannot_be_revealed_but_can_be_given_one(client: TestClient,
                                                                           settings: Settings) -> None:
    res = client.post("/api/admin/sip/8001/reveal", headers=ADMIN)
    assert res.status_code == 409 and "尚未生成" in res.json()["detail"]
    made = client.post("/api/admin/sip/8001/rotate", headers=ADMIN).json()
    assert made["password"] == settings.seat_password("8001") != ""


def test_with_the_session_cookie_a_rotation_needs_the_csrf_header(client: TestClient, settings: Settings) -> None:
    client.app.state.accounts.upsert("cookieadmin", "Cookie-admin-2026!", role="admin", display_name="管理员")
    assert client.post("/api/auth/login", json={"username": "cookieadmin",
                                                 "password": "Cookie-admin-2026!"}).status_code == 200
    forged = client.post("/api/admin/sip/8001/rotate", content=b"x", headers={"Content-Type": "text/plain"})
    assert forged.status_code == 403 and "防跨站" in forged.json()["detail"]
    assert not secrets.sip_dir(settings).exists()
    ours = client.post("/api/admin/sip/8001/rotate", headers={"X-Requested-With": "hotline"})
    assert ours.status_code == 200 and ours.json()["password"] == settings.seat_password("8001")
