"""recordings' public surface: what the wiring calls.

* ``hotline transcribe [-w N]`` → :func:`run` (``run(settings, workers=N)``): N worker processes
  on the durable queue, a progress line on the terminal, Ctrl-C stops.
* The app's lifespan → :func:`migrate`, then :func:`catalog_loop` as a task (spool scan every few
  seconds, retention purge once an hour), and :func:`bus_listener` added to the CTI bus
  (``bus.add_listener(bus_listener(settings, engine))``) so finished calls are registered with
  their seat, caller and survey.
* The router: ``recordings.routes.router`` (REST) and ``recordings.routes.pages`` (/qa pages).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing as mp
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from recordings import catalog, worker
from recordings.db import make_engine, migrate

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


def bus_listener(settings: Any, engine: sa.Engine) -> Callable[[Any], None]:
    """A synchronous bus listener: registers the recording of each ``CallCompleted``."""

    def on_envelope(env: Any) -> None:
        event = getattr(env, "event", env)
        record = getattr(event, "record", None)
        if type(event).__name__ != "CallCompleted" or record is None or not record.recordings:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            _register(record)
        else:  # the bus calls listeners on the AMI read path: the database write goes to a thread
            loop.run_in_executor(None, _register, record)

    def _register(record: Any) -> None:
        try:
            catalog.register_call(engine, settings, record)
        except Exception:  # never break the bridge for the catalog
            log.exception("could not register the recording of call %s", getattr(record, "call_id", "?"))

    return on_envelope


def register_call(engine: sa.Engine, settings: Any, record: Any) -> int | None:
    return catalog.register_call(engine, settings, record)


async def catalog_loop(settings: Any, engine: sa.Engine, every_s: float = 3.0,
                       stop: asyncio.Event | None = None) -> None:
    """Scan the spool (and purge past retention) until cancelled; errors are logged, not raised."""
    last_purge = 0.0
    loop = asyncio.get_running_loop()
    while stop is None or not stop.is_set():
        try:
            await asyncio.to_thread(catalog.collect, engine, settings)
            if loop.time() - last_purge > PURGE_EVERY_S:
                await asyncio.to_thread(catalog.purge, engine, settings)
                last_purge = loop.time()
        except Exception:
            log.exception("recordings catalog scan failed")
        await asyncio.sleep(every_s)


def progress(engine: sa.Engine) -> dict[str, Any]:
    return worker.backlog(engine)


__all__ = ["bus_listener", "catalog_loop", "migrate", "progress", "register_call", "run", "start"]


def start(app: Any, settings: Any, engine: sa.Engine) -> Callable[[], None]:
    """The app's lifespan: migrate, register finished calls from the bus (``app.state.bus``),
    scan the spool in the background. Returns the stopper."""
    migrate(engine)
    bus = getattr(app.state, "bus", None)
    remove = bus.add_listener(bus_listener(settings, engine)) if hasattr(bus, "add_listener") else None
    task = asyncio.get_running_loop().create_task(catalog_loop(settings, engine))

    def stop() -> None:
        task.cancel()
        if remove is not None:
            remove()

    return stop
