"""Asterisk's own record of each call (CEL), read back into finished calls. No I/O.

The CTI bridge builds the call log from AMI events; while it is down (a restart, a crash, a dead
AMI link) it sees nothing, and a call that starts and ends meanwhile would leave no trace. Asterisk
writes its Channel Event Log regardless (``asterisk-config/cel.conf``: one JSON object a line,
microsecond times). This module turns those lines into :class:`CelEvent`, groups them by call, and
rebuilds a :class:`~hotline.calls.FinishedCall` (``reconstructed=True``) with what the bridge would
have logged: when the citizen joined the queue, whether and when a seat answered (its wait, judged
against the 15 s rule as the bridge judges it), which seats rang, the talk time, the recording.
:func:`compare` sets the rebuilt calls beside the logged ones (the periodic reconciliation).

A citizen's call is the channel on which the dialplan raised the ``HL_CALL`` user event
(``extensions.conf``, ``from-trunk``); its extra is the recording base. Other channels with the same
``linkedid`` are the seats' legs (and, for a simulated caller, the other half of its Local channel).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from cti.seats import seat_id
from hotline.calls import FinishedCall

CALL_MARK = "HL_CALL"
QUEUE_APP = "Queue"
# what each event's JSON extra holds that matters here: HL_CALL the recording base; HANGUP who hung
# up (empty when no party did: Asterisk stopping, or an administrator's hangup — the call was cut)
_EXTRA = {CALL_MARK: "extra", "HANGUP": "hangupsource"}


@dataclass(frozen=True, slots=True)
class CelEvent:
    kind: str  # CHAN_START, ANSWER, HANGUP, BRIDGE_ENTER, APP_START, APP_END, HL_CALL, LINKEDID_END
    at: float  # epoch seconds, Asterisk's clock
    uniqueid: str
    linkedid: str
    channel: str
    context: str = ""
    number: str = ""  # the channel's caller id number
    app: str = ""
    app_data: str = ""
    peer: str = ""  # BRIDGE_ENTER: the other channel(s) in the bridge
    extra: str = ""  # HL_CALL: the recording base; HANGUP: the channel that hung up ("" if none did)


def parse(line: str | bytes) -> CelEvent | None:
    """One line of the CEL file; None for a line that is not one (torn by a crash, or foreign)."""
    try:
        raw = json.loads(line)
        kind, at, uid, linked = raw["eventtype"], float(raw["eventtime"]), raw["uniqueid"], raw["linkedid"]
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(raw, dict) or not kind or not uid:
        return None
    extra = str(raw.get("eventextra") or "")
    if kind in _EXTRA:
        try:
            extra = str(json.loads(extra).get(_EXTRA[kind], "")) if extra.startswith("{") else ""
        except (ValueError, AttributeError):
            extra = ""
    return CelEvent(kind=str(kind), at=at, uniqueid=str(uid), linkedid=str(linked or uid),
                    channel=str(raw.get("channame") or ""), context=str(raw.get("context") or ""),
                    number=str(raw.get("num") or ""), app=str(raw.get("appname") or ""),
                    app_data=str(raw.get("appdata") or ""), peer=str(raw.get("peer") or ""), extra=extra)


def _endpoint(channel: str) -> str:
    """``PJSIP/8001-0000001a`` → ``8001`` (a seat's id, as :func:`cti.seats.seat_id` names it)."""
    name = channel.rpartition("-")[0] if channel.count("-") and not channel.startswith("Local/") else channel
    return seat_id("", name.split(";")[0])


@dataclass
class _Linked:
    """Every event that shares one linkedid: the citizen's call and the seats' legs."""

    events: list[CelEvent] = field(default_factory=list)
    call_uid: str = ""  # the channel that raised HL_CALL
    recording_base: str = ""
    ended_at: float | None = None  # the citizen's channel hung up

    @property
    def last_at(self) -> float:
        return max((e.at for e in self.events), default=0.0)


class Witness:
    """The calls Asterisk recorded, fed line by line; finished ones come out rebuilt."""

    def __init__(self, rule_s: int = 15) -> None:
        self.rule_ms = rule_s * 1000
        self._linked: dict[str, _Linked] = {}
        self.malformed = 0

    def feed(self, events: Iterable[CelEvent]) -> None:
        for e in events:
            group = self._linked.setdefault(e.linkedid, _Linked())
            group.events.append(e)
            if e.kind == CALL_MARK and not group.call_uid:
                group.call_uid, group.recording_base = e.uniqueid, e.extra
            if e.kind == "HANGUP" and e.uniqueid == group.call_uid:
                group.ended_at = e.at

    def feed_lines(self, lines: Iterable[str | bytes]) -> None:
        events = []
        for line in lines:
            e = parse(line)
            if e is None:
                self.malformed += bool(line.strip())
            else:
                events.append(e)
        self.feed(events)

    def finished(self, ended_before: float, ended_after: float = 0.0) -> list[FinishedCall]:
        """The citizens' calls whose channel hung up in ``[ended_after, ended_before)``, rebuilt."""
        return [rebuild(g, self.rule_ms) for g in self._linked.values()
                if g.call_uid and g.ended_at is not None and ended_after <= g.ended_at < ended_before]

    def unfinished(self, started_before: float) -> list[str]:
        """Calls that began before ``started_before`` and never hung up: Asterisk stopped under them."""
        return [g.call_uid for g in self._linked.values()
                if g.call_uid and g.ended_at is None and g.events[0].at < started_before]

    def rebuild_unfinished(self, call_id: str) -> FinishedCall | None:
        """An unfinished call closed as ``lost`` at the last event Asterisk wrote for it."""
        for g in self._linked.values():
            if g.call_uid == call_id:
                return rebuild(g, self.rule_ms, lost_at=g.last_at)
        return None

    def forget(self, before: float) -> int:
        """Drop the calls whose last event is older than ``before`` (the look-back window)."""
        old = [k for k, g in self._linked.items() if g.last_at < before]
        for k in old:
            del self._linked[k]
        return len(old)

    def call_ids(self) -> set[str]:
        return {g.call_uid for g in self._linked.values() if g.call_uid}

    def __len__(self) -> int:
        return sum(1 for g in self._linked.values() if g.call_uid)


def rebuild(group: _Linked, rule_ms: int = 15_000, lost_at: float | None = None) -> FinishedCall:
    """What the bridge would have logged for this call, from Asterisk's events alone."""
    uid = group.call_uid
    own = [e for e in group.events if e.uniqueid == uid]
    arrived = min(e.at for e in own)
    number = next((e.number for e in own if e.number), "")
    joins = [e for e in own if e.kind == "APP_START" and e.app == QUEUE_APP]
    queued_at = joins[0].at if joins else None
    queue = joins[0].app_data.split(",")[0] if joins else ""
    bridged = next((e for e in own if e.kind == "BRIDGE_ENTER" and e.peer
                    and (queued_at is None or e.at >= queued_at)), None)
    legs = [e for e in group.events if e.uniqueid != uid and not e.channel.startswith("Local/")]
    rung: list[str] = []
    for e in legs:
        if e.kind == "CHAN_START" and _endpoint(e.channel) not in rung:
            rung.append(_endpoint(e.channel))
    ended = lost_at if lost_at is not None else (group.ended_at or group.last_at)
    # nobody hung up: Asterisk cut the call (stopping); the bridge logs such a call as lost too
    cut = lost_at is not None or any(e.kind == "HANGUP" and not e.extra for e in own)
    answered_at = wait_ms = None
    seat, talk_s, recordings, base = "", 0.0, (), ""
    if bridged is not None and queued_at is not None:
        peer = bridged.peer.split(",")[0]
        seat = _endpoint(peer)
        # the operator answered when their leg did: the job-number announcement comes before the bridge
        picked = [e.at for e in legs if e.channel == peer and e.kind == "ANSWER"]
        answered_at = min([bridged.at, *picked])
        wait_ms = round((answered_at - queued_at) * 1000)
        hung = [e.at for e in legs if e.channel == peer and e.kind == "HANGUP"]
        talk_s = round(min([ended, *hung]) - answered_at, 3)
        base = group.recording_base
        if base:
            recordings = (f"{base}.wav", f"{base}-in.wav", f"{base}-out.wav")  # mixed, citizen, operator
    elif queued_at is not None and not cut:
        wait_ms = round((ended - queued_at) * 1000)
    lost = cut
    return FinishedCall(
        call_id=uid, caller_num=number, offered_at=queued_at if queued_at is not None else arrived, ended_at=ended,
        queue=queue, seats_rung=tuple(rung), seat=seat, answered_at=answered_at, wait_ms=wait_ms,
        within_rule=wait_ms is not None and answered_at is not None and wait_ms <= rule_ms, talk_s=talk_s,
        abandoned=answered_at is None and queued_at is not None and not lost, lost=lost,
        recordings=recordings, recording_base=base, reconstructed=True,
    )


@dataclass(frozen=True, slots=True)
class Differences:
    """Asterisk's records beside the call log, over one window."""

    checked: int  # calls in Asterisk's records
    missing: tuple[str, ...]  # in Asterisk's records, not (or not finished) in the call log
    unknown_to_asterisk: tuple[str, ...]  # logged, absent from Asterisk's records
    outcome_differs: tuple[str, ...]  # answered in one, not in the other
    lost_but_finished: tuple[str, ...]  # logged as lost, yet Asterisk saw the call end normally

    @property
    def count(self) -> int:
        return (len(self.missing) + len(self.unknown_to_asterisk) + len(self.outcome_differs)
                + len(self.lost_but_finished))


def compare(witnessed: Iterable[FinishedCall], logged: Iterable[FinishedCall]) -> Differences:
    """Where the call log and Asterisk's records disagree (both over the same window)."""
    theirs = {c.call_id: c for c in witnessed}
    ours = {c.call_id: c for c in logged}
    missing = sorted(set(theirs) - set(ours))
    unknown = sorted(k for k, c in ours.items() if k not in theirs and not c.lost)
    both = sorted(set(theirs) & set(ours))
    differs = [k for k in both if not ours[k].lost and ours[k].answered != theirs[k].answered]
    lost = [k for k in both if ours[k].lost and not theirs[k].lost]
    return Differences(len(theirs), tuple(missing), tuple(unknown), tuple(differs), tuple(lost))
