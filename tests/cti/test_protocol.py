"""The AMI protocol core: bytes → frames (every cut position, greeting, repeated headers, garbage),
frames → typed events (on the recorded transcripts)."""

from __future__ import annotations

import dataclasses
import doctest

import pytest

import cti.protocol
from cti import events as ev
from cti.protocol import EventFactory, FrameParser, from_frame, parse_frame

NAME = "张三丰"  # 9 UTF-8 bytes: cuts at 1, 2, 4, 5, 7, 8 fall inside a character


def _name_frame() -> bytes:
    return (
        "Event: Newchannel\r\nPrivilege: call,all\r\nTimestamp: 1795344882.156000\r\n"
        f"CallerIDNum: 13800001\r\nCallerIDName: {NAME}\r\n"
        "ChanVariable: LOCATION=山东省聊城市\r\nChanVariable: TICKETS=3\r\n\r\n"
    ).encode()


def test_doctests() -> None:
    assert doctest.testmod(cti.protocol).failed == 0


@pytest.mark.parametrize("greeting", [True, False])
def test_name_survives_every_cut_position(greeting: bool) -> None:
    data = (b"Asterisk Call Manager/9.0.0\r\n" if greeting else b"") + _name_frame()
    for cut in range(1, len(data)):
        p = FrameParser()
        frames = p.feed(data[:cut]) + p.feed(data[cut:])
        assert len(frames) == 1, cut
        assert frames[0]["CallerIDName"] == NAME, cut
        assert frames[0]["ChanVariable"] == ["LOCATION=山东省聊城市", "TICKETS=3"]
        assert p.malformed == 0
        assert p.version == ("9.0.0" if greeting else None)


def test_byte_by_byte_recorded_stream(wire) -> None:
    data = wire.to_wire(wire.load_jsonl(wire.FLOWS))
    whole = FrameParser().feed(data)
    p = FrameParser()
    trickled = [f for i in range(len(data)) for f in p.feed(data[i : i + 1])]
    assert [f.headers for f in trickled] == [f.headers for f in whole]
    n_events = sum(1 for d in wire.load_jsonl(wire.FLOWS) if not d["Event"].startswith("_"))
    assert len(whole) == n_events == 179
    assert p.malformed == 0


def test_repeated_headers_keep_order_and_single_stays_str() -> None:
    f = parse_frame("Event: X\r\nA: 1\r\nB: 2\r\nA: 3\r\nA: 4")
    assert f is not None
    assert f["A"] == ["1", "3", "4"]
    assert f["B"] == "2"


def test_value_with_colon_space_and_empty_values() -> None:
    f = parse_frame("Response: Success\r\nMessage: Queue: hotline: ok\r\nAccountCode: \r\nEmpty:")
    assert f is not None
    assert f["Message"] == "Queue: hotline: ok"
    assert f["AccountCode"] == ""
    assert f["Empty"] == ""


def test_malformed_frames_are_counted_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    p = FrameParser()
    out = p.feed(b"Asterisk Call Manager/9.0.0\r\nhello world\r\n\r\nEvent: Ok\r\n\r\n")
    assert [f.event for f in out] == ["Ok"]
    assert p.malformed == 1
    out = p.feed(b"Event: Bad\r\nCallerIDName: \xe5\xbc\r\n\r\n")  # truncated character
    assert out[0]["CallerIDName"] == "\ufffd"
    assert p.decode_errors == 1 and p.malformed == 2
    assert "invalid UTF-8" in caplog.text


def test_oversized_garbage_is_dropped() -> None:
    p = FrameParser()
    p.feed(b"Event: X\r\n")
    assert p.feed(b"x" * (cti.protocol.MAX_FRAME_BYTES + 1)) == []
    assert p.malformed == 1
    assert [f.event for f in p.feed(b"Event: Next\r\n\r\n")] == ["Next"]


def test_stray_eol_between_frames_and_split_separator() -> None:
    p = FrameParser()
    out = p.feed(b"Event: A\r\n\r")
    assert out == []
    out = p.feed(b"\n\r\nEvent: B\r\n\r\n")
    assert [f.event for f in out] == ["A", "B"]


def test_greeting_split_and_reset() -> None:
    p = FrameParser()
    assert p.feed(b"Aster") == []
    assert p.feed(b"isk Call Manager/9.0.0") == []
    assert p.feed(b"\r\nResponse: Success\r\n\r\n")[0].response == "Success"
    assert p.version == "9.0.0"
    p.reset()
    p.feed(b"Event: half")
    p.reset()  # a reconnect drops the half frame of the old connection
    out = p.feed(b"Asterisk Call Manager/10.0.0\r\nEvent: New\r\n\r\n")
    assert [f.event for f in out] == ["New"] and p.version == "10.0.0"


# ---------------------------------------------------------------- frames → typed events


def _typed(data: bytes) -> tuple[list[ev.AmiEvent], EventFactory]:
    fac = EventFactory()
    return [fac.build(f, received=0.0) for f in FrameParser().feed(data)], fac


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
    e = from_frame(parse_frame("Event: Hangup\r\nUniqueid: 1.1\r\nCause: 16"), received=5.0)
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
    e = from_frame(parse_frame(text), received=1.0)
    assert isinstance(e, cls)
    assert check(e)


def test_bad_numbers_do_not_crash_and_unknown_counted() -> None:
    fac = EventFactory()
    e = fac.build(parse_frame("Event: AgentConnect\r\nHoldTime: three\r\nTimestamp: soon"), received=2.0)
    assert isinstance(e, ev.AgentConnect) and e.hold_time_s == 0 and e.ts == 2.0
    u = fac.build(parse_frame("Event: SomethingNew\r\nX: 1"), received=2.0)
    assert isinstance(u, ev.UnknownEvent) and u.name == "SomethingNew"
    assert fac.unknown == {"SomethingNew": 1}
