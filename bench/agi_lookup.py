"""FastAGI pre-queue lookup benchmark: agi/'s server against a bare asyncio responder, 1 M tickets.

    .venv/bin/python bench/agi_lookup.py                  # 1 000 000 tickets (built once, kept in var/bench)
    .venv/bin/python bench/agi_lookup.py --tickets 20000  # a quick run

Two servers answer ``AGI(agi://…/lookup)`` on the same store, in this process, on the same loop
(uvloop, as under ``hotline agi``; ``--asyncio`` for the standard one) and the same CPU:

- **ours**: ``agi.service.server`` (routes, flow, thread pool, ``callers.summary``) as deployed;
- **bare**: :class:`Bare` below, no code of ours: ``asyncio.start_server``, the ``agi_*`` header
  read up to the blank line, the same SQL on the same SQLite file through ``sqlite3`` (on the
  loop: the fastest way on one CPU), the same read-log row for a confidential ticket, and the same
  ``SET VARIABLE`` command. Before timing, both answer the same numbers and the exchanges are
  compared byte for byte: the bench stops if they differ.

Clients (Asterisk's side: connect, header, answer every command until the server closes) run in
another process on the last CPU (``--no-pin`` to share); latency is connect → close. Numbers come
from all the store's callers or (``--new-share``) never-seen ones; ``--confidential`` tickets make
the read-log write timed. Rounds alternate bare/ours, each a **saturated** run (``--concurrency``
channels back to back; mean in flight measured) and a **paced** one (Poisson at ``--rate``/s).
Throughput: the median round; p99: all paced sessions pooled. bench/README.md says why it is fair.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import random
import re
import resource
import sqlite3
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from functools import lru_cache, partial
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import chinese_calendar  # noqa: E402
import phonenumbers  # noqa: E402
from phonenumbers import geocoder  # noqa: E402

from testkit.agi import header  # noqa: E402
from testkit.benchrun import pct, split_cpus  # noqa: E402

# --- the clients (another process) -----------------------------------------------------------

def lookup_header(port: int, number: str, uid: str) -> bytes:
    # the dialplan passes the signed-in seats (QUEUE_MEMBER(…,logged)) as the first argument
    return header("127.0.0.1", port, "lookup", uid, number, channel=f"PJSIP/trunk-{uid}", version="22.5.0",
                  extra={"agi_enhanced": "0.0", "agi_arg_1": "3"})


class _AsteriskSide(asyncio.Protocol):
    """Asterisk's end of one session as a bare protocol: the client stands in for C code, so it
    costs as little as Python allows. Its result: (HL_LOOKUP or "ok", when the server closed)."""

    def __init__(self, header: bytes, done: asyncio.Future) -> None:
        self.header, self.done, self.buf, self.status = header, done, b"", "ok"

    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.write(self.header)

    def data_received(self, data: bytes) -> None:
        *lines, self.buf = (self.buf + data).split(b"\n")
        for line in lines:
            if line.startswith(b"GET FULL VARIABLE"):
                self.transport.write(b"200 result=1 (3)\n")  # three seats signed in
                continue
            if b"HL_LOOKUP" in line:  # only sent when the lookup did not go well
                self.status = "not_ok"
            self.transport.write(b"200 result=1\n")

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result((self.status, time.perf_counter()))


def draws(rnd: random.Random, numbers: list[str], known: set[str], count: int, new_share: float) -> list[str]:
    """Caller numbers for ``count`` sessions: any of the store's, or one it has never seen."""
    out = []
    for _ in range(count):
        if rnd.random() >= new_share:
            out.append(rnd.choice(numbers))
            continue
        while (n := f"1{rnd.choice('3578')}{rnd.randrange(10**9):09d}") in known:
            pass
        out.append(n)
    return out


async def drive(job: dict, numbers: list[str], known: set[str], secret: dict[str, int]) -> dict:
    rnd = random.Random(job["seed"])
    rate, sessions, port = job["rate"], job["sessions"], job["port"]
    todo = draws(rnd, numbers, known, sessions, job["new_share"])
    arrivals = [0.0] * sessions
    for i in range(1, sessions):
        arrivals[i] = arrivals[i - 1] + (rnd.expovariate(rate) if rate else 0.0)
    loop = asyncio.get_running_loop()
    lat: list[float] = []
    late: list[float] = []  # how late the client itself started a paced session (its own lag)
    bad = 0
    nxt = 0
    cpu0, start = time.process_time(), time.perf_counter()

    async def channel() -> None:
        nonlocal nxt, bad
        while nxt < sessions:
            i = nxt
            nxt += 1
            if rate:
                if (delay := start + arrivals[i] - time.perf_counter()) > 0:
                    await asyncio.sleep(delay)
                late.append((time.perf_counter() - start - arrivals[i]) * 1000)
            done = loop.create_future()
            t0 = time.perf_counter()  # Asterisk's channel starts AGI(): the caller waits from here
            head = lookup_header(port, todo[i], f"1763866000.{i}")
            transport, _ = await loop.create_connection(partial(_AsteriskSide, head, done), "127.0.0.1", port)
            status, t1 = await done
            transport.close()
            lat.append(t1 - t0)
            bad += status != "ok"

    await asyncio.gather(*(channel() for _ in range(job["concurrency"])))
    elapsed = time.perf_counter() - start
    return {"lat_ms": [x * 1000 for x in lat], "elapsed": elapsed, "in_flight": sum(lat) / elapsed,
            "client_cpu": (time.process_time() - cpu0) / elapsed, "not_ok": bad,
            "late_p99_ms": pct(late, 99) if late else 0.0,
            "secret_lookups": sum(n in secret for n in todo), "secret_rows": sum(secret.get(n, 0) for n in todo)}


def client_main(conn, numbers: list[str], secret: dict[str, int], cpus: set[int] | None) -> None:
    """Run the jobs the server process sends until it sends None."""
    if cpus:
        os.sched_setaffinity(0, cpus)
    try:
        import uvloop

        run = uvloop.run
    except ImportError:
        run = asyncio.run
    known = set(numbers)
    while (job := conn.recv()) is not None:
        conn.send(run(drive(job, numbers, known, secret)))
    conn.close()


# --- the baseline: a bare FastAGI responder (nothing of ours) ----------------------------------
BEIJING = ZoneInfo("Asia/Shanghai")
TEXT_TIME = "%Y-%m-%d %H:%M:%S.%f"  # how SQLite holds the store's times (UTC)
LABELS = {"draft": "草稿", "registered": "已登记", "transferred": "已转办", "returned": "已退回",
          "accepted": "已签收", "in_progress": "办理中", "extension_requested": "延期申请中", "replied": "已答复",
          "satisfied": "回访满意", "unsatisfied": "回访不满意", "closed": "已办结", "archived": "已归档"}
OPEN = ("accepted", "extension_requested", "in_progress", "registered", "replied", "returned", "satisfied",
        "transferred", "unsatisfied")
BARE_SQL = f"""
SELECT a.total, a.open, a.r30, r.id, r.number, r.status, r.category, r.title, r.created_at, r.current_due,
       r.confidential, w.location, w.blacklisted, w.vip, w.elderly
FROM (SELECT count(*) AS total, coalesce(sum(CASE WHEN status IN ({", ".join(f"'{s}'" for s in OPEN)})
             THEN 1 ELSE 0 END), 0) AS open,
             coalesce(sum(CASE WHEN created_at >= :since THEN 1 ELSE 0 END), 0) AS r30
      FROM ticket WHERE caller_number = :n) AS a
LEFT JOIN (SELECT id, number, status, category, title, created_at, current_due, confidential FROM ticket
           WHERE caller_number = :n ORDER BY caller_number DESC, created_at DESC LIMIT 5) AS r ON 1
LEFT JOIN (SELECT location, blacklisted, vip, elderly FROM caller WHERE number = :n) AS w ON 1
ORDER BY r.created_at DESC"""
READ_LOG = ("INSERT INTO confidential_read (ticket_id, at, username, role, purpose, masked) "
            "VALUES (?, ?, 'agi', 'system', 'caller_lookup', 0)")
STATUSES = ["archived"] * 10 + ["closed"] * 4 + ["in_progress", "transferred", "registered", "accepted", "replied"]
SAFE = str.maketrans({",": "，", ":": "：", '"': "＂", "\\": "＼", "(": "（", ")": "）"})


@lru_cache(maxsize=4096)
def place(number: str) -> str:
    try:
        return geocoder.description_for_number(phonenumbers.parse(number, "CN"), "zh") or ""
    except phonenumbers.NumberParseException:
        return ""


def arg(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Bare:
    """One sqlite3 connection used on the loop, the rules of the lookup written out, one command."""

    def __init__(self, path: Path, now: datetime, repeat_days: int, queue_wait_s: int) -> None:
        self.db = sqlite3.connect(path, timeout=30)
        for pragma in ("foreign_keys=ON", "journal_mode=WAL", "synchronous=NORMAL"):  # the product's
            self.db.execute(f"PRAGMA {pragma}")
        now = now.astimezone(UTC).replace(tzinfo=None)
        self.now, self.today = now.strftime(TEXT_TIME), now.replace(tzinfo=UTC).astimezone(BEIJING).date()
        self.since = (now - timedelta(days=30)).strftime(TEXT_TIME)
        self.repeat_since = (now - timedelta(days=repeat_days)).strftime(TEXT_TIME)
        self.queue_wait = str(queue_wait_s)

    async def start(self) -> None:
        self.server = await asyncio.start_server(self.session, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self.server.close()
        self.db.close()

    async def session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\n\n")).decode()
            env = dict(line.split(": ", 1) for line in head.splitlines() if ": " in line)
            for line in self.answer(re.sub(r"\D", "", env.get("agi_callerid", ""))):
                writer.write(line)
                await reader.readline()  # 200 result=1
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def colour(self, due: str | None) -> str:
        if due is None:
            return "none"
        if self.now > due:
            return "red"
        day = datetime.strptime(due, TEXT_TIME).replace(tzinfo=UTC).astimezone(BEIJING).date()
        left = sum(chinese_calendar.is_workday(self.today + timedelta(days=d)) for d in
                   range(1, (day - self.today).days + 1))
        return "yellow" if left < 2 else "green"

    def answer(self, n: str) -> list[bytes]:
        rows = self.db.execute(BARE_SQL, {"n": n, "since": self.since}).fetchall()
        if secret := [(r[3], self.now) for r in rows if r[10]]:
            with self.db:  # the read of a confidential ticket is logged, in its own transaction
                self.db.executemany(READ_LOG, secret)
        total, open_, who = rows[0][0], rows[0][1], rows[0][11:]
        recent, overdue = [], 0
        for r in rows:
            if r[3] is None:
                continue
            colour = self.colour(r[9])
            overdue += colour == "red" and r[5] not in ("closed", "archived", "draft")
            recent.append(f"{r[4]}:{colour}:{LABELS[r[5]]}:{' '.join(r[6].translate(SAFE).split())}:"
                          f"{' '.join(r[7][:24].translate(SAFE).split())}")
        repeat = bool(recent) and rows[0][8] >= self.repeat_since
        blacklisted, vip, elderly = (bool(f) for f in who[1:]) if who[0] is not None else (False, False, False)
        flags = [k for k, on in (("blacklist", blacklisted), ("vip", vip), ("elderly", elderly), ("repeat", repeat),
                                 ("overdue", overdue > 0)) if on]
        priority = 0 if blacklisted else max(10 * elderly, 10 * (repeat and overdue > 0), 5 * vip, 3 * repeat)
        values = [("HL_ROUTE", "harass" if blacklisted else ""), ("HL_QTIMEOUT", self.queue_wait),
                  ("__HL_LOCATION", who[0] if who[0] is not None else place(n)), ("__HL_TICKETS", str(total)),
                  ("__HL_OPEN", str(open_)), ("__HL_OVERDUE", str(overdue)), ("__HL_RECENT", ",".join(recent)),
                  ("__HL_REPEAT", "1" if repeat else "0"), ("__HL_FLAGS", ",".join(flags)),
                  ("__HL_PRIORITY", str(priority))]
        plain = [(k, v) for k, v in values if v and not set(v) & set('"\\()')]
        alone = [(k, v) for k, v in values if v and set(v) & set('"\\()')]
        names, quoted = ",".join(k for k, _ in plain), ",".join(f'"{v}"' for _, v in plain)
        return [f"SET VARIABLE {arg(f'ARRAY({names})')} {arg(quoted)}\n".encode()] + [
            f"SET VARIABLE {arg(k)} {arg(v)}\n".encode() for k, v in alone]


# --- the store --------------------------------------------------------------------------------

def fill(path: Path, n: int, seed: int = 7) -> None:
    """``n`` tickets from the demo scenarios over two years, about three per caller, bulk-inserted
    with every index and trigger in place (what the lookup reads of bench/store.py's generator)."""
    from hotline.db import make_engine
    from ticketing.db import migrate
    from ticketing.models import Ticket
    from ticketing.seed import COMPOUNDS, DISTRICTS, ROADS, SCENARIOS

    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    engine.dispose()
    cols = [c for c in Ticket.__table__.columns if c.name != "id"]
    base = {c.name: c.default.arg if c.default is not None and c.default.is_scalar else None for c in cols}
    rnd, end = random.Random(seed), datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    callers = [f"1{rnd.choice('3578')}{rnd.randint(0, 9)}{rnd.randint(10**7, 10**8 - 1)}" for _ in range(n // 3 + 1)]
    db = sqlite3.connect(path)
    sql = f"INSERT INTO ticket ({', '.join(c.name for c in cols)}) VALUES ({', '.join('?' * len(cols))})"
    for lo in range(0, n, 5000):
        batch = []
        for i in range(lo, min(n, lo + 5000)):
            sc, district, road = rnd.choice(SCENARIOS), rnd.choice(DISTRICTS), rnd.choice(ROADS)
            title = sc.title.format(district=district, road=road, road2=road, compound=rnd.choice(COMPOUNDS),
                                    market="", n=3, when="昨天")
            created, status = end - timedelta(days=730 * (1 - i / n)), rnd.choice(STATUSES)
            due = None if status in ("archived", "closed") else created + timedelta(days=7)
            row = base | {"number": f"{created:%Y%m%d}{i + 1:07d}", "status": status, "category": sc.category,
                          "caller_number": rnd.choice(callers), "title": title, "search_text": title,
                          "source": "bench", "created_at": created, "updated_at": created, "current_due": due}
            batch.append([v.astimezone(UTC).strftime(TEXT_TIME) if isinstance(v, datetime) else v
                          for v in (row[c.name] for c in cols)])
        with db:
            db.executemany(sql, batch)
    db.execute("ANALYZE")
    db.close()


def ensure_store(n: int, confidential: float,
                 workdir: Path = ROOT / "var" / "bench") -> tuple[Path, list[str], dict[str, int], datetime]:
    """A SQLite store with ``n`` tickets (bench/store.py's generator, built once and kept), a share of
    them confidential. Returns its path, every caller number, the numbers whose lookup shows a
    confidential ticket (→ how many), and the store's "now" (its newest ticket)."""
    from hotline.db import make_engine
    from ticketing.db import migrate

    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / f"agi-lookup-{n}.db"
    done = path.with_suffix(".done")
    if not done.exists():
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        print(f"creating {n} tickets in {path} …", flush=True)
        fill(path, n)
        done.write_text(str(n))
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)  # a store kept from an older checkout gets the current schema
    engine.dispose()
    db = sqlite3.connect(path)
    share = round(confidential * 10000)
    with db:  # the share (by a hash of the id, spread over time and callers), then a clean read log
        db.execute("UPDATE ticket SET confidential = ((id * 7919) % 10000 < ?) "
                   "WHERE confidential != ((id * 7919) % 10000 < ?)", (share, share))
        db.execute("DELETE FROM confidential_read")
    count, secret_tickets = db.execute("SELECT count(*), sum(confidential) FROM ticket").fetchone()
    numbers = [r[0] for r in db.execute("SELECT DISTINCT caller_number FROM ticket")]
    secret = dict(db.execute(
        "SELECT caller_number, sum(confidential) FROM (SELECT caller_number, confidential, row_number() OVER "
        "(PARTITION BY caller_number ORDER BY created_at DESC) AS k FROM ticket WHERE caller_number IN "
        "(SELECT caller_number FROM ticket WHERE confidential)) WHERE k <= 5 GROUP BY caller_number "
        "HAVING sum(confidential) > 0").fetchall())
    newest = db.execute("SELECT max(created_at) FROM ticket").fetchone()[0]
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    print(f"store: {count} tickets, {secret_tickets} confidential ({secret_tickets / count:.1%}), "
          f"{len(numbers)} caller numbers (all drawn from), {len(secret)} of them see a confidential ticket",
          flush=True)
    return path, numbers, secret, datetime.strptime(newest, TEXT_TIME).replace(tzinfo=UTC)


# --- the runs (this process: both servers) ----------------------------------------------------

async def exchange(port: int, number: str) -> list[bytes]:
    """Every command one session receives, each answered as Asterisk would."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(lookup_header(port, number, "1763866000.1"))
    lines = []
    while line := await reader.readline():
        lines.append(line)
        writer.write(b"200 result=1 (3)\n" if line.startswith(b"GET FULL") else b"200 result=1\n")
    writer.close()
    return lines


async def same_exchange(ports: dict[str, int], numbers: list[str], secret: dict[str, int], count: int) -> None:
    rnd = random.Random(3)
    sample = (rnd.sample(sorted(secret), min(count // 2, len(secret))) + rnd.sample(numbers, count // 2)
              + [f"1{d}0{i:08d}" for i, d in enumerate("3578")])
    for n in sample:
        bare, ours = await exchange(ports["bare"], n), await exchange(ports["ours"], n)
        if bare != ours:
            sys.exit(f"the bare responder does not answer as ours for {n}:\n  bare {bare}\n  ours {ours}")
    print(f"exchange check: {len(sample)} numbers ({min(count // 2, len(secret))} with a confidential ticket, "
          "4 never seen), bare and ours send the same bytes", flush=True)


async def serve_and_measure(args: argparse.Namespace, path: Path, numbers: list[str], secret: dict[str, int],
                            now: datetime) -> str:
    from agi import service
    from hotline.db import make_engine
    from hotline.settings import Settings
    from launch.compose import freeze
    from ticketing.context import StoreContext
    from ticketing.store import Store

    client_cpus = split_cpus() if args.pin else None  # first: every thread the servers start inherits it
    settings = Settings(agi_port=0, service_hours="00:00-24:00", agi_max_sessions=args.concurrency * 2)
    engine = make_engine(f"sqlite:///{path}")
    lookups = service.TicketLookups(Store.on(StoreContext(engine, clock=lambda: now)), settings.cti_timezone)
    ours = service.server(settings, lookups, clock=lambda: now)
    bare = Bare(path, now, settings.agi_repeat_days, settings.agi_overflow_wait_s)
    await ours.start()
    await bare.start()
    freeze()  # as a hotline process does once its roles have started (Node.start)
    ports = {"bare": bare.port, "ours": ours.port}
    await same_exchange(ports, numbers, secret, args.check)
    log = sqlite3.connect(path)
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=client_main, args=(child, numbers, secret, client_cpus))
    proc.start()
    loop = asyncio.get_running_loop()

    def receive() -> dict:
        while not parent.poll(1):
            if not proc.is_alive():
                sys.exit("the client process died")
        return parent.recv()

    async def run(name: str, rate: float, sessions: int, seed: int) -> dict:
        rows0 = log.execute("SELECT count(*) FROM confidential_read").fetchone()[0]
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)  # this process: both servers, one of them driven
        parent.send({"port": ports[name], "concurrency": args.concurrency, "sessions": sessions, "rate": rate,
                     "seed": seed, "new_share": args.new_share})
        r = await loop.run_in_executor(None, receive)
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        r["server_cpu_us"] = (cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime) / sessions * 1e6
        r["server_sys_us"] = (cpu1.ru_stime - cpu0.ru_stime) / sessions * 1e6
        r["switches"] = (cpu1.ru_nvcsw + cpu1.ru_nivcsw - cpu0.ru_nvcsw - cpu0.ru_nivcsw) / sessions
        r["rows"] = log.execute("SELECT count(*) FROM confidential_read").fetchone()[0] - rows0
        r["per_s"] = sessions / r["elapsed"]
        return r

    for name in ports:  # one untimed run each: imports, pools and caches, as after any restart
        await run(name, 0.0, args.warmup, seed=1)
    res: dict[tuple[str, str], list[dict]] = {(n, k): [] for n in ports for k in ("saturated", "paced")}
    paced = -(-args.paced_sessions // args.rounds)
    for rnd in range(args.rounds):
        for name in (("bare", "ours") if rnd % 2 == 0 else ("ours", "bare")):
            for kind, rate, count in (("saturated", 0.0, args.sessions), ("paced", args.rate, paced)):
                r = await run(name, rate, count, seed=1000 * rnd + 7 * (kind == "paced") + 11)
                res[name, kind].append(r)
                print(f"[round {rnd + 1} {name:4s} {kind:9s}] sessions={count} in_flight={r['in_flight']:.1f} "
                      f"sessions_per_s={r['per_s']:.0f} p50_ms={pct(r['lat_ms'], 50):.2f} "
                      f"p99_ms={pct(r['lat_ms'], 99):.2f} server_cpu_us={r['server_cpu_us']:.0f} "
                      f"(sys {r['server_sys_us']:.0f}, {r['switches']:.2f} switches) "
                      f"client_cpu={r['client_cpu']:.0%} confidential={r['secret_lookups']} "
                      f"read_log_rows={r['rows']}/{r['secret_rows']} not_ok={r['not_ok']}"
                      + (f" client_late_p99_ms={r['late_p99_ms']:.2f}" if rate else ""), flush=True)
                if r["rows"] != r["secret_rows"] or r["not_ok"]:
                    sys.exit(f"{name}: read-log rows or lookups not as expected")
    parent.send(None)
    proc.join()
    await ours.stop()
    await bare.stop()
    lookups.close()
    engine.dispose()
    return summary(args, res)


def summary(args: argparse.Namespace, res: dict[tuple[str, str], list[dict]]) -> str:
    out: dict[str, dict[str, float]] = {}
    for name in ("bare", "ours"):
        sat, pac = res[name, "saturated"], res[name, "paced"]
        lat = [x for r in pac for x in r["lat_ms"]]
        out[name] = {"per_s": statistics.median(r["per_s"] for r in sat),
                     "in_flight": statistics.mean(r["in_flight"] for r in sat),
                     "cpu_us": statistics.median(r["server_cpu_us"] for r in sat),
                     "p50": pct(lat, 50), "p99": pct(lat, 99), "max": max(lat), "paced": len(lat),
                     "secret": sum(r["secret_lookups"] for r in sat + pac)}
        rounds = " ".join(f"{r['per_s']:.0f}" for r in sat)
        print(f"{name}: saturated sessions_per_s median={out[name]['per_s']:.0f} of [{rounds}] "
              f"mean_in_flight={out[name]['in_flight']:.1f} "
              f"server_cpu_us_per_session={out[name]['cpu_us']:.0f} | paced {args.rate:.0f}/s Poisson: "
              f"{len(lat)} sessions p50_ms={out[name]['p50']:.2f} p99_ms={out[name]['p99']:.2f} "
              f"max_ms={out[name]['max']:.2f} | timed lookups showing a confidential ticket: {out[name]['secret']}",
              flush=True)
    o, b = out["ours"], out["bare"]
    return (f"in_flight={o['in_flight']:.0f} sessions_per_s={o['per_s']:.0f} bare_sessions_per_s={b['per_s']:.0f} "
            f"ratio={o['per_s'] / b['per_s']:.2f} p99_ms_at_{args.rate:.0f}_per_s={o['p99']:.2f} "
            f"bare_p99_ms={b['p99']:.2f} paced_sessions={o['paced']} confidential_lookups={o['secret']} "
            f"tickets={args.tickets}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tickets", type=int, default=1_000_000)
    ap.add_argument("--concurrency", type=int, default=50, help="simulated channels (sessions in flight)")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds (bare, ours; then ours, bare …)")
    ap.add_argument("--sessions", type=int, default=4000, help="sessions per saturated run")
    ap.add_argument("--rate", type=float, default=200.0, help="offered sessions/s of the paced runs (Poisson)")
    ap.add_argument("--paced-sessions", type=int, default=3000, help="paced sessions per server, over all rounds")
    ap.add_argument("--warmup", type=int, default=300, help="untimed sessions per server before the rounds")
    ap.add_argument("--check", type=int, default=200, help="numbers whose exchanges are compared first")
    ap.add_argument("--new-share", type=float, default=0.1, help="share of sessions from never-seen numbers")
    ap.add_argument("--confidential", type=float, default=0.04, help="share of confidential tickets")
    ap.add_argument("--asyncio", action="store_true", help="asyncio's own loop (default: uvloop, as deployed)")
    ap.add_argument("--workdir", type=Path, default=ROOT / "var" / "bench", help="where the store is built and kept")
    ap.add_argument("--no-pin", dest="pin", action="store_false", help="let clients and servers share every CPU")
    args = ap.parse_args(argv)
    path, numbers, secret, now = ensure_store(args.tickets, args.confidential, args.workdir)
    if args.asyncio:
        line = asyncio.run(serve_and_measure(args, path, numbers, secret, now))
    else:
        import uvloop

        line = uvloop.run(serve_and_measure(args, path, numbers, secret, now))
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
