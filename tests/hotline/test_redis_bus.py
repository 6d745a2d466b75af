"""The bus over Redis (issue #15), on a real redis-server: seqs contiguous across publishers in
several processes, typed events back on the other side, replay and its gaps, Redis restarted,
flushed, or stuck, and consumers that fall behind."""

from __future__ import annotations

import ast
import asyncio
import json
import logging
import sys
import textwrap
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import ClassVar

import pytest
import redis.asyncio as aioredis
import redis.exceptions

import hotline.bus
import hotline.redis_bus
from agent_ui.alerts import Alert
from agent_ui.approvals import ApprovalChanged
from agent_ui.hub import Hub
from agent_ui.lead.runtime import LeadAlert, LeadAlertAck
from cti import domain as d
from hotline import listening as ls
from hotline.bus import BusLagged, DomainEvent, Envelope, InProcessBus, Subscription
from hotline.calls import FinishedCall
from hotline.codec import encode, from_message
from hotline.redis_bus import BusUnavailable, RedisBus, UnknownEvent, bus_from_url, events_key
from hotline.redis_publish import EARLY, PUBLISH
from testkit import ROOT, free_port
from testkit.redis import RedisServer
from ticketing.schemas import SubmissionChanged, TicketChanged, TicketReminder

T = 1733380000.5  # 2024-12-05 14:26:40 +08:00
CID = "1733380000.42"
CALL = FinishedCall(call_id=CID, caller_num="13953012345", offered_at=T, ended_at=T + 190.25, caller_name="张三",
                    queue="hotline", seats_rung=("8001", "8002"), seat="8002", operator="op1025", job_number="1025",
                    answered_at=T + 12.25, wait_ms=12250, within_rule=True, talk_s=177.5, hold_s=20.0,
                    recordings=("hl-1733380000.42.wav",), recording_base="2024/12/05/hl-1733380000.42",
                    location="山东省菏泽市", survey=2)
LOST = FinishedCall(call_id="1733380100.7", caller_num="053012345678", offered_at=T, ended_at=T + 41.0,
                    seats_rung=("8001",), wait_ms=41000, abandoned=True, lost=True, reconstructed=True)
ALERT = Alert(id=3, kind="answer_rule", key=f"answer_rule:{CID}", at=T, title="来电超过15秒未接", detail="等待 15 秒",
              queue="hotline", call_id=CID, ticket_id=None).view()

# every DomainEvent in the product, with the values it carries in production
SAMPLES: list[DomainEvent] = [
    d.CallOffered(at=T, call_id=CID, queue="hotline", caller_num="13953012345", caller_name="张三"),
    d.CallOffered(at=T, call_id=CID, queue="specialist", caller_num="13953012345", caller_name="", resynced=True),
    d.SeatRinging(at=T + 1, call_id=CID, seat="8001", queue="hotline", caller_num="13953012345", caller_name="张三",
                  waited_ms=3200, variables={"HL_LOCATION": "山东省菏泽市", "HL_REPEAT": "1"}, operator="op1024"),
    d.SeatRingNoAnswer(at=T + 16, call_id=CID, seat="8001", ring_ms=15000),
    d.CallAnswered(at=T + 12.25, call_id=CID, seat="8002", queue="hotline", wait_ms=12250, within_rule=True),
    d.AnswerRuleBreached(at=T + 15, call_id=CID, queue="hotline", caller_num="13953012345", waited_ms=15000,
                         rule_s=15, seats_rung=("8001", "8002"), ringing_seat="8002"),
    d.CallAbandoned(at=T + 41, call_id=CID, queue="hotline", caller_num="053012345678", wait_ms=41000,
                    seats_rung=("8001",)),
    d.CallTransferred(at=T + 60, call_id=CID, seat="8002", target="2001@from-internal", kind="blind"),
    d.CallConferenced(at=T + 70, call_id=CID, conference=f"conf-{CID}", channel="PJSIP/2001-00000011", parties=3,
                      seat="8001"),
    d.CallHeld(at=T + 80, call_id=CID, seat="8002", held=True, hold_s=20.0),
    d.CallCompleted(at=T + 190.25, call_id=CID, call=CALL),
    d.CallCompleted(at=T + 41, call_id=LOST.call_id, call=LOST),
    d.CallbackRequested(at=T + 5, call_id=CID, caller_num="053012345678"),
    d.SeatStateChanged(at=T, seat="8001", state="busy", previous="ready", reason="就餐", operator="op1024"),
    d.SeatStateChanged(at=T, seat="8002", state="wrap_up", previous="on_call", call_id=CID, wrapup_until=T + 30,
                       operator="op1025"),
    d.SeatPhoneChanged(at=T, seat="8009", reachable=False, operator="op1024", signed_in=True),
    d.HandoverMeasured(at=T, from_seat="8001", to_seat="8003", gap_s=12.5, ok=True),
    d.LinkStatus(at=T, up=False, detail="AMI 连接中断"),
    d.RosterChanged(at=T, server="ast1:5038", roster={"op1024": "8001", "张丽": "8002"}),
    TicketChanged(at=T, ticket_id=1024, number="HZ20241205000123", action="transfer", status="待签收",
                  department_ids=(3, 7), by="op1024"),
    SubmissionChanged(at=T, submission_id=77, channel="wechat", status="pending"),
    TicketReminder(at=T, ticket_id=1024, number="HZ20241205000123", state="red", due="2024-12-09T18:00:00+08:00",
                   department_id=3),
    TicketReminder(at=T, ticket_id=1025, number="HZ20241205000124", state="yellow", due="2024-12-10T18:00:00+08:00"),
    LeadAlert(at=T, alert=ALERT),
    LeadAlertAck(at=T, alert_id=12, by="lead"),
    ApprovalChanged(at=T, approval_id=12, seat="8001", kind="busy", reason="就餐", state="approved",
                    requested_by="op1024", decided_by="lead", note="同意"),
    # the live transcript (hotline.listening)
    ls.ListenerStatus(at=T, node="listen@10.0.0.7:9293", address="10.0.0.7:9293", capacity=8, active=2,
                      overloaded=False, engine="vosk:vosk-model-cn-0.22"),
    ls.LegsAssigned(at=T, call_id=CID, seat="8002", operator="1025", node="listen@10.0.0.7:9293",
                    legs={"2f0c5a8e-4a1c-4c55-9c1e-0a7b9d3e5f10": "citizen",
                          "8d6e1f2a-3b4c-4d5e-8f90-1a2b3c4d5e6f": "operator"}),
    ls.TranscriptLine(at=T, call_id=CID, seat="8002", speaker="citizen", line=3, text="我家楼下工地晚上施工",
                      final=True, start_s=12.48, end_s=15.1),
    ls.LiveState(at=T, call_id=CID, seat="8002", state="degraded", speaker="citizen", detail="识别跟不上"),
    ls.AssistOffered(at=T, call_id=CID, seat="8002",
                     articles=[{"id": 7, "title": "夜间施工噪音投诉", "topic": "城市管理", "hits": ["施工", "噪音"]}],
                     proposals=[{"field": "lead_department_id", "value": "3", "label": "承办单位",
                                 "source": "我家楼下工地晚上施工", "display": "菏泽市城市管理局"}]),
    ls.LiveFlagRaised(at=T, call_id=CID, seat="8002", operator="1025", flag="emergency", phrase="着火",
                      speaker="citizen", text="楼道里着火了"),
    d.OutboundAnswered(at=T + 40, call_id="1795344900.900001", seat="8001", number="13953012345",
                       operator="op1024", job_number="1024",
                       recording_base="callback-20261123-101500-1795344900.900001"),
    d.OutboundEnded(at=T + 70, call_id="1795344900.900001", seat="8001", number="13953012345", talk_s=30.0,
                    job_number="1024", recording_base="callback-20261123-101500-1795344900.900001"),
]


@dataclass(frozen=True, slots=True, kw_only=True)
class FutureEvent(DomainEvent):
    """An event a newer node publishes and this one has not heard of."""

    type: ClassVar[str] = "future_thing"
    level: int
    tags: tuple[str, ...] = ()


def _ev(i: int) -> d.SeatStateChanged:
    return d.SeatStateChanged(at=float(i), seat=f"80{i % 10:02d}", state="ready", previous="busy", reason=f"#{i}")


class Buses:
    """RedisBus instances on one server and one prefix (each its own connections, as each
    process has), all closed at the end of the test."""

    def __init__(self, server: RedisServer) -> None:
        self.server = server
        self.prefix = f"t{uuid.uuid4().hex[:8]}"
        self.made: list[RedisBus] = []

    async def __call__(self, **kw) -> RedisBus:
        bus = RedisBus(self.server.url, **{"prefix": self.prefix, "timeout": 1.0, "block_ms": 200, **kw})
        await bus.start()
        self.made.append(bus)
        return bus

    def raw(self) -> aioredis.Redis:
        return aioredis.Redis.from_url(self.server.url)

    async def close(self) -> None:
        for bus in self.made:
            async with asyncio.timeout(15):  # close() must end, whatever the test did to Redis
                await bus.close()


@pytest.fixture(scope="module")
def server(redis_server: RedisServer) -> RedisServer:
    return redis_server


@pytest.fixture
def own_server(own_redis: RedisServer) -> RedisServer:
    """A server of the test's own, to stop, pause or flush."""
    return own_redis


@pytest.fixture
async def own(own_server: RedisServer) -> AsyncIterator[Buses]:
    made = Buses(own_server)
    yield made
    await made.close()


def record(bus: RedisBus) -> tuple[list[Envelope], asyncio.Task[None]]:
    """Everything ``bus`` delivers, through resyncs (what a listener heard when listeners heard
    other processes' events too); cancel the task at the end."""
    heard: list[Envelope] = []

    async def run() -> None:
        sub = bus.subscribe(maxsize=100_000)
        while True:
            try:
                async for env in sub:
                    heard.append(env)
            except BusLagged:
                continue

    return heard, asyncio.create_task(run())


async def take(sub: Subscription, n: int, timeout: float = 10.0) -> list[Envelope]:
    return [await asyncio.wait_for(sub.__anext__(), timeout) for _ in range(n)]


async def until(cond: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        await asyncio.sleep(0.01)


def _contiguous(envs: list[Envelope]) -> bool:
    return [e.seq for e in envs] == list(range(envs[0].seq, envs[0].seq + len(envs)))


# ---------------------------------------------------------------------------------- wire format


def test_every_domain_event_in_the_product_has_a_sample() -> None:
    product = ("hotline", "cti", "agi", "ticketing", "accounts", "recordings", "agent_ui", "notify", "launch")
    found = set()
    for package in product:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ClassDef) and any(getattr(b, "id", "") == "DomainEvent" for b in node.bases):
                    found.add(node.name)
    assert found - {"UnknownEvent"} == {type(e).__name__ for e in SAMPLES}


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: type(e).__name__)
def test_every_event_comes_back_from_json_as_it_left(event: DomainEvent) -> None:
    back = from_message(type(event), json.loads(encode(event)))
    assert back == event and type(back) is type(event)
    for name in ("seats_rung", "department_ids"):
        if hasattr(event, name):
            assert isinstance(getattr(back, name), tuple)
    env = RedisBus()._envelope(7, encode(event).encode())
    assert env is not None and env.event == event
    assert env.text() == InProcessBus().publish_nowait(event).text().replace('"seq":1,', '"seq":7,')


def test_the_finished_call_inside_comes_back_typed() -> None:
    back = from_message(d.CallCompleted, json.loads(encode(SAMPLES[10])))
    assert isinstance(back.call, FinishedCall) and back.call == CALL and back.call.answered
    assert back.call.seats_rung == ("8001", "8002") and back.call.survey == 2


def test_bus_from_url() -> None:
    assert isinstance(bus_from_url(""), InProcessBus) and isinstance(bus_from_url("memory://"), InProcessBus)
    assert bus_from_url("memory://?capacity=5")._ring.maxlen == 5  # type: ignore[attr-defined]
    b = bus_from_url("redis://10.0.0.5:6380/2?prefix=heze&capacity=500", timeout=1.5)
    assert isinstance(b, RedisBus)
    assert (b.url, b.prefix, b.capacity, b.timeout) == ("redis://10.0.0.5:6380/2", "heze", 500, 1.5)
    assert bus_from_url("unix:///run/redis.sock?db=1").url == "unix:///run/redis.sock?db=1"  # type: ignore[attr-defined]
    with pytest.raises(ValueError):
        bus_from_url("kafka://somewhere")


async def test_start_says_so_when_redis_is_not_there() -> None:
    t0 = time.monotonic()
    with pytest.raises(BusUnavailable):
        await RedisBus(f"redis://127.0.0.1:{free_port()}/0", timeout=0.5).start()
    assert time.monotonic() - t0 < 3


# ------------------------------------------------------------------------------------- one bus


async def test_another_node_gets_every_event_typed_and_in_order(buses: Buses) -> None:
    a, b = await buses(), await buses()
    sub = b.subscribe()
    sent = [await a.publish(e) for e in SAMPLES]
    got = await take(sub, len(SAMPLES))
    assert [e.seq for e in got] == [e.seq for e in sent] and _contiguous(got)
    assert [e.event for e in got] == SAMPLES and [type(e.event) for e in got] == [type(e) for e in SAMPLES]
    assert [e.text() for e in got] == [Envelope(e.seq, e.event).text() for e in sent]  # websockets: as in process
    assert b.last_seq == a.last_seq == got[-1].seq and a.epoch == b.epoch


async def test_two_publishers_get_contiguous_seqs_in_stream_order(buses: Buses) -> None:
    a, b, c = await buses(), await buses(), await buses()
    sub = c.subscribe(maxsize=5000)

    async def run(bus: RedisBus, name: str, n: int) -> None:
        for i in range(n):
            event = d.LinkStatus(at=float(i), up=True, detail=f"{name}{i}")
            if i % 3:
                bus.publish_nowait(event)
            else:
                await bus.publish(event)

    await asyncio.gather(run(a, "a", 400), run(b, "b", 400))
    got = await take(sub, 800)
    assert _contiguous(got)
    for name in "ab":  # each publisher's own order kept
        assert [e.event.detail for e in got if e.event.detail[0] == name] == [f"{name}{i}" for i in range(400)]


async def test_a_publisher_in_another_process(buses: Buses) -> None:
    script = textwrap.dedent("""
        import asyncio, sys
        from cti.domain import LinkStatus
        from hotline.redis_bus import RedisBus

        async def main():
            bus = RedisBus(sys.argv[1], prefix=sys.argv[2])
            await bus.start()
            for i in range(300):
                bus.publish_nowait(LinkStatus(at=float(i), up=True, detail=f"p{i}"))
                if i % 50 == 0:
                    await asyncio.sleep(0.01)
            await bus.close()

        asyncio.run(main())
    """)
    here = await buses()
    sub = here.subscribe(maxsize=5000)
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", script, buses.server.url, buses.prefix,
                                                cwd=str(ROOT))
    for i in range(300):
        await here.publish(d.LinkStatus(at=float(i), up=False, detail=f"h{i}"))
    assert await asyncio.wait_for(proc.wait(), 60) == 0
    got = await take(sub, 600)
    assert _contiguous(got)
    for name in "ph":
        assert [e.event.detail for e in got if e.event.detail[0] == name] == [f"{name}{i}" for i in range(300)]


async def test_publish_nowait_keeps_order_across_many_events(buses: Buses) -> None:
    a, b = await buses(batch=100), await buses()
    sub = b.subscribe(maxsize=5000)
    events = [_ev(i) for i in range(3000)]
    for e in events:
        assert a.publish_nowait(e) is None
    got = await take(sub, 3000)
    assert [e.event for e in got] == events and _contiguous(got)
    await until(lambda: a.last_seq == got[-1].seq, what="the publisher hears its own events too")


async def test_what_one_turn_of_the_loop_publishes_goes_as_one_batch(buses: Buses) -> None:
    """A burst's read of AMI makes many frames' events in one turn: one EVALSHA for them all, not one
    each (the node's receipts count its batches); what comes in a later turn is a batch of its own.
    (Past ``EARLY`` events a batch goes before the turn ends: tests/hotline/test_redis_bursts.py.)"""
    a, b = await buses(batch=100), await buses()
    sub = b.subscribe(maxsize=500)
    await until(lambda: a._out._wire is not None, what="the writer connected")  # else one batch of all
    n = EARLY - 2
    for i in range(n):
        a.publish_nowait(_ev(i))
    await asyncio.sleep(0)  # the turn ends
    a.publish_nowait(_ev(n))
    got = await take(sub, n + 1)
    assert [e.event for e in got] == [_ev(i) for i in range(n + 1)] and _contiguous(got)
    raw = buses.raw()
    try:
        assert int(await raw.hget(a._keys[3], "last")) == 2  # one batch of n, one of 1
        assert int(await raw.hget(a._keys[3], "2")) == got[n].seq
    finally:
        await raw.aclose()


async def test_filters_on_another_node_and_listeners_on_the_publishing_one(
        own: Buses, caplog: pytest.LogCaptureFixture) -> None:
    a, b = await own(timeout=0.5), await own(timeout=0.5)

    def only_down(env: Envelope) -> bool:
        if env.event.detail == "boom":
            raise KeyError("detail")
        return not env.event.up

    def bad(env: Envelope) -> None:
        raise RuntimeError("listener boom")

    sub, everyone = b.subscribe(accept=only_down), b.subscribe()
    mine: list[str] = []
    a.add_listener(bad)
    remove = a.add_listener(lambda env: mine.append(env.event.detail))
    b.add_listener(lambda env: pytest.fail("a listener hears its own process's events only"))
    for up, detail in ((True, ""), (False, "a"), (False, "boom"), (True, ""), (False, "b")):
        a.publish_nowait(d.LinkStatus(at=T, up=up, detail=detail))
    assert mine == ["", "a", "boom", "", "b"]  # at once, before Redis has them
    await take(everyone, 5)
    assert sub._q.qsize() == 2 and [e.event.detail for e in await take(sub, 2)] == ["a", "b"]
    assert "listener boom" in caplog.text and "subscription filter failed on seq" in caplog.text
    remove()
    own.server.kill()  # the bridge's listeners (the call log) do not wait for Redis
    a.add_listener(lambda env: mine.append(env.event.detail))
    a.publish_nowait(d.LinkStatus(at=T, up=False, detail="redis away"))
    assert mine[-1] == "redis away" and len(mine) == 6
    own.server.start()


async def test_a_slow_subscriber_is_told_it_lagged_then_replays(buses: Buses) -> None:
    a, b = await buses(), await buses()
    sub = b.subscribe(maxsize=3)
    env0 = await a.publish(_ev(0))
    first = (await take(sub, 1))[0]
    assert first.seq == env0.seq
    for i in range(1, 11):  # the consumer sleeps; the reader must not wait for it
        await a.publish(_ev(i))
    await until(lambda: b.last_seq == env0.seq + 10)
    with pytest.raises(BusLagged) as lag:
        await sub.__anext__()
    assert lag.value.last_seq == env0.seq
    r = await b.replay(lag.value.last_seq, b.epoch)
    assert not r.gap and [e.event for e in r.envelopes] == [_ev(i) for i in range(1, 11)]
    env = await a.publish(_ev(99))  # and the subscription goes on
    assert (await take(sub, 1))[0].seq == env.seq


async def test_an_event_unknown_here_reaches_websockets_and_subscribers_get_a_placeholder(
        buses: Buses, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = await buses(), await buses()
    sub = b.subscribe()
    monkeypatch.delitem(hotline.bus._EVENTS, "FutureEvent")  # this process never imported it
    for level in (1, 2):
        await a.publish(FutureEvent(at=T, level=level, tags=("x",)))
    await a.publish(d.LinkStatus(at=T, up=True))
    got = await take(sub, 3)
    assert isinstance(got[0].event, UnknownEvent) and got[0].event.name == "FutureEvent"
    assert got[0].message() == {"type": "future_thing", "seq": got[0].seq, "event": "FutureEvent", "at": T,
                                "level": 1, "tags": ["x"]}
    assert isinstance(got[1].event, UnknownEvent) and got[2].event == d.LinkStatus(at=T, up=True)
    # said once, by the node that follows the stream: the publisher has no subscription to decode it for
    assert caplog.text.count("is not known here") == 1


# ---------------------------------------------------------------------------------------- replay


async def test_replay_since_and_its_gaps(buses: Buses) -> None:
    a = await buses(capacity=20)
    for i in range(300):
        a.publish_nowait(_ev(i))
    await until(lambda: a.last_seq == 300)
    raw = buses.raw()
    length = await raw.xlen(events_key(buses.prefix))
    oldest = int((await raw.xrange(events_key(buses.prefix), count=1))[0][0].split(b"-")[0])
    await raw.aclose()
    assert 20 <= length < 300 and oldest == 300 - length + 1  # trimmed, roughly (MAXLEN ~)
    r = await a.replay(290, a.epoch)
    assert not r.gap and [e.seq for e in r.envelopes] == list(range(291, 301)) and r.last_seq == 300
    assert [e.event for e in r.envelopes] == [_ev(i) for i in range(290, 300)]
    assert (await a.replay(300, a.epoch)).envelopes == []
    r = await a.replay(oldest - 1, a.epoch)  # exactly on the edge
    assert not r.gap and r.envelopes[0].seq == oldest
    r = await a.replay(oldest - 2, a.epoch)  # one is gone
    assert r.gap and r.last_seq == 300 and [e.seq for e in r.envelopes] == list(range(oldest, 301))
    assert (await a.replay(301, a.epoch)).gap  # from the future: another bus
    assert (await a.replay(290, "another-epoch")).gap
    assert not (await a.replay(290)).gap  # no epoch given: not checked, as in process


async def test_a_batch_sent_twice_is_published_once(buses: Buses) -> None:
    a = await buses()
    raw = buses.raw()
    publish = raw.register_script(PUBLISH)

    def batch(no: int, *events: DomainEvent) -> list[object]:
        return [uuid.uuid4().hex[:12], 0, a.capacity, no, *(encode(e) for e in events)]

    first = await publish(keys=a._keys, args=batch(1, _ev(1), _ev(2)))
    assert await publish(keys=a._keys, args=batch(1, _ev(1), _ev(2))) == first  # its answer was lost: sent again
    with pytest.raises(redis.exceptions.ResponseError, match="GAP batch 3 after 1"):  # 2 first, or never
        await publish(keys=a._keys, args=batch(3, _ev(4)))
    second = await publish(keys=a._keys, args=batch(2, _ev(3)))
    assert second[0] == first[0] + 2 and await publish(keys=a._keys, args=batch(3, _ev(4)))
    await raw.aclose()
    r = await a.replay(0, a.epoch)
    assert [e.event for e in r.envelopes] == [_ev(1), _ev(2), _ev(3), _ev(4)]


async def test_close_sends_what_waits(buses: Buses) -> None:
    a = await buses()
    for i in range(50):
        a.publish_nowait(_ev(i))
    await a.close()
    b = await buses()
    assert [e.event for e in (await b.replay(0, b.epoch)).envelopes] == [_ev(i) for i in range(50)]


# ------------------------------------------------------------------------- Redis lost, stuck


async def test_a_lost_seq_counter_starts_a_new_epoch_above_the_floor(buses: Buses) -> None:
    a, b = await buses(), await buses()
    sub = b.subscribe()
    for i in range(3):
        await a.publish(_ev(i))
    await take(sub, 3)
    old, last = b.epoch, b.last_seq
    raw = buses.raw()
    await raw.delete(f"{buses.prefix}:seq")
    await raw.aclose()
    env = await a.publish(_ev(3))
    assert env.seq == last + 1  # not 1: a websocket that missed the change does not drop it as old news
    with pytest.raises(BusLagged):  # but everyone is told to reload
        await take(sub, 1)
    assert b.epoch != old and (await b.replay(last, old)).gap
    r = await b.replay(last, b.epoch)
    assert not r.gap and [e.event for e in r.envelopes] == [_ev(3)]


async def test_flushall_makes_a_new_epoch_that_every_node_notices(own: Buses) -> None:
    a, b = await own(), await own()
    sub = b.subscribe()
    for i in range(5):
        await a.publish(_ev(i))
    await take(sub, 5)
    old = b.epoch
    raw = own.raw()
    await raw.flushall()
    await raw.aclose()
    await until(lambda: a.epoch != old and b.epoch != old, what="both nodes notice, though nobody publishes")
    assert a.epoch == b.epoch
    with pytest.raises(BusLagged):
        await take(sub, 1)
    r = await b.replay(5, old)
    assert r.gap and r.epoch == b.epoch
    env = await a.publish(_ev(9))
    assert env.seq == 6
    assert (await take(sub, 1))[0].event == _ev(9)


async def test_redis_restarted_mid_stream(own: Buses, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=hotline.redis_bus.__name__)
    a, b = await own(timeout=0.5), await own(timeout=0.5)
    heard, recorder = record(b)
    sub = b.subscribe()
    for i in range(10):
        a.publish_nowait(_ev(i))
    await take(sub, 10)
    old_epoch, old_last = b.epoch, b.last_seq
    own.server.kill()  # a crash: nothing saved
    for i in range(10, 60):
        a.publish_nowait(_ev(i))  # kept while Redis is away
    await asyncio.sleep(0.3)  # the writer has them in hand
    with pytest.raises(BusUnavailable):
        await a.publish(d.LinkStatus(at=T, up=True, detail="withdrawn"))
    await until(lambda: "bus writer: Redis unreachable" in caplog.text
                and "bus reader: Redis unreachable" in caplog.text)
    assert "50 events waiting" in caplog.text
    own.server.start()  # same port, no data
    await until(lambda: len(heard) >= 60, timeout=20, what="the kept events")
    assert [e.event for e in heard[10:]] == [_ev(i) for i in range(10, 60)] and _contiguous(heard[10:])
    assert heard[10].seq > old_last and len(heard) == 60  # the withdrawn one was not sent later
    await until(lambda: a.epoch == b.epoch != old_epoch, what="both nodes on the new epoch")
    with pytest.raises(BusLagged):  # websockets resync (ws.py: resync, the browser reloads)
        await take(sub, 1)
    assert (await b.replay(old_last, old_epoch)).gap
    env = await a.publish(_ev(100))  # and follow on
    assert (await take(sub, 1))[0].seq == env.seq
    assert "Redis back after" in caplog.text
    recorder.cancel()


async def test_a_redis_that_stops_answering_times_out_and_the_reader_reconnects(
        own: Buses, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=hotline.redis_bus.__name__)
    a, b = await own(timeout=0.5), await own(timeout=0.5)
    sub = b.subscribe()
    await a.publish(_ev(0))
    first = (await take(sub, 1))[0]
    epoch = b.epoch
    own.server.pause()
    try:
        for i in range(1, 21):
            a.publish_nowait(_ev(i))
        await asyncio.sleep(0.1)
        t0 = time.monotonic()
        with pytest.raises(BusUnavailable) as refused:
            await a.publish(_ev(999))
        assert time.monotonic() - t0 < 1.5
        # sent behind the 20, it lands after them; unless the writer had already given up on the stuck
        # connection (a slow machine: past its 0.5 s), and then it was withdrawn, never to land
        landed = [_ev(999)] if "it was on its way" in str(refused.value) else []
        await until(lambda: "bus reader: Redis unreachable or not answering" in caplog.text, timeout=5,
                    what="the reader's blocked read timed out instead of hanging")
        await asyncio.sleep(1.0)  # retries meanwhile, each timing out too
    finally:
        own.server.resume()
    got = await take(sub, 20 + len(landed), timeout=20)
    assert [e.event for e in got] == [*(_ev(i) for i in range(1, 21)), *landed]  # once each: no retry doubled
    assert got[0].seq == first.seq + 1 and _contiguous(got) and b.epoch == epoch  # the data was kept: no resync
    await until(lambda: "bus reader: Redis back after" in caplog.text)
    env = await a.publish(_ev(21))
    assert (await take(sub, 1))[0].seq == env.seq


# ------------------------------------------------------------------------------------ websockets


def test_websockets_on_a_web_node_follow_the_bus_a_bridge_elsewhere_publishes(server: RedisServer, tmp_path) -> None:
    from fastapi.testclient import TestClient

    from hotline.identity import Role
    from hotline.settings import Settings
    from launch.compose import web_app
    from testkit.auth import Bearer, use

    prefix = f"t{uuid.uuid4().hex[:8]}"
    events = [SAMPLES[2], SAMPLES[4], SAMPLES[16]]  # a pop, the answer, the AMI link down
    with use(TestClient(web_app(Settings(var_dir=tmp_path / "var", services=[])))) as client:
        lead = dict(Bearer("lead", Role.LEAD))
        web, bridge = (RedisBus(server.url, prefix=prefix, timeout=1.0, block_ms=200) for _ in range(2))
        client.portal.call(web.start)
        client.portal.call(bridge.start)
        client.app.state.bus = web
        client.portal.call(client.app.state.hub.stop)
        client.app.state.hub = Hub(web, lambda: {})  # the node's one reader, on the Redis bus
        try:
            with client.websocket_connect("/ws", headers=lead) as ws:
                assert ws.receive_json()["epoch"] == web.epoch
                sent = [client.portal.call(bridge.publish, e) for e in events]
                got = [ws.receive_json() for _ in events]
            assert got == [json.loads(Envelope(e.seq, e.event).text()) for e in sent]  # as in process
            with client.websocket_connect(f"/ws?since={sent[0].seq}&epoch={web.epoch}", headers=lead) as ws:
                assert ws.receive_json()["last_seq"] == sent[2].seq
                assert [ws.receive_json()["seq"] for _ in range(2)] == [sent[1].seq, sent[2].seq]
            with client.websocket_connect(f"/ws?since={sent[0].seq}&epoch=another", headers=lead) as ws:
                ws.receive_json()
                assert ws.receive_json() == {"type": "resync", "seq": sent[2].seq, "epoch": web.epoch}
        finally:
            client.portal.call(web.close)
            client.portal.call(bridge.close)


async def test_past_the_backlog_the_oldest_are_dropped_loudly(own: Buses, caplog: pytest.LogCaptureFixture) -> None:
    a, b = await own(timeout=0.5, backlog=5), await own(timeout=0.5)
    heard, recorder = record(b)
    await asyncio.sleep(0)
    own.server.kill()
    await until(lambda: a._out._wire is None, what="the writer saw its connection go")  # else all 12 are
    for i in range(12):  # on their way (sent at once, sent again after), not waiting
        a.publish_nowait(_ev(i))
    assert "DROPPED the oldest" in caplog.text
    await asyncio.sleep(0.3)
    own.server.start()
    await until(lambda: len(heard) >= 5, timeout=20)
    await asyncio.sleep(0.3)
    assert [e.event for e in heard] == [_ev(i) for i in range(7, 12)]  # the newest five
    recorder.cancel()
