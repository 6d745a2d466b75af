"""What citizens use without an account: the status page's API (the right ticket for the right code,
one identical answer for a wrong code and an unknown number, the rating on the ticket's history),
its rate limits (the limiter with its injected clock, then through the routes), and the web form."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from agent_ui.public import PublicLimits, SlidingWindow
from hotline.identity import Principal, Role
from hotline.settings import Settings
from launch.compose import web_app
from tests.ticketing.conftest import intake
from ticketing.public import PublicStatus

OPERATOR = Principal("op1024", Role.OPERATOR, job_number="1024")
NOT_FOUND = "没有查到该工单，请核对工单编号和查询码"


class Seconds:
    """The limiter's injected clock: monotonic seconds, moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Desk:
    client: TestClient
    seconds: Seconds
    number: str
    code: str
    ticket_id: int
    department: Principal


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[Desk]:
    with TestClient(web_app(Settings(var_dir=tmp_path, services=[]))) as client:
        seconds = Seconds()
        client.app.state.public_limits = PublicLimits.default(seconds)
        store = client.app.state.store
        dept = store.directory.save({"name": "菏泽市水务集团有限公司", "duties": "供水 停水"},
                                    Principal("admin", Role.ADMIN))
        t = store.tickets.create(intake(), OPERATOR)
        store.actions.transfer(t.id, dept.id, "请核实处理", OPERATOR)
        yield Desk(client, seconds, t.number, t.query_code, t.id,
                   Principal("water", Role.DEPARTMENT, department_id=dept.id))


def wrong(code: str) -> str:
    return "000000" if code != "000000" else "111111"


# ------------------------------------------------------------------------------------ the limiter

def test_the_sliding_window_counts_per_key_and_says_how_long_to_wait() -> None:
    clock = Seconds()
    window = SlidingWindow(3, 60, clock=clock)
    for _ in range(3):
        assert window.hit("1.2.3.4") == 0
        clock.now += 10
    clock.now -= 10  # hits at 1000, 1010, 1020; now 1020
    assert window.hit("1.2.3.4") == 40 and window.hit("5.6.7.8") == 0  # another client is not held up
    clock.now += 2
    assert window.hit("1.2.3.4") == 38  # a refused try is not counted: the wait does not grow
    clock.now += 37.5
    assert window.hit("1.2.3.4") == 1  # rounded up: never "0 seconds"
    clock.now += 0.5
    assert window.hit("1.2.3.4") == 0  # the hit of 1000 left the window
    assert window.hit("1.2.3.4") == 10  # the one of 1010 leaves next


def test_the_windows_memory_stays_bounded() -> None:
    clock = Seconds()
    window = SlidingWindow(2, 10, clock=clock, max_keys=100)
    for n in range(500):
        assert window.hit(f"10.0.{n // 256}.{n % 256}") == 0
    assert len(window) == 100  # the stalest addresses were forgotten
    clock.now += 10
    window.hit("late")
    assert len(window) <= 100
    with pytest.raises(ValueError):
        SlidingWindow(0, 10)


# ------------------------------------------------------------------------------------ status

def test_the_right_number_and_code_show_the_ticket_and_nothing_of_the_reporter(desk: Desk) -> None:
    got = desk.client.post("/api/public/status", json={"number": desk.number, "code": desk.code})
    assert got.status_code == 200, got.text
    body = got.json()
    assert set(body) == {f.name for f in fields(PublicStatus)}
    assert (body["number"], body["state"], body["may_rate"]) == (desk.number, "已转交承办单位", False)
    assert body["due"] and got.headers["cache-control"] == "no-store"
    for personal in ("张桂兰", "13853012345", "长江路", desk.code):  # name, number, address, the code itself
        assert personal not in got.text
    spaced = desk.client.post("/api/public/status", json={"number": f" {desk.number} ", "code": desk.code})
    assert spaced.status_code == 200  # copied with spaces around it: still found


def test_a_wrong_code_and_an_unknown_number_get_byte_identical_answers(desk: Desk) -> None:
    answers = [desk.client.post("/api/public/status", json=body) for body in (
        {"number": desk.number, "code": wrong(desk.code)},
        {"number": "20990101000001", "code": desk.code},
        {"number": str(int(desk.number) + 1), "code": wrong(desk.code)},
    )]
    first = answers[0]
    assert first.status_code == 404 and first.json() == {"detail": NOT_FOUND}
    for other in answers[1:]:
        assert (other.status_code, other.content, dict(other.headers)) == \
            (first.status_code, first.content, dict(first.headers))
    rated = [desk.client.post("/api/public/rate", json=body | {"rating": "满意"}) for body in (
        {"number": desk.number, "code": wrong(desk.code)}, {"number": "20990101000001", "code": desk.code})]
    assert [(r.status_code, r.content, dict(r.headers)) for r in rated] == \
        [(first.status_code, first.content, dict(first.headers))] * 2


def test_malformed_input_is_refused_in_chinese(desk: Desk) -> None:
    for body, words in (({"number": "abc", "code": desk.code}, "工单编号"), ({"number": desk.number}, "查询码"),
                        ({"number": desk.number, "code": "12"}, "查询码")):
        got = desk.client.post("/api/public/status", json=body)
        assert got.status_code == 422 and words in got.json()["detail"], got.text
    assert "JSON" in desk.client.post("/api/public/status", content=b"{oops").json()["detail"]
    assert desk.client.post("/api/public/status", json=[1, 2]).status_code == 422


def test_the_citizen_rates_once_replied_and_the_rating_lands_on_the_history(desk: Desk) -> None:
    keys = {"number": desk.number, "code": desk.code}
    early = desk.client.post("/api/public/rate", json=keys | {"rating": "满意"})
    assert early.status_code == 422 and "答复后" in early.json()["detail"]
    store = desk.client.app.state.store
    store.actions.accept(desk.ticket_id, desk.department)
    store.actions.reply(desk.ticket_id, "已恢复供水，并向小区发了停水通知", desk.department)
    shown = desk.client.post("/api/public/status", json=keys).json()
    assert shown["reply"] == "已恢复供水，并向小区发了停水通知" and shown["may_rate"] and shown["replied"]
    bad = desk.client.post("/api/public/rate", json=keys | {"rating": "非常好"})
    assert bad.status_code == 422 and "满意、基本满意、不满意" in bad.json()["detail"]
    rated = desk.client.post("/api/public/rate", json=keys | {"rating": "基本满意"})
    assert rated.status_code == 200 and rated.json()["rating"] == "基本满意" and not rated.json()["may_rate"]
    history = store.tickets.history(desk.ticket_id, Principal("lead", Role.LEAD))
    assert [e.note for e in history if e.action == "citizen_rating"] == ["市民在公众查询页评价：基本满意"]


# ------------------------------------------------------------------------------------ rate limits

def test_status_queries_are_limited_per_client_with_the_wait_in_the_answer(desk: Desk) -> None:
    misses = [desk.client.post("/api/public/status", json={"number": str(20990101000001 + n), "code": desk.code})
              for n in range(10)]
    assert [m.status_code for m in misses] == [404] * 10
    refused = desk.client.post("/api/public/status", json={"number": desk.number, "code": desk.code})
    assert refused.status_code == 429 and refused.json()["detail"] == "查询过于频繁，请 60 秒后再试"
    desk.seconds.now += 2
    refused = desk.client.post("/api/public/status", json={"number": desk.number, "code": desk.code})
    assert refused.json()["detail"] == "查询过于频繁，请 58 秒后再试" and refused.headers["retry-after"] == "58"
    assert refused.headers["cache-control"] == "no-store"
    # malformed tries count too: a script cannot probe for free
    assert desk.client.post("/api/public/status", json={}).status_code == 429
    assert desk.client.post("/api/public/rate", json={}).status_code == 429
    desk.seconds.now += 58
    assert desk.client.post("/api/public/status", json={"number": desk.number, "code": desk.code}).status_code == 200


def test_a_ticket_number_is_limited_whoever_asks(desk: Desk) -> None:
    desk.client.app.state.public_limits = PublicLimits(
        per_client=SlidingWindow(1000, 60, desk.seconds), per_number=SlidingWindow(3, 3600, desk.seconds),
        submissions=SlidingWindow(5, 600, desk.seconds))
    codes = [c for c in (f"{n:06d}" for n in range(5)) if c != desk.code][:4]
    guesses = [desk.client.post("/api/public/status", json={"number": desk.number, "code": c}) for c in codes]
    assert [g.status_code for g in guesses] == [404, 404, 404, 429]
    assert guesses[3].json()["detail"] == "查询过于频繁，请 60 分钟后再试"
    # the right code does not get through either: that is the point
    assert desk.client.post("/api/public/status", json={"number": desk.number, "code": desk.code}).status_code == 429
    # an unknown number is limited exactly like a real one (the limit says nothing of existence)
    unknown = [desk.client.post("/api/public/status", json={"number": "20990101000001", "code": c}) for c in codes]
    assert [(u.status_code, u.content) for u in unknown] == [(g.status_code, g.content) for g in guesses]
    desk.seconds.now += 3600
    assert desk.client.post("/api/public/status", json={"number": desk.number, "code": desk.code}).status_code == 200


# ------------------------------------------------------------------------------------ web form, pages

def test_the_web_form_queues_a_submission_and_refuses_bad_input_in_chinese(desk: Desk) -> None:
    c = desk.client
    c.app.state.public_limits.submissions = SlidingWindow(100, 600, desk.seconds)  # limits: the next test
    made = c.post("/api/public/submissions", json={"text": "中华路路灯坏了一个星期", "contact": "13953012345",
                                                   "place": "牡丹区中华路", "name": "李四", "confidential": True})
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["status"] == "pending" and body["channel"] == "web" and "3 分钟内" in body["message"]
    assert "13953012345" not in made.text and "李四" not in made.text  # a receipt, not an echo
    [queued] = c.app.state.store.intake.pending()
    assert (queued.channel_label, queued.contact, queued.confidential) == ("网站", "13953012345", True)
    for bad, words in (({"text": "短", "contact": "13953012345"}, "请填写反映内容（至少 5 个字）"),
                       ({"text": "中华路路灯坏了"}, "请填写联系方式"),
                       ({"text": "x" * 4001, "contact": "13953012345"}, "反映内容过长"),
                       ({"text": "中华路路灯坏了", "contact": "13953012345", "external_id": "x"}, "external_id"),
                       ({"text": "中华路路灯坏了", "contact": "13953012345", "confidential": "yes"}, "是否保密"),
                       ({"text": "中华路\x00路灯坏了", "contact": "13953012345"}, "控制字符"),
                       ({"text": 12345, "contact": "13953012345"}, "反映内容应为文本")):
        got = c.post("/api/public/submissions", json=bad)
        assert got.status_code == 422 and words in got.json()["detail"], (bad, got.text)
    assert len(c.app.state.store.intake.pending()) == 1


def test_the_web_form_is_limited_per_client(desk: Desk) -> None:
    c = desk.client
    report = {"text": "中华路路灯坏了", "contact": "13953012345"}
    assert [c.post("/api/public/submissions", json=report).status_code for _ in range(5)] == [201] * 5
    refused = c.post("/api/public/submissions", json=report)
    assert refused.status_code == 429 and refused.json()["detail"] == "提交过于频繁，请 10 分钟后再试"
    assert len(c.app.state.store.intake.pending()) == 5
    desk.seconds.now += 600
    assert c.post("/api/public/submissions", json=report).status_code == 201


def test_the_pages_are_public_phone_sized_and_chinese(desk: Desk) -> None:
    for path, words in (("/status", "工单查询"), ("/report", "网上反映")):
        page = desk.client.get(path, headers={"Accept": "text/html"})
        assert page.status_code == 200 and words in page.text and 'name="viewport"' in page.text
        assert 'lang="zh-CN"' in page.text and "退出" not in page.text  # nobody is signed in here
    assert "满意" in desk.client.get("/status").text
