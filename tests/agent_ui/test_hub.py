"""The hub asks only the audiences an event could be for, and they still decide: every socket gets
exactly what asking every audience about every event would give it."""

from __future__ import annotations

import asyncio
import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent_ui.audience import Audience
from agent_ui.hub import ROUTE_TURN, Hub
from cti.domain import CallAnswered, SeatRinging
from hotline.bus import BusLagged, DomainEvent, Envelope, InProcessBus
from hotline.identity import Principal, Role

SEATS = ["8001", "8002", "8003"]
KINDS = ["screen_pop", "call_update", "alert", "seat_update", "queue_update", "link_status", "ticket_update",
         "intake_update", "resync", "recording_ready"]


class Msg(DomainEvent):
    """An envelope whose message is given outright (the hub reads only ``env.message()``)."""


def envelope(seq: int, msg: dict) -> Envelope:
    env = Envelope(seq, Msg(at=0.0))
    object.__setattr__(env, "_message", {**msg, "seq": seq})
    return env


def people() -> list[Principal]:
    ops = [Principal(f"op{i}", Role.OPERATOR) for i in range(4)]
    return [*ops, Principal("lead", Role.LEAD), Principal("dept", Role.DEPARTMENT, department_id=7),
            Principal("qa", Role.QA), Principal("admin", Role.ADMIN)]


messages = st.lists(st.fixed_dictionaries({
    "type": st.sampled_from(KINDS),
    "seat": st.sampled_from([None, *SEATS]),
    "ringing_seat": st.sampled_from([None, *SEATS]),
    "call_id": st.sampled_from([None, "c1", "c2", "c3"]),
    "department_ids": st.sampled_from([[], [7], [8]]),
}), max_size=40)
rosters = st.dictionaries(st.sampled_from(["op0", "op1", "op2", "op3"]), st.sampled_from(SEATS), max_size=4)


@settings(max_examples=150, deadline=None)
@given(msgs=messages, roster_before=rosters, roster_after=rosters)
def test_every_socket_gets_exactly_what_asking_every_audience_gives(msgs, roster_before, roster_after) -> None:
    async def run() -> None:
        roster = {"now": dict(roster_before)}
        hub = Hub(InProcessBus(), lambda: roster["now"])
        seat_of = lambda u: roster["now"].get(u)  # noqa: E731
        who = people()
        inboxes = [hub.join(Audience(p, seat_of)) for p in who]
        reference = [Audience(p, seat_of) for p in who]  # the old way: each asked about every event
        expected: list[list[int]] = [[] for _ in who]
        for seq, msg in enumerate(msgs, 1):
            if seq == len(msgs) // 2:
                roster["now"] = dict(roster_after)  # operators move mid-stream: a new roster dict
            env = envelope(seq, msg)
            hub.route(env)
            for i, aud in enumerate(reference):
                if aud.visible(env.message()):
                    expected[i].append(seq)
        got = [[inbox._q.get_nowait().seq for _ in range(inbox._q.qsize())] for inbox in inboxes]
        assert got == expected

    asyncio.run(run())


def test_two_hundred_pops_ask_two_hundred_filters_not_forty_thousand() -> None:
    async def run() -> None:
        roster = {f"op{i}": f"8{i:03d}" for i in range(200)}
        hub = Hub(InProcessBus(), lambda: roster)
        seat_of = roster.get
        inboxes = [hub.join(Audience(Principal(u, Role.OPERATOR), seat_of)) for u in roster]
        wallboard = hub.join(Audience(Principal("lead", Role.LEAD), seat_of))
        for i, (_user, seat) in enumerate(roster.items(), 1):
            hub.route(envelope(i, {"type": "screen_pop", "seat": seat, "call_id": f"c{i}"}))
        assert all(inbox._q.qsize() == 1 for inbox in inboxes) and wallboard._q.qsize() == 200
        assert hub.asked == 400  # each pop: its operator and the lead
        hub.route(envelope(201, {"type": "call_update", "seat": "8999", "call_id": "c1"}))  # answered elsewhere
        assert inboxes[0]._q.qsize() == 2 and sum(i._q.qsize() for i in inboxes) == 201  # only where it popped

    asyncio.run(run())


async def test_the_hub_reads_the_bus_and_a_slow_socket_is_told_to_resync() -> None:
    bus = InProcessBus()
    hub = Hub(bus, lambda: {"op1024": "8001"})
    seat_of = {"op1024": "8001"}.get
    slow = hub.join(Audience(Principal("op1024", Role.OPERATOR), seat_of), maxsize=2)
    lead = hub.join(Audience(Principal("lead", Role.LEAD), seat_of))
    try:
        await asyncio.sleep(0)  # the hub's reader subscribes
        for n in range(3):
            bus.publish_nowait(SeatRinging(at=1.0, call_id=f"c{n}", seat="8001", queue="hotline",
                                           caller_num="13953012345", caller_name="", waited_ms=0, variables={}))
        bus.publish_nowait(CallAnswered(at=2.0, call_id="c0", seat="8001", queue="hotline", wait_ms=1,
                                        within_rule=True))
        for _ in range(20):
            await asyncio.sleep(0)
        assert [(await anext(lead)).seq for _ in range(4)] == [1, 2, 3, 4]
        with pytest.raises(BusLagged):  # its queue overflowed: it reloads instead of missing events silently
            await anext(slow)
        bus.publish_nowait(CallAnswered(at=3.0, call_id="c1", seat="8001", queue="hotline", wait_ms=1,
                                        within_rule=True))
        assert (await asyncio.wait_for(anext(slow), 1)).seq == 5  # and then follows again
    finally:
        slow.close()
        lead.close()
        await hub.stop()
    assert hub.sockets == 0


async def test_a_burst_is_routed_a_turn_at_a_time_so_the_first_pops_go_out_before_the_last_are_routed() -> None:
    """200 pops queued at once (one read of AMI in one process): the sockets' tasks run between the
    hub's turns, so the first operator has their pop while most of the burst still waits."""
    roster = {f"op{i}": f"8{i:03d}" for i in range(200)}
    bus = InProcessBus()
    hub = Hub(bus, lambda: roster)
    inboxes = [hub.join(Audience(Principal(u, Role.OPERATOR), roster.get)) for u in roster]
    routed_when: list[int] = []

    async def first_socket() -> None:
        await anext(inboxes[0])
        routed_when.append(hub.routed)

    try:
        await asyncio.sleep(0)  # the hub's reader subscribes
        socket = asyncio.create_task(first_socket())
        await asyncio.sleep(0)
        for i, seat in enumerate(roster.values()):
            bus.publish_nowait(SeatRinging(at=1.0, call_id=f"c{i}", seat=seat, queue="hotline",
                                           caller_num="13953012345", caller_name="", waited_ms=0, variables={}))
        await asyncio.wait_for(socket, 5)
        assert routed_when[0] <= ROUTE_TURN < 200  # the code before routed all 200 first
        for _ in range(20):
            await asyncio.sleep(0)
        assert hub.routed == 200 and all(inbox._q.qsize() == 1 for inbox in inboxes[1:])
    finally:
        for inbox in inboxes:
            inbox.close()
        await hub.stop()


def test_a_filter_that_raises_drops_the_event_for_that_socket_only() -> None:
    async def run() -> None:
        hub = Hub(InProcessBus(), lambda: {})
        broken = copy.copy(Audience(Principal("lead", Role.LEAD), lambda _u: None))
        broken.visible = lambda _msg: 1 / 0  # type: ignore[method-assign]
        bad = hub.join(broken)
        good = hub.join(Audience(Principal("admin", Role.ADMIN), lambda _u: None))
        hub.route(envelope(1, {"type": "link_status"}))
        assert bad._q.qsize() == 0 and good._q.qsize() == 1

    asyncio.run(run())
