"""The one outbound port: domain events leave their producer (the CTI bridge, the lead's alerts,
the approvals) through a bus, and reach the websockets and the writers that follow it.

Every published event gets a monotonically increasing ``seq``. A consumer that reconnects asks
:meth:`Bus.replay` for what it missed since the last ``seq`` it saw; a bounded ring buffer
answers, and says so (``gap=True``) when the consumer fell too far behind (or the bus
restarted: ``epoch`` changed) and must reload the full state from the REST API instead.

:class:`InProcessBus` serves one box; :class:`hotline.redis_bus.RedisBus` shares one bus between
processes (``publish`` → ``XADD`` with the seq as id, ``replay`` → ``XRANGE``, one ``XREAD`` reader
per process). Both hand envelopes to this process's consumers through :class:`LocalFanout`.

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
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, ClassVar

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class DomainEvent:
    """What a producer publishes: ``type`` is the websocket message type (DESIGN.md §3), ``at``
    epoch seconds; subclasses add flat, JSON-friendly fields (:func:`to_message` sends them all)."""

    type: ClassVar[str] = "event"
    at: float

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # every event class by name, for a bus that carries events between processes
        # (RedisBus rebuilds them from JSON). ``@dataclass(slots=True)`` makes a second class after
        # the first: registered again under the same name, that final class is the one kept. (Not
        # ``super()``: its cell still holds the class slots replaced, which no subclass derives from.)
        super(DomainEvent, cls).__init_subclass__(**kwargs)
        _EVENTS[cls.__name__] = cls


_EVENTS: dict[str, type[DomainEvent]] = {}


def event_class(name: str) -> type[DomainEvent] | None:
    """The event class published under ``name`` (the message's ``event``), if this process has
    imported it."""
    return _EVENTS.get(name)


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


class Envelope:
    """One published event with its ``seq``; read-only.

    Its websocket message and text are made once and shared by every consumer: 50 pops to 50
    operators would otherwise build them 2 500 times in one burst, most of the screen-pop latency.

    An envelope read from a bus shared between processes (:meth:`received`) comes with its message
    and rebuilds the typed event from it only when something asks for :attr:`event`: a web node
    routes and sends every entry of the centre's stream, about seven a call, by its message alone,
    and :attr:`kind` tells the event's class without rebuilding it.
    """

    __slots__ = ("_event", "_kind", "_message", "_rebuild", "_text", "seq")

    seq: int
    _event: DomainEvent | None
    _kind: type[DomainEvent]
    _rebuild: Callable[[], DomainEvent] | None
    _message: dict[str, Any] | None
    _text: str | None

    def __init__(self, seq: int, event: DomainEvent) -> None:
        self._fill(seq, event, type(event), None, None, None)

    @classmethod
    def received(cls, seq: int, kind: type[DomainEvent], message: dict[str, Any], text: str | None,
                 rebuild: Callable[[], DomainEvent]) -> Envelope:
        """An envelope from another process's publisher: its ``message`` (with its seq) and, if
        known, its ``text``; ``rebuild`` makes the event, of class ``kind``, when it is first asked for."""
        env = cls.__new__(cls)
        env._fill(seq, None, kind, rebuild, message, text)
        return env

    def _fill(self, seq: int, event: DomainEvent | None, kind: type[DomainEvent],
              rebuild: Callable[[], DomainEvent] | None, message: dict[str, Any] | None, text: str | None) -> None:
        """Every slot, once (assignment is refused afterwards)."""
        for name, value in (("seq", seq), ("_event", event), ("_kind", kind), ("_rebuild", rebuild),
                            ("_message", message), ("_text", text)):
            object.__setattr__(self, name, value)

    @property
    def event(self) -> DomainEvent:
        event = self._event
        if event is None:
            assert self._rebuild is not None, "an envelope has its event or the means to rebuild it"
            event = self._rebuild()
            object.__setattr__(self, "_event", event)
            object.__setattr__(self, "_rebuild", None)
        return event

    @property
    def kind(self) -> type[DomainEvent]:
        """The event's class, known without rebuilding it (what a filter by kind asks). An entry whose
        fields do not rebuild here keeps its class as its kind but its event is an ``UnknownEvent``:
        a filter checks the event too once the kind matches. (Equality, hash and repr rebuild.)"""
        return self._kind

    def message(self) -> dict[str, Any]:
        """The websocket message: ``{"type": …, "seq": …, …fields}``, built once."""
        if self._message is None:
            object.__setattr__(self, "_message", to_message(self.event, self.seq))
        return self._message  # type: ignore[return-value]

    def text(self) -> str:
        """:meth:`message` as compact JSON, encoded once however many websockets send it."""
        if self._text is None:
            object.__setattr__(self, "_text", json.dumps(self.message(), ensure_ascii=False, separators=(",", ":")))
        return self._text  # type: ignore[return-value]

    def __setattr__(self, name: str, value: Any) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")

    def __reduce__(self) -> tuple[Any, ...]:
        """Copied or pickled as the event and its seq (a received one's rebuild is not picklable)."""
        return (Envelope, (self.seq, self.event))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Envelope):
            return NotImplemented
        return (self.seq, self.event) == (other.seq, other.event)

    def __hash__(self) -> int:
        return hash((self.seq, self.event))

    def __repr__(self) -> str:
        return f"Envelope(seq={self.seq!r}, event={self.event!r})"


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
    def publish_nowait(self, event: DomainEvent) -> Envelope | None:
        """Publish from synchronous code without waiting: the envelope if it is already known
        (in process), else None (the bus sends it in order, later)."""

    @abc.abstractmethod
    def add_listener(self, fn: Callable[[Envelope], None]) -> Callable[[], None]: ...

    async def start(self) -> None:  # noqa: B027 (optional: a bus in process has nothing to start)
        """Connect (a bus in another process); nothing to do in process."""

    async def close(self) -> None:  # noqa: B027
        """Stop and disconnect; nothing to do in process."""

    @abc.abstractmethod
    async def replay(self, since: int, epoch: str | None = None) -> Replay: ...

    @abc.abstractmethod
    def subscribe(self, maxsize: int = 1000, accept: Accept | None = None,
                  kinds: Kinds | None = None) -> Subscription: ...

    @property
    @abc.abstractmethod
    def last_seq(self) -> int: ...


Accept = Callable[[Envelope], bool]
# the event classes a consumer follows (subclasses too); None: every event. Unlike ``accept`` it is
# known before an event is rebuilt: a bus shared between processes need not rebuild from JSON what no
# consumer here follows (the bridge follows a handful of kinds of a stream that carries ~7 events a call)
Kinds = tuple[type[DomainEvent], ...]


class Subscription:
    """An async iterator of envelopes for one consumer (a websocket, a worker).

    ``accept`` filters as the event is published: with 50 operators each following only their own
    seat, queueing every envelope for every websocket and discarding 49 of 50 later made a burst
    of 50 pops cost 2 500 queue round trips, and the last operator's pop waited for all of them.
    A filter that raises drops the envelope for this consumer (it fails closed) and is logged.
    ``kinds`` (event classes) filters before ``accept``, and tells the bus what to rebuild at all.
    """

    def __init__(self, bus: LocalFanout, maxsize: int, accept: Accept | None = None,
                 kinds: Kinds | None = None) -> None:
        self._bus = bus
        self._q: asyncio.Queue[Envelope] = asyncio.Queue(maxsize)
        self._lagged = False
        self._accept = accept
        self._kinds = kinds
        self.last_seq = bus.last_seq

    def _put(self, env: Envelope) -> None:
        """Queue an envelope its filter accepted (:meth:`LocalFanout._fanout` filters)."""
        try:
            self._q.put_nowait(env)
        except asyncio.QueueFull:
            # never block the bridge for a slow consumer: drop its queue, tell it to replay — and wake
            # it: a consumer already waiting on the queue would otherwise wait for ever (every later
            # event is dropped while it is lagged), which stopped the lead's alerts after a burst
            self._lagged = True
            while not self._q.empty():
                self._q.get_nowait()
            self._q.put_nowait(_RESYNC)

    def _resync(self) -> None:
        """Tell the consumer to resync now, even one waiting on an empty queue (the bus's seqs
        restarted: what is queued means nothing)."""
        while not self._q.empty():
            self._q.get_nowait()
        self._lagged = True  # nothing more is queued until the consumer has taken the BusLagged
        self._q.put_nowait(_RESYNC)

    def __aiter__(self) -> AsyncIterator[Envelope]:
        return self

    async def __anext__(self) -> Envelope:
        if self._lagged and self._q.empty():
            self._lagged = False
            raise BusLagged(self.last_seq)
        env = await self._q.get()
        if env is _RESYNC:
            self._lagged = False
            raise BusLagged(self.last_seq)
        self.last_seq = env.seq
        return env

    def close(self) -> None:
        self._bus._subs.discard(self)
        self._bus._followed = None


_RESYNC = Envelope(0, DomainEvent(at=0.0))  # queued by Subscription._resync to wake its consumer


class LocalFanout(Bus):
    """This process's consumers of a bus: filtered subscriptions with bounded queues, and
    synchronous listeners. :meth:`_fanout` hands them each envelope, whoever made it (this
    process's publisher, or a reader of a bus shared between processes)."""

    def __init__(self) -> None:
        self._subs: set[Subscription] = set()
        self._listeners: list[Callable[[Envelope], None]] = []
        self._followed: tuple[Kinds | None] | None = None  # followed()'s answer, boxed, until subscriptions change

    def followed(self) -> Kinds | None:
        """The event classes some subscription here follows; None when one follows every event (a
        websocket). An empty tuple: nobody here follows the bus."""
        if self._followed is None:
            subs = list(self._subs)
            every = any(sub._kinds is None for sub in subs)
            self._followed = (None if every else tuple(dict.fromkeys(k for sub in subs for k in sub._kinds or ())),)
        return self._followed[0]

    def _fanout(self, env: Envelope) -> None:
        """Hand ``env`` to every subscription its filter lets through."""
        for sub in self._subs:  # the filters here, not in a method: every event × every websocket passes
            if sub._lagged:
                continue
            kinds = sub._kinds  # by class first: an envelope read from another process is not rebuilt for it
            if kinds is not None and not (issubclass(env.kind, kinds) and isinstance(env.event, kinds)):
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

    def _notify(self, env: Envelope) -> None:
        """Call the listeners with an event this process published."""
        for fn in self._listeners:
            try:
                fn(env)
            except Exception:  # a broken consumer must not stop the bridge
                log.exception("bus listener %r failed on seq %d", fn, env.seq)

    def subscribe(self, maxsize: int = 1000, accept: Accept | None = None,
                  kinds: Kinds | None = None) -> Subscription:
        sub = Subscription(self, maxsize, accept, kinds)
        self._subs.add(sub)
        self._followed = None
        return sub

    def add_listener(self, fn: Callable[[Envelope], None]) -> Callable[[], None]:
        """A synchronous consumer of the events **this process** publishes (the bridge's call
        filing and wrap-up hold), called as each is published, before any other process could
        see it: on a bus shared through Redis they never wait for Redis (a call is filed while
        Redis is away), and the seq may still be 0 (not numbered yet). Returns a remover.
        Events of other processes reach subscriptions only."""
        self._listeners.append(fn)
        return lambda: self._listeners.remove(fn)


class InProcessBus(LocalFanout):
    """Ring buffer + per-subscriber queues + synchronous listeners, all in this process."""

    def __init__(self, capacity: int = 10000) -> None:
        super().__init__()
        self.epoch = uuid.uuid4().hex[:12]
        self._seq = 0
        self._ring: deque[Envelope] = deque(maxlen=capacity)

    @property
    def last_seq(self) -> int:
        return self._seq

    def publish_nowait(self, event: DomainEvent) -> Envelope:
        """Publish from synchronous code (the AMI read path); same as :meth:`publish`."""
        self._seq += 1
        env = Envelope(self._seq, event)
        self._ring.append(env)
        self._fanout(env)
        self._notify(env)
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


def follow(bus: Bus, handle: Callable[[Envelope], None], accept: Accept | None = None,
           maxsize: int = 10_000, kinds: Kinds | None = None) -> Coroutine[Any, Any, None]:
    """A task's body that hands ``handle`` every envelope ``accept`` lets through, whichever process
    published it. (A listener sees only what this process publishes: a listening node on a machine
    of its own and the bridge that sends it calls hear each other only this way.) Subscribed at the
    call, not when the task first runs: what is published from then on is seen. Falling behind is
    said and the following goes on; a handler that raises is logged and the next envelope comes.
    ``kinds``: the event classes ``handle`` wants, for a bus that need not rebuild the others."""
    return _follow(bus.subscribe(maxsize=maxsize, accept=accept, kinds=kinds), handle)


async def _follow(sub: Subscription, handle: Callable[[Envelope], None]) -> None:
    try:
        while True:
            try:
                async for env in sub:
                    try:
                        handle(env)
                    except Exception:
                        log.exception("bus follower %r failed on seq %d", handle, env.seq)
            except BusLagged as lag:
                log.warning("bus follower %r fell behind after seq %d; events were skipped", handle, lag.last_seq)
    finally:
        sub.close()
