"""智能回访 on the 回访 page in chromium: while the operator is on the phone with the citizen, the
call's words show beside the result form, and what they say of the two verdicts is offered (only
what that form has a field for: not the ticket fields, not articles). Alt+number takes one; a
办理结果 of 不满意 shows the form's warning (a 办理过程 one alone does not: only the result sends a
ticket back), the reason is taken into 回访情况, and the result sent sends the ticket back. No CTI
here: the dial's answer is given by the test and the call's events are published on the node's bus
as the bridge and the listening node would."""

from __future__ import annotations

import time
from pathlib import Path

from cti.domain import OutboundAnswered
from hotline.identity import Principal, Role
from hotline.listening import AssistOffered, LiveState, TranscriptLine
from tests.agent_ui.test_console_browser import HEZE, browser, console_of, without_cti  # noqa: F401
from tests.support.browser import require_chromium
from ticketing.schemas import SystemActor

CALL = "1795400300.900001"
SAID = "路灯晚上还是不亮，打了好几次电话都没人管"


def replied_ticket(store) -> object:
    city = store.directory.save({"name": "菏泽市城市管理局", "duties": "路灯"}, SystemActor()).id
    ticket = store.tickets.create({"caller_number": HEZE, "caller_name": "王先生", "category": "一般诉求",
                                   "title": "小区路灯不亮", "matter_place": "牡丹区花园小区"},
                                  Principal("op1024", Role.OPERATOR, job_number="1024"))
    store.actions.transfer(ticket.id, city, "请维修路灯", SystemActor())
    for step in ("accept", "start"):
        store.actions.act(ticket.id, step, None, SystemActor())
    store.actions.reply(ticket.id, "已更换灯泡，路灯恢复照明", SystemActor())
    return ticket


def test_the_visit_page_offers_the_verdicts_the_citizen_s_words_give(browser, tmp_path: Path) -> None:  # noqa: F811
    require_chromium()
    with without_cti(tmp_path) as (url, app, publish):
        ticket = replied_ticket(app.state.store)
        page = console_of(browser, url, "op1024", "demo1024")
        page.route("**/api/seat/callback", lambda route: route.fulfill(json={"call_id": CALL}))
        page.goto(f"{url}/callbacks")
        page.wait_for_function("window.__transcript !== undefined", timeout=5_000)
        page.locator("#due tbody tr", has_text=ticket.number).wait_for(timeout=10_000)
        page.keyboard.press("ArrowDown")
        page.keyboard.press("Enter")
        page.wait_for_function("document.getElementById('v-call').textContent.includes('正在回拨')", timeout=5_000)
        time.sleep(0.5)  # the page's live link is up before the call's events go out
        publish(OutboundAnswered(at=time.time(), call_id=CALL, seat="8001", number=HEZE, operator="op1024"))
        page.wait_for_function("document.getElementById('v-call').textContent.includes('通话中')", timeout=5_000)
        publish(LiveState(at=time.time(), call_id=CALL, seat="8001", state="listening"))
        publish(TranscriptLine(at=time.time(), call_id=CALL, seat="8001", speaker="citizen", line=1, text=SAID,
                               final=True))
        publish(AssistOffered(at=time.time(), call_id=CALL, seat="8001",
                              articles=[{"id": 7, "title": "路灯报修指引", "topic": "城市管理", "hits": ["路灯"]}],
                              proposals=[
                                  {"field": "contact", "value": HEZE, "label": "联系方式", "source": SAID},
                                  {"field": "satisfaction", "value": "不满意", "label": "办理结果", "source": SAID},
                                  {"field": "satisfaction_process", "value": "不满意", "label": "办理过程",
                                   "source": SAID},
                                  {"field": "result", "value": SAID, "label": "回访情况", "source": SAID}]))
        page.wait_for_selector("#tr-assist:not([hidden]) #tr-props button", timeout=5_000)
        assert page.inner_text("#tr-lines") == f"市民 {SAID}"
        offered = page.locator("#tr-props button").all_inner_texts()
        assert [t.split("：")[0] for t in offered] == ["Alt+1 办理结果", "Alt+2 办理过程", "Alt+3 回访情况"]
        assert page.is_hidden("#tr-articles"), "no knowledge card on this page"
        assert not page.is_checked("input[name=satisfaction][value=不满意]"), "nothing is filled by itself"

        page.keyboard.press("Alt+2")  # 办理过程：不满意 — kept on the ticket; it does not send it back
        assert page.is_checked("input[name=satisfaction_process][value=不满意]")
        assert page.is_hidden("#v-redo")
        page.keyboard.press("Alt+1")  # 办理结果：不满意 — the form says the ticket will go back
        assert page.is_checked("input[name=satisfaction][value=不满意]") and page.is_visible("#v-redo")
        page.keyboard.press("Alt+3")
        assert page.input_value("textarea[name=result]") == SAID
        assert page.locator("#tr-props button.taken").count() == 3
        page.click("#v-form button[type=submit]")
        try:
            page.wait_for_function("document.getElementById('notice').textContent.includes('已退回')", timeout=10_000)
        except Exception:
            raise AssertionError(page.inner_text("#notice")) from None
        back = app.state.store.tickets.get(ticket.id, SystemActor())
        assert (back.status, back.redo_count, back.satisfaction, back.satisfaction_process, back.callback_result) == (
            "in_progress", 1, "不满意", "不满意", SAID)
