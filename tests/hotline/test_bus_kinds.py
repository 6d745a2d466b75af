"""A consumer that follows some kinds of event says so (``kinds``), and a node's bus over Redis then
rebuilds from JSON only what some consumer of that node follows: the bridge follows six kinds of a
stream that carries about seven events a call, and rebuilt them all (a fifth of its busy loop in a
200-call burst, bench/screen_pop.py, fourteenth session)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import pytest

from cti import domain as d
from hotline.bus import DomainEvent, Envelope, InProcessBus, Subscription
from hotline.codec import encode
from hotline.redis_bus import RedisBus, _event_name
from tests.hotline.test_redis_bus import SAMPLES, Buses, T, _ev, take, until


@dataclass(frozen=True, slots=True, kw_only=True)
class Heard(DomainEvent):
    type: ClassVar[str] = "heard"
    n: int


@dataclass(frozen=True, slots=True, kw_only=True)
class HeardAgain(Heard):
    type: ClassVar[str] = "heard_again"


def test_a_subscription_with_kinds_gets_those_kinds_and_their_subclasses() -> None:
    bus = InProcessBus()
    heard = bus.subscribe(kinds=(Heard,))
    asked: list[int] = []

    def odd(env: Envelope) -> bool:
        asked.append(env.seq)
        return env.seq % 2 == 1

    some = bus.subscribe(kinds=(Heard, d.LinkStatus), accept=odd)
    for ev in (Heard(at=T, n=1), _ev(2), _ev(3), HeardAgain(at=T, n=4), d.LinkStatus(at=T, up=True),
               Heard(at=T, n=6)):
        bus.publish_nowait(ev)
    assert [type(e.event) for e in _drain(heard)] == [Heard, HeardAgain, Heard]
    assert asked == [1, 4, 5, 6]  # the kinds first: ``accept`` never sees a seat change
    assert [e.seq for e in _drain(some)] == [1, 5]


def test_what_a_node_follows_is_the_union_of_its_subscriptions_kinds() -> None:
    bus = InProcessBus()
    assert bus.followed() == ()  # nobody: nothing to rebuild
    a = bus.subscribe(kinds=(Heard, d.LinkStatus))
    b = bus.subscribe(kinds=(d.LinkStatus, d.CallAnswered))
    assert set(bus.followed() or ()) == {Heard, d.LinkStatus, d.CallAnswered}
    every = bus.subscribe()  # a websocket: every event
    assert bus.followed() is None
    every.close()
    assert set(bus.followed() or ()) == {Heard, d.LinkStatus, d.CallAnswered}
    a.close()
    b.close()
    assert bus.followed() == ()


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: type(e).__name__)
def test_every_events_name_is_read_from_its_messages_head(event: DomainEvent) -> None:
    assert _event_name(encode(event).encode()) == type(event).__name__.encode()


def test_a_message_of_another_shape_has_no_name_and_is_decoded_as_before() -> None:
    for raw in (None, b"", b"[1,2]", b'{"event":"LinkStatus","type":"x"}', b'{"type":"x","at":1}',
                b'{"type":"x","event":"'):
        assert _event_name(raw) is None
        assert RedisBus()._followed_here(raw, (d.LinkStatus,))  # decoded, then judged as before


async def test_a_node_rebuilds_only_the_kinds_its_consumers_follow(buses: Buses,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = await buses(), await buses()
    rebuilt: list[int] = []
    envelope = RedisBus._envelope

    def counted(self: RedisBus, seq: int, raw: bytes | None) -> Envelope | None:
        if self is b:
            rebuilt.append(seq)
        return envelope(self, seq, raw)

    monkeypatch.setattr(RedisBus, "_envelope", counted)
    spies = b.subscribe(kinds=(d.LinkStatus, Heard))
    sent = [await a.publish(ev) for ev in (_ev(0), d.LinkStatus(at=T, up=False), _ev(1), HeardAgain(at=T, n=1),
                                           _ev(2), _ev(3))]
    got = await take(spies, 2)
    assert [e.event for e in got] == [d.LinkStatus(at=T, up=False), HeardAgain(at=T, n=1)]
    await until(lambda: b._delivered == sent[-1].seq, what="the reader past the entries it did not rebuild")
    assert rebuilt == [sent[1].seq, sent[3].seq]  # the code before: all six
    # a websocket subscribes: from then on every entry is rebuilt, and the spies still get their kinds only
    every = b.subscribe()
    more = [await a.publish(ev) for ev in (_ev(4), d.LinkStatus(at=T, up=True))]
    assert [e.seq for e in await take(every, 2)] == [e.seq for e in more]
    assert [e.event for e in await take(spies, 1)] == [d.LinkStatus(at=T, up=True)]
    assert rebuilt[2:] == [e.seq for e in more]


async def test_a_kind_skipped_before_is_rebuilt_once_a_consumer_follows_it(buses: Buses) -> None:
    a, b = await buses(), await buses()
    links = b.subscribe(kinds=(d.LinkStatus,))
    skipped = await a.publish(_ev(0))  # judged once: nobody here follows seat changes
    await a.publish(d.LinkStatus(at=T, up=True))
    await take(links, 1)
    assert b._delivered == b._seen == skipped.seq + 1  # the reader went past the entry it did not rebuild
    seats = b.subscribe(kinds=(d.SeatStateChanged,))  # the judgement is made again
    sent = await a.publish(_ev(1))
    got = await take(seats, 1)
    assert got[0].seq == sent.seq and got[0].event == _ev(1)
    assert links._q.empty()


def _drain(sub: Subscription) -> list[Envelope]:
    out = []
    while not sub._q.empty():
        out.append(sub._q.get_nowait())
    return out
