"""Where the centre's CTI bridges and its web nodes meet beside the bus (issue #15).

The bus carries what happened, in order, to everyone. Two things do not fit a stream of events:

- **each active bridge's live picture** (queues, seats, calls: what ``GET /api/queues`` shows),
  posted every half second under the Asterisk server's name and kept a few seconds: a web node
  without the bridge reads the latest one instead of a replay of everything since the morning;
- **call-control requests** (sign in, 示忙, transfer…) from a web node to the one bridge that drives
  the seat's Asterisk server, each answered once, by whichever node holds that server's lease.

:class:`RedisBoard` keeps both in the bus's Redis, under the bus's prefix: ``{prefix}:live:{server}``
(the picture, expiring), ``{prefix}:live:servers`` (the names seen), ``{prefix}:cti:{server}:in``
(the server's requests, a list) and ``{prefix}:cti:replies:{node}`` (the answers to one node's
requests: one reader per node, however many requests wait).
:class:`MemoryBoard` is the same in one process. A request names a deadline: the bridge does not
run one whose asker has given up, and an asker that gives up takes back its request if it is still
waiting, so it can tell "not done" from "may have been done".
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections import defaultdict, deque
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from hotline.bus import Bus
from hotline.redis_bus import NETWORK_ERRORS, BusUnavailable, RedisBus, within

Request = dict[str, Any]
log = logging.getLogger(__name__)


# requests a bridge takes in one round trip (LPOP with a count, Redis 6.2 and later): a burst of clicks
# costs a few round trips on the bridge's loop, not one each
TAKE_MOST = 64


class NotTaken(Exception):
    """No bridge took the request before its deadline, and it was taken back: nothing was done."""


class NoAnswer(Exception):
    """A bridge took the request but its answer did not come in time: it may have been done."""


class Board(abc.ABC):
    """Live pictures and call-control requests, per Asterisk server."""

    async def start(self) -> None:  # noqa: B027 (a board in process has nothing to start)
        pass

    async def close(self) -> None:  # noqa: B027
        pass

    @abc.abstractmethod
    async def post(self, server: str, picture: str, ttl_s: float) -> None:
        """The server's latest live picture (JSON), gone after ``ttl_s`` unless posted again."""

    @abc.abstractmethod
    async def pictures(self) -> dict[str, str]:
        """Every server's latest picture that has not expired."""

    @abc.abstractmethod
    async def ask(self, server: str, request: Request, timeout: float) -> dict[str, Any]:
        """Send ``request`` to the server's bridge and wait for its answer: :class:`NotTaken` or
        :class:`NoAnswer` after ``timeout``. The request gets ``id`` and ``deadline`` (epoch s)."""

    @abc.abstractmethod
    async def take(self, server: str, wait_s: float, *, most: int = TAKE_MOST) -> list[Request]:
        """The requests waiting for ``server`` (the bridge's side), oldest first, up to ``most``; when
        none waits, the first to come within ``wait_s`` (else none)."""

    @abc.abstractmethod
    async def answer(self, request: Request, reply: dict[str, Any]) -> None:
        """Answer a request taken with :meth:`take`."""


def _stamp(request: Request, timeout: float) -> Request:
    # the deadline is wall-clock time: the asker and the bridge are on different machines, whose
    # clocks the centre keeps in step (the call log's times rely on it too)
    return {**request, "id": uuid.uuid4().hex, "deadline": time.time() + timeout}


class MemoryBoard(Board):
    """The board in one process (tests, and the pure parts that follow it)."""

    def __init__(self) -> None:
        self._pictures: dict[str, tuple[str, float]] = {}
        self._requests: dict[str, deque[Request]] = defaultdict(deque)
        self._arrived: dict[str, asyncio.Event] = defaultdict(asyncio.Event)
        self._replies: dict[str, asyncio.Future[dict[str, Any]]] = {}

    async def post(self, server: str, picture: str, ttl_s: float) -> None:
        self._pictures[server] = (picture, time.monotonic() + ttl_s)

    async def pictures(self) -> dict[str, str]:
        now = time.monotonic()
        return {s: p for s, (p, until) in self._pictures.items() if until > now}

    async def ask(self, server: str, request: Request, timeout: float) -> dict[str, Any]:
        request = _stamp(request, timeout)
        reply = self._replies[request["id"]] = asyncio.get_running_loop().create_future()
        self._requests[server].append(request)
        self._arrived[server].set()
        try:
            async with asyncio.timeout(timeout):
                return await reply
        except TimeoutError:
            if request in self._requests[server]:
                self._requests[server].remove(request)
                raise NotTaken(f"no CTI bridge of {server} took the request within {timeout} s") from None
            raise NoAnswer(f"the CTI bridge of {server} did not answer within {timeout} s") from None
        finally:
            self._replies.pop(request["id"], None)

    async def take(self, server: str, wait_s: float, *, most: int = TAKE_MOST) -> list[Request]:
        queue, arrived = self._requests[server], self._arrived[server]
        if not queue:
            arrived.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait_s):
                    await arrived.wait()
        return [queue.popleft() for _ in range(min(most, len(queue)))]

    async def answer(self, request: Request, reply: dict[str, Any]) -> None:
        waiting = self._replies.get(request["id"])
        if waiting is not None and not waiting.done():
            waiting.set_result(reply)


class RedisBoard(Board):
    """The board in the bus's Redis (every call under a timeout, as the bus's own)."""

    def __init__(self, url: str, *, prefix: str = "hotline", timeout: float = 2.0, max_wait_s: float = 60.0,
                 poll_s: float = 1.0) -> None:
        self.url, self.prefix, self.timeout = url, prefix, timeout
        self.max_wait_s = max_wait_s  # the longest blocking wait a caller may ask for
        self.poll_s = poll_s  # the reply reader's one BLPOP waits this long, then looks again
        self._client: aioredis.Redis | None = None
        # the answers to this node's requests come to one list, read by one task: a hundred operators
        # clicking at once hold one connection, not a hundred blocked BLPOPs (redis-py's pool has 100)
        self._reply_key = f"{prefix}:cti:replies:{uuid.uuid4().hex[:12]}"
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._client is None:
            # a blocked BLPOP holds its connection for its wait: the socket may wait that long too. A
            # burst of requests waits its turn for one of 32 connections (within the timeout) rather
            # than failing as redis-py's default pool does past 100
            pool = aioredis.BlockingConnectionPool.from_url(
                self.url, max_connections=32, timeout=self.timeout, socket_timeout=self.max_wait_s + self.timeout,
                socket_connect_timeout=self.timeout, retry=Retry(NoBackoff(), 0), protocol=2)
            self._client = aioredis.Redis(connection_pool=pool)

    async def close(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.cancel()
            await asyncio.wait([reader], timeout=self.poll_s + self.timeout)
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await within(client.aclose(), self.timeout)
            with contextlib.suppress(Exception):  # a pool given to the client is not closed with it
                await within(client.connection_pool.disconnect(), self.timeout)

    def _redis(self) -> aioredis.Redis:
        if self._client is None:
            raise BusUnavailable("the board is not started")
        return self._client

    async def _call(self, aw: Any, seconds: float | None = None) -> Any:
        try:
            out = await within(aw, self.timeout if seconds is None else seconds)
        except NETWORK_ERRORS as exc:
            raise BusUnavailable(f"the bus's Redis did not answer: {exc!r}") from exc
        task = asyncio.current_task()
        if task is not None and task.cancelling():  # redis-py swallowed it inside a blocked read
            raise asyncio.CancelledError
        return out

    async def post(self, server: str, picture: str, ttl_s: float) -> None:
        pipe = self._redis().pipeline(transaction=False)
        pipe.set(f"{self.prefix}:live:{server}", picture, px=max(1, round(ttl_s * 1000)))
        pipe.sadd(f"{self.prefix}:live:servers", server)
        await self._call(pipe.execute())

    async def pictures(self) -> dict[str, str]:
        redis = self._redis()
        names = sorted(n.decode() for n in await self._call(redis.smembers(f"{self.prefix}:live:servers")))
        if not names:
            return {}
        found = await self._call(redis.mget([f"{self.prefix}:live:{n}" for n in names]))
        return {n: p.decode() for n, p in zip(names, found, strict=True) if p is not None}

    async def ask(self, server: str, request: Request, timeout: float) -> dict[str, Any]:
        redis, request = self._redis(), {**_stamp(request, timeout), "reply_to": self._reply_key}
        inbox, text = f"{self.prefix}:cti:{server}:in", json.dumps(request, ensure_ascii=False)
        answer = self._waiting[request["id"]] = asyncio.get_running_loop().create_future()
        if self._reader is None or self._reader.done():  # after the wait is known: a reader ending sees it
            self._reader = asyncio.create_task(self._read_replies(), name="board-replies")
        try:
            started = time.monotonic()
            await self._call(redis.rpush(inbox, text))
            try:
                async with asyncio.timeout(max(0.0, timeout - (time.monotonic() - started))):
                    return await answer
            except TimeoutError:
                pass
            if await self._call(redis.lrem(inbox, 1, text)):
                raise NotTaken(f"no CTI bridge of {server} took the request within {timeout} s")
            raise NoAnswer(f"the CTI bridge of {server} did not answer within {timeout} s")
        finally:
            self._waiting.pop(request["id"], None)

    async def _read_replies(self) -> None:
        """This node's one reader of its answers, while any request waits (it ends when none does)."""
        while self._waiting and self._client is not None:
            try:
                got = await self._pop(self._reply_key, self.poll_s, TAKE_MOST)
            except BusUnavailable:
                await asyncio.sleep(min(self.poll_s, 0.2))
                continue
            for reply in got:
                waiting = self._waiting.get(str(reply.get("id", "")))
                if waiting is not None and not waiting.done():
                    waiting.set_result(reply.get("reply", {}))

    async def take(self, server: str, wait_s: float, *, most: int = TAKE_MOST) -> list[Request]:
        return await self._pop(f"{self.prefix}:cti:{server}:in", wait_s, most)

    async def _pop(self, key: str, wait_s: float, most: int) -> list[dict[str, Any]]:
        """Up to ``most`` entries of the list ``key`` in one round trip (LPOP with a count); when it is
        empty, the first to come within ``wait_s`` (BLPOP). An entry that is not a JSON object is
        dropped with a warning: nobody could run or answer it."""
        redis = self._redis()
        got = await self._call(redis.lpop(key, most))
        if not got:
            one = await self._call(redis.blpop([key], timeout=wait_s), wait_s + self.timeout)
            got = [one[1]] if one is not None else []
        out = []
        for raw in got:
            try:
                entry = json.loads(raw)
            except ValueError:
                entry = None
            if isinstance(entry, dict):
                out.append(entry)
            else:
                log.warning("board: %s held %r, not a request or an answer: dropped", key, raw[:200])
        return out

    async def answer(self, request: Request, reply: dict[str, Any]) -> None:
        key = str(request.get("reply_to") or "")
        if not key.startswith(f"{self.prefix}:cti:replies:"):
            return  # nobody to tell (an old node's request, or not ours to write to)
        pipe = self._redis().pipeline(transaction=False)
        pipe.rpush(key, json.dumps({"id": request["id"], "reply": reply}, ensure_ascii=False))
        pipe.expire(key, 60)  # a node that went away never reads it
        await self._call(pipe.execute())


def board_of(bus: Bus) -> Board | None:
    """The board beside ``bus``: in its Redis, or None for a bus in one process (whose node runs its
    bridge itself and needs no board)."""
    if isinstance(bus, RedisBus):
        return RedisBoard(bus.url, prefix=bus.prefix, timeout=bus.timeout)
    return None
