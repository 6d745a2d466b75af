"""Reconciliation after a reconnect: no phantom calls or seats, unknown waiting callers adopted."""

from __future__ import annotations

from cti import domain as d
from cti import events as ev
from cti.domain import SeatState
from tests.cti.test_state import T0, Feed, signed_in


def test_restart_mid_call_no_phantoms(script) -> None:
    signed_in(script, "8001", "8002")
    script.join(0.0, "1.1")
    script.called(0.1, "1.1", "8001", "1.2")
    script.connect(2.0, "1.1", "8001", "1.2", hold_s=2)
    script.join(5.0, "3.1")  # a second caller waiting
    f = Feed()
    f.bytes(script.wire())
    assert len(f.st.calls) == 2
    # Asterisk restarted: no channels, no dynamic members
    res = f.st.resync(members=[], entries=[], channels=[], now=T0 + 30)
    assert sorted(res.calls_dropped) == ["1.1", "3.1"]
    assert f.st.calls == {} and f.st._leg_call == {}
    lost = [e.call for e in res.events if isinstance(e, d.CallCompleted)]
    assert all(r.lost and not r.abandoned for r in lost)
    assert {(s.seat, s.queue) for s in res.seats_to_restore} == {("8001", "hotline"), ("8002", "hotline")}
    assert f.st.seats["8001"].state == SeatState.READY  # not on a call that no longer exists
    # lost calls are not counted as abandoned against the 15 s rule
    fig = f.st.figures("hotline", now=T0 + 31)
    assert (fig.answered, fig.abandoned) == (1, 0)
    # the re-added seats come back through ordinary events: nothing doubles
    f.st.handle(ev.QueueMemberAdded(ts=T0 + 31, queue="hotline", member_name="8001", interface="PJSIP/8001"))
    assert [s["seat"] for s in f.st.seat_views() if s["signed_in"]] == ["8001", "8002"]


def test_resync_keeps_live_calls_and_adopts_unknown_waiting_callers(script) -> None:
    signed_in(script, "8001")
    script.join(0.0, "1.1")
    script.called(0.1, "1.1", "8001", "1.2")
    script.connect(2.0, "1.1", "8001", "1.2", hold_s=2)
    f = Feed()
    f.bytes(script.wire())
    now = T0 + 40
    res = f.st.resync(
        members=[ev.QueueMember(ts=now, queue="hotline", member_name="8001", interface="PJSIP/8001", in_call=True)],
        entries=[ev.QueueEntry(ts=now, queue="hotline", uniqueid="5.1", caller_num="139", wait_s=20)],
        channels=[
            ev.CoreShowChannel(ts=now, uniqueid="1.1"),
            ev.CoreShowChannel(ts=now, uniqueid="1.2"),
            ev.CoreShowChannel(ts=now, uniqueid="5.1"),
        ],
        now=now,
    )
    assert res.calls_dropped == [] and res.calls_adopted == ["5.1"] and res.seats_to_restore == []
    assert f.st.seats["8001"].state == SeatState.ON_CALL
    [offered] = [e for e in res.events if isinstance(e, d.CallOffered)]
    assert offered.resynced and offered.call_id == "5.1"
    [alert] = f.tick(40.0)  # waited 20 s already
    assert alert.call_id == "5.1" and alert.waited_ms == 20000
