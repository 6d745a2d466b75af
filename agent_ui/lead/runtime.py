"""The lead's alert feed: the bus and the clock drive the alert engine (agent_ui/alerts.py, pure),
whose alerts go back out on the bus; seat spells and acknowledgements go to the :class:`LeadStore`,
open emergencies come from the ticket store's digest, today's seat totals from the call log.

A centre of several web nodes raises each alert once and writes each spell once: only the node on
duty (``launch.compose``: the one that holds the centre's duty lease) runs the rules. The others
keep the alerts it publishes (:meth:`AlertEngine.adopt <agent_ui.alerts.AlertEngine.adopt>`), so
every node lists them, and send a lead's acknowledgement to it over the bus
(:class:`LeadAlertAck`). The node that takes the duty over goes on from the alerts it kept.

Runs on the loop that CTI and AGI share: the CTI bridge's views are read there (it mutates them
there), every database call goes to a thread.

What each lead sees of it is their centre's (hotline/centres.py, applied by the routes).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

import sqlalchemy as sa

from agent_ui.alerts import ALERT_SOURCES, Alert, AlertEngine, AlertRules
from agent_ui.lead.store import LeadStore
from hotline.bus import BusLagged, DomainEvent, InProcessBus, Subscription
from hotline.settings import Settings
from ticketing.calls import CallLog
from ticketing.digest import Digest

if TYPE_CHECKING:
    from cti.service import Live

log = logging.getLogger(__name__)

TICK_S = 0.5
EMERGENCY_POLL_S = 10.0
TOTALS_TTL_S = 5.0
# what a node not on duty keeps of the bus's alert sources, to replay if it takes the duty over: the
# node on duty may have died after an event and before its alert went out (a lease lapses in 5 s)
CATCH_UP_S = 60.0
SPELLS_MAX = 50_000  # spells kept for the database while it refuses them (some hours of a 500-seat centre)
SPELL_RETRY_S = (1.0, 5.0, 30.0)
STOP_WAIT_S = 10.0

Spell = tuple[str, str, str, str, float, float]  # seat, operator, state, reason, start, end
SpellRow = tuple[str, str, str, str, datetime, datetime]  # as stored (LeadStore.add_spells)
# the database away, locked or timing out: a round waits and is tried again. Any other refusal is for
# what a spell holds (a value too long for PostgreSQL's column): its round is stored spell by spell
AWAY = (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError, OSError)


@dataclass(frozen=True, slots=True, kw_only=True)
class LeadAlert(DomainEvent):
    """An alert raised (or acknowledged) here, for every lead's wallboard."""

    type: ClassVar[str] = "lead_alert"
    alert: dict[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class LeadAlertAck(DomainEvent):
    """A lead acknowledged an alert on a node that is not on duty: the node on duty logs it once."""

    type: ClassVar[str] = "lead_alert_ack"
    alert_id: int
    by: str


@dataclass
class LeadConfig:
    rules: AlertRules = field(default_factory=AlertRules)
    tz: str = "Asia/Shanghai"

    @classmethod
    def from_settings(cls, settings: Settings) -> LeadConfig:
        rules = AlertRules(busy_limit_s=settings.lead_busy_limit_s, ring_limit_s=settings.lead_ring_limit_s)
        return cls(rules, settings.cti_timezone)


class LeadRuntime:
    """Feeds the alert engine from the bus and the clock; publishes what it raises."""

    def __init__(self, config: LeadConfig, store: LeadStore, bus: InProcessBus, cti: Live | None,
                 digest: Digest, calls: CallLog, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.store = store
        self.bus = bus
        self.cti = cti
        self.digest = digest
        self.calls = calls
        self.clock = clock
        self.engine = AlertEngine(config.rules)
        self._tasks: list[asyncio.Task[None]] = []
        self._started = clock()
        self._spells: dict[str, tuple[str, str, str, float]] = {}  # seat → (state, reason, operator, since)
        self._last_completed = 0.0
        self._totals: tuple[tuple[datetime, float], float, dict[str, dict[str, float]]] | None = None
        self.on_duty = True  # alone, or holding the centre's duty lease: the rules run here
        self._heard: deque[tuple[float, dict[str, Any]]] = deque()  # alert sources while not on duty
        self._acks_sent: dict[int, str] = {}  # acknowledged here, not yet seen logged by the node on duty
        self._unstored: deque[SpellRow] = deque()  # closed spells for the writer task, stored in rounds
        self._in_flight = 0  # spells of the round being written
        self._spells_due: asyncio.Event | None = None  # a spell is waiting for the writer
        self._closing: asyncio.Event | None = None  # stop(): the writer writes what waits, then ends
        self._writer: asyncio.Task[None] | None = None
        self.spells_lost = 0

    def take_duty(self, on: bool) -> None:
        """On duty from now (the rules run here, from the seats as they are) or not (follow the one that is).

        Taking it over from a node that died: the alerts of the last moments' events that it never
        published are raised here, and the acknowledgements sent to it that it never logged are logged."""
        if on and not self.on_duty:
            self._seed()
            self._catch_up()
        self.on_duty = on

    def _catch_up(self) -> None:
        self._forget_heard()
        caught = self.engine.catch_up(msg for _, msg in self._heard)
        self._heard.clear()
        if caught:
            log.warning("lead alerts: %d raised on taking the duty over (the last node on duty had not)",
                        len(caught))
        self._publish(caught)
        acks, self._acks_sent = self._acks_sent, {}
        for alert_id, who in acks.items():  # take_duty is called on the loop (launch.compose)
            alert = self.engine.alerts.get(alert_id)
            if alert is not None:
                self._tasks.append(asyncio.get_running_loop().create_task(self._log_sent_ack(alert, who)))

    async def _log_sent_ack(self, alert: Alert, who: str) -> None:
        try:
            await asyncio.to_thread(self._log_ack, alert, who)
        except Exception:
            log.exception("lead alerts: acknowledgement of alert %d not logged", alert.id)
            return
        self._publish([alert])

    def _forget_heard(self) -> None:
        horizon = self.clock() - CATCH_UP_S
        while self._heard and self._heard[0][0] < horizon:
            self._heard.popleft()

    def _publish(self, alerts: Iterable[Alert]) -> None:
        for a in alerts:
            self.bus.publish_nowait(LeadAlert(at=a.at, alert=a.view()))

    async def start(self) -> None:
        self._seed()
        self._spells_due, self._closing = asyncio.Event(), asyncio.Event()
        self._tasks = [asyncio.create_task(self._listen(), name="lead-alerts"),
                       asyncio.create_task(self._tick(), name="lead-tick")]
        self._writer = asyncio.create_task(self._store_spells(), name="lead-spells")

    def _seed(self) -> None:
        if self.cti is not None:
            views = self.cti.seats()
            self.engine.seed_seats(views)
            for v in views:
                self._spells[str(v["seat"])] = (str(v["state"]), str(v.get("reason") or ""),
                                                str(v.get("operator") or ""), float(v.get("since") or self.clock()))

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        if self._writer is not None and self._closing is not None and self._spells_due is not None:
            self._closing.set()  # the spells of the last moments are stored before the node ends
            self._spells_due.set()
            try:
                await asyncio.wait_for(self._writer, STOP_WAIT_S)
            except TimeoutError:
                log.warning("lead: %d seat spells not stored within %.0f s of stop",
                            len(self._unstored) + self._in_flight, STOP_WAIT_S)
            except Exception:
                log.exception("lead: the seat spells' writer failed")

    async def _listen(self) -> None:
        sub = self.bus.subscribe(maxsize=10_000)
        try:
            while True:
                try:
                    await self._follow(sub)
                except BusLagged as lag:  # a burst (live transcripts, a resync) outran it: go on, said
                    log.warning("lead alerts fell behind the bus after seq %d; events were skipped", lag.last_seq)
        finally:
            sub.close()

    async def _follow(self, sub: Subscription) -> None:
        async for env in sub:
            msg = env.message()
            if msg.get("type") == "lead_alert":
                if not self.on_duty:
                    alert = self.engine.adopt(msg["alert"])
                    if alert.acked_at is not None:
                        self._acks_sent.pop(alert.id, None)  # logged by the node on duty
                continue
            if msg.get("type") == "lead_alert_ack":
                if self.on_duty:
                    await self._ack_for(int(msg["alert_id"]), str(msg["by"]))
                continue
            if not self.on_duty:
                if msg.get("event") in ALERT_SOURCES:  # the events AlertEngine.feed raises alerts from
                    self._heard.append((self.clock(), msg))
                    self._forget_heard()
                continue
            if msg.get("event") == "CallCompleted":
                self._last_completed = self.clock()  # the seat totals are stale now
            try:
                self._publish(self.engine.feed(msg))
                if msg.get("event") == "SeatStateChanged":
                    closed = self._spell(msg)
                    if closed is not None:
                        self._keep_spell(closed)
            except Exception:
                log.exception("alert rule failed on %s", msg.get("event"))

    async def _tick(self) -> None:
        next_poll = 0.0
        while True:
            await asyncio.sleep(TICK_S)
            if not self.on_duty:
                continue
            now = self.clock()
            try:
                self._publish(self.engine.check(now, self.cti.queues() if self.cti is not None else ()))
                if now >= next_poll:
                    next_poll = now + EMERGENCY_POLL_S
                    # the ticket store publishes nothing on the bus: the last day's open emergencies
                    since = datetime.fromtimestamp(self._started, UTC) - timedelta(days=1)
                    for e in await asyncio.to_thread(self.digest.emergencies, since):
                        self._publish(self.engine.emergency(e.id, e.number, e.title, e.at))
            except Exception:
                log.exception("lead alert tick failed")

    def seat_totals(self, since: datetime) -> dict[str, dict[str, float]]:
        """Today's calls and talk per seat, cached a moment: every bus message refreshes every lead's
        board, and the call log only changes when a call ends."""
        key = (since, self._last_completed)
        cached = self._totals
        if cached and cached[0] == key and self.clock() - cached[1] < TOTALS_TTL_S:
            return cached[2]
        totals = _seat_totals(self.calls, since)
        self._totals = (key, self.clock(), totals)
        return totals

    def _spell(self, msg: dict[str, Any]) -> Spell | None:
        """A seat changed state: the spell it leaves (seat, operator, state, reason, start, end), if any."""
        seat, at = str(msg["seat"]), float(msg.get("at") or self.clock())
        before = self._spells.get(seat)
        self._spells[seat] = (str(msg["state"]), str(msg.get("reason") or ""),
                              str(msg.get("operator") or (before[2] if before else "")), at)
        if before is None or before[0] == "signed_out" or at <= before[3]:
            return None
        state, reason, operator, since = before
        return seat, operator, state, reason, since, at

    def _keep_spell(self, spell: Spell) -> None:
        """For the writer task: the bus is not held up by the database, and a burst's spells share a
        transaction (a commit each was half the CPU of the node on duty in bench/screen_pop.py)."""
        seat, operator, state, reason, start, end = spell
        try:
            row = (seat, operator, state, reason, datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC))
        except (ValueError, OverflowError, OSError):  # a time no clock gives: this spell alone is lost
            self.spells_lost += 1
            log.error("lead: seat %s's %s spell has no usable times (%r → %r); dropped", seat, state, start, end)
            return
        self._unstored.append(row)
        self._cap_spells()
        if self._spells_due is not None:
            self._spells_due.set()

    def _cap_spells(self) -> None:
        while len(self._unstored) > SPELLS_MAX:
            self._unstored.popleft()
            self.spells_lost += 1
            if self.spells_lost in (1, 100) or self.spells_lost % 10_000 == 0:
                log.error("lead: the database has refused seat spells for a while; %d dropped, oldest first "
                          "(the seat report misses them)", self.spells_lost)

    async def _store_spells(self) -> None:
        """Store the closed spells, all those waiting in each round. While the database refuses them
        they wait and are tried again; at stop, what waits is written before the task ends."""
        assert self._spells_due is not None and self._closing is not None
        failures = 0
        while True:
            if not self._unstored:
                if self._closing.is_set():
                    return
                await self._spells_due.wait()
                self._spells_due.clear()
                continue
            refused = await self._store_round()
            if refused is None:
                failures = 0
                continue
            if self._closing.is_set():
                log.warning("lead: %d seat spells not stored at stop: %s", len(self._unstored), refused)
                return
            wait = SPELL_RETRY_S[min(failures, len(SPELL_RETRY_S) - 1)]
            failures += 1
            log.warning("lead: %d seat spells not stored (%s); trying again in %.0f s", len(self._unstored),
                        refused, wait)
            with contextlib.suppress(TimeoutError):  # stop() ends the wait: one more try, then done
                async with asyncio.timeout(wait):
                    await self._closing.wait()

    async def _store_round(self) -> Exception | None:
        """Every spell waiting, in one transaction. With the database away they wait again, before
        those kept meanwhile; refused for what one holds, the round is stored spell by spell."""
        batch, self._unstored = self._unstored, deque()
        self._in_flight = len(batch)
        try:
            await asyncio.to_thread(self.store.add_spells, list(batch))
        except AWAY as exc:
            self._requeue(batch)
            return exc
        except Exception:
            log.exception("lead: a round of %d seat spells refused; storing them one by one", len(batch))
            rest, away, refused = await asyncio.to_thread(self._store_each, list(batch))
            self.spells_lost += refused
            if away is not None:
                self._requeue(deque(rest))
                return away
        finally:
            self._in_flight = 0
        return None

    def _requeue(self, batch: deque[SpellRow]) -> None:
        batch.extend(self._unstored)
        self._unstored = batch
        self._cap_spells()

    def _store_each(self, rows: list[SpellRow]) -> tuple[list[SpellRow], Exception | None, int]:
        """Each spell in a transaction of its own; one refused is dropped and said. Returns the spells
        not tried and why, if the database went away meanwhile, and how many were refused."""
        refused = 0
        for k, row in enumerate(rows):
            try:
                self.store.add_spells([row])
            except AWAY as exc:
                return rows[k:], exc, refused
            except Exception as exc:
                refused += 1
                log.error("lead: seat %s's %s spell from %s refused by the database; dropped: %s", row[0], row[2],
                          row[4].isoformat(), exc)
        return [], None, refused

    async def ack(self, alert_id: int, who: str) -> dict[str, Any]:
        """On the loop (the engine and the bus live there); the log row is written in a thread, by
        the node on duty (this one, or the one the acknowledgement is sent to)."""
        if not self.on_duty:
            alert = self.engine.ack(alert_id, who, self.clock())  # shown at once; the duty's publish follows
            self._acks_sent.setdefault(alert_id, who)
            self.bus.publish_nowait(LeadAlertAck(at=self.clock(), alert_id=alert_id, by=who))
            return alert.view()
        return (await self._ack_for(alert_id, who)).view()

    async def _ack_for(self, alert_id: int, who: str) -> Alert:
        known = self.engine.alerts.get(alert_id)
        first = known is not None and known.acked_at is None  # a second click is not logged again
        alert = self.engine.ack(alert_id, who, self.clock())
        if first:
            await asyncio.to_thread(self._log_ack, alert, who)
            self._publish([alert])
        return alert

    def _log_ack(self, alert: Alert, who: str) -> None:
        self.store.log_ack(kind=alert.kind, key=alert.key, title=alert.title, detail=alert.detail,
                           queue=alert.queue, seat=alert.subject_seat,
                           raised_at=datetime.fromtimestamp(alert.at, UTC), acked_by=who,
                           acked_at=datetime.fromtimestamp(alert.acked_at or self.clock(), UTC))


def _seat_totals(call_log: CallLog, since: datetime) -> dict[str, dict[str, float]]:
    """Calls taken and talk time per seat since ``since`` (today)."""
    totals: dict[str, dict[str, float]] = {}
    for c in call_log.between(since):
        if c["seat"] and c["answered"]:
            t = totals.setdefault(str(c["seat"]), {"calls": 0, "talk_s": 0.0})
            t["calls"] += 1
            t["talk_s"] += float(c["talk_s"] or 0)
    return totals


__all__ = ["LeadAlert", "LeadAlertAck", "LeadConfig", "LeadRuntime"]
