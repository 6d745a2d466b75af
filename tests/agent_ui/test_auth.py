"""Signing in and out over HTTP: server-side sessions that end at once, the throttle, safe
redirects, the Host allow-list, the forced password change, and production's first admin."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from accounts.admin import AccountAdmin, Actor
from agent_ui.pages import safe_next
from hotline.identity import TOKEN_COOKIE, Role
from hotline.settings import Settings
from launch.compose import web_app
from testkit.auth import bearer, use


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with use(TestClient(web_app(Settings(var_dir=tmp_path, services=[])))) as c:
        yield c


def login(client: TestClient, username: str, password: str, **kw):
    return client.post("/api/auth/login", json={"username": username, "password": password}, **kw)


def test_the_cookie_is_httponly_strict_and_wrong_passwords_learn_nothing(client: TestClient) -> None:
    bad_user, bad_pass = login(client, "nobody", "x"), login(client, "lead", "x")
    assert bad_user.status_code == bad_pass.status_code == 401
    assert bad_user.json() == bad_pass.json() == {"detail": "用户名或密码错误"}
    ok = login(client, "op1024", "demo1024")
    assert ok.status_code == 200 and ok.json()["user"]["job_number"] == "1024"
    cookie = ok.headers["set-cookie"].lower()
    assert f"{TOKEN_COOKIE}=" in cookie and "httponly" in cookie and "samesite=strict" in cookie
    assert "secure" not in cookie  # plain HTTP on loopback: a Secure cookie would never come back
    assert client.get("/api/auth/me").json()["role"] == "operator"


def test_logout_ends_the_session_on_the_server_not_only_the_cookie(client: TestClient) -> None:
    token = login(client, "lead", "demolead").json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/auth/me", headers=headers).status_code == 200
    assert client.post("/api/auth/logout", headers={"X-Requested-With": "hotline"}).status_code == 200
    assert client.get("/api/auth/me", headers=headers).status_code == 401  # the same token, copied before
    assert client.get("/api/auth/me").status_code == 401


def test_disabling_an_account_or_changing_its_role_revokes_within_one_request(client: TestClient) -> None:
    admin = bearer(client, "root-admin", Role.ADMIN)
    op = login(client, "op1025", "demo1025").json()["token"]
    qa = login(client, "qa", "demoqa").json()["token"]
    assert client.post("/api/admin/accounts/op1025/disable", headers=admin).status_code == 200
    assert client.get("/api/auth/me", headers={"Authorization": f"Bearer {op}"}).status_code == 401
    assert client.patch("/api/admin/accounts/qa", json={"role": "lead"}, headers=admin).status_code == 200
    assert client.get("/api/auth/me", headers={"Authorization": f"Bearer {qa}"}).status_code == 401
    assert login(client, "op1025", "demo1025").status_code == 401  # disabled: the same answer as a wrong password


def test_brute_force_is_held_per_account_with_retry_after(client: TestClient) -> None:
    for _ in range(5):
        assert login(client, "lead", "guess").status_code == 401
    held = login(client, "lead", "demolead")
    assert held.status_code == 429 and int(held.headers["retry-after"]) > 0
    assert held.json()["detail"].startswith("登录失败次数过多")
    assert login(client, "qa", "demoqa").status_code == 200  # another account from the same client is not held


def test_no_tokens_in_urls(client: TestClient) -> None:
    token = login(client, "lead", "demolead").json()["token"]
    client.cookies.clear()
    assert client.get(f"/api/auth/me?token={token}").status_code == 401
    with pytest.raises(WebSocketDisconnect), client.websocket_connect(f"/ws?token={token}"):
        pass


def test_the_websocket_closes_when_its_session_ends(client: TestClient) -> None:
    token = login(client, "lead", "demolead").json()["token"]
    client.cookies.clear()
    with client.websocket_connect("/ws", headers={"Authorization": f"Bearer {token}"}) as ws:
        assert ws.receive_json()["type"] == "hello"
        admin = bearer(client, "root-admin", Role.ADMIN)
        assert client.post("/api/admin/accounts/lead/logout", headers=admin).json() == {"revoked": 1}
        with pytest.raises(WebSocketDisconnect) as closed:
            while True:
                ws.receive_json()
    assert closed.value.code == 4401


@pytest.mark.parametrize("target", ["https://evil.example", "//evil.example", "/\\evil.example", "/\\/evil.example",
                                    "/\t/evil.example", "javascript:alert(1)", "evil.example", "/%0a/x\n"])
def test_next_after_login_never_leaves_the_site(client: TestClient, target: str) -> None:
    assert safe_next(target) == "/"
    page = client.get("/login", params={"next": target}).text
    assert "evil.example" not in page.split("<script>")[-1] or '"/"' in page


def test_next_keeps_a_path_of_this_site() -> None:
    assert safe_next("/tickets?view=mine") == "/tickets?view=mine"


def test_a_host_that_is_not_ours_is_refused(client: TestClient) -> None:
    r = client.get("/login", headers={"Host": "rebind.evil.example"})
    assert r.status_code == 400 and "访问地址" in r.text
    assert client.get("/login", headers={"Host": "127.0.0.1:8000"}).status_code == 200
    with pytest.raises(WebSocketDisconnect), client.websocket_connect("/ws", headers={"Host": "rebind.evil.example"}):
        pass


def test_every_answer_carries_the_protective_headers(client: TestClient) -> None:
    r = client.get("/login")
    assert r.headers["x-frame-options"] == "DENY" and r.headers["x-content-type-options"] == "nosniff"
    assert "strict-transport-security" not in r.headers  # only over TLS


def test_a_reset_password_must_be_changed_before_anything_else(client: TestClient) -> None:
    accounts = client.app.state.accounts
    temporary = AccountAdmin(accounts).reset_password(Actor("admin"), "op1024")
    assert login(client, "op1024", temporary).json()["user"]["must_change_password"] is True
    assert client.get("/api/tickets").status_code == 403
    assert client.get("/api/tickets").json()["detail"] == "请先修改初始密码"
    page = client.get("/console", headers={"Accept": "text/html"}, follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "/account/password"
    assert client.get("/", follow_redirects=False).headers["location"] == "/account/password"
    assert client.get("/account/password").status_code == 200
    weak = client.post("/api/auth/password", json={"old_password": temporary, "new_password": "12345678"})
    assert weak.status_code == 400 and "至少 10 位" in weak.json()["detail"]
    ok = client.post("/api/auth/password", json={"old_password": temporary, "new_password": "Zhang-min-2026"})
    assert ok.status_code == 200
    assert client.get("/api/tickets").status_code == 200


def test_setup_creates_the_first_admin_once_with_the_printed_token(client: TestClient) -> None:
    accounts = client.app.state.accounts
    accounts.remove_demo("test")  # as in production: no admin yet
    assert client.get("/setup").status_code == 404  # no token waiting
    token = client.app.state.setup_token.issue()
    assert client.get("/setup").status_code == 200
    body = {"token": "wrong", "username": "chief", "display_name": "主任", "password": "Centre-head-2026"}
    assert client.post("/api/auth/setup", json=body).status_code == 403
    assert client.post("/api/auth/setup", json=body | {"token": token, "password": "weak"}).status_code == 400
    assert client.post("/api/auth/setup", json=body | {"token": token}).json()["username"] == "chief"
    assert client.post("/api/auth/setup", json=body | {"token": token, "username": "chief2"}).status_code == 403
    assert login(client, "chief", "Centre-head-2026").json()["user"]["role"] == "admin"
    assert client.get("/", follow_redirects=False).headers["location"] == "/admin"


def test_a_signed_in_request_reads_its_session_without_the_thread_pool(client: TestClient, monkeypatch) -> None:
    """Every dependency of an authenticated route is ``async def`` and the session read goes to the
    process's reader threads (hotline.readers): a hop through anyio's thread pool cost the loop
    more than the read itself, on every request (issue #15)."""
    import anyio.to_thread

    hops: list[str] = []
    pooled = anyio.to_thread.run_sync

    async def counted(fn, *args, **kw):
        hops.append(getattr(fn, "__qualname__", repr(fn)))
        return await pooled(fn, *args, **kw)

    assert login(client, "op1024", "demo1024").status_code == 200
    monkeypatch.setattr(anyio.to_thread, "run_sync", counted)
    assert client.get("/api/auth/me").json()["role"] == "operator"  # the session, the principal
    assert client.post("/api/seat/ready", headers={"X-Requested-With": "x"}).status_code == 503  # + role, bridge
    assert client.get("/api/auth/me", cookies={TOKEN_COOKIE: "nonsense"}).status_code == 401
    assert hops == []
    client.post("/api/auth/logout", headers={"X-Requested-With": "x"})  # ends the session: the pool, counted
    assert hops
