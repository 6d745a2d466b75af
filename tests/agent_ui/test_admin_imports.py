"""导入历史工单 from the admin's pages: over HTTP, admins only; an upload is streamed to var/imports
and refused when it is not a .jsonl file of JSON objects; 检查 reports the bad lines by number and
writes nothing; 导入 needs a check (or the admin's say-so), writes the tickets and the audit event
and deletes the file; one job at a time. Then the whole of it once in Debian's chromium."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from agent_ui.admin import imports
from hotline.identity import TOKEN_COOKIE, Role
from hotline.settings import Settings
from launch.compose import web_app
from testkit.auth import Bearer, session_for, use
from tests.agent_ui.test_dept_browser import signed_in
from tests.support.browser import chromium, free_port, require_chromium, screenshot, serving
from ticketing.seed import seed_demo

ADMIN = Bearer("impadmin", Role.ADMIN)
OTHERS = {
    "operator": Bearer("impop", Role.OPERATOR, job_number="7101"),
    "lead": Bearer("implead", Role.LEAD),
    "qa": Bearer("impqa", Role.QA),
    "department": Bearer("impdept", Role.DEPARTMENT, department_id=1),
}
SOME = "0123456789abcdef"
ROUTES = [("GET", "/admin/imports"), ("GET", "/api/admin/imports"), ("POST", "/api/admin/imports?name=a.jsonl"),
          ("GET", f"/api/admin/imports/{SOME}"), ("POST", f"/api/admin/imports/{SOME}/check"),
          ("POST", f"/api/admin/imports/{SOME}/import"), ("DELETE", f"/api/admin/imports/{SOME}")]


def row(i: int, **over: Any) -> str:
    ticket = {"number": f"HZ2023{i:06d}", "status": "archived", "created_at": "2023-11-02T09:15:00+08:00",
              "closed_at": "2023-11-06T10:00:00+08:00", "category": "投诉举报", "title": f"中华路夜市占道第{i}次",
              "caller_number": f"1395301{i:04d}", "caller_name": "韩先生", "matter_course": "摊位占满人行道",
              "lead_department": "菏泽市城市管理局", "reply_text": "已清理占道摊位"}
    return json.dumps(ticket | over, ensure_ascii=False)


def jsonl(*lines: str) -> bytes:
    return ("\n".join(lines) + "\n").encode()


GOOD_AND_BAD = jsonl(row(1), row(2, lead_department="菏泽市不存在局"), row(3), "这一行不是 JSON", row(4))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(var_dir=tmp_path, services=[])


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    app = web_app(settings)
    seed_demo(app.state.engine, tickets=0)  # the demo directory: 菏泽市城市管理局 among them
    with use(TestClient(app)) as c:
        yield c


def uploaded(client: TestClient, body: bytes, name: str = "历史工单.jsonl") -> dict[str, Any]:
    res = client.post("/api/admin/imports", params={"name": name}, content=body, headers=ADMIN)
    assert res.status_code == 201, res.text
    return res.json()


def finished(client: TestClient, upload_id: str, kind: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        got = client.get(f"/api/admin/imports/{upload_id}", headers=ADMIN).json()
        job = got["check" if kind == "check" else "import"]
        if job and job["state"] != "running":
            return got
        assert time.monotonic() < deadline, got
        time.sleep(0.05)


def numbers(client: TestClient) -> list[str]:
    with client.app.state.engine.connect() as c:
        return list(c.execute(sa.text("SELECT number FROM ticket WHERE source = 'import' ORDER BY number")).scalars())


def files(settings: Settings) -> list[str]:
    folder = settings.var_dir / "imports"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_only_admins_reach_the_page_and_its_api(client: TestClient, settings: Settings) -> None:
    for method, path in ROUTES:
        anonymous = client.request(method, path, headers={"X-Requested-With": "hotline"}, content=b"{}")
        assert anonymous.status_code == 401, (method, path)
        for role, headers in OTHERS.items():
            res = client.request(method, path, headers=headers, content=b"{}")
            assert res.status_code == 403, (role, method, path, res.status_code)
            assert res.json()["detail"] == "当前角色无权访问此功能"
    assert files(settings) == []
    page = client.get("/admin/imports", headers=ADMIN)
    assert page.status_code == 200 and "导入历史工单" in page.text and 'href="/admin/imports"' in page.text
    assert "/static/admin/imports.js" in page.text
    for other in ("/admin", "/admin/sip"):  # the link stands beside the other admin pages
        assert 'href="/admin/imports"' in client.get(other, headers=ADMIN).text


def test_a_cookie_upload_needs_the_pages_header(client: TestClient, settings: Settings) -> None:
    token = session_for(client, "impadmin", Role.ADMIN)
    client.cookies.set(TOKEN_COOKIE, token)
    try:
        forged = client.post("/api/admin/imports", params={"name": "a.jsonl"}, content=jsonl(row(1)))
        assert forged.status_code == 403 and "防跨站" in forged.json()["detail"]
        assert files(settings) == []
        ours = client.post("/api/admin/imports", params={"name": "a.jsonl"}, content=jsonl(row(1)),
                           headers={"X-Requested-With": "hotline", "Content-Type": "application/octet-stream"})
        assert ours.status_code == 201, ours.text
    finally:
        client.cookies.clear()


def test_what_is_not_a_jsonl_file_is_refused_in_chinese(client: TestClient, settings: Settings,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(body: bytes, name: str = "a.jsonl") -> tuple[int, str]:
        res = client.post("/api/admin/imports", params={"name": name}, content=body, headers=ADMIN)
        return res.status_code, res.json()["detail"]

    assert refused(jsonl(row(1)), "工单.xlsx") == (415, "只能导入 .jsonl 文件（JSON lines：每行一张工单的 JSON 对象）")
    assert refused(b"") == (422, "文件是空的：请选择原系统导出的 .jsonl 文件")
    assert refused(b"PK\x03\x04\x00\x00" * 1000)[1].startswith("文件内容不是文本")
    assert refused(b'[{"number": "1"}]\n')[1].startswith("文件内容不是 JSON lines")
    monkeypatch.setattr(imports, "MAX_BYTES", 2000)
    code, why = refused(jsonl(*(row(i) for i in range(1, 20))))
    assert code == 413 and why.startswith("文件过大：不能超过")
    assert files(settings) == []  # nothing refused stays on the disk, not even in part
    assert client.get("/api/admin/imports", headers=ADMIN).json()["uploads"] == []


def test_a_check_reports_the_bad_lines_by_number_and_writes_nothing(client: TestClient, settings: Settings) -> None:
    up = uploaded(client, b"\xef\xbb\xbf" + GOOD_AND_BAD)  # a BOM, as Windows tools write
    assert (up["size"], up["checked"], up["uploaded_by"]) == (len(GOOD_AND_BAD) + 3, False, "impadmin")
    assert files(settings) == [f"{up['id']}.jsonl"]
    before = client.post(f"/api/admin/imports/{up['id']}/import", headers=ADMIN)
    assert before.status_code == 409 and before.json()["detail"].startswith("请先检查此文件")

    assert client.post(f"/api/admin/imports/{up['id']}/check", headers=ADMIN).status_code == 202
    got = finished(client, up["id"], "check")
    job = got["check"]
    assert got["checked"] and job["state"] == "done"
    assert (job["read"], job["imported"], job["already_present"], job["rejected"]) == (5, 3, 0, 2)
    assert (job["lines"], job["bytes_read"], job["size"]) == (5, up["size"], up["size"])
    assert [(e["line"], e["reason"]) for e in job["errors"]] == [
        (2, "单位不在单位目录中：菏泽市不存在局"), (4, "此行不是有效的 JSON")]
    assert numbers(client) == [] and client.app.state.accounts.audit.list(action="ticket_import")[0] == 0
    assert files(settings) == [f"{up['id']}.jsonl"]  # kept for the import


def test_the_import_writes_the_tickets_and_the_audit_event_and_deletes_the_file(client: TestClient,
                                                                                settings: Settings) -> None:
    up = uploaded(client, GOOD_AND_BAD)
    client.post(f"/api/admin/imports/{up['id']}/check", headers=ADMIN)
    finished(client, up["id"], "check")
    assert client.post(f"/api/admin/imports/{up['id']}/import", headers=ADMIN).status_code == 202
    got = finished(client, up["id"], "import")
    job = got["import"]
    assert job["state"] == "done" and (job["imported"], job["already_present"], job["rejected"]) == (3, 0, 2)
    assert [e["line"] for e in job["errors"]] == [2, 4]
    assert numbers(client) == ["HZ2023000001", "HZ2023000003", "HZ2023000004"]
    total, events = client.app.state.accounts.audit.list(action="ticket_import")
    assert total == 1 and events[0]["actor"] == "impadmin" and events[0]["target"] == "历史工单.jsonl"
    assert events[0]["detail"] == "导入 3，已存在 0，有误 2" and events[0]["action_label"] == "导入历史工单"
    assert got["removed"] and files(settings) == []  # imported: the citizens' data leaves var/imports
    again = client.post(f"/api/admin/imports/{up['id']}/import", headers=ADMIN, json={"unchecked": True})
    assert again.status_code == 409 and "已导入并删除" in again.json()["detail"]

    # the same file once more, imported without a check at the admin's word: nothing is written twice
    second = uploaded(client, GOOD_AND_BAD)
    res = client.post(f"/api/admin/imports/{second['id']}/import", headers=ADMIN, json={"unchecked": True})
    assert res.status_code == 202
    job = finished(client, second["id"], "import")["import"]
    assert (job["imported"], job["already_present"], job["rejected"]) == (0, 3, 2)
    assert len(numbers(client)) == 3 and client.app.state.accounts.audit.list(action="ticket_import")[0] == 2


def test_a_second_job_while_one_runs_is_refused_with_409(client: TestClient, settings: Settings,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    store = client.app.state.store
    real, release, entered = store.imports.tickets, threading.Event(), threading.Event()

    def slow(rows, actor, **kw):  # a long import: it waits for the test to let it go
        entered.set()
        assert release.wait(30)
        return real(rows, actor, **kw)

    monkeypatch.setattr(store.imports, "tickets", slow)
    first, second = uploaded(client, jsonl(row(1), row(2))), uploaded(client, jsonl(row(3)))
    assert client.post(f"/api/admin/imports/{first['id']}/import", headers=ADMIN,
                       json={"unchecked": True}).status_code == 202
    assert entered.wait(10)
    try:
        for kind in ("check", "import"):
            res = client.post(f"/api/admin/imports/{second['id']}/{kind}", headers=ADMIN, json={"unchecked": True})
            assert res.status_code == 409, res.text
            assert res.json()["detail"].startswith("已有一项导入正在进行（历史工单.jsonl，impadmin）")
        assert client.get("/api/admin/imports", headers=ADMIN).json()["busy"] == first["id"]
        busy = client.delete(f"/api/admin/imports/{first['id']}", headers=ADMIN)
        assert busy.status_code == 409  # its file stays while it is read
    finally:
        release.set()
    assert finished(client, first["id"], "import")["import"]["imported"] == 2
    assert client.post(f"/api/admin/imports/{second['id']}/check", headers=ADMIN).status_code == 202
    assert finished(client, second["id"], "check")["check"]["imported"] == 1


def test_an_upload_left_for_a_day_is_deleted(client: TestClient, settings: Settings) -> None:
    kept, old = uploaded(client, jsonl(row(1))), uploaded(client, jsonl(row(2)))
    desk = client.app.state.ticket_imports
    desk.uploads[old["id"]].at -= timedelta(days=1, minutes=1)
    listed = client.get("/api/admin/imports", headers=ADMIN).json()["uploads"]
    assert [u["id"] for u in listed] == [kept["id"]] and files(settings) == [f"{kept['id']}.jsonl"]
    assert client.get(f"/api/admin/imports/{old['id']}", headers=ADMIN).status_code == 404
    assert client.delete(f"/api/admin/imports/{kept['id']}", headers=ADMIN).status_code == 200
    assert files(settings) == []


# --- in the browser ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Any]]:
    require_chromium()
    port = free_port()
    app = web_app(Settings(var_dir=tmp_path_factory.mktemp("var"), web_port=port, services=[]))
    seed_demo(app.state.engine, tickets=0)
    with serving(app, port):
        yield f"http://127.0.0.1:{port}", app


@pytest.mark.browser
def test_an_admin_checks_and_imports_a_file_in_the_browser(served, tmp_path: Path) -> None:
    url, app = served
    source = tmp_path / "原系统导出.jsonl"
    source.write_bytes(jsonl(row(11), row(12, category="闲聊"), row(13)))
    with chromium() as browser:
        admin, errors = signed_in(browser, url, "admin", "demoadmin", "/admin")
        confirmations: list[str] = []
        admin.on("dialog", lambda d: (confirmations.append(d.message), d.accept()))

        admin.click("nav a:has-text('导入历史工单')")
        admin.wait_for_url(f"{url}/admin/imports")
        assert admin.is_disabled("#check") and admin.is_disabled("#run")
        admin.set_input_files("#file", str(source))
        admin.wait_for_selector("#check:enabled")
        assert "原系统导出.jsonl" in admin.inner_text("#upload-info") and "尚未检查" in admin.inner_text("#upload-info")
        assert admin.evaluate("document.activeElement.id") == "check"  # the next step has the focus
        admin.click("#check")
        admin.wait_for_selector("#summary:has-text('检查完成')")
        assert "可导入 2 张" in admin.inner_text("#summary") and "有误 1 行" in admin.inner_text("#summary")
        bad = admin.inner_text("#errors tbody")
        assert "第 2 行" in bad and "诉求类别取值无效" in bad and "第 1 行" not in bad and "第 3 行" not in bad
        assert admin.get_attribute("#bar", "value") == "1000"
        assert numbers_in(app) == []
        screenshot(admin, "admin-imports-checked")

        assert admin.evaluate("document.activeElement.id") == "run"
        admin.click("#run")
        admin.wait_for_selector("#summary:has-text('导入完成')")
        assert confirmations and "1 行有误" in confirmations[-1]
        assert "已导入 2 张" in admin.inner_text("#summary") and admin.inner_text("#n-imported") == "2"
        assert "已导入，文件已删除" in admin.inner_text("#upload-info") and admin.is_disabled("#run")
        assert numbers_in(app) == ["HZ2023000011", "HZ2023000013"]
        screenshot(admin, "admin-imports-done")

        admin.click("nav a:has-text('审计日志')")
        admin.wait_for_selector("#events tbody tr")
        logged = admin.inner_text("#events")
        assert "导入历史工单" in logged and "导入 2，已存在 0，有误 1" in logged
        assert errors == []


def numbers_in(app: Any) -> list[str]:
    with app.state.engine.connect() as c:
        return list(c.execute(sa.text("SELECT number FROM ticket WHERE source = 'import' ORDER BY number")).scalars())
