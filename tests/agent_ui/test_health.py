"""agent_ui/health.py's view of the listening nodes, from their heartbeats on the bus (the probes
that reach Asterisk, AMI and the database are exercised by test_api and the real-Asterisk tests)."""

from __future__ import annotations

import asyncio

from agent_ui.health import Listeners, listen_probe
from hotline.bus import Envelope
from hotline.listening import ListenerStatus, LiveState


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def beat(seen: Listeners, node: str, capacity: int, active: int = 0, *, overloaded: bool = False,
         warm: int = 0) -> None:
    seen.on_envelope(Envelope(1, ListenerStatus(at=0, node=node, address=f"{node}:9293", capacity=capacity,
                                                active=active, overloaded=overloaded, warm=warm, every_s=2.0)))


def test_no_listening_node_is_off_not_down() -> None:
    seen = Listeners(Clock())
    assert seen.check()[0] == "off"
    seen.on_envelope(Envelope(1, LiveState(at=0, call_id="c", seat="8001", state="listening")))
    assert seen.check()[0] == "off" and (ListenerStatus,) == Listeners.KINDS  # followed by kind: nothing else rebuilt


def test_each_node_is_listed_with_its_legs_and_warm_recognisers() -> None:
    clock = Clock()
    seen = Listeners(clock)
    beat(seen, "listen@10.0.2.21", 8, 2, warm=6)
    beat(seen, "listen@10.0.2.22", 8, 8, warm=0)
    state, detail = seen.check()
    assert state == "ok"
    assert "listen@10.0.2.21：2/8 路，预热 6" in detail and "listen@10.0.2.22：8/8 路" in detail
    assert detail.startswith("可接 3 通")  # six legs free: three calls


def test_a_silent_node_is_named_and_no_room_is_down() -> None:
    clock = Clock()
    seen = Listeners(clock)
    beat(seen, "listen@a", 8, 0)
    beat(seen, "listen@b", 8, 7, overloaded=True)
    clock.now += 7  # three heartbeats (2 s) missed by a
    beat(seen, "listen@b", 8, 7, overloaded=True)
    state, detail = seen.check()
    assert state == "down", detail  # the only live node is behind: no new call is heard live
    assert "listen@a：7 秒无心跳" in detail and "跟不上" in detail


def test_a_node_stopped_on_purpose_drops_off_the_list() -> None:
    clock = Clock()
    seen = Listeners(clock)
    beat(seen, "listen@a", 0)  # its last word: no room any more
    clock.now += 10
    assert seen.check()[0] == "off"


def test_the_probe_reports_it_as_a_component() -> None:
    seen = Listeners(Clock())
    beat(seen, "listen@a", 8, warm=8)
    check = asyncio.run(listen_probe(seen)())
    assert (check.name, check.label, check.state) == ("listen", "实时转写节点", "ok")
