"""The candidate's rules (cti/leader.py) on an injected clock and a fake lease: a standby only asks;
the winner starts its bridge with its term; the bridge stops before the lease could be anyone
else's (a failed check at once, an unanswered one by the deadline); a graceful stop gives it back."""

from __future__ import annotations

import asyncio
import heapq
from typing import Any

import pytest

from cti.leader import Candidate, Election, Role

pytestmark = pytest.mark.timeout(20)


class Clock:
    """Virtual time: ``sleep`` waits for :meth:`tick`, which lets every task run until it sleeps or
    waits, then moves time to the earliest wake-up (a timer cancelled meanwhile moves nothing)."""

    def __init__(self) -> None:
        self.t = 1000.0
        self._wakeups: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = 0

    def __call__(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        fut = asyncio.get_running_loop().create_future()
        self._seq += 1
        heapq.heappush(self._wakeups, (self.t + max(0.0, seconds), self._seq, fut))
        await fut

    async def tick(self) -> None:
        for _ in range(30):  # the fake lease does no I/O: a few turns and every task is waiting
            await asyncio.sleep(0)
        while self._wakeups:
            when, _, fut = heapq.heappop(self._wakeups)
            if not fut.done():
                self.t = max(self.t, when)
                fut.set_result(None)
                return


class FakeLease:
    """One lease shared by fake candidates: ``holder`` holds it; ``answer`` is how checks go."""

    name = "127.0.0.1:5038"

    def __init__(self, shared: dict[str, Any] | None = None, me: str = "a") -> None:
        self.shared = shared if shared is not None else {"holder": None, "term": 0}
        self.me = me
        self.answer = "ok"  # "ok" | "lost" | "error" | "hang"
        self.acquire_answer = "ok"  # "ok" | "error" | "hang"
        self.tries = 0
        self.tried_at: list[float] = []
        self.clock: Clock = Clock()  # the test's, set by candidate()
        self.log: list[str] = []
        self._hang = asyncio.Event()

    async def acquire(self) -> int | None:
        self.tries += 1
        self.tried_at.append(self.clock())
        if self.acquire_answer == "error":
            raise ConnectionError("database away")
        if self.acquire_answer == "hang":
            await self._hang.wait()
        if self.shared["holder"] is not None:
            return None
        self.shared["holder"] = self.me
        self.shared["term"] += 1
        return self.shared["term"]

    async def check(self) -> bool:
        if self.answer == "hang":
            await self._hang.wait()
        if self.answer == "error":
            raise ConnectionError("server closed the connection")
        return self.answer == "ok" and self.shared["holder"] == self.me

    async def release(self) -> None:
        self.log.append("release")
        self._free()

    def abandon(self) -> None:
        self.log.append("abandon")
        self._free()

    def _free(self) -> None:
        if self.shared["holder"] == self.me:
            self.shared["holder"] = None


class Bridge:
    """What the node does on winning and losing, with the fake time of each."""

    def __init__(self, clock: Clock, lease: FakeLease) -> None:
        self.clock, self.lease = clock, lease
        self.events: list[tuple[str, int, float]] = []
        self.fail_start = False

    async def on_active(self, term: int) -> None:
        self.events.append(("active", term, self.clock()))
        if self.fail_start:
            raise RuntimeError("AMI secret unreadable")

    async def on_standby(self, term: int) -> None:
        # the lease is still held while the bridge stops: nobody may take over before it has
        assert self.lease.shared["holder"] == self.lease.me
        self.events.append(("standby", term, self.clock()))


def candidate(clock: Clock, lease: FakeLease, **kw: Any) -> tuple[Candidate, Bridge]:
    bridge = Bridge(clock, lease)
    lease.clock = clock
    c = Candidate(lease, on_active=bridge.on_active, on_standby=bridge.on_standby, check_s=1.0, timeout_s=1.0,
                  acquire_timeout_s=3.0, clock=clock, wall=clock, sleep=clock.sleep, **kw)
    return c, bridge


async def until(clock: Clock, pred, ticks: int = 500) -> None:
    for _ in range(ticks):
        if pred():
            return
        await clock.tick()
    raise AssertionError("not reached")


async def drive(clock: Clock, coro) -> Any:
    """Run one step of the candidate to its end on virtual time."""
    task = asyncio.create_task(coro)
    await until(clock, task.done)
    return task.result()


async def stop(task: asyncio.Task) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


# --- the pure part ----------------------------------------------------------------------------

def test_the_election_counts_the_lease_from_when_the_last_confirmed_request_was_sent() -> None:
    e = Election(check_s=1.0, timeout_s=1.0)
    assert e.role is Role.STANDBY and not e.expired(10**9)  # a standby has nothing to lose
    e.won(term=7, asked_at=100.0)
    assert (e.role, e.term, e.next_check_at(), e.deadline()) == (Role.ACTIVE, 7, 101.0, 102.0)
    assert not e.expired(101.99) and e.expired(102.0)
    e.confirmed(asked_at=101.0)
    assert e.deadline() == 103.0
    e.confirmed(asked_at=100.5)  # a late answer to an older check moves nothing back
    assert e.deadline() == 103.0
    e.stepped_down("租约已失去")
    assert (e.role, e.stepped_down_count, e.reason) == (Role.STANDBY, 1, "租约已失去")
    e.confirmed(asked_at=200.0)  # a standby's confirmation means nothing
    assert e.last_ok == 101.0


# --- the candidate on a fake lease --------------------------------------------------------------

async def test_a_standby_only_asks_every_check_interval_and_wins_when_the_holder_is_gone() -> None:
    clock, shared = Clock(), {"holder": "other", "term": 4}
    c, bridge = candidate(clock, FakeLease(shared))
    assert await drive(clock, c.campaign()) is False and bridge.events == []
    task = asyncio.create_task(c.run())
    await until(clock, lambda: c.lease.tries >= 7)
    assert bridge.events == [] and c.status()["role"] == "standby"
    gaps = {round(b - a, 3) for a, b in zip(c.lease.tried_at[1:], c.lease.tried_at[2:], strict=False)}
    assert gaps == {1.0}  # once a second (the loop's first try was at once), no busier
    shared["holder"] = None  # the holder died: its lock went with its connection
    freed = clock.t
    await until(clock, lambda: bridge.events)
    [(what, term, at)] = bridge.events
    assert (what, term) == ("active", 5) and at - freed <= 1.0  # the next try wins, with the next term
    status = c.status()
    assert (status["role"], status["term"], status["won"], status["lease"]) == ("active", 5, 1, "127.0.0.1:5038")
    await stop(task)
    assert bridge.events[-1][:2] == ("standby", 5) and shared["holder"] is None  # given back on the way out
    assert c.lease.log[0] == "release"


async def test_a_failed_check_stops_the_bridge_at_once_then_the_lease_is_let_go() -> None:
    clock, lease = Clock(), FakeLease()
    c, bridge = candidate(clock, lease)
    assert await drive(clock, c.campaign()) is True
    won_at = clock.t
    task = asyncio.create_task(c.run())
    await until(clock, lambda: clock.t >= won_at + 5)  # confirmed, again and again
    assert [e[0] for e in bridge.events] == ["active"]
    lease.answer = "error"  # pg_terminate_backend: the next SELECT 1 fails
    cut = clock.t
    await until(clock, lambda: len(bridge.events) >= 2)
    assert bridge.events[1][:2] == ("standby", 1) and bridge.events[1][2] - cut <= 1.0  # within one interval
    assert lease.log[:1] == ["abandon"] and c.status()["stepped_down"] == 1
    lease.answer = "ok"
    await until(clock, lambda: len(bridge.events) == 3)  # free again (its session ended): won again, next term
    assert bridge.events[2][:2] == ("active", 2) and bridge.events[2][2] - bridge.events[1][2] == 1.0
    await stop(task)


async def test_an_unanswered_check_stops_the_bridge_by_the_deadline_before_anyone_could_take_over() -> None:
    clock, lease = Clock(), FakeLease()
    c, bridge = candidate(clock, lease)
    task = asyncio.create_task(c.run())
    await until(clock, lambda: bridge.events)
    await until(clock, lambda: clock.t >= 1003.0)
    last_ok = c.election.last_ok
    lease.answer = "hang"  # the network is gone: the SELECT 1 never comes back
    await until(clock, lambda: len(bridge.events) == 2)
    stopped_at = bridge.events[1][2]
    # PostgreSQL frees a silent holder's lock dead_s (4) after the last request it got: stopped before
    assert stopped_at <= last_ok + 1.0 + 1.0 + 1.0  # the check then in flight may have been confirmed first
    assert stopped_at - last_ok < 4.0 and "无应答" in c.status()["reason"]
    await stop(task)


async def test_a_late_check_still_holds_if_the_leases_session_answers() -> None:
    # the bridge's start took longer than the interval: the same session answering proves the lease
    clock, lease = Clock(), FakeLease()
    c, bridge = candidate(clock, lease)
    assert await drive(clock, c.campaign())
    clock.t += 5.0
    assert await drive(clock, c.hold()) is True and c.active
    lease.answer = "lost"
    assert await drive(clock, c.hold()) is False and not c.active and bridge.events[-1][0] == "standby"


async def test_a_bridge_that_cannot_start_gives_the_lease_back_and_a_database_away_is_a_standby() -> None:
    clock, lease = Clock(), FakeLease()
    c, bridge = candidate(clock, lease)
    bridge.fail_start = True
    assert await drive(clock, c.campaign()) is False
    assert [e[0] for e in bridge.events] == ["active", "standby"] and lease.shared["holder"] is None
    bridge.fail_start, lease.acquire_answer = False, "error"
    assert await drive(clock, c.campaign()) is False and "database away" in c.status()["reason"]
    lease.acquire_answer = "hang"
    before = clock.t
    assert await drive(clock, c.campaign()) is False and clock.t - before == pytest.approx(3.0)  # bounded, not stuck
    assert c.status()["role"] == "standby"


async def test_two_candidates_on_one_lease_elect_one_and_the_other_takes_over_when_it_resigns() -> None:
    clock, shared = Clock(), {"holder": None, "term": 0}
    a, bridge_a = candidate(clock, FakeLease(shared, "a"))
    b, bridge_b = candidate(clock, FakeLease(shared, "b"))
    tasks = [asyncio.create_task(a.run()), asyncio.create_task(b.run())]
    await until(clock, lambda: bridge_a.events or bridge_b.events)
    await until(clock, lambda: clock.t >= 1010.0)
    actives = [x for x in (a, b) if x.active]
    assert len(actives) == 1  # never both
    first, second = (a, b) if a.active else (b, a)
    resigned = clock.t
    await stop(tasks[0] if first is a else tasks[1])
    await until(clock, lambda: second.active)
    assert clock.t - resigned <= 1.0 and second.election.term == 2  # at its next try
    await stop(tasks[1] if first is a else tasks[0])
