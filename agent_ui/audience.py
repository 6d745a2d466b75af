"""Who may see which live message: one connection's audience, asked for every event that could
be theirs (:mod:`agent_ui.hub` decides whom to ask; this decides the answer)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hotline.centres import CentreScope, SeatQueues
from hotline.identity import Principal, Role

SeatOf = Callable[[str], str | None]  # username → the seat they are signed in to


EVERYONE = frozenset({"link_status", "hello", "resync"})
CENTRE_WORK = frozenset({"ticket_update", "intake_update"})  # the centre's desk and intake queue
NODES_ONLY = frozenset({"cti_roster", "lead_alert_ack", "listen_status", "listen_assign"})  # between the nodes
# the live transcript and the assistant: for the call's own operator only; a lead reads a call's
# transcript through a logged request (agent_ui/lead/live.py), never from the broadcast
SEAT_ONLY = frozenset({"live_transcript", "live_assist"})


@dataclass
class Audience:
    """What one connection may see. Leads and admins: the live traffic of their centre (all of it
    without one: hotline/centres.py); operators: their own seat's pops and calls only, their
    centre's queues, and the ticket and intake changes; departments: changes to the tickets they
    handle, nothing of the calls; QA: nothing live.

    Asked by the node's hub (agent_ui/hub.py) as each event arrives, for the connections it could be
    meant for, so the role is looked at once, here, not per message.
    """

    principal: Principal
    seat_of: SeatOf
    scope: CentreScope = field(default_factory=CentreScope)
    seat_queues: SeatQueues = lambda _seat: frozenset()
    my_calls: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        role = self.principal.role
        self._sees_all = role in (Role.LEAD, Role.ADMIN)
        self._operator = role is Role.OPERATOR  # QA and departments follow no live call traffic
        self._department = self.principal.department_id if role is Role.DEPARTMENT else None
        self._username = self.principal.username

    def visible(self, msg: dict[str, Any]) -> bool:
        kind = msg.get("type")
        if kind in EVERYONE:
            return True
        if kind in NODES_ONLY:
            return False
        if kind in SEAT_ONLY:
            seat = self.seat_of(self._username) if self._operator else None
            return bool(seat) and msg.get("seat") == seat
        if self._sees_all:
            return self.scope.has_message(msg, self.seat_queues)
        if self._department is not None:
            return kind == "ticket_update" and self._department in msg.get("department_ids", ())
        if not self._operator:
            return False
        if kind == "queue_update":
            return self.scope.has_queue(msg.get("queue"))
        if kind in CENTRE_WORK:
            return True
        seat = self.seat_of(self._username)
        call_id = msg.get("call_id")
        if seat and msg.get("seat") == seat:
            if call_id and kind == "screen_pop":
                self.my_calls.add(str(call_id))
            return True
        if kind == "alert":
            return bool(seat) and msg.get("ringing_seat") == seat
        # a pop that moved to another seat, an answer elsewhere: only for calls that popped here
        return kind == "call_update" and call_id in self.my_calls


# what an operator may see whatever their seat; every other kind reaches an operator only through
# their seat, their ringing seat or a call that popped on them (Audience.visible's operator rules)
OPERATOR_UNSEATED = EVERYONE | CENTRE_WORK | {"queue_update"}
