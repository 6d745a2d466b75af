"""Typed AMI events: what one AMI frame means, as one frozen dataclass (declarations only).

:mod:`cti.protocol` builds them from frames, once, at the edge; domain code never sees raw header
dicts. Times are floats (epoch seconds): Asterisk's own ``Timestamp`` header
(``timestampevents = yes``), else the receive time. Channel variables (``ChanVariable`` /
``DestChanVariable``) are dicts. Events the system does not need are :class:`UnknownEvent`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# ---------------------------------------------------------------- base classes


@dataclass(frozen=True, slots=True, kw_only=True)
class AmiEvent:
    ts: float


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelEvent(AmiEvent):
    """An event about one channel (for queue events: the citizen's channel)."""

    channel: str = ""
    uniqueid: str = ""
    linkedid: str = ""
    caller_num: str = ""
    caller_name: str = ""
    context: str = ""
    exten: str = ""
    chanvars: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentEvent(ChannelEvent):
    """Queue ↔ seat events: ``channel`` is the citizen, ``dest_*`` the seat's leg."""

    queue: str = ""
    interface: str = ""
    member_name: str = ""
    dest_channel: str = ""
    dest_uniqueid: str = ""
    dest_chanvars: dict[str, str] = field(default_factory=dict)


# ---------------------------------------------------------------- queue callers


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueCallerJoin(ChannelEvent):
    queue: str = ""
    position: int = 0
    count: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueCallerLeave(ChannelEvent):
    queue: str = ""
    position: int = 0
    count: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueCallerAbandon(ChannelEvent):
    queue: str = ""
    position: int = 0
    original_position: int = 0
    hold_time_s: int = 0


# ---------------------------------------------------------------- seats ringing / answering


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentCalled(AgentEvent):
    """The seat's phone starts ringing: the screen-pop moment."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentRingNoAnswer(AgentEvent):
    ring_time_ms: int = 0  # milliseconds (unlike AgentConnect's seconds)


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentConnect(AgentEvent):
    hold_time_s: int = 0  # whole seconds: time the 15 s rule from Timestamps instead
    ring_time_s: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class DialEnd(ChannelEvent):
    """A dial attempt ended; ``ANSWER`` on a seat's leg is when the operator picked up, which can
    precede AgentConnect by an announcement (the job number is played before the bridge)."""

    dest_channel: str = ""
    dest_uniqueid: str = ""
    dial_status: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentComplete(AgentEvent):
    hold_time_s: int = 0
    talk_time_s: int = 0
    reason: str = ""  # caller | agent | transfer


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentDump(AgentEvent):
    """The seat hung up while the caller was still being connected."""


# ---------------------------------------------------------------- queue members (seats)


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueMemberEvent(AmiEvent):
    queue: str = ""
    member_name: str = ""
    interface: str = ""
    state_interface: str = ""
    membership: str = ""
    paused: bool = False
    paused_reason: str = ""
    status: int = 0  # AST_DEVICE_*: 1 not in use, 2 in use, 6 ringing, 5 unavailable…
    in_call: bool = False
    calls_taken: int = 0
    login_time: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueMemberAdded(QueueMemberEvent):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueMemberRemoved(QueueMemberEvent):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueMemberPause(QueueMemberEvent):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueMemberStatus(QueueMemberEvent):
    pass


# ---------------------------------------------------------------- channels and bridges


@dataclass(frozen=True, slots=True, kw_only=True)
class Newchannel(ChannelEvent):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class Hangup(ChannelEvent):
    cause: int = 0
    cause_txt: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Hold(ChannelEvent):
    """The channel's phone put the call on hold (a re-INVITE with ``a=sendonly``): the far end hears music."""

    music_class: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Unhold(ChannelEvent):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class SoftHangupRequest(ChannelEvent):
    """``cause`` holds Asterisk's soft-hangup flags: 4 (AST_SOFTHANGUP_SHUTDOWN) = Asterisk stopping."""

    cause: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class BridgeEvent(ChannelEvent):
    bridge_uniqueid: str = ""
    bridge_type: str = ""
    bridge_technology: str = ""
    bridge_num_channels: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class BridgeEnter(BridgeEvent):
    swap_uniqueid: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class BridgeLeave(BridgeEvent):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfbridgeJoin(ChannelEvent):
    conference: str = ""
    bridge_uniqueid: str = ""
    marked: bool = False
    admin: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfbridgeLeave(ChannelEvent):
    conference: str = ""
    bridge_uniqueid: str = ""
    marked: bool = False
    admin: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class BlindTransfer(AmiEvent):
    result: str = ""
    transferer_channel: str = ""
    transferer_uniqueid: str = ""
    transferee_channel: str = ""
    transferee_uniqueid: str = ""
    context: str = ""
    extension: str = ""
    is_external: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class AttendedTransfer(AmiEvent):
    result: str = ""
    transferer_uniqueid: str = ""  # OrigTransfererUniqueid: the seat
    transferee_channel: str = ""
    transferee_uniqueid: str = ""
    target_channel: str = ""
    target_uniqueid: str = ""
    dest_type: str = ""  # Bridge | App | Link | Threeway | Fail
    dest_bridge_uniqueid: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class VarSet(AmiEvent):
    channel: str = ""
    uniqueid: str = ""
    linkedid: str = ""
    variable: str = ""
    value: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class UserEvent(ChannelEvent):
    """Dialplan ``UserEvent(SurveyResult,Score: 1)`` etc.; the extra headers as a dict."""

    user_event: str = ""
    fields: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class FullyBooted(AmiEvent):
    status: str = ""
    uptime_s: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Shutdown(AmiEvent):
    restart: bool = False


# ---------------------------------------------------------------- resync (action responses)


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueParams(AmiEvent):
    queue: str = ""
    calls: int = 0
    hold_time_s: int = 0
    completed: int = 0
    abandoned: int = 0
    service_level_s: int = 0
    service_level_perf: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueMember(AmiEvent):
    """One seat in a ``QueueStatus`` answer."""

    queue: str = ""
    member_name: str = ""
    interface: str = ""  # "Location"
    state_interface: str = ""
    membership: str = ""
    paused: bool = False
    paused_reason: str = ""
    status: int = 0
    in_call: bool = False
    last_call: int = 0  # epoch s its last call ended (0: none since it joined)


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueEntry(ChannelEvent):
    """One waiting caller in a ``QueueStatus`` answer."""

    queue: str = ""
    position: int = 0
    wait_s: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class CoreShowChannel(ChannelEvent):
    """One live channel in a ``CoreShowChannels`` answer."""

    application: str = ""
    application_data: str = ""
    duration: str = ""
    bridge_id: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ListComplete(AmiEvent):
    """``QueueStatusComplete`` / ``CoreShowChannelsComplete``: the end of a resync list."""

    name: str = ""
    action_id: str = ""
    items: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class UnknownEvent(AmiEvent):
    name: str = ""
    # the cti.protocol.Frame it came from, kept whole for whoever wants to read it; typed Any because
    # the protocol builds these events: it imports this module, and this one imports nothing back
    frame: Any = None
