"""The pure cores on raw AMI transcripts of the project's own Asterisk 22 (tests/fixtures/ami/,
recorded by the harness with HOTLINE_RECORD_AMI=1): bytes exactly as Asterisk sent them."""

from __future__ import annotations

from pathlib import Path

import pytest

from cti import domain as d
from cti.domain import CallState, SeatState
from cti.protocol import FrameParser
from tests.cti.test_state import Feed

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ami"


def raw(name: str) -> bytes:
    path = FIXTURES / f"{name}.ami"
    if not path.exists():
        pytest.skip(f"transcript {path.name} not recorded")
    return path.read_bytes()


def frames(data: bytes, event: str) -> list:
    return [f for f in FrameParser().feed(data) if f.event == event]


def ts(frame) -> float:
    return float(frame["Timestamp"])


def fed(data: bytes, chunk: int = 1460) -> Feed:
    f = Feed()
    for i in range(0, len(data), chunk):
        f.bytes(data[i : i + chunk])
    assert f.parser.malformed == 0 and f.factory.errors == 0
    return f


def test_answered_in_3_s() -> None:
    data = raw("test_sip_call_is_answered_by_a_signed_in_seat_in_3_s_and_recorded")
    f = fed(data)
    [join], [conn] = frames(data, "QueueCallerJoin"), frames(data, "AgentConnect")
    [pickup] = [x for x in frames(data, "DialEnd") if x["DestUniqueid"] == conn["DestUniqueid"]]
    [ans] = f.of(d.CallAnswered)
    assert ans.wait_ms == round((ts(pickup) - ts(join)) * 1000) and 2800 <= ans.wait_ms <= 4000
    assert ans.within_rule and ans.seat == "8001" and not f.of(d.AnswerRuleBreached)
    [pop] = f.of(d.SeatRinging)
    assert pop.variables["HL_CALLER"] and pop.variables["HL_RECBASE"]  # what the screen-pop carries
    [done] = f.of(d.CallCompleted)
    r = done.call
    assert r.talk_s == pytest.approx(8.0, abs=0.1)  # the operator hung up after 8 s; the survey followed
    assert r.recordings[0] == pop.variables["HL_RECBASE"] + ".wav"
    assert f.seat_states("8001") == ["ready", "ringing", "on_call", "wrap_up"]


def test_rung_20_s_given_up_at_15_s_and_reassigned() -> None:
    data = raw("test_seat_ringing_20_s_is_given_up_at_15_s_and_the_next_seat_answers")
    f = fed(data)
    [alert] = f.of(d.AnswerRuleBreached)
    [rna] = frames(data, "AgentRingNoAnswer")
    [join] = frames(data, "QueueCallerJoin")
    assert alert.seats_rung == ("8001",) and alert.ringing_seat == "8001"
    assert alert.waited_ms == round((ts(rna) - ts(join)) * 1000)
    assert [e.seat for e in f.of(d.SeatRingNoAnswer)] == ["8001"]
    [ans] = f.of(d.CallAnswered)
    assert ans.seat == "8002" and not ans.within_rule and 16_000 < ans.wait_ms < 18_000
    assert f.seat_states("8001") == ["ready", "ringing", "ready"]


def test_abandoned_local_caller() -> None:
    data = raw("test_local_channel_caller_reaches_the_queue_and_abandons")
    f = fed(data)
    [ab] = f.of(d.CallAbandoned)
    [join], [abandon] = frames(data, "QueueCallerJoin"), frames(data, "QueueCallerAbandon")
    assert ab.wait_ms == round((ts(abandon) - ts(join)) * 1000)
    assert f.st.calls[ab.call_id].state == CallState.ABANDONED
    assert f.st.figures("hotline", now=ts(abandon) + 1).abandoned == 1


def test_blind_transfer_to_the_specialist_queue() -> None:
    data = raw("test_blind_transfer_to_the_specialist_queue")
    f = fed(data)
    [tr] = f.of(d.CallTransferred)
    assert tr.kind == "blind" and tr.seat == "8001" and tr.target == "expert@hotline-transfer"
    assert [o.queue for o in f.of(d.CallOffered)] == ["hotline", "hotline_expert"]
    assert [(a.seat, a.queue) for a in f.of(d.CallAnswered)] == [("8001", "hotline"), ("8002", "hotline_expert")]
    assert f.seat_states("8001")[-1] == SeatState.WRAP_UP
    [call] = f.st.calls.values()
    assert call.seat == "8001" and call.current_seat == "8002" and call.transferred_to


def test_chinese_name_byte_by_byte() -> None:
    data = raw("test_chinese_caller_name_arrives_whole")
    f = fed(data, chunk=1)
    [offered] = f.of(d.CallOffered)
    assert offered.caller_name == "张三丰"


def test_three_party_conference() -> None:
    data = raw("test_three_party_call_hears_all_three_and_ends_with_the_citizen")
    f = fed(data)
    assert [c.parties for c in f.of(d.CallConferenced)] == [1, 2, 3]
    [done] = f.of(d.CallCompleted)
    assert done.call.conference == f"conf-{done.call_id}" and done.call.seat == "8001"
    assert f.seat_states("8001") == ["ready", "ringing", "on_call", "wrap_up"]


def test_restart_mid_call_leaves_no_phantoms() -> None:
    data = raw("test_sip_call_is_answered_by_a_signed_in_seat_in_3_s_and_recorded")
    cut = data.index(b"Event: AgentConnect")
    cut = data.index(b"\r\n\r\n", cut) + 4  # Asterisk dies right after the answer
    f = fed(data[:cut])
    assert f.st.seats["8001"].state == SeatState.ON_CALL and len(f.st.calls) == 1
    res = f.st.resync(members=[], entries=[], channels=[], now=ts(frames(data, "AgentConnect")[0]) + 5)
    assert f.st.calls == {} and len(res.calls_dropped) == 1
    assert [(s.seat, s.queue) for s in res.seats_to_restore] == [("8001", "hotline")]
    assert f.st.seats["8001"].state == SeatState.READY
    [lost] = [e.call for e in res.events if isinstance(e, d.CallCompleted)]
    assert lost.lost and not lost.abandoned and lost.wait_ms is not None
