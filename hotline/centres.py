"""Centre isolation: what of the live traffic and the call log one person may see.

A province-level deployment hosts several centres on one system; the setting ``centres``
(``HOTLINE_CENTRES``, JSON, ``{"菏泽中心": ["hotline"], "东明中心": ["dongming"]}``) maps each
centre to its queues. A person whose account names a centre sees that centre's queues, the calls
in them, the seats serving them, their alerts, call records, recordings and reports — and
nothing of another centre's. An account without a centre (a province-wide supervisor) sees all;
so does everyone when no centres are configured (one centre on the system). An account naming a
centre the setting does not know sees no traffic at all (a typo must not open everything).

Every room asks :func:`scope_of` and the :class:`CentreScope` it returns; nothing else decides.

>>> north = scope_of("北区", {"北区": ["north"], "南区": ["south"]})
>>> north.has_queue("north"), north.has_queue("south"), scope_of("", {"北区": ["north"]}).everything
(True, False, True)
>>> scope_of("西区", {"北区": ["north"]}).has_queue("north"), scope_of("北区", {}).everything
(False, True)
>>> north.has_seat({"seat": "8001", "queues": ["north"]}), north.has_seat({"seat": "8002", "queues": ["south"]})
(True, False)
>>> north.has_call({"queue": "", "seat": "8001"}, seat_queues=lambda s: {"north"})  # a callback from a north seat
True
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

SeatQueues = Callable[[str], Collection[str]]  # seat → the queues it serves now (the CTI's roster)


def _no_queues(_seat: str) -> Collection[str]:
    return ()


@dataclass(frozen=True, slots=True)
class CentreScope:
    queues: frozenset[str] | None = None  # None: every queue

    @property
    def everything(self) -> bool:
        return self.queues is None

    def has_queue(self, queue: str | None) -> bool:
        return self.queues is None or (queue or "") in self.queues

    def has_seat_queues(self, queues: Iterable[str]) -> bool:
        return self.queues is None or not self.queues.isdisjoint(queues)

    def has_seat(self, view: Mapping[str, Any]) -> bool:
        """A seat serving one of the centre's queues; a signed-out seat serving none is nobody's
        and shown to every centre (someone may sign in to it)."""
        queues = view.get("queues") or ()
        return self.queues is None or self.has_seat_queues(queues) or (not queues and not view.get("signed_in"))

    def has_call(self, row: Mapping[str, Any], seat_queues: SeatQueues = _no_queues) -> bool:
        """A live call or a call record: by its queue; an outbound call (回拨, no queue) by the
        queues its seat serves."""
        if self.queues is None:
            return True
        queue = row.get("queue") or ""
        if queue:
            return queue in self.queues
        seat = str(row.get("seat") or "")
        return bool(seat) and self.has_seat_queues(seat_queues(seat))

    def has_alert(self, alert: Mapping[str, Any], seat_queues: SeatQueues = _no_queues) -> bool:
        """An alert about a queue, a call or a seat of the centre; one about none (an emergency
        ticket) concerns every centre."""
        if self.queues is None:
            return True
        if alert.get("queue"):
            return alert["queue"] in self.queues
        seat = str(alert.get("subject_seat") or alert.get("seat") or "")
        return not seat or self.has_seat_queues(seat_queues(seat))

    def has_message(self, msg: Mapping[str, Any], seat_queues: SeatQueues = _no_queues) -> bool:
        """A live message of the bus (queue_update, call_update, screen_pop, seat_update, alert,
        lead_alert): by its queue, else by its seat's queues; messages of neither (link status,
        ticket and intake changes) are the whole system's."""
        if self.queues is None:
            return True
        if msg.get("type") == "lead_alert":
            return self.has_alert(msg.get("alert") or {}, seat_queues)
        if msg.get("queue"):
            return msg["queue"] in self.queues
        seat = str(msg.get("seat") or msg.get("ringing_seat") or "")
        if seat:
            return self.has_seat_queues(seat_queues(seat))
        return msg.get("type") not in ("queue_update", "call_update", "screen_pop", "seat_update", "alert")


def scope_of(centre: str, centres: Mapping[str, Iterable[str]]) -> CentreScope:
    """The scope of a person whose account names ``centre`` ("" = every centre)."""
    if not centres or not centre:
        return CentreScope(None)
    return CentreScope(frozenset(centres.get(centre, ())))
