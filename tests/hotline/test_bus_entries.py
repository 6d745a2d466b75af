"""What a node makes of one stream entry (``RedisBus._envelope``): each web node reads every entry
of the centre's stream, about seven a call, so what it spares there it spares 1 400 times in a
200-call burst (bench/screen_pop.py): the websocket text is the publisher's, with the seq put in,
and the typed event is rebuilt only when something asks for it."""

from __future__ import annotations

import copy
import dataclasses
import json
import pickle

import pytest

from cti import domain as d
from hotline.bus import DomainEvent, Envelope
from hotline.codec import encode
from hotline.redis_bus import RedisBus, UnknownEvent
from tests.hotline.test_redis_bus import SAMPLES, Buses, take


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: type(e).__name__)
def test_an_entrys_websocket_text_is_the_one_a_node_in_process_sends(event: DomainEvent) -> None:
    env = RedisBus()._envelope(41, encode(event).encode())
    assert env is not None and env._text is not None  # taken from the entry, not encoded again
    assert env.text() == Envelope(41, event).text()
    assert json.loads(env.text()) == env.message()


def test_an_entry_of_another_shape_is_encoded_from_its_message() -> None:
    for raw in (b'{"event":"LinkStatus","type":"link_status","at":1,"up":true}',  # type not first
                b'{"type" : "link_status","event":"LinkStatus","at":1,"up":true}'):  # other spacing
        env = RedisBus()._envelope(7, raw)
        assert env is not None and env._text is None
        assert json.loads(env.text()) == {"type": "link_status", "seq": 7, "event": "LinkStatus", "at": 1, "up": True}
    # JSON's parser lets a lone surrogate through (our publisher never writes one): encoded from its message
    lone = b'{"type":"link_status","event":"LinkStatus","at":1,"up":true,"detail":"\xed\xa0\x80"}'
    env = RedisBus()._envelope(8, lone)
    assert env is not None and env._text is None and env.message()["detail"] == "\ud800"
    assert env.text() == json.dumps(env.message(), ensure_ascii=False, separators=(",", ":"))


@pytest.mark.parametrize("event", SAMPLES[:8], ids=lambda e: type(e).__name__)
def test_an_entrys_event_is_rebuilt_only_when_something_asks_for_it(event: DomainEvent,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    rebuilt: list[int] = []
    rebuild = RedisBus._rebuild
    monkeypatch.setattr(RedisBus, "_rebuild", lambda self, *a: rebuilt.append(a[1]) or rebuild(self, *a))
    env = RedisBus()._envelope(41, encode(event).encode())
    assert env is not None and env.kind is type(event)
    env.message(), env.text()  # what the hub and the websockets read
    assert rebuilt == [] and env._event is None
    assert env.event == event and env.event is env.event and rebuilt == [41]  # rebuilt once, then kept
    for copied in (copy.copy(env), copy.deepcopy(env), pickle.loads(pickle.dumps(env))):
        assert copied == env and copied.text() == env.text()
    with pytest.raises(dataclasses.FrozenInstanceError):
        env.seq = 5  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del env.seq
    assert env == Envelope(41, event)


def test_an_entry_that_does_not_rebuild_is_an_unknown_event_that_no_filter_by_kind_lets_through(
        caplog: pytest.LogCaptureFixture) -> None:
    bus = RedisBus()
    following = bus.subscribe(kinds=(d.LinkStatus,))
    every = bus.subscribe()
    env = bus._envelope(9, b'{"type":"link_status","event":"LinkStatus","at":"soon","up":true}')
    assert env is not None and env.kind is d.LinkStatus  # its name is known; its fields are not
    bus._fanout(env)
    assert following._q.empty() and every._q.get_nowait() is env
    assert isinstance(env.event, UnknownEvent) and env.event.name == "LinkStatus"
    assert "does not rebuild here" in caplog.text
    unknown = bus._envelope(10, b'{"type":"x","event":"FromANewerNode","at":2}')
    assert unknown is not None and unknown.kind is UnknownEvent and unknown.message()["seq"] == 10


async def test_a_web_node_routes_and_sends_the_stream_without_rebuilding_what_it_does_not_look_at(
        buses: Buses) -> None:
    publisher, web = await buses(), await buses()
    hub = web.subscribe()  # a web node's hub: every kind, by its message
    links = web.subscribe(kinds=(d.LinkStatus,))  # and a consumer of one kind
    sent = [await publisher.publish(ev) for ev in SAMPLES]
    got = await take(hub, len(SAMPLES))
    assert [e.text() for e in got] == [Envelope(e.seq, e.event).text() for e in sent]
    linked = [e for e in got if e.kind is d.LinkStatus]
    assert linked and [e.seq for e in await take(links, len(linked))] == [e.seq for e in linked]
    assert [e.seq for e in got if e._event is not None] == [e.seq for e in linked]  # the rest never rebuilt
    assert [e.event for e in got] == [e.event for e in sent]  # and each rebuilds as it was sent
