"""The department portal in Debian's chromium against the real web app (no Asterisk needed): dept1
signs in and lands on its portal, signs for a ticket an operator filed, asks for an extension that
the lead approves on the wallboard, sees the new deadline, a new ticket and a supervision note
arrive without a reload, answers the note and replies with a photo chosen in the file chooser; a
user of another department (dept2) sees none of it. Screenshots go to var/screenshots."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hotline.identity import Principal, Role
from hotline.settings import Settings
from launch.compose import web_app
from tests.support.browser import chromium, free_port, require_chromium, serving
from ticketing.seed import seed_demo

pytestmark = pytest.mark.browser
SHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
OPERATOR = Principal("op1024", Role.OPERATOR, display_name="张敏", job_number="1024")
SECRET_NUMBER = "13953099876"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 2048


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, object]]:
    require_chromium()
    port = free_port()
    app = web_app(Settings(var_dir=tmp_path_factory.mktemp("var"), web_port=port, services=[]))
    seed_demo(app.state.engine, tickets=80)  # the demo city: 城管局 is department 1, 水务集团 2
    with serving(app, port):
        yield f"http://127.0.0.1:{port}", app


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with chromium() as b:
        yield b


def signed_in(browser, url: str, username: str, password: str, home: str):
    """A fresh browser that signs in through the login page and lands on its role's home."""
    context = browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{url}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.press("input[name=password]", "Enter")
    page.wait_for_url(f"{url}{home}", timeout=10_000)
    return page, errors


def filed(app, title: str, **over) -> object:
    """What the operator's console does: file the citizen's matter and transfer it to 城管局."""
    store = app.state.store
    body = {"category": "投诉举报", "title": title, "caller_number": "13953012345", "caller_name": "张桂兰",
            "district": "牡丹区", "matter_place": "牡丹区中华路",
            "matter_course": "每晚摊位占满人行道，行人只能走机动车道", "matter_demand": "请清理占道摊位"}
    t = store.tickets.create(body | over, OPERATOR)
    return store.actions.transfer(t.id, 1, "请核实处理并答复来电人", OPERATOR)


def text_of(page, selector: str) -> str:
    return page.locator(selector).inner_text()


def test_a_department_carries_a_ticket_through_its_portal(served, browser, tmp_path: Path) -> None:
    url, app = served
    ticket = filed(app, "中华路夜市占道经营", confidential=True, caller_number=SECRET_NUMBER, caller_name="韩秘密",
                   contact=SECRET_NUMBER)
    page, errors = signed_in(browser, url, "dept1", "demodept", "/dept")
    page.wait_for_function("document.getElementById('link').className.includes('on')", timeout=10_000)
    row = page.locator(f'#tickets tr[data-number="{ticket.number}"]')
    row.wait_for(timeout=10_000)
    assert "签收" in row.locator("td.waits").inner_text()
    # the counts come by their own request: '–' until then
    page.wait_for_function("/^\\d+$/.test(document.getElementById('c-new').textContent.trim())", timeout=10_000)
    assert int(text_of(page, "#c-new")) >= 1
    page.wait_for_selector("#a-score", timeout=10_000)  # the department's own assessment
    reloads = page.evaluate("performance.getEntriesByType('navigation').length")

    # keyboard first: / goes to the search box; a row opens with Enter, beside the list
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "f-q"
    row.focus()
    page.keyboard.press("Enter")
    page.wait_for_function(f"document.getElementById('d-number')?.textContent === '{ticket.number}'", timeout=5_000)
    assert "（保密）" in text_of(page, "#d-caller")
    assert "中华路夜市占道经营" in text_of(page, "#detail")
    assert SECRET_NUMBER not in page.content() and "韩秘密" not in page.content()
    assert page.locator("#d-history li").count() >= 3  # 受理 · 登记 · 转办

    # 签收, then 申请延期 with days and a reason
    page.click('#detail button[data-action="accept"]')
    page.wait_for_function("document.getElementById('d-status').textContent === '已签收'", timeout=5_000)
    # the department's lead chooses the handler among its own staff
    page.click('#detail button[data-action="assign"]')
    page.select_option('#act-form select[name="assignee"]', "dept1a")
    page.keyboard.press("Control+Enter")
    page.wait_for_function("document.getElementById('detail').textContent.includes('承办人 dept1a')", timeout=5_000)
    page.click('#detail button[data-action="request_extension"]')
    page.fill('#act-form input[name="days"]', "3")
    page.fill('#act-form textarea[name="reason"]', "需协调交警部门联合执法")
    page.click("#act-submit")
    page.wait_for_function("document.getElementById('d-status').textContent === '延期申请中'", timeout=5_000)
    due_before = text_of(page, "#d-due")

    # the lead approves it on the wallboard with one click
    lead, lead_errors = signed_in(browser, url, "lead", "demolead", "/lead")
    approve = lead.locator(f'#t-extensions button[data-action="approve_extension"][data-ticket="{ticket.id}"]')
    approve.wait_for(timeout=10_000)
    approve.click()
    lead.wait_for_function(f"!document.querySelector('#t-extensions button[data-ticket=\"{ticket.id}\"]')",
                           timeout=10_000)

    # the portal shows the new deadline without a reload
    page.wait_for_function(f"document.getElementById('d-due').textContent !== {due_before!r}", timeout=10_000)
    assert text_of(page, "#d-status") == "办理中"
    assert "3 个工作日" in text_of(page, "#detail")
    assert "延期申请已批准" in text_of(page, "#notice")

    # a new ticket and a supervision note arrive without a reload
    op = browser.new_context()
    assert op.request.post(f"{url}/api/auth/login", data={"username": "op1024", "password": "demo1024"}).ok
    made = op.request.post(f"{url}/api/tickets", headers={"X-Requested-With": "hotline"},
                           data={"category": "一般诉求", "title": "长江路路灯不亮", "caller_number": "13953011111",
                                 "matter_place": "牡丹区长江路"}).json()
    assert op.request.post(f"{url}/api/tickets/{made['id']}/transfer", headers={"X-Requested-With": "hotline"},
                           data={"department_id": 1, "opinion": "请维修路灯"}).ok
    page.locator(f'#tickets tr[data-number="{made["number"]}"]').wait_for(timeout=10_000)
    lead_api = lead.context.request
    assert lead_api.post(f"{url}/api/tickets/{ticket.id}/supervise", headers={"X-Requested-With": "hotline"},
                         data={"reason": "群众反映强烈，请三日内处置"}).ok
    page.wait_for_function("document.getElementById('d-notes').textContent.includes('群众反映强烈')", timeout=10_000)
    assert "待回复" in text_of(page, "#d-notes")

    # 回复督办, then 答复 with a photo from the file chooser
    page.click('#detail button[data-action="answer_supervision"]')
    page.fill('#act-form textarea[name="note"]', "已安排夜间联合执法")
    page.click("#act-submit")
    page.wait_for_function("document.getElementById('d-notes').textContent.includes('已安排夜间联合执法')",
                           timeout=5_000)
    photo = tmp_path / "现场照片.jpg"
    photo.write_bytes(JPEG)
    page.click('#detail button[data-action="reply"]')
    page.fill('#act-form textarea[name="result"]', "已清理占道摊位，设置巡查点，并电话告知来电人")
    with page.expect_file_chooser() as chooser:
        page.click('#act-form input[type="file"]')
    chooser.value.set_files(str(photo))
    page.click("#act-submit")
    page.wait_for_function("document.getElementById('d-status').textContent === '已答复'", timeout=10_000)
    row.wait_for(state="detached", timeout=10_000)  # replied: it leaves the to-do list by itself
    link = page.locator('#d-files a[data-attachment]')
    assert link.inner_text() == "现场照片.jpg"
    href = link.get_attribute("href")
    got = page.context.request.get(url + href)
    assert got.status == 200 and got.body() == JPEG and got.headers["content-disposition"].startswith("attachment")
    assert page.evaluate("performance.getEntriesByType('navigation').length") == reloads  # never reloaded
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "dept-portal.png"), full_page=True)
    page.context.close()

    # another department sees none of it
    other, other_errors = signed_in(browser, url, "dept2", "demodept", "/dept")
    other.select_option("#f-view", "all")
    other.wait_for_function("document.getElementById('total').textContent.startsWith('共')", timeout=10_000)
    other.wait_for_timeout(300)
    assert ticket.number not in other.content() and made["number"] not in other.content()
    assert other.context.request.get(f"{url}/api/tickets/{ticket.id}").status == 404
    assert other.context.request.get(url + href).status == 404
    other.screenshot(path=str(SHOTS / "dept-portal-other-department.png"), full_page=True)
    other.context.close()
    lead.context.close()
    op.close()
    assert errors == [] and lead_errors == [] and other_errors == []
