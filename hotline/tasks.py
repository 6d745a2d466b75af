"""Background tasks done the same way everywhere: stopping one, and sharing one run among callers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar


async def stop_task(task: asyncio.Task[Any] | None) -> None:
    """Cancel ``task`` (if any) and wait for it to end; its cancellation is not an error."""
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


T = TypeVar("T")


class Coalesced(Generic[T]):
    """One run of ``fn`` shared by every caller that asks while none has started: a burst of callers
    costs one run, and each caller still gets a run that *began after it asked* (so what it did just
    before is in the result). A caller arriving while a run is under way waits for the next one.

    Why: the bridge posts its whole live picture after each web node's request, and a burst of 100
    wrap-ups was 100 pictures of every seat, computed and encoded on the loop that reads AMI.

    ``gap_s``: a run starts at least that long after the previous one started. Callers that keep
    coming (clicks spread over a second rather than in one moment) then share one run per gap,
    not one each, at the price of up to ``gap_s`` more wait."""

    def __init__(self, fn: Callable[[], Awaitable[T]], *, gap_s: float = 0.0) -> None:
        self.fn, self.gap_s = fn, gap_s
        self.runs = 0
        self._began = float("-inf")  # when the last run started (the loop's clock)
        self._next: asyncio.Future[T] | None = None  # what the callers not yet served wait on
        self._driver: asyncio.Task[None] | None = None

    async def __call__(self) -> T:
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
            self._next.add_done_callback(_retrieved)
        waiting = self._next
        if self._driver is None:
            self._driver = asyncio.create_task(self._drive(), name="coalesced")
        return await asyncio.shield(waiting)  # one caller cancelled does not cancel the others' run

    async def _drive(self) -> None:
        try:
            loop = asyncio.get_running_loop()
            while self._next is not None:
                # callers of this same moment (and, with a gap, of the rest of it) join the run
                await asyncio.sleep(max(0.0, self._began + self.gap_s - loop.time()))
                waiting, self._next = self._next, None
                self._began = loop.time()
                self.runs += 1
                try:
                    result = await self.fn()
                except asyncio.CancelledError:
                    waiting.cancel()
                    raise
                except Exception as exc:
                    waiting.set_exception(exc)
                else:
                    waiting.set_result(result)
        finally:
            self._driver = None
            if self._next is not None:  # stopped (cancelled) with callers left waiting
                self._next.cancel()
                self._next = None


def _retrieved(fut: asyncio.Future[Any]) -> None:
    # a run's failure goes to its callers; with every caller gone it is not "never retrieved"
    if not fut.cancelled():
        fut.exception()
