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


def test_a_seat_another_bridge_paused_for_wrap_up_is_unpaused_when_its_wrap_up_is_over() -> None:
    """The active bridge died while a seat was in 话后处理 (paused in Asterisk): the bridge that takes
    over finds the pause, lets the wrap-up run its course from the seat's last call, then ends it."""
    f = Feed()  # a fresh bridge: it knows nothing of the seats yet
    now = T0 + 100
    paused = ev.QueueMember(ts=now, queue="hotline", member_name="8001", interface="PJSIP/8001", paused=True,
                            paused_reason="wrapup", last_call=int(now) - 10)
    busy = ev.QueueMember(ts=now, queue="hotline", member_name="8002", interface="PJSIP/8002", paused=True,
                          paused_reason="就餐")
    res = f.st.resync(members=[paused, busy], entries=[], channels=[], now=now)
    assert f.st.seats["8001"].state == SeatState.WRAP_UP and f.st.seats["8002"].state == SeatState.BUSY
    assert res.seats_to_restore == []
    assert f.st.tick(now + 9) == []  # the 20 s wrap-up counts from the last call, 10 s ago: not over yet
    [over] = [e for e in f.st.tick(now + 10) if isinstance(e, d.SeatStateChanged)]
    assert (over.seat, over.previous, over.state) == ("8001", SeatState.WRAP_UP, SeatState.READY)
    assert f.st.seats["8002"].state == SeatState.BUSY  # a pause of the operator's own stays


def test_a_wrap_up_pause_long_over_ends_at_the_next_tick() -> None:
    f = Feed()
    now = T0 + 100
    old = ev.QueueMember(ts=now, queue="hotline", member_name="8001", interface="PJSIP/8001", paused=True,
                         paused_reason="wrapup", last_call=int(now) - 3600)
    f.st.resync(members=[old], entries=[], channels=[], now=now)
    [over] = [e for e in f.st.tick(now + 1) if isinstance(e, d.SeatStateChanged)]
    assert over.previous == SeatState.WRAP_UP and over.state == SeatState.READY


def test_a_bridge_taking_over_mid_call_shows_the_seat_on_call_and_starts_its_wrap_up_after() -> None:
    """The active bridge died while 8001 talked to a citizen: the new one finds the two channels in
    one bridge (CoreShowChannels) and the seat busy, so the wall shows it on a call and the seat's
    hang-up starts 话后处理. The call itself is the witness's to file (from CEL, with its real times):
    the bridge, which never saw it queued or answered, files nothing."""
    f = Feed()  # a fresh bridge
    now = T0 + 100
    member = ev.QueueMember(ts=now, queue="hotline", member_name="8001", interface="PJSIP/8001", in_call=True)
    other = ev.QueueMember(ts=now, queue="hotline", member_name="8002", interface="PJSIP/8002")
    channels = [
        ev.CoreShowChannel(ts=now, channel="PJSIP/citizen-00000007", uniqueid="ast1-1795344900.7",
                           linkedid="ast1-1795344900.7", application="Queue", bridge_id="b-1"),
        ev.CoreShowChannel(ts=now, channel="PJSIP/8001-00000008", uniqueid="ast1-1795344905.8",
                           linkedid="ast1-1795344900.7", application="AppQueue", bridge_id="b-1"),
        # 8002's phone is up but in no bridge (ringing, or dialling out): not on a call
        ev.CoreShowChannel(ts=now, channel="PJSIP/8002-00000009", uniqueid="ast1-1795344990.9",
                           linkedid="ast1-1795344990.9"),
    ]
    res = f.st.resync(members=[member, other], entries=[], channels=channels, now=now)
    assert res.calls_adopted == [] and f.st.calls == {} and res.seats_in_calls == ["8001"]
    assert f.st.unfiled == {"ast1-1795344900.7": "PJSIP/citizen-00000007"}  # for its call control
    assert f.st.seats["8001"].state == SeatState.ON_CALL and f.st.seats["8001"].call_id == "ast1-1795344900.7"
    assert f.st.seats["8002"].state == SeatState.READY
    # the operator hangs up: 话后处理, as after any call
    out = f.st.handle(ev.Hangup(ts=now + 30, channel="PJSIP/8001-00000008", uniqueid="ast1-1795344905.8"))
    [changed] = [e for e in out if isinstance(e, d.SeatStateChanged)]
    assert (changed.previous, changed.state) == (SeatState.ON_CALL, SeatState.WRAP_UP)
    # the citizen's channel ends: nothing filed here (the witness does it from CEL)
    out = f.st.handle(ev.Hangup(ts=now + 35, channel="PJSIP/citizen-00000007", uniqueid="ast1-1795344900.7"))
    assert not [e for e in out if isinstance(e, d.CallCompleted)]
    assert f.st.unfiled == {}


def taken_over_mid_call(f: Feed, now: float, call: str, leg: str) -> None:
    """A bridge that takes over finds 8001 talking: the citizen (``call``) and the seat's leg in one bridge."""
    member = ev.QueueMember(ts=now, queue="hotline", member_name="8001", interface="PJSIP/8001", in_call=True)
    channels = [
        ev.CoreShowChannel(ts=now, channel="PJSIP/citizen-00000007", uniqueid=call, linkedid=call,
                           application="Queue", bridge_id="b-1"),
        ev.CoreShowChannel(ts=now, channel="PJSIP/8001-00000008", uniqueid=leg, linkedid=call,
                           application="AppQueue", bridge_id="b-1"),
    ]
    f.st.resync(members=[member], entries=[], channels=channels, now=now)


def test_a_call_found_at_a_takeover_that_ended_while_the_link_was_down_is_forgotten() -> None:
    f = Feed()
    now = T0 + 100
    member = ev.QueueMember(ts=now, queue="hotline", member_name="8001", interface="PJSIP/8001", in_call=True)
    taken_over_mid_call(f, now, "c.7", "c.8")
    assert f.st.seats["8001"].call_id == "c.7"
    f.st.resync(members=[member], entries=[], channels=[], now=now + 60)  # its Hangup was never heard
    assert f.st.unfiled == {} and f.st.seats["8001"].state != SeatState.ON_CALL
