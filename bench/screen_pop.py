"""Screen-pop latency: the AgentCalled ``Timestamp`` → the pop arriving at the operator's client,
while 50 seats take whole calls, each pop carrying the caller's ticket history (issue #18).

This machine has 10 SIP seats, so 50 phones ringing at once cannot be real calls here. The bench
plays Asterisk instead, with what our Asterisk 22 sent: every AMI event of a recorded SIP call
(``tests/fixtures/ami/test_sip_call_is_answered_by_a_signed_in_seat_in_3_s_and_recorded.ami``:
Newchannel, the queue join, ringing, answer, bridge, the operator's hang-up, the caller's after the
survey; 29 events, and no Cdr: our Asterisk loads no cdr_manager), renumbered per call (Uniqueid,
Linkedid, the channels, the bridge, the recording name), moved to the operator's seat and
interface, and re-timestamped as they are sent, the recorded gaps × ``--pace`` (0.25: the 14 s call
in 3.5 s, four times real time's event rate; 1 replays it in real time). The dialplan's FastAGI
sessions are Asterisk's part too: before the queue join each call runs ``AGI(…/lookup)`` against
the app (``testkit.agi``: Asterisk's side of the protocol), and what the lookup sets becomes the
``ChanVariable`` lines of the call's later events (manager.conf's ``channelvars`` as rendered
today), as on a real channel; the caller then leaves ``AGI(…/survey)`` by hanging up. Queue
members follow the bridge's actions (QueueAdd → QueueMemberAdded, QueuePause → QueueMemberPause,
as recorded in ``tests/cti/transcripts/``): a seat in wrap-up (话后处理) is not rung.

Everything after the sockets is the production path, in its own process, served as ``hotline up``
serves it (``launch.compose.server_config``, the CTI bridge and FastAGI in-process as the default
``HOTLINE_SERVICES`` has them): AMI parser → state → bus → ``/ws`` fan-out, the lookups on the
store, the call log filing every finished call.

* **The store**: finished tickets through ``hotline tickets import``'s code (``Store.imports``),
  2–7 for each of ``--callers`` numbers and the rest of ``--tickets`` for numbers that do not call,
  and an open ticket through the intake for a third of the callers. Every pop is checked to carry
  exactly the latest tickets the store holds for its caller.
* **The operators**: accounts made as ``hotline account create --password-stdin`` makes them
  (``accounts.admin.AccountAdmin``), signed in through ``POST /api/auth/login`` with their password
  (the session is the cookie it sets), then to a seat (``POST /api/seat/signin``), following
  ``/ws`` with that cookie and the page's ``Origin``, ending each wrap-up with
  ``POST /api/seat/wrapup/done`` at a random moment before the next call.
* **The calls**: the 50 seats rung at once, burst after burst, each burst as the previous callers
  hang up (their calls filed then). The first burst warms up; ``--rounds`` bursts are counted
  (21 × 50 = 1 050 pops: p99 is about the 11th worst, not the 3rd).

The 50 clients stand in for 50 browsers on 50 PCs: one process of their own (uvloop), apart from
the one playing Asterisk. A few pops are also timed to the moment they are *visible* in Debian's
chromium (an operator's /console, signed in through the login form).

Run from the repo root: ``.venv/bin/python bench/screen_pop.py [--calls 50] [--rounds 21]``.
Last line: ``calls=50 samples=… p50_ms=… p99_ms=… browser_p50_ms=…`` (goal: p99 ≤ 50 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import random
import re
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import sqlalchemy as sa  # noqa: E402
import websockets  # noqa: E402

from hotline.asterisk.render import CHANNEL_VARS  # noqa: E402
from hotline.settings import Settings  # noqa: E402
from testkit.agi import AgiClient, header  # noqa: E402
from testkit.benchrun import pct  # noqa: E402

TRANSCRIPT = ROOT / "tests/fixtures/ami/test_sip_call_is_answered_by_a_signed_in_seat_in_3_s_and_recorded.ami"
PAUSE_TRANSCRIPT = ROOT / "tests/cti/transcripts/seat_holds_the_call.ami"  # a QueueMemberPause of ours
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
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
XRW = {"X-Requested-With": "hotline"}  # what the console's scripts send with a POST


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


def load_recording() -> Recording:
    events = events_of(TRANSCRIPT)
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

    def __init__(self, rec: Recording, agi_port: int, pace: float, seats_logged: int) -> None:
        self.rec, self.agi_port, self.pace, self.seats_logged = rec, agi_port, pace, seats_logged
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
        if name == "login":  # as Asterisk does once booted; the bridge waits for it before resyncing
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


# --- the store and the accounts (before the app starts) ---------------------------------------------


def history_rows(callers: list[str], total: int, dept_names: dict[str, str], rnd: random.Random
                 ) -> list[dict[str, object]]:
    """Finished tickets of the last two years, as the old system's export gives them to
    ``hotline tickets import``: 2–7 for each caller of the bench, and the rest of ``total`` for
    numbers that do not call now (about three each), so the lookup reads a store of some size."""
    from ticketing.seed import COMPOUNDS, DISTRICTS, MARKETS, ROADS, SCENARIOS, SURNAMES

    owners = [c for c in callers for _ in range(rnd.randint(2, 7))]
    others = [f"1{rnd.choice('3578')}{rnd.randint(0, 9)}{rnd.randint(10000000, 99999999)}"
              for _ in range(max(1, (total - len(owners)) // 3))]
    owners += [rnd.choice(others) for _ in range(max(0, total - len(owners)))]
    now = time.time()
    when = sorted(now - 3 * 86400 - rnd.random() * 730 * 86400 for _ in owners)
    rnd.shuffle(owners)
    weights = [s.weight for s in SCENARIOS]
    rows = []
    for i, (created, number) in enumerate(zip(when, owners, strict=True)):
        sc = rnd.choices(SCENARIOS, weights)[0]
        slots = {"district": rnd.choice(DISTRICTS), "road": rnd.choice(ROADS), "road2": rnd.choice(ROADS),
                 "compound": rnd.choice(COMPOUNDS), "market": rnd.choice(MARKETS), "n": rnd.randint(1, 30),
                 "when": "昨天"}
        at = datetime.fromtimestamp(created, UTC)
        rows.append({
            "number": f"H{at:%Y%m%d}{i + 1:07d}", "status": "archived" if rnd.random() < 0.7 else "closed",
            "created_at": at.isoformat(), "closed_at": (at + timedelta(days=rnd.randint(1, 15))).isoformat(),
            "channel": "电话", "caller_number": number, "caller_name": rnd.choice(SURNAMES) + "女士",
            "category": sc.category, "subcategory": sc.subcategory, "confidential": rnd.random() < 0.04,
            "emergency": sc.emergency, "handling_mode": sc.mode, "title": sc.title.format(**slots),
            "district": slots["district"], "matter_time": "昨天",
            "matter_place": f"{slots['district']}{slots['road']}{slots['compound']}",
            "matter_course": sc.course.format(**slots), "matter_demand": sc.demand,
            "operator": f"{rnd.randint(1, 60):03d}", "lead_department": dept_names[sc.dept],
            "reply_text": "已办理，已答复市民", "satisfaction": rnd.choice(["满意", "基本满意", "不满意"]),
        })
    return rows


def prepare(settings: Settings, tickets: int, pool: int, operators: dict[str, str], seed: int
            ) -> tuple[list[str], dict[str, tuple[str, ...]]]:
    """The bench's database: the callers' history (finished tickets through the import path, and
    an open one for a third of them through the operator's intake, so the pop shows deadline
    colours), the tickets each caller's pop must carry, and the operators' accounts, made as
    ``hotline account create --password-stdin`` makes them."""
    from accounts.admin import AccountAdmin, Actor
    from hotline.identity import Principal, Role
    from launch.compose import build
    from ticketing.models import Department
    from ticketing.seed import DISTRICTS, SCENARIOS, seed_demo

    rnd = random.Random(seed)
    callers = sorted({f"13{rnd.randint(0, 9)}{rnd.randint(10000000, 99999999)}" for _ in range(pool)})
    node = build(settings, set())
    try:
        store = node.store
        seed_demo(node.engine, tickets=0)  # the demo city's departments and knowledge base
        with node.engine.connect() as c:
            dept_names = {k: v for k, v in c.execute(sa.select(Department.short_name, Department.name))}
        t = time.perf_counter()
        rows = history_rows(callers, tickets, dept_names, rnd)
        report = store.imports.tickets(rows, Principal("bench-admin", Role.ADMIN), batch=5000)
        assert report.imported == len(rows) and not report.errors, report.errors[:3]
        operator = Principal("bench-intake", Role.OPERATOR, job_number="088")
        for number in callers[::3]:
            sc, district = rnd.choice(SCENARIOS), rnd.choice(DISTRICTS)
            slots = {"district": district, "road": "中华路", "road2": "人民路", "compound": "丽景花园",
                     "market": "东关市场", "n": 3, "when": "今天"}
            store.tickets.create({
                "category": sc.category, "subcategory": sc.subcategory, "title": sc.title.format(**slots),
                "caller_number": number, "caller_name": "李先生", "district": district,
                "matter_course": sc.course.format(**slots), "matter_demand": sc.demand, "handling_mode": sc.mode,
            }, operator)
        print(f"store: {report.imported} finished tickets imported, {len(callers[::3])} open ones taken in "
              f"({time.perf_counter() - t:.0f} s)", flush=True)
        history = {n: tuple(t.number for t in store.callers.summary(n, 5).recent) for n in callers}
        assert all(len(h) >= 2 for h in history.values())
        admin = AccountAdmin(node.accounts)
        for i, (user, password) in enumerate(operators.items()):
            admin.create(Actor("cli:bench", "localhost"), user, "operator", display_name=f"话务员{i + 1:02d}",
                         job_number=f"{7000 + i}", password=password)
    finally:
        node.engine.dispose()
    return callers, history


APP = """
import json, logging, sys, uvicorn
from launch.compose import server_config
from hotline.settings import Settings
# the witness still runs; it is only not told to print every call, as none is in Asterisk's own
# records here (no CEL without Asterisk): a warning listing a thousand call ids per check
logging.getLogger('launch.witness').setLevel(logging.ERROR)
uvicorn.Server(server_config(Settings(**json.loads(sys.argv[1])), log_level='warning')).run()
"""


# --- the operators: signed in as people are, and their browsers (another process) -----------------


@dataclass
class Operator:
    user: str
    password: str
    seat: str
    http: httpx.AsyncClient

    @property
    def cookie(self) -> str:
        return self.http.cookies["hotline_token"]

    async def sign_in(self) -> None:
        """The login form's request, then the console's seat sign-in, on the session cookie."""
        r = await self.http.post("/api/auth/login", json={"username": self.user, "password": self.password})
        assert r.status_code == 200 and self.cookie, r.text
        r = await self.http.post("/api/seat/signin", json={"seat": self.seat}, headers=XRW)
        assert r.status_code == 200, r.text

    async def end_wrapup(self) -> None:
        r = await self.http.post("/api/seat/wrapup/done", headers=XRW)
        assert r.status_code == 200, r.text


def browsers_main(conn, url: str, sessions: list[tuple[str, str]]) -> None:
    import uvloop

    uvloop.run(_browsers(conn, url, sessions))


async def _browsers(conn, url: str, sessions: list[tuple[str, str]]) -> None:
    """One /ws per operator, opened as the console opens it (its session cookie, its Origin);
    every pop timed on arrival, then checked for the caller's history."""
    pops: dict[str, tuple[float, str, tuple[str, ...]]] = {}
    completed: set[str] = set()
    opened = asyncio.Queue[str]()

    async def follow(user: str, token: str) -> None:
        async with websockets.connect(f"ws://{url}/ws", origin=f"http://{url}",  # type: ignore[arg-type]
                                      additional_headers={"Cookie": f"hotline_token={token}"},
                                      max_size=None, ping_interval=None) as ws:
            assert json.loads(await ws.recv())["type"] == "hello"
            opened.put_nowait(user)
            async for raw in ws:
                arrived = time.time()
                if '"type":"screen_pop"' in raw:  # type: ignore[operator]
                    msg = json.loads(raw)
                    recent = msg["variables"].get("HL_RECENT", "")
                    pops.setdefault(msg["call_id"], ((arrived - float(msg["at"])) * 1000, user,
                                                     tuple(t.split(":")[0] for t in recent.split(",") if t)))
                elif '"CallCompleted"' in raw:  # type: ignore[operator]
                    completed.add(json.loads(raw)["call_id"])
                elif '"ping"' in raw and json.loads(raw).get("type") == "ping":  # type: ignore[operator]
                    await ws.send('{"type":"pong"}')

    tasks = [asyncio.create_task(follow(u, t)) for u, t in sessions]
    for _ in sessions:
        await asyncio.wait_for(opened.get(), 30)
    loop = asyncio.get_running_loop()
    conn.send("ready")
    await loop.run_in_executor(None, conn.recv)  # "stop"
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    conn.send((pops, sorted(completed)))
    conn.close()


# --- the run ------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Bench:
    def __init__(self, args: argparse.Namespace, asterisk: Asterisk, ops: list[Operator], callers: list[str]) -> None:
        self.args, self.asterisk, self.ops, self.callers = args, asterisk, ops, callers
        self.rnd = random.Random(args.seed)
        self.calls: list[list[Call]] = []  # by burst
        self.late: list[float] = []  # how late each call rang after its burst's moment (ms)
        self.plays: list[asyncio.Task[None]] = []
        self.n = 0

    def new_call(self, seat: str, caller: str) -> Call:
        self.n += 1
        return Call(self.n, seat, caller)

    async def run(self) -> None:
        """Bursts of len(ops) calls; each burst comes as the previous callers hang up."""
        a, loop = self.asterisk, asyncio.get_running_loop()
        period = a.rec.length_s * a.pace + 0.002
        bursts = self.args.rounds + 1
        callers = [self.rnd.sample(self.callers, len(self.ops)) for _ in range(bursts)]
        self.calls = [[] for _ in range(bursts)]
        t0 = loop.time() + 0.5

        async def seat(i: int, op: Operator) -> None:
            member, wrap = a.members[op.seat], random.Random(self.args.seed * 1000 + i)
            for b in range(bursts):
                at = t0 + b * period
                await asyncio.sleep(max(0.0, at - loop.time()))
                await member.until(False)  # a seat in wrap-up is not rung
                self.late.append((loop.time() - at) * 1000)
                call = self.new_call(op.seat, callers[b][i])
                self.calls[b].append(call)
                freed = asyncio.Event()
                self.plays.append(asyncio.create_task(a.play(call, freed)))
                await freed.wait()
                await member.until(True)  # the bridge paused the seat for 话后处理
                next_at = at + period
                click = loop.time() + wrap.random() * max(0.0, next_at - 0.15 * (period - a.rec.seat_free_s * a.pace)
                                                           - loop.time())
                await asyncio.sleep(max(0.0, click - loop.time()))
                await op.end_wrapup()

        await asyncio.gather(*(seat(i, op) for i, op in enumerate(self.ops)))
        await asyncio.gather(*self.plays)

    async def one_call(self, op: Operator) -> Call:
        """For the browser: one whole call on ``op``'s seat; returns once it rings."""
        a = self.asterisk
        await a.members[op.seat].until(False)
        call = self.new_call(op.seat, self.rnd.choice(self.callers))
        freed = asyncio.Event()
        self.plays.append(asyncio.create_task(a.play(call, freed)))
        call.freed = freed  # type: ignore[attr-defined]
        await call.rung.wait()
        return call

    async def finish(self, op: Operator, call: Call) -> None:
        await call.freed.wait()  # type: ignore[attr-defined]
        await self.asterisk.members[op.seat].until(True)
        await op.end_wrapup()
        await asyncio.gather(*self.plays)


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=50, help="seats rung at once")
    ap.add_argument("--rounds", type=int, default=21, help="bursts counted (one more warms up)")
    ap.add_argument("--pace", type=float, default=0.25, help="the recorded call's gaps × this (1: real time)")
    ap.add_argument("--tickets", type=int, default=50_000, help="finished tickets in the store")
    ap.add_argument("--callers", type=int, default=500, help="numbers with a history the calls come from")
    ap.add_argument("--browser-samples", type=int, default=10)
    ap.add_argument("--seed", type=int, default=18)
    args = ap.parse_args()
    n = args.calls
    seats = [f"9{i:03d}" for i in range(1, n + 1)]
    passwords = {f"op{s}": secrets.token_urlsafe(12) + "-Q7" for s in seats}
    ami_port, web_port, agi_port = free_port(), free_port(), free_port()
    var = tempfile.mkdtemp(prefix="screen-pop-")
    config = {"var_dir": var, "services": ["cti", "agi"], "ami_host": "127.0.0.1", "ami_port": ami_port,
              "ami_secret": "bench", "seats": seats, "cti_shifts": [], "web_host": "127.0.0.1", "web_port": web_port,
              "agi_host": "127.0.0.1", "agi_port": agi_port,
              "agi_announce_job_number": False}  # the recorded call has no announcement before the bridge
    callers, history = await asyncio.to_thread(prepare, Settings(**config), args.tickets, args.callers, passwords,
                                               args.seed)
    assert len(callers) >= n, f"only {len(callers)} numbers with a history: more --tickets"
    asterisk = Asterisk(load_recording(), agi_port, args.pace, n)
    server = await asterisk.serve(ami_port)
    # started once, before anything is measured
    proc = subprocess.Popen([sys.executable, "-c", APP, json.dumps(config)], cwd=ROOT,  # noqa: ASYNC220
                            env=os.environ | {"PYTHONPATH": str(ROOT)})
    url = f"127.0.0.1:{web_port}"
    ops = [Operator(u, p, s, httpx.AsyncClient(base_url=f"http://{url}", timeout=30, headers={"Origin": f"http://{url}"}))
           for (u, p), s in zip(passwords.items(), seats, strict=True)]
    browsers = None
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if (await ops[0].http.get("/login")).status_code == 200 and asterisk.logged_in.is_set():
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline and proc.poll() is None, "the app did not start"
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)  # the bridge's resync after login
        for op in ops:
            await op.sign_in()
        ctx = mp.get_context("spawn")
        conn, child = ctx.Pipe()
        browsers = ctx.Process(target=browsers_main, args=(child, url, [(op.user, op.cookie) for op in ops]))
        browsers.start()
        assert await asyncio.to_thread(conn.recv) == "ready"
        bench = Bench(args, asterisk, ops, callers)
        started = time.monotonic()
        await bench.run()
        await asyncio.sleep(0.5)  # the last pops and completions in flight
        conn.send("stop")
        pops, completed = await asyncio.to_thread(conn.recv)
        browsers.join(10)
        elapsed = time.monotonic() - started
        counted = [c for burst in bench.calls[1:] for c in burst]
        every = [c for burst in bench.calls for c in burst]
        missing = [c.call_id for c in counted if c.call_id not in pops]
        assert not missing, f"{len(missing)} of {len(counted)} pops never arrived"
        wrong = [c.call_id for c in counted if pops[c.call_id][2] != history[c.caller]]
        assert not wrong, f"{len(wrong)} pops without the caller's history, e.g. {pops[wrong[0]]}"
        assert all(pops[c.call_id][1] == f"op{c.seat}" for c in counted), "a pop reached another operator"
        done = set(completed)
        latencies = [pops[c.call_id][0] for c in counted]
        filed = await asyncio.to_thread(call_log_count, Settings(**config), [c.call_id for c in every])
        lookups = [c.lookup_ms for c in every]
        sizes = [len(history[c.caller]) for c in counted]
        print(f"{len(every)} whole calls ({sum(len(p.frames) for p in asterisk.rec.phases)} AMI events, a lookup "
              f"and a survey AGI session each) in {len(bench.calls)} bursts of {n} over {elapsed:.0f} s (pace "
              f"{args.pace}); {sum(c.call_id in done for c in every)} seen completed by their operator, {filed} in "
              f"the call log; lookups p50 {pct(lookups, 50):.1f} ms p99 {pct(lookups, 99):.1f} ms; seats rung "
              f"late p99 {pct(bench.late, 99):.1f} ms", flush=True)
        print(f"{len(latencies)} pops counted (burst 0 warms up), each with its caller's {min(sizes)}–{max(sizes)} "
              f"latest tickets: p50 {pct(latencies, 50):.1f} ms, p95 {pct(latencies, 95):.1f} ms, "
              f"p99 {pct(latencies, 99):.1f} ms, max {max(latencies):.1f} ms", flush=True)
        browser = await asyncio.to_thread(browser_samples, url, ops[0], bench, args.browser_samples,
                                          asyncio.get_running_loop())
    finally:
        if browsers is not None and browsers.is_alive():
            browsers.kill()
        proc.terminate()
        proc.wait(10)
        for op in ops:
            await op.http.aclose()
        for w in list(asterisk.writers):
            w.close()
        server.close()
        await asyncio.sleep(0.2)  # the AMI session tasks see their socket close and end
    if browser:
        print(f"browser samples {len(browser)}: " + ", ".join(f"{b:.0f}" for b in browser) + " ms")
    line = (f"calls={n} samples={len(latencies)} p50_ms={pct(latencies, 50):.1f} p99_ms={pct(latencies, 99):.1f}")
    print(line + (f" browser_p50_ms={pct(browser, 50):.1f}" if browser else ""))


def call_log_count(settings: Settings, ids: list[str]) -> int:
    """How many of the calls the app filed in its call log (its own process wrote them)."""
    from hotline.db import make_engine
    from ticketing.models import CallRecord

    time.sleep(1.0)  # the filer works in the background
    engine = make_engine(settings.db_url)
    try:
        with engine.connect() as c:
            return c.execute(sa.select(sa.func.count()).select_from(CallRecord)
                             .where(CallRecord.uniqueid.in_(ids))).scalar_one()
    finally:
        engine.dispose()


def browser_samples(url: str, op: Operator, bench: Bench, k: int, loop: asyncio.AbstractEventLoop) -> list[float]:
    """AgentCalled Timestamp → the strip painted in chromium (``op``'s /console, signed in with the form)."""
    if k <= 0:
        return []
    from playwright.sync_api import sync_playwright

    def on_loop(coro):
        return asyncio.run_coroutine_threadsafe(coro, loop).result(60)

    out = []
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = b.new_context(viewport={"width": 1366, "height": 768}).new_page()
        page.goto(f"http://{url}/login?next=/console")
        page.fill("input[name=username]", op.user)
        page.fill("input[name=password]", op.password)
        page.click("button[type=submit]")
        page.wait_for_url(lambda u: u.split("?")[0].endswith("/console"), timeout=10_000)
        page.wait_for_function("document.getElementById('link')?.className.includes('on')", timeout=10_000)
        page.evaluate("""() => {
          const pop = document.getElementById('pop');
          new MutationObserver(() => { if (!pop.hidden) requestAnimationFrame(() => {
            window.__visibleAt = performance.timeOrigin + performance.now(); }); })
            .observe(pop, {attributes: true, attributeFilter: ['hidden']});
        }""")
        for i in range(k + 1):  # the first pop of a fresh page (fonts, first layout) is shown apart
            page.evaluate("() => { document.getElementById('pop').hidden = true; window.__visibleAt = null; }")
            call = on_loop(bench.one_call(op))
            page.wait_for_function("window.__visibleAt", timeout=10_000)
            out.append(page.evaluate("window.__visibleAt") - call.called_at * 1000)
            if i == 0:
                print(f"browser: first pop on a fresh page {out.pop():.0f} ms (not counted)")
            on_loop(bench.finish(op, call))
        b.close()
    return out


if __name__ == "__main__":
    import uvloop

    uvloop.run(main())
