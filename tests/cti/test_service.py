"""The wired bridge against the fake AMI server: events → state → bus (and its listeners); resync."""

from __future__ import annotations

import asyncio
import time

import pytest

from cti import domain as d
from cti.service import CtiService
from hotline.bus import Envelope
from hotline.calls import FinishedCall
from tests.cti.fake_ami import FakeAmi
from tests.cti.test_link import Probe

pytestmark = pytest.mark.timeout(30)


def make(fake: FakeAmi, finished: list[FinishedCall] | None = None) -> CtiService:
    svc = CtiService(
        host="127.0.0.1",
        port=fake.port,
        username="hotline",
        secret="pw",
        tick_s=0.05,
        link_options={"ping_interval": 0.3, "ping_timeout": 0.3, "backoff": (0.05, 0.2)},
    )
    if finished is not None:

        def call_log(env: Envelope) -> None:  # as the call-log writer follows the bridge: a listener on its bus
            if isinstance(env.event, d.CallCompleted):
                finished.append(env.event.call)

        svc.bus.add_listener(call_log)
    return svc


async def test_a_call_flows_to_bus_views_and_call_log(fake: FakeAmi, wire) -> None:
    records: list[FinishedCall] = []
    svc = make(fake, records)
    await svc.start(wait=5)
    sub = svc.bus.subscribe()
    try:
        s = wire.Script(t0=svc.clock())
        s.member("QueueMemberAdded", 0.0, "8001")
        s.join(0.1, "1.1", name="赵六")
        s.called(0.2, "1.1", "8001", "1.2")
        await fake.push(s.wire(greeting=False))
        await Probe().wait(lambda: svc.seats() and svc.seats()[0]["state"] == "ringing")
        [q] = [q for q in svc.queues() if q["queue"] == "hotline"]
        assert q["waiting"] == 1
        assert [c["caller_name"] for c in svc.calls()] == ["赵六"]
        s2 = wire.Script(t0=s.t0)
        s2.connect(2.0, "1.1", "8001", "1.2", hold_s=2)
        s2.hangup(9.0, "1.2", "PJSIP/8001-1.2", linked="1.1")
        s2.hangup(9.01, "1.1")
        await fake.push(s2.wire(greeting=False))
        await Probe().wait(lambda: records)
        assert records[0].seat == "8001" and records[0].wait_ms == 1900 and records[0].caller_name == "赵六"
        types = []
        while not sub._q.empty():
            env = await sub.__anext__()
            types.append(env.message()["type"])
        assert "screen_pop" in types and "seat_update" in types and "call_update" in types
        seqs = [e.seq for e in (await svc.bus.replay(0, svc.bus.epoch)).envelopes]
        assert seqs == list(range(1, len(seqs) + 1))
    finally:
        await svc.stop()


async def test_restart_resync_drops_phantoms_and_readds_seats(fake: FakeAmi, wire) -> None:
    records: list[FinishedCall] = []
    svc = make(fake, records)
    await svc.start(wait=5)
    try:
        s = wire.Script(t0=svc.clock())
        s.member("QueueMemberAdded", 0.0, "8001")
        s.member("QueueMemberPause", 0.01, "8001", paused="1", reason="meal")
        s.member("QueueMemberAdded", 0.0, "8002")
        s.join(0.1, "1.1")
        s.called(0.2, "1.1", "8002", "1.2")
        s.connect(1.0, "1.1", "8002", "1.2", hold_s=1)
        await fake.push(s.wire(greeting=False))
        await Probe().wait(lambda: svc.state.seats.get("8002") and svc.state.seats["8002"].state == "on_call")
        # "Asterisk restarts": the connection drops, the new one knows no calls and no members
        fake.actions.clear()
        await fake.drop_all()
        await Probe().wait(
            lambda: svc.resyncs == 2 and sum(a["Action"] == "QueueAdd" for a in fake.actions) == 2, within=5
        )
        assert svc.calls() == []
        assert records and records[0].lost and records[0].call_id == "1.1"
        adds = sorted(
            (a["MemberName"], a.get("Paused", ""), a.get("Reason", ""))
            for a in fake.actions
            if a["Action"] == "QueueAdd"
        )
        assert adds == [("8001", "true", "meal"), ("8002", "", "")]
        assert {s["seat"]: s["state"] for s in svc.seats()} == {"8001": "busy", "8002": "ready"}
        link_msgs = [
            e.event for e in (await svc.bus.replay(0, svc.bus.epoch)).envelopes if isinstance(e.event, d.LinkStatus)
        ]
        assert [m.up for m in link_msgs] == [True, False, True]
    finally:
        await svc.stop()


async def test_alert_from_the_ticker(fake: FakeAmi, wire) -> None:
    svc = make(fake)
    svc.state.rule_ms = 300  # a short rule so the test needs no 15 s wait
    await svc.start(wait=5)
    try:
        s = wire.Script(t0=svc.clock())
        s.member("QueueMemberAdded", 0.0, "8001")
        s.join(0.0, "1.1")
        s.called(0.01, "1.1", "8001", "1.2")
        await fake.push(s.wire(greeting=False))
        await asyncio.sleep(0.6)
        alerts = [
            e.event
            for e in (await svc.bus.replay(0, svc.bus.epoch)).envelopes
            if isinstance(e.event, d.AnswerRuleBreached)
        ]
        assert len(alerts) == 1 and alerts[0].seats_rung == ("8001",) and alerts[0].ringing_seat == "8001"
    finally:
        await svc.stop()


async def test_wrapup_pauses_the_seat_in_asterisk_then_resumes(fake: FakeAmi, wire) -> None:
    svc = make(fake)
    svc.state.wrapup_s = 0.3
    await svc.start(wait=5)
    assert len(svc.bus._listeners) == 1  # the wrap-up hold follows the bus from the start
    try:
        s = wire.Script(t0=svc.clock())
        s.member("QueueMemberAdded", 0.0, "8001")
        s.join(0.0, "1.1")
        s.called(0.01, "1.1", "8001", "1.2")
        s.connect(0.02, "1.1", "8001", "1.2", hold_s=0)
        s.hangup(0.03, "1.2", "PJSIP/8001-1.2", linked="1.1")
        await fake.push(s.wire(greeting=False))
        probe = Probe()
        await probe.wait(lambda: any(a["Action"] == "QueuePause" for a in fake.actions))
        pause = next(a for a in fake.actions if a["Action"] == "QueuePause")
        assert (pause["Paused"], pause["Reason"], pause["Interface"]) == ("true", "wrapup", "PJSIP/8001")
        # Asterisk confirms the pause; when 话后处理 ends the bridge lifts it
        await fake.push(
            FakeAmi.frame(
                Event="QueueMemberPause",
                Queue="hotline",
                MemberName="8001",
                Interface="PJSIP/8001",
                Paused="1",
                PausedReason="wrapup",
            )
        )
        await probe.wait(lambda: sum(a["Action"] == "QueuePause" for a in fake.actions) == 2, within=3)
        resume = [a for a in fake.actions if a["Action"] == "QueuePause"][1]
        assert resume["Paused"] == "false"
        assert svc.seats()[0]["state"] == "ready"
    finally:
        await svc.stop()
    assert svc.bus._listeners == []  # stopped, the bridge no longer follows its bus


async def test_the_job_number_of_whoever_is_signed_in_at_a_seat(fake: FakeAmi, wire) -> None:
    svc = make(fake)
    svc.actions.settle_s = 0  # the fake answers QueueAdd without the member event: the test sends it
    await svc.start(wait=5)
    try:
        await svc.actions.sign_in("8001", operator="op1024", job_number="017")
        assert svc.job_number_at("8001") == ""  # Asterisk has not added the seat yet
        s = wire.Script(t0=svc.clock())
        s.member("QueueMemberAdded", 0.0, "8001")
        await fake.push(s.wire(greeting=False))
        await Probe().wait(lambda: svc.job_number_at("8001") == "017")
        assert svc.job_number_at("8002") == ""  # nobody there
        s = wire.Script(t0=svc.clock())
        s.member("QueueMemberRemoved", 0.0, "8001")
        await fake.push(s.wire(greeting=False))
        await Probe().wait(lambda: svc.job_number_at("8001") == "")  # signed out: nobody to announce
    finally:
        await svc.stop()


async def test_a_bridge_that_takes_over_unpauses_a_seat_the_last_one_paused_for_wrap_up(fake: FakeAmi) -> None:
    """The bridge that paused the seat for 话后处理 died; this one finds it paused in Asterisk, and
    unpauses it when the wrap-up is over, instead of leaving the seat out of the queue for good."""
    fake.members = [{"Queue": "hotline", "Name": "8001", "Location": "PJSIP/8001", "Status": "1", "Paused": "1",
                     "PausedReason": "wrapup", "LastCall": str(int(time.time()) - 3600)}]
    svc = make(fake)
    await svc.start(wait=5)
    try:
        await Probe().wait(lambda: any(a.get("Action") == "QueuePause" for a in fake.actions))
        [resume] = [a for a in fake.actions if a.get("Action") == "QueuePause"]
        assert resume["Interface"] == "PJSIP/8001" and resume["Paused"] == "false"
    finally:
        await svc.stop()
