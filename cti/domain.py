"""Domain events: what the bridge tells the rest of the system (through the bus).

Each class has a ``type`` (the websocket message ``type`` of DESIGN.md §3) and flat,
JSON-friendly fields; :func:`hotline.bus.to_message` makes the wire dict. Times are epoch seconds
(floats, Asterisk's clock), waits in milliseconds.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import ClassVar

from hotline.bus import DomainEvent
from hotline.calls import FinishedCall


class CallState(enum.StrEnum):
    OFFERED = "offered"  # on the inbound context, not yet in a queue (AGI lookup…)
    QUEUED = "queued"
    RINGING = "ringing"
    ANSWERED = "answered"
    TRANSFERRED = "transferred"
    CONFERENCE = "conference"
    ABANDONED = "abandoned"
    COMPLETED = "completed"
    ON_HOLD = "on_hold"  # only in CallHeld messages: a held call keeps its own state underneath


class SeatState(enum.StrEnum):
    SIGNED_OUT = "signed_out"
    READY = "ready"
    RINGING = "ringing"
    ON_CALL = "on_call"
    WRAP_UP = "wrap_up"  # 话后处理
    BUSY = "busy"  # 示忙, with a reason code


@dataclass(frozen=True, slots=True, kw_only=True)
class CallOffered(DomainEvent):
    """A citizen joined a queue: the 15 s countdown starts at ``at``."""

    type: ClassVar[str] = "call_update"
    call_id: str
    queue: str
    caller_num: str
    caller_name: str
    state: str = CallState.QUEUED
    resynced: bool = False  # learnt from QueueStatus after a reconnect, not from the join itself


@dataclass(frozen=True, slots=True, kw_only=True)
class SeatRinging(DomainEvent):
    """The seat's phone rings: the screen-pop (carries what agi/ set on the channel)."""

    type: ClassVar[str] = "screen_pop"
    call_id: str
    seat: str
    queue: str
    caller_num: str
    caller_name: str
    waited_ms: int
    variables: dict[str, str] = field(default_factory=dict)
    operator: str = ""  # who sits at the ringing seat: the websocket routes the pop to them without asking


@dataclass(frozen=True, slots=True, kw_only=True)
class SeatRingNoAnswer(DomainEvent):
    type: ClassVar[str] = "call_update"
    call_id: str
    seat: str
    ring_ms: int
    state: str = CallState.QUEUED


@dataclass(frozen=True, slots=True, kw_only=True)
class CallAnswered(DomainEvent):
    type: ClassVar[str] = "call_update"
    call_id: str
    seat: str
    queue: str
    wait_ms: int  # queue join → AgentConnect, from Asterisk Timestamps
    within_rule: bool
    state: str = CallState.ANSWERED


@dataclass(frozen=True, slots=True, kw_only=True)
class AnswerRuleBreached(DomainEvent):
    """A call passed the answer rule (15 s) unanswered; ``seats_rung`` let it ring."""

    type: ClassVar[str] = "alert"
    call_id: str
    queue: str
    caller_num: str
    waited_ms: int
    rule_s: int
    seats_rung: tuple[str, ...]
    ringing_seat: str = ""
    kind: str = "answer_rule"


@dataclass(frozen=True, slots=True, kw_only=True)
class CallAbandoned(DomainEvent):
    type: ClassVar[str] = "call_update"
    call_id: str
    queue: str
    caller_num: str
    wait_ms: int
    seats_rung: tuple[str, ...]
    state: str = CallState.ABANDONED


@dataclass(frozen=True, slots=True, kw_only=True)
class CallTransferred(DomainEvent):
    type: ClassVar[str] = "call_update"
    call_id: str
    seat: str
    target: str  # "exten@context" or a queue name
    kind: str  # blind | attended
    state: str = CallState.TRANSFERRED


@dataclass(frozen=True, slots=True, kw_only=True)
class CallConferenced(DomainEvent):
    """A party joined the call's three-party conference (a queue call's, or a callback's)."""

    type: ClassVar[str] = "call_update"
    call_id: str
    conference: str
    channel: str
    parties: int
    seat: str = ""  # whose call it is: the operator's page follows a callback by its seat
    state: str = CallState.CONFERENCE


@dataclass(frozen=True, slots=True, kw_only=True)
class CallHeld(DomainEvent):
    """A phone in the call put it on hold (the citizen hears music), or took it off again."""

    type: ClassVar[str] = "call_update"
    call_id: str
    seat: str
    held: bool
    hold_s: float  # the call's time on hold so far, this spell included once it ends
    state: str = CallState.ON_HOLD  # while held; else the state the call returns to


@dataclass(frozen=True, slots=True, kw_only=True)
class CallCompleted(DomainEvent):
    """The citizen's channel is gone; ``call`` is the finished call, as the call log keeps it."""

    type: ClassVar[str] = "call_update"
    call_id: str
    call: FinishedCall
    state: str = CallState.COMPLETED


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboundAnswered(DomainEvent):
    """A call out of the centre (回拨 / 回访, :meth:`cti.actions.CtiActions.originate_callback`) was
    answered by the citizen: the seat that dialled it is on it. ``call_id`` is the id chosen for it
    before it rang (its seat channel's Uniqueid, its recording's name). Not a queue call: no wait,
    no 15 s rule, and the call log does not file it (the dial is kept by agent_ui.dialing)."""

    type: ClassVar[str] = "call_update"
    call_id: str
    seat: str
    number: str  # the citizen's, as dialled
    operator: str = ""  # who sits at the seat (username)
    job_number: str = ""  # and their 工号
    recording_base: str = ""  # the dialplan's (HL_RECBASE): callback-<date>-<time>-<call_id>
    state: str = CallState.ANSWERED


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboundEnded(DomainEvent):
    """That call is over: one of its two channels hung up (the other follows at once; which one
    asked first is not in the order of their Hangups), or a resync found it gone (``lost``: its
    ``talk_s`` then runs to the resync)."""

    type: ClassVar[str] = "call_update"
    call_id: str
    seat: str
    number: str
    talk_s: float
    job_number: str = ""
    recording_base: str = ""
    lost: bool = False
    state: str = CallState.COMPLETED


@dataclass(frozen=True, slots=True, kw_only=True)
class CallbackRequested(DomainEvent):
    """The citizen asked to be called back (after hours / no seat): for the 回拨 list."""

    type: ClassVar[str] = "call_update"
    call_id: str
    caller_num: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SeatStateChanged(DomainEvent):
    type: ClassVar[str] = "seat_update"
    seat: str
    state: str
    previous: str
    reason: str = ""  # busy reason code
    call_id: str = ""
    wrapup_until: float | None = None
    operator: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class SeatPhoneChanged(DomainEvent):
    """A seat's phone came or went as Asterisk sees it (its registration: a desk phone unplugged, a
    browser phone without its microphone). A signed-in seat whose phone is gone takes no calls."""

    type: ClassVar[str] = "seat_update"
    seat: str
    reachable: bool
    operator: str = ""
    signed_in: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class HandoverMeasured(DomainEvent):
    """One seat signed out and the next signed in: the gap, against the 30 s rule."""

    type: ClassVar[str] = "seat_update"
    from_seat: str
    to_seat: str
    gap_s: float
    ok: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkStatus(DomainEvent):
    """The AMI link went up or down (an alert for the lead's screen when down)."""

    type: ClassVar[str] = "link_status"
    up: bool
    detail: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class RosterChanged(DomainEvent):
    """Who sits where on one Asterisk server changed (a sign-in, a sign-out, a seat's queues).

    For the web nodes, not for browsers: a node without the bridge routes each pop by this roster
    (agent_ui.hub). It travels on the bus, so it reaches a node before any pop that follows it."""

    type: ClassVar[str] = "cti_roster"
    server: str
    roster: dict[str, str] = field(default_factory=dict)  # operator username → seat
