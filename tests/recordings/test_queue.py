"""The durable queue: atomic claims (SQLite and PostgreSQL), leases, tokens, retries, parking."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from recordings import worker
from recordings.db import make_engine, migrate
from recordings.models import Recording, TranscriptionJob, TranscriptionRun


def add_jobs(engine: sa.Engine, n: int) -> list[int]:
    with Session(engine) as s:
        recs = [Recording(base=f"hotline-20261123-101500-17638660{i:02d}.1", status="ok") for i in range(n)]
        s.add_all(recs)
        s.flush()
        jobs = [TranscriptionJob(recording_id=r.id) for r in recs]
        s.add_all(jobs)
        s.commit()
        return [j.id for j in jobs]


def runs(engine: sa.Engine) -> list[TranscriptionRun]:
    with Session(engine) as s:
        return list(s.exec(select(TranscriptionRun).order_by(TranscriptionRun.id)))


def state(engine: sa.Engine, job_id: int) -> TranscriptionJob:
    with Session(engine) as s:
        return s.get(TranscriptionJob, job_id)


def claim_all_concurrently(engine: sa.Engine, threads: int = 4) -> list[int]:
    claimed: list[int] = []
    errors: list[BaseException] = []

    def loop(name: str) -> None:
        try:
            while (c := worker.claim(engine, name, lease_s=60)) is not None:
                claimed.append(c.job_id)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    ts = [threading.Thread(target=loop, args=(f"w{i}",)) for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert errors == []
    return claimed


def test_concurrent_claims_take_each_job_exactly_once(engine):
    ids = add_jobs(engine, 30)
    claimed = claim_all_concurrently(engine)
    assert sorted(claimed) == ids
    assert len({r.token for r in runs(engine)}) == 30


@pytest.mark.postgres
def test_concurrent_claims_on_postgresql(postgres_server):
    engine = make_engine(postgres_server.create_database())
    try:
        migrate(engine)
        ids = add_jobs(engine, 30)
        assert sorted(claim_all_concurrently(engine, threads=6)) == ids
    finally:
        engine.dispose()


def test_an_expired_lease_is_claimed_again_and_the_old_claim_cannot_finish(engine):
    [job] = add_jobs(engine, 1)
    t0 = datetime.now(UTC)
    first = worker.claim(engine, "dead", lease_s=5, now=t0)
    assert worker.claim(engine, "other", lease_s=5, now=t0 + timedelta(seconds=2)) is None  # lease still held
    second = worker.claim(engine, "other", lease_s=5, now=t0 + timedelta(seconds=6))
    assert (second.job_id, second.attempt) == (job, 2) and second.token != first.token
    assert worker.complete(engine, first, [], [], "m", 1.0, 1.0) is False  # the slow one lost its claim
    with pytest.raises(worker.LostClaim):
        worker.renew(engine, first, 5)
    assert worker.complete(engine, second, [{"speaker": "citizen", "word": "x", "start": 0, "end": 1}], [], "m",
                           1.0, 1.0) is True
    assert worker.complete(engine, second, [], [], "m", 1.0, 1.0) is False  # and never twice
    assert state(engine, job).state == "done"
    assert [(r.worker, r.outcome) for r in runs(engine)] == [("dead", "stale"), ("other", "done")]


def test_an_idle_worker_sees_claimable_work_with_a_read(engine):
    # waiting() is what an idle worker asks between claims: queued, or a lease run out
    assert worker.waiting(engine) is False
    [job] = add_jobs(engine, 1)
    assert worker.waiting(engine) is True
    t0 = datetime.now(UTC)
    worker.claim(engine, "w", lease_s=5, now=t0)
    assert worker.waiting(engine, now=t0 + timedelta(seconds=2)) is False  # held
    assert worker.waiting(engine, now=t0 + timedelta(seconds=6)) is True  # its worker died: claimable again
    assert state(engine, job).state == "running"  # a read: nothing changed


def test_errors_retry_then_park_with_the_error(engine):
    [job] = add_jobs(engine, 1)
    for attempt in (1, 2):
        c = worker.claim(engine, "w", lease_s=60, max_attempts=3)
        assert c.attempt == attempt
        assert worker.fail(engine, c, "ValueError: bad wav", max_attempts=3) == "queued"
    c = worker.claim(engine, "w", lease_s=60, max_attempts=3)
    assert worker.fail(engine, c, "ValueError: bad wav", max_attempts=3) == "parked"
    assert worker.claim(engine, "w", lease_s=60) is None
    j = state(engine, job)
    assert (j.state, j.attempts, j.error) == ("parked", 3, "ValueError: bad wav")


def test_a_job_whose_workers_keep_dying_is_parked(engine):
    [job] = add_jobs(engine, 1)
    t = datetime.now(UTC)
    for i in range(3):
        assert worker.claim(engine, f"w{i}", lease_s=1, max_attempts=3, now=t + timedelta(seconds=2 * i)) is not None
    assert worker.claim(engine, "w9", lease_s=1, max_attempts=3, now=t + timedelta(seconds=10)) is None
    j = state(engine, job)
    assert j.state == "parked" and j.error.startswith("转写进程在处理中退出 3 次") and "w2" in j.error


def test_the_keeper_holds_the_lease_through_a_chunk_longer_than_the_lease(engine):
    # a starved worker (nice 10 on a busy box) may take longer over one chunk than the whole lease:
    # the keeper's thread renews it meanwhile, so an idle worker does not take the job from under it
    [job] = add_jobs(engine, 1)
    c = worker.claim(engine, "slow", lease_s=2)
    taken = []
    with worker.Keeper(engine, c, lease_s=2) as keeper:
        keeper.tick()
        deadline = time.monotonic() + 5  # no tick for 2.5 leases
        while time.monotonic() < deadline:
            taken.append(worker.claim(engine, "idle", lease_s=2))
            time.sleep(0.1)
        keeper.tick()  # still its own
        assert keeper.renewals >= 4
    assert taken and set(taken) == {None}
    assert worker.complete(engine, c, [], [], "m", 1.0, 1.0) is True
    assert (state(engine, job).state, state(engine, job).attempts) == ("done", 1)


def test_a_stuck_recogniser_lets_the_lease_run_out_and_learns_it_lost_the_job(engine):
    [job] = add_jobs(engine, 1)
    c = worker.claim(engine, "stuck", lease_s=0.6)
    now = [0.0]
    with worker.Keeper(engine, c, lease_s=0.6, stuck_s=30, clock=lambda: now[0]) as keeper:
        now[0] = 31.0  # no chunk finished for longer than stuck_s: renewals stop
        deadline = time.monotonic() + 10
        while (other := worker.claim(engine, "other", lease_s=60)) is None:
            assert time.monotonic() < deadline, "the stuck worker's lease never ran out"
            time.sleep(0.1)
        assert (other.job_id, other.attempt) == (job, 2)
        keeper.tick()  # it wakes up: the keeper tries the lease again and finds the job taken
        while True:
            try:
                keeper.tick()
            except worker.LostClaim:
                break
            assert time.monotonic() < deadline, "the stuck worker never learnt it had lost the job"
            time.sleep(0.05)
    assert worker.complete(engine, c, [], [], "m", 1.0, 1.0) is False
    assert worker.complete(engine, other, [], [], "m", 1.0, 1.0) is True


def test_backlog_counts_and_progress_line(engine):
    add_jobs(engine, 4)
    c = worker.claim(engine, "w", lease_s=60)
    worker.complete(engine, c, [], [], "m", 10.0, 2.0)
    worker.claim(engine, "w", lease_s=60)
    b = worker.backlog(engine)
    assert {k: b[k] for k in ("queued", "running", "done", "parked", "total", "percent")} == {
        "queued": 2, "running": 1, "done": 1, "parked": 0, "total": 4, "percent": 25.0}
    assert worker.progress_line(b, width=8) == "转写 [##------]  25.0 % 1/4 完成 · 排队 2 · 处理中 1 · 搁置 0"
