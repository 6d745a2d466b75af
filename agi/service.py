"""agi's public surface: the FastAGI server with every flow's dependencies bound.

The composition root (``launch.compose``) builds :class:`TicketLookups` on the ticket store,
wires ``on_survey`` / ``on_callback_request`` to the call log (:func:`call_log_hooks`) and
``job_number`` to whoever is signed in at the seat, and starts :func:`server`'s result.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from agi.channel import Channel
from agi.flows.closed import closed, overflow
from agi.flows.common import OnCallbackRequest, OnSurvey
from agi.flows.hours import ServiceHours
from agi.flows.jobno import JobNumber, announce
from agi.flows.lookup import LookupConfig, lookup
from agi.flows.status import TicketStatus, status_query
from agi.flows.survey import survey
from agi.server import FastAgiServer, Handler
from hotline.readers import Readers
from ticketing.public import PLAIN

log = logging.getLogger("agi")

# the public state's plain words → the status whose prompt says them: the caller hears what the
# status page shows (an extension request is "in progress" there too); the first status wins
SPOKEN_STATE = {words: str(status) for status, words in reversed(PLAIN.items())}


def lookup_config(settings: Any) -> LookupConfig:
    return LookupConfig(
        hours=ServiceHours.parse(settings.service_hours),
        timezone=settings.cti_timezone,
        area_code=settings.local_area_code,
        repeat_days=settings.agi_repeat_days,
        timeout_s=settings.agi_lookup_timeout_ms / 1000,
        blacklist=settings.agi_blacklist,
        elderly=frozenset(settings.agi_elderly_numbers),
        priority_elderly=settings.agi_priority_elderly,
        priority_overdue_repeat=settings.agi_priority_overdue_repeat,
        priority_vip=settings.agi_priority_vip,
        priority_repeat=settings.agi_priority_repeat,
        overflow_wait_s=settings.agi_overflow_wait_s,
    )


def job_numbers_from(settings: Any) -> JobNumber:
    """Seat → job number from the setting ``agi_job_numbers``; a seat not listed says its own number."""
    table = dict(settings.agi_job_numbers)
    return lambda seat: table.get(seat, seat)


async def _log_survey(uniqueid: str, caller: str, score: int | None) -> None:
    log.warning("survey result not stored (no on_survey wired) uid=%s score=%s", uniqueid, score)


async def _log_callback(uniqueid: str, caller: str, reason: str, message: str) -> None:
    log.warning("callback request not stored (no on_callback_request wired) uid=%s reason=%s message=%s",
                uniqueid, reason, message)


class TicketLookups:
    """The store's synchronous reads, run on a few threads of their own so the loop never waits on
    SQL (:class:`Readers`); the hooks' writes go to ``pool``."""

    def __init__(self, store: Any, timezone: str = "Asia/Shanghai", workers: int = 4) -> None:
        self.store = store  # ticketing.store.Store
        self.tz = ZoneInfo(timezone)
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="agi-db")
        self.reads = Readers(workers, name="agi-db")

    async def summarize(self, number: str) -> Any:
        return await self.reads.run(self.store.callers.summary, number, 5)

    def _find(self, number: str, code: str) -> TicketStatus | None:
        """What the public status page shows for the number and query code (None for a wrong code
        and an unknown number alike), as the status whose prompt says it."""
        found = self.store.public.status(number, code)
        if found is None:
            return None
        due = found.due  # the completion deadline while the department has it; else none to promise
        return TicketStatus(found.number or number, SPOKEN_STATE.get(found.state, ""),
                            due.astimezone(self.tz).date() if due else None)

    async def find(self, number: str, code: str) -> TicketStatus | None:
        return await self.reads.run(self._find, number, code)

    def close(self) -> None:
        self.reads.close()
        self.pool.shutdown(wait=False, cancel_futures=True)


def call_log_hooks(call_log: Any, lookups: TicketLookups) -> tuple[OnSurvey, OnCallbackRequest]:
    """``on_survey`` / ``on_callback_request`` onto ``ticketing.calls.CallLog`` (its
    ``record_survey`` and ``request_callback``), run on the lookups' thread pool."""

    async def on_survey(uniqueid: str, caller: str, score: int | None) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(lookups.pool, partial(call_log.record_survey, uniqueid, score, caller))

    async def on_callback_request(uniqueid: str, caller: str, reason: str, message: str) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(lookups.pool, partial(call_log.request_callback, uniqueid, caller, reason, message))

    return on_survey, on_callback_request


def routes(settings: Any, lookups: TicketLookups, *, on_survey: OnSurvey | None = None,
           on_callback_request: OnCallbackRequest | None = None, job_number: JobNumber | None = None,
           clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> dict[str, Handler]:
    """Script name → flow, every dependency bound."""
    cfg = lookup_config(settings)
    on_cb = on_callback_request or _log_callback
    jobs = job_number or job_numbers_from(settings)

    async def _lookup(ch: Channel) -> None:
        await lookup(ch, lookups.summarize, cfg, clock)

    messages = ""
    if settings.agi_voice_messages:
        from hotline.asterisk.render import directories

        messages = f"{directories(settings)['spool']}/monitor"  # as Asterisk sees it (chroot)

    async def _closed(ch: Channel) -> None:
        await closed(ch, on_cb, cfg.hours, cfg.area_code, messages, clock)

    async def _overflow(ch: Channel) -> None:
        await overflow(ch, on_cb, cfg.area_code)

    async def _survey(ch: Channel) -> None:
        await survey(ch, on_survey or _log_survey)

    async def _status(ch: Channel) -> None:
        await status_query(ch, lookups.find)

    async def _jobno(ch: Channel) -> None:
        await announce(ch, jobs)

    return {"lookup": _lookup, "closed": _closed, "overflow": _overflow, "survey": _survey, "status": _status,
            "jobno": _jobno}


def server(settings: Any, lookups: TicketLookups, **kw: Any) -> FastAgiServer:
    """A server on settings.agi_host:agi_port (not started) over ``lookups``; ``kw``: the hooks."""
    return FastAgiServer(routes(settings, lookups, **kw), settings.agi_host, settings.agi_port,
                         max_sessions=settings.agi_max_sessions, read_timeout=settings.agi_read_timeout_s)
