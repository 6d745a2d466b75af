"""Real SIP calls through the rendered dialplan and queue (real Asterisk 22, SIPp phones)."""

from __future__ import annotations

import asyncio
import wave
from pathlib import Path

import pytest

from hotline.asterisk.render import directories, host_path, render_config
from testkit.ami import FIXTURES, account_receives, event_frames
from tests.conftest import local_call, speech
from tests.support.ami import chanvars, ts

pytestmark = pytest.mark.asterisk

HEZE_MOBILE = "13953012345"


def wav_seconds(path: Path) -> float:
    with wave.open(str(path)) as w:
        assert w.getframerate() == 8000 and w.getnchannels() == 1
        return w.getnframes() / w.getframerate()


async def wait_exit(proc, limit_s: float) -> int:
    return await asyncio.get_running_loop().run_in_executor(None, proc.wait, limit_s)


async def test_sip_call_is_answered_by_a_signed_in_seat_in_3_s_and_recorded(pbx, ami, phones, settings, audio_dir):
    seat = settings.seats[0]
    bot = phones.seat(seat, settings.seat_password(seat), speech(audio_dir, ("say", "agent_ko"), ("sil", 120)),
                      ring_ms=3000, talk_ms=8000)
    pbx.sign_in(seat)
    caller = phones.callers([HEZE_MOBILE], settings.hotline_number,
                            speech(audio_dir, ("sil", 0.5), ("say", "caller_ko"), ("sil", 120)), hangup_ms=14_000)

    join = await ami.wait_for("QueueCallerJoin", 15, Queue=settings.queue_name)
    assert join["CallerIDNum"] == HEZE_MOBILE
    called = await ami.wait_for("AgentCalled", 10, Queue=settings.queue_name)
    assert called["Interface"] == f"PJSIP/{seat}"
    assert chanvars(called)["HL_CALLER"] == HEZE_MOBILE  # inherited: the screen-pop knows who calls
    connect = await ami.wait_for("AgentConnect", 10, Queue=settings.queue_name)
    wait_s = ts(connect) - ts(join)
    assert 2.8 <= wait_s <= 4.0, wait_s  # answered after its 3 s ring, well inside the 15 s rule
    # the seat hangs up after 8 s of talk; the citizen then hears the survey and Asterisk hangs up
    complete = await ami.wait_for("AgentComplete", 20, Queue=settings.queue_name)
    talk_s = ts(complete) - ts(connect)
    assert 7.5 <= talk_s <= 9.5, talk_s
    assert await wait_exit(caller, 30) == 0, caller.errors()[-500:]  # hangs up during the survey
    bot.stop()

    base = chanvars(connect)["HL_RECBASE"]
    monitor = host_path(settings, directories(settings)["spool"]) / "monitor"
    for suffix in ("", "-in", "-out"):  # mixed, citizen leg, operator leg
        path = monitor / f"{base}{suffix}.wav"
        assert path.exists(), sorted(p.name for p in monitor.iterdir())
        assert abs(wav_seconds(path) - talk_s) < 1.0, (path.name, wav_seconds(path), talk_s)

    # what the app's account got is what testkit.ami.account_receives says Asterisk sends it, and
    # the events of this call's recording that it lets through all came: bench/screen_pop.py replays
    # that recording (made before some filters were added) through the same rule
    receives = account_receives(render_config(settings)["manager.conf"], settings.ami_user)
    came = {str(e["Event"]) for e in ami.events}
    assert [e for e in ami.events if not receives(f"Event: {e['Event']}\r\nPrivilege: {e.get('Privilege', '')}")] == []
    recorded = FIXTURES / "test_sip_call_is_answered_by_a_signed_in_seat_in_3_s_and_recorded.ami"
    frames = [f.decode() for f in event_frames(recorded.read_bytes()).split(b"\r\n\r\n") if f]
    kept = {f.split("\r\n", 1)[0].removeprefix("Event: ") for f in frames if receives(f)}
    assert kept <= came, kept - came


async def test_seat_ringing_20_s_is_given_up_at_15_s_and_the_next_seat_answers(pbx, ami, phones, settings, audio_dir):
    slow, fast = settings.seats[0], settings.seats[1]
    media = speech(audio_dir, ("say", "agent_ko"), ("sil", 120))
    phones.seat(slow, settings.seat_password(slow), media, ring_ms=20_000, talk_ms=5000)
    phones.seat(fast, settings.seat_password(fast), media, ring_ms=1000, talk_ms=5000)
    pbx.sign_in(slow)  # only the slow seat at first, so it is certainly the one rung first
    phones.callers(["05305123456"], settings.hotline_number, speech(audio_dir, ("sil", 60)), hangup_ms=40_000)

    join = await ami.wait_for("QueueCallerJoin", 15, Queue=settings.queue_name)
    first = await ami.wait_for("AgentCalled", 10, Interface=f"PJSIP/{slow}")
    pbx.sign_in(fast)
    no_answer = await ami.wait_for("AgentRingNoAnswer", 20, Interface=f"PJSIP/{slow}")
    rang_s = ts(no_answer) - ts(first)
    assert 14.5 <= rang_s <= 15.8, rang_s
    assert 14_500 <= int(no_answer["RingTime"]) <= 15_800  # milliseconds, unlike AgentConnect's seconds
    connect = await ami.wait_for("AgentConnect", 20, Queue=settings.queue_name)
    assert connect["Interface"] == f"PJSIP/{fast}"
    assert ts(connect) - ts(join) > 15  # this citizen waited past the rule: the CTI must flag it


async def test_local_channel_caller_reaches_the_queue_and_abandons(pbx, ami, settings):
    await local_call(ami, settings, "13805311234", hold_s=2, sound="silence/1")
    join = await ami.wait_for("QueueCallerJoin", 15, Queue=settings.queue_name)
    assert join["CallerIDNum"] == "13805311234"
    abandon = await ami.wait_for("QueueCallerAbandon", 20, Queue=settings.queue_name)
    assert abandon["Uniqueid"] == join["Uniqueid"]
