"""The lead's reports and callback pages in Debian's chromium (no Asterisk: calls are put in the call
log directly). ``HOTLINE_LEAD_SCREENSHOTS=<dir>`` keeps screenshots at 1366×768 and 1920×1080."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from hotline.calls import FinishedCall
from hotline.settings import Settings
from launch.compose import web_app
from tests.support.browser import chromium, free_port, require_chromium, screenshot, serving

pytestmark = pytest.mark.browser
BJ = ZoneInfo("Asia/Shanghai")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, object]]:
    require_chromium()
    port = free_port()
    app = web_app(Settings(var_dir=tmp_path_factory.mktemp("var"), web_port=port, services=[]))
    with serving(app, port):
        yield from _with_calls(app, port)


def _with_calls(app, port: int) -> Iterator[tuple[str, object]]:
    # today: three answered (one late), one abandoned; yesterday: one answered
    today = datetime.now(BJ).replace(hour=9, minute=0, second=0, microsecond=0)
    log = app.state.store.calls
    for n, (offset_h, wait_ms, answered) in enumerate([(0, 4000, True), (1, 20000, True), (1, 6000, True),
                                                       (2, 30000, False), (-24, 3000, True)]):
        start = (today + timedelta(hours=offset_h)).timestamp()
        log.record(FinishedCall(call_id=f"u{n}", caller_num=f"1395301000{n}", offered_at=start,
                                ended_at=start + 90, queue="hotline", seat="8001" if answered else "",
                                operator="op1024" if answered else "", answered_at=start + wait_ms / 1000 if answered
                                else None, wait_ms=wait_ms, within_rule=answered and wait_ms <= 15000,
                                talk_s=60.0 if answered else 0.0, abandoned=not answered,
                                reconstructed=n == 3))  # the bridge was down: rebuilt from Asterisk's records
    yield f"http://127.0.0.1:{port}", app


@pytest.fixture(scope="module")
def lead_context() -> Iterator[object]:
    with chromium() as browser:
        yield browser


def signed_in(browser, url: str, width: int = 1366, height: int = 768):
    context = browser.new_context(viewport={"width": width, "height": height}, locale="zh-CN")
    assert context.request.post(f"{url}/api/auth/login", data={"username": "lead", "password": "demolead"}).ok
    return context


def test_the_report_page_draws_charts_and_tables_and_exports(served, lead_context) -> None:
    url, _ = served
    context = signed_in(lead_context, url)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    console: list[str] = []
    page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
    page.goto(f"{url}/lead/reports")
    try:
        page.wait_for_function("window.leadReportReady === true || !document.getElementById('report-error').hidden",
                               timeout=15_000)
    except Exception:
        raise AssertionError(errors + console) from None
    assert page.locator("#report-error").is_hidden(), page.locator("#report-error").inner_text()
    assert errors == []
    summary = {r.locator("td").nth(0).inner_text(): [r.locator("td").nth(i).inner_text() for i in (1, 2)]
               for r in page.locator("#t-summary tbody tr").all()}
    assert summary["呼入"] == ["4", "1"] and summary["放弃"] == ["1", "0"]
    assert summary["15 秒接通率"] == ["66.7 %", "100.0 %"]  # 2 of 3 answered within 15 s; yesterday 1 of 1
    assert page.locator("#t-operators tbody tr").count() == 1
    assert page.evaluate("Object.keys(Chart.instances).length") == 4  # the four charts are drawn
    hours = page.evaluate("Object.values(Chart.instances).find(c => c.canvas.id === 'c-hours').data.datasets[0].data")
    assert sum(hours) == 4 and hours[9] == 1 and hours[10] == 2
    xlsx = context.request.get(f"{url}{page.locator('#xlsx').get_attribute('href')}")
    assert xlsx.ok and xlsx.body()[:2] == b"PK"
    assert errors == []
    screenshot(page, "reports-1366")
    context.close()


def test_the_callback_list_records_who_called_back(served, lead_context) -> None:
    url, _ = served
    context = signed_in(lead_context, url, 1920, 1080)
    page = context.new_page()
    page.goto(f"{url}/lead/callbacks")
    row = page.locator("#callbacks tbody tr", has_text="13953010003")
    row.wait_for(timeout=10_000)
    assert row.locator(".tag-rebuilt").inner_text() == "补录"  # the bridge did not see it: Asterisk did
    row.locator(".note").fill("已回电，市民表示问题已解决")
    row.locator("button.done").click()
    page.locator("#callbacks tbody tr").first.wait_for(state="detached", timeout=5_000)
    page.locator("#show-done").check()
    done = page.locator("#callbacks tbody tr", has_text="13953010003")
    done.wait_for(timeout=5_000)
    assert done.locator(".by").inner_text() == "lead" and done.locator(".at").inner_text().startswith("20")
    screenshot(page, "callbacks-1920")
    context.close()


def test_the_lead_decides_approvals_and_ticket_requests_from_the_wallboard(served, lead_context) -> None:
    from hotline.identity import Principal, Role

    url, app = served
    svc = app.state.store
    admin, lead = Principal("admin", Role.ADMIN), Principal("lead", Role.LEAD)
    water = svc.directory.save({"name": "菏泽市水务集团有限公司", "duties": "供水 停水"}, admin).id
    city = svc.directory.save({"name": "菏泽市城市管理局", "duties": "占道经营 噪音"}, admin).id
    water_desk = Principal("water", Role.DEPARTMENT, department_id=water)
    body = {"category": "求助", "title": "丽景花园停水", "caller_number": "13853012345", "district": "牡丹区",
            "matter_demand": "尽快恢复供水"}
    late = svc.tickets.create(body, lead)
    svc.actions.transfer(late.id, water, "请核实停水原因", lead)
    svc.actions.accept(late.id, water_desk)
    svc.actions.act(late.id, "start", None, water_desk)
    svc.actions.act(late.id, "request_extension", {"reason": "需更换主管道", "days": 3}, water_desk)
    wrong = svc.tickets.create(body | {"title": "夜间施工噪音"}, lead)
    svc.actions.transfer(wrong.id, water, "请处理", lead)
    svc.actions.return_(wrong.id, "不属我单位职责", water_desk)
    urgent = svc.tickets.create(body | {"title": "燃气管道泄漏", "emergency": True}, lead)

    context = signed_in(lead_context, url)
    made = context.request.post(f"{url}/api/approvals", data={"kind": "busy", "seat": "8001", "reason": "培训"},
                                headers={"X-Requested-With": "hotline"})
    assert made.ok, made.text()
    page = context.new_page()
    page.on("dialog", lambda d: d.accept(d.default_value or "同意改派"))
    page.goto(f"{url}/lead")
    page.locator("#sound").click()  # the lead turns the chime on (browsers need a click before sound)
    assert page.evaluate("window.leadBeeps") == 1
    page.locator("#seat-approvals button.refuse").click()
    page.wait_for_selector("#seat-approvals li:has-text('无待审批申请')", timeout=15_000)
    decided = context.request.get(f"{url}/api/approvals").json()
    assert [(a["state"], a["decided_by"]) for a in decided] == [("refused", "lead")]

    page.locator(f'#t-extensions button[data-ticket="{late.id}"][data-action="approve_extension"]').click()
    page.wait_for_selector(f'#t-extensions button[data-ticket="{late.id}"]', state="detached", timeout=15_000)
    assert svc.tickets.get(late.id, lead).extension_days == 3
    row = page.locator("#t-returned li", has_text="夜间施工噪音")
    row.locator("select.dept").select_option(str(city))
    row.locator("button[data-action=transfer]").click()
    page.wait_for_selector(f'#t-returned button[data-ticket="{wrong.id}"]', state="detached", timeout=15_000)
    again = svc.tickets.get(wrong.id, lead)
    assert again.status == "transferred" and again.lead_department_id == city
    page.locator(f'#t-emergencies button[data-ticket="{urgent.id}"]').click()
    deadline = time.monotonic() + 15
    while svc.tickets.get(urgent.id, lead).supervision_count < 1:
        assert time.monotonic() < deadline, "the emergency was not escalated"
        time.sleep(0.2)
    page.wait_for_selector('#t-emergencies li:has-text("已督办 1 次")', timeout=15_000)
    # the emergency ticket is also an alert, raised from the ticket store within its 10 s poll
    page.wait_for_selector(".alerts li.k-emergency", timeout=15_000)
    assert "燃气管道泄漏" in page.locator(".alerts li.k-emergency").inner_text()
    assert page.evaluate("window.leadBeeps") == 2  # one chime for the new alert
    screenshot(page, "wallboard-approvals-1366")
    context.close()


def test_handover_and_roster_page(served, lead_context) -> None:
    url, _ = served
    context = signed_in(lead_context, url)
    page = context.new_page()
    page.goto(f"{url}/lead/handover")
    form = page.locator("#roster-form")
    form.locator("[name=shift]").fill("白班 08:00-16:00")
    form.locator("[name=username]").fill("op1024")
    form.locator("[name=seat]").fill("8001")
    form.locator("button").click()
    page.wait_for_selector("#roster tbody tr:has-text('op1024')", timeout=5_000)
    ho = page.locator("#handover-form")
    ho.locator("[name=shift]").fill("2026-11-23 白班")
    ho.locator("[name=tickets]").fill("12，15")
    ho.locator("[name=notes]").fill("8003 耳机故障，已报修；13953010003 待回拨")
    ho.locator("button").click()
    item = page.locator("#handovers li", has_text="2026-11-23 白班")
    item.wait_for(timeout=5_000)
    assert "未办结工单：12,15" in item.inner_text() and item.locator("button.sign").count() == 1
    item.locator("button.sign").click()  # the same lead cannot countersign
    page.wait_for_selector("#ho-error:not([hidden])", timeout=5_000)
    assert "两位班长" in page.locator("#ho-error").inner_text()
    screenshot(page, "handover-1366")
    context.close()


def test_special_numbers_page_marks_a_number_and_the_lookup_reads_it(served, lead_context) -> None:
    url, app = served
    context = signed_in(lead_context, url)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{url}/lead/callers")
    form = page.locator("#flag-form")
    form.locator("[name=number]").fill("abc")
    form.locator("[name=elderly]").check()
    form.locator("button").click()
    page.wait_for_selector("#flag-error:not([hidden])", timeout=5_000)
    assert "5 到 20 位数字" in page.locator("#flag-error").inner_text()
    form.locator("[name=number]").fill("139 5301 7777")
    form.locator("[name=note]").fill("独居老人，听力不好")
    form.locator("[name=number]").press("Enter")  # keyboard: Enter saves
    row = page.locator("#callers tbody tr", has_text="13953017777")
    row.wait_for(timeout=5_000)
    assert page.locator("#flag-error").is_hidden()
    assert row.locator("[data-flag=elderly]").is_checked() and not row.locator("[data-flag=vip]").is_checked()
    assert "山东省菏泽市" in row.inner_text() and "独居老人" in row.inner_text() and "lead" in row.inner_text()
    row.locator("[data-flag=blacklisted]").check()  # one click saves that flag
    page.wait_for_function("document.querySelector('#callers tr[data-number=\"13953017777\"] "
                           "[data-flag=blacklisted]')?.checked && !document.querySelector("
                           "'#callers tr[data-number=\"13953017777\"] [data-flag=blacklisted]').disabled",
                           timeout=5_000)
    summary = app.state.store.callers.summary("13953017777")
    assert summary.elderly and summary.blacklisted and not summary.vip
    assert errors == []
    screenshot(page, "callers-1366")
    context.close()
