"""Frames → typed events, on the recorded transcripts."""

from __future__ import annotations

import dataclasses
import doctest

import pytest

import cti.events
from cti import events as ev
from cti.protocol import FrameParser, parse_frame


def _typed(data: bytes) -> tuple[list[ev.AmiEvent], ev.EventFactory]:
    fac = ev.EventFactory()
    return [fac.build(f, received=0.0) for f in FrameParser().feed(data)], fac


def test_doctests() -> None:
    assert doctest.testmod(cti.events).failed == 0


def test_recorded_answered_call(wire) -> None:
    events, fac = _typed(wire.to_wire(wire.load_jsonl(wire.FLOWS)))
    by = {type(e).__name__: e for e in events}
    join = by["QueueCallerJoin"]
    assert isinstance(join, ev.QueueCallerJoin)
    assert join.queue == "hotline" and join.uniqueid == "1795344882.10" and join.position == 1
    assert join.ts == pytest.approx(1795344882.1868331, abs=1e-6)
    assert join.chanvars["MONITOR_FILENAME"] == "hotline-20261122-105442-1795344882.10"
    called = by["AgentCalled"]
    assert called.member_name == "agent1001" and called.dest_uniqueid == "1795344882.11"
    assert called.dest_chanvars["TICKETS"] == "3"
    conn = by["AgentConnect"]
    assert (conn.hold_time_s, conn.ring_time_s) == (3, 3)
    assert round((conn.ts - join.ts) * 1000) == 3022  # the wait, from Timestamps
    comp = by["AgentComplete"]
    assert (comp.talk_time_s, comp.reason) == (21, "caller")
    hangups = [e for e in events if isinstance(e, ev.Hangup)]
    assert [h.cause_txt for h in hangups] == ["Normal Clearing"] * 2
    members = [e for e in events if isinstance(e, ev.QueueMemberEvent)]
    assert [type(m).__name__ for m in members][:2] == ["QueueMemberRemoved", "QueueMemberAdded"]
    assert [m.status for m in members if isinstance(m, ev.QueueMemberStatus)] == [6, 2, 1]
    varsets = [e for e in events if isinstance(e, ev.VarSet)]
    assert len(varsets) == 110
    # events the bridge does not need are counted, not fatal
    assert fac.unknown["Newexten"] == 13 and fac.unknown["RTCPSent"] == 8
    assert fac.errors == 0


def test_recorded_attended_threeway(wire) -> None:
    events, _ = _typed(wire.to_wire(wire.load_jsonl(wire.THREE_PARTY)))
    [t] = [e for e in events if isinstance(e, ev.AttendedTransfer)]
    assert t.dest_type == "Threeway" and t.transferee_uniqueid == "1795345448.18"
    assert t.transferer_uniqueid == "1795345448.19" and t.result == "Success"
    swaps = [e for e in events if isinstance(e, ev.BridgeEnter) and e.swap_uniqueid]
    assert swaps and swaps[0].swap_uniqueid == "1795345453.20"


def test_events_are_frozen() -> None:
    e = cti.events.from_frame(parse_frame("Event: Hangup\r\nUniqueid: 1.1\r\nCause: 16"), received=5.0)
    assert isinstance(e, ev.Hangup) and e.ts == 5.0 and e.cause == 16
    with pytest.raises(dataclasses.FrozenInstanceError):
        e.cause = 17  # type: ignore[misc]


@pytest.mark.parametrize(
    "text, cls, check",
    [
        (
            "Event: AgentRingNoAnswer\r\nRingTime: 15002\r\nMemberName: 8001",
            ev.AgentRingNoAnswer,
            lambda e: e.ring_time_ms == 15002,
        ),
        (
            "Event: QueueCallerAbandon\r\nQueue: hotline\r\nHoldTime: 9\r\nOriginalPosition: 2",
            ev.QueueCallerAbandon,
            lambda e: (e.hold_time_s, e.original_position) == (9, 2),
        ),
        (
            "Event: QueueMemberPause\r\nPaused: 1\r\nPausedReason: 培训\r\nMemberName: 8001",
            ev.QueueMemberPause,
            lambda e: e.paused and e.paused_reason == "培训",
        ),
        (
            "Event: ConfbridgeJoin\r\nConference: conf-1.1\r\nMarked: Yes\r\nUniqueid: 1.1",
            ev.ConfbridgeJoin,
            lambda e: e.marked and e.conference == "conf-1.1",
        ),
        (
            "Event: BlindTransfer\r\nResult: Success\r\nTransfereeUniqueid: 1.1\r\nExtension: expert\r\n"
            "Context: transfer-targets\r\nIsExternal: Yes",
            ev.BlindTransfer,
            lambda e: e.is_external and e.extension == "expert",
        ),
        (
            "Event: VarSet\r\nVariable: MIXMONITOR_FILENAME\r\nValue: /var/spool/x.wav\r\nUniqueid: 1.1",
            ev.VarSet,
            lambda e: e.value == "/var/spool/x.wav",
        ),
        (
            "Event: UserEvent\r\nUserEvent: SurveyResult\r\nUniqueid: 1.1\r\nScore: 1\r\nChannel: P/x",
            ev.UserEvent,
            lambda e: e.fields == {"Score": "1"} and e.user_event == "SurveyResult",
        ),
        (
            "Event: FullyBooted\r\nStatus: Fully Booted\r\nUptime: 3",
            ev.FullyBooted,
            lambda e: e.uptime_s == 3,
        ),
        (
            "Event: QueueMember\r\nActionID: a1\r\nQueue: hotline\r\nName: 8001\r\nLocation: PJSIP/8001\r\n"
            "Paused: 0\r\nStatus: 1",
            ev.QueueMember,
            lambda e: e.member_name == "8001" and e.interface == "PJSIP/8001",
        ),
        (
            "Event: QueueEntry\r\nQueue: hotline\r\nUniqueid: 1.1\r\nWait: 12\r\nPosition: 1",
            ev.QueueEntry,
            lambda e: e.wait_s == 12,
        ),
        (
            "Event: CoreShowChannel\r\nChannel: PJSIP/x-1\r\nUniqueid: 1.1\r\nApplication: Queue",
            ev.CoreShowChannel,
            lambda e: e.application == "Queue",
        ),
        (
            "Event: CoreShowChannelsComplete\r\nListItems: 4\r\nActionID: a2",
            ev.ListComplete,
            lambda e: e.items == 4 and e.action_id == "a2",
        ),
        (
            "Event: QueueParams\r\nQueue: hotline\r\nServiceLevel: 15\r\nServicelevelPerf: 87.5",
            ev.QueueParams,
            lambda e: e.service_level_perf == 87.5,
        ),
    ],
)
def test_builders(text: str, cls: type, check) -> None:
    e = cti.events.from_frame(parse_frame(text), received=1.0)
    assert isinstance(e, cls)
    assert check(e)


def test_bad_numbers_do_not_crash_and_unknown_counted() -> None:
    fac = ev.EventFactory()
    e = fac.build(parse_frame("Event: AgentConnect\r\nHoldTime: three\r\nTimestamp: soon"), received=2.0)
    assert isinstance(e, ev.AgentConnect) and e.hold_time_s == 0 and e.ts == 2.0
    u = fac.build(parse_frame("Event: SomethingNew\r\nX: 1"), received=2.0)
    assert isinstance(u, ev.UnknownEvent) and u.name == "SomethingNew"
    assert fac.unknown == {"SomethingNew": 1}


def test_domain_doctests() -> None:
    import cti.domain

    assert doctest.testmod(cti.domain).failed == 0
