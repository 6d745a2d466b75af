"""Calls out of the centre (回拨 / 回访) in the live state (cti/outbound.py), on the AMI our Asterisk 22
sent for a real callback (tests/cti/test_asterisk.py records it: the seat 8001 answered its ring,
the citizen 13953019876 answered on the outside line, the seat hung up 6 s later)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cti import domain as d
from cti import events as ev
from cti.actions import CtiActions, NotOnCall
from cti.domain import SeatState
from cti.protocol import FrameParser
from tests.cti.test_state import T0, Feed

RECORDED = Path(__file__).parent / "transcripts" / "callback_answered.ami"
CITIZEN = "13953019876"


def frames() -> list[bytes]:
    return [f + b"\r\n\r\n" for f in RECORDED.read_bytes().split(b"\r\n\r\n") if f.strip()]


def header(frame: bytes, name: str) -> str:
    [f] = FrameParser().feed(frame)
    return str(f.headers.get(name, ""))


def fed(parts: list[bytes]) -> Feed:
    f = Feed()
    f.bytes(b"".join(parts))
    assert f.parser.malformed == 0 and f.factory.errors == 0
    return f


def answered_at(parts: list[bytes]) -> int:
    """The index of the citizen's answer: the DialEnd ANSWER from the seat's channel."""
    return next(i for i, p in enumerate(parts) if p.startswith(b"Event: DialEnd") and b"\r\nChannel: " in p
                and b"DialStatus: ANSWER" in p)


def test_a_recorded_callback_puts_its_seat_on_the_call_until_it_ends() -> None:
    parts = frames()
    f = fed(parts)
    [answer] = f.of(d.OutboundAnswered)
    seat_leg = header(parts[answered_at(parts)], "Uniqueid")
    assert (answer.call_id, answer.seat, answer.number) == (seat_leg, "8001", CITIZEN)
    assert answer.call_id.endswith(".900000")  # the id the Originate chose (cti.actions.new_call_id)
    [end] = f.of(d.OutboundEnded)
    assert (end.call_id, end.seat, end.lost) == (answer.call_id, "8001", False)
    # the recording the dialplan named (HL_RECBASE): its catalog entry is made at the end, with the seat
    assert answer.recording_base.startswith("callback-") and answer.recording_base.endswith(f"-{answer.call_id}")
    assert end.recording_base == answer.recording_base
    assert end.talk_s == pytest.approx(6.0, abs=0.1)  # Asterisk's own times: answered → BYE
    # the seat was on that call, then in 话后处理 as after any call
    assert f.seat_states("8001") == ["ready", "on_call", "wrap_up"]
    on = [e for e in f.of(d.SeatStateChanged) if e.state == SeatState.ON_CALL]
    assert on[0].call_id == answer.call_id
    # not a queue call: nothing answered, nothing filed, nothing left behind
    assert not f.of(d.CallAnswered) and not f.of(d.CallCompleted) and not f.of(d.CallOffered)
    assert f.st.calls == {} and f.st.outbound == {} and f.st.unfiled == {}
    assert f.st.figures("hotline", now=end.at).answered == 0
    assert [v["callback"] for v in f.st.seat_views(end.at)] == [False]


def test_while_it_is_up_the_operator_s_transfer_and_hang_up_reach_the_citizen() -> None:
    parts = frames()
    f = fed(parts[:answered_at(parts) + 1])
    [answer] = f.of(d.OutboundAnswered)
    actions = CtiActions(link=None, state=f.st)  # type: ignore[arg-type]
    seat_channel, citizen, call_id = actions.channels_of("8001")
    assert seat_channel.startswith("PJSIP/8001-") and citizen.startswith("PJSIP/pstn-out-")
    assert call_id == answer.call_id
    [view] = [v for v in f.st.seat_views(T0) if v["seat"] == "8001"]
    assert view["call_id"] == answer.call_id and view["callback"]  # the wall's 实时转写 button, labelled 回拨


@pytest.mark.parametrize("first", ["PJSIP/8001-", "PJSIP/pstn-out-"])
def test_whichever_channel_s_hang_up_comes_first_ends_it(first: str) -> None:
    """Asterisk sends the two Hangups of a callback in either order (the seat hung up in this
    recording; runs of it saw the citizen's Hangup first too): the first one ends the call."""
    parts = frames()
    hangups = [i for i, p in enumerate(parts) if p.startswith(b"Event: Hangup\r\n")]
    assert len(hangups) == 2
    ordered = sorted(hangups, key=lambda i: first.encode() not in parts[i])
    parts[hangups[0]], parts[hangups[1]] = parts[ordered[0]], parts[ordered[1]]
    f = fed(parts)
    [answer], [end] = f.of(d.OutboundAnswered), f.of(d.OutboundEnded)
    assert end.call_id == answer.call_id and end.talk_s == pytest.approx(6.0, abs=0.1)
    assert f.seat_states("8001") == ["ready", "on_call", "wrap_up"]  # its own leg's end releases the seat
    assert f.out.index(end) < f.out.index(f.of(d.SeatStateChanged)[-1])
    assert f.st.outbound == {} and f.st.unfiled == {}


def test_a_citizen_who_does_not_answer_leaves_the_seat_as_it_was() -> None:
    parts = frames()
    i = answered_at(parts)
    parts[i] = parts[i].replace(b"DialStatus: ANSWER", b"DialStatus: NOANSWER")
    cut = [p for p in parts if not p.startswith((b"Event: BridgeEnter", b"Event: BridgeLeave"))]
    f = fed(cut)
    assert not f.of(d.OutboundAnswered) and not f.of(d.OutboundEnded)
    assert f.seat_states("8001") == ["ready"]  # signed in; never on a call, no 话后处理
    with pytest.raises(NotOnCall):
        CtiActions(link=None, state=f.st).channels_of("8001")  # type: ignore[arg-type]


def test_a_bridge_taking_over_mid_callback_follows_it_under_its_own_id() -> None:
    """The seat's channel began the call (its Uniqueid is the call's Linkedid): the new bridge names
    the call by it, as the console and the recording do, and says its end."""
    f = Feed()
    now = T0 + 100
    member = ev.QueueMember(ts=now, queue="hotline", member_name="8001", interface="PJSIP/8001", in_call=True)
    channels = [
        ev.CoreShowChannel(ts=now, channel="PJSIP/8001-00000003", uniqueid="1795344900.900001",
                           linkedid="1795344900.900001", context="hotline-outbound", exten=CITIZEN,
                           application="Dial", bridge_id="b-9", duration="00:00:40"),
        ev.CoreShowChannel(ts=now, channel="PJSIP/pstn-out-00000004", uniqueid="1795344901.4",
                           linkedid="1795344900.900001", application="AppDial", bridge_id="b-9"),
    ]
    res = f.st.resync(members=[member], entries=[], channels=channels, now=now)
    assert res.seats_in_calls == ["8001"] and f.st.seats["8001"].call_id == "1795344900.900001"
    assert f.st.unfiled == {"1795344900.900001": "PJSIP/pstn-out-00000004"}
    out = f.st.handle(ev.Hangup(ts=now + 5, channel="PJSIP/pstn-out-00000004", uniqueid="1795344901.4"))
    [end] = [e for e in out if isinstance(e, d.OutboundEnded)]
    assert (end.call_id, end.number, end.lost, end.talk_s) == ("1795344900.900001", CITIZEN, False, 45.0)


def test_a_callback_that_ended_while_the_link_was_down_is_said_over_at_the_resync() -> None:
    parts = frames()
    f = fed(parts[:answered_at(parts) + 1])
    [answer] = f.of(d.OutboundAnswered)
    member = ev.QueueMember(ts=T0, queue="hotline", member_name="8001", interface="PJSIP/8001")
    res = f.st.resync(members=[member], entries=[], channels=[], now=answer.at + 30)
    [end] = [e for e in res.events if isinstance(e, d.OutboundEnded)]
    assert (end.call_id, end.lost, end.talk_s) == (answer.call_id, True, 30.0)
    assert f.st.outbound == {} and f.st.seats["8001"].state != SeatState.ON_CALL


CONFERENCED = Path(__file__).parent / "transcripts" / "callback_conferenced.ami"
DEPT = "PJSIP/2001-"


def conferenced() -> list[bytes]:
    """A 回访 made three-party (tests/cti/test_asterisk.py records it): the seat 8001 dialled
    13953018888, the operator brought the department 2001 in, the citizen hung up 12 s after answering."""
    return [f + b"\r\n\r\n" for f in CONFERENCED.read_bytes().split(b"\r\n\r\n") if f.strip()]


def test_a_department_brought_into_a_callback_is_a_party_more_and_the_citizen_s_hang_up_ends_it() -> None:
    parts = conferenced()
    f = fed(parts)
    [answer], [end] = f.of(d.OutboundAnswered), f.of(d.OutboundEnded)
    confs = f.of(d.CallConferenced)
    # citizen and operator redirected into the room, then the department originated into it
    assert [c.parties for c in confs] == [1, 2, 3]
    assert {c.call_id for c in confs} == {answer.call_id} and {c.seat for c in confs} == {"8001"}
    assert {c.conference for c in confs} == {f"conf-{answer.call_id}"} and confs[-1].channel.startswith(DEPT)
    # leaving the Dial for the room ended nothing: the seat was on the call throughout
    assert f.out.index(confs[-1]) < f.out.index(end)
    assert f.seat_states("8001") == ["ready", "on_call", "wrap_up"]
    assert (end.call_id, end.lost) == (answer.call_id, False) and end.talk_s == pytest.approx(12.0, abs=0.3)
    assert f.st.outbound == {} and f.st.unfiled == {} and f.st._conf_call == {}
    assert not f.of(d.CallCompleted) and not f.of(d.CallAnswered)  # still not a queue call


def test_in_the_room_the_operator_still_reaches_the_citizen() -> None:
    parts = conferenced()
    joined = [i for i, p in enumerate(parts) if p.startswith(b"Event: ConfbridgeJoin") and DEPT.encode() in p]
    f = fed(parts[:joined[0] + 1])
    [answer] = f.of(d.OutboundAnswered)
    seat_channel, citizen, call_id = CtiActions(link=None, state=f.st).channels_of("8001")  # type: ignore[arg-type]
    assert call_id == answer.call_id and citizen.startswith("PJSIP/pstn-out-")  # the hang-up button's target
    assert f.st.outbound[call_id].conf_channels == {seat_channel, citizen, header(parts[joined[0]], "Channel")}
    [view] = [v for v in f.st.seat_views(T0) if v["seat"] == "8001"]
    assert view["callback"] and view["call_id"] == call_id
