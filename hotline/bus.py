"""The one outbound port: domain events leave their producer (the CTI bridge, the lead's alerts,
the approvals) through a bus, and reach the websockets and the writers that follow it.

Every published event gets a monotonically increasing ``seq``. A consumer that reconnects asks
:meth:`Bus.replay` for what it missed since the last ``seq`` it saw; a bounded ring buffer
answers, and says so (``gap=True``) when the consumer fell too far behind (or the bus
restarted: ``epoch`` changed) and must reload the full state from the REST API instead.

:class:`InProcessBus` serves one box. A Redis implementation follows the same interface
(``publish`` → ``XADD`` with the seq as id, ``replay`` → ``XRANGE``, subscribers → ``XREAD``).

>>> import asyncio
>>> from dataclasses import dataclass
>>> @dataclass(frozen=True, kw_only=True)
... class Ping(DomainEvent):
...     up: bool
>>> bus = InProcessBus(capacity=2)
>>> async def demo():
...     for up in (True, False, True):
...         await bus.publish(Ping(at=0.0, up=up))
...     return await bus.replay(1, bus.epoch), await bus.replay(0, bus.epoch)
>>> ok, late = asyncio.run(demo())
>>> [e.seq for e in ok.envelopes], ok.gap, [e.seq for e in late.envelopes], late.gap
([2, 3], False, [2, 3], True)
"""

from __future__ import annotations

import abc
import asyncio
import dataclasses
import json
import logging
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class DomainEvent:
    """What a producer publishes: ``type`` is the websocket message type (DESIGN.md §3), ``at``
    epoch seconds; subclasses add flat, JSON-friendly fields (:func:`to_message` sends them all)."""

    type: ClassVar[str] = "event"
    at: float


def to_message(ev: DomainEvent, seq: int | None = None) -> dict[str, Any]:
    """The JSON-ready websocket message for one event.

    >>> @dataclass(frozen=True, kw_only=True)
    ... class Up(DomainEvent):
    ...     type: ClassVar[str] = "link_status"
    ...     up: bool
    ...     seats: tuple[str, ...] = ()
    >>> to_message(Up(at=1.0, up=True, seats=("8001",)), seq=7)
    {'type': 'link_status', 'seq': 7, 'event': 'Up', 'at': 1.0, 'up': True, 'seats': ['8001']}
    """
    cls = type(ev)
    names = _FIELDS.get(cls)
    if names is None:
        names = _FIELDS[cls] = tuple(f.name for f in dataclasses.fields(ev))
    msg: dict[str, Any] = {"type": ev.type}
    if seq is not None:
        msg["seq"] = seq
    msg["event"] = cls.__name__
    for name in names:
        v = getattr(ev, name)
        if type(v) in _PLAIN:  # most fields: nothing to convert (this runs for every event published)
            pass
        elif dataclasses.is_dataclass(v):
            v = dataclasses.asdict(v)  # type: ignore[arg-type]
        elif isinstance(v, tuple):
            v = list(v)
        msg[name] = v
    return msg


_FIELDS: dict[type, tuple[str, ...]] = {}  # an event class → its field names, looked up once
_PLAIN = frozenset({str, int, float, bool, type(None)})


@dataclass(frozen=True, slots=True)
class Envelope:
    seq: int
    event: DomainEvent
    _message: dict[str, Any] | None = field(default=None, init=False, repr=False, compare=False)
    _text: str | None = field(default=None, init=False, repr=False, compare=False)

    def message(self) -> dict[str, Any]:
        """The websocket message: ``{"type": …, "seq": …, …fields}``.

        Built once and shared read-only by every consumer: 50 pops to 50 operators would
        otherwise build it 2 500 times in one burst, most of the screen-pop latency.
        """
        if self._message is None:
            object.__setattr__(self, "_message", to_message(self.event, self.seq))
        return self._message  # type: ignore[return-value]

    def text(self) -> str:
        """:meth:`message` as compact JSON, encoded once however many websockets send it."""
        if self._text is None:
            object.__setattr__(self, "_text", json.dumps(self.message(), ensure_ascii=False, separators=(",", ":")))
        return self._text  # type: ignore[return-value]


@dataclass(frozen=True, slots=True)
class Replay:
    envelopes: list[Envelope]
    gap: bool  # True: events were lost for this consumer; reload state, then follow from ``last_seq``
    last_seq: int
    epoch: str


class BusLagged(Exception):
    """Raised by a subscription whose consumer was too slow: replay from ``last_seq``."""

    def __init__(self, last_seq: int) -> None:
        super().__init__(f"subscriber fell behind after seq {last_seq}")
        self.last_seq = last_seq


class Bus(abc.ABC):
    """What producers and consumers of domain events rely on."""

    epoch: str

    @abc.abstractmethod
    async def publish(self, event: DomainEvent) -> Envelope: ...

    @abc.abstractmethod
    async def replay(self, since: int, epoch: str | None = None) -> Replay: ...

    @abc.abstractmethod
    def subscribe(self, maxsize: int = 1000, accept: Accept | None = None) -> Subscription: ...

    @property
    @abc.abstractmethod
    def last_seq(self) -> int: ...


Accept = Callable[[Envelope], bool]


class Subscription:
    """An async iterator of envelopes for one consumer (a websocket, a worker).

    ``accept`` filters as the event is published: with 50 operators each following only their own
    seat, queueing every envelope for every websocket and discarding 49 of 50 later made a burst
    of 50 pops cost 2 500 queue round trips, and the last operator's pop waited for all of them.
    A filter that raises drops the envelope for this consumer (it fails closed) and is logged.
    """

    def __init__(self, bus: InProcessBus, maxsize: int, accept: Accept | None = None) -> None:
        self._bus = bus
        self._q: asyncio.Queue[Envelope] = asyncio.Queue(maxsize)
        self._lagged = False
        self._accept = accept
        self.last_seq = bus.last_seq

    def _put(self, env: Envelope) -> None:
        """Queue an envelope its filter accepted (:meth:`InProcessBus.publish_nowait` filters)."""
        try:
            self._q.put_nowait(env)
        except asyncio.QueueFull:
            # never block the bridge for a slow consumer: drop its queue, tell it to replay
            self._lagged = True
            while not self._q.empty():
                self._q.get_nowait()

    def __aiter__(self) -> AsyncIterator[Envelope]:
        return self

    async def __anext__(self) -> Envelope:
        if self._lagged and self._q.empty():
            self._lagged = False
            raise BusLagged(self.last_seq)
        env = await self._q.get()
        self.last_seq = env.seq
        return env

    def close(self) -> None:
        self._bus._subs.discard(self)


class InProcessBus(Bus):
    """Ring buffer + per-subscriber queues + synchronous listeners, all in this process."""

    def __init__(self, capacity: int = 10000) -> None:
        self.epoch = uuid.uuid4().hex[:12]
        self._seq = 0
        self._ring: deque[Envelope] = deque(maxlen=capacity)
        self._subs: set[Subscription] = set()
        self._listeners: list[Callable[[Envelope], None]] = []

    @property
    def last_seq(self) -> int:
        return self._seq

    def publish_nowait(self, event: DomainEvent) -> Envelope:
        """Publish from synchronous code (the AMI read path); same as :meth:`publish`."""
        self._seq += 1
        env = Envelope(self._seq, event)
        self._ring.append(env)
        for sub in self._subs:  # the filters here, not in a method: every event × every websocket passes
            if sub._lagged:
                continue
            accept = sub._accept
            if accept is not None:
                try:
                    if not accept(env):
                        continue
                except Exception:
                    log.exception("subscription filter failed on seq %d; not delivered", env.seq)
                    continue
            sub._put(env)
        for fn in self._listeners:
            try:
                fn(env)
            except Exception:  # a broken consumer must not stop the bridge
                log.exception("bus listener %r failed on seq %d", fn, env.seq)
        return env

    async def publish(self, event: DomainEvent) -> Envelope:
        return self.publish_nowait(event)

    async def replay(self, since: int, epoch: str | None = None) -> Replay:
        return self.replay_nowait(since, epoch)

    def replay_nowait(self, since: int, epoch: str | None = None) -> Replay:
        ring = self._ring
        if epoch is not None and epoch != self.epoch:  # the bus restarted: seqs mean nothing
            return Replay(list(ring), True, self._seq, self.epoch)
        oldest = ring[0].seq if ring else self._seq + 1
        gap = since < oldest - 1 or since > self._seq
        start = max(0, since - oldest + 1)
        envs = [ring[i] for i in range(start, len(ring))] if not gap else list(ring)
        return Replay(envs, gap, self._seq, self.epoch)

    def subscribe(self, maxsize: int = 1000, accept: Accept | None = None) -> Subscription:
        sub = Subscription(self, maxsize, accept)
        self._subs.add(sub)
        return sub

    def add_listener(self, fn: Callable[[Envelope], None]) -> Callable[[], None]:
        """A synchronous consumer (e.g. the call log writer); returns a remover."""
        self._listeners.append(fn)
        return lambda: self._listeners.remove(fn)
