"""kill -9 of a sender, for real: a process (tests/notify/sender.py) claims a reminder and sends it
to the real SMTP server, and is killed with SIGKILL at a chosen moment; another sender finishes
the job once the lease has run out. Two sweeping processes at once send each message once.

- killed while the server holds its answer to the message's DATA: the server keeps nothing it
  did not acknowledge, the row stays claimed, and the second sender delivers it: one mail;
- killed after the server acknowledged and before the row was marked sent (the outbox's one
  at-least-once window, held open here by a lock on the row): the mail goes out twice, and both
  copies carry the same Message-ID, which is what notify/outbox.py promises for that edge.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller

from notify.channels import message_id
from notify.models import Notification
from notify.outbox import LEASE, Outbox
from notify.sweep import ReminderSweep, deliver_due
from testkit import ROOT
from tests.notify.conftest import CENTRE_EMAIL, WATER_EMAIL, City, Mailbox, open_ticket, rules, smtp_notifier
from tests.support.browser import free_port
from tests.ticketing.conftest import Clock
from ticketing.store import Store

pytestmark = pytest.mark.timeout(120)
T = Notification.__table__  # type: ignore[attr-defined]
DOMAIN = "12345.example"  # the child's sender is hotline@12345.example


@dataclass
class HeldMailbox(Mailbox):
    """The local SMTP server, able to hold its answer to RCPT TO or to the message's DATA until
    released; a client that vanishes meanwhile cancels the exchange (aiosmtpd cancels the handler
    on a lost connection), and a message whose DATA was not acknowledged is not kept."""

    hold_rcpt: bool = False
    hold_data: bool = False
    at_rcpt: threading.Event = field(default_factory=threading.Event)
    at_data: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    dropped: list[EmailMessage] = field(default_factory=list)  # seen whole, never acknowledged
    quits: int = 0
    gate: int = 0  # hold the first messages until this many wait at once (more than one sender's share)
    waiting: int = 0
    _open: asyncio.Event | None = None

    async def _held(self, reached: threading.Event) -> None:
        reached.set()
        await asyncio.to_thread(self.release.wait)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if self.hold_rcpt:
            await self._held(self.at_rcpt)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.gate:
            self._open = self._open or asyncio.Event()
            self.waiting += 1
            if self.waiting >= self.gate:
                self._open.set()
            await asyncio.wait_for(self._open.wait(), 30)
        if self.hold_data:
            try:
                await self._held(self.at_data)
            except asyncio.CancelledError:
                self.dropped.append(message_from_bytes(envelope.original_content, policy=policy.default))
                raise
        return await super().handle_DATA(server, session, envelope)

    async def handle_QUIT(self, server: Any, session: Any, envelope: Any) -> str:
        self.quits += 1
        return "221 Bye"


@pytest.fixture
def held() -> Iterator[HeldMailbox]:
    box = HeldMailbox(port=free_port())
    ctl = Controller(box, hostname=box.host, port=box.port)
    ctl.start()
    try:
        yield box
    finally:
        box.release.set()
        ctl.stop()


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def url_of(store: Store) -> str:
    return store.engine.url.render_as_string(hide_password=False)


def sender(store: Store, box: Mailbox, clock: Clock, worker: str, *extra: str) -> subprocess.Popen[str]:
    """A sender process at the clock's instant (its own interpreter, imports, connections)."""
    proc = subprocess.Popen([sys.executable, "-m", "tests.notify.sender", url_of(store), str(box.port),
                             clock.now.isoformat(), worker, *extra],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line == "ready\n", line + proc.stderr.read() if proc.stderr else ""
    return proc


def wait_for(what: threading.Event | Any, proc: subprocess.Popen[str] | None = None, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not (what.is_set() if isinstance(what, threading.Event) else what()):
        if proc is not None:
            assert proc.poll() is None, f"the sender ended early: {proc.stderr.read() if proc.stderr else ''}"
        assert time.monotonic() < deadline, "the sender never got there"
        time.sleep(0.01)


def kill(proc: subprocess.Popen[str]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(10) == -signal.SIGKILL


def row(store: Store) -> dict[str, Any]:
    with store.engine.connect() as conn:
        [r] = conn.execute(sa.select(T).where(T.c.channel == "email")).all()
    return dict(r._mapping)


def enqueue_one(store: Store, city: City, clock: Clock) -> str:
    """One reminder due: the water company's e-mail (one working day left); its key."""
    open_ticket(store, city)
    clock.now = clock.now.replace(day=20)
    plan = [m for m in ReminderSweep(store, smtp_notifier(Mailbox()), rules(centre_email="")).plan()
            if m.channel == "email"]
    assert [m.to for m in plan] == [WATER_EMAIL]
    Outbox(store.engine).enqueue(plan, clock.now)
    return plan[0].key


@contextmanager
def row_locked(store: Store, key: str) -> Iterator[None]:
    """Hold the row (SQLite: the database's write lock; PostgreSQL: the row's lock), so that a
    sender's ``finish`` waits."""
    if store.engine.dialect.name == "sqlite":
        db = sqlite3.connect(store.engine.url.database or "", isolation_level=None, timeout=30)
        db.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            db.execute("ROLLBACK")
            db.close()
        return
    with store.engine.connect() as conn:
        conn.execute(sa.select(T.c.id).where(T.c.key == key).with_for_update())
        try:
            yield
        finally:
            conn.rollback()


def settle(store: Store, key: str) -> None:
    """Until no dead sender's session holds the row (PostgreSQL drops a killed client's session
    when it next writes to it; a sender's claim skips locked rows)."""
    if store.engine.dialect.name != "postgresql":
        return
    deadline = time.monotonic() + 10
    while True:
        with store.engine.connect() as conn:
            if conn.execute(sa.select(T.c.id).where(T.c.key == key).with_for_update(skip_locked=True)).first():
                return
        assert time.monotonic() < deadline, "the killed sender's session still holds the row"
        time.sleep(0.05)


def test_a_sender_killed_mid_send_is_finished_by_another_once(
        store: Store, city: City, clock: Clock, held: HeldMailbox) -> None:
    key = enqueue_one(store, city, clock)
    held.hold_data = True
    first = sender(store, held, clock, "web-1:first")
    wait_for(held.at_data, first)  # the whole message is at the server, which has not answered yet
    claimed = row(store)
    assert (claimed["status"], claimed["claimed_by"], claimed["attempts"]) == ("sending", "web-1:first", 1)
    kill(first)
    wait_for(lambda: held.dropped)  # the server saw the connection go and kept nothing
    assert held.mails == [] and held.dropped[0]["Message-ID"] == message_id(key, DOMAIN)

    second = Outbox(store.engine, worker="web-2:second")
    notifier = smtp_notifier(held, sender="12345热线 <hotline@12345.example>")
    soon = clock.now + timedelta(minutes=1)
    assert run(deliver_due(second, notifier, lambda: soon)) == []  # the lease still stands
    held.hold_data = False
    later = clock.now + LEASE + timedelta(seconds=1)
    done = run(deliver_due(second, notifier, lambda: later))
    assert [d.status for d in done] == ["sent"]
    [mail] = held.wait(1)
    assert mail["To"] == WATER_EMAIL and mail["Message-ID"] == message_id(key, DOMAIN)
    end = row(store)
    assert (end["status"], end["attempts"], end["claimed_by"], end["sent_at"]) == ("sent", 2, "web-2:second", later)
    assert run(deliver_due(second, notifier, lambda: later + 10 * LEASE)) == []
    time.sleep(0.2)
    assert len(held.mails) == 1  # exactly one message delivered


def test_a_sender_killed_after_the_server_took_the_mail_sends_it_again_with_the_same_message_id(
        store: Store, city: City, clock: Clock, held: HeldMailbox) -> None:
    key = enqueue_one(store, city, clock)
    held.hold_rcpt = True
    first = sender(store, held, clock, "web-1:first")
    wait_for(held.at_rcpt, first)  # claimed, mid-exchange: now hold the row, then let the mail through
    with row_locked(store, key):
        held.release.set()
        wait_for(lambda: held.quits == 1, first)  # 250 to the DATA, QUIT: the sender is on to "finish"
        time.sleep(0.3)
        kill(first)
    settle(store, key)
    assert row(store)["status"] == "sending"  # the sender never recorded its success
    [one] = held.take()

    later = clock.now + LEASE + timedelta(seconds=1)
    done = run(deliver_due(Outbox(store.engine, worker="web-2:second"),
                             smtp_notifier(held, sender="12345热线 <hotline@12345.example>"), lambda: later))
    assert [d.status for d in done] == ["sent"]
    [two] = held.wait(1)
    # the same message twice, recognisably: one Message-ID, derived from the outbox key
    assert one["Message-ID"] == two["Message-ID"] == message_id(key, DOMAIN)
    assert (one["Subject"], one.get_content()) == (two["Subject"], two.get_content())
    end = row(store)
    assert (end["status"], end["attempts"]) == ("sent", 2)


def test_two_sweeping_processes_send_each_message_once(
        store: Store, city: City, clock: Clock, held: HeldMailbox, tmp_path: Path) -> None:
    tickets = [open_ticket(store, city, title=f"停水{i}号楼") for i in range(15)]
    clock.now = clock.now.replace(day=20)  # one working day left on each: the centre and the department
    go = tmp_path / "go"
    held.gate = 12  # a process sends 8 at a time: 12 mails in flight at once means both are sending
    procs = [sender(store, held, clock, f"web-{n}:sweep", "--sweep", str(go)) for n in (1, 2)]
    go.touch()  # both plan, enqueue, claim and send at once
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        outs.append([json.loads(line) for line in out.splitlines()])
    assert all(outs), "both processes took part"
    statuses = [d["status"] for o in outs for d in o]
    assert (statuses.count("sent"), statuses.count("logged")) == (30, 15)  # mobile: log only in the children
    mails = held.wait(30)
    time.sleep(0.3)
    assert len(mails) == 30
    assert sorted((m["To"], m["Subject"]) for m in mails) == sorted(
        (to, f"【12345政务服务热线】临期提醒：工单{t.number}还剩1个工作日到期")
        for t in tickets for to in (CENTRE_EMAIL, WATER_EMAIL))
    assert len({m["Message-ID"] for m in mails}) == 30
    with store.engine.connect() as conn:
        got = conn.execute(sa.select(T.c.status, T.c.attempts, T.c.claimed_by)).all()
    assert len(got) == 45 and {(s, a) for s, a, _ in got} == {("sent", 1), ("logged", 1)}
    assert {by for _, _, by in got} == {"web-1:sweep", "web-2:sweep"}
