"""工单中心 and the console's new ticket fields in Debian's chromium (no Asterisk: tickets are put in
the store directly or through the API). A lead filters, searches with the keyboard, opens a
confidential ticket and sees who read it, supervises an overdue one and exports; an operator finds
their own tickets, transfers one to a lead and a co-handling department, and the table follows a
ticket another operator files; in the console an operator marks an emergency and is shown the
ticket number and query code to tell the citizen. ``HOTLINE_LEAD_SCREENSHOTS=<dir>`` keeps
screenshots."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from hotline.identity import Principal, Role
from hotline.settings import Settings
from launch.compose import web_app
from testkit.auth import signed_in
from tests.support.browser import chromium, free_port, require_chromium, screenshot, serving
from ticketing.schemas import SystemActor
from ticketing.store import Store, context_from

pytestmark = pytest.mark.browser
ADMIN = SystemActor()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, object, object]]:
    """The app with three tickets, served, and a chromium to look at it with."""
    require_chromium()
    port = free_port()
    app = web_app(Settings(var_dir=tmp_path_factory.mktemp("var"), web_port=port, services=[]))
    store: Store = app.state.store
    city = store.directory.save({"name": "菏泽市城市管理局", "duties": "路灯 噪音 占道"}, ADMIN).id
    water = store.directory.save({"name": "菏泽市水务集团", "duties": "供水 停水 漏水"}, ADMIN).id
    op1024, op1025 = (Principal(u, Role.OPERATOR, job_number=u[2:]) for u in ("op1024", "op1025"))
    noise = store.tickets.create({"caller_number": "13953012345", "caller_name": "王先生", "category": "投诉举报",
                                  "confidential": True, "title": "夜间施工噪音扰民"}, op1024)
    store.actions.transfer(noise.id, city, "请核查", ADMIN, co_department_ids=[water])
    store.attachments.add(noise.id, "现场照片.pdf", b"%PDF-1.4 noise at night", op1024)
    store.tickets.create({"caller_number": "05305551234", "category": "咨询", "title": "路灯不亮怎么报修",
                          "handling_mode": "工单转办"}, op1025)
    ten_days_ago = datetime.now(UTC) - timedelta(days=10)
    past = Store.on(context_from(app.state.settings, store.engine, clock=lambda: ten_days_ago))
    leak = {"caller_number": "13800000001", "category": "一般诉求", "title": "水管漏水十天"}
    old = past.tickets.create(leak, op1025)
    past.actions.transfer(old.id, water, "请尽快维修", ADMIN)
    with serving(app, port), chromium() as browser:
        yield f"http://127.0.0.1:{port}", app, browser


def visit(browser, url: str, username: str, password: str, path: str):
    """A fresh browser sent to ``path``: without a session it lands on the login page, signs in from
    the keyboard and is sent back."""
    context = browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN", accept_downloads=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{url}{path}")
    page.wait_for_url(re.compile(r".*/login\?next="))
    page.wait_for_function("document.activeElement.name === 'username'")  # the login page focuses it
    page.keyboard.type(username)
    page.keyboard.press("Tab")
    page.keyboard.type(password)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{url}{path}", timeout=10_000)
    return page, errors


def rows(page) -> list[str]:
    return page.locator("#tickets tbody tr").all_inner_texts()


def wait_rows(page, count: int) -> None:
    page.wait_for_function(f"document.querySelectorAll('#tickets tbody tr').length === {count}", timeout=10_000)


def test_a_lead_filters_searches_by_keyboard_reads_the_log_supervises_and_exports(served) -> None:
    url, app, browser = served
    page, errors = visit(browser, url, "lead", "demolead", "/lead")
    page.click("nav a:has-text('工单中心')")
    page.wait_for_url(f"{url}/tickets")
    wait_rows(page, 3)
    page.select_option("select[name=colour]", "red")  # 超期: only the leak nobody accepted
    wait_rows(page, 1)
    assert "水管漏水十天" in rows(page)[0] and "超期" in rows(page)[0]
    page.click("#clear-filters")
    wait_rows(page, 3)

    page.locator("body").press("/")  # / focuses the full-text box
    assert page.evaluate("document.activeElement.id") == "q"
    page.keyboard.type("噪音")
    page.keyboard.press("Enter")
    wait_rows(page, 1)
    page.keyboard.press("ArrowDown")  # from the box to the first row
    page.keyboard.press("Enter")  # opens it
    panel = page.locator("#panel")
    panel.wait_for(state="visible", timeout=5_000)
    assert "保密" in panel.locator("h1").inner_text()
    departments = panel.locator("section:has(h2:text('承办单位'))").inner_text()
    assert "牵头 菏泽市城市管理局" in departments and "协办 菏泽市水务集团" in departments
    reads = panel.locator("#p-reads")
    reads.locator("li:has-text('lead')").first.wait_for(timeout=5_000)  # the lead's own read is logged
    assert "查看详情" in reads.inner_text()
    files = panel.locator("#p-attachments")
    page.wait_for_function("!document.getElementById('p-attachments').textContent.includes('正在读取')")
    with page.expect_download() as download:  # listed, and downloaded through the ticket's own route
        files.locator("a:has-text('现场照片.pdf')").click()
    assert download.value.path().read_bytes().startswith(b"%PDF")
    screenshot(page, "desk-confidential-1366")
    page.keyboard.press("Escape")
    panel.wait_for(state="hidden", timeout=5_000)

    page.click("#clear-filters")
    wait_rows(page, 3)
    page.click("#tickets tbody tr:has-text('水管漏水十天')")
    panel.wait_for(state="visible", timeout=5_000)
    panel.locator("button[data-act=supervise]").click()
    panel.locator("textarea[name=reason]").fill("漏水十天未修，请今日处理")
    panel.locator("button:has-text('确定督办')").click()
    panel.locator(".notes li:has-text('漏水十天未修，请今日处理')").wait_for(timeout=5_000)
    assert "待承办单位答复" in panel.locator(".notes").inner_text()
    assert "已督办" in page.inner_text("#notice")

    page.click("button[data-view=supervised]")  # 督办中: each note, its department and the answer
    note = page.locator("#supervisions tbody tr:has-text('漏水十天未修，请今日处理')")
    note.wait_for(timeout=5_000)
    assert "菏泽市水务集团" in note.inner_text() and "待答复" in note.inner_text()
    water = Principal("dept2", Role.DEPARTMENT, department_id=2, dept_lead=True)
    leak = app.state.store.tickets.search({"q": "漏水十天"}, ADMIN).items[0].id
    app.state.store.actions.act(leak, "accept", None, water)
    app.state.store.actions.act(leak, "answer_supervision", {"note": "今日已派人维修"}, water)
    page.check("#sup-all")  # answered notes too: each with the department's answer
    page.locator("#supervisions tbody tr:has-text('今日已派人维修')").wait_for(timeout=5_000)
    screenshot(page, "desk-supervisions-1366")

    page.click("button[data-view=overdue]")
    wait_rows(page, 1)
    with page.expect_download() as download:
        page.click("#export-csv")
    exported = download.value.path().read_text(encoding="utf-8-sig")
    assert "水管漏水十天" in exported and "夜间施工" not in exported  # what is shown is what is exported
    assert errors == []


def test_an_operator_finds_their_tickets_transfers_one_and_the_table_follows_live(served) -> None:
    url, _app, browser = served
    console, errors = visit(browser, url, "op1025", "demo1025", "/console")
    with console.context.expect_page() as opened:
        console.click(".statusbar a:has-text('工单中心')")  # a new tab: the console keeps its calls
    page = opened.value
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.wait_for_url(f"{url}/tickets")
    wait_rows(page, 3)
    page.click("button[data-view=mine]")  # 我的工单: taken under job number 1025
    wait_rows(page, 2)
    assert not any("噪音" in r for r in rows(page))

    page.click("#tickets tbody tr:has-text('路灯不亮怎么报修')")
    panel = page.locator("#panel")
    panel.wait_for(state="visible", timeout=5_000)
    assert panel.locator("#p-reads").count() == 0  # the read log is the leads'
    panel.locator("button[data-act=transfer]").click()
    panel.locator("select[name=department_id]").select_option(label="菏泽市城市管理局")
    panel.locator("select[name=co_department_ids]").select_option(label="菏泽市水务集团")
    panel.locator("textarea[name=opinion]").fill("请两单位共同核查路灯")
    panel.locator("button:has-text('确定转办')").click()
    panel.locator("h1:has-text('已转办')").wait_for(timeout=5_000)
    departments = panel.locator("section:has(h2:text('承办单位'))").inner_text()
    assert "牵头 菏泽市城市管理局" in departments and "协办 菏泽市水务集团" in departments
    page.locator("#tickets tbody tr:has-text('路灯不亮怎么报修'):has-text('已转办')").wait_for(timeout=5_000)

    page.click("button[data-view=all]")
    wait_rows(page, 3)
    op1024 = signed_in(url, "op1024", "demo1024")
    lost = {"category": "求助", "title": "老人走失求助", "caller_number": "13953000001"}
    made = httpx.post(f"{url}/api/tickets", json=lost, headers=op1024)
    assert made.status_code == 201, made.text
    page.locator("#tickets tbody tr:has-text('老人走失求助')").wait_for(timeout=10_000)  # over the websocket
    assert page.evaluate("performance.getEntriesByType('navigation').length") == 1  # no reload
    screenshot(page, "desk-operator-1366")
    assert errors == []


def test_the_console_marks_an_emergency_and_tells_the_number_and_query_code(served) -> None:
    url, app, browser = served
    store: Store = app.state.store
    page, errors = visit(browser, url, "op1024", "demo1024", "/console")
    page.fill("input[name=caller_number]", "13953012388")
    page.fill("input[name=caller_name]", "李女士")
    page.fill("input[name=contact]", "13953000088")
    page.fill("input[name=caller_address]", "牡丹区中华路88号")
    page.select_option("select[name=category]", "投诉举报")
    assert page.is_visible("select[name=subcategory]")  # 投诉 15 / 举报 30 working days
    page.select_option("select[name=subcategory]", "举报")
    page.select_option("select[name=handling_mode]", "工单转办")
    page.fill("input[name=title]", "化工厂夜间偷排废气")
    page.fill("textarea[name=matter_demand]", "请立即查处")
    page.check("input[name=confidential]")
    page.check("input[name=emergency]")
    assert "提醒值班长" in page.inner_text("#notice")
    page.select_option("select[name=department_id]", label="菏泽市城市管理局")
    page.select_option("select[name=co_department_ids]", label="菏泽市水务集团")
    page.keyboard.press("Control+s")
    page.wait_for_selector("#tell:not([hidden])", timeout=10_000)
    number = re.search(r"工单编号 (\d{14})", page.inner_text("#tell")).group(1)
    code = page.inner_text("#query-code")
    [ticket] = store.tickets.search({"number": number}, ADMIN).items
    assert re.fullmatch(r"\d{6}", code) and ticket.query_code == code
    assert ticket.emergency and ticket.confidential and ticket.subcategory == "举报"
    assert (ticket.caller_address, ticket.contact) == ("牡丹区中华路88号", "13953000088")
    assert ticket.supervision_count == 1  # 紧急: supervised at once
    assert number in [e["number"] for e in store.digest.lead_queue()["emergencies"]]  # and on the lead's queue

    page.click("#do-transfer")
    page.wait_for_function("document.getElementById('notice').textContent.includes('已转办')", timeout=10_000)
    moved = store.tickets.get(ticket.id, ADMIN)
    assert [(d.name, d.is_lead) for d in moved.departments] == [("菏泽市城市管理局", True), ("菏泽市水务集团", False)]
    assert moved.due_at is not None and moved.status == "transferred"
    # the form is cleared for the next call; what to tell this citizen stays on screen
    assert page.input_value("input[name=title]") == "" and code in page.inner_text("#tell")
    page.reload()
    page.wait_for_selector("#tell:not([hidden])", timeout=5_000)
    assert page.inner_text("#query-code") == code
    screenshot(page, "console-query-code-1366")
    assert errors == []
