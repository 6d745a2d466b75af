"""The bus over Redis under a burst, on a real redis-server: a wall of events made in one turn of the
bridge's loop starts on its way before the turn ends, and a web node hands a large XREAD answer on
a few dozen entries a turn, so its sockets send the first pops before the last entries are decoded."""

from __future__ import annotations

import asyncio
import contextlib

from hotline.bus import Envelope
from hotline.redis_bus import HAND_ON, RedisBus
from hotline.redis_publish import EARLY
from tests.hotline.test_redis_bus import Buses, _contiguous, _ev, take, until


async def test_a_wall_of_events_made_in_one_turn_starts_on_its_way_before_the_turn_ends(buses: Buses) -> None:
    a, b = await buses(batch=500), await buses()
    sub = b.subscribe(maxsize=500)
    await until(lambda: a._out._wire is not None, what="the writer connected")
    n = 2 * EARLY + 6
    for i in range(n):
        a.publish_nowait(_ev(i))
    # still the same turn: two batches are on their way, the last six wait for the turn's end
    assert [len(batch.outs) for batch in a._out._flight] == [EARLY, EARLY]  # the code before: none
    assert len(a._out._pending) == 6
    got = await take(sub, n)
    assert [e.event for e in got] == [_ev(i) for i in range(n)] and _contiguous(got)
    raw = buses.raw()
    try:
        assert int(await raw.hget(a._keys[3], "last")) == 3  # still few batches: EARLY, EARLY and the rest
    finally:
        await raw.aclose()


async def _behind(buses: Buses, n: int) -> tuple[RedisBus, int]:
    """A bus whose first XREAD will answer with the ``n`` entries another node just published."""
    a = await buses()
    for i in range(n):
        last = (await a.publish(_ev(i))).seq
    b = await buses()  # follows the stream from its end; moved back before its reader's first XREAD
    first = last - n + 1
    b._last_id, b._delivered = f"{first - 1}-1", first - 1
    return b, first


async def test_a_large_xread_answer_is_handed_on_a_few_dozen_entries_a_turn(buses: Buses) -> None:
    n = 5 * HAND_ON
    b, first = await _behind(buses, n)
    sub = b.subscribe(maxsize=1000)
    handed_on_when: list[int] = []  # how far the reader was when the consumer had each envelope
    got: list[Envelope] = []

    async def consumer() -> None:
        async for env in sub:
            handed_on_when.append(b._delivered - first + 1)
            got.append(env)

    task = asyncio.create_task(consumer())
    try:
        await until(lambda: len(got) == n, what="every entry handed on")
        assert [e.seq for e in got] == list(range(first, first + n))
        assert handed_on_when[0] <= HAND_ON  # the code before: the whole answer (160) first
        assert max(when - i for i, when in enumerate(handed_on_when)) <= HAND_ON  # never more than a turn ahead
        later = await buses()
        seq = (await later.publish(_ev(999))).seq
        await until(lambda: got[-1].seq == seq, what="the next XREAD after the last turn")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_a_connection_lost_between_turns_leaves_the_rest_for_the_next_connection(buses: Buses) -> None:
    """The rest of an answer is not handed on from memory once its connection is gone: the next
    connection reads it again from the last entry handed on, so nothing is lost or doubled."""
    n = 3 * HAND_ON
    b, first = await _behind(buses, n)
    sub = b.subscribe(maxsize=1000)
    wire_of: dict[int, object] = {}  # seq → the reader's connection when it was handed on

    def cut_after_the_first_turn(env: Envelope) -> bool:
        wire_of[env.seq] = b._reader_wire
        if env.seq == first + HAND_ON - 1 and b._reader_wire is not None:
            b._reader_wire.close("cut by the test")
        return True

    sub._accept = cut_after_the_first_turn
    got = await take(sub, n)
    assert [e.seq for e in got] == list(range(first, first + n))  # none lost, none twice
    before, after = wire_of[first], wire_of[first + HAND_ON]
    assert before is not None and after is not None and after is not before  # read again on a new connection
