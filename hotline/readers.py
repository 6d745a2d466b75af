"""Threads that run a process's blocking reads for its event loop, cheaper than a thread pool.

Through ``run_in_executor`` or anyio's ``to_thread`` (what FastAPI runs a ``def`` dependency on), a
read costs the loop about as much again as the read itself, or more: some 60 µs of the loop's CPU
and 100 µs in all for each, measured beside :class:`Readers`' 9 and 19 (2026-12-07). The AGI's
lookups (agi.service) and the session read of every web request (hotline.identity) take it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from queue import SimpleQueue
from typing import Any


class Readers:
    """Threads that run blocking reads for the loop: a queue in, the loop's own future out.

    ``run_in_executor`` costs the loop about as much as an AGI lookup's query itself (a concurrent
    future with its condition, a work item, a semaphore, a second future chained to the first, a
    check whether the function is a coroutine); here it is one queue put and one future. One
    thread takes the reads while they flow (more threads only trade the GIL back and forth and
    wake each other); another starts, up to ``workers``, when a read has been running for
    ``stall_s`` and more wait behind it (a slow disk, a lock), or when a read waited that long in
    the queue: in a burst of calls the loop holds the GIL, each read waits for it in turn, and 50
    lookups behind one thread passed their 300 ms timeout (bench/screen_pop.py). A read whose
    caller gave up (timed out, hung up) before a thread took it is not run.
    """

    def __init__(self, workers: int, name: str = "reader", stall_s: float = 0.05) -> None:
        self.workers, self.name, self.stall_s = max(1, workers), name, stall_s
        self._queue: SimpleQueue[Any] = SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._busy_since: float | None = None  # when the read a thread is running began (None: idle)

    @property
    def threads(self) -> int:
        return len(self._threads)

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        now = time.monotonic()
        self._queue.put((loop, done, fn, args, now))
        if len(self._threads) < self.workers:
            busy = self._busy_since
            if not self._threads or (busy is not None and now - busy > self.stall_s):
                self._start()
        return await done

    def _start(self) -> None:
        with self._lock:
            if len(self._threads) < self.workers:
                t = threading.Thread(target=self._work, name=f"{self.name}_{len(self._threads)}", daemon=True)
                t.start()
                self._threads.append(t)

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            loop, done, fn, args, queued = item
            if done.cancelled():
                continue
            self._busy_since = now = time.monotonic()
            if now - queued > self.stall_s and len(self._threads) < self.workers:
                self._start()  # reads queue up behind this thread: another takes them too
            try:
                result, error = fn(*args), None
            except Exception as exc:
                result, error = None, exc
            except BaseException as exc:  # not the loop's to raise (SystemExit would stop the server):
                result, error = None, RuntimeError(f"a read ended with {exc!r}")  # the caller's error
            finally:
                self._busy_since = None
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting any more
                loop.call_soon_threadsafe(_settle, done, result, error)

    def close(self) -> None:
        for _ in self._threads:
            self._queue.put(None)


def _settle(done: asyncio.Future[Any], result: Any, error: Exception | None) -> None:
    if done.done():  # cancelled while the thread ran it
        return
    if isinstance(error, StopIteration):  # a future cannot hold one
        done.set_exception(RuntimeError(f"a read ended with {error!r}"))
    elif error is not None:
        done.set_exception(error)
    else:
        done.set_result(result)
