"""Callbacks dialled once (agent_ui.dialing), on SQLite and a real PostgreSQL: of two clicks, two
operators, two web processes, one dial leaves and the others are told of it; only 再拨一次 dials
again, once however many ask; a refused Originate may be dialled again, an unanswered one is
"unknown"; and a console process killed (SIGKILL) mid-Originate leaves a claim that no later
click re-dials by itself. The real actions (cti.actions) send; the switch is a recording fake
link, or the fake AMI server on a real socket for the process that is killed."""

from __future__ import annotations

import asyncio
import functools
import signal
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from agent_ui import dialing
from agent_ui.dialing import LEASE, AlreadyDialled
from cti.actions import CtiActions
from cti.link import AmiLink, AmiTimeout
from cti.state import CtiState
from hotline.calls import FinishedCall
from hotline.identity import Principal, Role
from hotline.settings import Settings
from launch.compose import web_app
from testkit import ROOT
from testkit.auth import Bearer, use
from testkit.concurrent import at_once
from tests.cti.fake_ami import FakeAmi
from tests.cti.test_actions import FakeLink
from tests.support.postgres import postgres_server  # noqa: F401  (session fixture)

OP = Principal("op1024", Role.OPERATOR, job_number="1024")
OP2 = Principal("op1025", Role.OPERATOR, job_number="1025")
NUMBER = "13953012345"
MISSED = "1795400000.2"




class Switch(FakeLink):
    """The recording fake link, able to refuse an Originate or leave it unanswered."""

    def __init__(self) -> None:
        super().__init__()
        self.silent = False

    async def send(self, action: dict, *, as_list: bool | None = False) -> Any:
        if self.silent:
            self.sent.append(action)
            raise AmiTimeout(f"{action['Action']}: no answer within 10 s")
        return await super().send(action, as_list=as_list)

    @property
    def originated(self) -> list[str]:
        return [a["ChannelId"] for a in self.sent if a["Action"] == "Originate"]


def actions(link: FakeLink) -> CtiActions:
    return CtiActions(link, CtiState())


async def dial(engine: sa.Engine, link: FakeLink, after: int = 0, by: str = "op1024", request: str = "ticket:7"):
    return await dialing.dial(engine, actions(link), request, after, seat="8001", number=NUMBER, by=by)


def test_of_many_claims_at_once_one_wins(engine: sa.Engine) -> None:
    won: list[dialing.Dial] = []
    lost: list[AlreadyDialled] = []
    def click(n: int) -> None:
        try:
            won.append(dialing.claim(engine, "call:1.5", 0, number=NUMBER, seat=f"80{n:02d}", by=f"op{n}",
                                     new_id=lambda: f"1795400000.90000{n}"))
        except AlreadyDialled as exc:
            lost.append(exc)

    at_once(*(functools.partial(click, n) for n in range(8)))
    assert len(won) == 1 and len(lost) == 7 and won[0].attempt == 1
    assert {e.latest["call_id"] for e in lost if e.latest} == {won[0].channel_id}
    assert all("正在回拨" in str(e) and "请勿重复拨打" in str(e) for e in lost)


def test_two_dials_never_share_a_call_id(engine: sa.Engine) -> None:
    """Two processes (or a restart) count call ids from the same second: the second claim moves on."""
    ids = iter(["1795400000.900000", "1795400000.900000", "1795400000.900001"])
    one = dialing.claim(engine, "ticket:1", 0, number=NUMBER, seat="8001", by="op1024", new_id=lambda: next(ids))
    two = dialing.claim(engine, "ticket:2", 0, number=NUMBER, seat="8002", by="op1025", new_id=lambda: next(ids))
    assert (one.channel_id, two.channel_id) == ("1795400000.900000", "1795400000.900001")


async def test_a_second_click_is_told_of_the_dial_that_stands(engine: sa.Engine) -> None:
    link = Switch()
    mine, result = await dial(engine, link)
    assert (mine.attempt, result.call_id) == (1, mine.channel_id)
    with pytest.raises(AlreadyDialled) as again:
        await dial(engine, link, by="op1025")
    assert again.value.latest is not None
    assert again.value.latest | {"at": ""} == {
        "request": "ticket:7", "attempt": 1, "state": "dialled", "state_label": "已回拨", "number": NUMBER,
        "seat": "8001", "by": "op1024", "call_id": mine.channel_id, "error": "", "at": "", "redial_after": 1}
    said = str(again.value)
    assert said.startswith("已由 op1024（坐席 8001）于 ") and said.endswith("回拨 13953012345（第 1 次）")
    assert link.originated == [mine.channel_id]  # the Originate carried the id stored with the claim


async def test_dialling_again_is_deliberate_and_happens_once(engine: sa.Engine) -> None:
    link = Switch()
    first, _ = await dial(engine, link)
    results = await asyncio.gather(dial(engine, link, after=1), dial(engine, link, after=1, by="op1025"),
                                   return_exceptions=True)
    [second] = [r for r in results if not isinstance(r, BaseException)]
    [refused] = [r for r in results if isinstance(r, AlreadyDialled)]
    assert second[0].attempt == 2 and refused.latest and refused.latest["attempt"] == 2
    assert link.originated == [first.channel_id, second[0].channel_id] and first.channel_id != second[0].channel_id
    with pytest.raises(AlreadyDialled, match="回拨记录已变化"):
        await dial(engine, link, after=5)  # an attempt nobody made
    assert len(link.originated) == 2


async def test_a_refused_originate_rang_nobody_and_is_dialled_again(engine: sa.Engine) -> None:
    link = Switch()
    link.fail["Originate"] = "Extension does not exist."
    with pytest.raises(dialing.Refused, match="Extension does not exist"):
        await dial(engine, link)
    failed = dialing.latest(engine, "ticket:7")
    assert failed and (failed["state"], failed["state_label"], failed["redial_after"]) == (
        "failed", "回拨失败（未拨出）", 0)
    assert "交换机拒绝了回拨" in failed["error"]
    link.fail.clear()
    again, _ = await dial(engine, link)  # the same first attempt: nothing had rung
    assert again.attempt == 1 and dialing.latest(engine, "ticket:7")["state"] == "dialled"  # type: ignore[index]
    assert len(link.originated) == 2


async def test_a_switch_not_connected_sent_nothing_and_the_dial_may_be_made_again(engine: sa.Engine) -> None:
    down = AmiLink("127.0.0.1", 1, "hotline", "pw", handle=lambda e: [], publish=lambda e: None)  # never logged in
    with pytest.raises(dialing.Refused, match="not sent"):
        await dialing.dial(engine, CtiActions(down, CtiState()), "ticket:7", 0, seat="8001", number=NUMBER, by="op1024")
    assert dialing.latest(engine, "ticket:7")["state"] == "failed"  # type: ignore[index]
    link = Switch()
    assert (await dial(engine, link))[0].attempt == 1 and len(link.originated) == 1


async def test_an_unanswered_originate_is_unknown_and_not_dialled_again_by_a_click(engine: sa.Engine) -> None:
    link = Switch()
    link.silent = True
    with pytest.raises(dialing.Unanswered):
        await dial(engine, link)
    link.silent = False
    with pytest.raises(AlreadyDialled, match="结果未知") as unknown:
        await dial(engine, link)
    assert unknown.value.latest and unknown.value.latest["state"] == "unknown"
    assert "交换机未应答（AmiTimeout" in unknown.value.latest["error"]
    assert len(link.originated) == 1
    again, _ = await dial(engine, link, after=1)  # a person decided
    assert again.attempt == 2 and len(link.originated) == 2


async def test_a_console_killed_mid_originate_leaves_a_claim_no_later_click_redials(engine: sa.Engine) -> None:
    fake = await FakeAmi().start()
    fake.ignore = {"Originate"}  # the switch takes the Originate and has not answered yet
    url = engine.url.render_as_string(hide_password=False)
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "tests.agent_ui.dialer", url, str(fake.port),
                                                f"call:{MISSED}", NUMBER, cwd=ROOT, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    try:
        assert proc.stdout is not None
        assert await asyncio.wait_for(proc.stdout.readline(), 30) == b"ready\n"
        for _ in range(3000):  # until the Originate is at the switch
            if [a for a in fake.actions if a.get("Action") == "Originate"]:
                break
            await asyncio.sleep(0.01)
        [sent] = [a for a in fake.actions if a.get("Action") == "Originate"]
        claimed = dialing.latest(engine, f"call:{MISSED}")
        assert claimed and (claimed["state"], claimed["by"], claimed["call_id"]) == ("dialing", "op1024",
                                                                                      sent["ChannelId"])
        proc.send_signal(signal.SIGKILL)
        assert await proc.wait() == -signal.SIGKILL
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()

    link = Switch()  # the console again, after the restart: another operator clicks 回拨
    with pytest.raises(AlreadyDialled, match="op1024（坐席 8001）正在回拨"):
        await dial(engine, link, by="op1025", request=f"call:{MISSED}")
    later = datetime.now(UTC) + LEASE + timedelta(seconds=1)
    gone = dialing.latest(engine, f"call:{MISSED}", later)  # the lease ran out: its process is gone
    assert gone and (gone["state"], gone["state_label"]) == ("unknown", "回拨结果未知")
    with pytest.raises(AlreadyDialled, match="结果未知"):
        dialing.claim(engine, f"call:{MISSED}", 0, number=NUMBER, seat="8002", by="op1025", new_id=lambda: "1.1",
                      now=later)
    assert link.originated == []  # no click dialled it again by itself
    again, _ = await dial(engine, link, after=1, by="op1025", request=f"call:{MISSED}")  # 再拨一次, decided
    assert again.attempt == 2 and link.originated == [again.channel_id] != [sent["ChannelId"]]
    assert len([a for a in fake.actions if a.get("Action") == "Originate"]) == 1
    await fake.stop()


# --- the route, on the real app: two clicks, two web processes ------------------------------

def app(var: Path) -> tuple[TestClient, Switch]:
    client = TestClient(web_app(Settings(var_dir=var, services=[])))
    link = Switch()
    client.app.state.cti = SimpleNamespace(actions=actions(link), seat_queues=lambda seat: frozenset())  # type: ignore[attr-defined]
    client.app.state.roster = {"op1024": "8001", "op1025": "8002"}.copy  # type: ignore[attr-defined]
    return client, link


def test_two_web_processes_dial_a_missed_call_once_and_mark_it_called_back(tmp_path: Path) -> None:
    (one, link1), (two, link2) = app(tmp_path), app(tmp_path)  # two nodes, one database
    with use(one), use(two):
        calls = one.app.state.store.calls
        calls.record(FinishedCall(call_id=MISSED, caller_num=NUMBER, offered_at=1795400000.0, ended_at=1795400030.0,
                                  queue="hotline", abandoned=True, callback_requested=True))
        body = {"number": NUMBER, "call_id": MISSED}
        people = {OP: Bearer(OP), OP2: Bearer(OP2)}
        for c in (one, two):  # signed in beforehand: the race is the dial's, not the sign-in's
            for who in people.values():
                assert c.get("/api/callbacks", headers=who).status_code == 200
        got: list[Any] = []
        start = threading.Barrier(4)

        def click(client: TestClient, who: Principal) -> None:
            start.wait()
            got.append(client.post("/api/seat/callback", json=body, headers=people[who]))

        threads = [threading.Thread(target=click, args=(c, w)) for c in (one, two) for w in (OP, OP2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        codes = sorted(r.status_code for r in got)
        assert codes == [200, 409, 409, 409], [r.json() for r in got]
        [ok] = [r.json() for r in got if r.status_code == 200]
        assert link1.originated + link2.originated == [ok["call_id"]] and ok["attempt"] == 1
        for r in got:
            if r.status_code == 409:
                assert r.json()["dial"]["call_id"] == ok["call_id"] and r.json()["dial"]["request"] == f"call:{MISSED}"
        [row] = [r for r in calls.callbacks(include_done=True, days=9999) if r["id"] == MISSED]
        assert row["called_back_by"] in ("op1024", "op1025") and row["callback_note"] == "话务员回拨"
        assert MISSED not in {r["id"] for r in calls.callbacks(days=9999)}  # off the list, by the server

        again = one.post("/api/seat/callback", json=body | {"after": 1}, headers=Bearer(OP))
        assert again.status_code == 200 and again.json()["attempt"] == 2
        assert len(link1.originated + link2.originated) == 2


def test_a_dial_whose_process_stopped_before_the_list_heard_of_it_is_marked_at_the_next_click(
        tmp_path: Path) -> None:
    client, link = app(tmp_path)
    with use(client):
        calls = client.app.state.store.calls
        calls.record(FinishedCall(call_id=MISSED, caller_num=NUMBER, offered_at=1795400000.0, ended_at=1795400030.0,
                                  queue="hotline", abandoned=True))
        # dialled and recorded, then the process stopped before it marked the missed call
        asyncio.run(dial(client.app.state.engine, link, request=f"call:{MISSED}"))
        assert MISSED in {r["id"] for r in calls.callbacks(days=9999)}
        again = client.post("/api/seat/callback", json={"number": NUMBER, "call_id": MISSED}, headers=Bearer(OP2))
        assert again.status_code == 409 and again.json()["dial"]["by"] == "op1024"
        assert len(link.originated) == 1
        [row] = [r for r in calls.callbacks(include_done=True, days=9999) if r["id"] == MISSED]
        assert (row["called_back_by"], row["callback_note"]) == ("op1024", "话务员回拨")
        assert row["called_back_at"] == dialing.latest(client.app.state.engine, f"call:{MISSED}")["at"]  # type: ignore[index]


def test_the_route_says_what_the_switch_did(tmp_path: Path) -> None:
    client, link = app(tmp_path)
    with use(client):
        t = client.app.state.store.tickets.create({"caller_number": NUMBER, "category": "咨询", "title": "路灯"}, OP)
        body = {"number": NUMBER, "ticket_id": t.id}
        link.fail["Originate"] = "Extension does not exist."
        refused = client.post("/api/seat/callback", json=body, headers=Bearer(OP))
        assert refused.status_code == 502 and "没有拨出" in refused.json()["detail"]
        link.fail.clear()
        link.silent = True
        unanswered = client.post("/api/seat/callback", json=body, headers=Bearer(OP))
        assert unanswered.status_code == 504 and "是否拨出未知" in unanswered.json()["detail"]
        link.silent = False
        unknown = client.post("/api/seat/callback", json=body, headers=Bearer(OP))
        assert unknown.status_code == 409 and "结果未知" in unknown.json()["detail"]
        assert unknown.json()["dial"]["redial_after"] == 1
        assert len(link.originated) == 2
        redial = client.post("/api/seat/callback", json=body | {"after": 1}, headers=Bearer(OP))
        assert redial.status_code == 200 and redial.json()["attempt"] == 2 and len(link.originated) == 3
