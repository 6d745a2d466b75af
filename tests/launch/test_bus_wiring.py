"""HOTLINE_BUS_URL: every entry point's node takes the bus the setting names; on Redis, two web
nodes of one centre (one database) show the same events in one order, a browser that moves from
one to the other catches up from where it was, and production refuses a Redis others could read."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from cti.domain import AnswerRuleBreached, LinkStatus, SeatRinging
from hotline.bus import InProcessBus
from hotline.identity import Role
from hotline.redis_bus import BusUnavailable, RedisBus
from hotline.settings import Settings
from launch.compose import bus_of, web_app
from launch.preflight import bus_problems
from testkit import free_port
from testkit.auth import Bearer, use
from testkit.redis import RedisServer
from tests.cti.conftest import Script
from tests.cti.fake_ami import FakeAmi

pytestmark = pytest.mark.timeout(120)
LEAD = Bearer("lead", Role.LEAD)


def pop(n: int) -> SeatRinging:
    return SeatRinging(at=float(n), call_id=f"c{n}", seat="8001", queue="hotline", caller_num="13953012345",
                       caller_name="张三", waited_ms=800, variables={"HL_LOCATION": "山东省菏泽市"})


def test_the_setting_names_the_bus(tmp_path: Path) -> None:
    assert isinstance(bus_of(Settings(var_dir=tmp_path)), InProcessBus)
    assert isinstance(bus_of(Settings(var_dir=tmp_path, bus_url="memory://")), InProcessBus)
    bus = bus_of(Settings(var_dir=tmp_path, bus_url="redis://127.0.0.1:6390/2?prefix=centre1", bus_timeout_s=0.7))
    assert isinstance(bus, RedisBus) and bus.prefix == "centre1" and bus.timeout == 0.7
    with pytest.raises(ValidationError, match="HOTLINE_BUS_URL"):
        Settings(var_dir=tmp_path, bus_url="amqp://broker/")
    assert "pw-7Hq2" not in repr(Settings(var_dir=tmp_path, bus_url="redis://:pw-7Hq2@10.0.0.5:6379/0"))


def test_production_refuses_a_redis_bus_others_could_read(tmp_path: Path) -> None:
    def refused(url: str) -> list[str]:
        return bus_problems(Settings(var_dir=tmp_path, bus_url=url))

    assert refused("redis://127.0.0.1:6379/0") == [] and refused("") == []  # on this machine
    assert len(refused("redis://10.0.0.5:6379/0")) == 2  # no password, no TLS
    assert len(refused("redis://:s3cret@10.0.0.5:6379/0")) == 1 and "rediss://" in refused(
        "redis://:s3cret@10.0.0.5:6379/0")[0]
    assert refused("rediss://:s3cret@redis.centre.example:6380/0") == []


def test_a_node_whose_redis_does_not_answer_does_not_start(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path, services=[], bus_url=f"redis://127.0.0.1:{free_port()}/0",
                        bus_timeout_s=0.5)
    with pytest.raises(BusUnavailable, match="did not answer"), TestClient(web_app(settings)):
        pass


def test_two_web_nodes_share_the_bridge_events_and_a_browser_moves_between_them(tmp_path: Path,
                                                                                 redis_server: RedisServer) -> None:
    shared = {"database_url": f"sqlite:///{tmp_path / 'centre.db'}", "services": [],
              "bus_url": f"{redis_server.url}?prefix=wiring"}
    a = TestClient(web_app(Settings(var_dir=tmp_path / "a", **shared)))
    b = TestClient(web_app(Settings(var_dir=tmp_path / "b", **shared)))
    with a, b:
        use(a)  # one database: a session opened on node A is good on node B
        bridge = RedisBus(redis_server.url, prefix="wiring", timeout=2.0)  # the CTI node, another process
        a.portal.call(bridge.start)
        try:
            with a.websocket_connect("/ws", headers=dict(LEAD)) as on_a, \
                    b.websocket_connect("/ws", headers=dict(LEAD)) as on_b:
                hello = on_a.receive_json()
                assert hello["type"] == "hello" and on_b.receive_json()["epoch"] == hello["epoch"]
                sent = [a.portal.call(bridge.publish, pop(n)) for n in range(3)]
                for ws in (on_a, on_b):  # every web node, the same seqs
                    got = [ws.receive_json() for _ in range(3)]
                    assert [m["seq"] for m in got] == [e.seq for e in sent]
                    assert got[0]["caller_name"] == "张三" and got[0]["variables"]["HL_LOCATION"] == "山东省菏泽市"
            # node A's browser was cut after the first pop; it reconnects to node B and catches up
            more = [a.portal.call(bridge.publish, LinkStatus(at=9.0, up=False, detail="AMI 断开"))]
            since = sent[0].seq
            with b.websocket_connect(f"/ws?since={since}&epoch={hello['epoch']}", headers=dict(LEAD)) as moved:
                assert moved.receive_json()["type"] == "hello"
                assert [moved.receive_json()["seq"] for _ in range(3)] == [sent[1].seq, sent[2].seq, more[0].seq]
            # web nodes publish too (a ticket changed on node B reaches node A's consoles)
            assert b.app.state.bus.epoch == a.app.state.bus.epoch
        finally:
            a.portal.call(bridge.close)


async def test_a_web_node_publishes_while_redis_is_away_and_sends_when_back(tmp_path: Path,
                                                                            own_redis: RedisServer) -> None:
    server = own_redis
    bus = bus_of(Settings(var_dir=tmp_path, bus_url=server.url, bus_timeout_s=0.5))
    await bus.start()
    follower = RedisBus(server.url, timeout=0.5)
    await follower.start()
    sub = follower.subscribe()
    server.pause()  # Redis stops answering: the route that publishes must not fail or wait
    bus.publish_nowait(LinkStatus(at=1.0, up=True, detail="kept"))
    await asyncio.sleep(0.8)
    server.resume()
    got = await asyncio.wait_for(anext(sub), 15)
    assert got.event == LinkStatus(at=1.0, up=True, detail="kept")
    await follower.close()
    await bus.close()


class Switch(FakeAmi):
    """The fake AMI, answering a QueueAdd or QueuePause with the member event Asterisk 22 sends after it."""

    def _answer(self, a: dict) -> bytes:
        out = super()._answer(a)
        seat = a.get("MemberName") or a.get("Interface", "").rpartition("/")[2]
        member = {"Queue": a.get("Queue", "hotline"), "MemberName": seat, "Interface": a.get("Interface", ""),
                  "StateInterface": a.get("Interface", ""), "Membership": "dynamic", "Status": "1"}
        if a.get("Action") == "QueueAdd":
            out += self.frame(Event="QueueMemberAdded", Privilege="agent,all", Paused="0", PausedReason="", **member)
        elif a.get("Action") == "QueuePause":
            paused = "1" if a.get("Paused") == "true" else "0"
            out = self.frame(Response="Success", ActionID=a.get("ActionID", ""), Message="Interface paused")
            out += self.frame(Event="QueueMemberPause", Privilege="agent,all", Paused=paused,
                              PausedReason=a.get("Reason", ""), **member)
        return out


@pytest.fixture
def switch() -> Iterator[tuple[Switch, Callable[[bytes], None]]]:
    """The fake Asterisk on a loop of its own (the web nodes' loops are their TestClients')."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    fake = asyncio.run_coroutine_threadsafe(Switch().start(), loop).result(5)

    def push(data: bytes) -> None:
        asyncio.run_coroutine_threadsafe(fake.push(data), loop).result(5)

    yield fake, push
    asyncio.run_coroutine_threadsafe(fake.stop(), loop).result(5)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)


def until(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if got := check():
            return got
        time.sleep(0.02)
    raise AssertionError("not in time")


def test_a_web_node_without_the_bridge_signs_an_operator_in_and_pops_their_calls(
        tmp_path: Path, redis_server: RedisServer, switch: tuple[Switch, Callable[[bytes], None]]) -> None:
    fake, push = switch
    shared = {"database_url": f"sqlite:///{tmp_path / 'centre.db'}", "bus_url": f"{redis_server.url}?prefix=split",
              "ami_port": fake.port, "ami_secret": "pw", "seats": ["8001", "8002"],
              # no shift windows: 示忙 here must not need a lead's approval because the run happens to
              # fall in a shift's last 30 min (it failed at 23:34 Beijing time)
              "cti_shifts": []}
    bridge_node = TestClient(web_app(Settings(var_dir=tmp_path / "a", services=["cti"], **shared)))
    web_only = TestClient(web_app(Settings(var_dir=tmp_path / "b", services=[], **shared)))
    op = Bearer("op1024", Role.OPERATOR, job_number="1024")
    with bridge_node, web_only:
        use(web_only)
        until(lambda: web_only.app.state.cti.health()["logged_in"])  # node A's bridge reports in
        assert list(web_only.app.state.cti.health()["servers"]) == [f"127.0.0.1:{fake.port}"]
        queues = web_only.get("/api/queues", headers=dict(LEAD)).json()
        assert {q["queue"] for q in queues} == {"hotline", "hotline_expert"}

        signed = web_only.post("/api/seat/signin", json={"seat": "8001"}, headers=dict(op))
        assert signed.status_code == 200, signed.text
        [added] = [a for a in fake.actions if a.get("Action") == "QueueAdd"]  # sent by node A's bridge
        assert added["MemberName"] == "8001"
        mine = web_only.get("/api/seat", headers=dict(op)).json()["seat"]  # at once, not a poll later
        assert mine["seat"] == "8001" and mine["operator"] == "op1024" and mine["state"] == "ready"
        assert web_only.app.state.seat_of("op1024") == "8001"

        with web_only.websocket_connect("/ws", headers=dict(op)) as ws:
            assert ws.receive_json()["type"] == "hello"
            s = Script(t0=time.time())
            s.join(0.0, "1795.1", name="赵六")
            s.called(0.1, "1795.1", "8001", "1795.2")
            push(s.wire(greeting=False))
            pop = ws.receive_json()
            while pop["type"] != "screen_pop":
                pop = ws.receive_json()
            assert pop["seat"] == "8001" and pop["call_id"] == "1795.1" and pop["caller_name"] == "赵六"

        busy = web_only.post("/api/seat/busy", json={"reason": "就餐"}, headers=dict(op))
        assert busy.status_code == 200, busy.text
        assert [a["Reason"] for a in fake.actions if a.get("Action") == "QueuePause"] == ["就餐"]
        assert web_only.get("/api/seat", headers=dict(op)).json()["seat"]["state"] == "ringing"  # the call rings on
        assert web_only.post("/api/seat/transfer", json={"target": "expert"}, headers=dict(op)).status_code == 409


def test_two_web_nodes_raise_each_alert_once_and_either_takes_an_acknowledgement(
        tmp_path: Path, redis_server: RedisServer) -> None:
    shared = {"database_url": f"sqlite:///{tmp_path / 'centre.db'}", "services": [],
              "bus_url": f"{redis_server.url}?prefix=duties", "cti_lease_check_s": 0.2, "cti_lease_timeout_s": 0.5}
    a = TestClient(web_app(Settings(var_dir=tmp_path / "a", **shared)))
    b = TestClient(web_app(Settings(var_dir=tmp_path / "b", **shared)))
    a.__enter__()
    a_up = True
    try:
        with b:
            use(a)
            assert [n for n in (a, b) if n.app.state.lead.on_duty] == [a]  # the first up holds the lease
            bridge = RedisBus(redis_server.url, prefix="duties", timeout=2.0)
            b.portal.call(bridge.start)
            try:
                def breach(call: str) -> None:
                    b.portal.call(bridge.publish, AnswerRuleBreached(
                        at=time.time(), call_id=call, queue="hotline", caller_num="13953012345", waited_ms=16000,
                        rule_s=15, seats_rung=()))

                breach("1795.7")
                listed = [until(lambda n=n: n.get("/api/lead/alerts", headers=dict(LEAD)).json()) for n in (a, b)]
                assert listed[0] == listed[1] and len(listed[0]) == 1  # raised once, listed by both nodes
                alert = listed[0][0]
                acked = b.post(f"/api/lead/alerts/{alert['id']}/ack", headers=dict(LEAD))  # on the node off duty
                assert acked.status_code == 200 and acked.json()["acked_by"] == "lead"
                log = until(lambda: a.get("/api/lead/alerts/log", headers=dict(LEAD)).json())
                assert [(r["title"], r["acked_by"]) for r in log] == [(alert["title"], "lead")]  # logged once
                until(lambda: a.get("/api/lead/alerts", headers=dict(LEAD)).json()[0]["acked_at"])

                a.__exit__(None, None, None)  # the node on duty stops: B takes over, with the alerts it kept
                a_up = False
                until(lambda: b.app.state.lead.on_duty)
                breach("1795.8")
                after = until(lambda: len(b.get("/api/lead/alerts", headers=dict(LEAD)).json()) == 2 and
                              b.get("/api/lead/alerts", headers=dict(LEAD)).json())
                assert [x["id"] for x in after] == [alert["id"] + 1, alert["id"]]  # the new one above the kept
            finally:
                b.portal.call(bridge.close)
    finally:
        if a_up:
            a.__exit__(None, None, None)
