"""Every finished call filed for good: into the call log (its one writer) and its recording into
the catalog, journaled on disk first (:class:`hotline.outbox.Outbox`) and retried until stored.

It was a fire-and-forget write whose failure was only logged: a call that ended while the
database was locked or down left no record and nothing noticed. Now the call is in the outbox
before the first try; a failed try is retried (a few times at once, then on a timer, and at the
next start after a crash); both writes are idempotent (the call log by uniqueid, the catalog by
the recording's base), so a call filed twice is stored once. ``pending`` is on the health page.

The bridge hands each call over (:meth:`CallFiler.submit`) and one thread files them in rounds:
each round takes every call handed over since the last (up to ``MAX_BATCH``) as one batch,
journaled with one folder sync and stored with one commit to the call log and one to the
catalog. A call alone is filed at once; a burst of hang-ups costs two commits a round, not a
call. Filing was half the bridge node's CPU in a 200-call burst (bench/ami_ingest.py,
``filing_cpu_ms_per_call``), and a pool of threads each committing its own call queued on the
database's single writer anyway. While the database refuses, rounds only journal; the timer
(:meth:`CallFiler.run`) stores what waits once it is back.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import Any

import sqlalchemy as sa

import recordings.service
from hotline.calls import FinishedCall
from hotline.outbox import Outbox
from ticketing.calls import CallLog

log = logging.getLogger(__name__)
BACKOFF_S = (0.2, 1.0)  # the tries at once after the first; then every ``retry_s``
# calls in one round at most: its transaction holds the database's write lock, which the FastAGI
# lookups' own writes (a confidential caller's read is logged) wait for while a caller waits
MAX_BATCH = 20


class CallFiler:
    def __init__(self, calls: CallLog, engine: sa.Engine, settings: Any, outbox: Outbox, *, retry_s: float = 5.0,
                 sleep: Callable[[float], None] = time.sleep, pool: Executor | None = None,
                 max_batch: int = MAX_BATCH) -> None:
        self.calls = calls
        self.engine = engine
        self.settings = settings
        self.outbox = outbox
        self.retry_s = retry_s
        self.sleep = sleep
        # one thread files what is handed over (:meth:`submit`), a batch a round: the database takes one
        # writer at a time anyway, and a pool of them each committing its own call was paced by commits
        self.pool: Executor = pool or ThreadPoolExecutor(max_workers=1, thread_name_prefix="call-filing")
        self.max_batch = max_batch
        self._waiting: list[FinishedCall] = []
        self._lock = threading.Lock()
        self.rounds = 0  # batches filed from what was handed over (a burst: fewer than its calls)
        self._resting_until = 0.0  # the database refused a round: until then rounds only journal

    @property
    def pending(self) -> int:
        return len(self.outbox)

    def submit(self, call: FinishedCall) -> Future[int]:
        """Hand a finished call over to be filed; never waits (the bus calls this on the AMI read
        path). The filing thread takes every call handed over since its last round as one batch:
        one call alone is filed at once, a burst of hang-ups with one journal sync and one commit."""
        with self._lock:
            self._waiting.append(call)
        return self.pool.submit(self._round)  # a round each: enough rounds for every call, the extra ones idle

    def _round(self) -> int:
        with self._lock:
            batch = self._waiting[:self.max_batch]
            del self._waiting[:self.max_batch]
        if batch:
            self.rounds += 1
            # while the database is away a round would spend its tries and pauses on every batch, and
            # the calls behind it would wait in memory: they are journaled at once, the timer retries
            if time.monotonic() < self._resting_until:
                self._journal(batch)
            elif not self.file_many(batch):
                self._resting_until = time.monotonic() + self.retry_s
        return len(batch)

    def close(self) -> None:
        """What was handed over is filed (or journaled for the next start) before the node stops."""
        self.pool.shutdown(wait=True)

    def file(self, call: FinishedCall) -> bool:
        """Journal the call, then store it (retrying at once a few times); True once stored. A call
        not stored now stays journaled for :meth:`retry_pending`. Never raises."""
        return self.file_many([call])

    def file_many(self, calls: Sequence[FinishedCall]) -> bool:
        """:meth:`file` for several calls: journaled together, stored in one transaction; if the
        database refuses the batch each call is tried on its own, so that one it cannot take does not
        hold the others back. True once all are stored."""
        self._journal(calls)
        for pause in (0.0, *BACKOFF_S):
            if pause:
                self.sleep(pause)
            if self._store(calls):
                return True
        return self._one_by_one(calls) == len(calls)

    def _one_by_one(self, calls: Sequence[FinishedCall]) -> int:
        """After a batch was refused: each call tried alone, so that one the database cannot take does
        not hold the others back; how many were stored (a lone call was just tried: none)."""
        return sum(self._store([c]) for c in calls) if len(calls) > 1 else 0

    def _journal(self, calls: Sequence[FinishedCall]) -> None:
        try:
            self.outbox.put_many([(c.call_id, c.as_record()) for c in calls])
        except OSError:
            log.exception("%d calls: the outbox cannot be written; storing them directly", len(calls))

    def _store(self, calls: Sequence[FinishedCall]) -> bool:
        try:
            self.calls.record_many(calls)
            recordings.service.register_calls(self.engine, self.settings, calls, self.calls)
        except Exception as exc:  # the database refused or is away: the outbox keeps the calls
            log.warning("%s not filed yet (%s); kept in the outbox",
                        f"call {calls[0].call_id}" if len(calls) == 1 else f"{len(calls)} calls", exc)
            return False
        self.outbox.done_many(c.call_id for c in calls)
        return True

    def retry_pending(self) -> int:
        """File what the outbox still holds (after a failure, or a crash); how many were stored. A
        batch at a time, each call on its own where the batch is refused."""
        stored = 0
        pending = [FinishedCall.from_record(record) for _key, record in self.outbox.pending()]
        for i in range(0, len(pending), self.max_batch):
            batch = pending[i:i + self.max_batch]
            stored += len(batch) if self._store(batch) else self._one_by_one(batch)
        if stored == len(pending):
            self._resting_until = 0.0  # the database is back: rounds store again
        return stored

    async def run(self) -> None:
        """At start (what a crash left behind) and then every ``retry_s``."""
        while True:
            if self.pending:
                stored = await asyncio.to_thread(self.retry_pending)
                if stored:
                    log.info("filed %d calls from the outbox; %d still pending", stored, self.pending)
            await asyncio.sleep(self.retry_s)
