"""The bus shared between processes over a Redis stream (issue #15: web nodes and a CTI bridge
in other processes follow one bus).

Keys, under a prefix: ``{prefix}:events``, the stream, each entry's id ``<seq>-1`` (so the websocket
contract of :mod:`hotline.bus` holds as it is: contiguous seqs, ``since=<seq>&epoch=<epoch>``), its
fields ``e`` (the epoch) and ``m`` (the message as JSON, without the seq); ``{prefix}:seq``, the
last seq given; ``{prefix}:epoch``, a random token made when the bus's data begins (a Redis that
lost its data lost it too: a new one tells every consumer to reload); ``{prefix}:node:<id>``, each
node's last batch (a retried batch is not published twice).

Publishing is one Lua script (INCRBY the seq, XADD the entries), so publishers in several processes
get contiguous seqs in the stream's order. :meth:`RedisBus.publish_nowait` (the AMI read path) only
queues: one writer task sends what waits, in order and in batches, and keeps it while Redis is
away. One reader task per process follows the stream (``XREAD BLOCK``) and hands each envelope to
this process's subscriptions (:class:`hotline.bus.LocalFanout`), its own events included: every
node sees one order. Listeners hear this process's own events as they are published, not after
the round trip: the bridge files its calls even while Redis is away. Every call to Redis has a
timeout; a lost connection is retried with a backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from hotline.bus import Bus, DomainEvent, Envelope, InProcessBus, LocalFanout, Replay, event_class
from hotline.codec import encode, from_message
from hotline.redis_wire import RespError, Wire, WireLost

log = logging.getLogger(__name__)

E = TypeVar("E")
T = TypeVar("T")
NETWORK_ERRORS = (RedisError, OSError, TimeoutError)

# KEYS: seq, events, epoch. ARGV[1]: a new epoch token; ARGV[2]: the highest seq this node has seen.
# The seq and the epoch are the bus's data: when either is missing (a Redis restarted without
# persistence, FLUSHALL, an eviction), what remains is old news: a new epoch, a new stream, and
# seqs going on above the floor (a websocket told seq N that missed the change does not then take
# the new stream's first events for old ones).
_EPOCH = """
local epoch = redis.call('GET', KEYS[3])
if not epoch or redis.call('EXISTS', KEYS[1]) == 0 then
  epoch = ARGV[1]
  redis.call('SET', KEYS[3], epoch)
  redis.call('UNLINK', KEYS[2])
  redis.call('SET', KEYS[1], math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), tonumber(ARGV[2])))
end
"""

ENSURE_EPOCH = _EPOCH + "return {epoch, tonumber(redis.call('GET', KEYS[1]))}"

# KEYS[4]: this node's receipt. ARGV[3]: capacity, ARGV[4]: the batch's token, ARGV[5..]: messages.
PUBLISH = _EPOCH + """
local receipt = redis.call('GET', KEYS[4])
if receipt then
  local token, done = string.match(receipt, '^(%S+) (%d+)$')
  if token == ARGV[4] then return {tonumber(done), epoch} end  -- applied, but the answer was lost
end
local n = #ARGV - 4
local first = redis.call('INCRBY', KEYS[1], n) - n + 1
for i = 0, n - 1 do
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], (first + i) .. '-1', 'e', epoch, 'm', ARGV[5 + i])
end
redis.call('SET', KEYS[4], ARGV[4] .. ' ' .. first, 'EX', 86400)
return {first, epoch}
"""

PUBLISH_SHA = hashlib.sha1(PUBLISH.encode()).hexdigest()

# ARGV[3]: since; ARGV[4]: '=' and the consumer's epoch, or '' when it gave none.
REPLAY = _EPOCH + """
local last = tonumber(redis.call('GET', KEYS[1]))
local head = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)
local oldest = last + 1
if #head > 0 then oldest = tonumber(string.match(head[1][1], '^%d+')) end
local since = tonumber(ARGV[3])
local gap = (ARGV[4] ~= '' and ARGV[4] ~= '=' .. epoch) or since < oldest - 1 or since > last
local from = '-'
if not gap then from = '(' .. ARGV[3] .. '-1' end
return {epoch, last, gap and 1 or 0, redis.call('XRANGE', KEYS[2], from, '+')}
"""


async def within(aw: Awaitable[T], seconds: float) -> T:
    # not asyncio.wait_for, which on Python 3.11 may return a result in place of a cancellation
    async with asyncio.timeout(seconds):
        return await aw


class BusUnavailable(RuntimeError):
    """Redis did not answer in time."""


@dataclass(frozen=True, slots=True, kw_only=True)
class UnknownEvent(DomainEvent):
    """What listeners get for an event this process does not know (a newer node's); websockets get its message."""

    name: str
    data: dict[str, Any]


# -------------------------------------------------------------------------------------- the bus


@dataclass(slots=True, eq=False)
class _Outgoing:
    """An event waiting for the writer (a ``publish`` caller waits on ``future``)."""

    event: DomainEvent
    future: asyncio.Future[Envelope] | None


class _Outage:
    """Redis away, for one task: a growing backoff; a log line as it starts, every 10 s, as it ends."""

    def __init__(self, who: str) -> None:
        self.who, self.since, self.told, self.delay = who, 0.0, 0.0, 0.1

    async def failed(self, exc: BaseException, detail: Callable[[], str] = str) -> None:
        now = time.monotonic()
        if not self.since:
            self.since = self.told = now
            log.warning("%s: Redis unreachable or not answering (%r)%s", self.who, exc, detail())
        elif now - self.told > 10:
            self.told = now
            log.warning("%s: Redis still away after %.0f s%s", self.who, now - self.since, detail())
        await asyncio.sleep(self.delay)
        self.delay = min(self.delay * 2, 5.0)

    def over(self, detail: Callable[[], str] = str) -> None:
        if self.since:
            log.warning("%s: Redis back after %.1f s%s", self.who, time.monotonic() - self.since, detail())
            self.since, self.delay = 0.0, 0.1


class RedisBus(LocalFanout):
    """One bus over Redis, shared by every process that connects to it with the same prefix."""

    def __init__(self, url: str = "redis://127.0.0.1:6379/0", *, prefix: str = "hotline", capacity: int = 10000,
                 timeout: float = 2.0, block_ms: int = 1000, batch: int = 500, backlog: int = 100_000) -> None:
        super().__init__()
        self.url, self.prefix, self.capacity = url, prefix, capacity
        self.timeout = timeout  # every call to Redis
        self.block_ms = block_ms  # one XREAD waits this long for news, then the reader looks again
        self.batch = batch  # events per script call (and per XREAD)
        self.backlog = backlog  # events kept while Redis is away; past it the oldest are dropped
        self.epoch = ""
        parts = urlsplit(url)  # for the log: not the URL itself, which may hold a password
        self._where = f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}{parts.path}"
        self._keys = [f"{prefix}:seq", f"{prefix}:events", f"{prefix}:epoch", f"{prefix}:node:{uuid.uuid4().hex[:12]}"]
        self._delivered = 0  # the last seq handed to this process's consumers
        self._seen = 0  # the highest seq this node saw (delivered or published): a new epoch goes on above it
        self._last_id: bytes | str = b"0-0"  # where the reader is in the stream
        self._left: set[str] = set()  # epochs this node left: their entries are old news
        self._pending: deque[_Outgoing] = deque()
        self._inflight: list[_Outgoing] = []  # the batch on its way (sent again, same token, until answered)
        self._batch: tuple[str, list[str]] = ("", [])  # its token and messages
        self._wire: Wire | None = None  # the writer's connection (hotline.redis_wire)
        self._sent_on: Wire | None = None  # the connection the batch in flight was last sent on
        self._reply_timer: asyncio.TimerHandle | None = None
        self._writer_outage = _Outage("bus writer")
        self._drained = asyncio.Event()  # the writer has nothing left to send
        self._dropped = 0
        self._closing = False
        self._unknown: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._cmd: aioredis.Redis | None = None
        self._reader: aioredis.Redis | None = None

    @property
    def last_seq(self) -> int:
        return self._delivered

    def _client(self, read_timeout: float) -> aioredis.Redis:
        # no retries inside redis-py: the reader and the writer retry themselves, each call under
        # its own timeout, and say so in the log
        return aioredis.Redis.from_url(self.url, socket_timeout=read_timeout, socket_connect_timeout=self.timeout,
                                       retry=Retry(NoBackoff(), 0), protocol=2)

    async def start(self) -> None:
        """Connect, make sure the bus has an epoch, and follow the stream from its current end;
        :class:`BusUnavailable` if Redis does not answer."""
        if self._tasks:
            return
        self._closing, self._cmd = False, self._client(self.timeout)
        self._reader = self._client(self.block_ms / 1000 + self.timeout)  # a blocked XREAD outlives its BLOCK
        self._ensure, self._replay = (self._cmd.register_script(s) for s in (ENSURE_EPOCH, REPLAY))
        try:
            await within(self._cmd.script_load(PUBLISH), self.timeout)
            self.epoch, last = await self._epoch_now()
        except NETWORK_ERRORS as exc:
            await self._disconnect()
            raise BusUnavailable(f"the bus's Redis ({self._where}) did not answer: {exc!r}") from exc
        self._delivered = self._seen = max(self._seen, last)
        self._last_id = f"{last}-1" if last else b"0-0"
        self._tasks = [asyncio.create_task(self._read_loop(), name=f"bus-reader-{self.prefix}"),
                       asyncio.create_task(self._write_loop(), name=f"bus-writer-{self.prefix}")]
        log.info("bus on Redis %s, prefix %r: epoch %s, seq %d", self._where, self.prefix, self.epoch, last)

    async def close(self) -> None:
        """Give what waits to be sent one timeout to go, then stop and disconnect."""
        if self._waiting() and self._tasks:
            self._drained.clear()
            with contextlib.suppress(TimeoutError):
                await within(self._drained.wait(), self.timeout)
        if self._waiting():
            log.error("bus closing with %d events not sent to Redis", self._waiting())
        self._closing = True  # the loops end by themselves too: redis-py can swallow a cancellation
        if self._reply_timer is not None:
            self._reply_timer.cancel()
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        if tasks and (await asyncio.wait(tasks, timeout=self.timeout))[1]:
            await self._disconnect()  # a read still waiting fails now
            await asyncio.wait(tasks, timeout=self.timeout)
        await self._disconnect()

    async def _disconnect(self) -> None:
        for client in filter(None, (self._cmd, self._reader)):
            with contextlib.suppress(Exception):  # closing a connection Redis no longer answers on
                await within(client.aclose(), self.timeout)
        self._cmd = self._reader = None

    def _waiting(self) -> int:
        return len(self._pending) + len(self._inflight)

    async def _epoch_now(self) -> tuple[str, int]:
        """The bus's epoch (made now if Redis lost it) and its last seq."""
        epoch, last = await within(
            self._ensure(keys=self._keys[:3], args=[uuid.uuid4().hex[:12], self._seen]), self.timeout)
        return epoch.decode(), int(last)

    # ------------------------------------------------------------------ publishing

    def publish_nowait(self, event: DomainEvent) -> None:
        """Queue the event for the writer, which sends it in order; nothing here waits for Redis.
        This process's listeners hear it now (the call log must not wait for Redis)."""
        self._notify(Envelope(0, event))
        self._queue(_Outgoing(event, None))

    async def publish(self, event: DomainEvent) -> Envelope:
        """Publish and wait for the seq; :class:`BusUnavailable` if Redis did not take it in time."""
        out = _Outgoing(event, asyncio.get_running_loop().create_future())
        self._notify(Envelope(0, event))
        self._queue(out)
        try:
            return await within(out.future, self.timeout)  # type: ignore[arg-type]
        except TimeoutError:
            withdrawn = out in self._pending
            if withdrawn:  # not sent: withdrawn, so a caller may retry without a double
                self._pending.remove(out)
            raise BusUnavailable(f"the bus's Redis ({self._where}) did not take the event within {self.timeout} s"
                                 + ("" if withdrawn else " (it was on its way: it may still be published)")) from None

    def _queue(self, out: _Outgoing) -> None:
        self._pending.append(out)
        if self._waiting() > self.backlog and len(self._pending) > 1:
            lost = self._pending.popleft()
            if lost.future is not None and not lost.future.done():
                lost.future.set_exception(BusUnavailable("dropped: too many events waiting for Redis"))
            self._dropped += 1
            if self._dropped == 1 or self._dropped % 1000 == 0:
                log.error("bus: Redis away and %d events waiting: DROPPED the oldest (%d dropped so far)",
                          self.backlog, self._dropped)
        self._send_next()

    def _next_batch(self) -> list[str]:
        """Move what waits (up to a batch) in flight; its messages."""
        payloads = []
        while self._pending and len(self._inflight) < self.batch:
            out = self._pending.popleft()
            try:
                payloads.append(encode(out.event))
            except Exception as exc:  # a field JSON cannot carry: this event cannot go, the rest can
                log.exception("bus: %s cannot be published", type(out.event).__name__)
                if out.future is not None and not out.future.done():
                    out.future.set_exception(exc)
                continue
            self._inflight.append(out)
        return payloads

    # The writer. Events go out from publish_nowait itself when no batch is on its way, and the next
    # batch from the read callback that got the last one's answer (hotline/redis_wire.py says why):
    # one batch in flight, sent again with the same token until answered, so a batch whose answer
    # was lost is not published twice (PUBLISH keeps the node's last token).

    def _send_next(self) -> None:
        """Send the batch in flight again on a new connection, or the next one, unless one is on its way."""
        wire = self._wire
        if wire is None or (self._inflight and self._sent_on is wire):
            return
        if not self._inflight:
            if not self._pending:
                self._drained.set()
                return
            payloads = self._next_batch()
            if not payloads:  # none could be encoded (each said so): look again
                self._send_next()
                return
            self._batch = (uuid.uuid4().hex[:12], payloads)
        self._send(wire, "EVALSHA", PUBLISH_SHA)

    def _send(self, wire: Wire, verb: str, script: str) -> None:
        token, payloads = self._batch
        try:
            wire.send(self._answered, verb, script, len(self._keys), *self._keys,
                      uuid.uuid4().hex[:12], self._seen, self.capacity, token, *payloads)
        except WireLost:
            return  # the writer task reconnects and sends it again
        self._sent_on = wire
        if self._reply_timer is not None:
            self._reply_timer.cancel()
        self._reply_timer = asyncio.get_running_loop().call_later(self.timeout, self._no_answer, wire)

    def _no_answer(self, wire: Wire) -> None:
        # every call to Redis has a timeout: a Redis that stopped answering is left, and the batch
        # goes again on the next connection
        if wire is self._wire:
            wire.close(f"no answer within {self.timeout} s")

    def _answered(self, reply: object) -> None:
        wire = self._wire
        if self._reply_timer is not None:
            self._reply_timer.cancel()
            self._reply_timer = None
        if isinstance(reply, WireLost) or wire is None:
            return  # the writer task reconnects and sends the batch again
        if isinstance(reply, RespError):
            if str(reply).startswith("NOSCRIPT"):  # a restarted Redis forgot the script: send it whole
                self._send(wire, "EVAL", PUBLISH)
            else:  # answering oddly: the batch waits, and is said to
                log.warning("bus writer: Redis refused the batch: %s", reply)
                wire.close(str(reply))
            return
        try:
            first = int(reply[0])  # type: ignore[index]
        except (TypeError, ValueError, IndexError):
            log.warning("bus writer: an answer that is not the script's: %.200r", reply)
            wire.close("odd answer")
            return
        self._writer_outage.over(self._waiting_note)
        for i, out in enumerate(self._inflight):
            if out.future is not None and not out.future.done():
                out.future.set_result(Envelope(first + i, out.event))
        self._seen = max(self._seen, first + len(self._inflight) - 1)
        self._inflight, self._batch = [], ("", [])
        self._send_next()

    def _waiting_note(self) -> str:
        return f"; {self._waiting()} events waiting"

    async def _write_loop(self) -> None:
        """Keeps the writer connected: connect, send what waits, and when the connection goes, again."""
        outage = self._writer_outage
        while not self._closing:
            try:
                wire = await Wire.open(self.url, self.timeout)
            except Exception as exc:  # Redis away: what waits is kept (up to the backlog)
                await outage.failed(exc, self._waiting_note)
                continue
            self._wire = wire
            try:
                self._send_next()
                lost = await wire.lost
            finally:
                self._wire = None
                wire.close("the bus is closing")
            if self._closing:
                break
            if self._waiting():
                await outage.failed(lost, self._waiting_note)

    async def _read_loop(self) -> None:
        outage = _Outage("bus reader")
        while not self._closing:
            try:
                if outage.since:  # back? the data may have gone while we were away
                    await self._check_epoch()
                reply = await within(
                    self._reader.xread({self._keys[1]: self._last_id}, count=self.batch, block=self.block_ms),
                    self.block_ms / 1000 + self.timeout)
                outage.over()
                if not reply:  # nothing new: was the stream lost (FLUSHALL) under a place it never reaches again?
                    await self._check_epoch()
                    continue
            except Exception as exc:  # whatever it is, the reader must go on
                if not self._closing:
                    await outage.failed(exc)
                continue
            self._take(reply[0][1])

    async def _check_epoch(self) -> None:
        epoch, _last = await self._epoch_now()
        if epoch != self.epoch:
            self._adopt(epoch)

    def _adopt(self, epoch: str) -> None:
        """Redis lost the bus's data: read the new stream from its start, every consumer resyncs."""
        log.warning("bus %r: epoch %s → %s: Redis lost the bus's data (a restart without persistence, "
                    "FLUSHALL); every consumer resyncs", self.prefix, self.epoch, epoch)
        self._left.add(self.epoch)
        self.epoch = epoch
        self._last_id = b"0-0"
        for sub in list(self._subs):
            sub._resync()

    def _take(self, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> None:
        for entry_id, fields in entries:
            self._last_id = entry_id
            epoch = fields.get(b"e", b"").decode()
            if epoch != self.epoch:
                if epoch in self._left:
                    continue  # an old epoch's entry, met while reading a new stream from its start
                self._adopt(epoch)
                return  # and read again from the new stream's start
            seq = int(entry_id.split(b"-", 1)[0])
            if not self._subs:  # nobody here follows the stream (a bridge node): no need to decode it
                self._delivered = seq
                self._seen = max(self._seen, seq)
                continue
            env = self._envelope(seq, fields.get(b"m"))
            if env is not None:
                self._delivered = seq
                self._seen = max(self._seen, seq)
                self._fanout(env)

    def _envelope(self, seq: int, raw: bytes | None) -> Envelope | None:
        """The envelope of one entry; its websocket message is the one the publisher made."""
        try:
            msg = json.loads(raw)  # type: ignore[arg-type]
            message = {"type": msg.pop("type"), "seq": seq, **msg}
        except (TypeError, ValueError, KeyError, AttributeError):
            log.error("bus entry %d is not an event message; skipped: %.200r", seq, raw)
            return None
        name = str(message.get("event", ""))
        cls, event = event_class(name), None
        try:
            event = from_message(cls, message) if cls is not None else None
        except Exception:
            if name not in self._unknown:
                log.exception("bus: %s (seq %d) does not rebuild here; listeners get an UnknownEvent", name, seq)
        if event is None:
            if cls is None and name not in self._unknown:
                log.warning("bus: %s (seq %d) is not known here (a newer node's event?): websockets get its "
                            "message, listeners an UnknownEvent", name, seq)
            self._unknown.add(name)
            at = message.get("at")
            event = UnknownEvent(at=at if isinstance(at, int | float) else 0.0, name=name, data=message)
        object.__setattr__(env := Envelope(seq, event), "_message", message)  # as Envelope.message() caches it
        return env

    async def replay(self, since: int, epoch: str | None = None) -> Replay:
        """As :meth:`hotline.bus.InProcessBus.replay_nowait`, from the stream: what came after
        ``since``; ``gap`` when the epoch differs, ``since`` was trimmed away or is in the future."""
        if self._cmd is None:
            raise BusUnavailable("the bus is not started")
        try:
            current, last, gap, entries = await within(self._replay(
                keys=self._keys[:3],
                args=[uuid.uuid4().hex[:12], self._seen, int(since), "" if epoch is None else "=" + epoch],
            ), self.timeout)
        except NETWORK_ERRORS as exc:
            raise BusUnavailable(f"the bus's Redis ({self._where}) did not answer the replay: {exc!r}") from exc
        envs = (self._envelope(int(i.split(b"-", 1)[0]), dict(zip(f[::2], f[1::2], strict=False)).get(b"m"))
                for i, f in entries)
        return Replay([e for e in envs if e is not None], bool(gap), int(last), current.decode())


def bus_from_url(url: str, **options: Any) -> Bus:
    """The bus a URL names: ``memory://`` (or nothing) → :class:`InProcessBus`;
    ``redis://host:port/db?prefix=…&capacity=…`` (``rediss://``, ``unix:///path?db=…``) →
    :class:`RedisBus`, started by the caller. ``options``: RedisBus's (``timeout``, …)."""
    url = url.strip()
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    capacity = int(query.pop("capacity", options.pop("capacity", 10000)))
    if not url or parts.scheme == "memory":
        return InProcessBus(capacity=capacity)
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise ValueError(f"bus URL {url!r}: memory://, redis://, rediss:// or unix:// expected")
    prefix = query.pop("prefix", options.pop("prefix", "hotline"))
    rest = urlencode(query)  # redis-py's own options (db, …); not urlunsplit, which turns unix:/// into unix:/
    return RedisBus(url.split("?", 1)[0] + (f"?{rest}" if rest else ""), prefix=prefix, capacity=capacity, **options)
