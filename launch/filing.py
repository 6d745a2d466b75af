"""Every finished call filed for good: into the call log (its one writer) and its recording into
the catalog, journaled on disk first (:class:`hotline.outbox.Outbox`) and retried until stored.

It was a fire-and-forget write whose failure was only logged: a call that ended while the
database was locked or down left no record and nothing noticed. Now the call is in the outbox
before the first try; a failed try is retried (a few times at once, then on a timer, and at the
next start after a crash); both writes are idempotent (the call log by uniqueid, the catalog by
the recording's base), so a call filed twice is stored once. ``pending`` is on the health page.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

import recordings.service
from hotline.calls import FinishedCall
from hotline.outbox import Outbox
from ticketing.calls import CallLog

log = logging.getLogger(__name__)
BACKOFF_S = (0.2, 1.0)  # the tries at once after the first; then every ``retry_s``


class CallFiler:
    def __init__(self, calls: CallLog, engine: sa.Engine, settings: Any, outbox: Outbox, *, retry_s: float = 5.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.calls = calls
        self.engine = engine
        self.settings = settings
        self.outbox = outbox
        self.retry_s = retry_s
        self.sleep = sleep

    @property
    def pending(self) -> int:
        return len(self.outbox)

    def file(self, call: FinishedCall) -> bool:
        """Journal the call, then store it (retrying at once a few times); True once stored. A call
        not stored now stays journaled for :meth:`retry_pending`. Never raises."""
        try:
            self.outbox.put(call.call_id, call.as_record())
        except OSError:
            log.exception("call %s: the outbox cannot be written; storing it directly", call.call_id)
        for pause in (0.0, *BACKOFF_S):
            if pause:
                self.sleep(pause)
            if self._store(call):
                return True
        return False

    def _store(self, call: FinishedCall) -> bool:
        try:
            self.calls.record(call)
            recordings.service.register_call(self.engine, self.settings, call, self.calls, raise_errors=True)
        except Exception as exc:  # the database refused or is away: the outbox keeps the call
            log.warning("call %s not filed yet (%s); kept in the outbox", call.call_id, exc)
            return False
        self.outbox.done(call.call_id)
        return True

    def retry_pending(self) -> int:
        """File what the outbox still holds (after a failure, or a crash); how many were stored."""
        stored = 0
        for _key, record in self.outbox.pending():
            call = FinishedCall.from_record(record)
            stored += self._store(call)
        return stored

    async def run(self) -> None:
        """At start (what a crash left behind) and then every ``retry_s``."""
        while True:
            if self.pending:
                stored = await asyncio.to_thread(self.retry_pending)
                if stored:
                    log.info("filed %d calls from the outbox; %d still pending", stored, self.pending)
            await asyncio.sleep(self.retry_s)
