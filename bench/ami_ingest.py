"""AMI ingest benchmark: a recorded AMI stream through the CTI node as production wires it, against
panoramisk's bare parse of the same bytes.

**Input** (only files in git, read through ``testkit.ami``): the spike's two Asterisk 22 logs
(``tests/fixtures/ami/spike/*.jsonl``: every event, unfiltered — VarSet, Newexten, RTCP… — as an AMI
user without eventfilters receives them) and the raw transcripts recorded from the project's own
Asterisk (``tests/fixtures/ami/*.ami``, ``tests/cti/transcripts/*.ami``), each one call or a few.
Copies of them in a fixed order become a centre's traffic: each copy gets its own Uniqueids,
Linkedids, bridge ids and seats (8001–8050; a seat takes a call only 30 s after its last one, its
wrap-up) and starts ``--spacing`` s of Asterisk time after the one before, so ~20 calls are under
way at once and their frames interleave by ``Timestamp`` (each copy keeps its recorded order).
Caller names are Chinese. The bytes are cut into 4 KiB reads, anywhere (inside characters too).

**ours** — the CTI node as ``launch.compose`` wires it (``build``: SQLite under
``var/bench/ami-ingest/``, the store, the call filer; ``CtiService`` started for real against a small
in-process Asterisk that answers as Asterisk 22 does), on uvloop; 50 operators signed in, their 50
consoles and the lead's wallboard following the bus through ``agent_ui.ws``'s own code to sockets
that count what they get. Each read goes to ``cti.link._Protocol.data_received`` with a turn of the
loop after it, as between TCP reads. Timed: from the first read until every read is handled, every
subscription drained and every action answered. bench/README.md says why each part is there.

**The call log**: every finished call goes to production's ``CallFiler`` (outbox, call log, catalog,
on its own thread in rounds of up to ``--filing-batch`` calls) and must be in the call log at the
end. With ``--filing after`` (the default) the filing is held until the reads are timed, then timed
on its own (``filing_s``, ``filing_cpu_ms_per_call``, ``filing_rounds``): every round is then full;
``--filing-batch 1`` gives a call filed alone. Why after: this replay finishes ~250 calls a second
where 50 seats finish ~2; filed meanwhile (``--filing during``) the thread would take the GIL from
the reads at a rate no centre reaches.

**bare** — the same reads into panoramisk 1.4's ``AMIProtocol.data_received`` with a no-op
dispatcher, synchronously. Rounds alternate ours/bare (``--rounds``, default 5); each side's
**median** is compared; the heap is collected and frozen before each, as a hotline process does.

Run: ``.venv/bin/python bench/ami_ingest.py [--min-events N] [--rounds R] [--profile]``. Last
line: ``events_per_s=… bare_events_per_s=… ratio=… …`` (goal: ratio ≥ 0.8).
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import cProfile
import functools
import gc
import heapq
import pstats
import re
import shutil
import statistics
import sys
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402
import uvloop  # noqa: E402
from panoramisk.ami_protocol import AMIProtocol  # noqa: E402

from agent_ui.app import WebParts, create_app  # noqa: E402
from agent_ui.centre import scope, seat_queues  # noqa: E402
from agent_ui.ws import Audience, _send_loop  # noqa: E402
from cti.link import _Protocol  # noqa: E402
from cti.service import CtiService  # noqa: E402
from hotline.identity import Principal, Role  # noqa: E402
from hotline.settings import Settings  # noqa: E402
from launch.compose import Node, build, freeze  # noqa: E402
from launch.filing import MAX_BATCH  # noqa: E402
from testkit import ami  # noqa: E402

VAR = ROOT / "var" / "bench" / "ami-ingest"
SEP = b"\r\n\r\n"
SEATS = tuple(f"80{n:02d}" for n in range(1, 51))
WRAPUP_S = 30.0  # Settings.cti_wrapup_s: a seat takes no call for this long after one
T0 = 1_900_000_000.0  # the stream's Asterisk clock starts here (far from the recorded ids' seconds)
RECORDED_SEATS = re.compile(rb"(?<![\w.])(8001|8002|agent1001)(?!\w)")
IDS = re.compile(rb"(?:Uniqueid|Linkedid): (\d+\.\d+)")
UUID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
TS = re.compile(rb"Timestamp: (\d+\.\d+)")


# ----------------------------------------------------------------------------- the stream


@dataclass
class Template:
    name: str
    wire: bytes  # its event frames, as Asterisk sent them
    ids: re.Pattern[bytes] | None  # its channels' ids, whole
    seats: list[bytes]  # the recorded seats it uses
    t0: float
    duration: float


def template(name: str, wire: bytes) -> Template:
    ids = sorted({m.group(1) for m in IDS.finditer(wire)}, key=len, reverse=True)
    ts = [float(m.group(1)) for m in TS.finditer(wire)]
    seats = list(dict.fromkeys(m.group(1) for m in RECORDED_SEATS.finditer(wire)))
    pattern = re.compile(rb"(?<![\d.])(" + b"|".join(re.escape(i) for i in ids) + rb")(?!\d)") if ids else None
    return Template(name, wire, pattern, seats, min(ts), max(ts) - min(ts))


def templates() -> list[Template]:
    out = []
    for p in (ami.FLOWS, ami.THREE_PARTY):
        events = [d for d in ami.load_jsonl(p) if not str(d.get("Event", "")).startswith("_")]
        out.append(template(p.name, ami.to_wire(events, greeting=False).replace(b"Citizen 1", "张三丰".encode())))
    out += [template(p.name, ami.event_frames(p.read_bytes())) for p in ami.raw_transcripts()]
    if not out:
        raise SystemExit("no transcripts found")
    return out


def copy_of(t: Template, j: int, start: float, seats: dict[bytes, bytes]) -> list[tuple[float, int, bytes]]:
    """Copy ``j`` of a recorded call: its own ids, bridges and seats, its clock moved to ``start``;
    its frames with a non-decreasing key (their Timestamp), in the recorded order."""
    wire = t.wire
    if t.ids is not None:
        wire = t.ids.sub(lambda m: b"%d.%s" % (3_000_000_000 + j, m.group(1).rpartition(b".")[2]), wire)
    wire = UUID.sub(lambda m: m.group(0)[:24] + b"%012x" % j, wire)
    wire = RECORDED_SEATS.sub(lambda m: seats[m.group(1)], wire)
    wire = TS.sub(lambda m: b"Timestamp: %.6f" % (float(m.group(1)) - t.t0 + start), wire)
    out, key = [], start
    for frame in wire.split(SEP)[:-1]:
        m = TS.search(frame)
        key = max(key, float(m.group(1))) if m else key
        out.append((key, j, frame + SEP))
    return out


@dataclass
class Stream:
    data: bytes
    events: int
    calls: int
    chunks: list[bytes]
    clock: list[float]  # the Asterisk time when each read has been handled
    sources: list[str]
    span_s: float
    concurrent: float  # calls under way at once, on average


def build_stream(min_events: int, spacing: float, size: int = 4096) -> Stream:
    ts = templates()
    per_round = sum(t.wire.count(SEP) for t in ts)
    n = len(ts) * -(-min_events // per_round)
    free = {s: T0 for s in SEATS}  # seat → when it can take a call again
    copies, busy = [], 0.0
    for j in range(n):
        t = ts[j % len(ts)]
        start = T0 + j * spacing
        lru = sorted(free, key=free.__getitem__)[: len(t.seats)]
        start = max([start] + [free[s] for s in lru])
        for s in lru:
            free[s] = start + t.duration + WRAPUP_S
        busy += t.duration
        copies.append(copy_of(t, j, start, dict(zip(t.seats, (s.encode() for s in lru), strict=True))))
    frames = list(heapq.merge(*copies))
    data = ami.GREETING + b"".join(f for _, _, f in frames)
    chunks = [data[i : i + size] for i in range(0, len(data), size)]
    clock, end, k = [], len(ami.GREETING), 0
    for i in range(len(chunks)):
        limit = (i + 1) * size
        while k < len(frames) and end + len(frames[k][2]) <= limit:
            end += len(frames[k][2])
            k += 1
        clock.append(frames[max(k - 1, 0)][0])
    span = frames[-1][0] - frames[0][0]
    return Stream(data, len(frames), n, chunks, clock, [t.name for t in ts], span, busy / span)


# ----------------------------------------------------------------------------- Asterisk's side


class Asterisk:
    """Just enough of Asterisk 22's AMI for the bridge: login (then ``FullyBooted``), the resync's
    lists (empty: nothing is signed in yet), and the seat actions answered with the events Asterisk
    sends for them, stamped with the stream's clock."""

    def __init__(self, clock) -> None:
        self.clock = clock
        self.actions: Counter[str] = Counter()
        self.queues: dict[str, set[str]] = {}  # interface → its queues
        self.writers: list[asyncio.StreamWriter] = []

    async def serve(self) -> asyncio.Server:
        return await asyncio.start_server(self._client, "127.0.0.1", 0)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        writer.write(ami.GREETING)
        try:
            while True:
                raw = await reader.readuntil(SEP)
                action = dict(line.split(": ", 1) for line in raw.decode().split("\r\n") if ": " in line)
                self.actions[action.get("Action", "")] += 1
                writer.write(self._answer(action))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass

    def _event(self, name: str, **headers: str) -> bytes:
        head = {"Event": name, "Privilege": "agent,all", "Timestamp": f"{self.clock():.6f}"}
        return "".join(f"{k}: {v}\r\n" for k, v in (head | headers).items()).encode() + b"\r\n"

    def _member(self, name: str, queue: str, iface: str, paused: bool, reason: str = "") -> bytes:
        return self._event(name, Queue=queue, MemberName=iface.rpartition("/")[2], Interface=iface,
                           StateInterface=iface, Membership="dynamic", Penalty="0", CallsTaken="0", InCall="0",
                           Status="1", Paused="1" if paused else "0", PausedReason=reason, Wrapuptime="0")

    def _answer(self, a: dict[str, str]) -> bytes:
        aid, name = a.get("ActionID", ""), a.get("Action", "")
        ok = f"Response: Success\r\nActionID: {aid}\r\nMessage: {name} ok\r\n\r\n".encode()
        if name == "Login":
            return ok + self._event("FullyBooted", Privilege="system,all", Status="Fully Booted", Uptime="5")
        if name in ("QueueStatus", "CoreShowChannels"):
            done = f"{name}Complete"
            return (f"Response: Success\r\nActionID: {aid}\r\nEventList: start\r\nMessage: follows\r\n\r\n"
                    f"Event: {done}\r\nActionID: {aid}\r\nEventList: Complete\r\nListItems: 0\r\n\r\n").encode()
        iface = a.get("Interface", "")
        if name == "QueueAdd":
            self.queues.setdefault(iface, set()).add(a["Queue"])
            return ok + self._member("QueueMemberAdded", a["Queue"], iface, a.get("Paused") == "true")
        if name == "QueuePause":
            paused = a.get("Paused") == "true"
            reason = a.get("Reason", "") if paused else ""
            return ok + b"".join(self._member("QueueMemberPause", q, iface, paused, reason)
                                 for q in sorted(self.queues.get(iface, ())))
        return ok


# ----------------------------------------------------------------------------- the consoles


@dataclass
class Screen:
    """A console's (or the wallboard's) websocket as ``agent_ui.ws`` drives it; counts instead of writing."""

    app: object
    messages: int = 0
    chars: int = 0
    completed: int = 0  # CallCompleted messages (the wallboard sees them all)

    async def send_json(self, msg: dict) -> None:
        self.messages += 1

    async def send_text(self, text: str) -> None:
        self.messages += 1
        self.chars += len(text)
        if '"event":"CallCompleted"' in text:
            self.completed += 1

    async def close(self, code: int = 1000, reason: str = "") -> None:
        pass


class AfterTheReads(concurrent.futures.Executor):
    """The loop's default executor while the reads are timed (``--filing after``): the call filing
    handed to it (``Node.follow_finished_calls``: ``run_in_executor(None, …)``) waits, then runs on
    the pool production uses once the reads are timed. See the module's docstring: why."""

    def __init__(self) -> None:
        self.jobs: list[tuple[concurrent.futures.Future, Callable[..., object], tuple]] = []

    def submit(self, fn, /, *args, **kwargs):  # concurrent.futures.Executor.submit
        future: concurrent.futures.Future = concurrent.futures.Future()
        self.jobs.append((future, functools.partial(fn, **kwargs), args))
        return future

    def release(self, pool: concurrent.futures.Executor) -> None:
        for future, fn, args in self.jobs:
            pool.submit(self._run, future, fn, args)

    @staticmethod
    def _run(future: concurrent.futures.Future, fn: Callable[..., object], args: tuple) -> None:
        if future.set_running_or_notify_cancel():
            try:
                future.set_result(fn(*args))
            except BaseException as exc:  # handed back to whoever awaits it
                future.set_exception(exc)


@dataclass
class Result:
    seconds: float
    events: int
    published: int
    calls_logged: int = 0
    completed: int = 0
    filing_s: float = 0.0  # ``after``: from the end of the reads; ``during``: from their start
    filing_cpu_s: float = 0.0
    filing_rounds: int = 0  # transactions the filer's thread took for the calls
    delivered: int = 0
    wallboard: int = 0
    actions: Counter[str] = field(default_factory=Counter)


def settled(node: Node) -> bool:
    """Every subscription drained and every wrap-up action answered."""
    bus, cti = node.bus, node.cti
    assert cti is not None
    return all(s._q.empty() for s in bus._subs) and not cti._pending


async def until_settled(node: Node) -> None:
    while not settled(node):  # noqa: ASYNC110 - a turn of the loop at a time, nothing to wait on
        await asyncio.sleep(0)


async def run_ours(stream: Stream, run: int, *, filing: str = "after", consoles: int = len(SEATS),
                   workdir: Path = VAR, profile: cProfile.Profile | None = None,
                   filing_batch: int = MAX_BATCH) -> Result:
    loop = asyncio.get_running_loop()
    pool = concurrent.futures.ThreadPoolExecutor()  # what asyncio's default executor is
    loop.set_default_executor(pool)
    var = workdir / f"run{run}"
    shutil.rmtree(var, ignore_errors=True)
    now = [stream.clock[0]]  # Asterisk's clock, as the stream tells it: the bridge's and the fake's

    def clock() -> float:
        return now[0]

    asterisk = Asterisk(clock)
    server = await asterisk.serve()
    port = server.sockets[0].getsockname()[1]
    settings = Settings(_env_file=None, var_dir=var, ami_host="127.0.0.1", ami_port=port, ami_secret="bench",
                        seats=list(SEATS), services=["cti"], cti_wrapup_s=WRAPUP_S)
    node = await asyncio.to_thread(build, settings, set())  # the database, migrated; the store; the filer
    node.cti = cti = CtiService.from_settings(settings, bus=node.bus, clock=clock)  # as build() with role cti
    filer = node.filer
    assert filer is not None
    filer.max_batch = filing_batch
    if filing != "off":
        node.follow_finished_calls()  # as Node.start does first
    await cti.start(wait=10)
    for seat in SEATS:
        await cti.actions.sign_in(seat, operator=f"op{seat}", job_number=f"1{seat}")
    app = create_app(WebParts(settings=settings, engine=node.engine, store=node.store, accounts=node.accounts,
                              bus=node.bus, cti=cti))
    people = [Principal(f"op{s}", Role.OPERATOR) for s in SEATS[:consoles]] + [Principal("lead", Role.LEAD)]
    screens = [Screen(app) for _ in people]
    tasks = []
    for who, ws in zip(people, screens, strict=True):  # as agent_ui.ws.websocket_endpoint does
        audience = Audience(who, app.state.seat_of, scope(app, who), seat_queues(app))
        pong = asyncio.Event()
        pong.set()
        tasks.append(asyncio.create_task(_send_loop(ws, app.state.hub, audience, None, None, pong)))
    await asyncio.sleep(0.05)
    await until_settled(node)
    feed = _Protocol(cti.link)  # a second protocol on the link: the stream's bytes, beside the actions' socket
    feed.connection_made(_NullTransport())
    seq0, frames0 = node.bus.last_seq, feed.parser.frames
    deferred, held = AfterTheReads(), AfterTheReads()
    if filing == "after":
        loop.set_default_executor(deferred)
        filer_pool, filer.pool = filer.pool, held
    freeze()  # before each timed side, as a hotline process freezes its heap once started
    sleep = asyncio.sleep
    if profile is not None:
        profile.enable()
    t, cpu = time.perf_counter(), time.process_time()
    for c, at in zip(stream.chunks, stream.clock, strict=True):
        now[0] = at
        feed.data_received(c)
        await sleep(0)
    await until_settled(node)
    dt = time.perf_counter() - t
    if profile is not None:
        profile.disable()
    gc.unfreeze()
    published = node.bus.last_seq - seq0
    if filing == "after":  # the calls handed over: filed now, on production's pool, timed on their own
        t, cpu = time.perf_counter(), time.process_time()
        loop.set_default_executor(pool)
        deferred.release(pool)
        filer.pool = filer_pool
        held.release(filer_pool)  # the filer's thread: a round at a time, up to ``filing_batch`` calls each
    await asyncio.to_thread(filer.close)  # every call filed
    await loop.shutdown_default_executor()
    filing_s, filing_cpu = time.perf_counter() - t, time.process_time() - cpu
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await cti.stop()
    server.close()
    with node.engine.connect() as conn:
        logged = conn.execute(sa.text("select count(*) from call_record where ended_at is not null")).scalar_one()
    pending = filer.pending
    node.engine.dispose()
    if pending:
        raise SystemExit(f"{pending} calls left in the outbox")
    return Result(dt, feed.parser.frames - frames0, published, logged, screens[-1].completed, filing_s, filing_cpu,
                  filer.rounds, sum(s.messages for s in screens), screens[-1].messages, asterisk.actions)


# ----------------------------------------------------------------------------- bare panoramisk


class _NullFactory:
    save_stream = None

    def dispatch(self, message) -> None:
        pass


class _NullTransport:
    def write(self, data: bytes) -> None:
        pass

    def close(self) -> None:
        pass


def run_bare(chunks: list[bytes]) -> tuple[float, int]:
    proto = AMIProtocol()
    proto.connection_made(_NullTransport())
    proto.factory = _NullFactory()
    proto.queue = deque()
    proto.encoding = "utf8"
    count = [0]
    orig = proto.handle_message

    def counting(message) -> None:
        count[0] += 1
        orig(message)

    proto.handle_message = counting
    freeze()  # before each timed side, as a hotline process freezes its heap once started
    t = time.perf_counter()
    for c in chunks:
        proto.data_received(c)
    dt = time.perf_counter() - t
    gc.unfreeze()
    return dt, count[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--min-events", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=5, help="ours/bare pairs, alternated")
    ap.add_argument("--spacing", type=float, default=1.0, help="Asterisk seconds between two calls' starts")
    ap.add_argument("--filing", choices=("after", "during", "off"), default="after",
                    help="the finished calls filed once the reads are timed (default), while they are, or not at all")
    ap.add_argument("--filing-batch", type=int, default=MAX_BATCH,
                    help="calls per round of the filer's thread at most (production's: launch.filing.MAX_BATCH); "
                         "1: every call its own transaction, as when calls end further apart than a round takes")
    ap.add_argument("--consoles", type=int, default=len(SEATS), help="operators' consoles following the bus")
    ap.add_argument("--workdir", type=Path, default=VAR, help="where each run's database and outbox go")
    ap.add_argument("--profile", action="store_true", help="one run of ours under cProfile: where the time goes")
    args = ap.parse_args()
    stream = build_stream(args.min_events, args.spacing)
    print(f"stream: {stream.events} events of {stream.calls} recorded calls over {stream.span_s / 60:.0f} min of "
          f"Asterisk time ({stream.concurrent:.0f} at once on average), {len(stream.data) / 1e6:.1f} MB in "
          f"{len(stream.chunks)} reads of 4 KiB; from {len(stream.sources)} recordings: {', '.join(stream.sources)}",
          flush=True)
    options = {"filing": args.filing, "consoles": args.consoles, "workdir": args.workdir,
               "filing_batch": args.filing_batch}
    if args.profile:
        prof = cProfile.Profile()
        uvloop.run(run_ours(stream, 0, profile=prof, **options))
        pstats.Stats(prof).sort_stats("tottime").print_stats(45)
        return
    ours: list[Result] = []
    bare: list[float] = []
    for r in range(args.rounds):
        res = uvloop.run(run_ours(stream, r, **options))
        if res.events != stream.events:
            raise SystemExit(f"ours handled {res.events} events, expected {stream.events}")
        if args.filing != "off" and res.calls_logged != res.completed:
            raise SystemExit(f"{res.completed} calls completed, {res.calls_logged} in the call log")
        ours.append(res)
        dt, n = run_bare(stream.chunks)
        if n != stream.events:
            raise SystemExit(f"bare parsed {n} messages, expected {stream.events}")
        bare.append(dt)
        print(f"round {r + 1}: ours {res.seconds:.3f} s, bare {dt:.3f} s; {res.calls_logged} calls filed in "
              f"{res.filing_s:.2f} s ({res.filing_cpu_s:.2f} s CPU, {res.filing_rounds} transactions)", flush=True)
    last = ours[-1]
    med_ours = statistics.median(r.seconds for r in ours)
    med_bare = statistics.median(bare)
    filing_s = statistics.median(r.filing_s for r in ours)
    filing_ms = statistics.median(r.filing_cpu_s for r in ours) / max(last.calls_logged, 1) * 1000
    print(f"ours: {stream.events} events → {last.published} domain events on the bus → {last.delivered} messages "
          f"to {args.consoles} consoles and the wallboard ({last.wallboard} to the wallboard); {last.completed} "
          f"calls completed, {last.calls_logged} filed in the call log; AMI actions answered: {dict(last.actions)}")
    print(f"median of {args.rounds} rounds: ours {med_ours:.3f} s, bare {med_bare:.3f} s "
          f"(best: ours {min(r.seconds for r in ours):.3f} s, bare {min(bare):.3f} s)")
    e = stream.events
    print(f"events_per_s={e / med_ours:.0f} bare_events_per_s={e / med_bare:.0f} ratio={med_bare / med_ours:.2f} "
          f"stat=median rounds={args.rounds} events={e} published={last.published} consoles={args.consoles} "
          f"calls_logged={last.calls_logged} filing={args.filing} filing_s={filing_s:.2f} "
          f"filing_batch={args.filing_batch} filing_rounds={last.filing_rounds} filing_cpu_ms_per_call={filing_ms:.1f}")


if __name__ == "__main__":
    main()
