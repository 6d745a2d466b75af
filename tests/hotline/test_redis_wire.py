"""hotline/redis_wire.py: RESP in and out, and a connection whose replies come back in order, on a
real redis-server (the bus's writer speaks through it)."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from pathlib import Path

import pytest

from cti.domain import LinkStatus
from hotline.redis_bus import RedisBus
from hotline.redis_wire import Parser, RespError, Wire, WireLost, pack
from testkit import free_port
from testkit.redis import RedisServer, find_binary

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
        assert got[:6] == [b"OK", 42, b"he\r\no", None, [7, [b"ab"]], got[5]] and got[6] is None
        assert isinstance(got[5], RespError) and str(got[5]).startswith("NOSCRIPT")


def test_a_false_reply_is_a_reply_not_the_end_of_what_was_read() -> None:
    assert Parser().feed(b"#f\r\n:1\r\n#t\r\n") == [False, 1, True]  # RESP3's booleans, should they come


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


def _tls_files(folder: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1, made by openssl."""
    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True, timeout=60)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=hotline test CA",
        "-keyout", "ca.key", "-out", "ca.pem")
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "server.key", "-out", "server.csr")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
        "-extfile", "san.ext", "-out", "server.pem")
    return folder / "ca.pem", folder / "server.pem", folder / "server.key"


async def test_the_bus_over_tls_publishes_and_reads_with_the_urls_ca(tmp_path: Path) -> None:
    """rediss:// with the centre's own CA (``?ssl_ca_certs=``): the writer and the reader speak TLS
    through this module, the epoch and replays through redis-py, all with the same URL."""
    binary = find_binary()
    if binary is None or shutil.which("openssl") is None:
        pytest.skip("redis-server or openssl absent")
    ca, cert, key = _tls_files(tmp_path)
    port = free_port()
    server = RedisServer(binary, tmp_path / "redis", args=(
        "--tls-port", str(port), "--tls-cert-file", str(cert), "--tls-key-file", str(key),
        "--tls-ca-cert-file", str(ca), "--tls-auth-clients", "no"))
    try:
        server.start()
    except RuntimeError as exc:
        pytest.skip(f"this redis-server has no TLS: {exc}")
    url = f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={ca}"
    a = b = None
    try:
        with pytest.raises(ssl.SSLError, match="CERTIFICATE_VERIFY_FAILED"):  # not without the centre's CA
            await Wire.open(f"rediss://127.0.0.1:{port}/0", 2)
        a, b = RedisBus(url, prefix="tls"), RedisBus(url, prefix="tls")
        await a.start()
        await b.start()
        sub = b.subscribe()
        events = [LinkStatus(at=float(i), up=True, detail=f"#{i}") for i in range(20)]
        for e in events:
            a.publish_nowait(e)
        got = [await asyncio.wait_for(sub.__anext__(), 5) for _ in events]
        assert [g.event for g in got] == events and [g.seq for g in got] == list(range(1, 21))
        assert [e.event for e in (await b.replay(10, b.epoch)).envelopes] == events[10:]
    finally:
        for bus in (a, b):
            if bus is not None:
                await bus.close()
        server.close()
