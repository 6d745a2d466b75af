"""Call-control actions: exact AMI actions sent, rules checked first, state used for channels."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from panoramisk.message import Message

from cti import events as ev
from cti.actions import ActionFailed, CtiActions, Dialplan, NotOnCall, RuleViolation
from cti.resync import SeatToRestore
from cti.rules import parse_shifts
from tests.cti.test_resync import taken_over_mid_call
from tests.cti.test_state import Feed

BJ = ZoneInfo("Asia/Shanghai")
NOON = dt.datetime(2026, 11, 23, 12, 0, tzinfo=BJ).timestamp()
SHIFT_START = dt.datetime(2026, 11, 23, 8, 10, tzinfo=BJ).timestamp()
SHIFTS = parse_shifts(["08:00-16:00", "16:00-24:00", "00:00-08:00"])


class FakeLink:
    def __init__(self) -> None:
        self.sent: list[dict] = []
        self.fail: dict[str, str] = {}

    async def send(self, action: dict, *, as_list: bool | None = False):
        assert as_list is False  # QueueAdd & co. never resolve otherwise (panoramisk 1.4)
        self.sent.append(action)
        if action["Action"] in self.fail:
            return Message({"Response": "Error", "Message": self.fail[action["Action"]]})
        return Message({"Response": "Success", "Message": "ok"})


@pytest.fixture
def on_call(wire):
    s = wire.Script()
    s.member("QueueMemberAdded", -60, "8001")
    s.join(0.0, "1.1")
    s.called(0.1, "1.1", "8001", "1.2")
    s.connect(2.0, "1.1", "8001", "1.2", hold_s=2)
    f = Feed()
    f.bytes(s.wire())
    return f.st


def make(state, now: float = NOON) -> tuple[CtiActions, FakeLink]:
    link = FakeLink()
    clock = {"t": now}
    acts = CtiActions(link, state, shifts=SHIFTS, clock=lambda: clock["t"], settle_s=0,
                      dialplan=Dialplan(department_lines=("2001", "2002")))
    acts._clock_box = clock  # type: ignore[attr-defined]
    return acts, link


async def test_sign_in_and_out_with_handover(on_call) -> None:
    acts, link = make(on_call)
    published: list = []
    acts.publish = published.extend
    await acts.sign_out("8001")
    acts._clock_box["t"] += 12
    r = await acts.sign_in("8002", operator="op1017", job_number="017")
    assert link.sent[0] == {"Action": "QueueRemove", "Queue": "hotline", "Interface": "PJSIP/8001"}
    assert link.sent[1] == {
        "Action": "QueueAdd",
        "Queue": "hotline",
        "Interface": "PJSIP/8002",
        "MemberName": "8002",
        "StateInterface": "PJSIP/8002",
        "Penalty": "0",
    }
    assert r.handover is not None and r.handover.ok and r.handover.gap_s == 12
    [m] = published
    assert (m.from_seat, m.to_seat, m.gap_s, m.ok, m.type) == ("8001", "8002", 12.0, True, "seat_update")
    assert (on_call.seats["8002"].operator, on_call.seats["8002"].job_number) == ("op1017", "017")


async def test_busy_in_the_first_30_minutes_needs_approval(on_call) -> None:
    acts, link = make(on_call, now=SHIFT_START)
    with pytest.raises(RuleViolation, match="first 30 min"):
        await acts.busy("8001", "meal")
    with pytest.raises(RuleViolation):
        await acts.sign_out("8001")
    assert link.sent == []  # nothing left for Asterisk
    r = await acts.busy("8001", "toilet", approved_by="lead01")
    assert r.decision is not None and r.decision.approved_by == "lead01"
    assert link.sent == [{"Action": "QueuePause", "Interface": "PJSIP/8001", "Paused": "true", "Reason": "toilet"}]
    await acts.ready("8001")
    assert link.sent[-1] == {"Action": "QueuePause", "Interface": "PJSIP/8001", "Paused": "false"}


async def test_three_party_conference_recipe(on_call) -> None:
    acts, link = make(on_call)
    r = await acts.conference("8001", "2001")
    assert r.detail == "conf-1.1"
    names = [a["Action"] for a in link.sent]
    assert names == ["Setvar", "Setvar", "Redirect", "Originate"]
    assert {a["Channel"] for a in link.sent[:2]} == {"PJSIP/caller-trunk-1.1", "PJSIP/8001-1.2"}
    assert all(a["Variable"] == "HL_CONF" and a["Value"] == "conf-1.1" for a in link.sent[:2])
    red = link.sent[2]
    assert (red["Channel"], red["Exten"], red["ExtraChannel"], red["ExtraExten"]) == (
        "PJSIP/caller-trunk-1.1",
        "citizen",
        "PJSIP/8001-1.2",
        "member",
    )
    assert red["Context"] == red["ExtraContext"] == "hotline-conf"
    org = link.sent[3]
    assert (org["Channel"], org["Context"], org["Exten"], org["Variable"]) == (
        "PJSIP/2001",
        "hotline-conf",
        "member",
        ["HL_CONF=conf-1.1", "HL_UID=1.1"],
    )


async def test_a_department_without_a_sip_line_is_brought_in_on_its_directory_phone(on_call) -> None:
    """三方 with a department that has only a phone in the directory: rung on the trunk, as a transfer
    to it is (hotline-transfer), not as a SIP endpoint of that name (which does not exist)."""
    acts, link = make(on_call)
    await acts.conference("8001", "05305551234")
    org = link.sent[-1]
    assert (org["Action"], org["Channel"], org["Exten"]) == ("Originate", "PJSIP/05305551234@pstn-out", "member")
    assert acts.department_channel("2002") == "PJSIP/2002"


async def test_transfers_and_hangup(on_call) -> None:
    acts, link = make(on_call)
    await acts.transfer_to_specialist("8001")
    await acts.transfer_to_department("8001", "2003")
    await acts.hangup_seat_call("8001")
    assert link.sent[0] == {
        "Action": "BlindTransfer",
        "Channel": "PJSIP/8001-1.2",
        "Context": "hotline-transfer",
        "Exten": "expert",
    }
    assert link.sent[1]["Exten"] == "2003"
    assert link.sent[2]["Action"] == "Hangup" and link.sent[2]["Channel"] == "PJSIP/8001-1.2"
    # recording is the dialplan's: the AMI MixMonitor action would need the `system` class
    assert not hasattr(acts, "start_recording")


def test_callbacks_go_out_through_a_context_no_phone_dials() -> None:
    assert Dialplan().callback_context == "hotline-outbound"  # not from-seats, the phones' context


async def test_not_on_call_and_ami_errors(on_call) -> None:
    acts, link = make(on_call)
    with pytest.raises(NotOnCall):
        await acts.conference("8009", "2001")
    link.fail["BlindTransfer"] = "Channel not found"
    with pytest.raises(ActionFailed, match="Channel not found"):
        await acts.transfer_to_specialist("8001")


async def test_a_call_begun_before_a_takeover_is_transferred_conferenced_and_hung_up() -> None:
    """The bridge that took over never saw this call queued or answered (it files nothing for it),
    but the operator talking on it still transfers it, brings a department in, and hangs up: the
    channels are the ones Asterisk listed at the resync."""
    f = Feed()
    now = NOON
    taken_over_mid_call(f, now, "ast1-1.7", "ast1-1.8")
    assert f.st.bridged == {"ast1-1.7": "b-1", "ast1-1.8": "b-1"}  # as Asterisk listed them: no wait
    acts, link = make(f.st)
    await acts.transfer_to_department("8001", "2003")
    await acts.conference("8001", "2001")
    await acts.hangup_seat_call("8001")
    transfer, *conf, hangup = link.sent
    assert (transfer["Action"], transfer["Channel"]) == ("BlindTransfer", "PJSIP/8001-00000008")
    redirect = next(a for a in conf if a["Action"] == "Redirect")
    assert (redirect["Channel"], redirect["ExtraChannel"]) == ("PJSIP/citizen-00000007", "PJSIP/8001-00000008")
    assert any(a.get("Value") == "conf-ast1-1.7" for a in conf if a["Action"] == "Setvar")
    assert (hangup["Action"], hangup["Channel"]) == ("Hangup", "PJSIP/8001-00000008")
    # the citizen hangs up: the call is over, and nothing is left to act on
    f.st.handle(ev.Hangup(ts=now + 40, channel="PJSIP/8001-00000008", uniqueid="ast1-1.8"))
    f.st.handle(ev.Hangup(ts=now + 41, channel="PJSIP/citizen-00000007", uniqueid="ast1-1.7"))
    assert f.st.unfiled == {}
    with pytest.raises(NotOnCall):
        await acts.hangup_seat_call("8001")


async def test_callback_and_restore_and_dialplan_names(on_call) -> None:
    link = FakeLink()
    acts = CtiActions(link, on_call, dialplan=Dialplan(callback_context="cb", hotline_number="12319"), settle_s=0)
    first = await acts.originate_callback("8001", "13800001", call_id="1.1")
    second = await acts.originate_callback("8001", "13800002")
    o = link.sent[0]
    assert (o["Channel"], o["Context"], o["Exten"], o["Async"]) == ("PJSIP/8001", "cb", "13800001", "true")
    assert o["CallerID"] == "12319 <12319>" and "HL_CALLBACK_OF=1.1" in o["Variable"]
    # the call's own id (the seat channel's Uniqueid, its recording's tail), known before it rings
    assert o["ChannelId"] == first.call_id and first.call_id != second.call_id
    assert re.fullmatch(r"\d+\.9\d{5}", first.call_id)
    named = CtiActions(link, on_call, dialplan=Dialplan(system_name="ast2"), settle_s=0)
    assert re.fullmatch(r"ast2-\d+\.9\d{5}", named.new_call_id())  # as that server's own uniqueids
    link.sent.pop()
    await acts.restore([SeatToRestore("8002", "PJSIP/8002", "hotline", True, "meal")])
    assert link.sent[1] == {
        "Action": "QueueAdd",
        "Queue": "hotline",
        "Interface": "PJSIP/8002",
        "MemberName": "8002",
        "StateInterface": "PJSIP/8002",
        "Paused": "true",
        "Reason": "meal",
    }


async def test_one_seat_asterisk_refuses_to_re_add_does_not_keep_the_others_out(on_call, caplog) -> None:
    link = FakeLink()
    acts = CtiActions(link, on_call, settle_s=0)
    refused = {"8002"}
    real_send = link.send

    async def send(action: dict, *, as_list: bool | None = False):
        if action.get("MemberName") in refused:
            return Message({"Response": "Error", "Message": "Unable to add interface: Already there"})
        return await real_send(action, as_list=as_list)

    link.send = send  # type: ignore[method-assign]
    done = await acts.restore(
        [SeatToRestore(seat, f"PJSIP/{seat}", "hotline", False, "") for seat in ("8002", "8003", "8004")]
    )
    assert [r.detail for r in done] == ["8003", "8004"]
    assert [a["MemberName"] for a in link.sent] == ["8003", "8004"]
    assert "8002 not re-added" in caplog.text and "Already there" in caplog.text


async def test_sign_in_returns_once_the_state_shows_the_seat_in_its_queue(wire) -> None:
    # Asterisk replies to QueueAdd before it publishes QueueMemberAdded: the action waits for the
    # event so that whoever signed in finds the seat signed in when it returns.
    f = Feed()
    link = FakeLink()
    acts = CtiActions(link, f.st, settle_s=5)
    s = wire.Script()
    s.member("QueueMemberAdded", 0.0, "8003")

    async def event_arrives_later() -> None:
        await asyncio.sleep(0.2)
        f.bytes(s.wire())

    late = asyncio.create_task(event_arrives_later())
    started = time.monotonic()
    await acts.sign_in("8003", operator="op1")
    assert f.st.seats["8003"].signed_in and 0.15 <= time.monotonic() - started < 2
    await late


async def test_an_action_whose_event_never_comes_returns_after_the_settle_time(on_call) -> None:
    acts = CtiActions(FakeLink(), on_call, settle_s=0.1)
    started = time.monotonic()
    await acts.sign_out("8001")  # no QueueMemberRemoved follows: the reply alone stands
    assert 0.1 <= time.monotonic() - started < 1


TRANSCRIPTS = Path(__file__).resolve().parents[1] / "fixtures" / "ami"


async def test_a_transfer_clicked_before_asterisk_bridges_the_call_goes_once_it_has() -> None:
    """Our Asterisk's own bytes (recorded by the real-Asterisk transfer test): AgentConnect (the
    console's 通话中) comes before Asterisk bridges the seat's leg to the citizen. A 转专家 sent in
    between is refused ("Transfer invalid", CI of 2026-12-04 on a loaded box); it waits for the seat's
    BridgeEnter instead, and goes the moment the state has it."""
    data = (TRANSCRIPTS / "test_blind_transfer_to_the_specialist_queue.ami").read_bytes()
    frames = [f + b"\r\n\r\n" for f in data.split(b"\r\n\r\n") if f.strip()]
    connect = next(i for i, f in enumerate(frames) if f.startswith(b"Event: AgentConnect"))
    seat_enters = next(i for i, f in enumerate(frames) if f.startswith(b"Event: BridgeEnter") and b"PJSIP/8001-" in f)
    f = Feed()
    for frame in frames[: connect + 1]:
        f.bytes(frame)
    seat = f.st.seats["8001"]
    assert seat.activity == "on_call" and seat.channel_uid not in f.st.bridged
    link = FakeLink()
    acts = CtiActions(link, f.st, settle_s=5)
    transfer = asyncio.create_task(acts.transfer_to_specialist("8001"))
    await asyncio.sleep(0.1)
    assert not link.sent  # not yet: Asterisk would refuse it
    for frame in frames[connect + 1 : seat_enters + 1]:
        f.bytes(frame)
    started = time.monotonic()
    result = await transfer
    assert time.monotonic() - started < 0.5 and result.action == "transfer"
    assert [(a["Action"], a["Channel"]) for a in link.sent] == [("BlindTransfer", seat.channel)]
    for frame in frames[seat_enters + 1 :]:  # the transfer, the citizen's leave, hang-ups: nothing left bridged
        f.bytes(frame)
    assert not f.st.bridged


async def test_a_call_never_seen_bridged_is_transferred_after_the_wait_and_asterisk_answers(on_call) -> None:
    # no BridgeEnter came (lost, say): the action does not hang; Asterisk's answer stands
    acts = CtiActions(FakeLink(), on_call, settle_s=0.1)
    acts.link.fail["BlindTransfer"] = "Transfer invalid"  # type: ignore[attr-defined]
    started = time.monotonic()
    with pytest.raises(ActionFailed, match="Transfer invalid"):
        await acts.transfer_to_specialist("8001")
    assert 0.1 <= time.monotonic() - started < 1


async def test_a_department_is_brought_in_once_the_call_is_bridged(on_call) -> None:
    acts, link = make(on_call)
    acts.settle_s = 5
    conference = asyncio.create_task(acts.conference("8001", "2001"))
    await asyncio.sleep(0.1)
    assert not link.sent
    on_call.handle(ev.BridgeEnter(ts=NOON, channel="PJSIP/8001-1.2", uniqueid="1.2", bridge_uniqueid="b-1"))
    started = time.monotonic()
    await conference
    assert time.monotonic() - started < 1  # released by the BridgeEnter, not by the 5 s wait running out
    assert [a["Action"] for a in link.sent] == ["Setvar", "Setvar", "Redirect", "Originate"]


async def test_a_transfer_waiting_for_the_bridge_is_not_carried_to_the_seat_s_next_call(on_call) -> None:
    acts, link = make(on_call)
    acts.settle_s = 5
    transfer = asyncio.create_task(acts.transfer_to_specialist("8001"))
    await asyncio.sleep(0.05)
    on_call.handle(ev.Hangup(ts=NOON, channel="PJSIP/8001-1.2", uniqueid="1.2"))  # the call ends first
    with pytest.raises(NotOnCall):
        await transfer
    assert not link.sent
