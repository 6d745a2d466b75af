"""The screen-pop bench's Asterisk (``bench/screen_pop.py``): the recorded call as AMI templates,
the AMI server with its queue members, whole calls played from the recording, and each call's
FastAGI sessions against the app.

Apart from the run because it is the half of the bench that stands in for the switch, read on its
own to check that what the bridge sees is what our Asterisk 22 sent. Private to screen_pop (the
leading ``_`` keeps ``make bench`` from running it as a benchmark); it imports the product and
testkit only, never the bench that uses it. ``bench/screen_pop.py`` puts the checkout on the path.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from hotline.asterisk.render import CHANNEL_VARS, render_config
from hotline.settings import Settings
from testkit import ROOT
from testkit.agi import AgiClient, header
from testkit.ami import account_receives
from testkit.audiosocket import stream_leg

TRANSCRIPT = ROOT / "tests/fixtures/ami/test_sip_call_is_answered_by_a_signed_in_seat_in_3_s_and_recorded.ami"
PAUSE_TRANSCRIPT = ROOT / "tests/cti/transcripts/seat_holds_the_call.ami"  # a QueueMemberPause of ours
# what the recording names, and the template field each becomes per call
RECORDED = {"uid0": "1795401830.10", "uid1": "1795401830.11", "chan0": "PJSIP/trunk-in-00000006",
            "chan1": "PJSIP/8001-00000007", "caller": "13953012345"}
SEAT = re.compile(r"(?<![\d.])8001(?!\d)")
VAR_KEYS = ("ChanVariable", "DestChanVariable")
MEMBER_KEYS = ("CallsTaken", "LastCall", "LastPause", "LoginTime", "Paused", "PausedReason")
MEMBER_EVENTS = ("QueueMemberStatus", "QueueMemberAdded", "QueueMemberPause")
LOOKUP_VARS = ("HL_LOCATION", "HL_TICKETS", "HL_OPEN", "HL_OVERDUE", "HL_RECENT", "HL_REPEAT", "HL_FLAGS",
               "HL_PRIORITY")
PHASE_GAP_S = 0.05  # recorded events closer than this go out together


# --- the recorded traffic, as templates ----------------------------------------------------------


def events_of(path: Path) -> list[list[tuple[str, str, str]]]:
    """The event frames of a raw AMI transcript, each as (key, separator, value) lines."""
    out = []
    for block in re.split(r"\r?\n\r?\n", path.read_text(encoding="utf-8")):
        lines = [ln.partition(": ") for ln in block.splitlines() if ln.strip()]
        if lines and lines[0][0] == "Event":
            out.append(lines)
    return out


def _esc(s: str) -> str:
    return s.replace("{", "{{").replace("}", "}}")


def template(lines: list[tuple[str, str, str]], var_kind: dict[str, int]) -> str:
    """One frame as a ``str.format`` template: ids, seat, caller, times and member fields become
    fields; each run of channel variables one field (``{ChanVariable_2}``), rendered per call."""
    event = lines[0][2]
    out: list[str] = []
    for key, sep, value in lines:
        if key in VAR_KEYS:
            field_ = f"{{{key}_{var_kind[key]}}}"
            if not out or out[-1] != field_:
                out.append(field_)
            continue
        if key == "Timestamp":
            value = "{ts}"
        elif key in MEMBER_KEYS and event in MEMBER_EVENTS:
            value = f"{{m_{key}}}"
        elif key in ("HoldTime", "RingTime", "TalkTime") or (key in ("Position", "Count")
                                                             and event.startswith("QueueCaller")):
            value = f"{{{key}}}"  # Asterisk's own counts and durations, kept true per call
        elif key == "BridgeUniqueid":
            value = "{bridge}"
        else:
            value = _esc(value)
            for name, recorded in RECORDED.items():
                value = value.replace(recorded, f"{{{name}}}")
            value = SEAT.sub("{seat}", value)
        out.append(f"{_esc(key)}{sep}{value}")
    return "\r\n".join(out) + "\r\n\r\n"


@dataclass(frozen=True)
class Frame:
    event: str
    text: str


@dataclass(frozen=True)
class Phase:
    """Frames Asterisk sent within ``PHASE_GAP_S``; ``at``: seconds after the call's first event."""

    at: float
    frames: tuple[Frame, ...]
    lookup: bool = False  # the dialplan's AGI(…/lookup) runs first (it sits before Queue())
    survey: bool = False  # the caller leaves the survey (AGI(…/survey)) and hangs up
    frees_seat: bool = False  # the seat's own channel hangs up


@dataclass(frozen=True)
class Recording:
    phases: tuple[Phase, ...]
    member_added: str
    member_pause: str
    fully_booted: str

    @property
    def seat_free_s(self) -> float:
        return next(p.at for p in self.phases if p.frees_seat)

    @property
    def length_s(self) -> float:
        return self.phases[-1].at


def load_recording(settings: Settings) -> Recording:
    """The recorded call, as the app's AMI account of today's manager.conf gets it: the recording was
    made before some of its event filters came (tests/asterisk_config/test_queue_calls.py checks
    that a real call brings that account what this keeps)."""
    receives = account_receives(render_config(settings)["manager.conf"], settings.ami_user)
    events = [e for e in events_of(TRANSCRIPT) if receives("\r\n".join(f"{k}: {v}" for k, _, v in e))]
    first = next(i for i, e in enumerate(events) if e[0][2] == "Newchannel")
    call = events[first:]
    join = next(i for i, e in enumerate(call) if e[0][2] == "QueueCallerJoin")
    t0 = float(dict((k, v) for k, _, v in call[0])["Timestamp"])
    phases: list[Phase] = []
    frames: list[Frame] = []
    start = last = 0.0
    for i, lines in enumerate(call):
        d = {k: v for k, _, v in lines}
        at = float(d["Timestamp"]) - t0
        kinds = {}
        for key in VAR_KEYS:  # 0: a new channel (nothing set), 1: the dialplan's ids, 2: and the lookup's
            uid = next((v for k, _, v in lines if k == key and v.startswith("HL_UID=")), "HL_UID=")
            kinds[key] = 0 if uid == "HL_UID=" else 1 if i < join else 2
        if frames and (at - last > PHASE_GAP_S or i == join):
            phases.append(Phase(start, tuple(frames), lookup=frames[0].event == "QueueCallerJoin"))
            frames, start = [], at
        frames.append(Frame(d["Event"], template(lines, kinds)))
        last = at
    phases.append(Phase(start, tuple(frames), survey=True))
    phases = [Phase(p.at, p.frames, p.lookup, p.survey,
                    any(f.event == "Hangup" and "{chan1}" in f.text for f in p.frames)) for p in phases]
    assert [p.lookup for p in phases].count(True) == 1 and [p.frees_seat for p in phases].count(True) == 1
    assert sum(len(p.frames) for p in phases) == len(call)

    def recorded(events: list[list[tuple[str, str, str]]], name: str) -> str:
        return template(next(e for e in events if e[0][2] == name), {})

    return Recording(tuple(phases), recorded(events, "QueueMemberAdded"),
                     recorded(events_of(PAUSE_TRANSCRIPT), "QueueMemberPause"),
                     recorded(events, "FullyBooted"))


# --- Asterisk's side: the AMI server, the queue members, the calls, the AGI sessions ---------------


@dataclass
class Member:
    seat: str
    login: int
    taken: int = 0
    last_call: int = 0
    last_pause: int = 0
    paused: bool = False
    reason: str = ""
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def fields(self) -> dict[str, object]:
        return {"m_CallsTaken": self.taken, "m_LastCall": self.last_call, "m_LastPause": self.last_pause,
                "m_LoginTime": self.login, "m_Paused": int(self.paused), "m_PausedReason": self.reason}

    async def until(self, paused: bool) -> None:
        while self.paused != paused:
            self.changed.clear()
            await self.changed.wait()


@dataclass
class Call:
    n: int
    seat: str
    caller: str
    start: float = 0.0
    lookup: dict[str, str] = field(default_factory=dict)
    lookup_ms: float = 0.0
    called_at: float = 0.0  # the AgentCalled Timestamp: where the measured latency starts
    rung: asyncio.Event = field(default_factory=asyncio.Event)
    ended: asyncio.Event = field(default_factory=asyncio.Event)  # its last events sent: its spies end
    times: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.start = time.time()
        base = int(self.start)
        self.fields = {"uid0": f"{base}.{2 * self.n}", "uid1": f"{base}.{2 * self.n + 1}",
                       "chan0": f"PJSIP/trunk-in-{2 * self.n:08x}", "chan1": f"PJSIP/{self.seat}-{2 * self.n + 1:08x}",
                       "caller": self.caller, "seat": self.seat, "bridge": str(uuid.uuid4())}
        self.recbase = f"hotline-{time.strftime('%Y%m%d-%H%M%S', time.localtime(self.start))}-{self.fields['uid0']}"

    @property
    def call_id(self) -> str:
        return self.fields["uid0"]

    def variables(self) -> dict[str, str]:
        """The channel-variable runs, as manager.conf's channelvars lists them today."""
        ids = {"HL_UID": self.call_id, "HL_CALLER": self.caller, "HL_RECBASE": self.recbase}
        out = {}
        for key in VAR_KEYS:
            for kind, values in enumerate(({}, ids, ids | self.lookup)):
                out[f"{key}_{kind}"] = "\r\n".join(f"{key}: {name}={values.get(name, '')}" for name in CHANNEL_VARS)
        return out


@dataclass
class _Agi(AgiClient):
    channel: str = "PJSIP/trunk-1"

    def header(self) -> bytes:
        return header(self.host, self.port, self.script, self.uniqueid, self.callerid, channel=self.channel,
                      version="22.5.0", extra=self.extra_env)


class Asterisk:
    """Just enough of our Asterisk for the bridge and the dialplan: AMI login, the list actions,
    queue members, whole calls from the recording, and the FastAGI sessions of each call."""

    def __init__(self, rec: Recording, agi_port: int, pace: float, seats_logged: int,
                 voices: dict[str, tuple[bytes, int]] | None = None) -> None:
        self.rec, self.agi_port, self.pace, self.seats_logged = rec, agi_port, pace, seats_logged
        # the live transcript's spies (bench/screen_pop.py --live): each leg's voice, streamed over
        # AudioSocket from the Originate the bridge sends until the call ends, as chan_audiosocket does
        self.voices = voices or {}
        self.calls: dict[str, Call] = {}  # channel → its call, while it is up
        self.spies: list[asyncio.Task[object]] = []
        self.spied = 0
        self.writers: list[asyncio.StreamWriter] = []
        self.members: dict[str, Member] = {}
        self.waiting = 0  # callers in the queue (QueueCallerJoin/Leave's Position and Count)
        self.logged_in = asyncio.Event()

    async def serve(self, port: int) -> asyncio.AbstractServer:
        return await asyncio.start_server(self._session, "127.0.0.1", port)

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"Asterisk Call Manager/11.0.0\r\n")
        self.writers.append(writer)
        try:
            while True:
                raw = await reader.readuntil(b"\r\n\r\n")
                action = dict(ln.split(": ", 1) for ln in raw.decode().strip().split("\r\n") if ": " in ln)
                self._answer(writer, action)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.writers.remove(writer)

    def _answer(self, w: asyncio.StreamWriter, a: dict[str, str]) -> None:
        aid, name = a.get("ActionID", ""), a.get("Action", "").lower()
        if name in ("queuestatus", "coreshowchannels"):
            w.write(f"Response: Success\r\nActionID: {aid}\r\nEventList: start\r\nMessage: follows\r\n\r\n".encode())
            done = "QueueStatusComplete" if name == "queuestatus" else "CoreShowChannelsComplete"
            w.write(f"Event: {done}\r\nActionID: {aid}\r\nEventList: Complete\r\nListItems: 0\r\n\r\n".encode())
            return
        message = {"queueadd": "Added interface to queue", "queuepause": "Interface paused successfully",
                   "login": "Authentication accepted"}.get(name, "Success")
        w.write(f"Response: Success\r\nActionID: {aid}\r\nMessage: {message}\r\n\r\n".encode())
        now = time.time()
        if name == "originate" and a.get("Channel", "").startswith("AudioSocket/"):
            self._spy(a["Channel"], a.get("Data", "").split(",")[0])
        elif name == "login":  # as Asterisk does once booted; the bridge waits for it before resyncing
            w.write(self.rec.fully_booted.format().encode())
            self.logged_in.set()
        elif name == "queueadd":
            seat = a.get("MemberName", "")
            m = self.members[seat] = Member(seat, int(now))
            self.send([self.rec.member_added.format(ts=f"{now:.6f}", seat=seat, **m.fields())])
        elif name == "queuepause":
            m = self.members[a.get("Interface", "").split("/")[-1]]
            m.paused = a.get("Paused", "").lower() in ("true", "1", "yes")
            m.reason = a.get("Reason", "") if m.paused else ""
            m.last_pause = int(now) if m.paused else m.last_pause
            m.changed.set()
            self.send([self.rec.member_pause.format(ts=f"{now:.6f}", seat=m.seat, **m.fields())])

    def _spy(self, channel: str, spied: str) -> None:
        """``AudioSocket/host:port/uuid`` spying ``spied``: its leg's voice, looped, until the call ends."""
        address, leg = channel.split("/")[1:3]
        call = self.calls.get(spied)
        if call is None or not self.voices:
            return
        pcm, rate = self.voices["citizen" if spied == call.fields["chan0"] else "operator"]
        host, port = address.rsplit(":", 1)

        async def stream() -> object:
            go = asyncio.create_task(stream_leg(host, int(port), leg, pcm * 20, rate))
            await call.ended.wait()
            go.cancel()  # the leg hung up: Asterisk closes the socket
            return await asyncio.gather(go, return_exceptions=True)

        self.spied += 1
        self.spies.append(asyncio.create_task(stream()))

    def send(self, frames: list[str]) -> None:
        data = "".join(frames).encode()
        for w in self.writers:
            w.write(data)

    async def play(self, call: Call, freed: asyncio.Event) -> None:
        """The recorded call on ``call.seat``: each phase at its recorded offset × pace."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        member = self.members[call.seat]
        blocks = call.variables()
        self.calls[call.fields["chan0"]] = self.calls[call.fields["chan1"]] = call
        for phase in self.rec.phases:
            delay = start + phase.at * self.pace - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if phase.lookup:
                t = time.perf_counter()
                call.lookup = await self.lookup(call)
                call.lookup_ms = (time.perf_counter() - t) * 1000
                blocks = call.variables()
            elif phase.survey:
                await self.agi(call, "survey", hangup_at=1)  # the caller hangs up in the survey's prompt
            frames = []
            for f in phase.frames:
                now = time.time()
                extra = self._bookkeeping(call, member, f.event, now)
                frames.append(f.text.format(ts=f"{now:.6f}", **call.fields, **blocks, **member.fields(), **extra))
            self.send(frames)
            if phase.frees_seat:
                freed.set()
        call.ended.set()
        self.calls.pop(call.fields["chan0"], None)
        self.calls.pop(call.fields["chan1"], None)

    def _bookkeeping(self, call: Call, member: Member, event: str, now: float) -> dict[str, object]:
        """What Asterisk counts as the call goes: the queue's length, the member's calls, durations."""
        t = call.times
        t.setdefault(event, now)
        if event == "QueueCallerJoin":
            self.waiting += 1
            return {"Position": self.waiting, "Count": self.waiting}
        if event == "QueueCallerLeave":
            self.waiting -= 1
            return {"Position": 1, "Count": self.waiting}
        if event == "AgentCalled":
            call.called_at = now
            call.rung.set()
        elif event == "AgentConnect":
            return {"HoldTime": round(now - t["QueueCallerJoin"]), "RingTime": round(now - t["AgentCalled"])}
        elif event == "AgentComplete":
            member.taken += 1
            member.last_call = int(now)
            return {"HoldTime": round(t["AgentConnect"] - t["QueueCallerJoin"]),
                    "TalkTime": round(now - t["AgentConnect"])}
        return {}

    async def agi(self, call: Call, script: str, **kw: object) -> dict[str, str]:
        client = _Agi("127.0.0.1", self.agi_port, script=script, callerid=call.caller, uniqueid=call.call_id,
                      channel=call.fields["chan0"], extra_env={"agi_arg_1": str(self.seats_logged)}, **kw)
        await client.run()
        return client.variables

    async def lookup(self, call: Call) -> dict[str, str]:
        """``AGI(agi://…/lookup,${HL_SEATS})``; what it sets on the channel (``__`` = inherited)."""
        found = await self.agi(call, "lookup")
        return {name.lstrip("_"): v for name, v in found.items() if name.lstrip("_") in LOOKUP_VARS}


def live_voices(var: Path) -> dict[str, tuple[bytes, int]]:
    """Each leg's voice for the spies: the simulator's Korean phrases (what the test model hears)."""
    from testkit.audio import leg
    from testkit.audiosocket import read_wav

    citizen = leg(var / "live-citizen.wav", [("sil", 0.3), ("say", "caller_ko"), ("sil", 0.8)], 9.0)
    operator = leg(var / "live-operator.wav", [("sil", 0.5), ("say", "agent_ko"), ("sil", 1.0)], 5.0)
    return {"citizen": read_wav(citizen), "operator": read_wav(operator)}
