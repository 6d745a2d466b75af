"""hotline/tasks.py: one run shared by the callers of a moment (Coalesced)."""

from __future__ import annotations

import asyncio

import pytest

from hotline.tasks import Coalesced

pytestmark = pytest.mark.timeout(10)


class Counter:
    """A run that reads ``value`` when it starts and takes a while (as a picture posted to Redis)."""

    def __init__(self, delay: float = 0.01) -> None:
        self.value, self.delay, self.started = 0, delay, 0

    async def __call__(self) -> int:
        self.started += 1
        seen = self.value
        await asyncio.sleep(self.delay)
        return seen


async def test_callers_of_one_moment_share_one_run() -> None:
    fn = Counter()
    shared = Coalesced(fn)
    results = await asyncio.gather(*(shared() for _ in range(100)))
    assert results == [0] * 100 and fn.started == 1 and shared.runs == 1


async def test_a_caller_arriving_during_a_run_gets_a_run_that_began_after_it_asked() -> None:
    fn = Counter(delay=0.05)
    shared = Coalesced(fn)
    first = asyncio.create_task(shared())
    await asyncio.sleep(0.01)  # the first run is under way, having read 0
    fn.value = 1  # what the late callers did before asking
    late = await asyncio.gather(*(shared() for _ in range(10)))
    assert await first == 0
    assert late == [1] * 10 and fn.started == 2  # one more run for all ten, not ten


async def test_a_failed_run_fails_its_callers_and_the_next_run_is_fresh() -> None:
    calls = 0

    async def flaky() -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OSError("Redis away")
        return calls

    shared = Coalesced(flaky)
    got = await asyncio.gather(shared(), shared(), return_exceptions=True)
    assert all(isinstance(g, OSError) for g in got)
    assert await shared() == 2


async def test_one_caller_cancelled_does_not_cancel_the_others_run() -> None:
    shared = Coalesced(Counter(delay=0.05))
    a, b = asyncio.create_task(shared()), asyncio.create_task(shared())
    await asyncio.sleep(0.01)
    a.cancel()
    assert await b == 0
    with pytest.raises(asyncio.CancelledError):
        await a
