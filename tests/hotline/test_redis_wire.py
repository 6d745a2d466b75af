"""hotline/redis_wire.py: RESP in and out, and a connection whose replies come back in order, on a
real redis-server (the bus's writer speaks through it)."""

from __future__ import annotations

import asyncio

import pytest

from hotline.redis_wire import Parser, RespError, Wire, WireLost, pack
from testkit.redis import RedisServer

pytestmark = pytest.mark.timeout(20)


def test_pack_is_an_array_of_bulk_strings() -> None:
    assert pack("SET", "k", 12) == b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\n12\r\n"
    assert pack("SET", "k", "值".encode()) == b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\n" + "值".encode() + b"\r\n"


def test_replies_cut_anywhere_come_out_whole_and_in_order() -> None:
    stream = (b"+OK\r\n:42\r\n$5\r\nhe\r\no\r\n$-1\r\n*2\r\n:7\r\n*1\r\n$2\r\nab\r\n"
              b"-NOSCRIPT No matching script\r\n*-1\r\n")
    for cut in range(len(stream)):  # as two reads, split at every byte
        p = Parser()
        got = p.feed(stream[:cut]) + p.feed(stream[cut:])
        assert got[:6] == ["OK", 42, b"he\r\no", None, [7, [b"ab"]], got[5]] and got[6] is None
        assert isinstance(got[5], RespError) and str(got[5]).startswith("NOSCRIPT")


def test_what_is_not_resp_is_refused() -> None:
    with pytest.raises(ValueError, match="not a RESP reply"):
        Parser().feed(b"HTTP/1.1 400 Bad Request\r\n")


async def test_replies_reach_their_callbacks_in_order(own_redis: RedisServer) -> None:
    await (await Wire.open(own_redis.url, 2)).call("CONFIG", "SET", "requirepass", "s3cret")
    url = own_redis.url.replace("redis://", "redis://:s3cret@") + "/2"  # a password and a database
    wire = await Wire.open(url, 2)
    got: list[object] = []
    for i in range(100):
        wire.send(got.append, "RPUSH", "l", i)
    wire.send(got.append, "NOSUCHCOMMAND")
    assert await wire.call("LLEN", "l") == 100
    assert got[:100] == list(range(1, 101)) and isinstance(got[100], RespError)
    assert b" db=2 " in await wire.call("CLIENT", "INFO")
    with pytest.raises(RespError, match=r"WRONGPASS|invalid"):
        await Wire.open(own_redis.url.replace("redis://", "redis://:wrong@"), 2)
    wire.close()


async def test_a_connection_that_goes_fails_what_it_had_not_answered(own_redis: RedisServer) -> None:
    wire = await Wire.open(own_redis.url, 2)
    got: list[object] = []
    own_redis.pause()  # nothing answers
    try:
        wire.send(got.append, "PING")
        await asyncio.sleep(0.1)
        assert got == []
        wire.close("no answer in time")
        assert len(got) == 1 and isinstance(got[0], WireLost) and "no answer" in str(got[0])
        assert wire.lost.done()
        with pytest.raises(WireLost):
            wire.send(got.append, "PING")
    finally:
        own_redis.resume()
    own_redis.kill()
    with pytest.raises(OSError):
        await Wire.open(own_redis.url, 1)
