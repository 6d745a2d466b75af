"""The bus's writer: events into the Redis stream in order, each batch exactly once, sent at the end
of the loop's turn that made it, or sooner once ``early`` events wait (issue #15; the bus itself is
:mod:`hotline.redis_bus`).

Each batch is one call of the ``PUBLISH`` script (INCRBY the seq, XADD the entries), so publishers in
several processes get contiguous seqs in the stream's order. Batches are numbered per node and sent
without waiting for the previous one's answer (up to ``max_in_flight`` on the way): on a bridge busy
with a burst of calls, waiting for each answer's turn on the loop before sending the next batch put
some 10–30 ms between the AMI event and the stream (bench/screen_pop.py at 200 calls).

Exactly once: the script keeps the node's last applied batch number and the first seq of its last
64 batches. A batch sent again after a lost connection (its answer lost) is answered from there and
not applied twice; a batch that would skip one not applied yet is refused, so a retried batch can
never land after a later one. After any failure the connection is dropped and every batch still
unanswered goes again, in order, on the next one.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from hotline.bus import DomainEvent, Envelope
from hotline.codec import encode
from hotline.redis_wire import RespError, Wire, WireLost

log = logging.getLogger("hotline.redis_bus")

# KEYS: seq, events, epoch. ARGV[1]: a new epoch token; ARGV[2]: the highest seq this node has seen.
# The seq and the epoch are the bus's data: when either is missing (a Redis restarted without
# persistence, FLUSHALL, an eviction), what remains is old news: a new epoch, a new stream, and
# seqs going on above the floor (a websocket told seq N that missed the change does not then take
# the new stream's first events for old ones).
EPOCH = """
local epoch = redis.call('GET', KEYS[3])
if not epoch or redis.call('EXISTS', KEYS[1]) == 0 then
  epoch = ARGV[1]
  redis.call('SET', KEYS[3], epoch)
  redis.call('UNLINK', KEYS[2])
  redis.call('SET', KEYS[1], math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), tonumber(ARGV[2])))
end
"""

# KEYS[4]: this node's receipts (a hash: 'last' → the last batch applied, <batch> → its first seq).
# ARGV[3]: capacity, ARGV[4]: the batch's number, ARGV[5..]: messages.
PUBLISH = EPOCH + """
local no = tonumber(ARGV[4])
local last = tonumber(redis.call('HGET', KEYS[4], 'last') or '0')
if no <= last then  -- applied, but the answer was lost: its first seq (-1 when long forgotten)
  return {tonumber(redis.call('HGET', KEYS[4], ARGV[4]) or '-1'), epoch}
end
if last > 0 and no ~= last + 1 then
  return redis.error_reply('GAP batch ' .. no .. ' after ' .. last)
end
local n = #ARGV - 4
local first = redis.call('INCRBY', KEYS[1], n) - n + 1
for i = 0, n - 1 do
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], (first + i) .. '-1', 'e', epoch, 'm', ARGV[5 + i])
end
redis.call('HSET', KEYS[4], 'last', no, ARGV[4], first)
redis.call('HDEL', KEYS[4], tostring(no - 64))
redis.call('EXPIRE', KEYS[4], 86400)
return {first, epoch}
"""
PUBLISH_SHA = hashlib.sha1(PUBLISH.encode()).hexdigest()


def _token() -> str:
    """A batch's would-be epoch token (the script uses it only when the epoch is gone): 48 random bits,
    as ``uuid4().hex[:12]`` gave, without its system call a batch (6 % of the AMI read path's samples
    in a 200-call burst). The module's generator, seeded from the system's entropy, and again in a
    forked child."""
    return f"{random.getrandbits(48):012x}"


class BusUnavailable(RuntimeError):
    """Redis did not answer in time."""


class Outage:
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


# events that go without waiting for the turn's end: a batch of them is still one EVALSHA (~10 pops'
# worth in a burst's rings), and the first of a read's events leave while the rest are parsed
EARLY = 32


@dataclass(slots=True, eq=False)
class Outgoing:
    """An event waiting for the writer (a ``publish`` caller waits on ``future``)."""

    event: DomainEvent
    future: asyncio.Future[Envelope] | None


@dataclass(slots=True, eq=False)
class _Batch:
    no: int
    outs: list[Outgoing]
    payloads: list[str]
    sent_on: Wire | None = field(default=None)


class StreamPublisher:
    """Sends the events given to :meth:`queue` to the stream, in order, each once; keeps them while
    Redis is away (up to ``backlog``, then drops the oldest, loudly)."""

    def __init__(self, url: str, keys: list[str], *, capacity: int, timeout: float, batch: int, backlog: int,
                 floor: Callable[[], int], published: Callable[[int], None], max_in_flight: int = 16,
                 early: int = EARLY) -> None:
        self.url, self.keys, self.capacity, self.timeout = url, keys, capacity, timeout
        self.batch, self.backlog, self.max_in_flight, self.early = batch, backlog, max_in_flight, max(1, early)
        self.floor = floor  # the highest seq the node has seen (a new epoch goes on above it)
        self.published = published  # told the last seq of each batch applied
        self.drained = asyncio.Event()  # nothing left to send
        self.outage = Outage("bus writer")
        self._pending: deque[Outgoing] = deque()
        self._flight: deque[_Batch] = deque()
        self._next_no = 1
        self._wire: Wire | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._soon: asyncio.Handle | None = None
        self._dropped = 0
        self._closing = False

    def waiting(self) -> int:
        return len(self._pending) + sum(len(b.outs) for b in self._flight)

    def note(self) -> str:
        return f"; {self.waiting()} events waiting"

    def queue(self, out: Outgoing) -> None:
        """Send ``out`` at the end of this turn of the loop, with whatever else was queued in it, if
        the connection is up and fewer than ``max_in_flight`` batches are on their way; else it waits,
        in order, for the next batch.

        Why the turn: one read of AMI holds many frames in a burst, and each frame's events went as a
        batch of their own, an EVALSHA each: a write that woke Redis, and each XADD woke every web
        node's reader, on a box whose cores the burst already fills. One batch a turn is one of each.

        Why not always the whole turn: a wall of rings (a burst's lookups answered together) comes in
        one read, and parsing it took the bridge 30–80 ms; its first pops waited for the last frame's,
        and a burst's first rings were its slowest pops (bench/screen_pop.py, thirteenth session).
        Once ``early`` events wait they go, and the web nodes start on them while the rest is parsed.
        In such a burst the ``max_in_flight`` batches on their way are then of ``early`` events each, and
        what a turn makes past them waits for their answers (Redis runs more, smaller scripts)."""
        self._pending.append(out)
        if self.waiting() > self.backlog and len(self._pending) > 1:
            lost = self._pending.popleft()
            if lost.future is not None and not lost.future.done():
                lost.future.set_exception(BusUnavailable("dropped: too many events waiting for Redis"))
            self._dropped += 1
            if self._dropped == 1 or self._dropped % 1000 == 0:
                log.error("bus: Redis away and %d events waiting: DROPPED the oldest (%d dropped so far)",
                          self.backlog, self._dropped)
        if len(self._pending) >= self.early and len(self._flight) < self.max_in_flight:
            self._send()  # nothing goes while the connection is down
        if self._pending and self._soon is None:
            self._soon = asyncio.get_running_loop().call_soon(self._turn_ended)

    def _turn_ended(self) -> None:
        self._soon = None
        self._send()

    def withdraw(self, out: Outgoing) -> bool:
        """Take back an event not sent yet (True), so its caller may retry without a double."""
        if out in self._pending:
            self._pending.remove(out)
            return True
        return False

    async def run(self) -> None:
        """Until :meth:`close`: connect, send what waits, and when the connection goes, again."""
        while not self._closing:
            try:
                wire = await Wire.open(self.url, self.timeout)
                try:  # EVALSHA from here on: a Redis restarted since knows no scripts
                    async with asyncio.timeout(self.timeout):
                        await wire.call("SCRIPT", "LOAD", PUBLISH)
                except BaseException:
                    wire.close("set-up failed")
                    raise
            except Exception as exc:  # Redis away: what waits is kept (up to the backlog)
                await self.outage.failed(exc, self.note)
                continue
            self._wire = wire
            try:
                self._send()
                lost = await wire.lost
            finally:
                self._wire = None
                self._stop_timer()
                wire.close("the writer stopped")
            if not self._closing and self.waiting():
                await self.outage.failed(lost, self.note)

    def close(self) -> None:
        self._closing = True
        self._stop_timer()
        if self._soon is not None:
            self._soon.cancel()
            self._soon = None
        if self._wire is not None:
            self._wire.close("the bus is closing")

    # --- sending and answers ------------------------------------------------------------------

    def _send(self) -> None:
        wire = self._wire
        if wire is None:
            return
        for b in self._flight:  # after a new connection: what is unanswered goes again, first, in order
            if b.sent_on is not wire and not self._write(wire, b):
                return
        while self._pending and len(self._flight) < self.max_in_flight:
            outs, payloads = [], []
            while self._pending and len(outs) < self.batch:
                out = self._pending.popleft()
                try:
                    payloads.append(encode(out.event))
                except Exception as exc:  # a field JSON cannot carry: this event cannot go, the rest can
                    log.exception("bus: %s cannot be published", type(out.event).__name__)
                    if out.future is not None and not out.future.done():
                        out.future.set_exception(exc)
                    continue
                outs.append(out)
            if outs:
                b = _Batch(self._next_no, outs, payloads)
                self._next_no += 1
                self._flight.append(b)
                if not self._write(wire, b):
                    return
        if not self._flight and not self._pending:
            self.drained.set()

    def _write(self, wire: Wire, b: _Batch) -> bool:
        try:
            wire.send(lambda reply: self._answered(wire, b, reply), "EVALSHA", PUBLISH_SHA, len(self.keys),
                      *self.keys, _token(), self.floor(), self.capacity, b.no, *b.payloads)
        except WireLost:
            return False  # run() reconnects and sends it again
        b.sent_on = wire
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.timeout, self._no_answer, wire)
        return True

    def _no_answer(self, wire: Wire) -> None:
        # every call to Redis has a timeout: a Redis that stopped answering is left, and what is
        # unanswered goes again on the next connection
        self._timer = None
        wire.close(f"no answer within {self.timeout} s")

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _answered(self, wire: Wire, b: _Batch, reply: object) -> None:
        if isinstance(reply, WireLost) or wire is not self._wire:
            return  # run() reconnects; the batch goes again
        if not self._flight or self._flight[0] is not b:  # answers come in order: a bug if not
            wire.close("an answer out of order")
            return
        try:
            if isinstance(reply, RespError):
                raise reply
            first = int(reply[0])  # type: ignore[index]
        except (RespError, TypeError, ValueError, IndexError) as exc:  # refused or odd: try again, in order
            log.warning("bus writer: Redis did not take batch %d: %s", b.no, str(exc)[:200])
            wire.close(str(exc))
            return
        self._flight.popleft()
        self._stop_timer()
        if self._flight:  # the next answer gets its own timeout from now
            self._timer = asyncio.get_running_loop().call_later(self.timeout, self._no_answer, wire)
        self.outage.over(self.note)
        for i, out in enumerate(b.outs):
            if out.future is not None and not out.future.done():
                if first < 0:  # applied long ago, its seq forgotten (more than 64 batches back)
                    out.future.set_exception(BusUnavailable("published, but its seq is no longer known"))
                else:
                    out.future.set_result(Envelope(first + i, out.event))
        if first > 0:
            self.published(first + len(b.outs) - 1)
        self._send()
