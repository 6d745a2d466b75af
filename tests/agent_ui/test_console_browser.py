"""The operator's console in Debian's chromium against the whole stack on a real Asterisk (CTI +
AGI + SIPp): sign in to a seat, a Heze mobile rings and pops with its location and earlier
ticket before the seat bot answers, a ticket is filed and found by number, a three-party call
with a department, busy with a reason pauses the seat in the queue; another operator's browser
never sees the pop."""

from __future__ import annotations

import asyncio
import re
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn

from hotline.settings import Settings
from launch.compose import web_app
from testkit.auth import signed_in
from testkit.phone import fake_media, tone_wav
from tests.conftest import speech
from tests.support.browser import chromium, free_port, phone_is, require_chromium, serving
from ticketing.schemas import SystemActor

pytestmark = pytest.mark.browser
HEZE = "13953012345"
SHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"



@contextmanager
def running_stack(settings: Settings, tmp_path: Path, shifts: list[str],
                  **extra: object) -> Iterator[tuple[str, object]]:
    port = free_port()
    cfg = Settings(**{"var_dir": tmp_path / "var", "ami_secret": settings.resolved_ami_secret(),
                      "services": ["cti", "agi"], "web_port": port, "cti_shifts": shifts, **extra})
    # a web node hands a browser seat's operator the seat's SIP password: the secrets Asterisk was given
    sip = settings.secrets_dir / "sip"
    if sip.is_dir() and not (cfg.secrets_dir / "sip").exists():
        shutil.copytree(sip, cfg.secrets_dir / "sip")
    app = web_app(cfg)
    with serving(app, port, lambda: app.state.cti.link.logged_in,
                 what="the app did not start or the bridge did not log in to AMI"):
        yield f"http://127.0.0.1:{port}", app


@pytest.fixture
def stack(pbx, settings: Settings, tmp_path: Path) -> Iterator[tuple[str, object]]:
    require_chromium()
    # no shift windows: busy/sign-out are allowed whatever the hour this test runs at
    with running_stack(settings, tmp_path, []) as got:
        yield got


@pytest.fixture
def browser() -> Iterator[object]:
    with chromium() as b:
        yield b


def console_of(browser, url: str, username: str, password: str):
    """A fresh browser that logs in through the login page and lands on its role's home."""
    context = browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN")
    page = context.new_page()
    page.goto(f"{url}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.press("input[name=password]", "Enter")
    page.wait_for_url(f"{url}/console", timeout=10_000)
    page.wait_for_function("document.getElementById('link').className.includes('on')", timeout=10_000)
    return page


def sign_in(page, seat: str) -> None:
    page.select_option("#seat-pick", seat)
    page.click("#signin")
    page.wait_for_function(f"document.getElementById('seat-no').textContent === '{seat}'", timeout=10_000)


def member_line(pbx, queue: str, seat: str) -> str:
    return next((line for line in pbx.cli(f"queue show {queue}").splitlines() if f"PJSIP/{seat}" in line), "")


@pytest.mark.asterisk
def test_operator_console_pops_files_conferences_and_goes_busy(stack, pbx, phones, settings: Settings,
                                                               audio_dir: Path, tmp_path: Path) -> None:
    url, app = stack
    # the operator's phone is the console (a browser seat); the other operator's seat has no phone
    seat, other_seat, dept_line = settings.browser_phone_seats[0], settings.seats[1], settings.department_lines[0]
    store = app.state.store
    earlier = store.tickets.create({"caller_number": HEZE, "category": "一般诉求", "title": "小区路灯不亮",
                              "matter_place": "牡丹区花园小区", "matter_demand": "尽快修复路灯"}, SystemActor())
    store.directory.save({"name": "菏泽市供水测试公司", "duties": "供水 停水 水管 水表", "sip_line": dept_line,
                             "phones": dept_line}, SystemActor())
    phones.seat(dept_line, settings.seat_password(dept_line), speech(audio_dir, ("sil", 120)),
                ring_ms=1000, talk_ms=120_000)

    with chromium(fake_media(tone_wav(tmp_path / "mic.wav", 440, 120))) as browser:
        _pops_files_conferences_and_goes_busy(browser, url, pbx, phones, settings, audio_dir, store, earlier, seat,
                                              other_seat, dept_line)


def _pops_files_conferences_and_goes_busy(browser, url, pbx, phones, settings, audio_dir, store, earlier, seat,
                                          other_seat, dept_line) -> None:
    mine = console_of(browser, url, "op1024", "demo1024")
    other = console_of(browser, url, "op1025", "demo1025")
    sign_in(mine, seat)
    phone_is(mine, "registered")
    sign_in(other, other_seat)  # no phone registered there: Asterisk never rings it
    assert f"PJSIP/{seat}" in pbx.members(settings.queue_name)
    assert "1024号话务员为您服务" in mine.inner_text("#scripts")

    caller = phones.callers([HEZE], settings.hotline_number, speech(audio_dir, ("sil", 90)), hangup_ms=90_000)
    mine.wait_for_selector("#pop:not([hidden])", timeout=30_000)
    assert "山东省菏泽市" in mine.inner_text("#pop-loc") and "移动" in mine.inner_text("#pop-loc")
    mine.wait_for_function(f"document.getElementById('history').textContent.includes('{earlier.number}')",
                           timeout=3_000)
    assert mine.inner_text("#pop-state") == "振铃中"  # all of it while the console's phone rings
    assert "重复来电" in mine.inner_text("#pop-flags")
    assert mine.input_value("input[name=caller_number]") == HEZE  # the form opened with the caller
    SHOTS.mkdir(parents=True, exist_ok=True)
    mine.screenshot(path=str(SHOTS / "console-ringing.png"))

    phone_is(mine, "ringing", 5_000)
    mine.keyboard.press("Alt+a")  # 接听
    mine.wait_for_function("document.getElementById('pop-state').textContent === '通话中'", timeout=20_000)
    mine.fill("input[name=title]", "小区停水三天")
    mine.fill("textarea[name=matter_course]", "花园小区自周一起停水，水管维修一直未完成")
    mine.fill("textarea[name=matter_demand]", "请供水公司尽快恢复供水")
    mine.select_option("select[name=handling_mode]", "工单转办")
    mine.keyboard.press("Control+s")
    mine.wait_for_function("document.getElementById('saved').textContent.includes('已保存为工单')", timeout=10_000)
    number = re.search(r"工单 (\d+)", mine.inner_text("#saved")).group(1)
    lead = signed_in(url, "lead", "demolead")
    found = httpx.get(f"{url}/api/tickets", params={"number": number}, headers=lead).json()
    rows = found["items"] if isinstance(found, dict) else found
    assert [r["number"] for r in rows] == [number] and rows[0]["caller_number"] == HEZE
    assert rows[0]["title"] == "小区停水三天"

    mine.fill("#dept-filter", "供水测试")
    mine.click(f"#directory button[data-conf='{dept_line}']")
    mine.wait_for_function("document.getElementById('pop-conf').textContent.includes('3 方')", timeout=20_000)
    assert "菏泽市供水测试公司" in mine.inner_text("#pop-conf")
    assert "conf-" in pbx.cli("confbridge list")
    mine.screenshot(path=str(SHOTS / "console-conference.png"))

    mine.select_option("#busy-reason", "工单填写")
    mine.click("#busy")
    deadline = time.monotonic() + 10
    while "paused" not in member_line(pbx, settings.queue_name, seat):
        assert time.monotonic() < deadline, member_line(pbx, settings.queue_name, seat)
        time.sleep(0.2)

    # op1025's console saw nothing of this call, not even over its websocket
    assert not other.is_visible("#pop")
    assert other.evaluate("window.__lastPop === undefined")
    other.screenshot(path=str(SHOTS / "console-other-operator.png"))
    caller.stop()


# ------------------------------------------------------------------------------ without Asterisk


@contextmanager
def without_cti(tmp_path: Path) -> Iterator[tuple[str, object, object]]:
    """A web node with no CTI, op1024 seated at 8001 in its roster: (url, app, publish), where
    ``publish`` puts a domain event on the node's bus as a bridge would."""
    port = free_port()
    app = web_app(Settings(var_dir=tmp_path / "var", services=[], web_port=port))
    server, thread, loop = serve(app, port)
    app.state.roster = {"op1024": "8001"}.copy

    def publish(event) -> None:
        asyncio.run_coroutine_threadsafe(app.state.bus.publish(event), loop).result(5)

    try:
        yield f"http://127.0.0.1:{port}", app, publish
    finally:
        server.should_exit = True
        thread.join(10)


def serve(app, port: int) -> tuple[uvicorn.Server, threading.Thread, asyncio.AbstractEventLoop]:
    """uvicorn on its own loop in a thread: the test publishes on the app's bus through that loop."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=lambda: loop.run_until_complete(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    return server, thread, loop


def test_drafts_survive_a_reload_esc_keeps_text_and_a_lost_link_shows_the_banner(browser, tmp_path: Path) -> None:
    from cti.domain import SeatRinging

    require_chromium()
    port = free_port()
    app = web_app(Settings(var_dir=tmp_path / "var", services=[], web_port=port))
    server, thread, loop = serve(app, port)
    app.state.roster = {"op1024": "8001"}.copy  # no CTI here: who sits where is given
    page = console_of(browser, f"http://127.0.0.1:{port}", "op1024", "demo1024")
    assert page.is_hidden("#offline")
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url))
    pop = SeatRinging(at=time.time(), call_id="9.1", seat="8001", queue="hotline", caller_num=HEZE, caller_name="",
                      waited_ms=16_000, operator="op1024",
                      variables={"HL_LOCATION": "山东省菏泽市", "HL_FLAGS": "blacklist", "HL_TICKETS": "1",
                                 "HL_RECENT": "20261120000042:red:已转办:投诉举报:夜间施工噪音"})
    asyncio.run_coroutine_threadsafe(app.state.bus.publish(pop), loop).result(5)
    page.wait_for_selector("#pop:not([hidden])", timeout=5_000)
    assert "wait-red" in page.get_attribute("#pop", "class")  # waited 16 s already: red
    assert "黑名单" in page.inner_text("#pop-flags")
    history = page.inner_text("#history")  # the caller's history came with the pop: no second request
    assert "20261120000042" in history and "已转办" in history and "夜间施工噪音" in history and "超期" in history
    assert not [u for u in asked if "/api/callers/" in u]
    page.fill("input[name=title]", "噪音扰民")
    page.fill("textarea[name=matter_course]", "楼下烧烤店营业到凌晨两点")
    page.keyboard.press("Escape")
    assert page.input_value("textarea[name=matter_course]") == "楼下烧烤店营业到凌晨两点"
    page.reload()
    page.wait_for_function("document.getElementById('link').className.includes('on')", timeout=10_000)
    assert page.input_value("input[name=title]") == "噪音扰民"
    assert page.input_value("input[name=caller_number]") == HEZE
    assert not page.is_visible("#pop")  # no call after a reload: no strip
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "console-draft.png"))

    server.should_exit = True  # the server goes away: the banner shows, the page does not reload
    thread.join(10)
    page.wait_for_selector("#offline:not([hidden])", timeout=10_000)
    assert page.inner_text("#offline") == "实时连接已断开，正在重连…"
    page.evaluate("window.__stillHere = true")
    server, thread, loop = serve(app, port)  # back: the page reconnects by itself (new epoch → resync)
    page.wait_for_selector("#offline", state="hidden", timeout=20_000)
    assert page.evaluate("window.__stillHere") is True
    assert page.input_value("textarea[name=matter_course]") == "楼下烧烤店营业到凌晨两点"
    server.should_exit = True
    thread.join(10)


@pytest.mark.asterisk
def test_busy_in_a_shifts_first_half_hour_waits_for_the_lead_and_the_console_shows_the_decision(
        pbx, browser, settings: Settings, tmp_path: Path) -> None:
    import datetime as dt
    from zoneinfo import ZoneInfo

    require_chromium()
    start = dt.datetime.now(ZoneInfo(settings.cti_timezone)) - dt.timedelta(minutes=5)
    shift = f"{start:%H:%M}-{start + dt.timedelta(hours=8):%H:%M}"  # began 5 min ago: restricted
    seat = settings.seats[0]
    with running_stack(settings, tmp_path, [shift]) as (url, _app):
        page = console_of(browser, url, "op1024", "demo1024")
        sign_in(page, seat)
        page.select_option("#busy-reason", "培训")
        page.click("#busy")
        page.wait_for_selector("#approval:not([hidden])", timeout=10_000)
        assert "等待班长审批" in page.inner_text("#approval")
        assert "需班长批准" in page.inner_text("#notice")
        assert "paused" not in member_line(pbx, settings.queue_name, seat)
        page.screenshot(path=str(SHOTS / "console-approval-pending.png"))
        lead = signed_in(url, "lead", "demolead")
        [pending] = httpx.get(f"{url}/api/approvals", params={"state": "pending"}, headers=lead).json()
        assert pending["seat"] == seat and pending["reason"] == "培训" and "开始后 30 分钟内" in pending["rule"]
        r = httpx.post(f"{url}/api/approvals/{pending['id']}/approve", json={"note": "同意"}, headers=lead)
        assert r.status_code == 200 and r.json()["state"] == "approved", r.text
        # the decision reaches the console over the websocket; the seat is paused under the lead's name
        page.wait_for_function("document.getElementById('approval').textContent.includes('已由 lead 批准')",
                               timeout=10_000)
        page.wait_for_function("document.getElementById('seat-state').textContent.includes('示忙')", timeout=10_000)
        assert "paused" in member_line(pbx, settings.queue_name, seat)


def test_a_call_put_on_hold_shows_on_the_strip_with_its_time_on_hold(browser, tmp_path: Path) -> None:
    from cti.domain import CallAnswered, CallHeld, SeatRinging, SeatStateChanged

    require_chromium()
    with without_cti(tmp_path) as (url, _app, publish):
        page = console_of(browser, url, "op1024", "demo1024")
        # no CTI in this test: the seat the console asks for is given, then announced on the bus
        mine = {"seat": "8001", "state": "on_call", "operator": "op1024", "reason": ""}
        page.route("**/api/seat", lambda route: route.fulfill(json={
            "seat": mine, "free_seats": [], "job_number": "1024", "busy_reasons": [], "approvals": []}))
        publish(SeatStateChanged(at=time.time(), seat="8001", state="on_call", previous="ready", operator="op1024"))
        page.wait_for_function("document.getElementById('seat-no').textContent === '8001'", timeout=5_000)
        now = time.time()
        publish(SeatRinging(at=now, call_id="9.2", seat="8001", queue="hotline", caller_num=HEZE, caller_name="",
                            waited_ms=3_000, variables={"HL_LOCATION": "山东省菏泽市"}))
        page.wait_for_selector("#pop:not([hidden])", timeout=5_000)
        publish(CallAnswered(at=now, call_id="9.2", seat="8001", queue="hotline", wait_ms=4_000, within_rule=True))
        page.wait_for_function("document.getElementById('pop-state').textContent === '通话中'", timeout=5_000)
        publish(CallHeld(at=now + 5, call_id="9.2", seat="8001", held=True, hold_s=0.0))
        page.wait_for_function("document.getElementById('pop-state').textContent === '保持中'", timeout=5_000)
        assert "held" in page.get_attribute("#pop", "class")
        publish(CallHeld(at=now + 8, call_id="9.2", seat="8001", held=False, hold_s=3.0, state="answered"))
        page.wait_for_function("document.getElementById('pop-state').textContent === '通话中'", timeout=5_000)
        assert "held" not in page.get_attribute("#pop", "class")
        assert "保持 00:03" in page.inner_text("#pop-talk")


def test_the_callback_list_shows_messages_and_a_withheld_callers_message_can_be_closed(browser, tmp_path: Path) -> None:
    from hotline.calls import FinishedCall

    require_chromium()
    port = free_port()
    app = web_app(Settings(var_dir=tmp_path / "var", services=[], web_port=port))
    server, thread, _loop = serve(app, port)
    try:
        calls = app.state.store.calls
        now = time.time()
        calls.record(FinishedCall(call_id="1795400000.1", caller_num=HEZE, offered_at=now - 600, ended_at=now - 590,
                                  queue="hotline", abandoned=True, wait_ms=10_000))
        calls.request_callback("1795400000.2", "", "after_hours", "message-20261123-221500-1795400000.2")
        page = console_of(browser, f"http://127.0.0.1:{port}", "op1024", "demo1024")
        items = page.locator("#callbacks li")
        items.nth(1).wait_for(timeout=5_000)
        abandoned, message = items.nth(0).inner_text(), items.nth(1).inner_text()
        assert "放弃" in abandoned and "回拨" in abandoned
        assert "号码未显示" in message and "非工作时间" in message and "留言入库中" in message
        assert "回拨" not in message  # a withheld number cannot be called back
        page.click("#callbacks li:nth-child(2) button[data-done]")
        page.wait_for_function("document.querySelectorAll('#callbacks li').length === 1", timeout=5_000)
        [done] = [r for r in calls.callbacks(include_done=True) if r["id"] == "1795400000.2"]
        assert done["called_back_by"] == "op1024" and done["callback_note"] == "已听留言，无需回拨"
    finally:
        server.should_exit = True
        thread.join(10)


def test_a_callback_dialled_from_the_console_shows_its_answer_its_words_and_its_end(browser, tmp_path: Path) -> None:
    """回拨 from the console's list: the transcript panel follows the call the dial made (not the last
    pop), the answer and the end are said on the notice line. No CTI here: the dial's answer is the
    server's, given by the test, and the call's events are published on the node's bus."""
    from cti.domain import CallConferenced, OutboundAnswered, OutboundEnded
    from hotline.calls import FinishedCall
    from hotline.listening import LiveState, TranscriptLine

    require_chromium()
    with without_cti(tmp_path) as (url, app, publish):
        now = time.time()
        app.state.store.calls.record(FinishedCall(call_id="1795400000.1", caller_num=HEZE, offered_at=now - 600,
                                                  ended_at=now - 590, queue="hotline", abandoned=True, wait_ms=10_000))
        page = console_of(browser, url, "op1024", "demo1024")
        mine = {"seat": "8001", "state": "ready", "operator": "op1024", "reason": ""}
        page.route("**/api/seat", lambda route: route.fulfill(json={
            "seat": mine, "free_seats": [], "job_number": "1024", "busy_reasons": [], "approvals": []}))
        dialled: list[dict] = []

        def dial(route) -> None:
            dialled.append(route.request.post_data_json)
            route.fulfill(json={"call_id": "1795400300.900001", "dial": {"state": "dialled"}})

        page.route("**/api/seat/callback", dial)
        page.reload()
        page.wait_for_function("document.getElementById('link').className.includes('on')", timeout=10_000)
        page.click("#callbacks li button[data-num]", timeout=5_000)
        page.wait_for_function("document.getElementById('notice').textContent.includes('正在回拨')", timeout=5_000)
        assert dialled == [{"number": HEZE, "call_id": "1795400000.1"}]
        publish(OutboundAnswered(at=time.time(), call_id="1795400300.900001", seat="8001", number=HEZE,
                                 operator="op1024"))
        page.wait_for_function(f"document.getElementById('notice').textContent.includes('回拨 {HEZE} 已接通')",
                               timeout=5_000)
        publish(LiveState(at=time.time(), call_id="1795400300.900001", seat="8001", state="listening"))
        publish(TranscriptLine(at=time.time(), call_id="1795400300.900001", seat="8001", speaker="citizen", line=1,
                               text="路灯还是不亮", final=True))
        publish(TranscriptLine(at=time.time(), call_id="9.9", seat="8001", speaker="citizen", line=1,
                               text="另一通电话", final=True))  # not the call the panel follows
        page.wait_for_selector("#transcript:not([hidden]) #tr-lines li.tr-citizen", timeout=5_000)
        assert page.inner_text("#tr-lines") == "来电人 路灯还是不亮"
        # the operator brought the department in (三方): the room's third party is said too
        for parties, channel in ((1, "PJSIP/pstn-out-00000001"), (2, "PJSIP/8001-00000000"), (3, "PJSIP/2001-02")):
            publish(CallConferenced(at=time.time(), call_id="1795400300.900001", conference="conf-1795400300.900001",
                                    channel=channel, parties=parties, seat="8001"))
        page.wait_for_function("document.getElementById('notice').textContent.includes('三方通话已接通')",
                               timeout=5_000)
        publish(OutboundEnded(at=time.time(), call_id="1795400300.900001", seat="8001", number=HEZE, talk_s=83.0))
        page.wait_for_function("document.getElementById('notice').textContent.includes('通话结束（通话 01:23）')",
                               timeout=5_000)
