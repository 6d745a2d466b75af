"""The CTI bridge's public surface: what other packages import from cti/.

:class:`CtiService` wires the AMI link, the state machines, the bus and the actions. The link
pumps: AMI bytes → typed event (:mod:`cti.protocol`) → :meth:`CtiState.handle
<cti.state.CtiState.handle>` → ``bus.publish_nowait``; the service itself is on no event's path.
The composition root (``launch.compose``) builds it with :meth:`CtiService.from_settings` for
every process that runs the ``cti`` role.

Other packages use:

* ``service.bus`` — subscribe / replay domain events, or listen to them (websockets, the call-log
  writer: each :class:`~cti.domain.CallCompleted` carries a :class:`hotline.calls.FinishedCall`);
* ``service.queues()``, ``service.seats()``, ``service.calls()`` — the live views behind
  ``GET /api/queues`` and ``GET /api/seats`` (authentication is the caller's: agent_ui/);
* ``service.job_number_at(seat)`` — the 工号 the AGI announces (首问负责制);
* ``service.actions`` — call control (sign in/out, busy/ready, transfer, conference…).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cti import events as ev
from cti.actions import CtiActions, Dialplan
from cti.desk import BridgeDesk
from cti.domain import DomainEvent, LinkStatus, RosterChanged, SeatState, SeatStateChanged
from cti.link import AmiLink
from cti.replica import CentreLive
from cti.rules import parse_shifts
from cti.seats import WRAPUP_REASON
from cti.spies import Spies
from cti.state import CtiState
from hotline.bus import Bus, Envelope, InProcessBus, follow
from hotline.tasks import stop_task

if TYPE_CHECKING:
    from hotline.settings import Settings

log = logging.getLogger(__name__)

__all__ = ["BridgeDesk", "CentreLive", "CtiService", "Live"]


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
        shifts: list[str] | None = None,
        tz: str = "Asia/Shanghai",
        dialplan: Dialplan | None = None,
        tick_s: float = 0.5,
        clock: Callable[[], float] = time.time,
        link_options: dict[str, Any] | None = None,
        server: str = "",
    ) -> None:
        self.clock = clock
        self.server = server or f"{host}:{port}"  # the Asterisk server's name in the centre (its lease's)
        self._roster_told = -1  # the roster version last published
        self.queue_names = queues
        self.state = state or CtiState(clock=clock, tz=tz)
        # in-process: the link publishes synchronously on the AMI read path, and listeners follow
        self.bus = bus or InProcessBus()
        self.tick_s = tick_s
        self.link = AmiLink(
            host,
            port,
            username,
            secret,
            handle=self._handle,
            publish=self.bus.publish_nowait,
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
        self._unlisten: Callable[[], None] | None = None
        # the live transcript: each answered call's legs to a listening node (none known: off)
        self.spies = Spies(self.actions.channels_of, self.actions.spy, self._hang_up_spy, self.publish, self._spawn,
                           self.job_number_at, clock)
        self._spying: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[Any]] = set()
        self.resyncs = 0
        self.synced = False  # resynced with Asterisk since the link last came up (what the board shows is whole)
        self.leader: Any = None  # cti.leader.Candidate: the bridge runs while its node holds the server's lease

    @classmethod
    def from_settings(cls, settings: Settings, **kw: Any) -> CtiService:
        dialplan = Dialplan(hotline_number=settings.hotline_number, system_name=settings.asterisk_systemname,
                            department_lines=tuple(settings.department_lines))
        state = CtiState(
            rule_s=settings.answer_rule_s,
            wrapup_s=settings.cti_wrapup_s,
            tz=settings.cti_timezone,
            inbound_context=settings.cti_inbound_context,
            outbound_context=dialplan.callback_context,  # where the callbacks it dials run
            clock=kw.get("clock", time.time),  # the service's clock is the state's too
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
            dialplan=dialplan,
            server=settings.cti_lease_name or f"{settings.ami_host}:{settings.ami_port}",
            **kw,
        )

    # ------------------------------------------------------------------ lifecycle

    async def start(self, wait: float | None = 10.0) -> None:
        # listening before the link is up: the first resync's seat changes count too
        self.synced = False
        self._unlisten = self.bus.add_listener(self._wrapup_hold)
        # the listening nodes' heartbeats come from other processes: a subscription, not a listener
        self._spying = asyncio.create_task(follow(self.bus, self.spies.on_envelope, kinds=Spies.KINDS),
                                           name="cti-spies")
        await self.link.start(wait=wait)
        self._ticker = asyncio.create_task(self._tick_loop(), name="cti-tick")

    async def stop(self) -> None:
        if self._ticker:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        await self.link.close()
        if self._unlisten is not None:
            self._unlisten()
            self._unlisten = None
        task, self._spying = self._spying, None
        await stop_task(task)
        for t in list(self._pending):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(t, 2)

    # ------------------------------------------------------------------ views

    def queues(self) -> list[dict]:
        return self.state.queue_views(queues=self.queue_names)

    def seats(self) -> list[dict]:
        return self.state.seat_views()

    def seat_queues(self, seat: str) -> frozenset[str]:
        """The queues a seat serves now: which centre it belongs to (hotline/centres.py)."""
        return self.state.seat_queues(seat)

    def calls(self) -> list[dict]:
        """Live calls (finished ones are in the call log, ticketing/)."""
        return self.state.call_views()

    def health(self) -> dict[str, Any]:
        stats = {**self.link.stats(), "resyncs": self.resyncs, "bus_seq": self.bus.last_seq}
        if self.leader is not None:  # active or standby, its term (the fencing number), since when
            stats["leader"] = self.leader.status()
        return stats

    def operator_seats(self) -> dict[str, str]:
        """operator username → their seat (one shared dict per roster version)."""
        return self.state.operator_seats()

    def job_number_at(self, seat: str) -> str:
        """The 工号 of whoever is signed in at ``seat`` ("" if nobody): the AGI announces it (首问负责制)."""
        s = self.state.seats.get(seat)
        return s.job_number if s is not None and s.signed_in else ""

    # ------------------------------------------------------------------ wiring

    def publish(self, events: list[DomainEvent]) -> None:
        """What the ticks, the resync, the link status and the actions produce, onto the bus."""
        for e in events:
            self.bus.publish_nowait(e)
        self._tell_roster()

    def _handle(self, e: ev.AmiEvent) -> list[DomainEvent]:
        out = self.state.handle(e)
        if self.state.roster_version != self._roster_told:  # in the AMI order: before the pops it routes
            out.append(self._roster_event())
        return out

    def _tell_roster(self) -> None:
        if self.state.roster_version != self._roster_told:
            self.bus.publish_nowait(self._roster_event())

    def _roster_event(self) -> RosterChanged:
        self._roster_told = self.state.roster_version
        return RosterChanged(at=self.clock(), server=self.server, roster=dict(self.state.operator_seats()))

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
        self.synced = True
        log.info(
            "CTI resync: %d members, %d waiting, %d channels; dropped %s, adopted %s, re-adding %d seats; "
            "seats on calls begun before %s",
            len(members),
            len(entries),
            len(channels),
            res.calls_dropped,
            res.calls_adopted,
            len(res.seats_to_restore),
            res.seats_in_calls,
        )
        self.publish(res.events)
        if res.seats_to_restore:
            await self.actions.restore(res.seats_to_restore)

    def _wrapup_hold(self, env: Envelope) -> None:
        """话后处理 is ours (queues.conf wrapuptime = 0): pause the seat in Asterisk meanwhile."""
        e = env.event
        if not isinstance(e, SeatStateChanged):
            return
        seat = self.state.seats.get(e.seat)
        if seat is None or not self.link.logged_in:
            return
        if e.state == SeatState.WRAP_UP and not seat.paused:
            self._spawn(self.actions.wrapup_pause(e.seat))
        elif e.previous == SeatState.WRAP_UP and seat.paused and seat.reason == WRAPUP_REASON:
            self._spawn(self.actions.wrapup_resume(e.seat))

    async def _hang_up_spy(self, channel: str) -> None:
        with contextlib.suppress(Exception):  # gone already: what a spy normally is by then
            await self.actions.hangup(channel)

    def _on_status(self, up: bool, detail: str) -> None:
        if not up:
            self.synced = False
        self.publish([LinkStatus(at=self.clock(), up=up, detail=detail)])

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


# what the web room drives: the bridge in this process, or the centre's bridges through the board
Live = CtiService | CentreLive
