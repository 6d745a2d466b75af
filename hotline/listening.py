"""The live transcript's messages on the bus (issue #16), one shape each for every room.

Who says what:

- a listening node (``live``) says every few seconds what it can take (:class:`ListenerStatus`);
- the active CTI bridge, when a seat is bridged to a citizen, picks a node with room and says which
  AudioSocket legs it is about to send there (:class:`LegsAssigned`), or that nobody can listen
  (:class:`LiveState` ``unavailable``);
- the node says what it hears (:class:`TranscriptLine`), what it suggests to the operator
  (:class:`AssistOffered`), what a lead should know at once (:class:`LiveFlagRaised`), and how the
  listening goes (:class:`LiveState`).

The transcript and the suggestions are for the operator of the call's seat only; a lead reads a
call's transcript through a logged request (``/api/lead/live/…``), never from the broadcast.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from hotline.bus import DomainEvent

SPEAKERS = ("citizen", "operator")


@dataclass(frozen=True, slots=True, kw_only=True)
class ListenerStatus(DomainEvent):
    """A listening node's heartbeat: where Asterisk reaches it and how many legs it takes now."""

    type: ClassVar[str] = "listen_status"
    node: str
    address: str  # host:port of its AudioSocket server, as Asterisk connects to it
    capacity: int  # legs it holds in real time
    active: int
    overloaded: bool = False  # a leg fell behind: no new calls until it caught up
    engine: str = ""
    warm: int = 0  # recognisers ready for new legs (warmed at start, then those of legs that ended)
    every_s: float = 2.0  # the next heartbeat is due within this: a node silent for 3 of them is gone


@dataclass(frozen=True, slots=True, kw_only=True)
class LegsAssigned(DomainEvent):
    """The bridge is sending a call's legs to ``node``: the AudioSocket uuid of each, and its speaker."""

    type: ClassVar[str] = "listen_assign"
    call_id: str
    seat: str
    operator: str = ""
    node: str
    legs: dict[str, str] = field(default_factory=dict)  # uuid (str) → speaker
    callback: bool = False  # a call the seat dialled (回拨 / 回访): its assistant proposes the 回访 verdicts too


@dataclass(frozen=True, slots=True, kw_only=True)
class TranscriptLine(DomainEvent):
    """A sentence heard on one leg: a partial (may still change) or a final one (settled)."""

    type: ClassVar[str] = "live_transcript"
    call_id: str
    seat: str
    speaker: str  # citizen | operator
    line: int  # per leg, from 1: a partial is the next final's draft, replaced by it
    text: str
    final: bool
    start_s: float = 0.0  # from the start of the call's live audio
    end_s: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class LiveState(DomainEvent):
    """How the listening to a call goes: ``listening``, ``unavailable`` (no node had room: the call
    is transcribed after it ends), ``degraded`` (a leg fell behind and was dropped), ``moved`` (to the
    seat that had the call before a transfer: its lines go to the new seat now), ``ended``."""

    type: ClassVar[str] = "live_transcript"
    call_id: str
    seat: str
    state: str
    detail: str = ""
    speaker: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class AssistOffered(DomainEvent):
    """Knowledge articles pushed, and ticket fields proposed, from what the citizen said."""

    type: ClassVar[str] = "live_assist"
    call_id: str
    seat: str
    articles: list[dict[str, Any]] = field(default_factory=list)  # id, title, topic, hits
    proposals: list[dict[str, Any]] = field(default_factory=list)  # field, value, label, source


@dataclass(frozen=True, slots=True, kw_only=True)
class LiveFlagRaised(DomainEvent):
    """Said on a live call, for the centre's leads at once: a forbidden phrase by the operator, or
    the citizen's words on the emergency list."""

    type: ClassVar[str] = "alert"
    kind: str = "live_qa"
    call_id: str
    seat: str
    operator: str = ""
    flag: str  # forbidden | emergency
    phrase: str
    speaker: str
    text: str
