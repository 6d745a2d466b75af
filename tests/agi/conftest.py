"""Fixtures of the agi/ tests: the FastAGI server on the configured port with a real ticket store.

``agi_rig(**settings_overrides)`` starts ``agi.service``'s server on settings.agi_host:agi_port
(where the rendered dialplan points) against a fresh SQLite store, records every session and
what the flows handed out (surveys, callback requests, ticket lookups by number and query
code, job numbers asked), and
stops it after the test.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from agi import service
from agi.channel import Channel
from agi.server import FastAgiServer
from hotline.db import make_engine
from tests.agi.fakes import Recorder
from ticketing.context import StoreContext
from ticketing.db import migrate
from ticketing.store import Store


class Clock:
    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


@dataclass
class Session:
    script: str
    uniqueid: str
    callerid: str
    args: tuple[str, ...]
    outcome: str = "running"
    ms: float = 0.0


@dataclass
class Rig:
    server: FastAgiServer
    tickets: Store
    clock: Clock
    surveys: Recorder
    callbacks: Recorder
    sessions: list[Session] = field(default_factory=list)
    found: list[Any] = field(default_factory=list)
    jobs_asked: list[str] = field(default_factory=list)
    _ended: asyncio.Event = field(default_factory=asyncio.Event)

    def of(self, script: str) -> list[Session]:
        return [s for s in self.sessions if s.script == script]

    async def ended(self, script: str, timeout: float) -> Session:
        """The first session of ``script`` once it has ended."""
        async def done() -> Session:
            while True:
                ended = [s for s in self.of(script) if s.outcome != "running"]
                if ended:
                    return ended[0]
                self._ended.clear()
                await self._ended.wait()
        return await asyncio.wait_for(done(), timeout)


def _recorded(rig: Rig, script: str, handler: Callable[[Channel], Awaitable[None]]):
    async def run(ch: Channel) -> None:
        s = Session(script, ch.env.uniqueid, ch.env.callerid, ch.env.args)
        rig.sessions.append(s)
        t0 = time.perf_counter()
        try:
            await handler(ch)
            s.outcome = "done"
        except BaseException as exc:
            s.outcome = type(exc).__name__
            raise
        finally:
            s.ms = (time.perf_counter() - t0) * 1000
            rig._ended.set()
    return run


@pytest.fixture
async def agi_rig(settings, tmp_path) -> AsyncIterator[Callable[..., Awaitable[Rig]]]:
    started: list[tuple[Rig, service.TicketLookups]] = []

    async def start(job_numbers: dict[str, str] | None = None, **overrides: Any) -> Rig:
        engine = make_engine(f"sqlite:///{tmp_path / f'agi-{len(started)}.db'}")
        migrate(engine)
        clock = Clock()
        tickets = Store.on(StoreContext(engine, clock=clock, area_code=settings.local_area_code))
        rig_settings = settings.model_copy(update=overrides)
        surveys, callbacks = Recorder(), Recorder()
        holder: dict[str, Rig] = {}

        def job_number(seat: str) -> str | None:
            holder["rig"].jobs_asked.append(seat)
            return (job_numbers or {}).get(seat)

        lookups = service.TicketLookups(tickets, rig_settings.cti_timezone)
        srv = service.server(rig_settings, lookups, on_survey=surveys, on_callback_request=callbacks,
                             job_number=job_number)
        rig = holder["rig"] = Rig(srv, tickets, clock, surveys, callbacks)
        find = lookups.find

        async def recorded_find(number: str, code: str):
            found = await find(number, code)
            rig.found.append((number, code, found))
            return found

        lookups.find = recorded_find  # type: ignore[method-assign]
        srv.routes = service.routes(rig_settings, lookups, on_survey=surveys, on_callback_request=callbacks,
                                    job_number=job_number)
        srv.routes = {name: _recorded(rig, name, h) for name, h in srv.routes.items()}
        await srv.start()
        started.append((rig, lookups))
        return rig

    yield start
    for rig, lookups in started:
        await rig.server.stop(grace=1)
        lookups.close()
        rig.tickets.engine.dispose()
