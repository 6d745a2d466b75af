"""``hotline simulate``: real calls into the hotline from SIPp citizens, answered by seat bots."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from hotline.asterisk import process
from hotline.settings import Settings
from hotline.simulate import audio
from hotline.simulate.numbers import caller_numbers
from hotline.simulate.sipp import SippRunner


@dataclass(frozen=True)
class Plan:
    calls: int = 5
    rate: float = 1.0  # new calls per second
    concurrency: int = 10
    seats: int = 2  # seat bots to register and sign in (0: real operators answer)
    ring_delay: float = 2.0  # seconds each bot lets its phone ring
    talk: float = 15.0  # seconds each bot talks before hanging up
    abandon_after: float | None = None  # citizens hang up after this many seconds, answered or not
    dtmf: str | None = None  # survey key the citizen presses after the operator hangs up
    dtmf_mode: str = "rfc4733"  # or "info" (SIP INFO)
    language: str = "cmn"  # what the phones say: cmn for demos, ko for the Vosk tests
    seed: int | None = None


@dataclass(frozen=True)
class Outcome:
    calls: int
    seconds: float
    exit_code: int  # SIPp's: 0 every call went as scripted
    answered: int | None = None  # from the queue's counters (local Asterisk only)
    abandoned: int | None = None


def queue_counters(settings: Settings) -> tuple[int, int] | None:
    """(completed, abandoned) as ``queue show`` counts them since Asterisk started."""
    out = process.cli(settings, f"queue show {settings.queue_name}")
    match = re.search(r"C:(\d+), A:(\d+)", out)
    return (int(match.group(1)), int(match.group(2))) if match else None


def run(settings: Settings, plan: Plan, log: Callable[[str], None] = print) -> Outcome:
    audio_dir = settings.var_dir / "audio"
    runner = SippRunner(settings.var_dir / "sim", f"{settings.sip_host}:{settings.sip_port}")
    lang = plan.language
    seat_media = audio.timeline(audio_dir, [("say", f"agent_{lang}"), ("sil", plan.talk + 60)])
    caller_media = audio.timeline(audio_dir, [("sil", 0.5), ("say", f"caller_{lang}"), ("sil", 300)])
    bots = settings.desk_phone_seats[: plan.seats]  # a browser seat is answered by a person, not a bot
    local = settings.asterisk_mode != "remote"
    started = time.monotonic()
    before = queue_counters(settings) if local else None
    try:
        for seat in bots:
            runner.seat(seat, settings.seat_password(seat), seat_media, ring_ms=int(plan.ring_delay * 1000),
                        talk_ms=int(plan.talk * 1000))
            if local:  # bots sign in like operators would; remote Asterisk: sign them in from the console
                out = process.cli(settings, f"queue add member PJSIP/{seat} to {settings.queue_name} "
                                            f"penalty 0 as {seat}")
                if "Added" not in out and "Already there" not in out:
                    raise RuntimeError(f"could not sign in {seat}: {out.strip()}")
        log(f"{len(bots)} 个坐席机器人已注册并签入；拨打 {plan.calls} 通电话到 {settings.hotline_number}…")
        if plan.abandon_after is not None:
            hangup_ms = int(plan.abandon_after * 1000)
        else:  # stay through the conversation and a little of the survey
            hangup_ms = int((plan.ring_delay + plan.talk + 10) * 1000)
        callers = runner.callers(
            caller_numbers(plan.calls, seed=plan.seed), settings.hotline_number, caller_media, calls=plan.calls,
            rate=plan.rate, concurrency=plan.concurrency, hangup_ms=hangup_ms, dtmf=plan.dtmf,
            dtmf_mode=plan.dtmf_mode, dtmf_at_ms=int((plan.ring_delay + plan.talk + 3) * 1000),
        )
        budget = plan.calls / plan.rate + hangup_ms / 1000 + 600
        code = callers.wait(budget)
        if code != 0:
            log(f"SIPp 报告部分呼叫未按脚本完成（退出码 {code}）：{callers.errors()[-300:]}")
        after = queue_counters(settings) if local else None
        if before and after:
            return Outcome(plan.calls, time.monotonic() - started, code, after[0] - before[0], after[1] - before[1])
        return Outcome(plan.calls, time.monotonic() - started, code)
    finally:
        for seat in bots:
            if local:
                process.cli(settings, f"queue remove member PJSIP/{seat} from {settings.queue_name}")
        runner.stop_all()
