"""Background tasks done the same way everywhere: stopping one, and sharing one run among callers;
and the listen queue of the servers Asterisk connects to."""

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


# asyncio.start_server's default queue is 100, and Asterisk connects a burst of calls at once (FastAGI
# lookups, AudioSocket legs): past the queue the kernel drops the SYN, the connect waits a second to
# send it again, and res_agi gives a FastAGI connect 2 s in all. That was the lookups' p99 of 1.1 s in
# bench/screen_pop.py at 200 calls. The kernel caps it at net.core.somaxconn (4 096 on Debian 12).
LISTEN_BACKLOG = 1024

T = TypeVar("T")


class Coalesced(Generic[T]):
    """One run of ``fn`` shared by every caller that asks while none has started: a burst of callers
    costs one run, and each caller still gets a run that *began after it asked* (so what it did just
    before is in the result). A caller arriving while a run is under way waits for the next one.

    Why: a web node without the bridge reads every server's picture from the board (cti.replica),
    some 100 kB of JSON each at 200 seats; its periodic read and whoever asks in the same moment
    share one read."""

    def __init__(self, fn: Callable[[], Awaitable[T]]) -> None:
        self.fn = fn
        self.runs = 0
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
            while self._next is not None:
                await asyncio.sleep(0)  # callers of this same moment join the run
                waiting, self._next = self._next, None
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
