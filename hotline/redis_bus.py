"""The bus shared between processes over a Redis stream (issue #15: web nodes and a CTI bridge
in other processes follow one bus).

Keys, under a prefix: ``{prefix}:events``, the stream, each entry's id ``<seq>-1`` (so the websocket
contract of :mod:`hotline.bus` holds as it is: contiguous seqs, ``since=<seq>&epoch=<epoch>``), its
fields ``e`` (the epoch) and ``m`` (the message as JSON, without the seq); ``{prefix}:seq``, the
last seq given; ``{prefix}:epoch``, a random token made when the bus's data begins (a Redis that
lost its data lost it too: a new one tells every consumer to reload); ``{prefix}:node:<id>``, each
node's receipts (a retried batch is not published twice).

Publishing is :mod:`hotline.redis_publish`'s: one Lua script per batch, so publishers in several
processes get contiguous seqs in the stream's order. :meth:`RedisBus.publish_nowait` (the AMI read
path) never waits for Redis: the event goes on the socket at the end of the loop's turn, with the
rest of that turn's events (at once when ``redis_publish.EARLY`` events wait and fewer than its
``max_in_flight`` batches are out), or waits in order while
batches are on their way or Redis is away. One reader task per process follows the stream
(``XREAD BLOCK``) and hands each envelope, ``HAND_ON`` a turn, to this process's subscriptions
(:class:`hotline.bus.LocalFanout`), its own events included: every node sees one order. Listeners
hear this process's own events as they are published, not after the round trip: the bridge files
its calls even while Redis is away. Every call to Redis has a timeout; a lost connection is retried
with a backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from hotline.bus import Bus, DomainEvent, Envelope, InProcessBus, Kinds, LocalFanout, Replay, event_class
from hotline.codec import from_message
from hotline.redis_publish import EPOCH, BusUnavailable, Outage, Outgoing, StreamPublisher
from hotline.redis_wire import RespError, Wire, WireLost

log = logging.getLogger(__name__)

E = TypeVar("E")
T = TypeVar("T")
NETWORK_ERRORS = (RedisError, OSError, TimeoutError)
# entries of an XREAD's answer handed on in one turn of the loop: in a burst the sockets' sends of the
# first ones go between turns while the rest wait (bench/screen_pop.py, thirteenth session)
HAND_ON = 32

ENSURE_EPOCH = EPOCH + "return {epoch, tonumber(redis.call('GET', KEYS[1]))}"

# ARGV[3]: since; ARGV[4]: '=' and the consumer's epoch, or '' when it gave none.
REPLAY = EPOCH + """
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


_HEAD, _EVENT = b'{"type":"', b'","event":"'


def _event_name(raw: bytes | None) -> bytes | None:
    """The event's name from its message's head, without decoding the rest; None if the head is not
    :func:`hotline.codec.encode`'s (a ``type`` is a plain name: it holds no quote).

    >>> _event_name(b'{"type":"seat_update","event":"SeatStateChanged","at":1.0}'), _event_name(b'[1]')
    (b'SeatStateChanged', None)
    """
    if not raw or not raw.startswith(_HEAD):
        return None
    at = raw.find(_EVENT, len(_HEAD), 96)
    if at < 0:
        return None
    start = at + len(_EVENT)
    end = raw.find(b'"', start, start + 96)
    return raw[start:end] if end > start else None


def events_key(prefix: str) -> str:
    """The bus's stream under ``prefix``: what a tool that follows the bus beside the nodes reads."""
    return f"{prefix}:events"


async def within(aw: Awaitable[T], seconds: float) -> T:
    # not asyncio.wait_for, which on Python 3.11 may return a result in place of a cancellation
    async with asyncio.timeout(seconds):
        return await aw


@dataclass(frozen=True, slots=True, kw_only=True)
class UnknownEvent(DomainEvent):
    """What listeners get for an event this process does not know (a newer node's); websockets get its message."""

    name: str
    data: dict[str, Any]


# -------------------------------------------------------------------------------------- the bus


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
        self._keys = [f"{prefix}:seq", events_key(prefix), f"{prefix}:epoch", f"{prefix}:node:{uuid.uuid4().hex[:12]}"]
        self._delivered = 0  # the last seq handed to this process's consumers
        self._seen = 0  # the highest seq this node saw (delivered or published): a new epoch goes on above it
        self._last_id: bytes | str = b"0-0"  # where the reader is in the stream
        self._left: set[str] = set()  # epochs this node left: their entries are old news
        self._out = StreamPublisher(url, self._keys, capacity=capacity, timeout=timeout, batch=batch,
                                    backlog=backlog, floor=lambda: self._seen, published=self._published)
        self._closing = False
        self._unknown: set[str] = set()
        self._judged: tuple[Kinds | None, dict[bytes, bool]] = (None, {})  # per kind: followed here?
        self._tasks: list[asyncio.Task[None]] = []
        self._checks: set[asyncio.Task[None]] = set()
        self._cmd: aioredis.Redis | None = None
        self._read_timer: asyncio.TimerHandle | None = None
        self._reader_wire: Wire | None = None  # the reader's connection while it has one (tests cut it)

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
        self._ensure, self._replay = (self._cmd.register_script(s) for s in (ENSURE_EPOCH, REPLAY))
        try:
            self.epoch, last = await self._epoch_now()
        except NETWORK_ERRORS as exc:
            await self._disconnect()
            raise BusUnavailable(f"the bus's Redis ({self._where}) did not answer: {exc!r}") from exc
        self._delivered = self._seen = max(self._seen, last)
        self._last_id = f"{last}-1" if last else b"0-0"
        self._tasks = [asyncio.create_task(self._read_loop(), name=f"bus-reader-{self.prefix}"),
                       asyncio.create_task(self._out.run(), name=f"bus-writer-{self.prefix}")]
        log.info("bus on Redis %s, prefix %r: epoch %s, seq %d", self._where, self.prefix, self.epoch, last)

    async def close(self) -> None:
        """Give what waits to be sent one timeout to go, then stop and disconnect."""
        if self._out.waiting() and self._tasks:
            self._out.drained.clear()
            with contextlib.suppress(TimeoutError):
                await within(self._out.drained.wait(), self.timeout)
        if self._out.waiting():
            log.error("bus closing with %d events not sent to Redis", self._out.waiting())
        self._closing = True  # the loops end by themselves too: redis-py can swallow a cancellation
        self._out.close()
        tasks, self._tasks = [*self._tasks, *self._checks], []
        for task in tasks:
            task.cancel()
        if tasks and (await asyncio.wait(tasks, timeout=self.timeout))[1]:
            await self._disconnect()  # an epoch check or replay still waiting fails now
            await asyncio.wait(tasks, timeout=self.timeout)
        await self._disconnect()

    async def _disconnect(self) -> None:
        client, self._cmd = self._cmd, None
        if client is not None:
            with contextlib.suppress(Exception):  # closing a connection Redis no longer answers on
                await within(client.aclose(), self.timeout)

    def _published(self, last: int) -> None:
        self._seen = max(self._seen, last)

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
        self._out.queue(Outgoing(event, None))

    async def publish(self, event: DomainEvent) -> Envelope:
        """Publish and wait for the seq; :class:`BusUnavailable` if Redis did not take it in time."""
        out = Outgoing(event, asyncio.get_running_loop().create_future())
        self._notify(Envelope(0, event))
        self._out.queue(out)
        try:
            return await within(out.future, self.timeout)  # type: ignore[arg-type]
        except TimeoutError:
            withdrawn = self._out.withdraw(out)  # not sent: withdrawn, so a caller may retry without a double
            raise BusUnavailable(f"the bus's Redis ({self._where}) did not take the event within {self.timeout} s"
                                 + ("" if withdrawn else " (it was on its way: it may still be published)")) from None

    # The reader. The first HAND_ON entries of each XREAD's answer are handed on inside the read that
    # got it, the rest in the loop's next turns, and the next XREAD goes after the last of them
    # (hotline/redis_wire.py says why not through a task); an empty answer (BLOCK ran out) checks the
    # epoch first, in a task of its own.

    async def _read_loop(self) -> None:
        outage = Outage("bus reader")
        while not self._closing:
            wire = None
            try:
                wire = self._reader_wire = await Wire.open(self.url, self.timeout)
                if outage.since:  # back? the data may have gone while we were away
                    await self._check_epoch()
                self._read_next(wire, outage)
                lost: BaseException = await wire.lost
            except Exception as exc:  # whatever it is, the reader must go on
                lost = exc
            finally:
                self._reader_wire = None
                if wire is not None:
                    wire.close("the reader stopped")
                if self._read_timer is not None:
                    self._read_timer.cancel()
            if not self._closing:
                await outage.failed(lost)

    def _read_next(self, wire: Wire, outage: Outage) -> None:
        try:
            wire.send(lambda reply: self._read(wire, outage, reply), "XREAD", "COUNT", self.batch,
                      "BLOCK", self.block_ms, "STREAMS", self._keys[1], self._last_id)
        except WireLost:
            return
        # a blocked XREAD outlives its BLOCK by the timeout at most: then Redis is not answering
        self._read_timer = asyncio.get_running_loop().call_later(
            self.block_ms / 1000 + self.timeout, wire.close, "no answer to XREAD in time")

    def _read(self, wire: Wire, outage: Outage, reply: object) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
        if isinstance(reply, Exception) or self._closing:
            if isinstance(reply, RespError):
                wire.close(f"XREAD refused: {reply}")
            return
        outage.over()
        if not reply:  # nothing new: was the stream lost (FLUSHALL) under a place it never reaches again?
            task = asyncio.create_task(self._idle(wire, outage), name=f"bus-reader-check-{self.prefix}")
            self._checks.add(task)
            task.add_done_callback(self._checks.discard)
            return
        self._hand_on(wire, outage, reply[0][1], 0)  # type: ignore[index]

    def _hand_on(self, wire: Wire, outage: Outage, entries: list[Any], start: int) -> None:
        """Hand on ``HAND_ON`` entries of an XREAD's answer, the rest in the loop's next turns, then
        read again. A burst's answer holds hundreds of entries; decoded and routed in one go, the
        websockets sent nothing until the last was (the sockets' tasks run between turns)."""
        if self._closing or wire.lost.done():
            return  # the reader reads again from the last entry handed on, on its next connection
        end = start + HAND_ON
        try:
            go_on = self._take([(i, dict(zip(f[::2], f[1::2], strict=False))) for i, f in entries[start:end]])
        except Exception:  # a bug here must not stop the bus: said, and the next read goes on from the
            # entry it stopped at (the rest of this answer is read again, not skipped)
            log.exception("bus reader: entries up to %r not handed on", self._last_id)
            go_on = False
        if go_on and end < len(entries):
            asyncio.get_running_loop().call_soon(self._hand_on, wire, outage, entries, end)
        else:
            self._read_next(wire, outage)

    async def _idle(self, wire: Wire, outage: Outage) -> None:
        try:
            await self._check_epoch()
        except Exception as exc:
            wire.close(f"epoch check failed: {exc!r}")
            return
        self._read_next(wire, outage)

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

    def _take(self, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> bool:
        """Hand ``entries`` to this process's consumers; False when the stream turned out to be a new
        epoch's (the reader then reads it from its start)."""
        followed = self.followed()
        for entry_id, fields in entries:
            self._last_id = entry_id
            epoch = fields.get(b"e", b"").decode()
            if epoch != self.epoch:
                if epoch in self._left:
                    continue  # an old epoch's entry, met while reading a new stream from its start
                self._adopt(epoch)
                return False  # and read again from the new stream's start
            seq = int(entry_id.split(b"-", 1)[0])
            raw = fields.get(b"m")
            if followed is not None and not self._followed_here(raw, followed):
                self._delivered = seq  # nobody here follows its kind (the bridge, most events): not decoded
                self._seen = max(self._seen, seq)
                continue
            env = self._envelope(seq, raw)
            if env is not None:
                self._delivered = seq
                self._seen = max(self._seen, seq)
                self._fanout(env)
        return True

    def _followed_here(self, raw: bytes | None, followed: Kinds) -> bool:
        """Whether some subscription here follows the entry's kind, told from its message's head (as
        :func:`hotline.codec.encode` writes it: ``{"type":"…","event":"Name",…}``) without decoding
        it. A message of another shape, or of an event not known here, is decoded as before."""
        if not followed:
            return False
        name = _event_name(raw)
        if name is None:
            return True
        if self._judged[0] is not followed:  # the subscriptions changed: judge each kind again
            self._judged = (followed, {})
        known = self._judged[1]
        wanted = known.get(name)
        if wanted is None:
            cls = event_class(name.decode("utf-8", "replace"))
            wanted = known[name] = cls is None or issubclass(cls, followed)
        return wanted

    def _envelope(self, seq: int, raw: bytes | None) -> Envelope | None:
        """The envelope of one entry: the message and text the publisher made, and its event, rebuilt
        when something first asks for it (a web node routes and sends by the message alone)."""
        try:
            msg = json.loads(raw)  # type: ignore[arg-type]
            message = {"type": msg.pop("type"), "seq": seq, **msg}
        except (TypeError, ValueError, KeyError, AttributeError):
            log.error("bus entry %d is not an event message; skipped: %.200r", seq, raw)
            return None
        name = str(message.get("event", ""))
        cls = event_class(name)
        if cls is None and name not in self._unknown:
            log.warning("bus: %s (seq %d) is not known here (a newer node's event?): websockets get its "
                        "message, listeners an UnknownEvent", name, seq)
            self._unknown.add(name)
        text = _with_seq(raw, message["type"], seq) if isinstance(raw, bytes) else None
        return Envelope.received(seq, cls or UnknownEvent, message, text, lambda: self._rebuild(cls, seq, message))

    def _rebuild(self, cls: type[DomainEvent] | None, seq: int, message: dict[str, Any]) -> DomainEvent:
        """The typed event of an entry's message; an :class:`UnknownEvent` if it does not rebuild here."""
        name = str(message.get("event", ""))
        if cls is not None:
            try:
                return from_message(cls, message)
            except Exception:
                if name not in self._unknown:
                    log.exception("bus: %s (seq %d) does not rebuild here; listeners get an UnknownEvent", name, seq)
                    self._unknown.add(name)
        at = message.get("at")
        return UnknownEvent(at=at if isinstance(at, int | float) else 0.0, name=name, data=message)

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


def _with_seq(raw: bytes, kind: object, seq: int) -> str | None:
    """The websocket text of an entry: its message as the publisher encoded it, with the seq put after
    the type, as :meth:`hotline.bus.Envelope.text` would write it (same separators, ``ensure_ascii``
    off; the values went through JSON once already, so encoding them again gives the same bytes).
    Spares each web node a ``json.dumps`` of every entry; None (encode it then) for another shape."""
    if not isinstance(kind, str):
        return None
    head = _HEADS.get(kind)
    if head is None:
        text = '{"type":' + json.dumps(kind, ensure_ascii=False) + ','
        head = (text.encode(), text)
        if len(_HEADS) < 256:  # the product's few dozen types (a stream of odd ones is not kept)
            _HEADS[kind] = head
    if not raw.startswith(head[0]):
        return None
    try:
        rest = raw[len(head[0]):].decode()
    except UnicodeDecodeError:  # not from our publisher (JSON's parser let a lone surrogate through)
        return None
    return f'{head[1]}"seq":{seq},{rest}'


_HEADS: dict[str, tuple[bytes, str]] = {}  # a message type → how its entries begin, as bytes and as text


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
