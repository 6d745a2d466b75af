"""The seats of the live state: who sits where, and what state each seat is in. No I/O.

A seat's displayed state is derived from a few facts (signed in, ringing/on call, wrap-up
deadline, paused + reason), never set directly, so no combination of events can leave it
inconsistent; every change of it is one :class:`~cti.domain.SeatStateChanged`.

:class:`SeatBook` keeps the seats and applies the queue-member events; the call side of the
state (:mod:`cti.calls`, :mod:`cti.state`) builds on it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from cti import events as ev
from cti.domain import DomainEvent, SeatPhoneChanged, SeatState, SeatStateChanged

Clock = Callable[[], float]

#: QueuePause reason the bridge uses to hold calls off a seat in 话后处理 (not a "busy")
WRAPUP_REASON = "wrapup"


def seat_id(member_name: str, interface: str) -> str:
    """The seat's id: the queue member name, else the interface's endpoint.

    >>> seat_id("", "PJSIP/8001"), seat_id("", "Local/8002@seats/n"), seat_id("8003", "PJSIP/x")
    ('8001', '8002', '8003')
    """
    if member_name:
        return member_name
    tail = interface.rpartition("/")[2] if "/" in interface else interface
    if interface.startswith("Local/"):
        tail = interface[6:].partition("@")[0]
    return tail


# AST_DEVICE_INVALID and AST_DEVICE_UNAVAILABLE: no phone registered for the seat
UNREACHABLE = frozenset({4, 5})


@dataclass(slots=True)
class Seat:
    seat: str
    interface: str = ""
    operator: str = ""  # the account signed in here (known to the console, not to Asterisk)
    job_number: str = ""  # that operator's 工号
    queues: set[str] = field(default_factory=set)
    paused: bool = False
    reason: str = ""
    activity: str = "idle"  # idle | ringing | on_call
    call_id: str = ""
    channel_uid: str = ""  # the seat's own leg while ringing / on call
    channel: str = ""  # its channel name (what call-control actions address)
    wrapup_until: float | None = None
    state: SeatState = SeatState.SIGNED_OUT
    since: float = 0.0
    phone_reachable: bool = True  # Asterisk's device state of the seat's phone (its registration)

    @property
    def signed_in(self) -> bool:
        return bool(self.queues)

    def derive(self, now: float) -> SeatState:
        if not self.queues:
            return SeatState.SIGNED_OUT
        if self.activity == "ringing":
            return SeatState.RINGING
        if self.activity == "on_call":
            return SeatState.ON_CALL
        if self.wrapup_until is not None and now < self.wrapup_until:
            return SeatState.WRAP_UP
        if self.paused and self.reason != WRAPUP_REASON:
            return SeatState.BUSY
        return SeatState.READY

    def view(self, now: float) -> dict:
        return {
            "seat": self.seat,
            "operator": self.operator,
            "interface": self.interface,
            "signed_in": self.signed_in,
            "queues": sorted(self.queues),
            "state": str(self.state),
            "reason": self.reason if self.state == SeatState.BUSY else "",
            "since": self.since,
            "call_id": self.call_id,
            "phone_reachable": self.phone_reachable,
            "wrapup_remaining_s": (
                max(0.0, round(self.wrapup_until - now, 1))
                if self.state == SeatState.WRAP_UP and self.wrapup_until
                else None
            ),
        }


class SeatBook:
    """The seats, by id. Wrap-up (话后处理) starts when a seat's call ends and lasts ``wrapup_s``."""

    def __init__(self, *, wrapup_s: float, clock: Clock) -> None:
        self.wrapup_s = wrapup_s
        self.clock = clock
        self.seats: dict[str, Seat] = {}
        self._iface_seat: dict[str, str] = {}
        # who is signed in where: bumped by every change of a seat's operator or queues, so that
        # operator_seats() (asked per message per websocket) is rebuilt only when it can differ
        self.roster_version = 0
        self._roster: tuple[int, dict[str, str]] = (-1, {})

    def set_operator(self, seat: str, operator: str, job_number: str = "") -> None:
        """Who sits at the seat, and their 工号 (known to the console, not to Asterisk)."""
        s = self._seat(seat, "")
        s.operator, s.job_number = operator, job_number
        self.roster_version += 1

    def operator_seats(self) -> dict[str, str]:
        """Operator username → the seat they are signed in to (read-only; shared)."""
        version, seats = self._roster
        if version != self.roster_version:
            seats = {s.operator: s.seat for s in self.seats.values() if s.operator and s.queues}
            self._roster = (self.roster_version, seats)
        return seats

    def end_wrapup(self, seat: str, now: float) -> list[DomainEvent]:
        """The operator finished 话后处理 early and is ready again."""
        s = self.seats.get(seat)
        out: list[DomainEvent] = []
        if s is not None and s.wrapup_until is not None:
            s.wrapup_until = None
            self._touch(s, now, out)
        return out

    def seat_queues(self, seat: str) -> frozenset[str]:
        """The queues a seat serves now (centre isolation asks it per live message)."""
        s = self.seats.get(seat)
        return frozenset(s.queues) if s is not None else frozenset()

    def seat_views(self, now: float | None = None) -> list[dict]:
        now = self.clock() if now is None else now
        return [s.view(now) for s in sorted(self.seats.values(), key=lambda s: s.seat)]

    def seat_view(self, seat: str, now: float | None = None) -> dict | None:
        """One seat's entry of :meth:`seat_views` (None for a seat Asterisk never mentioned)."""
        s = self.seats.get(seat)
        return None if s is None else s.view(self.clock() if now is None else now)

    # ------------------------------------------------------------ handlers: queue members

    def _on_member(self, e: ev.QueueMemberEvent) -> list[DomainEvent]:
        seat = self._seat_for(e)
        if e.queue not in seat.queues:  # QueueMemberStatus and QueueMemberPause leave the roster as it is
            seat.queues.add(e.queue)
            self.roster_version += 1
        seat.paused = e.paused
        seat.reason = e.paused_reason if e.paused else ""
        out: list[DomainEvent] = []
        self._touch(seat, e.ts, out)
        if e.status:  # 0: the event did not say
            reachable = e.status not in UNREACHABLE
            if reachable != seat.phone_reachable:
                seat.phone_reachable = reachable
                out.append(SeatPhoneChanged(at=e.ts, seat=seat.seat, reachable=reachable, operator=seat.operator,
                                            signed_in=seat.signed_in))
        return out

    def _on_member_removed(self, e: ev.QueueMemberRemoved) -> list[DomainEvent]:
        seat = self._seat_for(e)
        seat.queues.discard(e.queue)
        self.roster_version += 1
        if not seat.queues:
            seat.paused, seat.reason, seat.wrapup_until = False, "", None
        out: list[DomainEvent] = []
        self._touch(seat, e.ts, out)
        return out

    # ------------------------------------------------------------ helpers

    def _seat(self, sid: str, interface: str) -> Seat:
        seat = self.seats.get(sid)
        if seat is None:
            seat = self.seats[sid] = Seat(sid, interface)
        if interface and seat.interface != interface:
            seat.interface = interface
            self._iface_seat[interface] = sid
        return seat

    def _seat_for(self, e: ev.AgentEvent | ev.QueueMemberEvent) -> Seat:
        sid = e.member_name or self._iface_seat.get(e.interface) or seat_id("", e.interface)
        return self._seat(sid, e.interface)

    def _touch(self, seat: Seat, ts: float, out: list[DomainEvent]) -> None:
        """Derive the seat's state again; a change is one event."""
        new = seat.derive(ts)
        if new != seat.state:
            prev, seat.state, seat.since = seat.state, new, ts
            out.append(
                SeatStateChanged(
                    at=ts,
                    seat=seat.seat,
                    state=new,
                    previous=prev,
                    reason=seat.reason if new == SeatState.BUSY else "",
                    call_id=seat.call_id,
                    wrapup_until=seat.wrapup_until if new == SeatState.WRAP_UP else None,
                    operator=seat.operator,
                )
            )

    def _release_seat(self, sid: str, ts: float, out: list[DomainEvent], wrapup: bool) -> None:
        seat = self.seats.get(sid)
        if seat is None:
            return
        seat.activity, seat.call_id, seat.channel_uid = "idle", "", ""
        if wrapup and self.wrapup_s > 0:
            seat.wrapup_until = ts + self.wrapup_s
        self._touch(seat, ts, out)

    def _end_wrapups(self, now: float, out: list[DomainEvent]) -> None:
        """Time passes: the wrap-ups whose deadline is reached end."""
        for seat in self.seats.values():
            if seat.wrapup_until is not None and now >= seat.wrapup_until:
                seat.wrapup_until = None
                self._touch(seat, now, out)
