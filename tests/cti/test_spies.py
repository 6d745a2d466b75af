"""The bridge's spies for the live transcript (cti/spies.py), pure: fed bus envelopes, with the AMI
actions, the bus, the task spawner and the clock injected.

Admission is what matters: an answered call goes to the alive listening node with the most room,
two legs reserved there until its next heartbeat says what it holds; a node that is overloaded or
silent for more than three heartbeats gets nothing. With no node at all the feature is off and
nothing is said; with nodes but no room the console is told (``LiveState unavailable``) and the
call is not spied. A pick announces the legs (``LegsAssigned``, before any audio can arrive: the
node refuses a leg nobody announced) and originates one ``AudioSocket`` channel per leg running
ChanSpy ``qEoS`` on the citizen's channel and on the seat's; the call's end hangs up what is left.
A spy Asterisk refuses, or a seat that left the call, never breaks anything.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Coroutine
from typing import Any

import pytest

from cti.actions import NotOnCall
from cti.domain import CallAnswered, CallCompleted, CallConferenced, OutboundAnswered, OutboundEnded
from cti.spies import SPY_OPTIONS, Spies
from hotline.bus import DomainEvent, Envelope
from hotline.calls import FinishedCall
from hotline.listening import LegsAssigned, ListenerStatus, LiveState

T0 = 1795344882.0
SEATS = {"8001": ("PJSIP/8001-00000002", "PJSIP/caller-trunk-00000001", "1795344880.1"),
         "8002": ("PJSIP/8002-00000004", "PJSIP/caller-trunk-00000003", "1795344881.3")}


def address(node: str) -> str:
    """Where a test node's AudioSocket server listens (one address per node)."""
    return f"10.0.0.{ord(node[-1]) % 50}:9092"


class Bridge:
    """The spies with everything they call recorded: AMI actions, the bus, the clock."""

    def __init__(self, refuse: set[str] | None = None) -> None:
        self.now = T0
        self.seq = 0
        self.log: list[tuple[str, Any]] = []  # in order: ("publish", event) | ("originate", args) | ("hangup", ch)
        self.pending: list[Coroutine[Any, Any, Any]] = []
        self.refuse = refuse or set()  # spied channels whose Originate Asterisk refuses
        self.spies = Spies(self.channels, self.originate, self.hang_up, self.publish, self.pending.append,
                           lambda seat: f"job-{seat}", lambda: self.now)

    # --- what the spies are given ------------------------------------------------------------

    def channels(self, seat: str) -> tuple[str, str, str]:
        self.log.append(("channels", seat))
        if seat not in SEATS:
            raise NotOnCall(f"seat {seat} is not on a call")
        return SEATS[seat]

    async def originate(self, channel: str, spied: str, options: str) -> None:
        self.log.append(("originate", (channel, spied, options)))
        if spied in self.refuse:
            raise RuntimeError("Originate failed")

    async def hang_up(self, channel: str) -> None:
        self.log.append(("hangup", channel))

    def publish(self, events: list[DomainEvent]) -> None:
        self.log.extend(("publish", e) for e in events)

    # --- driving them ------------------------------------------------------------------------

    def feed(self, event: DomainEvent) -> None:
        self.seq += 1
        self.spies.on_envelope(Envelope(self.seq, event))
        pending, self.pending[:] = list(self.pending), []

        async def drain() -> None:
            await asyncio.gather(*pending)

        asyncio.run(drain())

    def heartbeat(self, node: str, capacity: int, active: int = 0, *, overloaded: bool = False,
                  every_s: float = 2.0) -> None:
        self.feed(ListenerStatus(at=self.now, node=node, address=address(node),
                                 capacity=capacity, active=active, overloaded=overloaded, every_s=every_s))

    def answer(self, call_id: str, seat: str = "8001") -> None:
        self.feed(CallAnswered(at=self.now, call_id=call_id, seat=seat, queue="hotline", wait_ms=3000,
                               within_rule=True))

    def complete(self, call_id: str) -> None:
        call = FinishedCall(call_id=call_id, caller_num="13953012345", offered_at=T0 - 60, ended_at=self.now)
        self.feed(CallCompleted(at=self.now, call_id=call_id, call=call))

    # --- what came out -----------------------------------------------------------------------

    def of(self, kind: str) -> list[Any]:
        return [x for k, x in self.log if k == kind]

    def published(self, cls: type) -> list[Any]:
        return [e for e in self.of("publish") if isinstance(e, cls)]

    def assigned_nodes(self) -> list[str]:
        return [e.node for e in self.published(LegsAssigned)]


def test_an_answered_call_goes_to_the_alive_node_with_most_room() -> None:
    b = Bridge()
    b.heartbeat("listen-a", capacity=10, active=8)  # room 2
    b.heartbeat("listen-b", capacity=10, active=3)  # room 7
    b.heartbeat("listen-c", capacity=30, active=0, overloaded=True)  # most room, but behind
    b.now += 1
    b.answer("c1")
    assert b.assigned_nodes() == ["listen-b"]
    assert {ch.split("/")[1] for ch, _, _ in b.of("originate")} == {address("listen-b")}


def test_a_pick_announces_both_legs_then_spies_the_citizen_and_the_seat() -> None:
    b = Bridge()
    b.heartbeat("listen-a", capacity=10)
    b.answer("c1", seat="8001")
    [assigned] = b.published(LegsAssigned)
    assert (assigned.call_id, assigned.seat, assigned.operator, assigned.node) == ("c1", "8001", "job-8001", "listen-a")
    assert not assigned.callback
    assert sorted(assigned.legs.values()) == ["citizen", "operator"]
    for uid in assigned.legs:
        assert str(uuid.UUID(uid)) == uid
    seat_channel, citizen_channel, _ = SEATS["8001"]
    by_speaker = {sp: uid for uid, sp in assigned.legs.items()}
    assert sorted(b.of("originate")) == sorted([
        (f"AudioSocket/{address('listen-a')}/{by_speaker['citizen']}", citizen_channel, "qEoS"),
        (f"AudioSocket/{address('listen-a')}/{by_speaker['operator']}", seat_channel, "qEoS"),
    ])
    assert SPY_OPTIONS == "qEoS"
    kinds = [k for k, _ in b.log if k in ("publish", "originate")]
    assert kinds.index("originate") > kinds.index("publish"), "the node hears of the legs before they connect"
    assert not b.published(LiveState)


def test_two_legs_are_reserved_on_a_node_until_its_next_heartbeat() -> None:
    b = Bridge()
    b.heartbeat("listen-a", capacity=4)  # room for two calls
    b.heartbeat("listen-b", capacity=3)  # room for one
    for call in ("c1", "c2", "c3", "c4"):
        b.answer(call, seat="8001")
    # a: 4 → b: 3 → a: 2 (b has 1 left) → nobody has room for two legs
    assert b.assigned_nodes() == ["listen-a", "listen-b", "listen-a"]
    assert [e.call_id for e in b.published(LiveState)] == ["c4"]
    b.heartbeat("listen-a", capacity=4, active=2)  # the heartbeat now counts c1's legs, c3's have gone
    b.answer("c5")
    assert b.assigned_nodes()[-1] == "listen-a"
    b.answer("c6")
    assert len(b.published(LegsAssigned)) == 4 and b.published(LiveState)[-1].call_id == "c6"


def test_a_node_silent_for_more_than_three_heartbeats_gets_nothing() -> None:
    b = Bridge()
    b.heartbeat("listen-a", capacity=40, every_s=2.0)
    b.now += 5.5
    b.heartbeat("listen-b", capacity=4, every_s=2.0)
    b.now += 0.5  # a was heard 6 s ago: three heartbeats, still alive
    b.answer("c1")
    b.now += 0.5  # 6.5 s: gone
    b.answer("c2")
    assert b.assigned_nodes() == ["listen-a", "listen-b"]


def test_an_overloaded_node_gets_nothing_even_when_alone() -> None:
    b = Bridge()
    b.heartbeat("listen-a", capacity=40, overloaded=True)
    b.answer("c1")
    assert not b.published(LegsAssigned) and not b.of("originate")
    [state] = b.published(LiveState)
    assert (state.call_id, state.seat, state.state) == ("c1", "8001", "unavailable")


def test_with_no_listening_node_the_feature_is_off_and_nothing_is_said() -> None:
    b = Bridge()
    b.answer("c1")
    b.complete("c1")
    assert b.log == []
    assert b.spies.refused == 0


def test_with_nodes_but_no_room_the_console_is_told_and_nothing_is_spied() -> None:
    b = Bridge()
    b.heartbeat("listen-a", capacity=6, active=5)  # one leg of room: a call needs two
    b.answer("c1", seat="8002")
    [state] = b.published(LiveState)
    assert (state.call_id, state.seat, state.state, state.speaker) == ("c1", "8002", "unavailable", "")
    assert state.detail
    assert not b.published(LegsAssigned) and not b.of("originate")
    assert b.spies.refused == 1


def test_a_transfer_answered_at_another_seat_spies_the_new_operator_on_the_same_node() -> None:
    b = Bridge()
    b.heartbeat("listen-a", capacity=10)
    b.heartbeat("listen-b", capacity=4)
    b.answer("c1", seat="8001")
    [first] = b.published(LegsAssigned)
    b.answer("c1", seat="8001")  # the same seat again (a resync): nothing new
    assert len(b.published(LegsAssigned)) == 1
    b.heartbeat("listen-b", capacity=40)  # more room elsewhere now: the call stays where its citizen is heard
    b.answer("c1", seat="8002")  # transferred to the specialist queue, answered at 8002
    assert len(b.published(LegsAssigned)) == 2
    moved = b.published(LegsAssigned)[1]
    assert (moved.call_id, moved.seat, moved.operator, moved.node) == ("c1", "8002", "job-8002", first.node)
    assert list(moved.legs.values()) == ["operator"], "the citizen's spy goes on: only the new operator is added"
    [uid] = moved.legs
    assert b.of("originate")[-1] == (f"AudioSocket/{address(first.node)}/{uid}", SEATS["8002"][0], "qEoS")
    assert len(b.of("originate")) == 3
    b.complete("c1")  # every spy of the call, the new one too, is hung up with it
    assert sorted(b.of("hangup")) == sorted(f"AudioSocket/{address(first.node)}-{u}" for u in [*first.legs, uid])


def test_the_calls_end_hangs_up_its_spies() -> None:
    b = Bridge()
    b.heartbeat("listen-a", capacity=10)
    b.answer("c1", seat="8001")
    b.answer("c2", seat="8002")
    legs = {e.call_id: e.legs for e in b.published(LegsAssigned)}
    b.complete("c1")
    assert sorted(b.of("hangup")) == sorted(f"AudioSocket/{address('listen-a')}-{uid}" for uid in legs["c1"])
    b.complete("c1")  # told twice: hung up once
    b.complete("c9")  # never spied
    assert len(b.of("hangup")) == 2


def test_a_department_brought_into_the_call_is_heard_by_a_spy_of_its_own_on_the_same_node() -> None:
    """三方: the citizen and the operator join the room first (their spies follow their channels in),
    then the department's channel: that one is spied, as speaker ``department``, on the node that
    hears the call, once however often the room is counted again; the call's end hangs it up too."""
    b = Bridge()
    b.heartbeat("listen-a", capacity=10)
    b.answer("c1", seat="8001")
    [first] = b.published(LegsAssigned)
    seat_channel, citizen_channel, _ = SEATS["8001"]
    dept = "PJSIP/2001-00000009"

    def joined(channel: str, parties: int, call: str = "c1") -> None:
        b.feed(CallConferenced(at=b.now, call_id=call, conference=f"conf-{call}", channel=channel,
                               parties=parties, seat="8001"))

    joined(citizen_channel, 1)
    joined(seat_channel, 2)
    assert len(b.published(LegsAssigned)) == 1, "the citizen and the operator are heard already"
    joined(dept, 3)
    joined(dept, 3)  # told again: nothing more
    assert len(b.published(LegsAssigned)) == 2
    added = b.published(LegsAssigned)[1]
    assert (added.call_id, added.seat, added.node, list(added.legs.values())) == (
        "c1", "8001", first.node, ["department"])
    [uid] = added.legs
    assert b.of("originate")[-1] == (f"AudioSocket/{address(first.node)}/{uid}", dept, "qEoS")
    assert len(b.of("originate")) == 3
    joined("PJSIP/2002-0000000a", 3, call="c9")  # a room of a call nobody hears: nothing
    assert len(b.of("originate")) == 3
    b.complete("c1")
    assert sorted(b.of("hangup")) == sorted(f"AudioSocket/{address(first.node)}-{u}" for u in [*first.legs, uid])
    assert b.spies.rooms == {}


def test_a_callback_is_heard_from_the_citizen_s_answer_to_its_end() -> None:
    """回拨 / 回访: the seat dialled out; when the citizen answers, both legs go to a node as for a queue
    call, under the callback's own id (its recording's), and its end hangs the spies up."""
    b = Bridge()
    b.heartbeat("listen-a", capacity=10)
    b.feed(OutboundAnswered(at=b.now, call_id="1795344900.900001", seat="8001", number="13953012345",
                            operator="op1024"))
    [assigned] = b.published(LegsAssigned)
    assert (assigned.call_id, assigned.seat, assigned.node) == ("1795344900.900001", "8001", "listen-a")
    assert assigned.callback, "the node's assistant proposes the 回访 verdicts for it"
    seat_channel, citizen_channel, _ = SEATS["8001"]
    assert sorted(spied for _, spied, _ in b.of("originate")) == sorted([seat_channel, citizen_channel])
    b.feed(OutboundEnded(at=b.now + 30, call_id="1795344900.900001", seat="8001", number="13953012345",
                         talk_s=30.0))
    assert sorted(b.of("hangup")) == sorted(f"AudioSocket/{address('listen-a')}-{uid}" for uid in assigned.legs)


@pytest.mark.parametrize("refused", ["citizen", "operator"])
def test_a_spy_asterisk_refuses_is_said_with_its_speaker(refused: str) -> None:
    seat_channel, citizen_channel, _ = SEATS["8001"]
    b = Bridge(refuse={citizen_channel if refused == "citizen" else seat_channel})
    b.heartbeat("listen-a", capacity=10)
    b.answer("c1", seat="8001")
    assert len(b.of("originate")) == 2, "the other leg is still spied"
    [state] = b.published(LiveState)
    assert (state.call_id, state.seat, state.state, state.speaker) == ("c1", "8001", "unavailable", refused)
    assert "Originate failed" in state.detail


def test_a_seat_that_left_the_call_is_not_spied_and_keeps_its_room() -> None:
    b = Bridge()
    b.heartbeat("listen-a", capacity=2)  # room for exactly one call
    b.answer("c1", seat="8009")  # not on a call any more: NotOnCall
    assert not b.published(LegsAssigned) and not b.of("originate") and not b.published(LiveState)
    b.answer("c2", seat="8001")
    assert [e.call_id for e in b.published(LegsAssigned)] == ["c2"]


def test_other_events_are_ignored() -> None:
    b = Bridge()
    b.heartbeat("listen-a", capacity=10)
    b.feed(LiveState(at=b.now, call_id="c1", seat="8001", state="listening"))
    assert b.log == []
