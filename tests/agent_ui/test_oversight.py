"""访问记录 (agent_ui/oversight.py): the confidential-read register over all tickets for leads
and admins, filtered and exported (the export itself audited), and the page that shows it with
the recording-access register; in Debian's chromium, a lead finds who opened a confidential
ticket and exports it."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from hotline.identity import Principal, Role
from hotline.settings import Settings
from launch.compose import web_app
from testkit.auth import Bearer, use

OP = Principal("op1024", Role.OPERATOR, job_number="1024")
OP2 = Principal("op1025", Role.OPERATOR, job_number="1025")
LEAD = Bearer("lead", Role.LEAD)
ADMIN = Bearer("admin", Role.ADMIN)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, object, object]]:
    with use(TestClient(web_app(Settings(var_dir=tmp_path_factory.mktemp("var"), services=[])))) as c:
        store = c.app.state.store
        secret = store.tickets.create({"caller_number": "13953012345", "caller_name": "王先生", "category": "投诉举报",
                                       "subcategory": "举报", "confidential": True, "title": "夜间施工噪音扰民"}, OP)
        plain = store.tickets.create({"caller_number": "05305551234", "category": "咨询", "title": "路灯不亮"}, OP2)
        c.get(f"/api/desk/tickets/{secret.id}", headers=Bearer(OP2))  # op1025 opens the confidential file
        c.get(f"/api/desk/tickets/{plain.id}", headers=Bearer(OP2))  # not confidential: no register row
        yield c, secret, plain


def test_leads_and_admins_read_the_register_others_may_not(client) -> None:
    c, secret, _ = client
    for who in (Bearer(OP), Bearer("qa", Role.QA), Bearer("d1", Role.DEPARTMENT, department_id=1)):
        assert c.get("/api/audit/confidential-reads", headers=who).status_code == 403
        assert c.get("/audit", headers=who).status_code == 403
    assert c.get("/api/audit/confidential-reads").status_code == 401
    got = c.get("/api/audit/confidential-reads", headers=LEAD).json()
    rows = {(r["username"], r["purpose"]) for r in got["items"]}
    assert {("op1024", "create"), ("op1025", "detail")} <= rows and got["total"] == len(got["items"])
    assert {r["ticket_number"] for r in got["items"]} == {secret.number}  # only the confidential ticket
    detail = next(r for r in got["items"] if r["purpose"] == "detail")
    assert detail["purpose_label"] == "查看详情" and detail["masked"] is False
    only = c.get("/api/audit/confidential-reads", params={"username": "op1025"}, headers=ADMIN).json()
    assert {r["username"] for r in only["items"]} == {"op1025"}
    none = c.get("/api/audit/confidential-reads", params={"ticket_number": "NOPE"}, headers=LEAD).json()
    assert none == {"total": 0, "items": []}
    bad = c.get("/api/audit/confidential-reads", params={"date_from": "2026-12-05", "date_to": "2026-12-01"},
                headers=LEAD)
    assert bad.status_code == 422 and bad.json()["detail"] == "结束日期不能早于开始日期"


def test_the_register_exports_and_the_export_is_audited(client) -> None:
    c, secret, _ = client
    r = c.get("/api/audit/confidential-reads/export", params={"fmt": "xlsx"}, headers=LEAD)
    assert r.status_code == 200 and "attachment" in r.headers["content-disposition"]
    sheet = load_workbook(io.BytesIO(r.content)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0] == ("时间", "工单编号", "查阅人", "角色", "方式", "号码已遮蔽")
    assert {row[1] for row in rows[1:]} == {secret.number} and len(rows) >= 3
    total, events = c.app.state.accounts.audit.list(action="log_export")
    assert total >= 1 and events[0]["actor"] == "lead" and "导出保密工单查阅记录" in events[0]["detail"]


def test_the_page_is_in_both_navs(client) -> None:
    c, _, _ = client
    for who in (LEAD, ADMIN):
        page = c.get("/audit", headers=who)
        assert page.status_code == 200 and "录音访问记录" in page.text and "保密工单查阅记录" in page.text
        assert 'href="/audit"' in page.text


@pytest.mark.browser
def test_a_lead_finds_who_opened_a_confidential_ticket(client, tmp_path_factory) -> None:
    from tests.support.browser import chromium, free_port, require_chromium, serving, sign_in

    require_chromium()
    port = free_port()
    settings = Settings(var_dir=tmp_path_factory.mktemp("var-browser"), web_port=port, services=[])
    app = web_app(settings)
    store = app.state.store
    secret = store.tickets.create({"caller_number": "13953012345", "caller_name": "王先生", "category": "投诉举报",
                                   "subcategory": "举报", "confidential": True, "title": "夜间施工噪音扰民"}, OP)
    store.tickets.get(secret.id, OP2)
    url = f"http://127.0.0.1:{port}"
    with serving(app, port), chromium() as browser:
        context = browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN")
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        sign_in(page, url, "lead", "demolead", lands_on="/lead")
        page.click("nav.lead-nav >> text=访问记录")
        # the tab marked by the page's script: its key handler is bound (under load the "2" came first)
        page.wait_for_selector("#tab-recordings.on")
        page.keyboard.press("2")  # the confidential-read register
        page.wait_for_selector("#reads:not([hidden]) tbody tr", timeout=10000)
        page.fill("#reads input[name=username]", "op1025")
        page.press("#reads input[name=username]", "Enter")
        page.wait_for_function("[...document.querySelectorAll('#reads tbody tr')].length === 1"
                               " && document.querySelector('#reads tbody').textContent.includes('op1025')")
        assert secret.number in page.locator("#reads tbody").inner_text()
        with page.expect_download() as dl:
            page.click("#reads [data-export=csv]")
        assert "op1025" in Path(dl.value.path()).read_text(encoding="utf-8-sig")
        assert errors == []
        context.close()
