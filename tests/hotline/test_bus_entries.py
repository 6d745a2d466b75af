"""What a node makes of one stream entry (``RedisBus._envelope``): each web node reads every entry
of the centre's stream, about seven a call, so what it spares there it spares 1 400 times in a
200-call burst (bench/screen_pop.py)."""

from __future__ import annotations

import json

import pytest

from hotline.bus import DomainEvent, Envelope
from hotline.codec import encode
from hotline.redis_bus import RedisBus
from tests.hotline.test_redis_bus import SAMPLES


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
