"""One active CTI bridge per Asterisk server: the others stand by and take over when it dies.

Two bridges consuming one Asterisk's AMI would each re-add seats, pause them for wrap-up and file
every call; so the bridge runs only while its node holds the server's **lease** (:mod:`cti.lease`:
a PostgreSQL session advisory lock, or a ``flock`` beside an SQLite database). A
:class:`Candidate` waits for the lease, then starts the bridge (its AMI login resyncs the calls and
seats from Asterisk), confirms the lease every ``check_s`` and stops the bridge as soon as it cannot
(a failed check, or none answered by the deadline). A standby does nothing but ask for the lease.

Why the deadline is safe: the active bridge counts its lease from the moment it *sent* its last
confirmed check. PostgreSQL frees a silent holder's lock only ``dead_s`` after it last heard from
it (TCP keepalives on the lease's connection), so a holder that steps down ``check_s +
timeout_s`` after its last confirmed check is gone before a standby can win, as long as
``check_s + timeout_s < dead_s`` (production refuses otherwise: launch/preflight.py). A holder that
is killed loses its connection (or its ``flock``) at once, and the standby wins at its next try.

:class:`Election` is the pure part (state and rules, the time given by the caller); the candidate
is its edge, with the clock and ``sleep`` injected for the tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

log = logging.getLogger(__name__)


class Role(StrEnum):
    STANDBY = "standby"
    ACTIVE = "active"


class Lease(Protocol):
    """One Asterisk server's lease as a backend holds it (:mod:`cti.lease`)."""

    name: str

    async def acquire(self) -> int | None:
        """Take the lease if it is free: the new term (one more than the last holder's), else None."""
        ...

    async def check(self) -> bool:
        """Whether this process still holds the lease (False: lost, or cannot tell)."""
        ...

    async def release(self) -> None:
        """Give the lease back (a graceful stop)."""
        ...

    def abandon(self) -> None:
        """Part with the lease's connection without waiting on it (it may hang on a dead network)."""
        ...


@dataclass
class Election:
    """A candidate's state: its role, its term, and when its lease was last confirmed. No I/O.

    ``last_ok`` is when the last *confirmed* request (the acquisition or a check) was sent: the
    lease is surely ours up to then, and is given up ``check_s + timeout_s`` later unless a check
    sent meanwhile is confirmed.
    """

    check_s: float
    timeout_s: float
    role: Role = Role.STANDBY
    term: int = 0
    last_ok: float = 0.0
    won_count: int = 0
    stepped_down_count: int = 0
    reason: str = ""  # why the last step-down happened, for the health page

    @property
    def active(self) -> bool:
        return self.role is Role.ACTIVE

    def won(self, term: int, asked_at: float) -> None:
        self.role, self.term, self.last_ok = Role.ACTIVE, term, asked_at
        self.won_count += 1
        self.reason = ""

    def confirmed(self, asked_at: float) -> None:
        if self.active:
            self.last_ok = max(self.last_ok, asked_at)

    def next_check_at(self) -> float:
        return self.last_ok + self.check_s

    def deadline(self) -> float:
        """Past this, without a newer confirmation, the active bridge must have stopped."""
        return self.last_ok + self.check_s + self.timeout_s

    def expired(self, now: float) -> bool:
        return self.active and now >= self.deadline()

    def stepped_down(self, reason: str) -> None:
        if self.active:
            self.stepped_down_count += 1
        self.role, self.reason = Role.STANDBY, reason


class Candidate:
    """Waits for the lease, runs the bridge while it holds it (``on_active(term)``), stops it
    (``on_standby(term)``) the moment it may no longer be sure of it."""

    def __init__(
        self,
        lease: Lease,
        *,
        on_active: Callable[[int], Awaitable[None]],
        on_standby: Callable[[int], Awaitable[None]],
        check_s: float = 1.0,
        timeout_s: float = 1.0,
        acquire_timeout_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        label: str = "CTI lease",
    ) -> None:
        self.lease = lease
        self.label = label  # what the log calls it: the bridge's lease, or the web nodes' duty
        self.on_active = on_active
        self.on_standby = on_standby
        self.election = Election(check_s, timeout_s)
        # a standby's try may open a connection first (libpq's connect_timeout is 2 s at least)
        self.acquire_timeout_s = acquire_timeout_s if acquire_timeout_s is not None else max(3.0, timeout_s)
        self.clock = clock
        self.wall = wall
        self.sleep = sleep
        self.since = wall()  # when the current role began (wall clock: shown to people)
        self._trouble = ""  # the last reason a standby could not ask (logged once, not every second)
        self._waiting = False

    @property
    def active(self) -> bool:
        return self.election.active

    def status(self) -> dict[str, Any]:
        """For the node's health (``CtiService.health()["leader"]``)."""
        e = self.election
        return {
            "role": e.role.value, "term": e.term or None, "lease": self.lease.name,
            "since": datetime.fromtimestamp(self.since, UTC).isoformat(timespec="seconds"),
            "won": e.won_count, "stepped_down": e.stepped_down_count, "reason": self._trouble or e.reason,
        }

    # ------------------------------------------------------------------ one step each

    async def campaign(self) -> bool:
        """One try for the lease; True when this candidate won it and its bridge started."""
        if self.active:
            return True
        asked = self.clock()
        try:
            done, term = await self._within(self.lease.acquire(), self.acquire_timeout_s)
        except Exception as exc:  # the database is away: stay standby, try again
            return self._cannot_ask(f"租约不可用：{type(exc).__name__}: {exc}"[:200])
        if not done:
            return self._cannot_ask(f"租约请求 {self.acquire_timeout_s:g} 秒无应答")
        if self._trouble:
            log.info("%s %s reachable again", self.label, self.lease.name)
            self._trouble = ""
        if term is None:
            if not self._waiting:  # once per wait, not every second
                log.info("%s %s held by another node: standing by", self.label, self.lease.name)
                self._waiting = True
            return False
        self._waiting = False
        self.election.won(term, asked)
        self.since = self.wall()
        log.warning("%s %s won: term %d; this node becomes the active one", self.label, self.lease.name, term)
        try:
            await self.on_active(term)
        except Exception as exc:
            log.exception("CTI bridge did not start (term %d): giving the lease up", term)
            await self._step_down(f"话务桥启动失败：{exc}"[:200])
            return False
        return True

    async def hold(self) -> bool:
        """Wait for the next check and make it; False when the bridge had to step down."""
        e = self.election
        await self.sleep(max(0.0, e.next_check_at() - self.clock()))
        asked = self.clock()
        # late (the bridge's start or a stalled loop held us up): the lease lives with its session (its
        # flock), so a check that session still answers proves it was never lost; one more timeout for it
        limit = e.deadline() - asked if not e.expired(asked) else e.timeout_s
        try:
            done, held = await self._within(self.lease.check(), limit)
        except Exception as exc:
            done, held = True, False
            log.error("%s %s check failed: %s", self.label, self.lease.name, exc)
        if done and held:
            e.confirmed(asked)
            return True
        await self._step_down("租约已失去" if done else f"租约确认 {e.timeout_s:g} 秒无应答")
        return False

    async def run(self) -> None:
        """Campaign while standing by, hold while active, until cancelled (then resign)."""
        try:
            while True:
                if self.active:
                    if not await self.hold():
                        await self.sleep(self.election.check_s)  # stepped down: not straight back
                elif not await self.campaign():
                    await self.sleep(self.election.check_s)
        finally:
            await self.resign()

    async def resign(self) -> None:
        """A graceful stop: the bridge first, then the lease (a standby may take over at once)."""
        if self.active:
            term = self.election.term
            self.election.stepped_down("本节点停止")
            await self._stop_bridge(term)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.lease.release(), self.election.timeout_s)
        self.lease.abandon()

    # ------------------------------------------------------------------ internals

    async def _step_down(self, reason: str) -> None:
        term = self.election.term
        self.election.stepped_down(reason)
        self.since = self.wall()
        log.error("%s %s lost (term %d): %s; this node stops and stands by", self.label, self.lease.name, term, reason)
        await self._stop_bridge(term)  # first: no AMI consumed past this point
        self.lease.abandon()  # then the connection: a later try opens a new one

    async def _stop_bridge(self, term: int) -> None:
        try:
            await self.on_standby(term)
        except Exception:
            log.exception("CTI bridge did not stop cleanly (term %d)", term)

    def _cannot_ask(self, reason: str) -> bool:
        if reason != self._trouble:
            log.warning("%s %s: %s; standing by", self.label, self.lease.name, reason)
            self._trouble = reason
        self.lease.abandon()  # a half-open connection is not reused
        return False

    async def _within(self, aw: Awaitable[Any], limit: float) -> tuple[bool, Any]:
        """(True, its result) if ``aw`` finished within ``limit`` (of the injected clock), else
        (False, None) at once: the lease's thread may hang on a dead network, the decision may not."""
        task = asyncio.ensure_future(aw)
        timer = asyncio.ensure_future(self.sleep(max(0.0, limit)))
        try:
            await asyncio.wait({task, timer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            timer.cancel()
            finished = task.done()
            if not finished:
                task.cancel()
                task.add_done_callback(_quiet)  # what it raises once cancelled is of no interest now
        return (True, task.result()) if finished else (False, None)


def _quiet(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()
