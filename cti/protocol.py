"""The AMI protocol core: bytes in, frames, typed events out. No I/O.

AMI is a stream of frames, each a block of ``Key: Value\\r\\n`` lines closed by an empty line,
preceded once by a greeting line (``Asterisk Call Manager/<version>\\r\\n``).

Frames are split on **bytes** and only a complete frame is decoded. That is the incremental
UTF-8 decoding the AMI link needs: ``\\r\\n\\r\\n`` can never occur inside a multi-byte UTF-8
sequence, so a Chinese caller name cut between two TCP reads is reassembled before any
decoding happens (panoramisk decodes every chunk on its own with ``errors='ignore'`` and
loses the cut character).

>>> p = FrameParser()
>>> p.feed(b"Asterisk Call Manager/9.0.0\\r\\nResponse: Success\\r\\nMessage: Authentication accepted\\r\\n")
[]
>>> p.version
'9.0.0'
>>> name = "张三".encode()
>>> p.feed(b"\\r\\nEvent: Newchannel\\r\\nCallerIDName: " + name[:4])
[Frame(Response: Success)]
>>> [f] = p.feed(name[4:] + b"\\r\\nChanVariable: A=1\\r\\nChanVariable: B=2\\r\\n\\r\\n")
>>> f["CallerIDName"], f["ChanVariable"]
('张三', ['A=1', 'B=2'])
>>> p.feed(b"no colon here\\r\\n\\r\\n"), p.malformed
([], 1)

Each event frame then becomes one typed event (:mod:`cti.events`), once, at the edge; events the
system does not need become :class:`~cti.events.UnknownEvent` (counted, never a crash):

>>> e = from_frame(parse_frame("Event: AgentRingNoAnswer\\r\\nTimestamp: 1795344900.250000\\r\\n"
...                            "Queue: hotline\\r\\nMemberName: 8001\\r\\nRingTime: 15000"), received=0.0)
>>> type(e).__name__, e.ts, e.member_name, e.ring_time_ms
('AgentRingNoAnswer', 1795344900.25, '8001', 15000)
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Callable, Iterator

from cti import events as ev

log = logging.getLogger(__name__)

SEP = b"\r\n\r\n"
GREETING = b"Asterisk Call Manager/"
#: a frame larger than this without a terminator is garbage (or an attack): drop it
MAX_FRAME_BYTES = 1 << 20
#: the greeting is one short line; a "greeting" without its line end within this is not one
MAX_GREETING_BYTES = 256

Value = str | list[str]


class Frame:
    """One AMI frame: its headers (repeated headers as a list, in order) and free text lines.

    Plain ``__slots__`` class rather than a dataclass: the ingest path builds tens of
    thousands of these per second.
    """

    __slots__ = ("headers", "lines")

    def __init__(self, headers: dict[str, Value], lines: list[str] | None = None) -> None:
        self.headers = headers
        self.lines = lines or []  # body lines without "Key: " (old-style Command output)

    @property
    def event(self) -> str | None:
        v = self.headers.get("Event")
        return v if isinstance(v, str) else None

    @property
    def response(self) -> str | None:
        v = self.headers.get("Response")
        return v if isinstance(v, str) else None

    @property
    def action_id(self) -> str | None:
        v = self.headers.get("ActionID")
        return v if isinstance(v, str) else None

    def __getitem__(self, key: str) -> Value:
        return self.headers[key]

    def get(self, key: str, default: str = "") -> Value:
        return self.headers.get(key, default)

    def __contains__(self, key: str) -> bool:
        return key in self.headers

    def __repr__(self) -> str:
        kind = "Event" if self.event is not None else "Response"
        return f"Frame({kind}: {self.headers.get(kind)})"


def parse_frame(text: str) -> Frame | None:
    """Turn one decoded frame (without its terminator) into a :class:`Frame`.

    Returns ``None`` when the frame is neither an event nor a response (a repeated ``Event`` or
    ``Response`` header names neither: that is no frame Asterisk sends).

    >>> parse_frame("Event: Hangup\\r\\nCause-txt: Normal Clearing\\r\\nEmpty:").headers
    {'Event': 'Hangup', 'Cause-txt': 'Normal Clearing', 'Empty': ''}
    >>> parse_frame("garbage") is None, parse_frame("Event: A\\r\\nEvent: B") is None
    (True, True)
    """
    headers: dict[str, Value] = {}
    lines: list[str] | None = None
    for line in text.split("\r\n"):
        key, sep, value = line.partition(": ")
        if not sep:
            if line.endswith(":") and " " not in line:  # "Key:" with an empty value
                key, value = line[:-1], ""
            else:
                if line:
                    if lines is None:
                        lines = []
                    lines.append(line)
                continue
        if key not in headers:  # (``in``, not ``get``: every line of every frame comes here)
            headers[key] = value
        else:
            old = headers[key]
            if isinstance(old, list):
                old.append(value)
            else:
                headers[key] = [old, value]
    if not isinstance(headers.get("Event"), str) and not isinstance(headers.get("Response"), str):
        return None
    return Frame(headers, lines)


class FrameParser:
    """Incremental AMI frame parser. Feed it whatever TCP delivers; it never raises.

    Malformed frames (undecodable bytes, no ``Event``/``Response``, oversized) are logged and
    counted in :attr:`malformed`; undecodable bytes are replaced (U+FFFD), the frame is kept.
    However the stream is cut into reads, the frames and the counts are the same (the fuzz tests
    in tests/cti/test_protocol_fuzz.py check it), and the work is linear in the bytes: the buffer
    is appended to, and only the new bytes are searched for a terminator.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._greeting_pending = True
        self.version: str | None = None
        self.frames = 0
        self.malformed = 0
        self.decode_errors = 0

    def reset(self) -> None:
        """Forget buffered bytes: a new connection starts with a new greeting."""
        self._buf = bytearray()
        self._greeting_pending = True

    def feed(self, data: bytes) -> list[Frame]:
        """Add bytes; return the frames they complete (possibly none)."""
        return list(self.iter_feed(data))

    def iter_feed(self, data: bytes) -> Iterator[Frame]:
        buf = self._buf
        # what was buffered holds no terminator (it is what followed the last one): a terminator can
        # only end in the new bytes, so only they (and the 3 bytes before them) are searched
        start = max(0, len(buf) - 3)
        buf += data
        if self._greeting_pending:
            if not self._take_greeting(buf):
                return
            start = 0
        end = buf.rfind(SEP, start)
        if end < 0:
            if len(buf) > MAX_FRAME_BYTES:
                self.malformed += 1
                log.warning("AMI: dropped %d bytes without a frame terminator", len(buf))
                buf.clear()
            return
        block = bytes(buf[:end])
        del buf[: end + 4]
        for raw in block.split(SEP):
            frame = self._decode(raw)
            if frame is not None:
                yield frame

    def _take_greeting(self, buf: bytearray) -> bool:
        """Take the greeting line off the front of ``buf`` (in place); False while it may still come."""
        stripped = len(buf) - len(buf.lstrip(b"\r\n"))
        if stripped == len(buf):
            buf.clear()  # line ends only: nothing yet
            return False
        if buf.startswith(GREETING, stripped):
            eol = buf.find(b"\r\n", stripped, stripped + MAX_GREETING_BYTES)
            if eol >= 0:
                self.version = bytes(buf[stripped + len(GREETING) : eol]).decode("ascii", "replace").strip()
                self._greeting_pending = False
                del buf[: eol + 2]
                return True
            if len(buf) - stripped < MAX_GREETING_BYTES:
                return False  # greeting not complete yet
            log.warning("AMI: a greeting without its line end: %r", bytes(buf[stripped : stripped + 80]))
        elif len(buf) - stripped < len(GREETING) and GREETING.startswith(buf[stripped:]):
            return False  # could still become the greeting
        self._greeting_pending = False  # no greeting (e.g. a mid-stream transcript): all of it is frames
        del buf[:stripped]  # the leading line ends too, as line-end-only reads before were: cut anywhere, same frames
        return True

    def _decode(self, raw: bytes) -> Frame | None:
        if not raw or raw.startswith(b"\r\n"):  # Asterisk sometimes sends a stray EOL between frames
            raw = raw.lstrip(b"\r\n")
            if not raw:
                return None  # nothing between two terminators is no frame (and no malformed one)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            self.decode_errors += 1
            self.malformed += 1
            text = raw.decode("utf-8", "replace")
            log.warning("AMI: frame with invalid UTF-8: %r", raw[:200])
        frame = parse_frame(text)
        if frame is None:
            self.malformed += 1
            log.warning("AMI: frame without one Event or Response: %r", text[:200])
            return None
        self.frames += 1
        return frame


# ---------------------------------------------------------------- frames → typed events
# One plain lambda per event name over the header dict: this is the ingest hot path, every frame of
# a busy AMI stream goes through it (bench/ami_ingest.py measures it against panoramisk's bare parse).


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
    d.update(bridge_uniqueid=_s(g("BridgeUniqueid")), bridge_type=_s(g("BridgeType")),
             bridge_technology=_s(g("BridgeTechnology")), bridge_num_channels=_i(g("BridgeNumChannels")))
    return d


def _conf(h: dict[str, Value], ts: float) -> dict:
    d = _chan(h, ts)
    g = h.get
    d.update(conference=_s(g("Conference")), bridge_uniqueid=_s(g("BridgeUniqueid")), marked=_b(g("Marked")),
             admin=_b(g("Admin")))
    return d


Builder = Callable[[dict[str, Value], float], ev.AmiEvent]


def _complete(name: str) -> Builder:
    """``QueueStatusComplete`` / ``CoreShowChannelsComplete``: the end of a resync list."""
    return lambda h, ts: ev.ListComplete(ts=ts, name=name, action_id=_s(h.get("ActionID")),
                                         items=_i(h.get("ListItems")))


# headers that belong to the channel snapshot, not to a UserEvent's own payload
_SNAPSHOT = frozenset(
    ["Event", "Privilege", "Timestamp", "Channel", "ChannelState", "ChannelStateDesc", "CallerIDNum", "CallerIDName",
     "ConnectedLineNum", "ConnectedLineName", "Language", "AccountCode", "Context", "Exten", "Priority", "Uniqueid",
     "Linkedid", "ChanVariable", "UserEvent"]
)

BUILDERS: dict[str, Builder] = {
    "QueueCallerJoin": lambda h, ts: ev.QueueCallerJoin(
        **_chan(h, ts), queue=_s(h.get("Queue")), position=_i(h.get("Position")), count=_i(h.get("Count"))
    ),
    "QueueCallerLeave": lambda h, ts: ev.QueueCallerLeave(
        **_chan(h, ts), queue=_s(h.get("Queue")), position=_i(h.get("Position")), count=_i(h.get("Count"))
    ),
    "QueueCallerAbandon": lambda h, ts: ev.QueueCallerAbandon(
        **_chan(h, ts), queue=_s(h.get("Queue")), position=_i(h.get("Position")),
        original_position=_i(h.get("OriginalPosition")), hold_time_s=_i(h.get("HoldTime")),
    ),
    "AgentCalled": lambda h, ts: ev.AgentCalled(**_agent(h, ts)),
    "AgentRingNoAnswer": lambda h, ts: ev.AgentRingNoAnswer(**_agent(h, ts), ring_time_ms=_i(h.get("RingTime"))),
    "AgentConnect": lambda h, ts: ev.AgentConnect(
        **_agent(h, ts), hold_time_s=_i(h.get("HoldTime")), ring_time_s=_i(h.get("RingTime"))
    ),
    "AgentComplete": lambda h, ts: ev.AgentComplete(
        **_agent(h, ts), hold_time_s=_i(h.get("HoldTime")), talk_time_s=_i(h.get("TalkTime")),
        reason=_s(h.get("Reason")),
    ),
    "AgentDump": lambda h, ts: ev.AgentDump(**_agent(h, ts)),
    "DialEnd": lambda h, ts: ev.DialEnd(
        **_chan(h, ts), dest_channel=_s(h.get("DestChannel")), dest_uniqueid=_s(h.get("DestUniqueid")),
        dial_status=_s(h.get("DialStatus")),
    ),
    "QueueMemberAdded": lambda h, ts: ev.QueueMemberAdded(**_member(h, ts)),
    "QueueMemberRemoved": lambda h, ts: ev.QueueMemberRemoved(**_member(h, ts)),
    "QueueMemberPause": lambda h, ts: ev.QueueMemberPause(**_member(h, ts)),
    "QueueMemberPaused": lambda h, ts: ev.QueueMemberPause(**_member(h, ts)),  # pre-13 name
    "QueueMemberStatus": lambda h, ts: ev.QueueMemberStatus(**_member(h, ts)),
    "Newchannel": lambda h, ts: ev.Newchannel(**_chan(h, ts)),
    "Hangup": lambda h, ts: ev.Hangup(**_chan(h, ts), cause=_i(h.get("Cause")), cause_txt=_s(h.get("Cause-txt"))),
    "Hold": lambda h, ts: ev.Hold(**_chan(h, ts), music_class=_s(h.get("MusicClass"))),
    "Unhold": lambda h, ts: ev.Unhold(**_chan(h, ts)),
    "SoftHangupRequest": lambda h, ts: ev.SoftHangupRequest(**_chan(h, ts), cause=_i(h.get("Cause"))),
    "BridgeEnter": lambda h, ts: ev.BridgeEnter(**_bridge(h, ts), swap_uniqueid=_s(h.get("SwapUniqueid"))),
    "BridgeLeave": lambda h, ts: ev.BridgeLeave(**_bridge(h, ts)),
    "ConfbridgeJoin": lambda h, ts: ev.ConfbridgeJoin(**_conf(h, ts)),
    "ConfbridgeLeave": lambda h, ts: ev.ConfbridgeLeave(**_conf(h, ts)),
    "BlindTransfer": lambda h, ts: ev.BlindTransfer(
        ts=ts, result=_s(h.get("Result")), transferer_channel=_s(h.get("TransfererChannel")),
        transferer_uniqueid=_s(h.get("TransfererUniqueid")), transferee_channel=_s(h.get("TransfereeChannel")),
        transferee_uniqueid=_s(h.get("TransfereeUniqueid")), context=_s(h.get("Context")),
        extension=_s(h.get("Extension")), is_external=_b(h.get("IsExternal")),
    ),
    "AttendedTransfer": lambda h, ts: ev.AttendedTransfer(
        ts=ts, result=_s(h.get("Result")), transferer_uniqueid=_s(h.get("OrigTransfererUniqueid")),
        transferee_channel=_s(h.get("TransfereeChannel")), transferee_uniqueid=_s(h.get("TransfereeUniqueid")),
        target_channel=_s(h.get("TransferTargetChannel")), target_uniqueid=_s(h.get("TransferTargetUniqueid")),
        dest_type=_s(h.get("DestType")), dest_bridge_uniqueid=_s(h.get("DestBridgeUniqueid")),
    ),
    "VarSet": lambda h, ts: ev.VarSet(
        ts=ts, channel=_s(h.get("Channel")), uniqueid=_s(h.get("Uniqueid")), linkedid=_s(h.get("Linkedid")),
        variable=_s(h.get("Variable")), value=_s(h.get("Value")),
    ),
    "UserEvent": lambda h, ts: ev.UserEvent(
        **_chan(h, ts), user_event=_s(h.get("UserEvent")),
        fields={k: _s(v) for k, v in h.items() if k not in _SNAPSHOT},
    ),
    "FullyBooted": lambda h, ts: ev.FullyBooted(ts=ts, status=_s(h.get("Status")), uptime_s=_i(h.get("Uptime"))),
    "Shutdown": lambda h, ts: ev.Shutdown(ts=ts, restart=_b(h.get("Restart"))),
    "QueueParams": lambda h, ts: ev.QueueParams(
        ts=ts, queue=_s(h.get("Queue")), calls=_i(h.get("Calls")), hold_time_s=_i(h.get("Holdtime")),
        completed=_i(h.get("Completed")), abandoned=_i(h.get("Abandoned")),
        service_level_s=_i(h.get("ServiceLevel")), service_level_perf=_f(h.get("ServicelevelPerf")),
    ),
    "QueueMember": lambda h, ts: ev.QueueMember(
        ts=ts, queue=_s(h.get("Queue")), member_name=_s(h.get("Name")) or _s(h.get("MemberName")),
        interface=_s(h.get("Location")) or _s(h.get("Interface")), state_interface=_s(h.get("StateInterface")),
        membership=_s(h.get("Membership")), paused=_b(h.get("Paused")), paused_reason=_s(h.get("PausedReason")),
        status=_i(h.get("Status")), in_call=_b(h.get("InCall")), last_call=_i(h.get("LastCall")),
    ),
    "QueueEntry": lambda h, ts: ev.QueueEntry(
        **_chan(h, ts), queue=_s(h.get("Queue")), position=_i(h.get("Position")), wait_s=_i(h.get("Wait"))
    ),
    "CoreShowChannel": lambda h, ts: ev.CoreShowChannel(
        **_chan(h, ts), application=_s(h.get("Application")), application_data=_s(h.get("ApplicationData")),
        duration=_s(h.get("Duration")), bridge_id=_s(h.get("BridgeId")),
    ),
    "QueueStatusComplete": _complete("QueueStatusComplete"),
    "CoreShowChannelsComplete": _complete("CoreShowChannelsComplete"),
}


class EventFactory:
    """Frames → typed events, counting what it saw (per name) and what it did not know."""

    def __init__(self) -> None:
        self.unknown: Counter[str] = Counter()
        self.errors = 0

    def build(self, frame: Frame, received: float) -> ev.AmiEvent:
        h = frame.headers
        name = h.get("Event")
        if not isinstance(name, str):
            self.errors += 1
            return ev.UnknownEvent(ts=received, name="", frame=frame)
        builder = BUILDERS.get(name)
        ts_raw = h.get("Timestamp")
        ts = received
        if ts_raw is not None and isinstance(ts_raw, str):
            try:  # not contextlib.suppress: this runs for every frame
                ts = float(ts_raw)
            except ValueError:
                ts = received
            if not math.isfinite(ts):  # "nan", "inf", "1e999": no moment; the time it arrived is one
                ts = received
        if builder is None:
            self.unknown[name] += 1
            return ev.UnknownEvent(ts=ts, name=name, frame=frame)
        try:
            return builder(h, ts)
        except Exception:  # a builder bug must not take the bridge down
            self.errors += 1
            return ev.UnknownEvent(ts=ts, name=name, frame=frame)


_default = EventFactory()


def from_frame(frame: Frame, received: float) -> ev.AmiEvent:
    """Build one typed event (module-level factory; use :class:`EventFactory` for counts)."""
    return _default.build(frame, received)
