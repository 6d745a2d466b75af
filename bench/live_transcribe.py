"""Live transcript under load (issue #16): concurrent legs streamed in real time to a listening node;
the lag from the end of each utterance to its final line at the operator's websocket, and the most
legs this box holds in real time; against Vosk alone on the same audio in the same run.

**Ours** is a web node as ``hotline up`` serves it (``launch.compose.server_config``) with the role
``listen`` (the AudioSocket server; a recogniser thread per leg at ``listen_nice`` 10; each final
written to the database and given to the call's assistant), in a process of its own. No CTI runs:
the bench says on the node's bus what the bridge would (``LegsAssigned``: a call's two legs, each
call on its own seat), and who sits where is given to the web room as the console tests give it
(``app.state.roster``). The operators are accounts signed in with their password
(``POST /api/auth/login``), each following ``/ws`` with the session cookie and the page's Origin.
Their clients and the legs' streams (``testkit.audiosocket.stream_leg``: 20 ms frames at real-time
pace, as Asterisk sends them) run in this process: what Asterisk and the operators' PCs would be.

**Legs** (``testkit.livebench``): Korean espeak-ng sentences (1.3–5.3 s), each followed by 1.5–2.5 s
of the leg being quiet while the other party talks, over a -64 dBFS noise floor. A call is answered
every ``--answer-every`` s (both legs start then) and the earlier calls say more, so that the last
sentences of all legs are spoken at the same time.

**Lag** of an utterance: its leg's first final whose last word ends no earlier than 0.3 s before the
utterance does, arriving at the operator's websocket, minus the moment the utterance's last sample
was due (Asterisk sends a frame once it is whole: one frame after stream_leg's clock starts).

**Held in real time** at N legs: no leg dropped (``LiveState`` degraded), every utterance answered,
and no recogniser ever more than ``--max-behind`` (2 s: where the node calls itself overloaded and
takes no new calls) of audio behind. That backlog is the node's own ``LegRecogniser.lag_s``, read
every 0.1 s by a probe the bench adds to the node's process (it keeps a weak set of the recognisers
and a thread; nothing else of the node is changed). The search starts at the node's default
capacity (4 legs a core), goes up by 2 legs a core until a level fails, then tries between; its
short levels need a 25 % margin (1.5 s). The node holds ``--max-legs`` legs and, as it does when a
centre starts it, warms a recogniser for each before anything is measured (a fresh one spends about
a second of CPU on its first second of audio here). At the largest level that passes: a **burst**
(every call answered within 4 s, said apart), then the **measured** run, ``--samples`` utterances a
side in rounds ours / Vosk / Vosk / ours on two sets of legs, pooled; if ours is not held there, one call fewer.

**Baseline** (not our code; ``bench/_live_baseline.py``, a process importing only Vosk and the
standard library, checked): a thread per leg with Vosk's ``KaldiRecognizer`` (``SetWords(True)``)
fed the same wavs in 20 ms frames at the same pace and start times, ``PartialResult`` every 0.2 s
as the node asks it, ``FinalResult`` at the end, a new recogniser per leg; its lag is to
``AcceptWaveform`` returning True (where in the audio that happened is Vosk's own end-of-sentence
wait, which the node does not have: it settles a sentence at the leg's pause, ``live/endpoint.py``).
No AudioSocket, bus, database, assistant or websocket; nice 0.

**CPU** per second of leg audio: the node's process from ``/proc`` (split by thread: nice 10 = the
recognisers, the main thread = the event loop, the rest) and the baseline's process.

Run from the repo root: ``.venv/bin/python bench/live_transcribe.py [--samples 400] [--max-legs 24]
[--quick]``: 13–15 min on 2 cores (400 utterances a side at 10 legs is 3 min of speech a side, and
the search before it); ``--quick``: 100 a side, about 5 min. Last line: ``legs=… lag_p50_ms=…
lag_p95_ms=… legs_per_core=…``, then Vosk alone's lag, the ratio, its endpoint wait, the backlog,
drops and CPU (goals: lag p95 ≤ 2.5 s, ≥ 4 legs a core).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# the parts live beside this file, named with a leading "_" (make bench does not run them); run as
# bench/live_transcribe.py, this folder is first on the path, so they import by name
from _live_node import NODE, Consoles, ThreadCpu

from testkit.benchrun import pct

ROOT = Path(__file__).resolve().parents[1]
STAGGER_S = 4.0
FRAME_S = 0.02


# ------------------------------------------------------------------ one level


@dataclass
class Planned:
    uid: str
    call: str
    seat: str
    user: str
    speaker: str
    wav: Path
    pcm: bytes
    ends: list[float]
    delay: float


@dataclass
class Outcome:
    side: str
    n: int
    lags: list[float] = field(default_factory=list)
    endpoints: list[float] = field(default_factory=list)  # Vosk alone: utterance end → where it decided
    behind: list[float] = field(default_factory=list)  # ours: the recogniser furthest behind, every 0.1 s
    missing: int = 0
    dropped: int = 0
    audio_s: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)
    client_cpu_s: float = 0.0
    late_s: float = 0.0  # the streams' (Vosk alone: the feeding threads') worst lateness

    def held(self, max_behind: float) -> bool:
        return not self.dropped and not self.missing and bool(self.lags) and max(self.behind, default=0) <= max_behind

    def __add__(self, o: Outcome) -> Outcome:
        return Outcome(self.side, self.n, self.lags + o.lags, self.endpoints + o.endpoints, self.behind + o.behind,
                       self.missing + o.missing, self.dropped + o.dropped, self.audio_s + o.audio_s,
                       {k: self.cpu.get(k, 0) + o.cpu.get(k, 0) for k in {*self.cpu, *o.cpu}},
                       self.client_cpu_s + o.client_cpu_s, max(self.late_s, o.late_s))

    def cpu_per_leg_s(self, part: str = "total") -> float:
        return self.cpu.get(part, 0.0) / max(self.audio_s, 1e-9)

    def line(self) -> str:
        ms = lambda v, p: f"{pct(v, p) * 1000:.0f}" if v else "-"  # noqa: E731
        text = (f"{self.side:>4} {self.n:>2} legs: {len(self.lags)} utterances, lag p50 {ms(self.lags, 50)} "
                f"p95 {ms(self.lags, 95)} max {ms(self.lags, 100)} ms")
        if self.endpoints:
            text += f" (Vosk's endpoint alone p50 {ms(self.endpoints, 50)} p95 {ms(self.endpoints, 95)})"
        if self.behind:
            text += (f"; recognisers behind p50 {ms(self.behind, 50)} p99 {ms(self.behind, 99)} "
                     f"max {ms(self.behind, 100)} ms")
        text += (f"; dropped {self.dropped}, unanswered {self.missing}; late {self.late_s * 1000:.0f} ms; "
                 f"CPU {self.cpu_per_leg_s():.3f} core-s a leg-s")
        if "loop" in self.cpu:
            text += (f" (recognisers {self.cpu_per_leg_s('recognisers'):.3f}, loop {self.cpu_per_leg_s('loop'):.3f}, "
                     f"other threads {self.cpu_per_leg_s('other'):.3f}; streams+consoles "
                     f"{self.client_cpu_s / max(self.audio_s, 1e-9):.3f})")
        return text


class Bench:
    def __init__(self, node: subprocess.Popen[str], node_name: str, listen_port: int, consoles: Consoles,
                 baseline: subprocess.Popen[str], operators: list[tuple[str, str]], legs: Any) -> None:
        self.node, self.node_name, self.listen_port = node, node_name, listen_port
        self.consoles, self.baseline, self.operators, self.legs = consoles, baseline, operators, legs
        self.level = 0

    def plan(self, first: int, n: int, utterances: int, answer_every_s: float) -> list[Planned]:
        """``n`` legs (``first``, ``first`` + 1, … of the seed's), two a call, each call on its own seat.
        A call is answered every ``answer_every_s`` (both its legs start then), and the earlier calls say
        more, so that all end together: the last ``utterances`` sentences of every leg overlap. With
        ``answer_every_s`` 0, every call is answered within the same 4 s."""
        self.level += 1
        calls = (n + 1) // 2
        out = []
        for j in range(n):
            c = j // 2
            ramp = (calls - 1 - c) * answer_every_s
            wav, pcm, ends = self.legs.leg(first + j, utterances + round(ramp / self.legs.period_s))
            user, seat = self.operators[c]
            speaker = ("citizen", "operator")[j % 2]
            out.append(Planned(str(uuid.uuid4()), f"lt{self.level}-{c}", seat, user, speaker, wav, pcm, ends,
                               c * answer_every_s if answer_every_s else j * STAGGER_S / n))
        return out

    def _send(self, proc: subprocess.Popen[str], msg: dict[str, Any]) -> None:
        assert proc.stdin is not None
        proc.stdin.write(json.dumps(msg) + "\n")
        proc.stdin.flush()

    async def _ask(self, cmd: dict[str, Any]) -> Any:
        self._send(self.node, cmd)
        assert self.node.stdout is not None
        while not (line := await asyncio.to_thread(self.node.stdout.readline)).startswith("BENCH "):
            assert line, "the node ended"
        return json.loads(line[6:])

    async def _behind(self) -> list[float]:
        """The node's probe samples since the last call."""
        return await self._ask({"probe": 1})

    async def warmed(self, timeout_s: float) -> float:
        """Wait until the node has a warm recogniser for every leg it holds; the seconds it took."""
        t0 = time.monotonic()
        while not await self._ask({"warm": 1}):
            assert time.monotonic() - t0 < timeout_s, "the node's recognisers did not warm"
            await asyncio.sleep(0.5)
        return time.monotonic() - t0

    async def ours(self, first: int, n: int, utterances: int, answer_every_s: float) -> Outcome:
        from testkit.audiosocket import stream_leg
        from testkit.livebench import RATE, match

        plan = self.plan(first, n, utterances, answer_every_s)
        for call in sorted({p.call for p in plan}):
            mine = [p for p in plan if p.call == call]
            self._send(self.node, {"assign": {"call_id": call, "seat": mine[0].seat, "operator": mine[0].user,
                                              "node": self.node_name, "legs": {p.uid: p.speaker for p in mine}}})
        await asyncio.sleep(0.3)
        await self._behind()
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
        out = Outcome("ours", n, cpu=meter.stop(), client_cpu_s=time.process_time() - own0,
                      behind=await self._behind())
        for p, s in zip(plan, sent, strict=True):
            # stream_leg sends each 20 ms frame as it begins, Asterisk once it is whole: the leg's audio
            # started one frame before its first frame went
            t0 = s.started - FRAME_S
            out.audio_s += len(p.pcm) / 2 / RATE
            out.late_s = max(out.late_s, s.ended - s.started - (s.frames_sent - 1) * FRAME_S)
            out.dropped += (p.call, p.speaker) in self.consoles.degraded
            live = self.consoles.finals.get((p.call, p.speaker), [])
            for e, i in zip(p.ends, match(p.ends, [(end, None) for _, end, _ in live]), strict=True):
                if i is None:
                    out.missing += 1
                else:
                    out.lags.append(live[i][0] - (t0 + e))
        return out

    async def vosk_alone(self, first: int, n: int, utterances: int, answer_every_s: float) -> Outcome:
        from testkit.livebench import RATE, match

        plan = self.plan(first, n, utterances, answer_every_s)
        self._send(self.baseline, {"legs": [{"wav": str(p.wav), "delay": p.delay} for p in plan]})
        assert self.baseline.stdout is not None
        got = json.loads(await asyncio.to_thread(self.baseline.stdout.readline))
        if got["ours"]:
            raise SystemExit(f"the baseline imported our code: {got['ours']}")
        out = Outcome("vosk", n, cpu={"total": got["cpu_s"]})
        for p, leg in zip(plan, got["legs"], strict=True):
            t0 = leg["start"] - FRAME_S  # its first frame is taken as it begins, as stream_leg sends it
            out.audio_s += len(p.pcm) / 2 / RATE
            out.late_s = max(out.late_s, leg["late"])
            finals = leg["finals"]  # [said at, where in the audio, its last word's end, text]
            for e, i in zip(p.ends, match(p.ends, [(f[2], None) for f in finals]), strict=True):
                if i is None:
                    out.missing += 1
                else:
                    out.lags.append(finals[i][0] - (t0 + e))
                    out.endpoints.append(finals[i][1] - e)
        return out


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
    from testkit import free_port
    from testkit.livebench import Legs

    cores = len(os.sched_getaffinity(0))
    model = model_path(Settings())
    var = Path(tempfile.mkdtemp(prefix="live-transcribe-"))
    legs = Legs(var, args.seed)
    print(f"{cores} cores, load average {os.getloadavg()[0]:.2f}; model {Path(model).parent.name}; "
          f"{len(legs.said)} Korean sentences of {min(len(s) for s in legs.said) / 8000:.1f}–"
          f"{max(len(s) for s in legs.said) / 8000:.1f} s", flush=True)
    calls = (args.max_legs + 1) // 2
    operators = [(f"live{c + 1:02d}", f"9{c + 1:03d}") for c in range(calls)]
    passwords = {u: secrets.token_urlsafe(12) + "-Q7" for u, _ in operators}
    web_port, listen_port = free_port(), free_port()
    config = {"var_dir": str(var / "node"), "services": ["listen"], "web_host": "127.0.0.1", "web_port": web_port,
              "listen_port": listen_port, "listen_legs": args.max_legs}
    await asyncio.to_thread(make_accounts, Settings(**config), passwords)
    # both started once, before anything is measured
    node = subprocess.Popen([sys.executable, "-c", NODE, json.dumps(config), json.dumps(dict(operators))],  # noqa: ASYNC220
                            cwd=ROOT, env=os.environ | {"PYTHONPATH": str(ROOT)}, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    baseline = subprocess.Popen([sys.executable, str(ROOT / "bench" / "_live_baseline.py"), model],  # noqa: ASYNC220
                                cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    consoles = Consoles(f"127.0.0.1:{web_port}")
    try:
        deadline = time.monotonic() + 90
        while True:
            assert node.poll() is None and time.monotonic() < deadline, "the node did not start"
            try:  # the web serves once its lifespan has started the listening node
                socket.create_connection(("127.0.0.1", web_port), 1).close()
                break
            except OSError:
                await asyncio.sleep(0.2)
        assert json.loads(await asyncio.to_thread(baseline.stdout.readline))["ready"]  # type: ignore[union-attr]
        await consoles.open(passwords)
        bench = Bench(node, f"listen@127.0.0.1:{listen_port}", listen_port, consoles, baseline, operators, legs)
        # the node warms a recogniser per leg it holds (--max-legs) as it starts, as a centre's node does
        # before its first calls: nothing is measured until then
        print(f"the node warmed {args.max_legs} recognisers in {await bench.warmed(600):.0f} s", flush=True)
        every = args.answer_every
        print("warm-up (not counted): ours and Vosk alone, 2 legs, 2 sentences each", flush=True)
        await bench.ours(10_000, 2, 2, every)
        await bench.vosk_alone(10_000, 2, 2, every)

        # the search: from the node's default capacity up by 2 legs a core until a level fails, then
        # the level between; down by one call at a time if the first fails
        tried: dict[int, Outcome] = {}
        n = even(args.start_legs or LEGS_PER_CORE * cores)
        step = 2 * cores
        margin = 0.75 * args.max_behind  # short levels see fewer spikes than the measured run: a margin
        print(f"search: a call answered every {every:g} s, then {args.level_utts} sentences a leg on all legs at "
              f"once; a level passes with no leg dropped, every utterance answered and no recogniser more than "
              f"{margin:g} s of audio behind", flush=True)
        while n not in tried and 2 <= n <= args.max_legs:
            r = tried[n] = await bench.ours(1000 * len(tried), n, args.level_utts, every)
            print(r.line() + (" → passes" if r.held(margin) else " → fails"), flush=True)
            held = max((k for k, v in tried.items() if v.held(margin)), default=0)
            failed = min((k for k, v in tried.items() if not v.held(margin)), default=0)
            if not failed:
                n += step
            elif not held:
                n -= 2
            else:
                n = even((held + failed) / 2) if failed - held > 2 else 0
        n = max((k for k, v in tried.items() if v.held(margin)), default=2)
        burst = await bench.ours(50_000, n, args.level_utts, 0)
        print(f"burst: all {n} legs answered within {STAGGER_S:g} s (not a test of held, said apart):", flush=True)
        print(burst.line(), flush=True)

        # the measured run at the largest level held: ours / Vosk / Vosk / ours, two sets of legs
        while True:
            ramp = sum(round(((n + 1) // 2 - 1 - j // 2) * every / legs.period_s) for j in range(n))
            each = max(3, math.ceil((args.samples / 2 - ramp) / n))
            print(f"measured: {n} legs, a call answered every {every:g} s, then {each} sentences a leg on all at once;"
                  f" two rounds a side", flush=True)
            rounds = []
            for side, first in (("ours", 100), ("vosk", 100), ("vosk", 200), ("ours", 200)):
                r = await (bench.ours if side == "ours" else bench.vosk_alone)(first * 1000, n, each, every)
                print(r.line(), flush=True)
                rounds.append(r)
                if side == "ours" and not r.held(args.max_behind) and n > 2:
                    break  # not held at this level: measuring the rest of it would say nothing more
            if len(rounds) == 4:
                ours, vosk = rounds[0] + rounds[3], rounds[1] + rounds[2]
                if ours.held(args.max_behind) or n <= 2:
                    break
            print(f"{n} legs not held over the measured run (no recogniser more than {args.max_behind:g} s behind): "
                  f"one call fewer", flush=True)
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
        shutil.rmtree(var, ignore_errors=True)
    report(args, cores, n, ours, vosk, burst)


def report(args: argparse.Namespace, cores: int, n: int, ours: Outcome, vosk: Outcome, burst: Outcome) -> None:
    ms = lambda v, p: pct(v, p) * 1000  # noqa: E731
    print(f"pooled: {ours.line()}")
    print(f"pooled: {vosk.line()}")
    lag95 = ms(ours.lags, 95)
    print(f"at {n} legs ({n / cores:.1f} a core; goal ≥ 4): {'held' if ours.held(args.max_behind) else 'NOT held'}; "
          f"lag p95 {lag95:.0f} ms (goal ≤ 2500: {'met' if lag95 <= 2500 else 'NOT met'}); Vosk alone on the same "
          f"audio p95 {ms(vosk.lags, 95):.0f} ms, of which its endpointer's wait p95 {ms(vosk.endpoints, 95):.0f} ms")
    if min(len(ours.lags), len(vosk.lags)) < 400:
        print(f"note: p95 from {len(ours.lags)} and {len(vosk.lags)} samples (fewer than 400)")
    print(f"legs={n} lag_p50_ms={ms(ours.lags, 50):.0f} lag_p95_ms={lag95:.0f} legs_per_core={n / cores:.1f} "
          f"samples={len(ours.lags)} vosk_lag_p50_ms={ms(vosk.lags, 50):.0f} vosk_lag_p95_ms={ms(vosk.lags, 95):.0f} "
          f"ratio={lag95 / ms(vosk.lags, 95):.2f} endpoint_p95_ms={ms(vosk.endpoints, 95):.0f} "
          f"behind_max_ms={max(ours.behind, default=0) * 1000:.0f} "
          f"burst_behind_max_ms={max(burst.behind, default=0) * 1000:.0f} "
          f"dropped={ours.dropped} unanswered={ours.missing} "
          f"cpu_per_leg_s={ours.cpu_per_leg_s():.3f} vosk_cpu_per_leg_s={vosk.cpu_per_leg_s():.3f} "
          f"cpu_ratio={ours.cpu_per_leg_s() / vosk.cpu_per_leg_s():.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max-legs", type=int, default=24, help="the search stops here (the node warms this many)")
    ap.add_argument("--start-legs", type=int, default=0, help="the first level (default: 4 legs a core)")
    ap.add_argument("--samples", type=int, default=400, help="utterances of the measured run, each side")
    ap.add_argument("--level-utts", type=int, default=5, help="sentences a leg in a search level")
    ap.add_argument("--answer-every", type=float, default=2.0, help="seconds between two calls' starts")
    ap.add_argument("--max-behind", type=float, default=2.0,
                    help="held: no recogniser more than this many seconds of audio behind (the node's overloaded)")
    ap.add_argument("--seed", type=int, default=16)
    ap.add_argument("--quick", action="store_true", help="a short check: 100 samples, 3 sentences a level")
    args = ap.parse_args()
    if args.quick:
        args.samples, args.level_utts = min(args.samples, 100), 3
    sys.path.insert(0, str(ROOT))
    import uvloop

    uvloop.run(run(args))


if __name__ == "__main__":
    main()
