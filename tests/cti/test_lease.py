"""The leases (cti/lease.py) for real: a PostgreSQL advisory lock and a flock, held by separate
processes. One wins and the other waits; the winner killed (-9), the other wins within 5 s with
the next term; a holder whose session is cut, or whose database stops answering, steps down
within its check interval and timeout."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest

from cti.leader import Candidate
from cti.lease import FileLease, PgLease, lock_file, lock_key, migrate, pg_conninfo
from hotline.db import make_engine
from tests.support.postgres import postgres_server  # noqa: F401  (the fixture)

pytestmark = pytest.mark.timeout(90)
ROOT = Path(__file__).resolve().parents[2]
NAME = "127.0.0.1:5038"

# one candidate in its own process, as `hotline cti` runs it (the production intervals: 1 s, 1 s)
CANDIDATE = r"""
import asyncio, sys, time
from pathlib import Path
from cti.leader import Candidate
from cti.lease import FileLease, PgLease, holder_id

kind, target, name = sys.argv[1:4]
lease = PgLease(target, name, holder_id()) if kind == "pg" else FileLease(Path(target), name, holder_id())

def say(what, term):
    print(f"{what} {term} {time.time():.3f}", flush=True)

async def on_active(term):
    say("active", term)

async def on_standby(term):
    say("standby", term)

async def main():
    say("ready", 0)
    await Candidate(lease, on_active=on_active, on_standby=on_standby).run()

asyncio.run(main())
"""


class Proc:
    """One candidate process; its lines as (what, term, the time it printed)."""

    def __init__(self, kind: str, target: str) -> None:
        self.popen = subprocess.Popen([sys.executable, "-c", CANDIDATE, kind, target, NAME], cwd=ROOT,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                      env={**os.environ, "PYTHONPATH": str(ROOT)})
        self.lines: list[tuple[str, int, float]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            what, term, at = line.split()
            self.lines.append((what, int(term), float(at)))

    def said(self, what: str) -> list[tuple[str, int, float]]:
        return [x for x in self.lines if x[0] == what]

    def wait_for(self, what: str, timeout: float = 15) -> tuple[str, int, float]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.said(what):
                return self.said(what)[0]
            assert self.popen.poll() is None, self.popen.stderr.read() if self.popen.stderr else ""
            time.sleep(0.02)
        raise AssertionError(f"no {what!r} within {timeout} s: {self.lines}")

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()  # SIGKILL, this process's pid only
        self.popen.wait(10)


def one_wins_and_the_other_takes_over_when_it_is_killed(kind: str, target: str) -> float:
    a = Proc(kind, target)
    b: Proc | None = None
    try:
        _, term_a, _ = a.wait_for("active")
        b = Proc(kind, target)
        b.wait_for("ready")
        time.sleep(2.5)  # the standby asks two or three times meanwhile
        assert b.said("active") == [] and a.said("standby") == []  # one active, the other waits
        killed = time.time()
        os.kill(a.popen.pid, signal.SIGKILL)
        _, term_b, at = b.wait_for("active", 10)
        takeover = at - killed
        print(f"\n{kind} lease: standby active {takeover:.3f} s after the holder's SIGKILL (term {term_a} → {term_b})")
        assert takeover < 5.0 and term_b == term_a + 1
        return takeover
    finally:
        a.kill()
        if b is not None:
            b.kill()


# --- PostgreSQL ------------------------------------------------------------------------------------

@pytest.fixture
def pg(postgres_server) -> str:  # noqa: F811
    url = postgres_server.create_database()
    engine = make_engine(url)
    migrate(engine)  # the terms' table, as build() does on a PostgreSQL node with the cti role
    engine.dispose()
    return pg_conninfo(url)


def backend_pid(conninfo: str) -> int:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        row = conn.execute("SELECT pid FROM pg_stat_activity WHERE application_name LIKE 'hotline cti lease%' "
                           "AND datname = current_database()").fetchone()
    assert row is not None, "the lease's session is not connected"
    return int(row[0])


@pytest.mark.postgres
async def test_two_pg_leases_on_one_key_one_wins_the_other_waits_and_terms_count_up(pg: str) -> None:
    a, b = PgLease(pg, NAME, "node-a:1"), PgLease(pg, NAME, "node-b:2")
    other = PgLease(pg, "10.0.0.5:5038", "node-b:2")  # another Asterisk server: its own lease
    try:
        assert await a.acquire() == 1
        assert await b.acquire() is None and await b.acquire() is None  # asks, does not wait
        assert await other.acquire() == 1
        assert await a.check() is True
        await a.release()
        assert await b.acquire() == 2
        with psycopg.connect(pg) as conn:
            assert conn.execute("SELECT term, holder FROM cti_lease WHERE name = %s", (NAME,)).fetchone() == (
                2, "node-b:2")
        assert lock_key(NAME) != lock_key("10.0.0.5:5038")
    finally:
        for lease in (a, b, other):
            await lease.release()


@pytest.mark.postgres
def test_pg_the_holder_killed_the_standby_process_takes_over_within_5_s(pg: str) -> None:
    one_wins_and_the_other_takes_over_when_it_is_killed("pg", pg)


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, int, float]] = []

    async def on_active(self, term: int) -> None:
        self.events.append(("active", term, time.monotonic()))

    async def on_standby(self, term: int) -> None:
        self.events.append(("standby", term, time.monotonic()))

    async def wait(self, n: int, timeout: float = 15) -> tuple[str, int, float]:
        deadline = time.monotonic() + timeout
        while len(self.events) < n:
            assert time.monotonic() < deadline, self.events
            await asyncio.sleep(0.01)
        return self.events[n - 1]


@pytest.mark.postgres
async def test_pg_a_holder_whose_session_is_cut_steps_down_within_its_check_interval(pg: str) -> None:
    rec = Recorder()
    c = Candidate(PgLease(pg, NAME, "node-a:1"), on_active=rec.on_active, on_standby=rec.on_standby)
    task = asyncio.create_task(c.run())
    try:
        await rec.wait(1)
        await asyncio.sleep(1.5)  # confirmed once or twice
        pid = await asyncio.to_thread(backend_pid, pg)
        cut = time.monotonic()
        with psycopg.connect(pg, autocommit=True) as conn:
            assert conn.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0] is True
        what, term, at = await rec.wait(2)
        print(f"\npg lease: holder stood down {at - cut:.3f} s after its session was terminated")
        assert (what, term) == ("standby", 1) and at - cut <= c.election.check_s + 0.5
        _, term, _ = await rec.wait(3)  # its session gone, the lock was free: won again, next term
        assert term == 2
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@pytest.mark.postgres
async def test_pg_a_holder_whose_database_stops_answering_steps_down_by_its_deadline(pg: str) -> None:
    """The lease's backend frozen (SIGSTOP): its SELECT 1 never returns, as on a dead network."""
    if os.geteuid() != 0:
        pytest.skip("stopping the PostgreSQL backend needs root (make test runs as root)")
    rec = Recorder()
    c = Candidate(PgLease(pg, NAME, "node-a:1"), on_active=rec.on_active, on_standby=rec.on_standby)
    standby = PgLease(pg, NAME, "node-b:2")
    task = asyncio.create_task(c.run())
    pid = 0
    try:
        await rec.wait(1)
        await asyncio.sleep(1.2)
        pid = await asyncio.to_thread(backend_pid, pg)
        frozen = time.monotonic()
        os.kill(pid, signal.SIGSTOP)
        last_ok = c.election.last_ok
        what, _, at = await rec.wait(2)
        print(f"\npg lease: holder stood down {at - frozen:.3f} s after its database stopped answering")
        assert what == "standby" and at - last_ok <= c.election.check_s + c.election.timeout_s + 0.3
        assert await standby.acquire() is None  # the frozen session still holds the lock: nobody else runs yet
        os.kill(pid, signal.SIGCONT)
        pid = 0
        _, term, _ = await rec.wait(3)  # the old session closed once it answered: won again, next term
        assert term == 2
    finally:
        if pid:
            os.kill(pid, signal.SIGCONT)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await standby.release()


# --- flock (SQLite, one machine) -------------------------------------------------------------------

def test_flock_the_holder_killed_the_standby_process_takes_over_within_5_s(tmp_path: Path) -> None:
    path = lock_file(str(tmp_path / "hotline.db"), tmp_path, NAME)
    assert path == tmp_path / "hotline.db.cti-127.0.0.1_5038.lock"
    one_wins_and_the_other_takes_over_when_it_is_killed("file", str(path))


async def test_flock_terms_live_in_the_file_and_a_replaced_file_is_no_longer_held(tmp_path: Path) -> None:
    path = tmp_path / "hotline.db.cti.lock"
    a, b = FileLease(path, NAME, "a"), FileLease(path, NAME, "b")
    assert await a.acquire() == 1 and await b.acquire() is None
    assert await a.check() is True
    await a.release()
    assert await b.acquire() == 2 and await a.acquire() is None
    path.unlink()  # someone removed the lock file: another process could lock a new one
    assert await b.check() is False
    await b.release()
    assert await a.acquire() == 1  # a new file, terms from the start; the lock is what elects
    await a.release()
