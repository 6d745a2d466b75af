"""The seats: derived states, wrap-up, busy reasons, sign-outs, who sits where; fed with AMI bytes."""

from __future__ import annotations

import pytest

from cti import domain as d
from cti import events as ev
from cti.domain import SeatState
from tests.cti.test_state import T0, Feed, signed_in


def test_wrap_up_countdown_then_ready_and_early_end(script) -> None:
    signed_in(script, "8001")
    script.join(0.0, "1.1")
    script.called(0.1, "1.1", "8001", "1.2")
    script.connect(2.0, "1.1", "8001", "1.2", hold_s=2)
    script.complete(30.0, "1.1", "8001", "1.2", talk_s=28)
    script.hangup(30.001, "1.2", "PJSIP/8001-1.2", linked="1.1")
    script.hangup(30.002, "1.1")
    f = Feed()
    f.bytes(script.wire())
    seat = f.st.seats["8001"]
    assert seat.state == SeatState.WRAP_UP and seat.wrapup_until == pytest.approx(T0 + 50.001)
    [v] = f.st.seat_views(now=T0 + 40)
    assert v["state"] == "wrap_up" and v["wrapup_remaining_s"] == pytest.approx(10.0, abs=0.01)
    assert f.tick(45) == []
    [back] = f.tick(50.5)
    assert (back.seat, back.state, back.previous) == ("8001", "ready", "wrap_up")
    # the next call; this time the operator ends 话后处理 early
    f.st.handle(ev.AgentCalled(ts=T0 + 60, uniqueid="1.1", member_name="8001"))  # unknown call: ignored
    assert f.st.ignored == 1
    f.st.seats["8001"].wrapup_until = T0 + 100
    f.st.seats["8001"].state = SeatState.WRAP_UP
    [early] = f.st.end_wrapup("8001", now=T0 + 62)
    assert (early.state, early.previous) == ("ready", "wrap_up")
    assert f.st.end_wrapup("8001", now=T0 + 63) == []


def test_busy_with_reason_and_pause_during_call(script) -> None:
    signed_in(script, "8001")
    script.member("QueueMemberPause", 1.0, "8001", paused="1", reason="meal")
    script.member("QueueMemberPause", 2.0, "8001", paused="0")
    script.join(3.0, "1.1")
    script.called(3.1, "1.1", "8001", "1.2")
    script.connect(4.0, "1.1", "8001", "1.2", hold_s=1)
    script.member("QueueMemberPause", 5.0, "8001", paused="1", reason="training")
    script.hangup(9.0, "1.2", "PJSIP/8001-1.2", linked="1.1")
    script.hangup(9.001, "1.1")
    f = Feed()
    f.bytes(script.wire())
    changes = [(e.state, e.reason) for e in f.of(d.SeatStateChanged)]
    assert changes == [
        ("ready", ""),
        ("busy", "meal"),
        ("ready", ""),
        ("ringing", ""),
        ("on_call", ""),  # pausing during a call does not cut it
        ("wrap_up", ""),
    ]
    [after] = f.tick(9.0 + 20.5)
    assert (after.state, after.reason) == ("busy", "training")


def test_sign_out(script) -> None:
    signed_in(script, "8001")
    script.member("QueueMemberRemoved", 1.0, "8001")
    f = Feed()
    f.bytes(script.wire())
    assert f.seat_states("8001") == ["ready", "signed_out"]
    assert f.st.seat_views()[0]["signed_in"] is False


def test_who_sits_where_follows_operators_sign_ins_and_sign_outs(wire) -> None:
    f = Feed()
    f.st.set_operator("8001", "op1024")
    assert f.st.operator_seats() == {}  # an operator at a seat that is not signed in sits nowhere
    sign_ins = wire.Script()
    signed_in(sign_ins, "8001", "8002")
    f.bytes(sign_ins.wire())
    assert f.st.operator_seats() == {"op1024": "8001"}  # 8002 has no operator
    f.st.set_operator("8002", "op1025")
    seats = f.st.operator_seats()
    assert seats == {"op1024": "8001", "op1025": "8002"}
    assert f.st.operator_seats() is seats  # unchanged roster: the same map, not rebuilt per question
    signed_out = wire.Script()
    signed_out.member("QueueMemberRemoved", 1.0, "8001")
    f.bytes(signed_out.wire())
    assert f.st.operator_seats() == {"op1025": "8002"}


def test_a_signed_in_seat_whose_phone_goes_away_and_comes_back(script) -> None:
    # a browser phone without its microphone never registers: Asterisk says UNAVAILABLE (5) from the
    # sign-in; then the phone registers (NOT_INUSE, 1), rings (6), and its network drops (5 again)
    script.member("QueueMemberAdded", 0.0, "8009", status="5")
    script.member("QueueMemberAdded", 0.1, "8009", queue="hotline_expert", status="5")  # said again: one event
    script.member("QueueMemberStatus", 5.0, "8009", status="1")
    script.member("QueueMemberStatus", 6.0, "8009", status="6")
    script.member("QueueMemberStatus", 9.0, "8009", status="5")
    f = Feed()
    f.bytes(script.wire())
    changes = [(e.seat, e.reachable, e.signed_in, round(e.at - T0, 1)) for e in f.of(d.SeatPhoneChanged)]
    assert changes == [("8009", False, True, 0.0), ("8009", True, True, 5.0), ("8009", False, True, 9.0)]
    [view] = f.st.seat_views()
    assert view["phone_reachable"] is False and view["state"] == "ready"  # signed in, but rung by no call
