"""回访 in Debian's chromium against the whole stack on a real Asterisk: an operator signed in to a
browser seat (the console is the phone: chromium with a fake microphone) opens the callback list from
the console, presses Enter on the replied ticket, the seat's phone in the console tab rings and
answers by itself (the operator's own dial), then the citizen's rings, a SIPp phone on the simulated outside
line the callback trunk dials; the operator brings the department that replied into the call (三方,
Alt+T), records 不满意 with the reason, and the ticket is back with the department at once (办理中,
redone once), the callback call linked to it."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hotline.calls import FinishedCall
from hotline.identity import Principal, Role
from hotline.settings import Settings
from recordings import catalog
from testkit.phone import fake_media, tone_wav
from tests.agent_ui.test_console_browser import console_of, running_stack, sign_in
from tests.conftest import speech
from tests.support.browser import chromium, phone_is, require_chromium, screenshot
from ticketing.schemas import SystemActor

pytestmark = [pytest.mark.browser, pytest.mark.asterisk]
CITIZEN = "13953012345"
ADMIN = SystemActor()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    require_chromium()
    mic = tmp_path / "mic.wav"
    tone_wav(mic, 440, 60)
    with chromium(fake_media(mic)) as b:
        yield b


def outside_channels(pbx) -> list[str]:
    return [line for line in pbx.cli("core show channels concise").splitlines() if "pstn-out" in line]


def test_an_operator_calls_back_records_unsatisfied_and_the_ticket_goes_back_to_the_department(
        pbx, browser, phones, settings: Settings, tmp_path: Path, audio_dir: Path) -> None:
    seat = settings.browser_phone_seats[0]
    media = speech(audio_dir, ("sil", 60))
    with running_stack(settings, tmp_path, []) as (url, app):
        store = app.state.store
        dept = settings.department_lines[0]  # the department's SIP line: the 三方 rings it
        city = store.directory.save({"name": "菏泽市城市管理局", "duties": "路灯 井盖", "sip_line": dept}, ADMIN).id
        ticket = store.tickets.create({"caller_number": CITIZEN, "caller_name": "王先生", "category": "一般诉求",
                                       "title": "小区路灯不亮", "matter_place": "牡丹区花园小区"},
                                      Principal("op1024", Role.OPERATOR, job_number="1024"))
        store.actions.transfer(ticket.id, city, "请维修路灯", ADMIN)
        for step in ("accept", "start"):
            store.actions.act(ticket.id, step, None, ADMIN)
        store.actions.reply(ticket.id, "已更换灯泡，路灯恢复照明", ADMIN)
        # the call the ticket came from, and what the citizen pressed in the IVR survey after it
        now = time.time()
        store.calls.record(FinishedCall(call_id=f"{int(now) - 3600}.11", caller_num=CITIZEN, offered_at=now - 3600,
                                        ended_at=now - 3500, queue="hotline", seat=seat, operator="op1024",
                                        answered_at=now - 3596, talk_s=90.0))
        store.calls.link_ticket(f"{int(now) - 3600}.11", ticket.id)
        store.calls.record_survey(f"{int(now) - 3600}.11", 2)

        citizen = phones.outside(CITIZEN, media)
        phones.seat(dept, settings.seat_password(dept), media, ring_ms=500, talk_ms=120_000)
        console = console_of(browser, url, "op1024", "demo1024")
        sign_in(console, seat)
        phone_is(console, "registered")
        with console.context.expect_page() as opened:
            console.click(".statusbar a:has-text('回访')")
        page = opened.value
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        row = page.locator("#due tbody tr", has_text=ticket.number)
        row.wait_for(timeout=10_000)
        assert "菏泽市城市管理局" in row.inner_text() and "基本满意" in row.inner_text()  # the IVR survey

        page.keyboard.press("ArrowDown")  # the first ticket due
        page.keyboard.press("Enter")  # dials: the seat's phone first, then the citizen's
        page.wait_for_function("document.getElementById('v-call').textContent.includes('正在回拨')", timeout=10_000)
        assert "已关联工单" in page.inner_text("#v-call")
        assert "已更换灯泡" in page.inner_text("#v-ticket")
        deadline = time.monotonic() + 20
        while not outside_channels(pbx):  # the citizen's phone rang on the callback trunk and answered
            assert time.monotonic() < deadline, pbx.cli("core show channels concise")
            assert citizen.running(), citizen.errors()[-400:]
            time.sleep(0.2)
        assert console.evaluate("window.__phone.state") == "talking"  # answered in the console's tab
        assert page.is_visible("#v-form")  # the result form stays open during the call
        screenshot(page, "callbacks-dialled-1366")

        # the citizen says the lamp is still out: the operator brings the department that replied in
        page.locator("#v-conf").wait_for(state="visible", timeout=10_000)
        page.keyboard.press("Alt+t")
        page.wait_for_function("document.getElementById('v-call').textContent.includes('三方通话中')", timeout=20_000)
        assert "菏泽市城市管理局" in page.inner_text("#v-call") and page.is_hidden("#v-conf")
        room = [line for line in pbx.cli("confbridge list").splitlines() if line.startswith("conf-")]
        assert len(room) == 1 and room[0].split()[1] == "3", room  # citizen, operator, department
        assert console.evaluate("window.__phone.state") == "talking"  # the operator's phone is still on it
        screenshot(page, "callbacks-conference-1366")

        page.check("input[name=satisfaction_process][value=满意]")
        page.check("input[name=satisfaction][value=不满意]")
        assert page.is_visible("#v-redo")  # 不满意 sends the ticket back: the form says so
        page.click("#v-form button[type=submit]")
        assert "原因" in page.inner_text("#notice")  # 不满意 needs the reason
        assert store.tickets.get(ticket.id, ADMIN).status == "replied"
        page.fill("textarea[name=result]", "路灯晚上仍然不亮，出行不便")
        page.click("#v-form button[type=submit]")
        page.wait_for_function("document.getElementById('notice').textContent.includes('已退回')", timeout=10_000)
        assert "办理中" in page.inner_text("#notice") and "第 1 次重办" in page.inner_text("#notice")
        row.wait_for(state="detached", timeout=5_000)  # no longer waiting for a callback

        back = store.tickets.get(ticket.id, ADMIN)
        assert (back.status, back.status_label, back.redo_count) == ("in_progress", "办理中", 1)
        assert (back.satisfaction_process, back.satisfaction, back.callback_result) == (
            "满意", "不满意", "路灯晚上仍然不亮，出行不便")
        assert [d.name for d in back.departments] == ["菏泽市城市管理局"]
        calls = [c["id"] for c in store.calls.for_ticket(ticket.id)]
        [linked] = [c for c in calls if re.fullmatch(r"\d+\.9\d{5}", c)]  # the callback call's own id is the ticket's
        spool = catalog.spool_dir(settings)  # … and it names the call's recording, which MixMonitor is writing
        assert any(p.name.endswith(f"-{linked}.wav") for p in spool.glob("callback-*.wav")), list(spool.iterdir())
        screenshot(page, "callbacks-recorded-1366")
        assert errors == []
        citizen.stop()
