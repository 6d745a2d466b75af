"""Debian's chromium, the served app, three people: a citizen reports on the web form (a phone-sized
page), an operator's /intake queue shows it at once, without a reload, counting down to its
3-minute mark (amber near it, red past it), and the console's badge counts it; the operator
confirms it into a ticket and reads out the number and query code; the citizen finds the ticket
on /status with them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from hotline.settings import Settings
from launch.compose import web_app
from tests.support.browser import chromium, free_port, require_chromium, screenshot, serving, sign_in

pytestmark = pytest.mark.browser
PHONE = {"width": 390, "height": 844}
LIGHTS = "中华路与人民路路口的红绿灯不亮了，早高峰很危险，请尽快修复。"


class Shifted:
    """The ticket store's clock, moved forward by hand: the 3 minutes pass without waiting for them."""

    def __init__(self) -> None:
        self.by = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.by


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Shifted]]:
    require_chromium()
    port = free_port()
    app = web_app(Settings(var_dir=tmp_path / "var", services=[], web_port=port))
    clock = app.state.store.ctx.clock = Shifted()
    with serving(app, port):
        yield f"http://127.0.0.1:{port}", clock


@pytest.fixture
def browser() -> Iterator[object]:
    with chromium() as b:
        yield b


def report(citizen, url: str, text: str, contact: str) -> None:
    """The citizen fills the form as they would on their phone and sends it."""
    citizen.goto(f"{url}/report")
    citizen.fill("textarea[name=text]", text)
    citizen.fill("input[name=place]", "牡丹区中华路与人民路路口")
    citizen.fill("input[name=contact]", contact)
    citizen.click("#send")
    citizen.wait_for_selector("#done:not([hidden])", timeout=10_000)


def test_a_web_report_is_queued_live_confirmed_and_then_found_by_the_citizen(served, browser) -> None:
    url, clock = served
    errors: list[str] = []
    citizen = browser.new_context(viewport=PHONE, locale="zh-CN", is_mobile=True).new_page()
    citizen.on("pageerror", lambda e: errors.append(str(e)))

    desk = browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN")
    intake = desk.new_page()
    intake.on("pageerror", lambda e: errors.append(str(e)))
    intake.goto(f"{url}/console")  # no session yet: the login page, then back to the console
    intake.fill("input[name=username]", "op1024")
    intake.fill("input[name=password]", "demo1024")
    intake.click("button[type=submit]")
    intake.wait_for_url(f"{url}/console", timeout=10_000)
    intake.click("#intake-link")  # the console's badge opens the queue
    intake.wait_for_url(f"{url}/intake", timeout=10_000)
    intake.wait_for_function("document.getElementById('link').className.includes('on')", timeout=10_000)
    assert intake.locator("#empty").is_visible()
    console = desk.new_page()  # the same operator's console in another tab: its badge counts
    console.goto(f"{url}/console")
    console.wait_for_function("document.getElementById('link').className.includes('on')", timeout=10_000)

    report(citizen, url, LIGHTS, "139 5301 2345")
    assert "3 分钟内处理" in citizen.text_content("#done-text")
    first = intake.locator("#queue li").first
    first.wait_for(timeout=5_000)  # pushed over the websocket: nobody reloaded
    assert intake.evaluate("performance.getEntriesByType('navigation').length") == 1
    assert "网站" in first.text_content() and LIGHTS in first.text_content()
    assert "剩余 2:5" in first.locator(".left").text_content()
    assert "near" not in first.get_attribute("class") and "late" not in first.get_attribute("class")
    console.wait_for_function("document.getElementById('intake-count').textContent === '1'", timeout=5_000)

    # two and a half minutes later by the centre's clock, another report: the first turns amber …
    clock.by = timedelta(seconds=150)
    report(citizen, url, "人民路小区门口的下水道井盖丢了，晚上看不见很危险。", "13953000002")
    intake.wait_for_function("document.querySelectorAll('#queue li').length === 2", timeout=5_000)
    intake.wait_for_selector("#queue li:first-child.near", timeout=5_000)
    assert "near" not in intake.locator("#queue li").nth(1).get_attribute("class")
    # … and past its 3 minutes (a third report brings the new time), red, as is the longest wait
    clock.by = timedelta(seconds=200)
    report(citizen, url, "中华路公交站的站牌被撞倒了，请尽快处理。", "13953000003")
    intake.wait_for_selector("#queue li:first-child.late", timeout=5_000)
    assert intake.locator("#queue li").first.locator(".left").text_content().startswith("超时 0:")
    console.wait_for_function("document.getElementById('intake-count').textContent === '3'", timeout=5_000)
    screenshot(intake, "intake-queue", env="HOTLINE_INTAKE_SCREENSHOTS")

    # 受理: the form is filled from the report; the operator picks the category and confirms
    intake.locator("#queue li").first.click()
    assert intake.input_value("textarea[name=matter_course]") == LIGHTS
    assert intake.input_value("input[name=caller_number]") == "13953012345"
    assert intake.input_value("input[name=title]") == "中华路与人民路路口的红绿灯不亮了，早高峰很危险，请尽快修复"
    intake.select_option("select[name=category]", "求助")
    intake.fill("input[name=district]", "牡丹区")
    intake.keyboard.press("Control+Enter")
    number = intake.locator("#done .number").first
    number.wait_for(timeout=5_000)
    ticket, code = number.text_content(), intake.locator("#done .code").first.text_content()
    assert ticket.isdigit() and len(code) == 6 and code.isdigit()
    assert f"已受理为工单 {ticket}，查询码 {code}" in intake.text_content("#notice")
    intake.wait_for_function("document.querySelectorAll('#queue li').length === 2", timeout=5_000)
    console.wait_for_function("document.getElementById('intake-count').textContent === '2'", timeout=5_000)
    # 不受理 asks for a reason first (Alt+N takes the oldest left)
    intake.keyboard.press("Alt+n")
    assert "井盖" in intake.input_value("textarea[name=matter_course]")
    intake.click("#reject")
    assert intake.text_content("#notice") == "请填写不受理的原因"
    intake.fill("input[name=reason]", "与工单重复，已电话告知市民")
    intake.click("#reject")
    intake.wait_for_function("document.querySelectorAll('#queue li').length === 1", timeout=5_000)
    assert "不受理" in intake.locator("#done li").first.text_content()
    console.wait_for_function("document.getElementById('intake-count').textContent === '1'", timeout=5_000)

    # the citizen, told the number and the code, looks the ticket up; a wrong code finds nothing
    citizen.goto(f"{url}/status")
    citizen.fill("input[name=number]", ticket)
    citizen.fill("input[name=code]", "000000" if code != "000000" else "111111")
    citizen.click("#ask")
    citizen.wait_for_selector("#notice.bad", timeout=5_000)
    assert citizen.text_content("#notice") == "没有查到该工单，请核对工单编号和查询码"
    assert citizen.locator("#result").is_hidden()
    citizen.fill("input[name=code]", code)
    citizen.press("input[name=code]", "Enter")
    citizen.wait_for_selector("#result:not([hidden])", timeout=5_000)
    assert citizen.text_content("#r-state") == "已受理，正在分派承办单位"
    assert citizen.text_content("#r-number") == ticket
    assert citizen.text_content("#r-title") == "中华路与人民路路口的红绿灯不亮了，早高峰很危险，请尽快修复"
    assert citizen.locator("#rate-box").is_hidden()  # nothing to rate before the department replies
    assert citizen.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]  # no sideways scrolling
    screenshot(citizen, "status-phone", env="HOTLINE_INTAKE_SCREENSHOTS")
    assert errors == []


def test_the_wallboard_shows_the_three_minute_figure_beside_the_fifteen_second_one(served, browser) -> None:
    url, clock = served
    lead = browser.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN").new_page()
    errors: list[str] = []
    lead.on("pageerror", lambda e: errors.append(str(e)))
    sign_in(lead, url, "lead", "demolead", lands_on="/lead")
    lead.wait_for_selector("#intake-figures .intake-pending", timeout=10_000)
    assert lead.text_content(".intake-pending") == "0" and lead.text_content(".intake-pct") == "—"
    assert lead.locator("#intake-figures .fig.under").count() == 0

    sent = httpx.post(f"{url}/api/public/submissions", json={"text": LIGHTS, "contact": "13953012345"})
    assert sent.status_code == 201, sent.text
    lead.wait_for_function("document.querySelector('.intake-pending').textContent === '1'", timeout=5_000)
    assert lead.locator("#intake-figures .fig.under").count() == 0  # waiting, within its 3 minutes
    clock.by = timedelta(seconds=200)  # nobody took it: past its mark, the figure turns red
    httpx.post(f"{url}/api/public/submissions", json={"text": "人民路井盖丢了，晚上很危险", "contact": "13953000002"})
    lead.wait_for_function("document.querySelector('.intake-pending').textContent === '2'", timeout=5_000)
    lead.wait_for_selector("#intake-figures .fig.under .intake-pct", timeout=5_000)
    assert lead.text_content(".intake-pct") == "0.0 %" and lead.text_content(".intake-late") == "1"
    assert lead.text_content(".intake-oldest").startswith("3:2")
    screenshot(lead, "wallboard-intake", env="HOTLINE_INTAKE_SCREENSHOTS")
    lead.click("#intake-figures h2 a")  # the figure leads to the queue
    lead.wait_for_url(f"{url}/intake", timeout=5_000)
    lead.locator("#queue li").nth(1).wait_for(timeout=5_000)
    assert errors == []
