"""A Redis connection that writes a command the moment it is made and hands each reply to its
callback the moment it is read (issue #15: the bus's writer on a busy bridge).

Through redis-py, an event the bridge published waited for the writer task's turn on the loop, then
for the turn of the coroutine reading the reply, then for the writer's turn again before the next
batch went: on a bridge loop busy with a burst of 50 calls, some 20 ms at the median between the AMI
event and the stream (bench/screen_pop.py), longer than everything else on the way to the browser.
Here the command is on the socket before the caller returns, and the reply is handled inside the
read callback that received it, so the next batch goes out on the same turn.

The protocol is RESP2 (what redis-py speaks with ``protocol=2`` elsewhere in the bus). The URL is
read by redis-py's own parser, so ``redis://``, ``rediss://`` and ``unix://`` with a user, a
password and a database mean here what they mean there.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections import deque
from collections.abc import Callable
from typing import Any

import hiredis
from redis.asyncio.connection import SSLConnection, UnixDomainSocketConnection, parse_url

Reply = Any  # bytes (a bulk string or a status), int, a list of replies, None, or a RespError
OnReply = Callable[[Reply], None]


class RespError(Exception):
    """An error reply (``-ERR …``, ``-NOSCRIPT …``): the command ran and Redis refused it."""


class WireLost(ConnectionError):
    """The connection closed or was closed with commands unanswered."""


def pack(*args: str | bytes | int | float) -> bytes:
    """One command as RESP: an array of bulk strings."""
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


_MORE = object()  # what the reader gives while a reply is incomplete


class Parser:
    """RESP2 replies out of a byte stream, fed as it arrives (a reply may span several reads).

    hiredis's C reader does the parsing: in Python it cost about 7 µs an entry of the bus's XREAD
    replies, which every web node reads for the whole centre (about seven a call), and a reply that
    came in several reads was parsed again from its start at each (0.2 µs in C). A status reply
    (``+OK``) comes out as bytes, like a bulk string."""

    def __init__(self) -> None:
        # "no whole reply yet" is a value of its own: hiredis's default, False, is also a reply (RESP3's #f)
        self._reader = hiredis.Reader(replyError=RespError, notEnoughData=_MORE)

    def feed(self, data: bytes) -> list[Reply]:
        self._reader.feed(data)
        replies = []
        try:
            while (reply := self._reader.gets()) is not _MORE:
                replies.append(reply)
        except hiredis.ProtocolError as exc:
            raise ValueError(f"not a RESP reply: {exc}") from exc
        return replies


def tls_context(opts: dict[str, Any]) -> ssl.SSLContext:
    """The TLS of a ``rediss://`` URL, from the query options redis-py reads there too
    (``ssl_ca_certs``, ``ssl_cert_reqs``, ``ssl_check_hostname``, ``ssl_certfile``, ``ssl_keyfile``)."""
    ctx = ssl.create_default_context(cafile=opts.get("ssl_ca_certs"))
    if "ssl_check_hostname" in opts:
        ctx.check_hostname = bool(opts["ssl_check_hostname"])
    reqs = str(opts.get("ssl_cert_reqs", "required")).lower()
    if reqs == "none":
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    elif reqs == "optional":
        ctx.verify_mode = ssl.CERT_OPTIONAL
    if opts.get("ssl_certfile"):
        ctx.load_cert_chain(opts["ssl_certfile"], opts.get("ssl_keyfile"))
    return ctx


class Wire(asyncio.Protocol):
    """One connection: :meth:`send` writes now; each reply goes to its callback, in order, as read."""

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._parser = Parser()
        self._waiting: deque[OnReply] = deque()
        self.lost = asyncio.get_running_loop().create_future()  # done once the connection is gone

    @classmethod
    async def open(cls, url: str, timeout: float) -> Wire:
        """Connect, authenticate and select the URL's database, all within ``timeout``."""
        opts = parse_url(url)
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(timeout):
            klass = opts.get("connection_class")
            if klass is UnixDomainSocketConnection:
                _, wire = await loop.create_unix_connection(cls, opts["path"])
            else:
                tls = tls_context(opts) if klass is SSLConnection else None
                _, wire = await loop.create_connection(cls, opts.get("host", "127.0.0.1"), opts.get("port", 6379),
                                                       ssl=tls)
            try:
                if opts.get("password"):
                    who = [opts["username"]] if opts.get("username") else []
                    await wire.call("AUTH", *who, opts["password"])
                if opts.get("db"):
                    await wire.call("SELECT", opts["db"])
            except BaseException:
                wire.close("set-up failed")
                raise
        return wire

    def send(self, on_reply: OnReply, *args: str | bytes | int | float) -> None:
        """Write the command now; ``on_reply`` gets its reply (a :class:`RespError` for an error reply,
        a :class:`WireLost` if the connection goes first), called from the read that got it."""
        if self._transport is None or self.lost.done():
            raise WireLost("not connected")
        self._waiting.append(on_reply)
        self._transport.write(pack(*args))

    async def call(self, *args: str | bytes | int | float) -> Reply:
        """A command whose reply is awaited (set-up, not the hot path); an error reply is raised."""
        got: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self.send(lambda r: got.done() or got.set_result(r), *args)
        reply = await got
        if isinstance(reply, Exception):
            raise reply
        return reply

    def close(self, why: str = "closed here") -> None:
        """Drop the connection now; what is unanswered fails with :class:`WireLost` (``why``)."""
        self._fail(WireLost(why))

    # --- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            replies = self._parser.feed(data)
        except ValueError as exc:  # not Redis, or a stream out of step: nothing after it can be trusted
            self._fail(WireLost(str(exc)))
            return
        for reply in replies:
            if not self._waiting:
                self._fail(WireLost("a reply nobody asked for"))
                return
            self._waiting.popleft()(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(WireLost(f"connection lost: {exc!r}" if exc else "connection closed"))

    def _fail(self, exc: WireLost) -> None:
        if not self.lost.done():
            self.lost.set_result(exc)
        waiting, self._waiting = self._waiting, deque()
        for on_reply in waiting:
            with contextlib.suppress(Exception):
                on_reply(exc)
        if self._transport is not None and not self._transport.is_closing():
            self._transport.abort()
