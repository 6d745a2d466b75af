"""SIPp traffic for the whole stack, every call accounted for by the caller's number.

Seats: every seat registers (one after another) its contact on one SIPp answering machine (one process for all
seats, not one per seat: at 80 seats that is the difference between SIPp measuring the box and
SIPp loading it), which answers after ``ring_s`` and talks ``talk_s``; the seats are signed in to
the queue as the seat bots of ``hotline simulate`` are (the bridge learns them from Asterisk and
re-adds them after an Asterisk restart).

Callers: each call has a number of its own (Heze mobiles, never reused in a run), so the
ledger — what SIPp's log says happened to each number: placed, answered by Asterisk, answered by a
seat, ended — can be laid beside the call log, the recordings and the transcripts one call at a
time. The scenarios are the simulator's (``hotline/simulate/scenarios``) with log lines added.
"""

from __future__ import annotations

import atexit
import contextlib
import re
import signal
import time
import wave
from dataclasses import dataclass
from pathlib import Path

from hotline.asterisk import process
from hotline.settings import Settings
from hotline.simulate import audio
from hotline.simulate.numbers import MOBILE_PREFIXES
from hotline.simulate.sipp import SippProcess, SippRunner, scenario_text

HEZE = sorted(p for p, city in MOBILE_PREFIXES.items() if city == "山东省菏泽市")

def numbers(count: int, start: int = 0) -> list[str]:
    """``count`` distinct Heze mobile numbers, the ``start``-th onwards (a run never repeats one).

    >>> numbers(2), numbers(1, 10_000)
    (['13705300000', '13705300001'], ['13953010000'])
    """
    return [f"{HEZE[i // 10_000]}{i % 10_000:04d}" for i in range(start, start + count)]


def _log(message: str) -> str:
    return f'  <nop><action><log message="{message} [timestamp]"/></action></nop>\n'


def _insert(text: str, anchor: str, extra: str, after: bool = True) -> str:
    if anchor not in text:
        raise RuntimeError(f"scenario changed: {anchor!r} not found; update testkit/traffic.py")
    return text.replace(anchor, anchor + "\n" + extra if after else extra + anchor, 1)


def caller_scenario(media: Path, hangup_ms: int) -> str:
    """The simulator's citizen (hangs up after ``hangup_ms`` unless the far end does first), logging
    ``placed``, ``answered`` (Asterisk's 200 OK), ``caller_bye`` and ``ended`` with the number."""
    tail = scenario_text("tail_hangup.xml").replace("@HANGUP_MS@", str(hangup_ms))
    tail = _insert(tail, '<label id="citizen_bye"/>', _log("caller_bye [field0]"))
    text = scenario_text("caller.xml").replace("@TAIL@", tail).replace("@MEDIA@", str(media))
    text = _insert(text, '<scenario name="hotline caller">', _log("placed [field0]"))
    text = _insert(text, "  <nop><action><exec rtp_stream=", _log("answered [field0]"), after=False)
    return _insert(text, '<label id="done"/>', _log("ended [field0]"))


def seat_scenario(media: Path, ring_ms: int, talk_ms: int) -> str:
    """The simulator's seat bot, logging each answer with the citizen's number (the From header)."""
    text = (scenario_text("seat.xml").replace("@HOLD@", "").replace("@RING_MS@", str(ring_ms))
            .replace("@TALK_MS@", str(talk_ms)).replace("@MEDIA@", str(media)))
    return _insert(text, '<recv request="ACK" rtd="true" crlf="true"/>', _log("seat [$inv_from]"))


def announcement_s(settings: Settings, seat: str) -> float:
    """How long the citizen hears "<job number>号话务员为您服务" after the seat answered and before the
    two are bridged (agi/flows/jobno.py: the prompt, the digits, the prompt; the seat is the job
    number unless one is set): the seat's talk time starts after it."""
    if not settings.agi_announce_job_number:
        return 0.0
    sounds = settings.asterisk_root / "usr/share/asterisk/sounds/zh"
    names = ["hotline/operator-pre", *(f"digits/{d}" for d in settings.agi_job_numbers.get(seat, seat)),
             "hotline/operator-post"]
    total = 0.0
    for name in names:
        with contextlib.suppress(OSError, wave.Error), wave.open(str(sounds / f"{name}.wav")) as w:
            total += w.getnframes() / w.getframerate()
    return total


def _rate_args(per_second: float) -> list[str]:
    """SIPp counts whole calls per period: 2.5/s is 25 every 10 000 ms, spread evenly."""
    if per_second == int(per_second):
        return ["-r", str(int(per_second)), "-rp", "1000"]
    return ["-r", str(round(per_second * 10)), "-rp", "10000"]


@dataclass
class Call:
    """One citizen's call as SIPp saw it (epoch seconds; None: did not happen)."""

    number: str
    placed: float | None = None
    answered: float | None = None  # Asterisk answered (the hotline's Answer(), before the queue)
    seat: float | None = None  # a seat answered it
    caller_bye: float | None = None  # the citizen hung up (else the far end did)
    ended: float | None = None  # the call ended as scripted (either side hung up)


_LINE = re.compile(r"^(placed|answered|caller_bye|ended|seat) (.*?)\s+\S+\s+\S+\s+(\d+\.\d+)\s*$")
_FROM_NUMBER = re.compile(r"sip:\+?(\d+)@")


class Traffic:
    """Seats that answer and callers that call, against the Asterisk of ``settings``."""

    def __init__(self, settings: Settings, run_dir: Path, audio_dir: Path, *, speech: bool = True) -> None:
        self.settings = settings
        self.speech = speech  # False: the phones stream silence (transcribed ≈ 5× faster: a bounded test)
        self.run_dir = run_dir
        self.audio_dir = audio_dir
        self.runner = SippRunner(run_dir, f"127.0.0.1:{settings.sip_port}")
        self.seat_proc: SippProcess | None = None
        self.callers: list[SippProcess] = []
        self.logs: list[Path] = []
        self.used = 0  # numbers handed out so far
        self.announce_s = 0.0  # the job-number announcement between a seat's answer and the bridge

    # ------------------------------------------------------------------ seats
    def seats(self, seats: list[str], *, ring_s: float, talk_s: float) -> None:
        """Register every seat on one answering SIPp, start it, and sign the seats in to the queue.
        A seat talks ``talk_s`` once bridged to the citizen (after the job-number announcement)."""
        self.announce_s = max(announcement_s(self.settings, s) for s in seats) + 0.5
        port = self.runner.port(5600)
        scenario = scenario_text("register.xml").replace("@EXPIRES@", "3600")
        for seat in seats:  # one at a time: each REGISTER must come from the answering machine's port
            reg = self.runner.start(f"reg-{seat}", scenario, ["-s", seat, "-au", seat, "-ap",
                                                               self.settings.seat_password(seat), "-p", port,
                                                               "-m", 1, "-timeout", "10s"])
            if reg.wait(20) != 0:
                raise RuntimeError(f"seat {seat} did not register: {reg.errors()[-400:]}")
            self.runner.procs.remove(reg)
        media = audio.timeline(self.audio_dir, [("sil", self.announce_s), *self._say("agent_ko"),
                                                ("sil", talk_s + 120)])
        log = self.run_dir / "seats.log"
        self.logs.append(log)
        talk_ms = int((self.announce_s + talk_s) * 1000)
        self.seat_proc = self.runner.start("seats", seat_scenario(media, int(ring_s * 1000), talk_ms), [
            "-s", "seat", "-p", port, "-mp", self.runner.port(18000, 4), "-trace_logs", "-log_file", log])
        self.sign_in(seats)

    def _say(self, phrase: str) -> list[tuple[str, float | str]]:
        return [("say", phrase)] if self.speech else []

    def sign_in(self, seats: list[str]) -> None:
        queue = self.settings.queue_name
        for seat in seats:
            out = process.cli(self.settings, f"queue add member PJSIP/{seat} to {queue} penalty 0 as {seat}")
            if "Added" not in out and "Already there" not in out:
                raise RuntimeError(f"could not sign in {seat}: {out.strip()}")

    # ------------------------------------------------------------------ callers
    def call(self, *, calls: int, rate: float, concurrency: int, ring_s: float, talk_s: float,
             after_s: float = 8.0) -> SippProcess:
        """``calls`` citizens at ``rate`` per second, at most ``concurrency`` at once; each hangs up
        ``after_s`` after the seat's talk would end (it hears the survey meanwhile) unless Asterisk
        hangs up first. The citizen speaks (Korean, for the transcription) after a moment."""
        media = audio.timeline(self.audio_dir, [("sil", ring_s + self.announce_s + 3.0), *self._say("caller_ko"),
                                                ("sil", talk_s + 120)])
        hangup_ms = int((ring_s + self.announce_s + talk_s + after_s) * 1000)
        mine = numbers(calls, self.used)
        self.used += calls
        n = len(self.callers)
        inject = self.run_dir / f"callers-{n}.csv"
        inject.write_text("SEQUENTIAL\n" + "".join(f"{x};\n" for x in mine))
        log = self.run_dir / f"callers-{n}.log"
        self.logs.append(log)
        proc = self.runner.start(f"callers{n}", caller_scenario(media, hangup_ms), [
            "-s", self.settings.hotline_number, "-inf", inject, "-p", self.runner.port(5700),
            "-mp", self.runner.port(19000, 4), "-m", calls, "-l", concurrency, *_rate_args(rate),
            "-trace_logs", "-log_file", log])
        self.callers.append(proc)
        return proc

    def quiesce(self) -> None:
        """No new calls (SIPp's SIGUSR1: the calls in progress end as scripted, then SIPp exits)."""
        for proc in self.callers:
            if proc.running():
                with contextlib.suppress(ProcessLookupError):
                    proc.popen.send_signal(signal.SIGUSR1)

    def wait_callers(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while any(p.running() for p in self.callers):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.2)
        return True

    def in_progress(self) -> int:
        """Calls answered by Asterisk and not yet ended, by the ledger now."""
        return sum(1 for c in self.ledger().values() if c.answered and not c.ended)

    def stop(self) -> None:
        self.runner.stop_all()
        atexit.unregister(self.runner.stop_all)  # its folder goes with the stack

    # ------------------------------------------------------------------ the ledger
    def ledger(self) -> dict[str, Call]:
        """Every number placed so far, with what happened to its call."""
        calls: dict[str, Call] = {}
        for log in self.logs:
            if not log.exists():
                continue
            for line in log.read_text(errors="replace").splitlines():
                m = _LINE.match(line.strip())
                if not m:
                    continue
                kind, who, at = m.group(1), m.group(2), float(m.group(3))
                if kind == "seat":
                    found = _FROM_NUMBER.search(who)
                    if not found:
                        continue
                    who = found.group(1)
                call = calls.setdefault(who, Call(who))
                if getattr(call, kind) is None:
                    setattr(call, kind, at)
        return calls
