"""FastAGI pre-queue lookup benchmark: concurrent sessions over real sockets against 1 M tickets.

    .venv/bin/python bench/agi_lookup.py                  # 1 000 000 tickets (built once, kept in var/bench)
    .venv/bin/python bench/agi_lookup.py --tickets 20000  # a quick run

The store is filled with ``bench/store.py``'s generator (bulk inserts). The server is agi/'s own
(``agi.service.server``: the routes, the thread pool for the store, the real lookup flow), on
uvloop as under uvicorn and ``hotline agi`` (``--asyncio`` for the standard loop). The clients run
in a separate process, each one behaving like Asterisk's side of ``AGI(agi://…/lookup)``:
connect, send the ``agi_*`` header, answer every command (the variables arrive in one
``SET VARIABLE ARRAY(…)``), until the server closes. Latency is connect → close, which is what a
caller waits for before the queue. Asterisk has its own core in production, so the client gets
the last CPU and the server the others (``--no-pin`` to let them share).

Two runs, both with ``--concurrency`` simulated channels (50):

- **saturated**: every channel starts its next session as soon as the last ended. This measures
  capacity (sessions/s); its latency is queueing (Little's law: concurrency / throughput).
- **paced**: sessions arrive at ``--rate`` per second (Poisson), up to ``--concurrency`` at once.
  The default, 200/s, is far above any hotline's peak (a large centre takes a few calls per
  second). Latency is from the moment the simulated channel starts the session, as Asterisk's
  channel would; how late the client itself was on the schedule is printed beside it.

The last line is the paced run: ``concurrency=50 p50_ms=… p99_ms=… sessions_per_s=…``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing as mp
import os
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from hotline.db import make_engine  # noqa: E402
from testkit.agi import assigned, asterisk_parse_args, header  # noqa: E402
from ticketing.db import migrate  # noqa: E402
from ticketing.models import Ticket  # noqa: E402

# --- the clients (another process) -----------------------------------------------------------


def lookup_header(port: int, number: str, uid: str) -> bytes:
    # the dialplan passes the signed-in seats (QUEUE_MEMBER(…,logged)) as the first argument
    return header("127.0.0.1", port, "lookup", uid, number, channel=f"PJSIP/trunk-{uid}", version="22.5.0",
                  extra={"agi_enhanced": "0.0", "agi_arg_1": "3"})


def set_values(line: bytes) -> dict[str, str]:
    """The variables a SET VARIABLE line sets, split as Asterisk splits them."""
    return assigned(asterisk_parse_args(line.decode().rstrip("\n")))


class _AsteriskSide(asyncio.Protocol):
    """Asterisk's end of one ``AGI(agi://…/lookup)`` session, as a bare protocol: the client
    stands in for C code, so it should cost as little as Python allows (no streams, no task)."""

    def __init__(self, header: bytes, done: asyncio.Future[str]) -> None:
        self.header, self.done = header, done
        self.buf = b""
        self.status = "ok"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        transport.write(self.header)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        *lines, self.buf = self.buf.split(b"\n")
        for line in lines:
            if line.startswith(b"GET FULL VARIABLE"):
                self.transport.write(b"200 result=1 (3)\n")  # type: ignore[attr-defined]  # three seats in
            else:
                if b"HL_LOOKUP" in line:  # alone or inside an ARRAY(…) assignment
                    self.status = set_values(line + b"\n").get("HL_LOOKUP", self.status)
                self.transport.write(b"200 result=1\n")  # type: ignore[attr-defined]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(self.status)


async def session(port: int, number: str, uid: str) -> str:
    """One lookup as Asterisk runs it, until the server closes; returns HL_LOOKUP as the server
    set it ("ok" when not set)."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[str] = loop.create_future()
    transport, _ = await loop.create_connection(lambda: _AsteriskSide(lookup_header(port, number, uid), done),
                                                "127.0.0.1", port)
    try:
        return await done
    finally:
        transport.close()


async def drive(port: int, numbers: list[str], concurrency: int, sessions: int, rate: float,
                seed: int) -> tuple[list[float], float, dict[str, int]]:
    rnd = random.Random(seed)
    latencies: list[float] = []
    lateness: list[float] = []  # how late the client itself started a paced session (its own lag)
    statuses: dict[str, int] = {}
    loop = asyncio.get_running_loop()
    start = loop.time()
    # the arrival schedule: back to back (rate 0) or Poisson at ``rate``
    arrivals: list[float] = []
    t = 0.0
    for _ in range(sessions):
        if rate:
            t += rnd.expovariate(rate)
        arrivals.append(t)
    queue: asyncio.Queue[tuple[int, float]] = asyncio.Queue()
    for i, a in enumerate(arrivals):
        queue.put_nowait((i, a))

    async def channel() -> None:
        while not queue.empty():
            i, at = queue.get_nowait()
            if rate:
                delay = start + at - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                lateness.append((loop.time() - start - at) * 1000)
            t0 = time.perf_counter()  # Asterisk's channel starts AGI(): the caller waits from here
            status = await session(port, rnd.choice(numbers), f"1763866000.{i}")
            latencies.append((time.perf_counter() - t0) * 1000)  # (uvloop's loop.time() counts whole ms)
            statuses[status] = statuses.get(status, 0) + 1

    await asyncio.gather(*(channel() for _ in range(concurrency)))
    if lateness:
        statuses["client_late_p99_ms"] = int(sorted(lateness)[int(0.99 * (len(lateness) - 1))])
    return latencies, loop.time() - start, statuses


def client_main(conn, port: int, numbers: list[str], concurrency: int, sessions: int, rate: float,
                cpus: set[int] | None = None) -> None:
    # the client stands in for Asterisk (C): uvloop (uvicorn's, already installed) keeps its own
    # overhead out of the figures as far as Python allows
    if cpus:
        os.sched_setaffinity(0, cpus)
    try:
        import uvloop

        run = uvloop.run
    except ImportError:
        run = asyncio.run
    try:
        conn.send(run(drive(port, numbers, concurrency, sessions, rate, seed=int(rate) + 1)))
    finally:
        conn.close()


# --- the store and the server (this process) ---------------------------------------------------


def ensure_store(n: int) -> tuple[str, list[str]]:
    """A SQLite store with ``n`` tickets, built once with bench/store.py's generator and kept."""
    from bench.store import create

    workdir = ROOT / "var" / "bench"
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / f"agi-lookup-{n}.db"
    done = path.with_suffix(".done")
    url = f"sqlite:///{path}"
    if not done.exists():
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        engine = make_engine(url)
        migrate(engine)
        print(f"creating {n} tickets in {path} …", flush=True)
        rate, _ = create(engine, n)
        print(f"created: {rate:.0f} tickets/s", flush=True)
        engine.dispose()
        done.write_text(str(n))
    engine = make_engine(url)
    migrate(engine)  # a store kept from an older checkout gets the current schema
    with engine.connect() as c:
        count = c.execute(sa.select(sa.func.count()).select_from(Ticket)).scalar_one()
        numbers = list(c.execute(sa.select(Ticket.caller_number).distinct().limit(5000)).scalars())
    engine.dispose()
    print(f"store: {count} tickets, {len(numbers)} caller numbers sampled", flush=True)
    return url, numbers


def figures(lat: list[float], elapsed: float) -> tuple[float, float, float]:
    lat = sorted(lat)
    return statistics.median(lat), lat[max(0, int(0.99 * len(lat)) - 1)], len(lat) / elapsed


async def serve_and_measure(args: argparse.Namespace, url: str, numbers: list[str]) -> list[str]:
    from agi import service
    from bench.store import NOW
    from hotline.settings import Settings
    from ticketing.context import StoreContext
    from ticketing.store import Store

    settings = Settings(agi_port=0, service_hours="00:00-24:00", agi_max_sessions=args.concurrency * 2)
    engine = make_engine(url)
    lookups = service.TicketLookups(Store.on(StoreContext(engine, clock=lambda: NOW)), settings.cti_timezone)
    srv = service.server(settings, lookups)
    await srv.start()
    # callers: mostly numbers with history, some first-time callers
    callers = numbers + [f"1390530{i:04d}" for i in range(len(numbers) // 5)]
    for n in callers[:200]:  # warm the pool's connections, the caches and the page cache
        await lookups.summarize(n)
    out = []
    ctx = mp.get_context("spawn")
    client_cpus = split_cpus() if args.pin else None
    for name, rate, count in (("saturated", 0.0, args.sessions), ("paced", args.rate, args.sessions)):
        parent, child = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=client_main,
                           args=(child, srv.port, callers, args.concurrency, count, rate, client_cpus))
        cpu0 = time.process_time()  # the server's own CPU (loop and store threads), whatever else runs
        proc.start()
        child.close()
        result = await asyncio.get_running_loop().run_in_executor(None, parent.recv)
        cpu_ms = (time.process_time() - cpu0) * 1000
        proc.join()
        lat, elapsed, statuses = result
        p50, p99, per_s = figures(lat, elapsed)
        print(f"[{name}] sessions={len(lat)} lookups={statuses} " + (f"offered={rate:.0f}/s " if rate else "")
              + f"p50_ms={p50:.2f} p99_ms={p99:.2f} max_ms={max(lat):.2f} sessions_per_s={per_s:.0f} "
              f"server_cpu_ms_per_session={cpu_ms / len(lat):.2f}", flush=True)
        out.append(f"concurrency={args.concurrency} p50_ms={p50:.2f} p99_ms={p99:.2f} sessions_per_s={per_s:.0f}")
    await srv.stop()
    lookups.close()
    engine.dispose()
    return out


def split_cpus() -> set[int] | None:
    """Asterisk runs on its own core in production: give the simulated one (the client) the last
    CPU and this server the others, so that neither steals the other's time slices (on two CPUs
    they otherwise share both, and the figures swing by a third from run to run)."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None
    os.sched_setaffinity(0, set(cpus[:-1]))
    return {cpus[-1]}


def load_note() -> str:
    try:
        return f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs: other work shares the machine)"
    except OSError:
        return ""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tickets", type=int, default=1_000_000)
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--sessions", type=int, default=5000, help="sessions per run")
    ap.add_argument("--rate", type=float, default=200.0, help="offered sessions/s of the paced run")
    ap.add_argument("--asyncio", action="store_true",
                    help="run the server on asyncio's own loop (default: uvloop, as under uvicorn and `hotline agi`)")
    ap.add_argument("--no-pin", dest="pin", action="store_false", help="let client and server share every CPU")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    url, numbers = ensure_store(args.tickets)
    if args.asyncio:
        lines = asyncio.run(serve_and_measure(args, url, numbers))
    else:
        import uvloop

        lines = uvloop.run(serve_and_measure(args, url, numbers))
    print(f"saturated: {lines[0]} {load_note()}")
    print(lines[1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
