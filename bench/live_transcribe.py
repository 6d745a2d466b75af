"""Live transcript under load (issue #16): concurrent legs streamed to a listening node in real time,
the lag from the end of each utterance to its final line at the operator's websocket, and the most
legs this box holds in real time, against Vosk alone on the same audio in the same run.

**Ours** is a web node as ``hotline up`` serves it (``launch.compose.server_config``) with the role
``listen`` (the AudioSocket server, a recogniser thread per leg at ``listen_nice`` 10, the finals
written to the database and given to the call's assistant), in a process of its own. No CTI runs:
the bench says on the node's bus what the bridge would (``LegsAssigned``: a call's two legs, each
call on its own seat), and who sits where is given to the web room as the console tests give it
(``app.state.roster``). The operators are accounts signed in with their password
(``POST /api/auth/login``), each following ``/ws`` with the session cookie and the page's Origin;
their clients and the legs' AudioSocket streams (``testkit.audiosocket.stream_leg``, 20 ms frames at
real-time pace, as Asterisk sends them) run in this process: what an Asterisk and the operators'
PCs would be. Each leg is a sentence of Korean speech every 4–5 s over a line's noise floor
(``testkit.livebench``); starts are staggered over 4 s.

**Lag** of an utterance = the arrival at its operator's websocket of the first final of its leg
whose last word ends no earlier than 0.3 s before the utterance does − the moment the utterance's
last sample was due to be sent. It has two parts, shown apart: the **endpoint** (Vosk decides a
sentence is over only after some trailing silence; where in the audio it decides is the same at
any load, known from decoding each leg once unloaded, ``testkit.livebench``) and the **delay** from
that point of the audio being sent to the line on the operator's socket (the recogniser's backlog,
the bus, the websocket: what load and our code add). Each final the node says is checked against
the unloaded decode (same text, same times).

**Held in real time** at N legs: no leg dropped (``LiveState`` degraded), every utterance answered,
and the delay's p95 ≤ ``--max-delay`` (1 s). The search starts at the node's default capacity (4 legs
a core), goes up by half until a level fails, then halves the gap (levels of ``--level-s``). At the
largest level held, the **measured** run: ``--samples`` utterances (400: p95 from 400) in two rounds
against the baseline, ours / Vosk / Vosk / ours on two sets of legs.

**Baseline** (not our code; this file with ``--baseline``, a process that imports only Vosk and the
standard library, checked): per leg a thread with Vosk's ``KaldiRecognizer`` (``SetWords(True)``)
fed the same audio in the same 20 ms frames at the same real-time pace and stagger, asking
``PartialResult`` every 0.2 s as the node does; its lag is to ``AcceptWaveform`` returning True. No
AudioSocket, bus, database, assistant or websocket, and nice 0.

CPU: the node's process (``/proc``; its threads at nice 10 are the recognisers, the main thread the
event loop) and the baseline's, per second of leg audio streamed.

Run from the repo root: ``.venv/bin/python bench/live_transcribe.py [--max-legs 40] [--samples 400]
[--quick]``. Last line: ``legs=… lag_p50_ms=… lag_p95_ms=… legs_per_core=…`` then the parts of the
lag, the baseline's, the ratio, drops and CPU (goals: lag p95 ≤ 2.5 s, ≥ 4 legs a core).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import re
import subprocess
import sys
import threading
import time
import uuid
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OURS = ("hotline", "recordings", "testkit", "ticketing", "accounts", "cti", "agi", "agent_ui", "notify", "launch",
        "live")
STAGGER_S = 4.0
FRAME_S = 0.02


def pct(values: list[float], p: float) -> float:
    from testkit.benchrun import pct as nearest_rank  # not at the top: the baseline's process imports none of ours

    return nearest_rank(values, p)

# ------------------------------------------------------------------ the baseline: Vosk alone

_MARKS = re.compile(r"\[[^\]\s]*\]")  # [unk], [noise]: not words (the node leaves them out too)


def baseline_main(model_dir: str) -> None:
    """Jobs on stdin (one JSON line each), answers on stdout: Vosk's public API and the standard
    library only, one thread per leg fed 20 ms frames at real-time pace."""
    import vosk

    vosk.SetLogLevel(-1)
    model = vosk.Model(model_dir)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        job = json.loads(line)
        legs = []
        for spec in job["legs"]:
            with wave.open(spec["wav"]) as w:
                rate = w.getframerate()
                pcm = w.readframes(w.getnframes())[:spec["bytes"]]
            legs.append({"pcm": pcm, "rate": rate, "finals": [], "late": 0.0})
        t0 = time.monotonic() + 0.5
        for d, spec in zip(legs, job["legs"], strict=True):
            d["start"] = t0 + spec["delay"]

        def leg(d: dict) -> None:
            rec = vosk.KaldiRecognizer(model, d["rate"])
            rec.SetWords(True)
            step = int(d["rate"] * FRAME_S) * 2
            start = d["start"]
            for n, i in enumerate(range(0, len(d["pcm"]), step)):
                due = start + n * FRAME_S
                now = time.monotonic()
                if now < due:
                    time.sleep(due - now)
                else:
                    d["late"] = max(d["late"], now - due)
                if rec.AcceptWaveform(d["pcm"][i:i + step]):
                    said = time.monotonic()
                    got = json.loads(rec.Result()).get("result", [])
                    words = [w for w in got if not _MARKS.fullmatch(w["word"])]
                    if words:  # when it was said, where in the audio, its last word's end, the text
                        d["finals"].append([said, (n + 1) * FRAME_S, words[-1]["end"],
                                            " ".join(w["word"] for w in words)])
                elif (n + 1) % 10 == 0:
                    rec.PartialResult()
            rec.FinalResult()

        c0 = time.process_time()
        threads = [threading.Thread(target=leg, args=(d,)) for d in legs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        ours = sorted(m for m in sys.modules if m.split(".")[0] in OURS)
        print(json.dumps({"cpu_s": time.process_time() - c0, "ours": ours,
                          "legs": [{"start": d["start"], "finals": d["finals"], "late": d["late"]} for d in legs]}),
              flush=True)


# ------------------------------------------------------------------ the node, in its own process

NODE = """
import asyncio, json, logging, sys, threading, time
import uvicorn, uvloop
from launch.compose import server_config
from hotline.settings import Settings
from hotline.listening import LegsAssigned
logging.basicConfig(level=logging.WARNING, format='node: %(name)s: %(message)s')
logging.getLogger('launch.witness').setLevel(logging.ERROR)
settings = Settings(**json.loads(sys.argv[1]))
roster = json.loads(sys.argv[2])
config = server_config(settings, log_level='warning')
config.app.state.roster = lambda: roster  # no CTI here: who sits where is given (as the console tests do)
server = uvicorn.Server(config)

async def main():
    loop = asyncio.get_running_loop()
    def commands():  # the bridge's part: each line a call's legs, said on this node's bus
        for line in sys.stdin:
            ev = LegsAssigned(at=time.time(), **json.loads(line))
            loop.call_soon_threadsafe(config.app.state.bus.publish_nowait, ev)
        server.should_exit = True
    threading.Thread(target=commands, daemon=True).start()
    await server.serve()

uvloop.run(main())
"""


class ThreadCpu:
    """CPU of one process split by its threads (``/proc/PID/task``), sampled every 0.25 s so that the
    recognisers' threads, which end with their leg, are not missed: nice ≥ 10 (the recognisers), the
    main thread (the event loop: AudioSocket, bus, websockets) and the other threads."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.tick = os.sysconf("SC_CLK_TCK")
        self.seen: dict[int, tuple[int, float]] = {}  # tid → (nice, cpu s) at its last sample
        self.base: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        for tid in os.listdir(f"/proc/{self.pid}/task"):
            try:
                with open(f"/proc/{self.pid}/task/{tid}/stat") as f:
                    fields = f.read().rsplit(") ", 1)[1].split()
            except (OSError, IndexError):
                continue
            self.seen[int(tid)] = (int(fields[16]), (int(fields[11]) + int(fields[12])) / self.tick)

    def total(self) -> float:
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(") ", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / self.tick

    def start(self) -> None:
        self._sample()
        self.base = {tid: cpu for tid, (_, cpu) in self.seen.items()}
        self.total0 = self.total()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.25):
            self._sample()

    def stop(self) -> dict[str, float]:
        self._stop.set()
        assert self._thread is not None
        self._thread.join()
        self._sample()
        total = self.total() - self.total0
        delta = {tid: cpu - self.base.get(tid, 0.0) for tid, (_, cpu) in self.seen.items()}
        loop = delta.get(self.pid, 0.0)
        other = sum(d for tid, d in delta.items() if tid != self.pid and self.seen[tid][0] < 10)
        return {"total": total, "loop": loop, "other": other, "recognisers": max(0.0, total - loop - other)}


# ------------------------------------------------------------------ the operators' consoles


class Consoles:
    """One ``/ws`` per operator, signed in with the password as a person signs in; every
    ``live_transcript`` message timed on arrival (``time.monotonic``, the streams' clock)."""

    def __init__(self, url: str) -> None:
        self.url = url
        # (call, speaker) → every final: its arrival, its end_s, its text
        self.finals: dict[tuple[str, str], list[tuple[float, float, str]]] = {}
        self.partials = 0
        self.degraded: set[tuple[str, str]] = set()
        self.ended: set[str] = set()
        self.changed = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []

    async def open(self, passwords: dict[str, str]) -> None:
        import httpx

        opened: asyncio.Queue[str] = asyncio.Queue()
        async with httpx.AsyncClient(base_url=f"http://{self.url}", headers={"Origin": f"http://{self.url}"},
                                     timeout=30) as http:
            for user, password in passwords.items():
                http.cookies.clear()
                r = await http.post("/api/auth/login", json={"username": user, "password": password})
                assert r.status_code == 200, r.text
                self.tasks.append(asyncio.create_task(self._follow(user, http.cookies["hotline_token"], opened)))
        for _ in passwords:
            await asyncio.wait_for(opened.get(), 30)

    async def _follow(self, user: str, token: str, opened: asyncio.Queue[str]) -> None:
        import websockets

        async with websockets.connect(f"ws://{self.url}/ws", origin=f"http://{self.url}",  # type: ignore[arg-type]
                                      additional_headers={"Cookie": f"hotline_token={token}"},
                                      max_size=None, ping_interval=None) as ws:
            assert json.loads(await ws.recv())["type"] == "hello"
            opened.put_nowait(user)
            async for raw in ws:
                arrived = time.monotonic()
                if '"live_transcript"' in raw:  # type: ignore[operator]
                    msg = json.loads(raw)
                    key = (msg["call_id"], msg.get("speaker", ""))
                    if msg["event"] == "TranscriptLine":
                        if msg["final"]:
                            self.finals.setdefault(key, []).append((arrived, msg["end_s"], msg["text"]))
                        else:
                            self.partials += 1
                    elif msg.get("state") == "degraded":
                        self.degraded.add(key)
                    elif msg.get("state") == "ended":
                        self.ended.add(msg["call_id"])
                        self.changed.set()
                elif '"ping"' in raw and json.loads(raw).get("type") == "ping":  # type: ignore[operator]
                    await ws.send('{"type":"pong"}')

    async def close(self) -> None:
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


# ------------------------------------------------------------------ one level


@dataclass
class Planned:
    uid: str
    call: str
    seat: str
    user: str
    speaker: str
    audio: Any  # testkit.livebench.LegAudio
    pcm: bytes
    ends: list[float]
    delay: float


@dataclass
class Outcome:
    side: str
    n: int
    lags: list[float] = field(default_factory=list)
    delays: list[float] = field(default_factory=list)
    endpoints: list[float] = field(default_factory=list)
    missing: int = 0
    dropped: int = 0
    differ: int = 0  # finals not as the unloaded decode says them
    audio_s: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)
    client_cpu_s: float = 0.0
    late_s: float = 0.0  # the streams' worst lateness

    def held(self, max_delay: float) -> bool:
        return (not self.dropped and not self.missing and bool(self.delays)
                and pct(self.delays, 95) <= max_delay)

    def __add__(self, o: Outcome) -> Outcome:
        return Outcome(self.side, self.n, self.lags + o.lags, self.delays + o.delays, self.endpoints + o.endpoints,
                       self.missing + o.missing, self.dropped + o.dropped, self.differ + o.differ,
                       self.audio_s + o.audio_s, {k: self.cpu.get(k, 0) + o.cpu.get(k, 0) for k in {*self.cpu, *o.cpu}},
                       self.client_cpu_s + o.client_cpu_s, max(self.late_s, o.late_s))

    def line(self) -> str:
        ms = lambda v, p: f"{pct(v, p) * 1000:.0f}" if v else "-"  # noqa: E731
        cpu = self.cpu.get("total", 0.0) / max(self.audio_s, 1e-9)
        parts = "" if "loop" not in self.cpu else (
            f" (recognisers {self.cpu['recognisers'] / self.audio_s:.3f}, loop {self.cpu['loop'] / self.audio_s:.3f},"
            f" other threads {self.cpu['other'] / self.audio_s:.3f}; streams+consoles "
            f"{self.client_cpu_s / self.audio_s:.3f})")
        return (f"{self.side:>8} {self.n:>2} legs: {len(self.lags)} utterances, lag p50 {ms(self.lags, 50)} p95 "
                f"{ms(self.lags, 95)} ms = endpoint p50 {ms(self.endpoints, 50)} p95 {ms(self.endpoints, 95)} + delay "
                f"p50 {ms(self.delays, 50)} p95 {ms(self.delays, 95)} max {ms(self.delays, 100)} ms; dropped "
                f"{self.dropped}, unanswered {self.missing}, finals unlike the unloaded decode {self.differ}; "
                f"worst stream lateness {self.late_s * 1000:.0f} ms; CPU {cpu:.3f} core-s per leg-s{parts}")


class Bench:
    def __init__(self, node: subprocess.Popen[str], node_name: str, listen_port: int, consoles: Consoles,
                 baseline: subprocess.Popen[str], operators: list[tuple[str, str]]) -> None:
        self.node, self.node_name, self.listen_port = node, node_name, listen_port
        self.consoles, self.baseline, self.operators = consoles, baseline, operators
        self.level = 0

    def plan(self, audio: list[Any], n: int, length_s: float) -> list[Planned]:
        self.level += 1
        out = []
        for j in range(n):
            a = audio[j % len(audio)]
            pcm, ends = a.cut(length_s)
            user, seat = self.operators[j // 2]
            speaker = ("citizen", "operator")[j % 2]
            out.append(Planned(str(uuid.uuid4()), f"lt{self.level}-{j // 2}", seat, user, speaker, a, pcm, ends,
                               j * STAGGER_S / n))
        return out

    async def ours(self, audio: list[Any], n: int, length_s: float) -> Outcome:
        from testkit.audiosocket import stream_leg
        from testkit.livebench import RATE, match

        plan = self.plan(audio, n, length_s)
        assert self.node.stdin is not None
        for call in sorted({p.call for p in plan}):
            mine = [p for p in plan if p.call == call]
            self.node.stdin.write(json.dumps({"call_id": call, "seat": mine[0].seat, "operator": mine[0].user,
                                              "node": self.node_name, "legs": {p.uid: p.speaker for p in mine}}) + "\n")
        self.node.stdin.flush()
        await asyncio.sleep(0.3)
        meter = ThreadCpu(self.node.pid)
        meter.start()
        own0 = time.process_time()

        async def leg(p: Planned) -> Any:
            await asyncio.sleep(p.delay)
            return await stream_leg("127.0.0.1", self.listen_port, p.uid, p.pcm, RATE)

        sent = await asyncio.gather(*(leg(p) for p in plan))
        calls = {p.call for p in plan}
        deadline = time.monotonic() + 30
        while not calls <= self.consoles.ended and time.monotonic() < deadline:  # the last finals, then "ended"
            self.consoles.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.consoles.changed.wait(), deadline - time.monotonic())
        await asyncio.sleep(0.2)
        out = Outcome("ours", n, cpu=meter.stop(), client_cpu_s=time.process_time() - own0)
        for p, s in zip(plan, sent, strict=True):
            out.audio_s += len(p.pcm) / 2 / RATE
            out.late_s = max(out.late_s, s.ended - s.started - (s.frames_sent - 1) * FRAME_S)
            out.dropped += (p.call, p.speaker) in self.consoles.degraded
            live = self.consoles.finals.get((p.call, p.speaker), [])
            heard = match(p.ends, [(end, None) for _, end, _ in live])
            unloaded = match(p.ends, [(f.end_s, None) for f in p.audio.finals])
            for e, i, k in zip(p.ends, heard, unloaded, strict=True):
                f = p.audio.finals[k]
                out.endpoints.append(f.at_s - e)
                if i is None:
                    out.missing += 1
                    continue
                arrived, end, text = live[i]
                out.lags.append(arrived - (s.started + e))
                if text == f.text and abs(end - f.end_s) < 1e-6:
                    out.delays.append(arrived - (s.started + f.at_s))
            said = {(text, round(end, 3)) for _, end, text in live}
            out.differ += sum((f.text, round(f.end_s, 3)) not in said for f in p.audio.finals
                              if f.at_s <= len(p.pcm) / 2 / RATE)
        return out

    async def vosk_alone(self, audio: list[Any], n: int, length_s: float) -> Outcome:
        from testkit.livebench import RATE, match

        plan = self.plan(audio, n, length_s)
        assert self.baseline.stdin is not None and self.baseline.stdout is not None
        job = {"legs": [{"wav": str(p.audio.path), "bytes": len(p.pcm), "delay": p.delay} for p in plan]}
        self.baseline.stdin.write(json.dumps(job) + "\n")
        self.baseline.stdin.flush()
        got = json.loads(await asyncio.to_thread(self.baseline.stdout.readline))
        if got["ours"]:
            raise SystemExit(f"the baseline imported our code: {got['ours']}")
        out = Outcome("vosk", n, cpu={"total": got["cpu_s"]})
        for p, leg in zip(plan, got["legs"], strict=True):
            out.audio_s += len(p.pcm) / 2 / RATE
            out.late_s = max(out.late_s, leg["late"])
            finals = leg["finals"]  # [returned at, audio position, last word's end, text]
            for e, i in zip(p.ends, match(p.ends, [(f[2], None) for f in finals]), strict=True):
                if i is None:
                    out.missing += 1
                    continue
                said, at_s, _, _ = finals[i]
                out.lags.append(said - (leg["start"] + e))
                out.endpoints.append(at_s - e)
                out.delays.append(said - (leg["start"] + at_s))
        return out


def length_for(audio: list[Any], n: int, samples: int) -> float:
    """Seconds of each leg for ``samples`` utterances over ``n`` legs of ``audio`` (at most all of it)."""
    longest = min(a.seconds for a in audio)
    t = 10.0
    while t < longest and sum(len(audio[j % len(audio)].cut(t)[1]) for j in range(n)) < samples:
        t += 2.0
    return min(t, longest)


def even(x: float) -> int:
    return max(2, 2 * round(x / 2))


# ------------------------------------------------------------------ running it


def make_accounts(settings: Any, passwords: dict[str, str]) -> None:
    """The operators' accounts, made as ``hotline account create --password-stdin`` makes them."""
    from accounts.admin import AccountAdmin, Actor
    from launch.compose import build

    node = build(settings, set())
    try:
        admin = AccountAdmin(node.accounts)
        for i, (user, password) in enumerate(passwords.items()):
            admin.create(Actor("cli:bench", "localhost"), user, "operator", display_name=f"话务员{i + 1:02d}",
                         job_number=f"{6000 + i}", password=password)
    finally:
        node.engine.dispose()


async def run(args: argparse.Namespace) -> None:
    import secrets
    import socket
    import tempfile

    from hotline.settings import Settings
    from live.node import LEGS_PER_CORE
    from recordings.transcribe import model_path
    from testkit import free_port, livebench

    cores = len(os.sched_getaffinity(0))
    model = model_path(Settings())
    print(f"{cores} cores, load average {os.getloadavg()[0]:.2f}; model {Path(model).parent.name}", flush=True)
    audio = livebench.legs(model, 8, args.leg_s, args.seed)
    sets = [audio[:4], audio[4:]]
    calls = (args.max_legs + 1) // 2
    operators = [(f"live{c + 1:02d}", f"9{c + 1:03d}") for c in range(calls)]
    passwords = {u: secrets.token_urlsafe(12) + "-Q7" for u, _ in operators}
    web_port, listen_port = free_port(), free_port()
    config = {"var_dir": tempfile.mkdtemp(prefix="live-transcribe-"), "services": ["listen"],
              "web_host": "127.0.0.1", "web_port": web_port, "listen_port": listen_port,
              "listen_legs": 4 * args.max_legs}
    await asyncio.to_thread(make_accounts, Settings(**config), passwords)
    # both started once, before anything is measured
    node = subprocess.Popen([sys.executable, "-c", NODE, json.dumps(config), json.dumps(dict(operators))],  # noqa: ASYNC220
                            cwd=ROOT, env=os.environ | {"PYTHONPATH": str(ROOT)}, stdin=subprocess.PIPE, text=True)
    baseline = subprocess.Popen([sys.executable, __file__, "--baseline", model],  # noqa: ASYNC220
                                cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    consoles = Consoles(f"127.0.0.1:{web_port}")
    try:
        deadline = time.monotonic() + 90
        while True:
            assert node.poll() is None and time.monotonic() < deadline, "the node did not start"
            try:
                socket.create_connection(("127.0.0.1", listen_port), 1).close()
                socket.create_connection(("127.0.0.1", web_port), 1).close()
                break
            except OSError:
                await asyncio.sleep(0.2)
        assert json.loads(await asyncio.to_thread(baseline.stdout.readline))["ready"]  # type: ignore[union-attr]
        await consoles.open(passwords)
        bench = Bench(node, f"listen@127.0.0.1:{listen_port}", listen_port, consoles, baseline, operators)
        print("warm-up (not counted): 2 legs, 8 s", flush=True)
        await bench.ours(sets[0], 2, 8.0)

        # the search: up by half from the node's default capacity until a level fails, then halve the gap
        tried: dict[int, Outcome] = {}
        n = even(args.start_legs or LEGS_PER_CORE * cores)
        held, failed = 0, 0
        print(f"search: levels of {args.level_s:.0f} s a leg; held = no leg dropped, every utterance answered, "
              f"delay p95 ≤ {args.max_delay * 1000:.0f} ms", flush=True)
        while n not in tried and 2 <= n <= args.max_legs:
            r = tried[n] = await bench.ours(sets[0], n, args.level_s)
            ok = r.held(args.max_delay)
            print(r.line() + (" → held" if ok else " → NOT held"), flush=True)
            if ok:
                held = max(held, n)
            else:
                failed = min(failed or n, n)
            if not failed:
                n = min(args.max_legs, even(n * 1.5))
            elif not held:
                n = even(n / 2) if n > 2 else 0
            else:
                n = even((held + failed) / 2)
                if n <= held:
                    n = held + 2 if held + 2 < failed else 0
        n = held or 2

        # the measured run at the largest level held: two rounds, ours / Vosk / Vosk / ours
        while True:
            length = [length_for(sets[k], n, math.ceil(args.samples / 2)) for k in (0, 1)]
            print(f"measured: {n} legs, {args.samples} utterances a side in two rounds "
                  f"({length[0]:.0f} + {length[1]:.0f} s a leg)", flush=True)
            a = await bench.ours(sets[0], n, length[0])
            print(a.line(), flush=True)
            b = await bench.vosk_alone(sets[0], n, length[0])
            print(b.line(), flush=True)
            b2 = await bench.vosk_alone(sets[1], n, length[1])
            print(b2.line(), flush=True)
            a2 = await bench.ours(sets[1], n, length[1])
            print(a2.line(), flush=True)
            ours, vosk = a + a2, b + b2
            if ours.held(args.max_delay) or n <= 2:
                break
            print(f"{n} legs not held over the measured run: one level down", flush=True)
            n -= 2
    finally:
        await consoles.close()
        for proc in (node, baseline):
            if proc.stdin is not None:
                proc.stdin.close()
        for proc in (node, baseline):
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
    report(args, cores, n, ours, vosk)


def report(args: argparse.Namespace, cores: int, n: int, ours: Outcome, vosk: Outcome) -> None:
    ms = lambda v, p: pct(v, p) * 1000  # noqa: E731
    print(f"pooled: {ours.line()}")
    print(f"pooled: {vosk.line()}")
    held = ours.held(args.max_delay)
    lag95 = ms(ours.lags, 95)
    print(f"at {n} legs ({n / cores:.1f} a core, goal ≥ 4): {'held' if held else 'NOT held'}; lag p95 "
          f"{lag95:.0f} ms (goal ≤ 2500: {'met' if lag95 <= 2500 else 'NOT met'}), of which the endpoint alone "
          f"(unloaded, the same at any load) p95 {ms(ours.endpoints, 95):.0f} ms; Vosk alone p95 "
          f"{ms(vosk.lags, 95):.0f} ms")
    if len(ours.lags) < 400:
        print(f"note: p95 from {len(ours.lags)} samples (fewer than 400)")
    cpu = ours.cpu["total"] / ours.audio_s
    print(f"legs={n} lag_p50_ms={ms(ours.lags, 50):.0f} lag_p95_ms={lag95:.0f} legs_per_core={n / cores:.1f} "
          f"samples={len(ours.lags)} endpoint_p95_ms={ms(ours.endpoints, 95):.0f} "
          f"delay_p50_ms={ms(ours.delays, 50):.0f} delay_p95_ms={ms(ours.delays, 95):.0f} "
          f"vosk_lag_p50_ms={ms(vosk.lags, 50):.0f} vosk_lag_p95_ms={ms(vosk.lags, 95):.0f} "
          f"ratio={lag95 / ms(vosk.lags, 95):.2f} dropped={ours.dropped} unanswered={ours.missing} "
          f"differ={ours.differ} cpu_per_leg_s={cpu:.3f} vosk_cpu_per_leg_s={vosk.cpu['total'] / vosk.audio_s:.3f} "
          f"cpu_ratio={cpu / (vosk.cpu['total'] / vosk.audio_s):.2f}")


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--baseline":
        baseline_main(sys.argv[2])
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max-legs", type=int, default=40, help="the search stops here")
    ap.add_argument("--start-legs", type=int, default=0, help="the first level (default: 4 legs a core)")
    ap.add_argument("--samples", type=int, default=400, help="utterances of the measured run, each side")
    ap.add_argument("--level-s", type=float, default=20.0, help="seconds of audio per leg in a search level")
    ap.add_argument("--max-delay", type=float, default=1.0, help="held: the delay's p95 at most this (s)")
    ap.add_argument("--leg-s", type=float, default=150.0, help="longest leg audio (decoded once, cached)")
    ap.add_argument("--seed", type=int, default=16)
    ap.add_argument("--quick", action="store_true", help="a short check: 100 samples, 12 s levels, 60 s legs")
    args = ap.parse_args()
    if args.quick:
        args.samples, args.level_s, args.leg_s = min(args.samples, 100), 12.0, 60.0
    sys.path.insert(0, str(ROOT))
    import uvloop

    uvloop.run(run(args))


if __name__ == "__main__":
    main()
