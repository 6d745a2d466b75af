"""hotline.readers: the threads that run a process's blocking reads for its loop."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from hotline.readers import Readers


async def test_reads_run_off_the_loop_and_a_stuck_read_does_not_hold_the_others() -> None:
    # stall_s well above a loaded CI's hiccups: a read picked up late must not start a thread early
    reads = Readers(workers=3, stall_s=0.2)
    stuck = threading.Event()
    try:
        assert await reads.run(lambda x: x * 2, 21) == 42 and reads.threads == 1  # one thread while reads flow
        with pytest.raises(ZeroDivisionError):
            await reads.run(lambda: 1 / 0)
        held = asyncio.ensure_future(reads.run(stuck.wait, 5))
        await asyncio.sleep(0.3)  # the only thread is held past stall_s: the next read gets a thread of its own
        assert await asyncio.wait_for(reads.run(lambda: "through"), 1) == "through" and reads.threads == 2
        stuck.set()
        assert await held is True
        burst = await asyncio.gather(*(reads.run(time.sleep, 0.05) for _ in range(16)))  # 0.4 s on two threads
        assert len(burst) == 16
        gone = asyncio.ensure_future(reads.run(lambda: "never"))
        gone.cancel()  # the caller gave up: the read is dropped, not run into a cancelled future
        await asyncio.sleep(0.05)
    finally:
        stuck.set()
        reads.close()
    assert reads.threads == 3  # the burst's reads waited past stall_s in the queue: a third thread took some


async def test_a_read_that_ends_the_thread_s_way_is_its_callers_error_and_the_thread_goes_on() -> None:
    reads = Readers(workers=1)

    def exits() -> None:
        raise SystemExit(3)

    def stops() -> None:
        raise StopIteration

    try:
        with pytest.raises(RuntimeError, match="SystemExit"):  # not raised out of the loop: the server goes on
            await asyncio.wait_for(reads.run(exits), 2)
        with pytest.raises(RuntimeError, match="StopIteration"):  # a future cannot hold one: not a hang
            await asyncio.wait_for(reads.run(stops), 2)
        assert await asyncio.wait_for(reads.run(lambda: "still here"), 2) == "still here" and reads.threads == 1
    finally:
        reads.close()
