"""Screen-pop latency: the AgentCalled ``Timestamp`` → the pop arriving at the operator's client,
while 50 seats take whole calls, each pop carrying the caller's ticket history (issue #18).

This machine has 10 SIP seats, so 50 phones ringing at once cannot be real calls here. The bench
plays Asterisk instead, with what our Asterisk 22 sent: the AMI events of a recorded SIP call
(``tests/fixtures/ami/test_sip_call_is_answered_by_a_signed_in_seat_in_3_s_and_recorded.ami``:
Newchannel, the queue join, ringing, answer, bridge, the operator's hang-up, the caller's after the
survey; of its 29 events the 18 today's manager.conf lets through to the app's account, and no Cdr:
our Asterisk loads no cdr_manager), renumbered per call (Uniqueid, Linkedid, the channels, the
bridge, the recording name), moved to the operator's seat and
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
  (21 × 50 = 1 050 pops: p99 is about the 11th worst, not the 3rd). A burst rings when its last
  seat is out of wrap-up, so every pop is measured under ``--calls`` calls at once: rung as each
  seat got free (``--ragged``, the runs before 2026-12-06), a click slower than its slack thinned
  the burst it missed, and the slower the app's clicks the lighter the load its pops were timed under.

The 50 clients stand in for 50 browsers on 50 PCs: one process of their own (uvloop), apart from
the one playing Asterisk. A few pops are also timed to the moment they are *visible* in Debian's
chromium (an operator's /console, signed in through the login form).

**Two web nodes** (``--nodes 2``, issue #15): the centre's bus is a Redis stream (a redis-server of
this run's own), and the topology is docs/deploy.md's: the CTI bridge and FastAGI run on a node of
their own (``hotline cti`` + ``hotline agi`` in one process, no web room), and two web nodes run only
the web room (``HOTLINE_SERVICES`` empty), all on the same database (SQLite, or with ``--db postgres``
a PostgreSQL of the run's own, as a centre of several nodes runs). Half the operators sign in and
follow ``/ws`` on each web node, so every pop crosses Redis: the seat sign-ins and wrap-ups go to the
bridge through the board, and each web node routes a pop by the roster the bus carries. Every pop is
timed from the AMI event to its client across the stream. ``--agi-apart`` runs FastAGI in a process
of its own beside the bridge's. ``--bridge-on-web`` runs the bridge and FastAGI inside the first web
node instead (the topology of the first two-node runs).

**The baseline** (one server, the bridge in its default place): after the app, the same bursts run
on the least pop path of the same topology, written with the libraries alone (``_screen_pop_bare.py``:
panoramisk, redis-py, starlette on uvicorn, and agi_lookup's bare FastAGI on the same store), in the
same processes, to the same clients, checked the same way. What the box itself allows is then
measured beside the app: ``ratio`` is the baseline's p99 over ours (1 = as fast as the bare path).
``--pairs N`` alternates N runs of each and reports the median run of each (by p99); ``--baseline off`` skips it.

Run from the repo root: ``.venv/bin/python bench/screen_pop.py [--calls 50] [--rounds 21] [--nodes 2]``.
Last line: ``calls=50 nodes=1 db=sqlite bursts=whole samples=… p50_ms=… p99_ms=… … bare_p50_ms=… bare_p99_ms=…
ratio=…`` (goal: p99 ≤ 50 ms), with two nodes also ``bare_to_stream_p99_ms=… bare_from_stream_p99_ms=…``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import random
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

# The parts live beside this file, named with a leading "_" so that make bench does not run them as
# benchmarks; run as bench/screen_pop.py, this folder is first on the path (and the spawned clients'
# process gets the same path), so they import by name.
from _screen_pop_asterisk import Asterisk, Call, Member, live_voices, load_recording  # noqa: E402
from _screen_pop_bare import STREAM as BARE_STREAM  # noqa: E402
from _screen_pop_machine import cpu_of, cpu_of_pid, machine_busy, machine_cpu, peak_rss_mib  # noqa: E402
from _screen_pop_operators import Operator, browser_samples, browsers_main  # noqa: E402
from _screen_pop_store import call_log_count, live_legs_of, prepare  # noqa: E402

from hotline.redis_bus import events_key  # noqa: E402
from hotline.settings import Settings  # noqa: E402
from launch.compose import freeze  # noqa: E402
from testkit import free_port  # noqa: E402
from testkit.benchrun import pct  # noqa: E402
from testkit.redis import start_server  # noqa: E402

BUS_PREFIX = "bench"  # the bus's keys in this run's Redis (the bus_url's prefix)

APP = """
import json, logging, sys, uvicorn
from launch.compose import serve, server_config
from hotline.settings import Settings
# the witness still runs; it is only not told to print every call, as none is in Asterisk's own
# records here (no CEL without Asterisk): a warning listing a thousand call ids per check
logging.getLogger('launch.witness').setLevel(logging.ERROR)
settings = Settings(**json.loads(sys.argv[1]))
if sys.argv[2] == 'web':
    uvicorn.Server(server_config(settings, log_level='warning')).run()
else:  # hotline cti + hotline agi in one process, no web room (deploy.md's bridge node)
    import uvloop
    logging.basicConfig(level=logging.WARNING, format='%(message)s')
    uvloop.run(serve(settings, settings.services))
"""


# --- the run ------------------------------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace, pbx: dict[str, Asterisk], ops: list[Operator],
                 callers: list[str]) -> None:
        self.args, self.pbx, self.ops, self.callers = args, pbx, ops, callers  # pbx: each seat's Asterisk
        self.rnd = random.Random(args.seed)
        self.calls: list[list[Call]] = []  # by burst
        self.late: list[float] = []  # how late each call rang after its burst's moment (ms)
        self.rung: list[list[float]] = []  # by burst: when each of its calls rang (the loop's clock)
        # each wrap-up click, counted bursts only: (ms to the seat's unpause at Asterisk, ms to its HTTP
        # answer, ms it left before the next burst): a click slower than its slack thins the next burst
        self.clicks: list[tuple[float, float, float]] = []
        self.plays: list[asyncio.Task[None]] = []
        self.n = 0

    def new_call(self, seat: str, caller: str) -> Call:
        self.n += 1
        return Call(self.n, seat, caller)

    async def run(self) -> None:
        """Bursts of len(ops) calls; each burst comes as the previous callers hang up, and (unless
        ``--ragged``) only when every seat of it is ready, so that all of it rings at once."""
        loop, first = asyncio.get_running_loop(), next(iter(self.pbx.values()))
        period = first.rec.length_s * first.pace + 0.002
        bursts = self.args.rounds + 1
        callers = [self.rnd.sample(self.callers, len(self.ops)) for _ in range(bursts)]
        self.calls = [[] for _ in range(bursts)]
        self.rung = [[] for _ in range(bursts)]
        whole = None if self.args.ragged else asyncio.Barrier(len(self.ops))
        t0 = loop.time() + 0.5

        async def seat(i: int, op: Operator) -> None:
            a = self.pbx[op.seat]
            member, wrap = a.members[op.seat], random.Random(self.args.seed * 1000 + i)
            at = t0
            for b in range(bursts):
                await asyncio.sleep(max(0.0, at - loop.time()))
                await member.until(False)  # a seat in wrap-up is not rung
                if whole is not None:  # nor the burst, until its last seat is out of wrap-up
                    await whole.wait()
                self.late.append((loop.time() - at) * 1000)
                self.rung[b].append(loop.time())
                call = self.new_call(op.seat, callers[b][i])
                self.calls[b].append(call)
                freed = asyncio.Event()
                self.plays.append(asyncio.create_task(a.play(call, freed)))
                await freed.wait()
                await member.until(True)  # the bridge paused the seat for 话后处理
                # the next burst: a period after this one rang (whole), or after it was due (ragged)
                next_at = (min(self.rung[b]) if whole is not None else at) + period
                click = loop.time() + wrap.random() * max(0.0, next_at - 0.15 * (period - a.rec.seat_free_s * a.pace)
                                                           - loop.time())
                await asyncio.sleep(max(0.0, click - loop.time()))
                sent = loop.time()
                unpaused = asyncio.create_task(until_unpaused(member))
                await op.end_wrapup()
                answered = loop.time()
                if b > 0:
                    self.clicks.append(((await unpaused - sent) * 1000, (answered - sent) * 1000,
                                        (next_at - sent) * 1000))
                at = next_at

        await asyncio.gather(*(seat(i, op) for i, op in enumerate(self.ops)))
        await asyncio.gather(*self.plays)

    async def one_call(self, op: Operator) -> Call:
        """For the browser: one whole call on ``op``'s seat; returns once it rings."""
        a = self.pbx[op.seat]
        await a.members[op.seat].until(False)
        call = self.new_call(op.seat, self.rnd.choice(self.callers))
        freed = asyncio.Event()
        self.plays.append(asyncio.create_task(a.play(call, freed)))
        call.freed = freed  # type: ignore[attr-defined]
        await call.rung.wait()
        return call

    async def finish(self, op: Operator, call: Call) -> None:
        await call.freed.wait()  # type: ignore[attr-defined]
        await self.pbx[op.seat].members[op.seat].until(True)
        await op.end_wrapup()
        await asyncio.gather(*self.plays)


async def until_unpaused(member: Member) -> float:
    """When Asterisk unpaused ``member`` (the loop's clock), however late its waiter looks."""
    await member.until(False)
    return asyncio.get_running_loop().time()


def parse() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=50, help="seats rung at once")
    ap.add_argument("--rounds", type=int, default=21, help="bursts counted (one more warms up)")
    ap.add_argument("--pace", type=float, default=0.25, help="the recorded call's gaps × this (1: real time)")
    ap.add_argument("--tickets", type=int, default=50_000, help="finished tickets in the store")
    ap.add_argument("--callers", type=int, default=500, help="numbers with a history the calls come from")
    ap.add_argument("--browser-samples", type=int, default=10)
    ap.add_argument("--seed", type=int, default=18)
    ap.add_argument("--ragged", action="store_true",
                    help="ring each seat at its burst's moment or as soon as it is out of wrap-up after it (the "
                         "runs before 2026-12-06): a click slower than its slack thins the burst it misses")
    ap.add_argument("--nodes", type=int, default=1, choices=(1, 2), help="web nodes (2: on a Redis bus)")
    ap.add_argument("--bridge-on-web", action="store_true",
                    help="with --nodes 2: the bridge and FastAGI in the first web node, not a node of their own")
    ap.add_argument("--agi-apart", action="store_true",
                    help="with --nodes 2: FastAGI in a process of its own beside the bridge's (hotline agi and "
                         "hotline cti apart, as docs/deploy.md allows): lookups off the loop that reads AMI")
    ap.add_argument("--servers", type=int, default=1, choices=(1, 2),
                    help="with --nodes 2: Asterisk servers, each with half the seats and a bridge + FastAGI node of "
                         "its own (a centre of several servers: each burst split between two bridges)")
    ap.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite",
                    help="the store: SQLite in the var folder, or a throwaway PostgreSQL of the run's own (as a "
                         "centre of several nodes runs, docs/deploy.md)")
    ap.add_argument("--live", action="store_true",
                    help="the live transcript on, as hotline up runs it: the bridge spies on every answered call, "
                         "the web node's listening node recognises as many legs as it admits")
    ap.add_argument("--baseline", choices=("on", "off"), default="on",
                    help="also run the bare pop path of the same topology (bench/_screen_pop_bare.py: the libraries "
                         "alone) on the same bursts, and give the ratio (one server; not with --bridge-on-web, "
                         "--agi-apart or --live)")
    ap.add_argument("--pairs", type=int, default=1, help="runs of ours and of the baseline, alternating")
    args = ap.parse_args()
    if args.pairs < 1:
        ap.error("--pairs: at least 1")
    # the baseline is the default topology's, on the SQLite store its bare lookup reads
    plain = args.servers == 1 and args.db == "sqlite" and not (args.bridge_on_web or args.agi_apart or args.live)
    if args.baseline == "on" and not plain:
        print("no baseline with these options: it is the default topology's, one server on SQLite", flush=True)
    args.baseline = args.baseline == "on" and plain
    return args


async def main() -> None:
    args = parse()
    runs: dict[bool, list[dict[str, str]]] = {False: [], True: []}
    for _ in range(args.pairs):
        for bare in (False, True)[:1 + args.baseline]:
            runs[bare].append(await measure(args, bare))
    # the median run of each by its p99, of an even number the worse of the middle two (one run each by default)
    ours, base = (sorted(r, key=lambda f: float(f["p99_ms"]))[len(r) // 2] if r else {} for r in runs.values())
    line = " ".join(f"{k}={v}" for k, v in ours.items())
    if base:
        ratio = float(base["p99_ms"]) / float(ours["p99_ms"])
        line += f" bare_p50_ms={base['p50_ms']} bare_p99_ms={base['p99_ms']} ratio={ratio:.2f}"
        line += "".join(f" bare_{k}={base[k]}" for k in ("to_stream_p99_ms", "from_stream_p99_ms") if k in base)
    print(line)


async def measure(args: argparse.Namespace, bare: bool) -> dict[str, str]:
    """One run of the bursts, on the app or (``bare``) on the baseline; its figures by name."""
    print("--- the baseline, bench/_screen_pop_bare.py" if bare else "--- the app", flush=True)
    n = args.calls
    seats = [f"9{i:03d}" for i in range(1, n + 1)]
    passwords = {f"op{s}": secrets.token_urlsafe(12) + "-Q7" for s in seats}
    ami_port, web_port, agi_port = free_port(), free_port(), free_port()
    assert args.servers == 1 or (args.nodes == 2 and not (args.bridge_on_web or args.agi_apart or args.live)), \
        "--servers 2: with --nodes 2, the bridge and FastAGI together on nodes of their own"
    parts = [seats] if args.servers == 1 else [seats[:n // 2], seats[n // 2:]]  # each server's seats
    ports = [(ami_port, agi_port)] + [(free_port(), free_port()) for _ in parts[1:]]  # each server's AMI, AGI
    var = tempfile.mkdtemp(prefix="screen-pop-")
    config = {"var_dir": var, "services": ["cti", "agi"], "ami_host": "127.0.0.1", "ami_port": ami_port,
              "ami_secret": "bench", "seats": seats, "cti_shifts": [], "web_host": "127.0.0.1", "web_port": web_port,
              "agi_host": "127.0.0.1", "agi_port": agi_port,
              # sized as docs/deploy.md says: a burst's lookups come while the last callers are in the survey
              "agi_max_sessions": max(200, 2 * n),
              "agi_announce_job_number": False}  # the recorded call has no announcement before the bridge
    redis = pg = None
    if args.db == "postgres":
        from testkit.postgres import start_server as start_postgres

        pg = start_postgres(max_connections=200)
        config |= {"database_url": pg.create_database("screen_pop")}
    nodes = [("web", config)]  # (how it runs, its settings)
    if args.nodes == 2:  # two web nodes on the same database and a shared bus
        redis = start_server()
        config |= {"bus_url": f"{redis.url}?prefix={BUS_PREFIX}", "database_url": Settings(**config).db_url}
        web = config | {"services": []}
        second = web | {"var_dir": tempfile.mkdtemp(prefix="screen-pop-b-"), "web_port": free_port()}
        if args.bridge_on_web:  # the first web node also runs the bridge and FastAGI
            nodes = [("web", config), ("web", second)]
        else:  # deploy.md's topology: the bridge and FastAGI on a node of their own
            nodes = [("roles", config), ("web", web | {"var_dir": tempfile.mkdtemp(prefix="screen-pop-a-")}),
                     ("web", second)]
            if args.servers == 2:  # a bridge + FastAGI node per server, on its seats (the web nodes: all)
                nodes[:1] = [("roles", config | {"seats": part, "ami_port": ami, "agi_port": agi} | (
                    {"var_dir": tempfile.mkdtemp(prefix=f"screen-pop-s{k}-")} if k else {}))
                    for k, (part, (ami, agi)) in enumerate(zip(parts, ports, strict=True))]
            if args.agi_apart:  # and FastAGI apart from the bridge
                agi = config | {"services": ["agi"], "var_dir": tempfile.mkdtemp(prefix="screen-pop-g-")}
                nodes[:1] = [("roles", config | {"services": ["cti"]}), ("roles", agi)]
    voices = None
    if args.live:  # the one box's default: the listening node inside the web node that runs the bridge
        config |= {"services": [*config["services"], "listen"], "listen_port": free_port()}
        voices = await asyncio.to_thread(live_voices, Path(var))
    callers, history = await asyncio.to_thread(prepare, Settings(**config), args.tickets, args.callers, passwords,
                                               args.seed)
    assert len(callers) >= n, f"only {len(callers)} numbers with a history: more --tickets"
    pbxs = [Asterisk(load_recording(Settings(**config)), agi, args.pace, len(part), voices)
            for part, (_, agi) in zip(parts, ports, strict=True)]
    asterisk = pbxs[0]
    servers = [await p.serve(ami) for p, (ami, _) in zip(pbxs, ports, strict=True)]
    # started once, before anything is measured
    script = [str(ROOT / "bench" / "_screen_pop_bare.py")] if bare else ["-c", APP]
    if bare:  # the baseline reads the store's file itself, with the lookup's rules as ours has them
        nodes = [(how, c | {"database_url": (s := Settings(**c)).db_url, "agi_repeat_days": s.agi_repeat_days,
                            "agi_overflow_wait_s": s.agi_overflow_wait_s}) for how, c in nodes]
    procs = [subprocess.Popen([sys.executable, *script, json.dumps(c), how], cwd=ROOT,  # noqa: ASYNC220
                              env=os.environ | {"PYTHONPATH": str(ROOT)}) for how, c in nodes]
    urls = [f"127.0.0.1:{c['web_port']}" for how, c in nodes if how == "web"]
    url = urls[0]
    # an idle connection is dropped before uvicorn's 5 s keep-alive would close it under the request (a
    # wrap-up click every burst or so hit that race, "Server disconnected"; a browser retries such a
    # request, httpx does not)
    idle = httpx.Limits(keepalive_expiry=2.0)
    ops = [Operator(u, p, s, httpx.AsyncClient(base_url=f"http://{urls[i % len(urls)]}", timeout=30, limits=idle,
                                               headers={"Origin": f"http://{urls[i % len(urls)]}"}))
           for i, ((u, p), s) in enumerate(zip(passwords.items(), seats, strict=True))]
    browsers = None
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if all([(await op.http.get("/login")).status_code == 200 for op in ops[:len(urls)]]) \
                        and all(p.logged_in.is_set() for p in pbxs):
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline and all(p.poll() is None for p in procs), "the app did not start"
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.0 if args.nodes == 1 else 2.0)  # the bridge's resync; its first picture posted
        for op in ops:
            await op.sign_in()
        ctx = mp.get_context("spawn")
        conn, child = ctx.Pipe()
        sessions = [(op.user, op.cookie, str(op.http.base_url.netloc.decode())) for op in ops]
        key = BARE_STREAM if bare else events_key(BUS_PREFIX)
        stream = (redis.url, key) if redis is not None else None  # for the clients' tap
        browsers = ctx.Process(target=browsers_main, args=(child, sessions, stream))
        browsers.start()
        assert await asyncio.to_thread(conn.recv) == "ready"
        bench = Bench(args, {s: p for part, p in zip(parts, pbxs, strict=True) for s in part}, ops, callers)
        # this process plays Asterisk, which pauses for no collector: a full collection of the import's heap
        # here stalled the calls' AGI sessions 140-173 ms, and their rings then came as one wall (frozen
        # as the app's nodes freeze theirs, the young generation collected at GC_YOUNG as theirs is)
        freeze()
        started = time.monotonic()
        cpu0 = cpu_of(procs)
        each0 = [cpu_of([p]) for p in procs]
        box0 = machine_cpu()
        # the simulator: this process (Asterisk, its AGI sessions, the operators' clicks) and the 200 /ws clients
        sim = [os.getpid(), browsers.pid] + ([redis.proc.pid] if redis is not None else [])
        sim0 = [cpu_of_pid(pid) for pid in sim]
        await bench.run()
        await asyncio.sleep(0.5)  # the last pops and completions in flight
        await asyncio.gather(*(t for p in pbxs for t in p.spies))
        each = [cpu_of([p]) - c for p, c in zip(procs, each0, strict=True)]  # CPU s of each node over the bursts
        busy, box_cores = machine_busy(box0, machine_cpu())
        n_calls = sum(len(b) for b in bench.calls)
        sim_ms = [1000 * (cpu_of_pid(pid) - c) / n_calls for pid, c in zip(sim, sim0, strict=True)]
        live_line = ""
        if args.live:  # what the listening node heard meanwhile: the legs it admitted, its CPU
            legs = await asyncio.to_thread(live_legs_of, Settings(**config))
            cpu_s = cpu_of(procs) - cpu0
            heard = sum(a for _, a in legs)
            print(f"live transcript: {asterisk.spied} legs spied of {2 * len([c for b in bench.calls for c in b])} "
                  f"answered legs (the rest refused for room), {len(legs)} kept, "
                  f"{sum(st == 'complete' for st, _ in legs)} complete, {heard:.0f} s of audio heard; "
                  f"the web node's CPU {cpu_s:.1f} s over {time.monotonic() - started:.0f} s", flush=True)
            live_line = f" live_legs={asterisk.spied} live_audio_s={heard:.0f}"
        conn.send("stop")
        pops, completed, on_stream = await asyncio.to_thread(conn.recv)
        browsers.join(10)
        elapsed = time.monotonic() - started
        counted = [c for burst in bench.calls[1:] for c in burst]
        every = [c for burst in bench.calls for c in burst]
        missing = [c.call_id for c in counted if c.call_id not in pops]
        assert not missing, f"{len(missing)} of {len(counted)} pops never arrived"
        # a lookup past its deadline (agi/flows/lookup.py: 300 ms) sends the call on without the history, as
        # it must (the console then loads it by REST): counted and printed. Any other history is wrong
        without = [c.call_id for c in counted if not pops[c.call_id][2]]
        wrong = [c.call_id for c in counted if pops[c.call_id][2] and pops[c.call_id][2] != history[c.caller]]
        assert not wrong, f"{len(wrong)} pops with another history than the caller's, e.g. {pops[wrong[0]]}"
        assert all(pops[c.call_id][1] == f"op{c.seat}" for c in counted), "a pop reached another operator"
        done = set(completed)
        latencies = [pops[c.call_id][0] for c in counted]
        # a seat still in 话后处理 when its burst rings (its wrap-up click not yet through) rings late: the
        # bursts thin out, and the pops are measured under less load than --calls says. Counted from each
        # burst's first ring, not its planned moment: a simulator running late delays a burst, not thins it
        with_burst = 100 * sum(t - min(ts) <= 1.0 for ts in bench.rung for t in ts) / len(bench.late)
        filed = await asyncio.to_thread(call_log_count, Settings(**config), [c.call_id for c in every])
        lookups = [c.lookup_ms for c in every]
        sizes = [len(history[c.caller]) for c in counted]
        print(f"{len(every)} whole calls ({sum(len(p.frames) for p in asterisk.rec.phases)} AMI events, a lookup "
              f"and a survey AGI session each) in {len(bench.calls)} bursts of {n} over {elapsed:.0f} s (pace "
              f"{args.pace}); {sum(c.call_id in done for c in every)} seen completed by their operator, {filed} in "
              f"the call log; lookups p50 {pct(lookups, 50):.1f} ms p99 {pct(lookups, 99):.1f} ms; seats rung "
              f"late p99 {pct(bench.late, 99):.1f} ms, {with_burst:.1f} % with their burst (≤ 1 s after its first)",
              flush=True)
        print(f"{len(latencies)} pops counted (burst 0 warms up), {len(without)} without the caller's history (its "
              f"lookup past its deadline), the rest each with its caller's {min(sizes)}–{max(sizes)} latest tickets: "
              f"p50 {pct(latencies, 50):.1f} ms, p95 {pct(latencies, 95):.1f} ms, "
              f"p99 {pct(latencies, 99):.1f} ms, max {max(latencies):.1f} ms", flush=True)
        split = ""
        if on_stream:  # the bridge's part (AMI event → the stream) and the web's (the stream → the client)
            timed = [pops[c.call_id] for c in counted if c.call_id in on_stream]
            ons = [on_stream[c.call_id] for c in counted if c.call_id in on_stream]
            bridge = [(s - (p[3] - p[0] / 1000)) * 1000 for p, s in zip(timed, ons, strict=True)]
            web = [(p[3] - s) * 1000 for p, s in zip(timed, ons, strict=True)]
            print(f"{len(timed)} pops seen on the stream: AMI event → the stream p50 {pct(bridge, 50):.1f} ms, p99 "
                  f"{pct(bridge, 99):.1f} ms; the stream → the client p50 {pct(web, 50):.1f} ms, p99 "
                  f"{pct(web, 99):.1f} ms", flush=True)
            split = f" to_stream_p99_ms={pct(bridge, 99):.1f} from_stream_p99_ms={pct(web, 99):.1f}"
        if args.nodes > 1:  # the node with the bridge and the one without: where does the time go?
            node_of = {op.user: i % len(urls) for i, op in enumerate(ops)}
            for k, where in enumerate(urls):
                mine = [pops[c.call_id][0] for c in counted if node_of[f"op{c.seat}"] == k]
                role = "bridge, FastAGI and web" if k == 0 and args.bridge_on_web else "web only"
                print(f"node {k + 1} ({role}, {where}): "
                      f"{len(mine)} pops, p50 {pct(mine, 50):.1f} ms, p99 {pct(mine, 99):.1f} ms", flush=True)
        # the app's CPU for the calls: less noisy than a percentile on a shared box, and what sizing is made of
        per_call = [1000 * c / len(every) for c in each]
        names = [" + ".join({"cti": "bridge", "agi": "FastAGI"}[r] for r in c["services"]) for how, c in nodes
                 if how == "roles"] + [f"web node {k + 1}" for k in range(len(urls))]
        print("the app's CPU a call over the bursts: " + ", ".join(f"{name} {ms:.2f} ms" for name, ms in
                                                                    zip(names, per_call, strict=True))
              + f"; in all {sum(per_call):.2f} ms", flush=True)
        rss = [peak_rss_mib(p.pid) for p in procs]
        print("the app's memory at its peak: " + ", ".join(f"{name} {mb:.0f} MiB" for name, mb in
                                                           zip(names, rss, strict=True)), flush=True)
        # whether the box itself was the limit: the app, this simulator, its clients and Redis share it
        print(f"the machine over the bursts: {busy:.1f} % of its {box_cores} cores busy; the simulator's CPU a call: "
              f"Asterisk and the clicks {sim_ms[0]:.2f} ms, the /ws clients {sim_ms[1]:.2f} ms"
              + (f", Redis {sim_ms[2]:.2f} ms" if redis is not None else ""), flush=True)
        to_ready, to_answer, slack = ([c[k] for c in bench.clicks] for k in range(3))
        print(f"{len(bench.clicks)} wrap-up clicks: the seat unpaused at Asterisk after p50 "
              f"{pct(to_ready, 50):.0f} ms, p99 {pct(to_ready, 99):.0f} ms, max {max(to_ready):.0f} ms; answered "
              f"after p50 {pct(to_answer, 50):.0f} ms, p99 {pct(to_answer, 99):.0f} ms; clicked p50 "
              f"{pct(slack, 50):.0f} ms before the next burst; "
              f"{sum(r > s for r, s in zip(to_ready, slack, strict=True))} unpaused after it", flush=True)
        browser = await asyncio.to_thread(browser_samples, url, ops[0], bench, 0 if bare else args.browser_samples,
                                          asyncio.get_running_loop())
    finally:
        if browsers is not None and browsers.is_alive():
            browsers.kill()
        for proc in procs:
            proc.terminate()
            proc.wait(10)
        if redis is not None:
            redis.close()
        if pg is not None:
            pg.stop()
        for op in ops:
            await op.http.aclose()
        for w in [w for p in pbxs for w in p.writers]:
            w.close()
        for server in servers:
            server.close()
        await asyncio.sleep(0.2)  # the AMI session tasks see their socket close and end
    if browser:
        print(f"browser samples {len(browser)}: " + ", ".join(f"{b:.0f}" for b in browser) + " ms")
    line = (f"calls={n} nodes={args.nodes} servers={args.servers} db={args.db} "
            f"bursts={'ragged' if args.ragged else 'whole'} "
            f"samples={len(latencies)} p50_ms={pct(latencies, 50):.1f} "
            f"p99_ms={pct(latencies, 99):.1f} with_burst_pct={with_burst:.1f} app_cpu_ms_per_call={sum(per_call):.2f} "
            f"machine_busy_pct={busy:.1f} click_p99_ms={pct(to_ready, 99):.0f} pops_without_history={len(without)} "
            f"app_peak_rss_mib={sum(rss):.0f}")
    line += split + (f" browser_p50_ms={pct(browser, 50):.1f}" if browser else "") + live_line
    print(line, flush=True)
    return dict(kv.split("=", 1) for kv in line.split())


if __name__ == "__main__":
    import uvloop

    uvloop.run(main())
