"""Typed AMI events: each frame becomes one frozen dataclass, once, at the edge.

Domain code never sees raw header dicts. Times are floats (epoch seconds): Asterisk's own
``Timestamp`` header (``timestampevents = yes``), else the receive time the caller passes.
Channel variables (``ChanVariable`` / ``DestChanVariable``) become dicts.
Events the system does not need become :class:`UnknownEvent` (counted, never a crash).

>>> from cti.protocol import parse_frame
>>> f = parse_frame("Event: AgentRingNoAnswer\\r\\nTimestamp: 1795344900.250000\\r\\n"
...                 "Queue: hotline\\r\\nMemberName: 8001\\r\\nInterface: PJSIP/8001\\r\\n"
...                 "Uniqueid: 17.1\\r\\nRingTime: 15000")
>>> e = from_frame(f, received=0.0)
>>> type(e).__name__, e.ts, e.member_name, e.ring_time_ms
('AgentRingNoAnswer', 1795344900.25, '8001', 15000)
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from cti.protocol import Frame, Value

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
    frame: Frame | None = None


# ---------------------------------------------------------------- building


def _s(v: Value | None) -> str:
    if v is None:
        return ""
    return v if isinstance(v, str) else v[-1]


def _i(v: Value | None) -> int:
    try:
        return int(_s(v) or 0)
    except ValueError:
        return 0


def _f(v: Value | None) -> float:
    try:
        return float(_s(v) or 0)
    except ValueError:
        return 0.0


def _b(v: Value | None) -> bool:
    return _s(v).lower() in ("1", "yes", "true")


def chanvars(v: Value | None) -> dict[str, str]:
    """``ChanVariable`` header(s) → dict.

    >>> chanvars(["A=1", "B=x=y", "C="])
    {'A': '1', 'B': 'x=y', 'C': ''}
    """
    if not v:
        return {}
    out: dict[str, str] = {}
    for item in [v] if isinstance(v, str) else v:
        k, _, val = item.partition("=")
        out[k] = val
    return out


def _chan(h: dict[str, Value], ts: float) -> dict:
    g = h.get
    return {
        "ts": ts,
        "channel": _s(g("Channel")),
        "uniqueid": _s(g("Uniqueid")),
        "linkedid": _s(g("Linkedid")),
        "caller_num": _s(g("CallerIDNum")),
        "caller_name": _s(g("CallerIDName")),
        "context": _s(g("Context")),
        "exten": _s(g("Exten")),
        "chanvars": chanvars(g("ChanVariable")),
    }


def _agent(h: dict[str, Value], ts: float) -> dict:
    d = _chan(h, ts)
    g = h.get
    d.update(
        queue=_s(g("Queue")),
        interface=_s(g("Interface")),
        member_name=_s(g("MemberName")),
        dest_channel=_s(g("DestChannel")),
        dest_uniqueid=_s(g("DestUniqueid")),
        dest_chanvars=chanvars(g("DestChanVariable")),
    )
    return d


def _member(h: dict[str, Value], ts: float) -> dict:
    g = h.get
    return {
        "ts": ts,
        "queue": _s(g("Queue")),
        "member_name": _s(g("MemberName")),
        "interface": _s(g("Interface")),
        "state_interface": _s(g("StateInterface")),
        "membership": _s(g("Membership")),
        "paused": _b(g("Paused")),
        "paused_reason": _s(g("PausedReason")),
        "status": _i(g("Status")),
        "in_call": _b(g("InCall")),
        "calls_taken": _i(g("CallsTaken")),
        "login_time": _i(g("LoginTime")),
    }


def _bridge(h: dict[str, Value], ts: float) -> dict:
    d = _chan(h, ts)
    g = h.get
    d.update(
        bridge_uniqueid=_s(g("BridgeUniqueid")),
        bridge_type=_s(g("BridgeType")),
        bridge_technology=_s(g("BridgeTechnology")),
        bridge_num_channels=_i(g("BridgeNumChannels")),
    )
    return d


def _conf(h: dict[str, Value], ts: float) -> dict:
    d = _chan(h, ts)
    g = h.get
    d.update(
        conference=_s(g("Conference")),
        bridge_uniqueid=_s(g("BridgeUniqueid")),
        marked=_b(g("Marked")),
        admin=_b(g("Admin")),
    )
    return d


# headers that belong to the channel snapshot, not to a UserEvent's own payload
_SNAPSHOT = frozenset(
    [
        "Event",
        "Privilege",
        "Timestamp",
        "Channel",
        "ChannelState",
        "ChannelStateDesc",
        "CallerIDNum",
        "CallerIDName",
        "ConnectedLineNum",
        "ConnectedLineName",
        "Language",
        "AccountCode",
        "Context",
        "Exten",
        "Priority",
        "Uniqueid",
        "Linkedid",
        "ChanVariable",
        "UserEvent",
    ]
)

Builder = Callable[[dict[str, Value], float], AmiEvent]

BUILDERS: dict[str, Builder] = {
    "QueueCallerJoin": lambda h, ts: QueueCallerJoin(
        **_chan(h, ts), queue=_s(h.get("Queue")), position=_i(h.get("Position")), count=_i(h.get("Count"))
    ),
    "QueueCallerLeave": lambda h, ts: QueueCallerLeave(
        **_chan(h, ts), queue=_s(h.get("Queue")), position=_i(h.get("Position")), count=_i(h.get("Count"))
    ),
    "QueueCallerAbandon": lambda h, ts: QueueCallerAbandon(
        **_chan(h, ts),
        queue=_s(h.get("Queue")),
        position=_i(h.get("Position")),
        original_position=_i(h.get("OriginalPosition")),
        hold_time_s=_i(h.get("HoldTime")),
    ),
    "AgentCalled": lambda h, ts: AgentCalled(**_agent(h, ts)),
    "AgentRingNoAnswer": lambda h, ts: AgentRingNoAnswer(**_agent(h, ts), ring_time_ms=_i(h.get("RingTime"))),
    "AgentConnect": lambda h, ts: AgentConnect(
        **_agent(h, ts), hold_time_s=_i(h.get("HoldTime")), ring_time_s=_i(h.get("RingTime"))
    ),
    "AgentComplete": lambda h, ts: AgentComplete(
        **_agent(h, ts),
        hold_time_s=_i(h.get("HoldTime")),
        talk_time_s=_i(h.get("TalkTime")),
        reason=_s(h.get("Reason")),
    ),
    "AgentDump": lambda h, ts: AgentDump(**_agent(h, ts)),
    "DialEnd": lambda h, ts: DialEnd(
        **_chan(h, ts), dest_channel=_s(h.get("DestChannel")), dest_uniqueid=_s(h.get("DestUniqueid")),
        dial_status=_s(h.get("DialStatus")),
    ),
    "QueueMemberAdded": lambda h, ts: QueueMemberAdded(**_member(h, ts)),
    "QueueMemberRemoved": lambda h, ts: QueueMemberRemoved(**_member(h, ts)),
    "QueueMemberPause": lambda h, ts: QueueMemberPause(**_member(h, ts)),
    "QueueMemberPaused": lambda h, ts: QueueMemberPause(**_member(h, ts)),  # pre-13 name
    "QueueMemberStatus": lambda h, ts: QueueMemberStatus(**_member(h, ts)),
    "Newchannel": lambda h, ts: Newchannel(**_chan(h, ts)),
    "Hangup": lambda h, ts: Hangup(**_chan(h, ts), cause=_i(h.get("Cause")), cause_txt=_s(h.get("Cause-txt"))),
    "Hold": lambda h, ts: Hold(**_chan(h, ts), music_class=_s(h.get("MusicClass"))),
    "Unhold": lambda h, ts: Unhold(**_chan(h, ts)),
    "SoftHangupRequest": lambda h, ts: SoftHangupRequest(**_chan(h, ts), cause=_i(h.get("Cause"))),
    "BridgeEnter": lambda h, ts: BridgeEnter(**_bridge(h, ts), swap_uniqueid=_s(h.get("SwapUniqueid"))),
    "BridgeLeave": lambda h, ts: BridgeLeave(**_bridge(h, ts)),
    "ConfbridgeJoin": lambda h, ts: ConfbridgeJoin(**_conf(h, ts)),
    "ConfbridgeLeave": lambda h, ts: ConfbridgeLeave(**_conf(h, ts)),
    "BlindTransfer": lambda h, ts: BlindTransfer(
        ts=ts,
        result=_s(h.get("Result")),
        transferer_channel=_s(h.get("TransfererChannel")),
        transferer_uniqueid=_s(h.get("TransfererUniqueid")),
        transferee_channel=_s(h.get("TransfereeChannel")),
        transferee_uniqueid=_s(h.get("TransfereeUniqueid")),
        context=_s(h.get("Context")),
        extension=_s(h.get("Extension")),
        is_external=_b(h.get("IsExternal")),
    ),
    "AttendedTransfer": lambda h, ts: AttendedTransfer(
        ts=ts,
        result=_s(h.get("Result")),
        transferer_uniqueid=_s(h.get("OrigTransfererUniqueid")),
        transferee_channel=_s(h.get("TransfereeChannel")),
        transferee_uniqueid=_s(h.get("TransfereeUniqueid")),
        target_channel=_s(h.get("TransferTargetChannel")),
        target_uniqueid=_s(h.get("TransferTargetUniqueid")),
        dest_type=_s(h.get("DestType")),
        dest_bridge_uniqueid=_s(h.get("DestBridgeUniqueid")),
    ),
    "VarSet": lambda h, ts: VarSet(
        ts=ts,
        channel=_s(h.get("Channel")),
        uniqueid=_s(h.get("Uniqueid")),
        linkedid=_s(h.get("Linkedid")),
        variable=_s(h.get("Variable")),
        value=_s(h.get("Value")),
    ),
    "UserEvent": lambda h, ts: UserEvent(
        **_chan(h, ts),
        user_event=_s(h.get("UserEvent")),
        fields={k: _s(v) for k, v in h.items() if k not in _SNAPSHOT},
    ),
    "FullyBooted": lambda h, ts: FullyBooted(ts=ts, status=_s(h.get("Status")), uptime_s=_i(h.get("Uptime"))),
    "Shutdown": lambda h, ts: Shutdown(ts=ts, restart=_b(h.get("Restart"))),
    "QueueParams": lambda h, ts: QueueParams(
        ts=ts,
        queue=_s(h.get("Queue")),
        calls=_i(h.get("Calls")),
        hold_time_s=_i(h.get("Holdtime")),
        completed=_i(h.get("Completed")),
        abandoned=_i(h.get("Abandoned")),
        service_level_s=_i(h.get("ServiceLevel")),
        service_level_perf=_f(h.get("ServicelevelPerf")),
    ),
    "QueueMember": lambda h, ts: QueueMember(
        ts=ts,
        queue=_s(h.get("Queue")),
        member_name=_s(h.get("Name")) or _s(h.get("MemberName")),
        interface=_s(h.get("Location")) or _s(h.get("Interface")),
        state_interface=_s(h.get("StateInterface")),
        membership=_s(h.get("Membership")),
        paused=_b(h.get("Paused")),
        paused_reason=_s(h.get("PausedReason")),
        status=_i(h.get("Status")),
        in_call=_b(h.get("InCall")),
    ),
    "QueueEntry": lambda h, ts: QueueEntry(
        **_chan(h, ts), queue=_s(h.get("Queue")), position=_i(h.get("Position")), wait_s=_i(h.get("Wait"))
    ),
    "CoreShowChannel": lambda h, ts: CoreShowChannel(
        **_chan(h, ts),
        application=_s(h.get("Application")),
        application_data=_s(h.get("ApplicationData")),
        duration=_s(h.get("Duration")),
        bridge_id=_s(h.get("BridgeId")),
    ),
    "QueueStatusComplete": lambda h, ts: ListComplete(
        ts=ts, name="QueueStatusComplete", action_id=_s(h.get("ActionID")), items=_i(h.get("ListItems"))
    ),
    "CoreShowChannelsComplete": lambda h, ts: ListComplete(
        ts=ts,
        name="CoreShowChannelsComplete",
        action_id=_s(h.get("ActionID")),
        items=_i(h.get("ListItems")),
    ),
}


class EventFactory:
    """Frames → typed events, counting what it saw (per name) and what it did not know."""

    def __init__(self) -> None:
        self.unknown: Counter[str] = Counter()
        self.errors = 0

    def build(self, frame: Frame, received: float) -> AmiEvent:
        h = frame.headers
        name = h.get("Event")
        if not isinstance(name, str):
            self.errors += 1
            return UnknownEvent(ts=received, name="", frame=frame)
        builder = BUILDERS.get(name)
        ts_raw = h.get("Timestamp")
        ts = received
        if ts_raw is not None and isinstance(ts_raw, str):
            with contextlib.suppress(ValueError):
                ts = float(ts_raw)
        if builder is None:
            self.unknown[name] += 1
            return UnknownEvent(ts=ts, name=name, frame=frame)
        try:
            return builder(h, ts)
        except Exception:  # a builder bug must not take the bridge down
            self.errors += 1
            return UnknownEvent(ts=ts, name=name, frame=frame)


_default = EventFactory()


def from_frame(frame: Frame, received: float) -> AmiEvent:
    """Build one typed event (module-level factory; use :class:`EventFactory` for counts)."""
    return _default.build(frame, received)
