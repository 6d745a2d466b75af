"""The call/seat/queue state machines, fed with AMI bytes; no sockets, no sleeps."""

from __future__ import annotations

import doctest

import pytest

import cti.domain
import cti.seats
import cti.state
from cti import domain as d
from cti import events as ev
from cti.domain import CallState, SeatState
from cti.protocol import EventFactory, FrameParser
from cti.state import CtiState
from hotline.bus import to_message

T0 = 1795344882.0  # Script's time origin


class Feed:
    """Bytes → parser → typed events → state; keeps every domain event."""

    def __init__(self, state: CtiState | None = None) -> None:
        self.st = state or CtiState(rule_s=15, wrapup_s=20, clock=lambda: T0)
        self.parser = FrameParser()
        self.factory = EventFactory()
        self.out: list[d.DomainEvent] = []

    def bytes(self, data: bytes) -> list[d.DomainEvent]:
        new: list[d.DomainEvent] = []
        for f in self.parser.feed(data):
            if f.event is None:  # action responses: the link routes those to their futures
                continue
            new += self.st.handle(self.factory.build(f, received=0.0))
        self.out += new
        return new

    def tick(self, t: float) -> list[d.DomainEvent]:
        new = self.st.tick(T0 + t)
        self.out += new
        return new

    def of(self, cls: type) -> list:
        return [e for e in self.out if isinstance(e, cls)]

    def seat_states(self, seat: str) -> list[str]:
        return [e.state for e in self.of(d.SeatStateChanged) if e.seat == seat]


def signed_in(s, *seats: str, t: float = -60.0, queue: str = "hotline") -> None:
    for seat in seats:
        s.member("QueueMemberAdded", t, seat, queue=queue)


@pytest.mark.parametrize("module", [cti.state, cti.seats, cti.domain])
def test_doctests(module) -> None:
    assert doctest.testmod(module).failed == 0


# ---------------------------------------------------------------- recorded real transcripts


def test_recorded_answered_in_time(wire) -> None:
    f = Feed()
    f.bytes(wire.to_wire(wire.load_jsonl(wire.FLOWS)))
    [offered] = f.of(d.CallOffered)
    assert offered.call_id == "1795344882.10" and offered.caller_num == "13800001"
    [pop] = f.of(d.SeatRinging)
    assert pop.seat == "agent1001" and pop.variables["TICKETS"] == "3"
    assert pop.variables["CALLER_NUM"] == "13800001"
    [ans] = f.of(d.CallAnswered)
    assert ans.wait_ms == 3012 and ans.within_rule and ans.seat == "agent1001"  # DialEnd ANSWER, not AgentConnect
    assert not f.of(d.AnswerRuleBreached)
    [done] = f.of(d.CallCompleted)
    r = done.call
    assert (r.seat, r.wait_ms, r.within_rule, r.abandoned) == ("agent1001", 3012, True, False)
    assert r.talk_s == pytest.approx(21.23, abs=0.01)
    assert r.recordings == ("/var/spool/asterisk/monitor/hotline-20261122-105442-1795344882.10.wav",)
    assert f.seat_states("agent1001") == ["ready", "ringing", "on_call", "wrap_up"]
    assert f.st.calls == {}
    fig = f.st.figures("hotline", now=r.ended_at)
    assert (fig.answered, fig.abandoned, fig.pct_within_rule_today, fig.completion_24h) == (
        1,
        0,
        100.0,
        100.0,
    )


def test_recorded_attended_threeway(wire) -> None:
    f = Feed()
    f.bytes(wire.to_wire(wire.load_jsonl(wire.THREE_PARTY)))
    [ans] = f.of(d.CallAnswered)
    assert ans.wait_ms == 2006 and ans.within_rule
    [conf] = f.of(d.CallConferenced)
    assert conf.parties == 3 and conf.conference == "ba3135ab-87e3-4ce7-92c0-014f63130c6b"
    [done] = f.of(d.CallCompleted)
    assert done.call.conference == conf.conference and done.call.seat == "agent1001"
    # the seat's own leg was still up when the transcript ended: it is still on the call
    assert f.st.seats["agent1001"].state == SeatState.ON_CALL


def test_name_split_mid_character_reaches_the_screen_pop(wire, script) -> None:
    signed_in(script, "8001")
    script.join(0.0, "1.1", name="张三")
    script.called(0.2, "1.1", "8001", "1.2")
    data = script.wire()
    cut = data.index("张三".encode()) + 1
    f = Feed()
    f.bytes(data[:cut])
    f.bytes(data[cut:])
    [pop] = f.of(d.SeatRinging)
    assert pop.caller_name == "张三"


# ---------------------------------------------------------------- the 15 s rule


def test_ring_no_answer_then_reassigned_after_15s(script) -> None:
    signed_in(script, "8001", "8002")
    script.join(0.0, "1.1")
    script.called(0.01, "1.1", "8001", "1.2")
    script.ring_no_answer(15.01, "1.1", "8001", "1.2", ring_ms=15000)
    script.called(15.02, "1.1", "8002", "1.3")
    script.connect(18.5, "1.1", "8002", "1.3", hold_s=18)
    data = script.wire()
    f = Feed()
    head, tail = data.split(b"Event: AgentRingNoAnswer")
    f.bytes(head)
    assert f.tick(10.0) == []
    assert f.tick(15.0) == []  # exactly 15 s is still within the rule
    [alert] = f.tick(15.005)
    assert isinstance(alert, d.AnswerRuleBreached) and alert.type == "alert"
    assert alert.seats_rung == ("8001",) and alert.ringing_seat == "8001" and alert.waited_ms == 15005
    f.bytes(b"Event: AgentRingNoAnswer" + tail)
    assert len(f.of(d.AnswerRuleBreached)) == 1  # one alert per call
    [rna] = f.of(d.SeatRingNoAnswer)
    assert rna.seat == "8001" and rna.ring_ms == 15000
    assert [p.seat for p in f.of(d.SeatRinging)] == ["8001", "8002"]
    [ans] = f.of(d.CallAnswered)
    assert (ans.seat, ans.wait_ms, ans.within_rule) == ("8002", 18500, False)
    assert f.seat_states("8001") == ["ready", "ringing", "ready"]
    assert f.seat_states("8002") == ["ready", "ringing", "on_call"]
    fig = f.st.figures("hotline", now=T0 + 30)
    assert (fig.answered, fig.within_rule_today, fig.pct_within_rule_today) == (1, 0, 0.0)


def test_alert_from_the_event_when_no_tick_ran(script) -> None:
    signed_in(script, "8001", "8002")
    script.join(0.0, "1.1")
    script.called(0.01, "1.1", "8001", "1.2")
    script.ring_no_answer(15.01, "1.1", "8001", "1.2", ring_ms=15000)
    f = Feed()
    f.bytes(script.wire())
    [alert] = f.of(d.AnswerRuleBreached)
    assert alert.waited_ms == 15010 and alert.seats_rung == ("8001",)
    assert f.st.calls["1.1"].state == CallState.QUEUED


def test_wait_is_measured_from_timestamps_not_holdtime(script) -> None:
    signed_in(script, "8001")
    script.join(0.0, "1.1")
    script.called(0.4, "1.1", "8001", "1.2")
    script.connect(14.987, "1.1", "8001", "1.2", hold_s=15)  # HoldTime rounds up to 15 s
    f = Feed()
    f.bytes(script.wire())
    [ans] = f.of(d.CallAnswered)
    assert ans.wait_ms == 14987 and ans.within_rule


def test_abandoned_call(script) -> None:
    signed_in(script, "8001")
    script.join(0.0, "1.1", num="13900002")
    script.called(0.1, "1.1", "8001", "1.2")
    script.abandon(8.25, "1.1", hold_s=8)
    script.hangup(8.26, "1.2", "PJSIP/8001-1.2", linked="1.1")
    script.hangup(8.3, "1.1")
    f = Feed()
    f.bytes(script.wire())
    [ab] = f.of(d.CallAbandoned)
    assert ab.wait_ms == 8250 and ab.seats_rung == ("8001",) and ab.caller_num == "13900002"
    [done] = f.of(d.CallCompleted)
    assert done.call.abandoned and done.call.wait_ms == 8250 and done.call.seat == ""
    assert f.seat_states("8001") == ["ready", "ringing", "ready"]  # no wrap-up for a ring
    fig = f.st.figures("hotline", now=T0 + 10)
    assert (fig.abandoned, fig.abandoned_waits_ms_24h, fig.completion_24h) == (1, (8250,), 0.0)


def test_caller_hangs_up_in_queue_without_abandon_event(script) -> None:
    signed_in(script, "8001")
    script.join(0.0, "1.1")
    script.hangup(3.0, "1.1")
    f = Feed()
    f.bytes(script.wire())
    assert [e.wait_ms for e in f.of(d.CallAbandoned)] == [3000]
    assert f.of(d.CallCompleted)[0].call.abandoned


# ---------------------------------------------------------------- who answered, what the citizen said


def test_the_pop_and_the_finished_call_say_who_sits_at_the_seat(script) -> None:
    signed_in(script, "8001", "8002")
    script.join(0.0, "1.1")
    script.called(0.1, "1.1", "8001", "1.2")
    script.ring_no_answer(5.0, "1.1", "8001", "1.2", ring_ms=4900)
    script.called(5.1, "1.1", "8002", "1.3")
    script.connect(7.0, "1.1", "8002", "1.3", hold_s=7)
    script.hangup(20.0, "1.3", "PJSIP/8002-1.3", linked="1.1")
    script.hangup(20.01, "1.1")
    f = Feed()
    f.st.set_operator("8001", "op1024", "017")
    f.st.set_operator("8002", "op1025", "018")
    f.bytes(script.wire())
    assert [(p.seat, p.operator) for p in f.of(d.SeatRinging)] == [("8001", "op1024"), ("8002", "op1025")]
    [done] = f.of(d.CallCompleted)
    assert (done.call.seat, done.call.operator, done.call.job_number) == ("8002", "op1025", "018")
    assert done.call.survey is None and done.call.location == ""  # no survey, no AGI lookup


@pytest.mark.parametrize("digits, score", [("1", 1), ("3", 3), ("7", None), ("", None)])
def test_the_survey_digit_becomes_a_score(digits: str, score: int | None) -> None:
    st = CtiState()
    st.handle(ev.QueueCallerJoin(ts=1.0, queue="hotline", uniqueid="1.1", linkedid="1.1"))
    st.handle(ev.UserEvent(ts=2.0, uniqueid="1.1", user_event="SurveyResult", fields={"Digits": digits}))
    done = st.handle(ev.Hangup(ts=3.0, uniqueid="1.1", linkedid="1.1"))[-1]
    assert isinstance(done, d.CallCompleted) and done.call.survey == score


# ---------------------------------------------------------------- hold


def test_a_call_on_hold_is_followed_and_its_time_on_hold_recorded(script) -> None:
    signed_in(script, "8001")
    script.join(0.0, "1.1")
    script.called(0.1, "1.1", "8001", "1.2")
    script.connect(2.0, "1.1", "8001", "1.2", hold_s=2)
    leg = "PJSIP/8001-1.2"
    script.hold(10.0, "1.2", leg, "1.1")  # the operator presses hold: the citizen hears music
    script.hold(12.0, "1.1", "PJSIP/caller-trunk-1.1", "1.1")  # the citizen's phone holds as well
    script.hold(14.0, "1.2", leg, "1.1", held=False)  # still held by the citizen
    script.hold(15.0, "1.1", "PJSIP/caller-trunk-1.1", "1.1", held=False)
    script.hold(30.0, "1.2", leg, "1.1")
    script.hold(33.5, "1.2", leg, "1.1", held=False)
    script.hold(40.0, "1.2", leg, "1.1")  # held when the citizen hangs up: that spell counts too
    script.complete(42.0, "1.1", "8001", "1.2", talk_s=40)
    script.hangup(42.0, "1.1")
    f = Feed()
    f.bytes(script.wire())
    held = [(e.at - T0, e.held, e.hold_s, str(e.state), e.seat) for e in f.of(d.CallHeld)]
    assert held == [
        (10.0, True, 0.0, "on_hold", "8001"),
        (15.0, False, 5.0, "answered", "8001"),
        (30.0, True, 5.0, "on_hold", "8001"),
        (33.5, False, 8.5, "answered", "8001"),
        (40.0, True, 8.5, "on_hold", "8001"),
    ]
    [done] = f.of(d.CallCompleted)
    assert done.call.hold_s == pytest.approx(10.5)
    assert done.call.talk_s == pytest.approx(40.0)  # the hold is part of the talk time


def test_a_held_phone_that_hangs_up_ends_the_hold_and_strays_are_ignored(script) -> None:
    signed_in(script, "8001")
    script.join(0.0, "1.1")
    script.called(0.1, "1.1", "8001", "1.2")
    script.connect(2.0, "1.1", "8001", "1.2", hold_s=2)
    script.hold(5.0, "1.2", "PJSIP/8001-1.2", "1.1", held=False)  # an Unhold with no Hold (REFER)
    script.hold(6.0, "9.9", "PJSIP/other-9.9", "9.9")  # a channel we do not follow
    script.hold(10.0, "1.2", "PJSIP/8001-1.2", "1.1")
    script.hangup(13.0, "1.2", "PJSIP/8001-1.2", linked="1.1")
    f = Feed()
    f.bytes(script.wire())
    assert [(e.at - T0, e.held, e.hold_s) for e in f.of(d.CallHeld)] == [(10.0, True, 0.0), (13.0, False, 3.0)]
    [view] = f.st.call_views()
    assert view["on_hold"] is False and view["hold_s"] == 3.0
    assert f.st.ignored >= 1


# ---------------------------------------------------------------- transfer and conference


def test_blind_transfer_to_the_specialist_queue(script) -> None:
    signed_in(script, "8001")
    signed_in(script, "9001", queue="hotline_expert")
    script.join(0.0, "1.1")
    script.called(0.1, "1.1", "8001", "1.2")
    script.connect(3.0, "1.1", "8001", "1.2", hold_s=3)
    script.blind_transfer(20.0, "1.1", "8001", "1.2", "expert", "transfer-targets")
    script.complete(20.001, "1.1", "8001", "1.2", talk_s=17, reason="transfer")
    script.hangup(20.01, "1.2", "PJSIP/8001-1.2", linked="1.1")
    script._mk("QueueCallerJoin", 20.05, Queue="hotline_expert", **script.citizen("1.1"))
    script.called(20.1, "1.1", "9001", "1.3", queue="hotline_expert")
    script.connect(24.05, "1.1", "9001", "1.3", hold_s=4, queue="hotline_expert")
    script.hangup(60.0, "1.3", "PJSIP/9001-1.3", linked="1.1")
    script.hangup(60.01, "1.1")
    f = Feed()
    f.st.set_operator("8001", "op1024", "017")
    f.st.set_operator("9001", "expert01", "901")
    f.bytes(script.wire())
    [tr] = f.of(d.CallTransferred)
    assert (tr.seat, tr.target, tr.kind) == ("8001", "expert@transfer-targets", "blind")
    assert [o.queue for o in f.of(d.CallOffered)] == ["hotline", "hotline_expert"]
    assert [(a.seat, a.wait_ms) for a in f.of(d.CallAnswered)] == [("8001", 3000), ("9001", 4000)]
    [done] = f.of(d.CallCompleted)
    r = done.call
    assert (r.seat, r.wait_ms, r.transferred_to, r.queue) == (
        "8001",
        3000,
        "expert@transfer-targets",
        "hotline",
    )
    assert (r.operator, r.job_number) == ("op1024", "017")  # the first answer is the one that counts
    assert f.seat_states("8001")[-1] == "wrap_up"
    assert f.st.figures("hotline_expert", now=T0 + 61).answered == 1
    assert f.st.figures("hotline", now=T0 + 61).answered == 1


def test_three_party_conference_via_confbridge(script) -> None:
    signed_in(script, "8001")
    script.join(0.0, "1.1")
    script.called(0.1, "1.1", "8001", "1.2")
    script.connect(2.0, "1.1", "8001", "1.2", hold_s=2)
    # actions.conference(): Setvar CONFNO, Redirect both legs, Originate the department
    script.complete(10.0, "1.1", "8001", "1.2", talk_s=8, reason="transfer")
    script.conf_join(10.1, "conf-1.1", "1.1", "PJSIP/caller-trunk-1.1", "1.1", marked=True)
    script.conf_join(10.11, "conf-1.1", "1.2", "PJSIP/8001-1.2", "1.1", marked=False)
    script.conf_join(13.0, "conf-1.1", "2.1", "PJSIP/dept2001-2.1", "2.1", marked=False)
    script.conf_leave(40.0, "conf-1.1", "1.1", "PJSIP/caller-trunk-1.1", "1.1")
    script.hangup(40.01, "1.1")
    script.conf_leave(40.02, "conf-1.1", "1.2", "PJSIP/8001-1.2", "1.1")
    script.hangup(40.03, "1.2", "PJSIP/8001-1.2", linked="1.1")
    script.hangup(40.04, "2.1", "PJSIP/dept2001-2.1", linked="2.1")
    data = script.wire()
    f = Feed()
    f.bytes(data[: data.index(b"Conference: conf-1.1")])
    assert f.st.seats["8001"].state == SeatState.ON_CALL  # AgentComplete(transfer) is not the end
    f.bytes(data[data.index(b"Conference: conf-1.1") :])
    assert [c.parties for c in f.of(d.CallConferenced)] == [1, 2, 3]
    assert f.of(d.CallConferenced)[-1].channel == "PJSIP/dept2001-2.1"
    [done] = f.of(d.CallCompleted)
    assert done.call.conference == "conf-1.1" and done.call.talk_s == pytest.approx(38.0, abs=0.01)
    assert f.seat_states("8001") == ["ready", "ringing", "on_call", "wrap_up"]
    assert f.st.seats["8001"].since == pytest.approx(T0 + 40.03)


# ---------------------------------------------------------------- views


def test_queue_view(script) -> None:
    signed_in(script, "8001", "8002", "8003")
    script.member("QueueMemberPause", 1.0, "8003", paused="1", reason="meal")
    script.join(0.0, "1.1")
    script.called(0.1, "1.1", "8001", "1.2")
    script.connect(2.0, "1.1", "8001", "1.2", hold_s=2)
    script.join(10.0, "3.1")
    f = Feed()
    f.bytes(script.wire())
    [q] = f.st.queue_views(now=T0 + 14.5)
    assert q["queue"] == "hotline" and q["waiting"] == 1 and q["longest_wait_s"] == 4.5
    assert (q["seats_ready"], q["seats_busy"], q["seats_on_call"]) == (1, 1, 1)
    assert q["answered"] == 1 and q["pct_within_rule_today"] == 100.0
    calls = {c["call_id"]: c for c in f.st.call_views(now=T0 + 14.5)}
    assert calls["3.1"]["state"] == "queued" and calls["3.1"]["waiting_s"] == 4.5
    assert calls["1.1"]["seat"] == "8001"


def test_domain_messages_are_json_ready(script) -> None:
    import json

    signed_in(script, "8001")
    script.join(0.0, "1.1", name="李四")
    script.called(0.1, "1.1", "8001", "1.2")
    script.hangup(1.0, "1.1")
    f = Feed()
    f.bytes(script.wire())
    msgs = [to_message(e, seq=i) for i, e in enumerate(f.out, 1)]
    types = [m["type"] for m in msgs]
    assert "screen_pop" in types and "seat_update" in types and "call_update" in types
    text = json.dumps(msgs, ensure_ascii=False)
    assert "李四" in text


def test_wrapup_pause_is_not_busy_and_survey_callback_recording(script) -> None:
    signed_in(script, "8001")
    script.join(0.0, "1.1")
    script.called(0.1, "1.1", "8001", "1.2")
    c = script.connect(2.0, "1.1", "8001", "1.2", hold_s=2)
    c["ChanVariable"] = ["HL_UID=1.1", "HL_CALLER=13800001", "HL_RECBASE=hotline-20261123-1.1",
                         "HL_LOCATION=山东省菏泽市"]
    script.hangup(10.0, "1.2", "PJSIP/8001-1.2", linked="1.1")
    # the bridge pauses the seat for 话后处理; Asterisk confirms
    script.member("QueueMemberPause", 10.05, "8001", paused="1", reason="wrapup")
    ue = script._mk(
        "UserEvent",
        14.0,
        base="Newchannel",
        UserEvent="SurveyResult",
        Digits="1",
        Member="PJSIP/8001",
        **script.citizen("1.1"),
    )
    ue["Uniqueid"] = ["1.1", "1.1"]  # the snapshot's header, then the dialplan's
    script.hangup(15.0, "1.1")
    f = Feed()
    f.bytes(script.wire())
    assert f.seat_states("8001")[-1] == "wrap_up"
    [done] = f.of(d.CallCompleted)
    assert done.call.survey == 1
    assert (done.call.recording_base, done.call.location) == ("hotline-20261123-1.1", "山东省菏泽市")
    assert done.call.talk_s == pytest.approx(8.0)  # answer → operator hangs up, not the survey
    assert done.call.recordings == (
        "hotline-20261123-1.1.wav",
        "hotline-20261123-1.1-in.wav",
        "hotline-20261123-1.1-out.wav",
    )
    [back] = f.tick(10.0 + 20.5)
    assert back.state == "ready"  # paused for wrap-up is not 示忙


def test_callback_request_after_queue_timeout(script) -> None:
    signed_in(script, "8001")
    script.join(0.0, "1.1", num="13700000")
    script._mk("QueueCallerLeave", 600.0, Queue="hotline", **script.citizen("1.1", num="13700000"))
    script._mk(
        "UserEvent",
        610.0,
        base="Newchannel",
        UserEvent="CallbackRequest",
        Caller="13700000",
        **script.citizen("1.1", num="13700000"),
    )
    script.hangup(612.0, "1.1")
    f = Feed()
    f.bytes(script.wire())
    [cb] = f.of(d.CallbackRequested)
    assert cb.caller_num == "13700000" and cb.call_id == "1.1"
    [done] = f.of(d.CallCompleted)
    assert done.call.callback_requested and done.call.abandoned


def test_offered_before_the_queue_but_not_for_simulated_local_callers() -> None:
    st = CtiState()
    st.handle(ev.Newchannel(ts=1.0, channel="PJSIP/trunk-in-1", uniqueid="1.1", linkedid="1.1", context="from-trunk"))
    st.handle(
        ev.Newchannel(
            ts=1.0, channel="Local/12345@from-trunk-0001;1", uniqueid="2.1", linkedid="2.1", context="from-trunk"
        )
    )
    st.handle(ev.Newchannel(ts=1.0, channel="PJSIP/8001-2", uniqueid="1.2", linkedid="1.1", context="from-seats"))
    assert [(c["call_id"], c["state"]) for c in st.call_views(now=2.0)] == [("1.1", "offered")]
    [done] = st.handle(ev.Hangup(ts=3.0, channel="PJSIP/trunk-in-1", uniqueid="1.1", linkedid="1.1"))
    assert isinstance(done, d.CallCompleted) and not done.call.abandoned and done.call.queue == ""


# ---------------------------------------------------------------- raw transcripts of the real Asterisk
# recorded by tests/cti/test_asterisk.py with HOTLINE_RECORD_AMI=1 (greeting, responses and all)

TRANSCRIPTS = __import__("pathlib").Path(__file__).parent / "transcripts"


def _real(name: str) -> bytes:
    path = TRANSCRIPTS / f"{name}.ami"
    if not path.exists():
        pytest.skip(f"no recorded transcript {path.name} (HOTLINE_RECORD_AMI=1 pytest -m asterisk tests/cti)")
    return path.read_bytes()


def _frames(data: bytes, name: str) -> list:
    return [f for f in FrameParser().feed(data) if f.event == name]


def test_real_transcript_rung_20s_then_reassigned() -> None:
    data = _real("rung_20s_then_reassigned")
    f = Feed()
    for i in range(0, len(data), 1000):  # TCP-sized reads
        f.bytes(data[i : i + 1000])
    [alert] = f.of(d.AnswerRuleBreached)  # from AgentRingNoAnswer's timestamp, no tick needed
    [rna] = _frames(data, "AgentRingNoAnswer")
    assert alert.seats_rung == (rna["MemberName"],) and 15_000 < alert.waited_ms < 16_500
    [join] = _frames(data, "QueueCallerJoin")
    [conn] = _frames(data, "AgentConnect")
    [pickup] = [x for x in _frames(data, "DialEnd")
                if x["DestUniqueid"] == conn["DestUniqueid"] and x["DialStatus"] == "ANSWER"]
    [ans] = f.of(d.CallAnswered)
    # the operator answered when their leg did (DialEnd), a few ms before AgentConnect
    assert ans.wait_ms == round((float(pickup["Timestamp"]) - float(join["Timestamp"])) * 1000)
    assert float(conn["Timestamp"]) - float(pickup["Timestamp"]) < 0.05
    assert ans.seat == conn["MemberName"] and not ans.within_rule
    [done] = f.of(d.CallCompleted)
    assert done.call.seats_rung == (rna["MemberName"], conn["MemberName"])
    assert done.call.recordings and f.parser.malformed == 0


def test_real_transcript_conference() -> None:
    data = _real("conference_three_party")
    f = Feed()
    f.bytes(data)
    confs = f.of(d.CallConferenced)
    assert [c.parties for c in confs][-1] == 3
    [done] = f.of(d.CallCompleted)
    assert done.call.conference == confs[-1].conference == f"conf-{done.call_id}"
    seat = done.call.seat
    assert f.seat_states(seat)[-1] == "wrap_up"


def test_real_transcript_a_seat_holds_the_call() -> None:
    data = _real("seat_holds_the_call")
    f = Feed()
    for i in range(0, len(data), 1000):
        f.bytes(data[i : i + 1000])
    [hold], [unhold] = _frames(data, "Hold"), _frames(data, "Unhold")
    on, off = f.of(d.CallHeld)
    assert (on.held, off.held, on.call_id) == (True, False, off.call_id)
    assert on.seat == hold["Channel"].removeprefix("PJSIP/").partition("-")[0]
    assert off.hold_s == round(float(unhold["Timestamp"]) - float(hold["Timestamp"]), 1)
    [done] = f.of(d.CallCompleted)
    assert done.call.hold_s == pytest.approx(float(unhold["Timestamp"]) - float(hold["Timestamp"]), abs=0.001)


def test_figures_survive_a_bridge_restart_through_the_call_log(script) -> None:
    signed_in(script, "8001")
    script.join(0.0, "1.1")
    script.called(0.1, "1.1", "8001", "1.2")
    script.connect(4.0, "1.1", "8001", "1.2", hold_s=4)
    script.hangup(9.0, "1.1")
    script.join(10.0, "3.1")
    script.abandon(30.0, "3.1", hold_s=20)
    script.hangup(30.01, "3.1")
    f = Feed()
    f.bytes(script.wire())
    log = [e.call for e in f.of(d.CallCompleted)]
    before = f.st.figures("hotline", now=T0 + 60)
    fresh = CtiState(clock=lambda: T0 + 60)  # the bridge restarted: the call log is all it has
    assert fresh.seed_history(log) == 2
    assert fresh.figures("hotline") == before
    assert (before.answered, before.abandoned, before.completion_24h) == (1, 1, 50.0)


def test_asterisk_shutdown_hangups_are_lost_not_abandoned(script) -> None:
    signed_in(script, "8001")
    script.join(0.0, "1.1")
    script.called(0.1, "1.1", "8001", "1.2")
    script.connect(2.0, "1.1", "8001", "1.2", hold_s=2)
    script.join(5.0, "3.1")
    script.events.append(
        {"Event": "Shutdown", "Privilege": "system,all", "Shutdown": "Cleanly", "Restart": "False", "_wall": T0 + 9.0}
    )
    script.hangup(9.1, "1.2", "PJSIP/8001-1.2", linked="1.1")
    script.hangup(9.2, "1.1")
    script.hangup(9.3, "3.1")
    f = Feed()
    f.bytes(script.wire())
    assert not f.of(d.CallAbandoned)
    records = {e.call.call_id: e.call for e in f.of(d.CallCompleted)}
    assert records["3.1"].lost and not records["3.1"].abandoned
    assert records["1.1"].lost and records["1.1"].seat == "8001"  # answered, cut by the stop
    fig = f.st.figures("hotline", now=T0 + 10)
    assert (fig.answered, fig.abandoned) == (1, 0)
    f.st.resync([], [], [], now=T0 + 20)  # the new Asterisk: hang-ups are the citizens' again
    assert f.st._shutting_down is False


def test_shutdown_softhangups_come_first_then_abandon_and_hangup(script) -> None:
    # the order a `core stop now` really produces (recorded on Asterisk 22)
    signed_in(script, "8001")
    script.join(0.0, "3.1")
    script._mk("SoftHangupRequest", 9.0, base="Newchannel", Cause="4", **script.citizen("3.1"))
    script.abandon(9.01, "3.1", hold_s=9)
    script.hangup(9.02, "3.1")
    f = Feed()
    f.bytes(script.wire())
    assert not f.of(d.CallAbandoned)
    [done] = f.of(d.CallCompleted)
    assert done.call.lost and not done.call.abandoned
    assert f.st.figures("hotline", now=T0 + 10).abandoned == 0


def test_an_announcement_before_the_bridge_does_not_count_as_waiting() -> None:
    """The job number is played after the operator picks up and before AgentConnect: the 15 s rule
    judges the pick-up (DialEnd ANSWER on the seat's leg), and no alert fires meanwhile."""
    from cti import events as ev
    from cti.state import CtiState

    t0 = 1_800_000_000.0
    st = CtiState(clock=lambda: t0)
    citizen = {"channel": "PJSIP/trunk-in-1", "uniqueid": "c.1", "caller_num": "13953012345"}
    leg = {"dest_channel": "PJSIP/8001-1", "dest_uniqueid": "s.1"}
    seat = {"queue": "hotline", "interface": "PJSIP/8001", "member_name": "8001"}
    st.handle(ev.QueueMemberAdded(ts=t0 - 60, queue="hotline", member_name="8001", interface="PJSIP/8001"))
    st.handle(ev.QueueCallerJoin(ts=t0, queue="hotline", **citizen))
    st.handle(ev.AgentCalled(ts=t0 + 0.1, **citizen, **leg, **seat))
    st.handle(ev.DialEnd(ts=t0 + 12.0, **citizen, **leg, dial_status="ANSWER"))
    assert st.tick(t0 + 16.0) == []  # picked up at 12 s: the announcement runs, nobody is waiting
    [answered] = [e for e in st.handle(ev.AgentConnect(ts=t0 + 17.5, **citizen, **leg, **seat))
                  if isinstance(e, d.CallAnswered)]
    assert answered.wait_ms == 12_000 and answered.within_rule
