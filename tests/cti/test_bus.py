"""The in-process bus: seq, replay from a bounded ring, lagging subscribers, listeners."""

from __future__ import annotations

import asyncio
import doctest

import pytest

import hotline.bus
from cti.domain import LinkStatus, SeatStateChanged
from hotline.bus import BusLagged, InProcessBus


def _ev(i: int) -> SeatStateChanged:
    return SeatStateChanged(at=float(i), seat="8001", state="ready", previous="busy")


def test_doctests() -> None:
    assert doctest.testmod(hotline.bus).failed == 0


async def test_seq_is_monotonic_and_messages_carry_it() -> None:
    bus = InProcessBus()
    envs = [await bus.publish(_ev(i)) for i in range(5)]
    assert [e.seq for e in envs] == [1, 2, 3, 4, 5] and bus.last_seq == 5
    msg = envs[2].message()
    assert msg["type"] == "seat_update" and msg["seq"] == 3 and msg["seat"] == "8001"


async def test_replay_since_and_too_far_behind() -> None:
    bus = InProcessBus(capacity=10)
    for i in range(25):
        await bus.publish(_ev(i))
    r = await bus.replay(20, bus.epoch)
    assert [e.seq for e in r.envelopes] == [21, 22, 23, 24, 25] and not r.gap
    assert (await bus.replay(25, bus.epoch)).envelopes == []
    r = await bus.replay(15, bus.epoch)  # 16 is the oldest kept: exactly on the edge
    assert not r.gap and r.envelopes[0].seq == 16
    r = await bus.replay(14, bus.epoch)  # 15 is gone
    assert r.gap and r.last_seq == 25
    r = await bus.replay(99, bus.epoch)  # from the future: a different bus
    assert r.gap
    r = await bus.replay(20, "another-epoch")  # the bus restarted
    assert r.gap


async def test_subscriber_receives_in_order() -> None:
    bus = InProcessBus()
    sub = bus.subscribe()
    for i in range(3):
        await bus.publish(_ev(i))
    got = [await asyncio.wait_for(sub.__anext__(), 1) for _ in range(3)]
    assert [e.seq for e in got] == [1, 2, 3]
    sub.close()
    await bus.publish(_ev(9))
    assert sub._q.empty()


async def test_slow_subscriber_is_told_it_lagged_then_replays() -> None:
    bus = InProcessBus(capacity=100)
    sub = bus.subscribe(maxsize=3)
    await bus.publish(_ev(0))
    assert (await sub.__anext__()).seq == 1
    for i in range(10):  # the consumer sleeps; the bridge must not block
        await bus.publish(_ev(i))
    with pytest.raises(BusLagged) as exc:
        await sub.__anext__()
    assert exc.value.last_seq == 1
    r = await bus.replay(exc.value.last_seq, bus.epoch)
    assert not r.gap and [e.seq for e in r.envelopes] == list(range(2, 12))
    await bus.publish(_ev(99))  # and the subscription goes on
    assert (await asyncio.wait_for(sub.__anext__(), 1)).seq == 12


async def test_listener_errors_do_not_stop_publishing(caplog: pytest.LogCaptureFixture) -> None:
    bus = InProcessBus()
    seen: list[int] = []

    def bad(env) -> None:
        raise RuntimeError("boom")

    bus.add_listener(bad)
    remove = bus.add_listener(lambda env: seen.append(env.seq))
    await bus.publish(LinkStatus(at=0.0, up=True))
    await bus.publish(LinkStatus(at=1.0, up=False))
    assert seen == [1, 2] and "boom" in caplog.text
    remove()
    await bus.publish(LinkStatus(at=2.0, up=True))
    assert seen == [1, 2]


async def test_a_filtered_subscription_queues_only_what_it_accepts_and_fails_closed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus = InProcessBus()

    def only_down(env) -> bool:
        if env.event.detail == "boom":
            raise KeyError("detail")
        return not env.event.up

    sub = bus.subscribe(accept=only_down)
    everyone = bus.subscribe()
    for up, detail in ((True, ""), (False, "a"), (False, "boom"), (True, ""), (False, "b")):
        await bus.publish(LinkStatus(at=0.0, up=up, detail=detail))
    assert sub._q.qsize() == 2 and everyone._q.qsize() == 5  # nothing else queued, nothing woken
    got = [(await sub.__anext__()).event.detail for _ in range(2)]
    assert got == ["a", "b"]  # "boom" raised in the filter: not delivered, and logged
    assert "subscription filter failed on seq 3" in caplog.text


def test_an_envelope_is_encoded_once_as_compact_json_keeping_chinese() -> None:
    env = InProcessBus().publish_nowait(LinkStatus(at=1.0, up=False, detail="链路中断"))
    assert env.text() is env.text()
    assert env.text() == '{"type":"link_status","seq":1,"event":"LinkStatus","at":1.0,"up":false,"detail":"链路中断"}'
