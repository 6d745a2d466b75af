"""recordings' public surface: what the composition root and the web room call.

* ``hotline transcribe [-w N]`` → :func:`run`: N worker processes on the durable queue, a
  progress line on the terminal, Ctrl-C stops.
* The composition root: :func:`migrate`; :func:`register_calls` for the finished calls the bus
  carries (seat, operator's job number, caller, survey); :func:`catalog_loop` as a task (spool
  scan every few seconds, retention purge once an hour).
* The web room: ``recordings.routes.router`` (REST), :func:`find_visible` for the QA pages,
  :func:`progress` and :func:`integrity` for the health page.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing as mp
import signal
import sys
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlmodel import Session, select

from accounts.models import Account
from hotline.calls import FinishedCall
from hotline.centres import scope_of
from recordings import access, catalog, sweep, worker
from recordings.db import make_engine, migrate
from recordings.models import Recording
from ticketing.models import CallRecord

if TYPE_CHECKING:
    from ticketing.calls import CallLog

log = logging.getLogger("recordings.service")
PURGE_EVERY_S = 3600.0


def run(settings: Any, workers: int | None = None, *, drain: bool = False, quiet: bool = False,
        lease_s: float | None = None, grammar: list[str] | None = None, stop: Any = None) -> dict[str, Any]:
    """``hotline transcribe``: transcribe the backlog with ``workers`` processes (default: the
    setting), printing progress; with ``drain`` return when the queue is empty, else run until
    Ctrl-C. Returns the final counts."""
    engine = make_engine(settings.db_url)
    migrate(engine)
    engine.dispose()
    n = workers or settings.transcribe_workers

    def show(b: dict[str, Any]) -> None:
        if not quiet:
            print(worker.progress_line(b), file=sys.stderr, flush=True)

    if stop is None:
        stop = mp.get_context("spawn").Event()
    if threading.current_thread() is threading.main_thread():
        # SIGTERM (systemd, docker stop): workers finish their current recording, then all exit
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    return worker.supervise(settings, n, drain=drain, stop=stop, progress=show, lease_s=lease_s, grammar=grammar)


def register_calls(engine: sa.Engine, settings: Any, finished: Sequence[FinishedCall],
                   calls: CallLog | None = None) -> list[int | None]:
    """Finished calls' recordings into the catalog (their files follow with the next spool scan), in
    one transaction; idempotent on each recording's base. Raises: its caller, the call filer,
    keeps the calls in its outbox and retries."""
    return catalog.register_calls(engine, settings, finished, calls)


def register_outbound(engine: sa.Engine, settings: Any, calls: CallLog | None = None, **call: str) -> int | None:
    """A call out's recording into the catalog (:func:`recordings.catalog.register_outbound`'s
    fields); logged, not raised: a callback's end must not break the node that hears it."""
    try:
        return catalog.register_outbound(engine, settings, calls=calls, **call)
    except Exception:
        log.exception("could not register the recording of callback %s", call.get("call_id", ""))
        return None


async def catalog_loop(settings: Any, engine: sa.Engine, calls: CallLog | None = None, every_s: float = 3.0,
                       stop: asyncio.Event | None = None, sweep_every_s: float = sweep.SWEEP_EVERY_S) -> None:
    """Scan the spool (and purge past retention, and sweep storage for damaged, missing and orphan
    files: recordings/sweep.py) until cancelled; errors are logged, not raised. The sweep runs after
    a scan, in the same task: it never sees a file the scan is placing."""
    last_purge = 0.0
    loop = asyncio.get_running_loop()
    sweeper = sweep.Sweeper(engine, settings)
    last_sweep = loop.time() - sweep_every_s + min(60.0, sweep_every_s)  # the first a minute after start
    while stop is None or not stop.is_set():
        try:
            await asyncio.to_thread(catalog.collect, engine, settings, None, calls)
            if loop.time() - last_purge > PURGE_EVERY_S:
                await asyncio.to_thread(catalog.purge, engine, settings)
                last_purge = loop.time()
        except Exception:
            log.exception("recordings catalog scan failed")
        if loop.time() - last_sweep >= sweep_every_s:
            last_sweep = loop.time()
            try:
                await asyncio.to_thread(sweeper.run)
            except Exception:
                log.exception("recordings integrity sweep failed")
        await asyncio.sleep(every_s)


def centre_filter(settings: Any, cti: Any, principal: Any) -> sa.ColumnElement[bool] | None:
    """The recordings of the principal's centre (hotline/centres.py) as a condition; None: all.
    A call is the centre's by the queue it came through; an outbound call (回拨, no queue) by the
    seat that made it, placed in a centre by the queues it serves now (``cti``: the bridge, or None)."""
    mine = scope_of(principal.centre, settings.centres)
    if mine.everything:
        return None
    seats = [s for s in settings.seats if cti is not None and mine.has_seat_queues(cti.seat_queues(s))]
    queued = sa.select(CallRecord.uniqueid).where(CallRecord.queue != "")
    return sa.or_(Recording.uniqueid.in_(queued.where(CallRecord.queue.in_(sorted(mine.queues or ())))),
                  sa.and_(Recording.seat.in_(seats), Recording.uniqueid.not_in(queued)))


def rows_of_centre(model: Any, principal: Any, centre: sa.ColumnElement[bool] | None) -> sa.ColumnElement[bool] | None:
    """Access requests or access-log rows (``model``: a table with ``recording_id`` and
    ``username``) of the principal's centre: about its recordings, or, about no recording (a duty
    grant, an export), by its people. None: all."""
    if centre is None:
        return None
    people = sa.select(Account.username).where(Account.centre == principal.centre)
    return sa.or_(model.recording_id.in_(sa.select(Recording.id).where(centre)),
                  sa.and_(model.recording_id.is_(None), model.username.in_(people)))


def in_centre(session: Session, rec: Recording | None, centre: sa.ColumnElement[bool] | None) -> bool:
    return rec is not None and (centre is None or session.exec(
        select(Recording.id).where(Recording.id == rec.id, centre)).first() is not None)


def find_visible(engine: sa.Engine, principal: Any, recording_id: int,
                 centre: sa.ColumnElement[bool] | None = None) -> Recording | None:
    """The recording, if this principal may see it (the QA replay page): role, own calls, centre."""
    with Session(engine, expire_on_commit=False) as session:
        rec = session.get(Recording, recording_id)
        return rec if in_centre(session, rec, centre) and access.may_see(principal, rec) else None


def progress(engine: sa.Engine) -> dict[str, Any]:
    return worker.backlog(engine)


def integrity(engine: sa.Engine) -> dict[str, Any]:
    """The storage's health for a probe: files found gone or changed after they were stored
    (``state`` ``down`` while any), orphans, files not checked yet; ``detail`` in Chinese."""
    return sweep.health(engine)


__all__ = ["catalog_loop", "centre_filter", "find_visible", "in_centre", "integrity", "migrate", "progress",
           "register_calls", "register_outbound", "rows_of_centre", "run"]
