"""The console as the seat's phone (WebRTC) on the real Asterisk: Debian's chromium with a fake
microphone playing a 440 Hz tone signs in to a browser seat, a SIPp citizen playing a 1 kHz tone
calls 12345 and is queued to it; the operator answers in the browser. The citizen's tone is heard
in the browser (an analyser on the far end's track), the browser's tone reaches the citizen (the
recording's operator leg), mute is silence and hold is music to the citizen, the operator
transfers the call to the specialist queue from the console; the next call is answered by itself,
joined by a department (三方) and left with Alt+H."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from hotline.settings import Settings
from hotline.simulate.audio import timeline
from testkit.audio import tone_windows
from testkit.auth import signed_in
from testkit.phone import fake_media, tone_wav
from tests.agent_ui.test_console_browser import console_of, member_line, running_stack, sign_in
from tests.conftest import speech
from tests.support.browser import chromium, phone_is, require_chromium
from tests.support.relay import Relay
from ticketing.schemas import SystemActor

pytestmark = [pytest.mark.browser, pytest.mark.asterisk]
HEZE = "13953012345"
CITIZEN_HZ, MIC_HZ = 1000, 440


def runs(flags: list[bool]) -> list[tuple[int, int]]:
    """(start, length) of each run of True."""
    out, start = [], None
    for i, f in enumerate([*flags, False]):
        if f and start is None:
            start = i
        elif not f and start is not None:
            out.append((start, i - start))
            start = None
    return out


def state_is(page, text: str, timeout: float = 10_000) -> None:
    page.wait_for_function(f"document.getElementById('pop-state').textContent.includes('{text}')", timeout=timeout)


def test_an_operator_answers_talks_mutes_holds_and_transfers_from_the_browser(
        pbx, phones, settings: Settings, audio_dir: Path, tmp_path: Path) -> None:
    require_chromium()
    seat, expert = settings.browser_phone_seats[0], settings.desk_phone_seats[1]
    mic = tmp_path / "mic.wav"
    tone_wav(mic, MIC_HZ, 120)
    phones.seat(expert, settings.seat_password(expert), speech(audio_dir, ("sil", 60)), ring_ms=500, talk_ms=60_000)
    dept = settings.department_lines[0]
    phones.seat(dept, settings.seat_password(dept), speech(audio_dir, ("sil", 60)), ring_ms=500, talk_ms=60_000)
    pbx.sign_in(expert, settings.specialist_queue)
    spool = settings.recordings_spool
    before = {p.name for p in spool.glob("*-out.wav")}

    # the browser reaches Asterisk's SIP WebSocket through a relay the test can cut (a network drop)
    with Relay((settings.sip_host, settings.asterisk_http_port)) as relay, \
            running_stack(settings, tmp_path, [], asterisk_http_port=relay.port) as (url, app), \
            chromium(fake_media(mic)) as browser:
        app.state.store.directory.save({"name": "菏泽市供水测试公司", "duties": "供水", "sip_line": dept,
                                         "phones": dept}, SystemActor())
        page = console_of(browser, url, "op1024", "demo1024")
        page.on("console", lambda m: print("console:", m.text) if m.type in ("error", "warning") else None)
        assert page.locator("#phone").is_hidden()  # no phone line before a browser seat is signed in to
        assert "浏览器话机" in page.inner_text("#seat-pick")
        sign_in(page, seat)
        phone_is(page, "registered")
        assert page.inner_text("#phone-state") == "就绪"
        assert page.locator("#ph-mic option").count() >= 1  # the fake microphone, listed to choose from
        deadline = time.monotonic() + 10  # the seat's device state follows the browser's registration
        while "Not in use" not in (line := member_line(pbx, settings.queue_name, seat)):
            assert time.monotonic() < deadline, line
            time.sleep(0.2)

        phones.callers([HEZE], settings.hotline_number, timeline(audio_dir, [("tone", f"{CITIZEN_HZ}x90")]),
                       hangup_ms=90_000)
        page.wait_for_selector("#pop:not([hidden])", timeout=30_000)
        phone_is(page, "ringing")
        assert page.inner_text("#phone-state") == "来电振铃"
        page.click("#ph-answer")
        state_is(page, "通话中", 15_000)
        page.wait_for_function("window.__phone.stats.firstAudioAt !== null", timeout=10_000)
        stats = page.evaluate("window.__phone.stats")
        print(f"\nbrowser phone: INVITE→click {stats['answerClickAt'] - stats['inviteAt']:.0f} ms, "
              f"click→answered {stats['answeredAt'] - stats['answerClickAt']:.0f} ms, "
              f"click→connected to the citizen (after the job-number prompt) "
              f"{stats['bridgedAt'] - stats['answerClickAt']:.0f} ms, "
              f"connected→ICE {stats['iceAt'] - stats['bridgedAt']:.0f} ms, "
              f"connected→citizen's audio heard {stats['firstAudioAt'] - stats['bridgedAt']:.0f} ms")
        # the analyser smooths over its last frames, so the first read after the audio starts may
        # still blend in what came before; the tone must settle within a second, then hold
        page.wait_for_function(f"Math.abs(window.__phone.peakHz() - {CITIZEN_HZ}) <= 50", timeout=1_000)
        peaks = []
        for _ in range(5):  # what the browser hears is the citizen's tone
            peaks.append(page.evaluate("window.__phone.peakHz()"))
            time.sleep(0.2)
        assert all(abs(p - CITIZEN_HZ) <= 50 for p in peaks), peaks
        assert page.evaluate("window.__phone.stats.rms") > 0.01

        time.sleep(3)  # talking: the microphone's tone goes to the citizen
        page.keyboard.press("Alt+m")
        page.wait_for_function("document.getElementById('phone-state').textContent.includes('已静音')", timeout=5_000)
        time.sleep(3)
        page.click("#ph-mute")
        page.wait_for_function("!document.getElementById('phone-state').textContent.includes('已静音')", timeout=5_000)
        time.sleep(3)
        page.click("#ph-hold")
        state_is(page, "保持中")  # the CTI saw Asterisk put the call on hold
        assert page.inner_text("#phone-state") == "保持中"
        time.sleep(3)
        page.click("#ph-hold")
        state_is(page, "通话中")
        time.sleep(3)

        # the SIP socket drops mid-call for 3 s: the call goes on (its media is peer to peer), the
        # phone line says so, reconnects and registers again
        invites = page.evaluate("window.__phone.stats.invites")
        relay.cut_off.set()
        relay.cut()
        phone_is(page, "reconnecting", 5_000)
        time.sleep(3)
        relay.cut_off.clear()
        phone_is(page, "talking", 20_000)
        assert abs(page.evaluate("window.__phone.peakHz()") - CITIZEN_HZ) <= 50
        page.wait_for_function("document.getElementById('pop-state').textContent === '通话中'", timeout=1_000)

        page.click("#to-expert")
        state_is(page, "已转接")
        phone_is(page, "registered")  # the browser's leg ended
        deadline = time.monotonic() + 15
        while f"PJSIP/{expert}-" not in pbx.cli("core show channels concise"):
            assert time.monotonic() < deadline, pbx.cli("core show channels concise")
            time.sleep(0.2)
        pbx.cli("channel request hangup all")

        # 自动接听: the next call is answered by the browser as soon as its pop is shown
        page.check("#ph-auto")
        page.wait_for_selector("#wrapup-done:not([hidden])", timeout=10_000)
        page.click("#wrapup-done")  # 话后处理 done: ready for the next call
        page.wait_for_function("document.getElementById('seat-state').textContent.startsWith('示闲')", timeout=10_000)
        phones.callers(["13800000001"], settings.hotline_number, timeline(audio_dir, [("tone", f"{CITIZEN_HZ}x60")]),
                       hangup_ms=60_000)
        page.wait_for_function(f"window.__phone.stats.invites === {invites + 1}", timeout=30_000)
        phone_is(page, "talking", 10_000)
        state_is(page, "通话中", 15_000)
        time.sleep(2.5)  # talking (the recording shows the microphone's tone)
        # 三方 with a department from the browser seat, then the operator leaves with Alt+H (the browser's BYE)
        page.fill("#dept-filter", "供水测试")
        page.click(f"#directory button[data-conf='{dept}']")
        page.wait_for_function("document.getElementById('pop-conf').textContent.includes('3 方')", timeout=20_000)
        assert "conf-" in pbx.cli("confbridge list")
        time.sleep(1.5)
        assert abs(page.evaluate("window.__phone.peakHz()") - CITIZEN_HZ) <= 50  # the citizen still heard
        page.keyboard.press("Alt+h")
        phone_is(page, "registered", 5_000)
        assert not [x for x in pbx.cli("core show channels concise").splitlines() if f"PJSIP/{seat}-" in x]
        pbx.cli("channel request hangup all")

    deadline = time.monotonic() + 10
    while len(new := sorted(p for p in spool.glob("*-out.wav") if p.name not in before)) < 2:
        assert time.monotonic() < deadline, f"recordings of both calls expected: {new}"
        time.sleep(0.2)
    windows = tone_windows(new[0], MIC_HZ, 0.5)  # the first call's operator leg (named by its start)
    assert sum(rms > 300 and share > 0.5 for rms, share in tone_windows(new[1], MIC_HZ, 0.5)) >= 4  # auto-answered
    mic_on = [rms > 300 and share > 0.5 for rms, share in windows]
    quiet = [rms < 100 for rms, _ in windows]
    music = [rms > 300 and share < 0.1 for rms, share in windows]
    first = mic_on.index(True)  # the browser's microphone reached the citizen
    assert sum(mic_on) >= 10, windows
    muted = [r for r in runs(quiet) if r[0] > first and r[1] >= 4]  # ≥ 2 s of silence while muted…
    assert muted, windows
    assert any(mic_on[muted[0][0] + muted[0][1]:]), windows  # …and the microphone back after it
    held = [r for r in runs(music) if r[0] > muted[0][0] and r[1] >= 4]  # ≥ 2 s of music on hold
    assert held, windows
    assert any(mic_on[held[0][0] + held[0][1]:]), windows  # …and the operator back after it


def test_without_a_microphone_or_its_permission_the_phone_says_so_and_takes_no_calls(
        pbx, settings: Settings, tmp_path: Path) -> None:
    require_chromium()
    seat = settings.browser_phone_seats[0]
    cases = [((), "nomic", "未找到麦克风"),  # a machine with no microphone at all
             (("--use-fake-device-for-media-stream",), "denied", "权限被拒绝")]  # one the operator refused
    with running_stack(settings, tmp_path, []) as (url, _app):
        lead = signed_in(url, "lead", "demolead")
        for flags, state, words in cases:
            with chromium(flags) as browser:
                page = console_of(browser, url, "op1024", "demo1024")
                sign_in(page, seat)
                phone_is(page, state, 10_000)
                shown = page.inner_text("#phone-state")
                assert words in shown and "来电不会分配到本坐席" in shown
                assert page.is_disabled("#ph-answer")
                line = member_line(pbx, settings.queue_name, seat)
                assert "Unavailable" in line, line  # not registered: the queue rings other seats
                # the lead sees it on the wall and gets an alert; the operator's own status line says it too
                board = httpx.get(f"{url}/api/lead/board", headers=lead, timeout=5).json()
                assert next(v for v in board["seats"] if v["seat"] == seat)["phone_reachable"] is False
                assert any(a["kind"] == "phone_offline" and a["subject_seat"] == seat and not a["acked_at"]
                           for a in board["alerts"]), board["alerts"]
                page.wait_for_function("document.getElementById('seat-state').textContent.includes('话机离线')",
                                       timeout=5_000)
                page.click("#signout")
                page.wait_for_function("document.getElementById('seat-no').textContent === '未签入'", timeout=10_000)
                assert page.locator("#phone").is_hidden()
