"""agi/ against the real Asterisk 22: the rendered dialplan, SIPp phones and Local-channel callers."""

from __future__ import annotations

import asyncio
import wave
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from hotline.asterisk.render import directories, host_path
from hotline.identity import Principal, Role
from tests.conftest import local_call, speech
from tests.support.ami import chanvars
from tests.support.audio import loud_seconds
from tests.ticketing.conftest import intake

pytestmark = pytest.mark.asterisk

REPEAT = "13853012345"  # has tickets: one 10 days old and overdue, one from yesterday
PLAIN = "13953099999"
OPERATOR = Principal("op", Role.OPERATOR, job_number="015")


def prompt_ms(settings, *names: str) -> int:
    """How long the generated prompts last: DTMF sent while Playback runs would be lost."""
    sounds = host_path(settings, directories(settings)["data"]) / "sounds" / "zh"
    total = 0.0
    for name in names:
        with wave.open(str(sounds / f"{name}.wav")) as w:
            total += w.getnframes() / w.getframerate()
    return int(total * 1000)


def seed_repeat_caller(rig) -> str:
    rig.clock.offset = -timedelta(days=10)
    old = rig.tickets.tickets.create(intake(caller_number=REPEAT), OPERATOR)
    rig.clock.offset = -timedelta(days=1)
    rig.tickets.tickets.create(intake(caller_number=REPEAT, title="又停水了"), OPERATOR)
    rig.clock.offset = timedelta()
    return old.number


async def wait_exit(proc, limit_s: float) -> int:
    return await asyncio.get_running_loop().run_in_executor(None, proc.wait, limit_s)


async def test_lookup_variables_reach_agent_called_and_the_job_number_is_announced(
        pbx, ami, phones, settings, audio_dir, agi_rig):
    rig = await agi_rig(job_numbers={settings.seats[0]: "015"})
    old_number = seed_repeat_caller(rig)
    seat = settings.seats[0]
    phones.seat(seat, settings.seat_password(seat), speech(audio_dir, ("say", "agent_ko"), ("sil", 60)),
                ring_ms=1000, talk_ms=4000)
    pbx.sign_in(seat)
    await local_call(ami, settings, REPEAT, hold_s=20, name="张三'; DROP TABLE ticket;--")

    called = await ami.wait_for("AgentCalled", 15, Queue=settings.queue_name)
    v = chanvars(called)
    assert v["HL_CALLER"] == REPEAT and v["HL_LOCATION"] == "山东省菏泽市"
    assert (v["HL_TICKETS"], v["HL_OPEN"], v["HL_REPEAT"], v["HL_OVERDUE"]) == ("2", "2", "1", "1")
    assert v["HL_FLAGS"] == "repeat,overdue" and v["HL_PRIORITY"] == "10"
    assert f"{old_number}:red:" in v["HL_RECENT"] and v["HL_RECENT"].endswith(":丽景花园停水")  # the pop's history
    await ami.wait_for("AgentConnect", 15, Queue=settings.queue_name)
    jobno = await rig.ended("jobno", 15)
    assert jobno.outcome == "done" and rig.jobs_asked == [seat]  # 十五号话务员为您服务 was played
    lookup = rig.of("lookup")[0]
    assert lookup.outcome == "done" and lookup.callerid == REPEAT


async def test_a_repeat_caller_goes_ahead_of_an_earlier_plain_caller(pbx, ami, phones, settings, audio_dir, agi_rig):
    rig = await agi_rig()
    seed_repeat_caller(rig)
    seat = settings.seats[0]
    phones.seat(seat, settings.seat_password(seat), speech(audio_dir, ("say", "agent_ko"), ("sil", 60)),
                ring_ms=500, talk_ms=3000)
    pbx.sign_in(seat)
    pbx.cli(f"queue pause member PJSIP/{seat} queue {settings.queue_name} reason test")  # signed in, busy
    await local_call(ami, settings, PLAIN, hold_s=40, sound="silence/1")
    first = await ami.wait_for("QueueCallerJoin", 15, CallerIDNum=PLAIN)
    await local_call(ami, settings, REPEAT, hold_s=40, sound="silence/1")
    second = await ami.wait_for("QueueCallerJoin", 15, CallerIDNum=REPEAT)
    assert first["Position"] == "1" and second["Position"] == "1"  # in front of the one who called first
    pbx.cli(f"queue unpause member PJSIP/{seat} queue {settings.queue_name}")
    called = await ami.wait_for("AgentCalled", 15, Queue=settings.queue_name)
    assert called["CallerIDNum"] == REPEAT
    assert chanvars(called)["HL_PRIORITY"] == "10"


def closed_window(settings) -> str:
    """Service hours that certainly exclude now."""
    now = datetime.now(ZoneInfo(settings.cti_timezone))
    start = (now + timedelta(hours=2)).hour
    return f"{start:02d}:00-{(start + 1) % 24:02d}:00"


async def test_after_hours_the_caller_hears_the_hours_and_leaves_a_callback_request(
        pbx, ami, phones, settings, audio_dir, agi_rig):
    rig = await agi_rig(service_hours=closed_window(settings))
    seat = settings.seats[0]
    pbx.sign_in(seat)  # a seat is signed in, but the centre is closed
    from agi.flows.closed import hours_said
    from agi.flows.hours import ServiceHours

    said = prompt_ms(settings, "hotline/after-hours",
                     *hours_said(ServiceHours.parse(closed_window(settings))))
    caller = phones.callers([PLAIN], settings.hotline_number, speech(audio_dir, ("sil", 60)),
                            dtmf="2", dtmf_mode="rfc4733", dtmf_at_ms=said + 1500)  # 1 留言, 2 回电
    uid, number, reason, message = await rig.callbacks.wait(said / 1000 + 20)
    assert (number, reason, message) == (PLAIN, "after_hours", "")
    event = await ami.wait_for("UserEvent", 10, UserEvent="CallbackRequest")
    assert event["Reason"] == "after_hours" and event["Caller"] == PLAIN
    assert rig.of("closed")[0].args == ("after_hours",) and rig.of("closed")[0].uniqueid == uid
    assert not ami.find("QueueCallerJoin")  # never queued
    assert await wait_exit(caller, 30) == 0, caller.errors()[-500:]


async def test_with_no_seat_signed_in_the_caller_is_told_and_can_ask_for_a_callback_by_sip_info(
        pbx, ami, phones, settings, audio_dir, agi_rig):
    rig = await agi_rig()
    said = prompt_ms(settings, "hotline/no-seat")
    caller = phones.callers([PLAIN], settings.hotline_number, speech(audio_dir, ("sil", 60)),
                            dtmf="2", dtmf_mode="info", dtmf_at_ms=said + 1500)
    _, number, reason, message = await rig.callbacks.wait(said / 1000 + 20)
    assert (number, reason, message) == (PLAIN, "no_seat", "")
    assert rig.of("lookup")[0].outcome == "done" and not ami.find("QueueCallerJoin")
    assert await wait_exit(caller, 30) == 0, caller.errors()[-500:]


async def test_with_no_seat_a_caller_leaves_a_voice_message_recorded_in_the_spool(
        pbx, ami, phones, settings, audio_dir, agi_rig):
    from recordings.catalog import spool_dir

    rig = await agi_rig()  # nobody signed in (the shorter message; after hours offers the same)
    said = prompt_ms(settings, "hotline/no-seat")
    asked = prompt_ms(settings, "hotline/message-record")
    # 1 during the offer; the citizen speaks once the record prompt and its beep are over, then is
    # silent: five seconds of silence end the message, they are thanked and Asterisk hangs up
    talk_at = (said + 1500 + 600 + asked) / 1000 + 1.5
    media = speech(audio_dir, ("sil", talk_at), ("say", "agent_ko"), ("sil", 60))  # ≈ 6 s of speech
    caller = phones.callers([PLAIN], settings.hotline_number, media, dtmf="1", dtmf_mode="rfc4733",
                            dtmf_at_ms=said + 1500, bye_wait_ms=60_000)
    uid, number, reason, base = await rig.callbacks.wait(said / 1000 + asked / 1000 + 40)
    assert (number, reason) == (PLAIN, "no_seat")
    assert base.startswith("message-") and base.endswith(f"-{uid}")
    event = await ami.wait_for("UserEvent", 10, UserEvent="CallbackRequest")
    assert event["Message"] == base
    assert await wait_exit(caller, 30) == 0, caller.errors()[-500:]  # thanked, then Asterisk hung up
    path = spool_dir(settings) / f"{base}-in.wav"  # the citizen leg of a recording, for the catalog
    with wave.open(str(path)) as w:
        seconds = w.getnframes() / w.getframerate()
    assert 5.0 <= seconds <= 20.0, seconds  # ended by the silence, not by a time-out
    assert loud_seconds(path) >= 1.0  # what the citizen said is in it (silence gives 0)
    assert rig.of("closed")[0].outcome == "done" and not ami.find("QueueCallerJoin")


@pytest.mark.parametrize("mode, key, score", [("rfc4733", "3", 3), ("info", "1", 1)])
async def test_the_survey_by_dtmf_reaches_on_survey(pbx, ami, phones, settings, audio_dir, agi_rig,
                                                    mode, key, score):
    rig = await agi_rig()  # no job number configured: nothing is announced, the timeline is short
    seat = settings.seats[0]
    phones.seat(seat, settings.seat_password(seat), speech(audio_dir, ("say", "agent_ko"), ("sil", 60)),
                ring_ms=1000, talk_ms=3000)
    pbx.sign_in(seat)
    # answer → 1 s ringing → 3 s talk → the seat hangs up → the survey asks: press during the question
    caller = phones.callers([PLAIN], settings.hotline_number, speech(audio_dir, ("sil", 60)),
                            dtmf=key, dtmf_mode=mode, dtmf_at_ms=4000 + 2500)
    join = await ami.wait_for("QueueCallerJoin", 15, Queue=settings.queue_name)
    uid, number, got = await rig.surveys.wait(30)
    assert (uid, number, got) == (join["Uniqueid"], PLAIN, score)
    event = await ami.wait_for("UserEvent", 10, UserEvent="SurveyResult")
    assert event["Digits"] == key and event["Member"] == f"PJSIP/{seat}"
    assert await wait_exit(caller, 30) == 0, caller.errors()[-500:]  # thanked, then Asterisk hangs up


async def test_status_query_by_ticket_number_and_query_code(pbx, ami, settings, agi_rig):
    rig = await agi_rig()
    ticket = rig.tickets.tickets.create(intake(caller_number=REPEAT), OPERATOR)
    wrong = "000000" if ticket.query_code != "000000" else "111111"
    # a citizen on a Local channel keys an unknown number, then the right number with a wrong code,
    # then both right (SIPp's RFC 4733 sender repeats digits of long strings: "2026…" arrives as
    # "2222…"). Each "w" waits 0.5 s: a number is keyed once "not found" has been said (keys during
    # a Playback are lost); a code once the question for it has begun
    waits = "w" * (prompt_ms(settings, "hotline/status-notfound") // 500 + 2)
    tries = [("99999999", ticket.query_code), (ticket.number, wrong), (ticket.number, ticket.query_code)]
    keys = waits.join(f"{number}#ww{code}#" for number, code in tries)
    reply = await ami.action({
        "Action": "Originate", "Channel": f"Local/{settings.agi_status_number}@from-trunk/n",
        "Context": "hotline-ivr-sim", "Exten": "keys", "Priority": "1", "CallerID": f"<{REPEAT}>",
        "Variable": f"SIM_KEYS={keys},SIM_DELAY=1,SIM_HOLD=60", "Async": "true",
    })
    assert reply.get("Response") == "Success", reply
    status = await rig.ended("status", 90)
    assert status.outcome == "done", rig.found
    assert [(n, c, f.status if f else None) for n, c, f in rig.found] == [*[(*t, None) for t in tries[:2]],
                                                                        (*tries[2], "registered")]


async def test_a_half_header_client_does_not_delay_a_real_calls_lookup(pbx, ami, phones, settings, audio_dir,
                                                                       agi_rig):
    rig = await agi_rig()
    rig.server.header_timeout = 120  # the stuck clients stay stuck for the whole test
    _, half = await asyncio.open_connection(settings.agi_host, settings.agi_port)
    half.write(b"agi_network: yes\nagi_network_script: lookup\nagi_callerid: 1385")
    await half.drain()
    _, silent = await asyncio.open_connection(settings.agi_host, settings.agi_port)
    seat = settings.seats[0]
    phones.seat(seat, settings.seat_password(seat), speech(audio_dir, ("say", "agent_ko"), ("sil", 60)),
                ring_ms=1000, talk_ms=3000)
    pbx.sign_in(seat)
    await local_call(ami, settings, REPEAT, hold_s=10, sound="silence/1")
    called = await ami.wait_for("AgentCalled", 15, Queue=settings.queue_name)
    assert chanvars(called)["HL_LOCATION"] == "山东省菏泽市"
    lookup = rig.of("lookup")[0]
    assert lookup.outcome == "done" and lookup.ms < 500  # answered at once despite the two stuck peers
    assert rig.server.active >= 2  # they are still connected, still waiting for their headers
    half.close()
    silent.close()


async def test_overflow_offers_a_callback_after_the_wait(pbx, ami, phones, settings, audio_dir, agi_rig):
    rig = await agi_rig(agi_overflow_wait_s=3)
    seat = settings.seats[0]
    phones.seat(seat, settings.seat_password(seat), speech(audio_dir, ("sil", 60)), ring_ms=500, talk_ms=3000)
    pbx.sign_in(seat)
    pbx.cli(f"queue pause member PJSIP/{seat} queue {settings.queue_name} reason test")  # all seats busy
    caller = phones.callers([PLAIN], settings.hotline_number, speech(audio_dir, ("sil", 60)),
                            dtmf="1", dtmf_mode="rfc4733", dtmf_at_ms=3000 + 1000 + 2500)
    uid, number, reason, message = await rig.callbacks.wait(30)
    assert (number, reason, message) == (PLAIN, "overflow", "")
    leave = await ami.wait_for("QueueCallerLeave", 5, Queue=settings.queue_name)
    assert leave["Uniqueid"] == uid
    assert await wait_exit(caller, 30) == 0, caller.errors()[-500:]  # told, then Asterisk hangs up
    assert len(ami.find("QueueCallerJoin")) == 1  # did not go back to the queue


async def test_declining_the_overflow_offer_keeps_the_callers_place(pbx, ami, phones, settings, audio_dir,
                                                                     agi_rig):
    await agi_rig(agi_overflow_wait_s=3)
    seat = settings.seats[0]
    phones.seat(seat, settings.seat_password(seat), speech(audio_dir, ("sil", 60)), ring_ms=500, talk_ms=3000)
    pbx.sign_in(seat)  # registered (an unreachable phone is no seat) but busy
    pbx.cli(f"queue pause member PJSIP/{seat} queue {settings.queue_name} reason test")
    await local_call(ami, settings, PLAIN, hold_s=60, sound="silence/1")
    first = await ami.wait_for("QueueCallerJoin", 15, CallerIDNum=PLAIN)
    # a second citizen behind, queued straight in (no lookup: the default, long queue timeout)
    reply = await ami.action({
        "Action": "Originate", "Channel": "Local/s@hotline-queue/n", "Context": "hotline-sim", "Exten": "play",
        "Priority": "1", "CallerID": "<13953088888>", "Variable": "SIM_HOLD=60,SIM_FILE=silence/1",
        "Async": "true"})
    assert reply.get("Response") == "Success", reply
    second = await ami.wait_for("QueueCallerJoin", 15, CallerIDNum="13953088888")
    assert (first["Position"], second["Position"]) == ("1", "2")
    left = await ami.wait_for("QueueCallerLeave", 15, CallerIDNum=PLAIN)  # the overflow wait is over
    assert left["Uniqueid"] == first["Uniqueid"]
    # no key pressed: back to the queue, at the place it had, ahead of the one who came later
    again = await ami.wait_for(lambda e: e.get("Event") == "QueueCallerJoin" and e.get("CallerIDNum") == PLAIN
                               and e is not first, 30)
    assert again["Position"] == "1" and again["Uniqueid"] == first["Uniqueid"]


async def test_a_blacklisted_number_hears_the_warning_then_queues_without_priority(
        pbx, ami, phones, settings, audio_dir, agi_rig):
    rig = await agi_rig()
    rig.tickets.callers.set_flags(PLAIN, Principal("lead", Role.LEAD), blacklisted=True)
    seat = settings.seats[0]
    phones.seat(seat, settings.seat_password(seat), speech(audio_dir, ("sil", 60)), ring_ms=500, talk_ms=2000)
    pbx.sign_in(seat)
    await local_call(ami, settings, PLAIN, hold_s=20, sound="silence/1")
    join = await ami.wait_for("QueueCallerJoin", 20, Queue=settings.queue_name)
    created = await ami.wait_for(lambda e: e.get("Event") == "Newchannel"
                                 and str(e.get("Channel", "")).startswith(f"Local/{settings.hotline_number}@"), 5)
    warned_s = float(join["Timestamp"]) - float(created["Timestamp"])
    assert warned_s >= prompt_ms(settings, "hotline/harass-warning") / 1000 - 0.5  # the warning came first
    called = await ami.wait_for("AgentCalled", 15, Queue=settings.queue_name)
    v = chanvars(called)
    assert v["HL_FLAGS"] == "blacklist" and v["HL_PRIORITY"] == "0"
