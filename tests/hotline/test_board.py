"""The board beside the bus on a real Redis (hotline/board.py): pictures that expire, requests
answered once, and an asker that gives up knows whether anything was done."""

from __future__ import annotations

import asyncio
import time

import pytest

from hotline.board import MemoryBoard, NoAnswer, NotTaken, RedisBoard, board_of
from hotline.bus import InProcessBus
from hotline.redis_bus import BusUnavailable, RedisBus
from testkit.redis import RedisServer
from tests.support.redis import own_redis, redis_server  # noqa: F401  (the fixtures)

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(params=["memory", "redis"])
async def board(request: pytest.FixtureRequest, redis_server: RedisServer):  # noqa: F811
    made = MemoryBoard() if request.param == "memory" else RedisBoard(
        redis_server.url, prefix=f"t{time.monotonic_ns()}", timeout=1.0)
    await made.start()
    yield made
    await made.close()


async def test_pictures_expire_unless_posted_again(board) -> None:
    await board.post("ast1", '{"server":"ast1"}', ttl_s=0.3)
    await board.post("ast2", '{"server":"ast2"}', ttl_s=5)
    assert await board.pictures() == {"ast1": '{"server":"ast1"}', "ast2": '{"server":"ast2"}'}
    await asyncio.sleep(0.5)
    assert await board.pictures() == {"ast2": '{"server":"ast2"}'}  # ast1's bridge stopped posting


async def test_each_request_is_taken_once_by_its_servers_bridge_and_answered(board) -> None:
    async def bridge(server: str) -> None:
        while True:
            for req in await board.take(server, 0.2):
                await board.answer(req, {"by": server, "seat": req["args"]["seat"]})

    bridges = [asyncio.create_task(bridge("ast1")), asyncio.create_task(bridge("ast2"))]
    try:
        # more at once than redis-py's pool has connections (100): the answers share one reader
        got = await asyncio.gather(*(board.ask(f"ast{1 + i % 2}", {"action": "ready", "args": {"seat": str(i)}}, 10)
                                     for i in range(250)))
        assert got == [{"by": f"ast{1 + i % 2}", "seat": str(i)} for i in range(250)]
    finally:
        for b in bridges:
            b.cancel()
        await asyncio.gather(*bridges, return_exceptions=True)


async def test_an_asker_that_gives_up_takes_back_what_nobody_took(board) -> None:
    with pytest.raises(NotTaken):
        await board.ask("ast1", {"action": "ready", "args": {"seat": "8001"}}, 0.3)
    assert await board.take("ast1", 0.1) == []  # withdrawn: no bridge that comes later runs it


async def test_an_asker_that_gives_up_after_a_bridge_took_it_says_it_may_be_done(board) -> None:
    asking = asyncio.create_task(board.ask("ast1", {"action": "ready", "args": {"seat": "8001"}}, 0.5))
    [taken] = await board.take("ast1", 2)
    assert taken["deadline"] > time.time()  # the bridge can tell when to give up
    with pytest.raises(NoAnswer):
        await asking


async def test_a_redis_that_stops_answering_is_said_so_within_the_timeout(own_redis: RedisServer) -> None:  # noqa: F811
    board = RedisBoard(own_redis.url, timeout=0.3)
    await board.start()
    own_redis.pause()
    try:
        started = time.monotonic()
        with pytest.raises(BusUnavailable):
            await board.pictures()
        assert time.monotonic() - started < 2
    finally:
        own_redis.resume()
        await board.close()


def test_the_board_lives_beside_a_redis_bus_only() -> None:
    assert board_of(InProcessBus()) is None
    board = board_of(RedisBus("redis://127.0.0.1:6390/3", prefix="centre1", timeout=0.7))
    assert isinstance(board, RedisBoard) and board.prefix == "centre1" and board.timeout == 0.7


async def test_requests_waiting_together_are_taken_together(board) -> None:
    asks = [asyncio.create_task(board.ask("ast1", {"action": "ready", "args": {"seat": str(i)}}, 5))
            for i in range(100)]
    await asyncio.sleep(0.2)  # all 100 in the list, none taken yet
    first = await board.take("ast1", 0.1, most=64)  # one round trip for as many as wait, up to most
    rest = await board.take("ast1", 0.1, most=64)
    assert (len(first), len(rest)) == (64, 36)
    assert sorted(int(r["args"]["seat"]) for r in first + rest) == list(range(100))  # each once
    assert await board.take("ast1", 0.1) == []
    for r in first + rest:
        await board.answer(r, {"seat": r["args"]["seat"]})
    assert await asyncio.gather(*asks) == [{"seat": str(i)} for i in range(100)]


async def test_an_entry_that_is_not_a_request_is_dropped_and_the_others_run(redis_server: RedisServer) -> None:  # noqa: F811
    board = RedisBoard(redis_server.url, prefix=f"t{time.monotonic_ns()}", timeout=1.0)
    await board.start()
    try:
        asking = asyncio.create_task(board.ask("ast1", {"action": "ready", "args": {"seat": "8001"}}, 5))
        await asyncio.sleep(0.1)
        await board._redis().lpush(f"{board.prefix}:cti:ast1:in", b"\xff not json", b"[1, 2]")  # before it
        [taken] = await board.take("ast1", 0.5)
        assert taken["args"] == {"seat": "8001"}
        await board.answer(taken, {"ok": True})
        assert await asking == {"ok": True}
    finally:
        await board.close()
