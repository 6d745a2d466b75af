"""The outbox on SQLite and PostgreSQL: an idempotency key enqueued once however many sweeps race;
a claim is one sender's until its lease runs out, then another's with one attempt more; a sender
that lost its claim cannot finish the row; a claim whose sender died on its last attempt ends
failed, visibly; rows of the previous schema are carried over by the migration."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from notify import db as notify_db
from notify.channels import Delivery, Message
from notify.log import NotificationLog
from notify.models import Notification
from notify.outbox import INTERRUPTED, LEASE, MAX_ATTEMPTS, Claim, Outbox
from tests.ticketing.conftest import Clock
from ticketing.store import Store

T = Notification.__table__  # type: ignore[attr-defined]


def message(n: int, channel: str = "sms") -> Message:
    return Message(channel, f"1390000{n:04d}", "", f"工单{n}今天到期", ticket_id=n, kind="deadline_due",  # type: ignore[arg-type]
                   key=f"deadline_due:{n}:20261123T235959:0:{channel}:1390000{n:04d}")


def rows(store: Store) -> list[dict]:
    with store.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(T).order_by(T.c.id))]


def test_a_key_is_enqueued_once_however_many_sweeps_race(store: Store, clock: Clock) -> None:
    messages = [message(n) for n in range(60)]
    outbox = Outbox(store.engine)
    assert outbox.enqueue(messages[:10], clock.now) == 10
    assert outbox.enqueue(messages[:10], clock.now) == 0  # the same pass again: nothing new
    added: list[int] = []
    start = threading.Barrier(6)

    def sweep() -> None:  # six "nodes" at once, each with its own connections
        start.wait()
        added.append(Outbox(store.engine, worker=threading.current_thread().name).enqueue(messages, clock.now))

    threads = [threading.Thread(target=sweep) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(added) == 50
    got = rows(store)
    assert len(got) == 60 and Counter(r["key"] for r in got).most_common(1)[0][1] == 1
    assert {(r["status"], r["attempts"], r["lease_until"]) for r in got} == {("pending", 0, None)}


def test_concurrent_senders_claim_each_message_once(store: Store, clock: Clock) -> None:
    Outbox(store.engine).enqueue([message(n) for n in range(40)], clock.now)
    claims: list[Claim] = []
    start = threading.Barrier(8)

    def sender(name: str) -> None:
        outbox = Outbox(store.engine, worker=name)
        start.wait()
        while (c := outbox.claim(clock.now)) is not None:
            claims.append(c)

    threads = [threading.Thread(target=sender, args=(f"node{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(c.id for c in claims) == [r["id"] for r in rows(store)]  # each once, none left out
    assert {c.attempt for c in claims} == {1} and len({c.token for c in claims}) == 40
    by = {r["id"]: r for r in rows(store)}
    for c in claims:  # the row says who holds it, with which token, until when
        r = by[c.id]
        assert (r["status"], r["token"], r["attempts"]) == ("sending", c.token, 1)
        assert r["claimed_by"].startswith("node") and r["lease_until"] == clock.now + LEASE


def test_a_lease_that_runs_out_is_taken_over_and_the_loser_cannot_finish(store: Store, clock: Clock) -> None:
    first, second = Outbox(store.engine, worker="web-1:100"), Outbox(store.engine, worker="web-2:200")
    m = message(1)
    first.enqueue([m], clock.now)
    mine = first.claim(clock.now)
    assert mine is not None and (mine.attempt, mine.message) == (1, m)
    assert second.claim(clock.now + LEASE - timedelta(seconds=1)) is None  # still sending, maybe
    later = clock.now + LEASE + timedelta(seconds=1)
    theirs = second.claim(later)
    assert theirs is not None and (theirs.id, theirs.attempt) == (mine.id, 2) and theirs.token != mine.token
    # the first sender comes back late: neither its failure nor its success counts any more
    assert first.finish(mine, Delivery("failed", "sms_gateway", "短信网关拒绝发送：HTTP 500"), later) is False
    assert first.finish(mine, Delivery("sent", "sms_gateway"), later) is False
    [row] = rows(store)
    assert (row["status"], row["claimed_by"], row["error"]) == ("sending", "web-2:200", "")
    assert second.finish(theirs, Delivery("sent", "sms_gateway"), later) is True
    [row] = rows(store)
    assert (row["status"], row["attempts"], row["sent_at"], row["lease_until"]) == ("sent", 2, later, None)
    assert second.finish(theirs, Delivery("failed", "sms_gateway", "x"), later) is False  # finished is finished
    assert first.claim(later + 10 * LEASE) is None


def test_a_failure_waits_its_back_off_then_one_more_attempt(store: Store, clock: Clock) -> None:
    outbox = Outbox(store.engine)
    outbox.enqueue([message(1)], clock.now)
    c = outbox.claim(clock.now)
    assert c is not None
    assert outbox.finish(c, Delivery("failed", "sms_gateway", "短信网关拒绝发送：HTTP 500"), clock.now)
    [row] = rows(store)
    assert (row["status"], row["attempts"], row["next_attempt_at"]) == ("pending", 1, clock.now + timedelta(minutes=1))
    assert outbox.claim(clock.now + timedelta(seconds=59)) is None
    again = outbox.claim(clock.now + timedelta(minutes=1))
    assert again is not None and again.attempt == 2


def test_a_sender_that_died_on_the_last_attempt_leaves_a_visible_failure(store: Store, clock: Clock) -> None:
    outbox = Outbox(store.engine)
    outbox.enqueue([message(7)], clock.now)
    now = clock.now
    for attempt in range(1, MAX_ATTEMPTS + 1):  # every sender dies mid-send: nobody finishes
        c = outbox.claim(now)
        assert c is not None and c.attempt == attempt
        now += LEASE + timedelta(seconds=1)
    assert outbox.claim(now) is None  # no fifth attempt
    assert outbox.reap(now) == 1
    [row] = rows(store)
    assert (row["status"], row["attempts"], row["lease_until"]) == ("failed", MAX_ATTEMPTS, None)
    assert row["error"] == INTERRUPTED.format(n=MAX_ATTEMPTS)
    [shown] = NotificationLog(store.engine).for_ticket(7)
    assert shown["status_label"] == f"发送失败，已停止重试（共尝试 {MAX_ATTEMPTS} 次）"
    assert "发送进程在发送中途退出" in shown["error"] and "结果未知" in shown["error"]


def test_the_migration_carries_the_old_claims_and_retries_over(engine: sa.Engine) -> None:
    notify_db.migrate(engine, "ntf0001")
    at = datetime(2026, 11, 20, 1, 0, tzinfo=UTC)
    old = sa.table("notification", *(sa.column(c) for c in (
        "key", "kind", "channel", "recipient", "status", "attempts", "created_at", "claimed_at", "next_attempt_at",
        "error")))
    base = {"kind": "deadline_due", "channel": "sms", "recipient": "13900000001", "created_at": at, "error": ""}
    with engine.begin() as conn:
        conn.execute(old.insert(), [
            base | {"key": "sent", "status": "sent", "attempts": 1, "claimed_at": at, "next_attempt_at": None},
            base | {"key": "retry", "status": "failed", "attempts": 2, "claimed_at": at,
                    "next_attempt_at": at + timedelta(minutes=5), "error": "HTTP 500"},
            base | {"key": "given-up", "status": "failed", "attempts": 4, "claimed_at": at, "next_attempt_at": None},
            base | {"key": "in-flight", "status": "sending", "attempts": 1, "claimed_at": at, "next_attempt_at": None},
        ])
    notify_db.migrate(engine)
    outbox = Outbox(engine)
    with engine.connect() as conn:
        got = {r.key: (r.status, r.attempts, r.lease_until)
               for r in conn.execute(sa.select(T.c.key, T.c.status, T.c.attempts, T.c.lease_until))}
    assert got == {"sent": ("sent", 1, None), "retry": ("pending", 2, None), "given-up": ("failed", 4, None),
                   "in-flight": ("sending", 1, at + timedelta(minutes=10))}
    assert outbox.claim(at + timedelta(minutes=4)) is None
    retry = outbox.claim(at + timedelta(minutes=5))
    flight = outbox.claim(at + timedelta(minutes=10, seconds=1))
    assert (retry and retry.message.key, retry and retry.attempt) == ("retry", 3)
    assert (flight and flight.message.key, flight and flight.attempt) == ("in-flight", 2)
    assert outbox.claim(at + timedelta(minutes=11)) is None  # both held now
    notify_db.migrate(engine, "ntf0001")  # and back: the old sweeps would take both up again
    with engine.connect() as conn:
        back = dict(conn.execute(sa.select(T.c.key, T.c.status)).all())
    assert back == {"sent": "sent", "retry": "sending", "given-up": "failed", "in-flight": "sending"}


def test_the_migrations_build_exactly_the_model(engine: sa.Engine) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlmodel import SQLModel

    notify_db.migrate(engine)

    def include(obj, name, type_, _reflected, _compare_to) -> bool:  # the other packages' tables share both
        table = name if type_ == "table" else getattr(getattr(obj, "table", None), "name", None)
        return table is None or table in notify_db.TABLES

    with engine.connect() as c:
        ctx = MigrationContext.configure(c, opts={"include_object": include})
        assert compare_metadata(ctx, SQLModel.metadata) == []


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 11, 20, 9, 30, tzinfo=UTC))
