"""The QA replay page in Debian's chromium: waveforms and transcript show, clicking a word moves
the playhead; an operator without approval gets no audio and the attempt is logged."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from hotline.settings import Settings
from launch.compose import web_app
from recordings import catalog, worker
from tests.recordings.conftest import two_leg_call
from tests.recordings.test_catalog import call_record
from tests.support.browser import chromium, free_port, require_chromium, serving

pytestmark = pytest.mark.browser
LATER = 10_000_000_000.0


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, vosk_model) -> Iterator[tuple[str, int, object]]:
    require_chromium()
    port = free_port()
    settings = Settings(var_dir=tmp_path_factory.mktemp("var"), web_port=port, ami_port=1, agi_port=1, services=[],
                        agi_job_numbers={"8001": "1024"})
    app = web_app(settings)
    with serving(app, port):
        yield from _with_a_transcribed_call(app, settings, port, vosk_model)


def _with_a_transcribed_call(app, settings: Settings, port: int, vosk_model) -> Iterator[tuple[str, int, object]]:
    engine = app.state.engine
    base = "hotline-20261123-101500-1763869000.1"
    two_leg_call(catalog.spool_dir(settings), base, [("sil", 3.0), ("say", "caller_ko")], [("say", "agent_ko")],
                 total_s=12.0)
    rid = catalog.register_call(engine, settings, call_record(base, seat="8001"))
    catalog.collect(engine, settings, now=LATER)
    claim = worker.claim(engine, "browser-test", lease_s=60)
    assert worker.process(engine, settings, vosk_model, claim, lease_s=60)  # a real transcript, real findings
    yield f"http://127.0.0.1:{port}", rid, engine


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with chromium() as b:
        yield b


def signed_in(browser, url: str, username: str, password: str):
    context = browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN")
    r = context.request.post(f"{url}/api/auth/login", data={"username": username, "password": password})
    assert r.ok, r.text()
    return context


def test_qa_replays_a_call_and_clicking_a_word_moves_the_playhead(served, browser):
    url, rid, _ = served
    context = signed_in(browser, url, "qa", "demoqa")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    # no audio without someone else's approval: QA ask for a duty grant on their list page …
    page.goto(f"{url}/qa")
    page.wait_for_function("document.getElementById('duty-state').textContent.includes('尚未获得质检授权')")
    page.fill("#duty-form input[name=reason]", "本周质检抽查")
    page.press("#duty-form input[name=reason]", "Enter")
    page.wait_for_function("document.getElementById('duty-state').textContent.includes('等待班长或管理员审批')")
    assert page.locator("#duty-form").is_hidden()
    # … and a lead approves it on theirs
    lead = signed_in(browser, url, "lead", "demolead")
    board = lead.new_page()
    board.goto(f"{url}/qa")
    row = board.locator("#requests tbody tr", has_text="质检授权（全部录音）")
    row.wait_for(timeout=15000)
    row.get_by_role("button", name="批准").click()
    board.wait_for_function("document.querySelector('#requests tbody').textContent.includes('没有待审批的申请')")
    lead.close()
    page.reload()
    page.wait_for_function("document.getElementById('duty-state').textContent.includes('已获授权（lead 批准）')")
    page.goto(f"{url}/qa/{rid}")
    page.wait_for_selector("#player-box:not([hidden])", timeout=15000)
    page.wait_for_function("document.getElementById('player').readyState >= 1", timeout=15000)
    # both legs drawn (wavesurfer renders into a shadow root) over the same 12 s
    drawn = page.evaluate("""() => ['citizen', 'operator'].map((leg) => {
        const [ws] = window.qaWaves[leg];
        const host = document.querySelector('#wave-' + leg).firstElementChild;
        return [ws.getDuration(), host.shadowRoot.querySelectorAll('canvas').length];
    })""")
    for duration, canvases in drawn:
        assert abs(duration - 12.0) < 0.1 and canvases >= 1
    # findings as regions over the leg they concern, with their real width
    regions = page.evaluate("""() => window.qaWaves.operator[1].getRegions().map(
        (r) => [r.start, r.end, r.element.getBoundingClientRect().width])""")
    assert regions and all(end > start and width > 1 for start, end, width in regions)
    words = page.locator("#transcript .w")
    assert words.count() >= 6
    for speaker in ("citizen", "operator"):
        assert page.locator(f"#transcript .turn.{speaker}").count() >= 1
    assert page.locator("#findings button").count() >= 1  # Korean speech has no Chinese greeting: flagged

    target = words.nth(words.count() - 2)
    start = float(target.get_attribute("data-start"))
    assert start > 1.0
    target.click()
    page.wait_for_function(f"Math.abs(document.getElementById('player').currentTime - {start}) < 0.05", timeout=5000)
    assert "current" in target.get_attribute("class")
    cursor = page.evaluate("window.qaWaves.operator[0].getCurrentTime()")
    assert abs(cursor - start) < 0.05  # the waveform's playhead follows the same player

    page.keyboard.press("]")  # keyboard speed-up: 1 → 1.25
    assert page.evaluate("document.getElementById('player').playbackRate") == 1.25
    assert page.locator("#score-form input[type=number]").count() == 14
    assert errors == []
    if shot := os.environ.get("HOTLINE_QA_SCREENSHOT"):
        page.screenshot(path=shot)
    context.close()


def test_an_operator_without_approval_gets_no_audio_and_the_attempt_is_logged(served, browser):
    url, rid, _ = served
    context = signed_in(browser, url, "op1024", "demo1024")
    page = context.new_page()
    page.goto(f"{url}/qa/{rid}")
    page.wait_for_selector("#no-audio:not([hidden])", timeout=15000)
    assert "请提交收听申请" in page.locator("#no-audio-reason").inner_text()
    assert page.locator("#player-box").is_hidden()
    assert page.evaluate("document.getElementById('player').getAttribute('src')") is None
    assert page.locator("#transcript .w").count() >= 1  # the text is theirs to read; the audio is not
    direct = context.request.get(f"{url}/api/recordings/{rid}/audio/mixed")
    assert direct.status == 403
    context.close()

    lead = signed_in(browser, url, "lead", "demolead")
    log = lead.request.get(f"{url}/api/recordings/access-log?recording_id={rid}").json()
    denied = [e for e in log["items"] if e["username"] == "op1024"]
    assert {(e["action"], e["allowed"], e["leg"]) for e in denied} == {("denied", False, "peaks"),
                                                                       ("denied", False, "mixed")}
    lead.close()


def test_a_lead_approves_from_the_list_and_the_operator_then_hears_the_call(served, browser):
    url, rid, _ = served
    op = signed_in(browser, url, "op1024", "demo1024")
    page = op.new_page()
    page.goto(f"{url}/qa/{rid}")
    page.wait_for_selector("#no-audio:not([hidden])", timeout=15000)
    page.fill("#request-form input[name=reason]", "复核本人通话")
    page.click("#request-form button")
    page.wait_for_function("document.getElementById('request-state').textContent.includes('等待班长或管理员审批')")

    lead = signed_in(browser, url, "lead", "demolead")
    board = lead.new_page()
    board.goto(f"{url}/qa")
    board.wait_for_selector(f"#recordings a[href='/qa/{rid}']", timeout=15000)
    row = board.locator("#requests tbody tr", has_text="op1024")
    row.wait_for(timeout=15000)
    assert "复核本人通话" in row.inner_text()
    row.get_by_role("button", name="批准").click()
    board.wait_for_function("document.querySelector('#requests tbody').textContent.includes('没有待审批的申请')")
    assert "%" in board.locator("#progress-text").inner_text()
    if shot := os.environ.get("HOTLINE_QA_SCREENSHOT"):
        board.screenshot(path=shot.replace(".png", "-list.png"))
    lead.close()

    page.reload()
    page.wait_for_selector("#player-box:not([hidden])", timeout=15000)
    page.wait_for_function("document.getElementById('player').readyState >= 1", timeout=15000)
    op.close()
