"""The dialplan's transfer targets and the caller's name, driven by raw AMI actions.

cti/actions wraps these same moves for the console; here they prove the dialplan contexts
(hotline-conf, hotline-transfer) do what the actions rely on. The three-party bridge is proved once,
through those actions, in tests/cti/test_asterisk.py (the three in the room with their profiles, all
three voices in the mix, the bridge ending with the citizen): driving the same real call here again
cost half a minute and proved nothing more.
"""

from __future__ import annotations

import pytest

from tests.conftest import local_call, speech
from tests.support.ami import chanvars

pytestmark = pytest.mark.asterisk


async def test_blind_transfer_to_the_specialist_queue(pbx, ami, phones, settings, audio_dir):
    seat, expert = settings.seats[0], settings.seats[1]
    media = speech(audio_dir, ("say", "agent_ko"), ("sil", 120))
    phones.seat(seat, settings.seat_password(seat), media, ring_ms=1000, talk_ms=60_000)
    phones.seat(expert, settings.seat_password(expert), media, ring_ms=1000, talk_ms=3000)
    pbx.sign_in(seat)
    pbx.sign_in(expert, settings.specialist_queue)
    phones.callers(["05305123456"], settings.hotline_number, speech(audio_dir, ("sil", 60)), hangup_ms=30_000)
    connect = await ami.wait_for("AgentConnect", 20, Queue=settings.queue_name)
    # AgentConnect can precede either party's BridgeEnter; a transfer needs both in the bridge (with
    # the operator alone in it, Asterisk answers "Transfer invalid": there is no one to transfer)
    for channel in (str(connect["DestChannel"]), str(connect["Channel"])):
        await ami.wait_for("BridgeEnter", 5, Channel=channel)
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
