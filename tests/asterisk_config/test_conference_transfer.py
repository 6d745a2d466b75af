"""The dialplan's three-party bridge and transfer targets, driven by raw AMI actions.

cti/actions wraps these same moves for the console; here they prove the dialplan contexts
(hotline-conf, hotline-transfer) do what the actions rely on.
"""

from __future__ import annotations

import asyncio

import pytest

from hotline.asterisk.render import directories, host_path
from tests.conftest import local_call, speech
from tests.support.ami import chanvars, ts
from tests.support.audio import loud_seconds

pytestmark = pytest.mark.asterisk


async def test_three_party_call_hears_all_three_and_ends_with_the_citizen(pbx, ami, phones, settings, audio_dir):
    seat, dept = settings.seats[0], settings.department_lines[0]
    # each party speaks at its own time, so the mixed recording can show all three voices
    phones.seat(seat, settings.seat_password(seat), speech(audio_dir, ("say", "agent_ko"), ("sil", 120)),
                ring_ms=1000, talk_ms=120_000)
    phones.seat(dept, settings.seat_password(dept), speech(audio_dir, ("sil", 1), ("say", "dept_ko"), ("sil", 120)),
                ring_ms=1000, talk_ms=120_000)
    pbx.sign_in(seat)
    caller = phones.callers(["13953012345"], settings.hotline_number,
                            speech(audio_dir, ("sil", 6), ("say", "caller_ko"), ("sil", 120)), hangup_ms=30_000)
    connect = await ami.wait_for("AgentConnect", 20, Queue=settings.queue_name)
    citizen, operator = str(connect["Channel"]), str(connect["DestChannel"])
    room = f"conf-{connect['Uniqueid']}"
    for channel in (citizen, operator):
        reply = await ami.action({"Action": "Setvar", "Channel": channel, "Variable": "HL_CONF", "Value": room})
        assert reply["Response"] == "Success", reply
    reply = await ami.action({"Action": "Redirect", "Channel": citizen, "Context": "hotline-conf", "Exten": "citizen",
                              "Priority": "1", "ExtraChannel": operator, "ExtraContext": "hotline-conf",
                              "ExtraExten": "member", "ExtraPriority": "1"})
    assert reply["Response"] == "Success", reply
    reply = await ami.action({"Action": "Originate", "Channel": f"PJSIP/{dept}", "Context": "hotline-conf",
                              "Exten": "member", "Priority": "1", "Variable": f"HL_CONF={room}",
                              "CallerID": f"<{settings.hotline_number}>", "Async": "true", "Timeout": "20000"})
    assert reply["Response"] == "Success", reply

    def joined(e) -> bool:
        return e.get("Event") == "ConfbridgeJoin" and e.get("Conference") == room

    for _ in range(30):
        if len([e for e in ami.events if joined(e)]) >= 3:
            break
        await asyncio.sleep(0.5)
    members = {str(e["Channel"]).rsplit("-", 1)[0] for e in ami.events if joined(e)}
    assert members == {"PJSIP/trunk-in", f"PJSIP/{seat}", f"PJSIP/{dept}"}
    # the citizen joins with the marked profile (its own extension), everyone else as end_marked members
    roles = {str(e["Channel"]).rsplit("-", 1)[0]: e["Exten"] for e in ami.events if joined(e)}
    assert roles == {"PJSIP/trunk-in": "citizen", f"PJSIP/{seat}": "member", f"PJSIP/{dept}": "member"}

    # the citizen hangs up (30 s after answer): the bridge ends and takes everyone with it
    end = await ami.wait_for("ConfbridgeEnd", 40, Conference=room)
    assert await asyncio.get_running_loop().run_in_executor(None, caller.wait, 10) == 0
    leaves = [e for e in ami.events if e.get("Event") == "ConfbridgeLeave" and e.get("Conference") == room]
    assert len(leaves) == 3 and ts(end) >= max(ts(e) for e in leaves)

    base = chanvars(connect)["HL_RECBASE"]
    monitor = host_path(settings, directories(settings)["spool"]) / "monitor"
    for _ in range(20):  # MixMonitor closes its files a moment after the hang-up
        if (monitor / f"{base}.wav").exists():
            break
        await asyncio.sleep(0.25)
    # citizen ~6.5 s of speech, operator ~3 s, department ~3 s: the mix must hold more than any one
    mixed, citizen_leg = loud_seconds(monitor / f"{base}.wav"), loud_seconds(monitor / f"{base}-in.wav")
    assert mixed > citizen_leg + 3, (mixed, citizen_leg)


async def test_blind_transfer_to_the_specialist_queue(pbx, ami, phones, settings, audio_dir):
    seat, expert = settings.seats[0], settings.seats[1]
    media = speech(audio_dir, ("say", "agent_ko"), ("sil", 120))
    phones.seat(seat, settings.seat_password(seat), media, ring_ms=1000, talk_ms=60_000)
    phones.seat(expert, settings.seat_password(expert), media, ring_ms=1000, talk_ms=3000)
    pbx.sign_in(seat)
    pbx.sign_in(expert, settings.specialist_queue)
    phones.callers(["05305123456"], settings.hotline_number, speech(audio_dir, ("sil", 60)), hangup_ms=30_000)
    connect = await ami.wait_for("AgentConnect", 20, Queue=settings.queue_name)
    # AgentConnect can precede the operator's BridgeEnter; a transfer needs the bridge
    await ami.wait_for("BridgeEnter", 5, Channel=str(connect["DestChannel"]))
    reply = await ami.action({"Action": "BlindTransfer", "Channel": str(connect["DestChannel"]),
                              "Context": "hotline-transfer", "Exten": "expert"})
    assert reply["Response"] == "Success", reply
    join = await ami.wait_for("QueueCallerJoin", 15, Queue=settings.specialist_queue)
    assert join["CallerIDNum"] == "05305123456"
    second = await ami.wait_for("AgentConnect", 15, Queue=settings.specialist_queue)
    assert second["Interface"] == f"PJSIP/{expert}"
    assert chanvars(second)["HL_UID"] == connect["Uniqueid"]  # the same call, one id across both queues


async def test_chinese_caller_name_arrives_whole(pbx, ami, settings):
    await local_call(ami, settings, "13805311234", hold_s=2, sound="silence/1", name="张三丰")
    join = await ami.wait_for("QueueCallerJoin", 15, Queue=settings.queue_name)
    assert join["CallerIDName"] == "张三丰"
