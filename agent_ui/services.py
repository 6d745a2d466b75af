"""The in-process services the web app runs, wired to each other: the CTI bridge (AMI → state →
bus → call log) and the FastAGI server (lookup, survey, callback requests, job numbers).

Which ones run is the setting ``services``: several web nodes would run the bridge on one only.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from agent_ui.accounts import Account
from cti.domain import CallRecord, TicketReminder
from hotline.bus import Bus
from hotline.settings import Settings
from ticketing.calls import CallEntry, CallLog

log = logging.getLogger(__name__)

HISTORY_S = 24 * 3600  # the rolling figures look back 24 h
SWEEP_S = 300  # deadline colours are working days: every five minutes is plenty
MAINTAIN_S = 24 * 3600  # SQLite refreshes its planner statistics only when asked


def entry_from(record: CallRecord) -> CallEntry:
    """The bridge's finished call → the call log's row."""
    survey = int(record.survey) if record.survey in ("1", "2", "3") else None
    return CallEntry(
        uniqueid=record.call_id, caller_number=record.caller_num, caller_name=record.caller_name,
        queue=record.queue, seats_rung=record.seats_rung, seat=record.seat,
        offered_at=record.offered_at,
        answered_at=record.answered_at, ended_at=record.ended_at, wait_ms=record.wait_ms,
        within_rule=record.within_rule, talk_s=record.talk_s, hold_s=record.hold_s, abandoned=record.abandoned,
        lost=record.lost, transferred_to=record.transferred_to, conference=record.conference,
        recordings=record.recordings,
        survey=survey, callback_requested=record.callback_requested,
        location=record.variables.get("HL_LOCATION", ""),
    )


def record_from(entry: CallEntry) -> CallRecord:
    return CallRecord(
        call_id=entry.uniqueid, caller_num=entry.caller_number, caller_name=entry.caller_name, queue=entry.queue,
        seats_rung=entry.seats_rung, seat=entry.seat, offered_at=entry.offered_at, answered_at=entry.answered_at,
        ended_at=entry.ended_at, wait_ms=entry.wait_ms, within_rule=entry.within_rule, talk_s=entry.talk_s,
        hold_s=entry.hold_s, abandoned=entry.abandoned, lost=entry.lost,
    )


@dataclass
class Services:
    settings: Settings
    engine: sa.Engine
    tickets: Any  # ticketing.service.TicketService
    bus: Bus
    calls: CallLog = field(init=False)
    cti: Any = None  # cti.service.CtiService when running
    agi: Any = None  # agi.server.FastAgiServer when running
    _agi_lookups: Any = None
    _job_numbers: dict[str, tuple[float, str]] = field(default_factory=dict)
    _reminded: set[tuple[int, str]] = field(default_factory=set)
    _housekeeping: asyncio.Task[None] | None = None

    def __post_init__(self) -> None:
        self.calls = CallLog(self.engine, self.settings.local_area_code)

    # ------------------------------------------------------------------ who sits where
    def seat_of(self, username: str) -> str | None:
        """The seat ``username`` is signed in to. The websocket's audience filter asks this once per
        message per client (2 500 times for a burst of 50 pops): the bridge keeps the map."""
        if self.cti is None:
            return None
        return self.cti.state.operator_seats().get(username)

    def operator_at(self, seat: str) -> str:
        if self.cti is None:
            return ""
        for view in self.cti.seats():
            if view.get("seat") == seat:
                return str(view.get("operator") or "")
        return ""

    def job_number(self, seat: str) -> str:
        """首问负责制: the job number of whoever sits at ``seat`` (cached a minute), else the seat's number."""
        username = self.operator_at(seat)
        if not username:
            return seat
        cached = self._job_numbers.get(username)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        with Session(self.engine) as s:
            account = s.exec(select(Account).where(Account.username == username)).first()
        number = (account.job_number if account else "") or seat
        self._job_numbers[username] = (time.monotonic() + 60, number)
        return number

    # ------------------------------------------------------------------ hooks
    async def _store_call(self, record: CallRecord) -> None:
        entry = entry_from(record)
        if not entry.operator and entry.seat:
            entry = dataclasses.replace(entry, operator=self.operator_at(entry.seat))
        await asyncio.to_thread(self.calls.record, entry)

    async def _store_survey(self, uniqueid: str, caller: str, score: int | None) -> None:
        await asyncio.to_thread(self.calls.record_survey, uniqueid, score, caller)

    async def _store_callback(self, uniqueid: str, caller: str, reason: str, message: str) -> None:
        await asyncio.to_thread(self.calls.request_callback, uniqueid, caller, reason, message)

    # ------------------------------------------------------------------ housekeeping
    def sweep_once(self) -> list[TicketReminder]:
        """Deadline colours: open automatic supervision, and remind once per ticket and colour."""
        fresh = []
        for r in self.tickets.sweep():
            key = (r.ticket_id, r.state)
            if key not in self._reminded:
                self._reminded.add(key)
                fresh.append(TicketReminder(at=time.time(), ticket_id=r.ticket_id, number=r.number, state=r.state,
                                            due=r.due.isoformat(), department_id=r.department_id))
        return fresh

    async def _housekeeping_loop(self) -> None:
        from ticketing.db import maintain

        last_maintain = 0.0
        while True:
            try:
                for reminder in await asyncio.to_thread(self.sweep_once):
                    await self.bus.publish(reminder)
                if time.monotonic() - last_maintain > MAINTAIN_S:
                    await asyncio.to_thread(maintain, self.engine)
                    last_maintain = time.monotonic()
            except Exception:  # housekeeping must never take the app down
                log.exception("ticket sweep failed")
            await asyncio.sleep(SWEEP_S)

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        from ticketing.service import warm_up

        await asyncio.to_thread(warm_up)  # jieba and the geocoder: not on the first caller's lookup
        self._housekeeping = asyncio.create_task(self._housekeeping_loop(), name="ticket-sweep")
        wanted = set(self.settings.services)
        if "cti" in wanted:
            from cti.service import CtiService

            self.cti = CtiService.from_settings(self.settings, bus=self.bus, call_log=self._store_call)
            history = await asyncio.to_thread(self.calls.recent, _since(HISTORY_S))
            taken = self.cti.state.seed_history(record_from(e) for e in history)
            log.info("CTI rolling figures rebuilt from %d logged calls", taken)
            await self.cti.start(wait=None)  # Asterisk may come later: the link keeps trying
        if "agi" in wanted:
            from agi.service import server

            self.agi, self._agi_lookups = server(self.settings, self.tickets, on_survey=self._store_survey,
                                                 on_callback_request=self._store_callback,
                                                 job_number=self.job_number)
            await self.agi.start()

    async def stop(self) -> None:
        if self._housekeeping is not None:
            self._housekeeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._housekeeping
        if self.agi is not None:
            with contextlib.suppress(Exception):
                await self.agi.stop()
            self._agi_lookups.close()
        if self.cti is not None:
            await self.cti.stop()


def _since(seconds: float):
    from datetime import UTC, datetime, timedelta

    return datetime.now(UTC) - timedelta(seconds=seconds)
