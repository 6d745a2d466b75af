"""Domain events as JSON and back: what crosses between processes on a shared bus (issue #15).

:func:`encode` is the websocket message (:func:`hotline.bus.to_message`) without its seq;
:func:`from_message` rebuilds the typed event, field by field after the class's type hints, so a
listener or subscriber in another process gets the event the publisher made.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import logging
import types
import typing
from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Any, TypeVar

from hotline.bus import DomainEvent, to_message

log = logging.getLogger(__name__)

E = TypeVar("E")


def encode(event: DomainEvent) -> str:
    """The event's message (:func:`hotline.bus.to_message`, without a seq) as compact JSON."""
    return json.dumps(to_message(event), ensure_ascii=False, separators=(",", ":"), default=_jsonable)


def _jsonable(v: Any) -> Any:
    if isinstance(v, date):  # datetime too
        return v.isoformat()
    if isinstance(v, enum.Enum):
        return v.value
    if isinstance(v, set | frozenset):
        return list(v)
    raise TypeError(f"{type(v).__name__} cannot go on the bus as JSON")


def from_message(cls: type[E], msg: Mapping[str, Any]) -> E:
    """Rebuild an event (or a dataclass inside one) from its JSON message, each field after its
    type hint: nested dataclasses, tuples, Optional, enums, datetimes. Keys the class does not know
    (a newer node's) are left out; a field the message lacks takes its default.

    >>> from hotline.calls import FinishedCall
    >>> call = FinishedCall(call_id="1.2", caller_num="13953012345", offered_at=1.0, ended_at=9.5,
    ...                     seats_rung=("8001",), answered_at=3.0, survey=1)
    >>> from_message(FinishedCall, json.loads(json.dumps(dataclasses.asdict(call)))) == call
    True
    """
    plan = _PLANS.get(cls)
    if plan is None:
        plan = _PLANS[cls] = _plan(cls)
    return cls(**{name: _maybe(convert, msg[name]) for name, convert in plan if name in msg})


Convert = Callable[[Any], Any]
_PLANS: dict[type, list[tuple[str, Convert | None]]] = {}  # a class → how to rebuild each field


def _plan(cls: type) -> list[tuple[str, Convert | None]]:
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # a name imported only for type checking: its fields come as JSON gave them
        log.warning("bus: the type hints of %s do not resolve; its fields are taken as JSON has them", cls)
        hints = {}
    return [(f.name, _converter(hints.get(f.name, Any))) for f in dataclasses.fields(cls) if f.init]


def _converter(hint: Any) -> Convert | None:
    """How a JSON value becomes a value of type ``hint`` (None: as it is). None stays None."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Union or origin is types.UnionType:
        inner = [a for a in args if a is not type(None)]
        return _converter(inner[0]) if len(inner) == 1 else None  # several types: as JSON gave it
    if origin in (tuple, list, set, frozenset):  # a fixed tuple's items (tuple[int, str]) stay as they are
        item = _converter(args[0]) if args and (origin is not tuple or args[-1] is Ellipsis) else None
        return origin if item is None else (lambda v: origin(_maybe(item, x) for x in v))
    if origin is dict:
        key = int if args and args[0] is int else None  # JSON's keys are strings
        value = _converter(args[1]) if args else None
        if key is None and value is None:
            return None
        return lambda v: {_maybe(key, a): _maybe(value, b) for a, b in v.items()}
    if isinstance(hint, type):
        if dataclasses.is_dataclass(hint):
            return lambda v: from_message(hint, v)
        if issubclass(hint, enum.Enum):
            return hint
        if hint is float:
            return float  # a whole number in JSON is still a float field
        if hint in (datetime, date):
            return hint.fromisoformat
    return None


def _maybe(convert: Convert | None, v: Any) -> Any:
    return v if convert is None or v is None else convert(v)
