"""The fault suite: load at the design rate through the whole stack while its parts are killed in turn.

SIPp citizens call at ``rate`` per second (at most ``concurrency`` at once) into a :class:`Stack`;
an operator files tickets through the API meanwhile. Every ``seconds / (faults + 1)`` (at least
3 s after the last part came back) the suite ``kill -9``s the next part — the web app, the CTI
bridge, the FastAGI server, one transcription worker — or restarts Asterisk (``core stop now``,
start), and measures its recovery: from the kill to the restarted process answering (the health
page says healthy; the bridge logged in to AMI again; a real FastAGI lookup answered; the new
worker claimed a recording; Asterisk booted with the bridge back on it and the console healthy).
Then the load drains, the transcription backlog empties, and the counts are laid side by side
(testkit/tally.py): nothing may be doubled, every answered call has its recording, every
recording is transcribed exactly once, every acknowledged ticket is there once with its two
history rows.

Calls that end while the bridge is down are the one known gap until Asterisk's own records
rebuild them (the call log's ``reconstructed`` rows): they are reported, not failed, unless the
run shows reconstruction at work (then every call Asterisk answered must be in ``/api/calls``).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from hotline.settings import Settings
from testkit.stack import OPERATOR, CpuMeter, Stack, wait_until
from testkit.tally import Tally, api_calls, backlog, outbox_pending, tally
from testkit.traffic import Traffic

FAULTS = ("web", "cti", "agi", "worker", "asterisk")
DIFFERENCES = ("missing", "unknown_to_asterisk", "outcome_differs", "lost_but_finished")


@dataclass(frozen=True)
class Plan:
    seconds: float = 60.0  # load; faults are spread over it
    rate: float = 2.0  # new calls per second
    concurrency: int = 24
    ring_s: float = 1.0
    talk_s: float = 6.0
    after_s: float = 5.0  # the citizen stays this long after the talk (the survey), then hangs up
    faults: tuple[str, ...] = FAULTS
    topology: str = "split"
    workers: int = 2
    # the wait for the call log, recordings and transcripts to settle; up to twice it while they still move
    drain_s: float = 240.0
    ticket_every_s: float = 1.5
    # wait for the recordings of calls the bridge never saw: the catalog adopts them only once their
    # files have been still for two minutes (recordings/catalog.py ORPHAN_SETTLE_S)
    wait_orphans: bool = False
    speech: bool = True  # False: the phones stream silence (a bounded run's transcripts drain in time)


@dataclass
class Recovery:
    fault: str
    at: float  # seconds into the load
    seconds: float | None  # None: not back within the limit
    detail: str = ""


@dataclass
class Tickets:
    """Tickets an operator filed through the API while parts were killed."""

    acknowledged: list[str] = field(default_factory=list)  # 201 received: the marker
    retried: int = 0  # a request failed (web down) and was sent again
    found_after_error: int = 0  # a failed request had in fact been stored: not sent again
    lost: list[str] = field(default_factory=list)
    doubled: list[str] = field(default_factory=list)
    bad_history: list[str] = field(default_factory=list)  # not exactly one create and one register row


@dataclass
class Outcome:
    tally: Tally
    recoveries: list[Recovery]
    tickets: Tickets
    cpu_pct: dict[str, float]
    restarts: dict[str, int]
    drained: bool
    seconds: float
    check: dict[str, Any]  # ``hotline calls check``: the call log against Asterisk's own records
    logs: Path | None = None  # the services' and Asterisk's logs, kept

    def problems(self) -> list[str]:
        # every call Asterisk answered must be in /api/calls: rebuilt from its records if the bridge missed it
        out = self.tally.problems(strict_calls=True)
        out += [f"{r.fault} did not recover ({r.detail})" for r in self.recoveries if r.seconds is None]
        t = self.tickets
        out += [f"tickets {name}: {items}" for name, items in
                (("lost", t.lost), ("doubled", t.doubled), ("bad history", t.bad_history)) if items]
        if not self.drained:
            out.append("the stack did not settle (call log, recordings, transcription) within the drain time")
        differences = {k: v for k, v in self.check.items() if k in DIFFERENCES and v}
        if differences or "error" in self.check:
            out.append(f"hotline calls check: {differences or self.check}")
        return out

    def report(self) -> list[str]:
        lines = ["counts:", *(f"  {line}" for line in self.tally.table())]
        lines.append("recoveries (kill → answering again):")
        for r in self.recoveries:
            took = f"{r.seconds:6.2f} s" if r.seconds is not None else "  NOT BACK"
            lines.append(f"  {r.fault:9s} at {r.at:6.1f} s  {took}  {r.detail}")
        t = self.tickets
        lines.append(f"tickets: {len(t.acknowledged)} acknowledged, {t.retried} retried after an error, "
                     f"{t.found_after_error} stored despite the error; lost {len(t.lost)}, doubled {len(t.doubled)}, "
                     f"history wrong {len(t.bad_history)}")
        lines.append("CPU over the run (% of one core): " + ", ".join(
            f"{k} {v:.1f}" for k, v in sorted(self.cpu_pct.items())))
        lines.append("restarts: " + ", ".join(f"{k} {v}" for k, v in sorted(self.restarts.items())))
        c = self.check
        lines.append("hotline calls check (the call log against Asterisk's CEL): " + (
            f"{c.get('checked')} calls in Asterisk's records; "
            + ", ".join(f"{k} {len(c.get(k) or [])}" for k in DIFFERENCES) if "error" not in c else c["error"]))
        if self.logs is not None:
            lines.append(f"logs kept in {self.logs}")
        return lines


class TicketWriter(threading.Thread):
    """An operator filing a ticket every ``every_s`` through the API. After a failed request it looks
    (as the operator would, in the ticket list) whether the ticket was stored before sending it again."""

    def __init__(self, stack: Stack, every_s: float) -> None:
        super().__init__(name="ticket-writer", daemon=True)
        self.stack, self.every_s = stack, every_s
        self.run_id = uuid.uuid4().hex[:8]
        self.tickets = Tickets()
        self.halt = threading.Event()
        self._token: dict[str, str] | None = None

    def _headers(self) -> dict[str, str]:
        if self._token is None:
            r = httpx.post(f"{self.stack.url}/api/auth/login",
                           json={"username": OPERATOR[0], "password": OPERATOR[1]}, timeout=5)
            r.raise_for_status()
            self._token = {"Authorization": f"Bearer {r.json()['token']}"}
        return self._token

    def run(self) -> None:
        n = 0
        while not self.halt.wait(self.every_s):
            n += 1
            marker = f"压力测试 {self.run_id}-{n:04d}"
            body = {"category": "咨询", "title": marker, "caller_number": f"1395301{n % 10_000:04d}",
                    "matter_course": "故障演练期间受理的工单"}
            while not self.halt.is_set():
                try:
                    r = httpx.post(f"{self.stack.url}/api/tickets", json=body, headers=self._headers(), timeout=10)
                except httpx.HTTPError:
                    r = None
                if r is not None and r.status_code == 201:
                    self.tickets.acknowledged.append(marker)
                    break
                time.sleep(0.5)
                if self._stored(marker):
                    self.tickets.found_after_error += 1
                    self.tickets.acknowledged.append(marker)
                    break
                self.tickets.retried += 1

    def _stored(self, marker: str) -> bool:
        return bool(_ticket_rows(self.stack.settings, marker))

    def check(self) -> Tickets:
        t = self.tickets
        engine = sa.create_engine(self.stack.settings.db_url)
        try:
            with engine.connect() as conn:
                rows = conn.execute(sa.text("SELECT id, title FROM ticket WHERE title LIKE :p"),
                                    {"p": f"压力测试 {self.run_id}-%"}).all()
                events = conn.execute(sa.text("SELECT ticket_id, action FROM ticket_event")).all()
        finally:
            engine.dispose()
        by_title: dict[str, list[int]] = {}
        for tid, title in rows:
            by_title.setdefault(title, []).append(tid)
        t.lost = [m for m in t.acknowledged if m not in by_title]
        t.doubled = [m for m, ids in by_title.items() if len(ids) > 1]
        actions: dict[int, list[str]] = {}
        for tid, action in events:
            actions.setdefault(tid, []).append(action)
        t.bad_history = [m for m, ids in by_title.items() for tid in ids
                         if sorted(actions.get(tid, [])) != ["create", "register"]]
        return t


def _ticket_rows(settings: Settings, title: str) -> list[Any]:
    engine = sa.create_engine(settings.db_url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT id FROM ticket WHERE title = :t"), {"t": title}).all()
    finally:
        engine.dispose()


def recover(stack: Stack, fault: str, limit_s: float = 90) -> tuple[float | None, str]:
    """Apply one fault and wait for the part to answer again: (seconds, what was waited for)."""
    start = time.monotonic()
    if fault == "asterisk":
        stack.restart_asterisk()
        booted = time.monotonic() - start
        took = wait_until(lambda: stack.bridge_ready() and stack.web_ready(), limit_s)
        return (None if took is None else time.monotonic() - start), f"booted in {booted:.1f} s, then bridge + health"
    killed = stack.kill(fault)
    if fault == "worker":
        def claimed() -> bool:
            fresh = [p for p in stack.worker_pids() if p != killed]
            return len(fresh) >= stack.workers and _claimed_by(stack.settings, fresh, since=start)
        took = wait_until(claimed, limit_s, every_s=0.2)
        return took, f"pid {killed}: a new worker claimed a recording"
    svc = stack.services[fault]
    probes = {"web": [stack.web_ready], "cti": [stack.bridge_ready], "agi": [stack.agi_ready]}[fault]
    if fault == "web" and stack.topology == "up":  # the bridge and FastAGI went down with it
        probes += [stack.bridge_ready, stack.agi_ready]

    def back() -> bool:
        return svc.pid not in (None, killed) and all(probe() for probe in probes)

    took = wait_until(back, limit_s, every_s=0.05)
    what = {"web": "health ok", "cti": "logged in to AMI", "agi": "FastAGI lookup answered"}[fault]
    return took, f"pid {killed}: {what}"


def _claimed_by(settings: Settings, pids: list[int], since: float) -> bool:
    engine = sa.create_engine(settings.db_url)
    try:
        with engine.connect() as conn:
            workers = {w for (w,) in conn.execute(sa.text("SELECT DISTINCT worker FROM recording_job_run"))}
    finally:
        engine.dispose()
    return any(w.endswith(f":{pid}") for w in workers for pid in pids)


def settle(stack: Stack, since: datetime, limit_s: float, say: Callable[[str], None], *, spool_empty: bool,
           stall_s: float = 60.0) -> bool:
    """Wait until the call log stops growing with nothing in the outbox, the transcription queue has
    nothing queued or running and (``spool_empty``) Asterisk's spool is empty.

    Past ``limit_s`` it waits on (up to twice that) only while something still moves, a call filed
    or a transcript finished within ``stall_s``: on a loaded box the niced workers are slow, which
    is not a loss; a backlog that stopped moving is."""
    start = time.monotonic()
    last, steady, moved_at, progress = -1, 0.0, start, None
    while (now := time.monotonic()) < start + 2 * limit_s:
        if now > start + limit_s and now - moved_at > stall_s:
            break
        rows = len(api_calls(stack.url, stack.lead(), since))
        jobs = backlog(stack.settings)
        spool = stack.settings.recordings_spool
        busy = jobs.get("queued", 0) + jobs.get("running", 0)
        files = sum(1 for _ in spool.glob("*.wav")) if spool.is_dir() else 0
        if (rows, jobs.get("done", 0) + jobs.get("parked", 0)) != progress:
            progress, moved_at = (rows, jobs.get("done", 0) + jobs.get("parked", 0)), now
        if rows == last and not outbox_pending(stack.settings) and busy == 0 and not (spool_empty and files):
            steady += 2
            if steady >= 6:
                return True
        else:
            steady = 0
        last = rows
        say(f"  settling: {rows} calls logged, transcription {jobs}, {files} files in the spool")
        time.sleep(2)
    return False


def run(base: Settings, plan: Plan, say: Callable[[str], None] = print) -> Outcome:
    """The suite on a fresh stack (copied chroot, own ports); the caller holds the machine lock."""
    seats = int(plan.concurrency * 1.3) + 4
    stack = Stack(base, seats=seats, topology=plan.topology, workers=plan.workers, wrapup_s=2.0, lease_s=15, say=say)
    traffic: Traffic | None = None
    started = time.monotonic()
    keep = base.var_dir / "soak" / f"logs-{datetime.now():%Y%m%d-%H%M%S}"
    try:
        stack.prepare()
        stack.start()
        traffic = Traffic(stack.settings, stack.var / "sim", base.var_dir / "audio", speech=plan.speech)
        traffic.seats(stack.seats, ring_s=plan.ring_s, talk_s=plan.talk_s)
        meter = CpuMeter(stack.pids).start()
        since = datetime.now(UTC) - timedelta(seconds=5)
        writer = TicketWriter(stack, plan.ticket_every_s)
        writer.start()
        load_start = time.monotonic()
        traffic.call(calls=int(plan.rate * plan.seconds), rate=plan.rate, concurrency=plan.concurrency,
                     ring_s=plan.ring_s, talk_s=plan.talk_s, after_s=plan.after_s)
        recoveries: list[Recovery] = []
        # topology up: the bridge and FastAGI are the web process, killed with it
        faults = [f for f in plan.faults if f in ("worker", "asterisk") or f in stack.services]
        step = plan.seconds / (len(faults) + 1)
        for k, fault in enumerate(faults):  # on schedule, or 3 s after the last part came back
            time.sleep(max(3.0, load_start + step * (k + 1) - time.monotonic()))
            at = time.monotonic() - load_start
            took, detail = recover(stack, fault)
            recoveries.append(Recovery(fault, at, took, detail))
            say(f"  {fault:9s} at {at:5.1f} s: back in {took if took is None else round(took, 2)} s ({detail})")
        call_s = plan.ring_s + plan.talk_s + plan.after_s
        traffic.wait_callers(max(0.0, plan.seconds - (time.monotonic() - load_start)) + call_s + 90)
        writer.halt.set()
        writer.join(15)
        drained = settle(stack, since, plan.drain_s, say, spool_empty=plan.wait_orphans)
        meter.stop()
        run_cpu = CpuMeter.percent((load_start, {}), (time.monotonic(), meter.totals))
        rows = api_calls(stack.url, stack.lead(), since)
        counts = tally(stack.settings, traffic.ledger(), rows)
        return Outcome(counts, recoveries, writer.check(), run_cpu,
                       {n: s.restarts for n, s in stack.services.items()}, drained,
                       time.monotonic() - started, stack.calls_check(), keep)
    finally:
        if traffic is not None:
            traffic.stop()
        stack.stop()
        stack.remove(keep)
