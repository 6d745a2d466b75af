"""The durable transcription queue and its worker processes.

The queue is a table (``recording_job``): jobs survive restarts. A worker claims one job in a
single ``UPDATE … WHERE id = (SELECT … LIMIT 1 [FOR UPDATE SKIP LOCKED]) RETURNING`` with a fresh
token and a lease, which is atomic on SQLite (one writer at a time) and on PostgreSQL (the row
lock; SKIP LOCKED lets other workers pass by). The lease is renewed while the worker works; a
worker that dies leaves its lease to expire and the job is claimed again (``attempts`` counts the
claims; past ``max_attempts`` the job is parked with its error). Finishing needs the claim's
token, in the same transaction as the transcript is written: a worker that lost its claim cannot
finish a job a second time.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from recordings import catalog, integrity, live_legs, rules
from recordings.models import Recording, RecordingFile, Transcript, TranscriptionJob, TranscriptionRun
from recordings.transcribe import load_model, model_path, path_of, read_pcm, recognise, transcribe_legs

log = logging.getLogger("recordings.worker")
# an idle worker's look for work: a recording that lands waits at most this long for it (the
# look is one indexed read, no write lock; it was a claim's two updates every second)
POLL_S = 0.25
JOBS = TranscriptionJob.__table__  # type: ignore[attr-defined]
RUNS = TranscriptionRun.__table__  # type: ignore[attr-defined]


class LostClaim(Exception):
    """The lease ran out and another worker has the job now: drop this attempt."""


@dataclass(frozen=True, slots=True)
class Claim:
    job_id: int
    recording_id: int
    token: str
    attempt: int


def _now() -> datetime:
    return datetime.now(UTC)


def reap(engine: sa.Engine, max_attempts: int, now: datetime | None = None) -> int:
    """Park jobs whose last claim died (lease expired) after ``max_attempts`` claims."""
    now = now or _now()
    with engine.begin() as conn:
        dead = conn.execute(
            sa.update(JOBS)
            .where(JOBS.c.state == "running", JOBS.c.lease_until < now, JOBS.c.attempts >= max_attempts)
            .values(state="parked", finished_at=now,
                    error=f"转写进程在处理中退出 {max_attempts} 次，已搁置（最后一次：" + JOBS.c.worker + "）")
            .returning(JOBS.c.id)
        ).scalars().all()
    return len(dead)


def _claimable(now: datetime) -> sa.ColumnElement[bool]:
    return sa.or_(JOBS.c.state == "queued", sa.and_(JOBS.c.state == "running", JOBS.c.lease_until < now))


def waiting(engine: sa.Engine, now: datetime | None = None) -> bool:
    """Is a job claimable (queued, or running with its lease expired)? A read only: an idle worker
    asks this every ``poll_s`` and takes the write lock (:func:`claim`) only when there is work."""
    with engine.connect() as conn:
        return conn.execute(sa.select(JOBS.c.id).where(_claimable(now or _now())).limit(1)).first() is not None


def claim(engine: sa.Engine, worker: str, lease_s: float, max_attempts: int = 3,
          now: datetime | None = None) -> Claim | None:
    """The oldest claimable job (queued, or running with its lease expired), or None."""
    now = now or _now()
    reap(engine, max_attempts, now)
    token = uuid.uuid4().hex
    pick = (
        sa.select(JOBS.c.id)
        .where(_claimable(now))
        .order_by(JOBS.c.id)
        .limit(1)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    with engine.begin() as conn:
        row = conn.execute(
            sa.update(JOBS)
            .where(JOBS.c.id == pick)
            .values(state="running", token=token, worker=worker, lease_until=now + timedelta(seconds=lease_s),
                    attempts=JOBS.c.attempts + 1)
            .returning(JOBS.c.id, JOBS.c.recording_id, JOBS.c.attempts)
        ).first()
        if row is None:
            return None
        conn.execute(sa.insert(RUNS).values(job_id=row.id, token=token, worker=worker, started_at=now, outcome=""))
    return Claim(row.id, row.recording_id, token, row.attempts)


def renew(engine: sa.Engine, c: Claim, lease_s: float) -> None:
    with engine.begin() as conn:
        n = conn.execute(
            sa.update(JOBS).where(JOBS.c.id == c.job_id, JOBS.c.token == c.token, JOBS.c.state == "running")
            .values(lease_until=_now() + timedelta(seconds=lease_s))
        ).rowcount
    if n != 1:
        raise LostClaim(c.job_id)


# a recogniser that has not finished a chunk for this long is stuck, not slow: its lease is let go
STUCK_S = 120.0


class Keeper:
    """Holds a claim's lease from a thread of its own while the recogniser makes progress.

    The lease used to be renewed between chunks of recognition. Workers run at nice 10 (calls go
    first), and on a busy box a chunk could take longer than the lease: an idle worker took the
    job while this one was still on it, the two took it from each other in turn, and after
    ``max_attempts`` claims it was parked though no worker had died (CI: three losses of one job in
    15 s). A renewal costs a few milliseconds and a sleeping thread is woken promptly even at nice
    10 (Vosk's C calls release the GIL), so the lease now says "this process lives", and the
    chunks' :meth:`tick` says "and is not stuck": without a tick for ``stuck_s`` the lease is no
    longer renewed and runs out, so a hung worker's job is still taken by another.
    """

    def __init__(self, engine: sa.Engine, c: Claim, lease_s: float, *, stuck_s: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.engine, self.claim, self.lease_s, self.clock = engine, c, lease_s, clock
        self.stuck_s = max(STUCK_S, 3 * lease_s) if stuck_s is None else stuck_s
        self.renewals = 0
        self._last = clock()
        self._lost = False
        self._halt = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease-{c.job_id}", daemon=True)

    def __enter__(self) -> Keeper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._halt.set()
        self._thread.join(self.lease_s)

    def tick(self) -> None:
        """Progress (the recogniser's heartbeat, per chunk); raises :class:`LostClaim` once another
        worker holds the job, so this attempt stops instead of finishing work that will be thrown away."""
        if self._lost:
            raise LostClaim(self.claim.job_id)
        self._last = self.clock()

    def stuck(self) -> bool:
        return self.clock() - self._last > self.stuck_s

    def _run(self) -> None:
        while not self._halt.wait(self.lease_s / 3):
            if self.stuck():
                continue  # no renewal: the lease runs out; a tick that comes after may win it back
            try:
                renew(self.engine, self.claim, self.lease_s)
                self.renewals += 1
            except LostClaim:
                self._lost = True
                return
            except Exception as exc:  # the database busy for a moment: the next round tries again
                log.warning("job %d: lease not renewed (%s)", self.claim.job_id, exc)


def complete(engine: sa.Engine, c: Claim, words: list[dict], findings: list[dict], model: str,
             audio_s: float, wall_s: float) -> bool:
    """Finish a job with its transcript; False (nothing written) if the claim was lost."""
    now = _now()
    with Session(engine) as session:
        n = session.execute(
            sa.update(JOBS).where(JOBS.c.id == c.job_id, JOBS.c.token == c.token, JOBS.c.state == "running")
            .values(state="done", finished_at=now, error="", audio_s=audio_s, wall_s=wall_s, lease_until=None)
        ).rowcount
        if n != 1:
            session.rollback()
            _end_run(engine, c, "stale")
            return False
        old = session.get(Transcript, c.recording_id)
        if old is not None:
            session.delete(old)
            session.flush()
        session.add(Transcript(recording_id=c.recording_id, model=model, words=words, findings=findings))
        session.execute(sa.update(RUNS).where(RUNS.c.token == c.token).values(outcome="done", finished_at=now))
        session.commit()
    return True


def fail(engine: sa.Engine, c: Claim, error: str, max_attempts: int) -> str:
    """Back to the queue for another try, or parked with its error. Returns the new state."""
    state = "parked" if c.attempt >= max_attempts else "queued"
    with engine.begin() as conn:
        conn.execute(
            sa.update(JOBS).where(JOBS.c.id == c.job_id, JOBS.c.token == c.token)
            .values(state=state, error=error[:2000], lease_until=None,
                    finished_at=_now() if state == "parked" else None)
        )
    _end_run(engine, c, "error")
    return state


def _end_run(engine: sa.Engine, c: Claim, outcome: str) -> None:
    with engine.begin() as conn:
        # a run's first outcome stands (a second finish of a done claim is not a "stale" run)
        conn.execute(sa.update(RUNS).where(RUNS.c.token == c.token, RUNS.c.outcome == "")
                     .values(outcome=outcome, finished_at=_now()))


def backlog(engine: sa.Engine) -> dict[str, Any]:
    """Counts per state and the share done (the QA page's progress bar, the CLI's line)."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(JOBS.c.state, sa.func.count()).group_by(JOBS.c.state)).all()
        audio = conn.execute(sa.select(sa.func.coalesce(sa.func.sum(JOBS.c.audio_s), 0.0),
                                       sa.func.coalesce(sa.func.sum(JOBS.c.wall_s), 0.0))
                             .where(JOBS.c.state == "done")).first()
    counts = {"queued": 0, "running": 0, "done": 0, "parked": 0} | {s: n for s, n in rows}
    total = sum(counts.values())
    return counts | {"total": total, "percent": round(100.0 * (counts["done"] + counts["parked"]) / total, 1)
                     if total else 100.0, "audio_s": round(audio[0], 1), "wall_s": round(audio[1], 1)}


# ------------------------------------------------------------------ one job


def process(engine: sa.Engine, settings: Any, model: Any, c: Claim, lease_s: float,
            grammar: list[str] | None = None) -> bool:
    """Transcribe one claimed recording and run the QA rules on it."""
    with Session(engine) as session:
        files = session.exec(select(RecordingFile).where(
            RecordingFile.recording_id == c.recording_id, RecordingFile.status == "ok",
            RecordingFile.leg.in_(("citizen", "operator"))).order_by(RecordingFile.id)).all()  # type: ignore[attr-defined]
        if not files:
            raise integrity.Unreadable("missing", "两路录音均缺失或损坏")
        # each leg read once, its bytes hashed as read and compared with the catalog's checksum:
        # a damaged file is marked and the job parked (integrity.Unreadable), never transcribed
        legs: dict[str, str | bytes] = {f.leg: integrity.read_checked(session, f) for f in files}
        rec = session.get(Recording, c.recording_id)
        job_number, survey = (rec.operator, rec.survey) if rec else ("", "")
        message = bool(rec and catalog.is_message(rec.base))
        live = live_legs.whole_legs(session, rec.uniqueid) if rec and rec.uniqueid else {}
    with Keeper(engine, c, lease_s) as keeper:  # held until the transcript is written
        heartbeat = keeper.tick
        cfg = rules.RuleConfig.from_settings(settings)
        t0 = time.perf_counter()
        used = path_of(model) or model_path(settings)  # what this worker loaded (a model switched since: not it)
        # heard while the call was up: only what the live audio missed is heard now
        if grammar is None and live_legs.usable(live, legs):
            words, audio_s, again_s = live_legs.words_with_live(model, legs, live, heartbeat=heartbeat)
            used = f"live:{live['citizen'].model}" if live.get("citizen") else used
            log.info("recording %d: live transcript reused, %.1f of %.1f s heard again",
                     c.recording_id, again_s, audio_s)
        else:
            words, audio_s = transcribe_legs(model, legs, grammar=grammar, heartbeat=heartbeat)
        spotted: list[rules.Word] = []
        if getattr(settings, "qa_phrase_spotting", False) and "operator" in legs:
            # a second, grammar-constrained pass over the operator's leg: phrases the free
            # transcript garbles are often still found
            pcm, rate, _ = read_pcm(legs["operator"])
            spotted = [rules.Word("operator", w["word"], w["start"], w["end"], w["conf"])
                       for w in recognise(model, pcm, rate=rate, grammar=rules.spotting_phrases(cfg),
                                          heartbeat=heartbeat)]
        wall = time.perf_counter() - t0
        # a voice message (留言) has no operator to hold to the greeting or the job number: words only
        found = [] if message else rules.check([rules.Word.from_dict(w) for w in words], cfg, job_number=job_number,
                                                survey=survey, spotted=spotted)
        # the model this worker loaded, not today's active one (hotline model use may have changed it)
        return complete(engine, c, words, [f.as_dict() for f in found], used,
                        round(audio_s, 3), round(wall, 3))


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def work(settings: Any, *, drain: bool = False, stop: Any = None, poll_s: float = POLL_S,
         lease_s: float | None = None, grammar: list[str] | None = None) -> int:
    """One worker's loop (runs in its own process): claim, transcribe, finish; returns jobs done.
    With ``drain`` it returns once nothing is queued or running. Idle, it looks for work every
    ``poll_s`` with a read (:func:`waiting`), and claims only when there is some."""
    from recordings.db import make_engine

    engine = make_engine(settings.db_url)
    path = model_path(settings)
    model = load_model(path)
    log.info("worker %s: Vosk model loaded from %s", worker_name(), path)
    lease_s = lease_s or settings.transcribe_lease_s
    name, done = worker_name(), 0
    parent = os.getppid()
    try:
        while not (stop is not None and stop.is_set()):
            if os.getppid() != parent:
                break  # the supervisor is gone (killed): do not linger as an orphan
            c = claim(engine, name, lease_s, settings.transcribe_max_attempts) if waiting(engine) else None
            if c is None:
                if drain and (b := backlog(engine))["queued"] == 0 and b["running"] == 0:
                    break
                time.sleep(poll_s)
                continue
            try:
                done += process(engine, settings, model, c, lease_s, grammar)
            except LostClaim:
                log.warning("job %d: lease lost, another worker has it", c.job_id)
            except integrity.Unreadable as exc:  # the same bytes would fail every retry: parked at once
                fail(engine, c, f"{integrity.UNREADABLE}{exc}；不再重试，修复后自动重新排队", max_attempts=0)
                log.error("job %d: recording %d unreadable (%s), parked", c.job_id, c.recording_id, exc)
            except Exception as exc:  # a bad file parks its job, never the worker
                state = fail(engine, c, f"{type(exc).__name__}: {exc}", settings.transcribe_max_attempts)
                log.warning("job %d failed (%s), now %s", c.job_id, exc, state)
    finally:
        engine.dispose()
    return done


def _child(settings: Any, drain: bool, stop: Any, lease_s: float | None, grammar: list[str] | None) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    # transcription is a backlog, calls are not: on a shared box Asterisk and the bridge go first
    # (bench/load.py measured the workers at ~70 % of the box against Asterisk's 67 %)
    os.nice(int(settings.transcribe_nice))
    work(settings, drain=drain, stop=stop, lease_s=lease_s, grammar=grammar)


def supervise(settings: Any, workers: int, *, drain: bool = False, stop: Any = None,
              progress: Callable[[dict[str, Any]], None] | None = None, lease_s: float | None = None,
              grammar: list[str] | None = None, interval_s: float = 1.0) -> dict[str, Any]:
    """N worker processes sharing nothing but the queue; a worker that dies is restarted."""
    from recordings.db import make_engine

    ctx = mp.get_context("spawn")  # no fork of a process holding database connections or a model
    stop = stop or ctx.Event()
    engine = make_engine(settings.db_url)

    def spawn() -> Any:
        p = ctx.Process(target=_child, args=(settings, drain, stop, lease_s, grammar), daemon=True)
        p.start()
        return p

    procs = [spawn() for _ in range(workers)]
    restarts, last = 0, None
    try:
        while True:
            time.sleep(interval_s)
            for i, p in enumerate(procs):
                if p.is_alive() or p.exitcode == 0:
                    continue
                if stop.is_set():
                    continue
                log.warning("transcription worker pid %s died (exit %s); restarting", p.pid, p.exitcode)
                restarts += 1
                procs[i] = spawn()
            b = backlog(engine) | {"workers": sum(p.is_alive() for p in procs), "restarts": restarts,
                                   "pids": [p.pid for p in procs if p.is_alive()]}
            if progress is not None and (b["done"], b["queued"], b["running"], b["parked"], b["workers"]) != last:
                progress(b)
                last = (b["done"], b["queued"], b["running"], b["parked"], b["workers"])
            if all(not p.is_alive() for p in procs) and (drain or stop.is_set()):
                return b
    except KeyboardInterrupt:
        stop.set()
        return backlog(engine) | {"restarts": restarts}
    finally:
        stop.set()
        for p in procs:
            p.join(10)
            if p.is_alive():
                p.terminate()
        engine.dispose()


def progress_line(b: dict[str, Any], width: int = 30) -> str:
    """``转写 [#####-----]  50.0 % 10/20 完成 · 排队 8 · 处理中 2 · 搁置 0 · 进程 2``"""
    filled = int(width * b["percent"] / 100)
    line = (f"转写 [{'#' * filled}{'-' * (width - filled)}] {b['percent']:5.1f} % {b['done']}/{b['total']} 完成"
            f" · 排队 {b['queued']} · 处理中 {b['running']} · 搁置 {b['parked']}")
    if "workers" in b:
        line += f" · 进程 {b['workers']}"
    return line
