"""A finished call is filed for good (launch/filing.py): journaled before the first try, kept
while the database refuses it, stored once when it comes back — also by the next process after a
crash — and never twice."""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import Executor, Future
from dataclasses import replace
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from hotline.calls import FinishedCall
from hotline.outbox import Outbox
from hotline.settings import Settings
from launch import compose
from launch.filing import CallFiler
from recordings.models import Recording
from ticketing.schemas import SystemActor

BASE = "hotline-20261123-101500-1763866021.42"
CALL = FinishedCall(call_id="1763866021.42", caller_num="13953012345", queue="hotline", seat="8001",
                    operator="op1024", job_number="1024", offered_at=1763866021.0, answered_at=1763866024.0,
                    ended_at=1763866090.0, wait_ms=3000, within_rule=True, talk_s=66.0, seats_rung=("8001",),
                    recordings=(f"{BASE}.wav",), recording_base=BASE, survey=1)


@pytest.fixture
def node(tmp_path: Path):
    built = compose.build(Settings(var_dir=tmp_path / "var"), set())
    yield built
    built.engine.dispose()


def locked(engine: sa.Engine):
    """The call log's table refuses writes, as a database that is locked or away would."""
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TRIGGER no_calls BEFORE INSERT ON call_record "
                             "BEGIN SELECT RAISE(ABORT, 'database is locked'); END"))

    def unlock() -> None:
        with engine.begin() as conn:
            conn.execute(sa.text("DROP TRIGGER no_calls"))
    return unlock


def test_a_call_the_database_refuses_waits_in_the_outbox_and_is_stored_once_it_comes_back(node) -> None:
    filer = CallFiler(node.store.calls, node.engine, node.settings, node.filer.outbox, sleep=lambda _s: None)
    unlock = locked(node.engine)
    assert filer.file(CALL) is False  # three tries, all refused: nothing lost, nothing raised
    assert filer.pending == 1 and node.store.calls.list() == []
    assert filer.outbox.folder.stat().st_mode & 0o077 == 0  # citizens' numbers: the service's own
    [(key, record)] = filer.outbox.pending()
    assert key == CALL.call_id and FinishedCall.from_record(record) == CALL  # the whole call, as it was
    assert filer.retry_pending() == 0 and filer.pending == 1  # still refused: still kept
    unlock()
    assert filer.retry_pending() == 1 and filer.pending == 0
    [row] = node.store.calls.list()
    assert (row["id"], row["seat"], row["wait_s"], row["abandoned"]) == (CALL.call_id, "8001", 3.0, False)
    assert filer.file(CALL) is True  # reported again (a resync): still one row
    assert len(node.store.calls.list()) == 1 and filer.pending == 0


def test_what_a_crashed_process_left_in_the_outbox_is_filed_by_the_next(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path / "var")
    Outbox(settings.call_outbox_dir).put(CALL.call_id, CALL.as_record())  # died before storing it
    (settings.call_outbox_dir / "garbage.json").write_text("{not json")
    node = compose.build(settings, set())
    try:
        assert node.filer.retry_pending() == 1 and node.filer.pending == 0
        [row] = node.store.calls.list()
        assert row["recording_id"] == BASE
        assert (settings.call_outbox_dir / "bad" / "garbage.json").is_file()  # set aside, said
    finally:
        node.engine.dispose()


def test_an_older_outbox_entry_still_reads() -> None:
    record = json.loads(json.dumps(CALL.as_record())) | {"a_field_from_the_future": 1}
    assert FinishedCall.from_record(record) == CALL


class Held(Executor):
    """The filer's thread, held: the rounds handed to it run when the test says, in order."""

    def __init__(self) -> None:
        self.jobs: list[tuple[Future, Callable[[], object]]] = []

    def submit(self, fn, /, *args, **kwargs):  # concurrent.futures.Executor.submit
        future: Future = Future()
        self.jobs.append((future, lambda: fn(*args, **kwargs)))
        return future

    def run(self) -> None:
        for future, job in self.jobs:
            future.set_result(job())
        self.jobs.clear()


def call_of(i: int, **kw: object) -> FinishedCall:
    base = f"hotline-20261123-101500-1763866{i:03d}.{i}"
    return replace(CALL, call_id=f"1763866{i:03d}.{i}", recordings=(f"{base}.wav",), recording_base=base, **kw)


def recordings_of(engine: sa.Engine) -> dict[str, tuple[str, str, int | None]]:
    with Session(engine) as s:
        return {r.uniqueid: (r.seat, r.operator, r.ticket_id) for r in s.exec(select(Recording))}


def test_a_burst_handed_over_while_the_filer_is_busy_is_filed_in_a_few_rounds_each_call_once(node) -> None:
    """45 hang-ups while the filer's thread is busy: three rounds of at most 20 (journaled, logged,
    catalogued together), the other 42 rounds find nothing left; each call once, with its recording
    and the ticket its operator had already linked to it."""
    held = Held()
    filer = CallFiler(node.store.calls, node.engine, node.settings, node.filer.outbox, pool=held, max_batch=20)
    calls = [call_of(i) for i in range(45)]
    ticket = node.store.tickets.create({"caller_number": CALL.caller_num, "category": "一般诉求", "title": "路灯不亮"},
                                     SystemActor())
    node.store.calls.link_ticket(calls[7].call_id, ticket.id)  # the ticket was made during the call
    futures = [filer.submit(c) for c in calls]
    assert filer.pending == 0 and node.store.calls.list(limit=100) == []  # handed over: nothing done yet
    held.run()
    assert [f.result() for f in futures[:4]] == [20, 20, 5, 0] and filer.rounds == 3
    assert sorted(r["id"] for r in node.store.calls.list(limit=100)) == sorted(c.call_id for c in calls)
    catalogued = recordings_of(node.engine)
    assert sorted(catalogued) == sorted(c.call_id for c in calls)
    assert catalogued[calls[7].call_id] == ("8001", "1024", ticket.id)
    assert {t for _s, _o, t in catalogued.values()} == {None, ticket.id}
    assert filer.pending == 0 and not list(filer.outbox.folder.glob(".*.tmp"))


def test_a_call_the_database_refuses_in_a_batch_does_not_hold_the_others_back(node) -> None:
    filer = CallFiler(node.store.calls, node.engine, node.settings, node.filer.outbox, sleep=lambda _s: None)
    good, bad, other = call_of(1), call_of(2), call_of(3)
    with node.engine.begin() as conn:
        conn.execute(sa.text(f"CREATE TRIGGER no_bad BEFORE INSERT ON call_record WHEN NEW.uniqueid = '{bad.call_id}' "
                             "BEGIN SELECT RAISE(ABORT, 'constraint failed'); END"))
    assert filer.file_many([good, bad, other]) is False
    assert sorted(r["id"] for r in node.store.calls.list()) == sorted([good.call_id, other.call_id])
    assert [key for key, _ in filer.outbox.pending()] == [bad.call_id]  # kept, and only it
    with node.engine.begin() as conn:
        conn.execute(sa.text("DROP TRIGGER no_bad"))
    assert filer.retry_pending() == 1 and filer.pending == 0 and len(node.store.calls.list()) == 3


@pytest.mark.parametrize("order", ["bridge first", "rebuilt first"])
def test_a_call_reported_twice_in_one_batch_is_one_row_holding_the_bridges_report(node, order: str) -> None:
    """A resync's report and Asterisk's rebuilt one of the same call in the same round: one row, and
    what the bridge saw (the operator, the hold) wins whichever came first, as across rounds."""
    bridge = replace(CALL, hold_s=12.0)
    rebuilt = replace(CALL, operator="", job_number="", hold_s=0.0, reconstructed=True)
    batch = [bridge, rebuilt] if order == "bridge first" else [rebuilt, bridge]
    assert node.filer.file_many(batch) is True
    [row] = node.store.calls.list()
    assert (row["operator"], row["hold_s"], row["reconstructed"]) == ("op1024", 12.0, False)
    assert len(recordings_of(node.engine)) == 1


async def test_the_calls_handed_over_last_are_filed_before_the_node_stops(tmp_path: Path) -> None:
    from cti.domain import CallCompleted

    node = compose.build(Settings(var_dir=tmp_path / "var"), set())
    node.follow_finished_calls()
    calls = [call_of(i) for i in range(30)]
    for c in calls:
        node.bus.publish_nowait(CallCompleted(at=c.ended_at, call_id=c.call_id, call=c))
    await node.stop()  # at once: whatever is still waiting for the filer's thread is filed first
    assert len(node.store.calls.list(limit=100)) == 30 and node.filer.pending == 0


def test_while_the_database_refuses_rounds_only_journal_and_the_timer_stores_them_later(node) -> None:
    """The first round of a burst is refused: its calls are kept and the rounds behind it journal at
    once instead of spending their tries, so nothing waits in memory; once the database is back,
    the timer's retry stores all of them and the next round stores again."""
    held, slept = Held(), []
    filer = CallFiler(node.store.calls, node.engine, node.settings, node.filer.outbox, pool=held, max_batch=2,
                      sleep=slept.append)
    unlock = locked(node.engine)
    for i in range(5):
        filer.submit(call_of(i))
    held.run()
    assert filer.rounds == 3 and slept == [0.2, 1.0]  # the first round's tries only
    assert filer.pending == 5 and node.store.calls.list() == []
    unlock()
    assert filer.retry_pending() == 5 and filer.pending == 0
    filer.submit(call_of(9))
    held.run()
    assert filer.pending == 0 and len(node.store.calls.list()) == 6
