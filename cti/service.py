"""The CTI bridge's public surface: what other packages import from cti/.

:class:`CtiService` wires the AMI link, the state machines, the bus, the call-log hook and the
actions. ``run(settings)`` is what ``hotline cti`` (and ``hotline up``) call.

Other packages use:

* ``service.bus`` — subscribe / replay domain events (websockets, the call-log writer);
* ``service.queues()``, ``service.seats()``, ``service.calls()`` — the live views behind
  ``GET /api/queues`` and ``GET /api/seats`` (authentication is the caller's: agent_ui/);
* ``service.actions`` — call control (sign in/out, busy/ready, transfer, conference…);
* ``call_log=`` — a callable receiving each finished :class:`~cti.domain.CallRecord`
  (ticketing/ persists it; abandoned ones feed the callback list).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cti import events as ev
from cti.actions import CtiActions, Dialplan
from cti.domain import CallCompleted, CallRecord, DomainEvent, LinkStatus, SeatState, SeatStateChanged
from cti.link import AmiLink
from cti.rules import parse_shifts
from cti.state import WRAPUP_REASON, CtiState
from hotline.bus import Bus, InProcessBus

if TYPE_CHECKING:
    from hotline.settings import Settings

log = logging.getLogger(__name__)

CallLogHook = Callable[[CallRecord], Any]


class CtiService:
    def __init__(
        self,
        *,
        host: str,
        port: int,
        username: str,
        secret: str,
        queues: tuple[str, ...] = ("hotline", "hotline_expert"),
        state: CtiState | None = None,
        bus: Bus | None = None,
        call_log: CallLogHook | None = None,
        shifts: list[str] | None = None,
        tz: str = "Asia/Shanghai",
        dialplan: Dialplan | None = None,
        tick_s: float = 0.5,
        clock: Callable[[], float] = time.time,
        link_options: dict[str, Any] | None = None,
    ) -> None:
        self.clock = clock
        self.queue_names = queues
        self.state = state or CtiState(clock=clock, tz=tz)
        self.bus: Bus = bus or InProcessBus()
        self.call_log = call_log
        self.tick_s = tick_s
        self.link = AmiLink(
            host,
            port,
            username,
            secret,
            on_event=self.on_ami_event,
            on_login=self.resync,
            on_status=self._on_status,
            clock=clock,
            **(link_options or {}),
        )
        self.actions = CtiActions(
            self.link,
            self.state,
            queue=queues[0],
            shifts=parse_shifts(shifts or []),
            tz=tz,
            dialplan=dialplan,
            clock=clock,
            publish=self.publish,
        )
        self._ticker: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[Any]] = set()
        self.resyncs = 0

    @classmethod
    def from_settings(cls, settings: Settings, **kw: Any) -> CtiService:
        state = CtiState(
            rule_s=settings.answer_rule_s,
            wrapup_s=settings.cti_wrapup_s,
            tz=settings.cti_timezone,
            inbound_context=settings.cti_inbound_context,
        )
        return cls(
            host=settings.ami_host,
            port=settings.ami_port,
            username=settings.ami_user,
            secret=settings.resolved_ami_secret(),
            queues=(settings.queue_name, settings.specialist_queue),
            state=state,
            shifts=settings.cti_shifts,
            tz=settings.cti_timezone,
            dialplan=Dialplan(hotline_number=settings.hotline_number),
            **kw,
        )

    # ------------------------------------------------------------------ lifecycle

    async def start(self, wait: float | None = 10.0) -> None:
        await self.link.start(wait=wait)
        self._ticker = asyncio.create_task(self._tick_loop(), name="cti-tick")

    async def stop(self) -> None:
        if self._ticker:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        await self.link.close()
        for t in list(self._pending):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(t, 2)

    # ------------------------------------------------------------------ views

    def queues(self) -> list[dict]:
        return self.state.queue_views(queues=self.queue_names)

    def seats(self) -> list[dict]:
        return self.state.seat_views()

    def calls(self) -> list[dict]:
        """Live calls (finished ones are in the call log, ticketing/)."""
        return self.state.call_views()

    def health(self) -> dict[str, Any]:
        return {**self.link.stats(), "resyncs": self.resyncs, "bus_seq": self.bus.last_seq}

    # ------------------------------------------------------------------ wiring

    def publish(self, events: list[DomainEvent]) -> None:
        bus = self.bus
        for e in events:
            if isinstance(bus, InProcessBus):
                bus.publish_nowait(e)
            else:
                self._spawn(bus.publish(e))
            if isinstance(e, CallCompleted) and self.call_log is not None:
                self._write_call_log(e.record)
            elif isinstance(e, SeatStateChanged):
                self._wrapup_hold(e)

    def on_ami_event(self, e: ev.AmiEvent) -> None:
        self.publish(self.state.handle(e))

    async def resync(self) -> None:
        """After every (re)login: reconcile the state with what Asterisk says now."""
        members: list[ev.QueueMember] = []
        entries: list[ev.QueueEntry] = []
        for q in self.queue_names:
            for e in await self.link.query({"Action": "QueueStatus", "Queue": q}):
                if isinstance(e, ev.QueueMember):
                    members.append(e)
                elif isinstance(e, ev.QueueEntry):
                    entries.append(e)
        channels = [
            e for e in await self.link.query({"Action": "CoreShowChannels"}) if isinstance(e, ev.CoreShowChannel)
        ]
        res = self.state.resync(members, entries, channels, self.clock())
        self.resyncs += 1
        log.info(
            "CTI resync: %d members, %d waiting, %d channels; dropped %s, adopted %s, re-adding %d seats",
            len(members),
            len(entries),
            len(channels),
            res.calls_dropped,
            res.calls_adopted,
            len(res.seats_to_restore),
        )
        self.publish(res.events)
        if res.seats_to_restore:
            await self.actions.restore(res.seats_to_restore)

    def _wrapup_hold(self, e: SeatStateChanged) -> None:
        """话后处理 is ours (queues.conf wrapuptime = 0): pause the seat in Asterisk meanwhile."""
        seat = self.state.seats.get(e.seat)
        if seat is None or not self.link.logged_in:
            return
        if e.state == SeatState.WRAP_UP and not seat.paused:
            self._spawn(self.actions.wrapup_pause(e.seat))
        elif e.previous == SeatState.WRAP_UP and seat.paused and seat.reason == WRAPUP_REASON:
            self._spawn(self.actions.wrapup_resume(e.seat))

    def _on_status(self, up: bool, detail: str) -> None:
        self.publish([LinkStatus(at=self.clock(), up=up, detail=detail)])

    def _write_call_log(self, record: CallRecord) -> None:
        try:
            result = self.call_log(record)  # type: ignore[misc]
            if inspect.isawaitable(result):
                self._spawn(result)
        except Exception:
            log.exception("call log hook failed for %s", record.call_id)

    def _spawn(self, aw: Any) -> None:
        task = asyncio.ensure_future(aw)
        self._pending.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Future[Any]) -> None:
        self._pending.discard(task)  # type: ignore[arg-type]
        if not task.cancelled() and task.exception() is not None:
            log.error("CTI background action failed: %s", task.exception())

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(self.tick_s)
            try:
                self.publish(self.state.tick(self.clock()))
            except Exception:
                log.exception("CTI tick failed")


async def run(settings: Settings, *, bus: Bus | None = None, stop: asyncio.Event | None = None, **kw: Any) -> None:
    """``hotline cti``: run the bridge until ``stop`` is set (or the task is cancelled)."""
    service = CtiService.from_settings(settings, bus=bus, **kw)
    await service.start(wait=None)
    log.info("CTI bridge running (AMI %s:%s)", settings.ami_host, settings.ami_port)
    try:
        await (stop.wait() if stop is not None else asyncio.Event().wait())
    finally:
        await service.stop()
