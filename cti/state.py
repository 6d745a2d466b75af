"""The live state of calls, seats and queues: pure state machines, no I/O, no clock of their own.

:class:`CtiState` consumes typed AMI events (:mod:`cti.events`) and returns domain events
(:mod:`cti.domain`). Time comes from the events (Asterisk's ``Timestamp``) and from the
``now`` given to :meth:`CtiState.tick` / the snapshot methods, so tests need no sleeps.

Why some choices:

* A **call** is the citizen's channel (its ``Uniqueid``); seat legs are mapped back to it.
* The **15 s rule** is timed from ``QueueCallerJoin`` to ``AgentConnect`` using Asterisk's
  timestamps; ``AgentConnect.HoldTime`` is whole seconds and too coarse.
* A **seat** stays on the call as long as its own channel lives (not until ``AgentComplete``):
  in a three-party conference the seat's leg is redirected out of the queue but still talks,
  and ``AgentComplete`` sometimes lacks the channel. Wrap-up (话后处理) starts when the seat's
  channel hangs up and lasts ``wrapup_s``.
* A seat's displayed state is derived from a few facts (signed in, ringing/on call, wrap-up
  deadline, paused + reason), so no combination of events can leave it inconsistent.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from cti import events as ev
from cti.domain import (
    AnswerRuleBreached,
    CallAbandoned,
    CallAnswered,
    CallbackRequested,
    CallCompleted,
    CallConferenced,
    CallHeld,
    CallOffered,
    CallRecord,
    CallState,
    CallTransferred,
    DomainEvent,
    SeatRinging,
    SeatRingNoAnswer,
    SeatState,
    SeatStateChanged,
)
from cti.stats import AnswerStats, Figures, Outcome, local_midnight

Clock = Callable[[], float]

_WAITING = (CallState.QUEUED, CallState.RINGING)

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


@dataclass(slots=True)
class Call:
    call_id: str
    channel: str = ""
    caller_num: str = ""
    caller_name: str = ""
    queue: str = ""  # the first queue it joined
    current_queue: str = ""
    state: CallState = CallState.OFFERED
    offered_at: float = 0.0  # first queue join
    queued_at: float = 0.0  # current queue join (the 15 s countdown)
    answered_at: float | None = None
    picked_up: tuple[str, float] | None = None  # (seat leg uniqueid, when it answered): DialEnd ANSWER
    talk_end: float | None = None  # the answering seat's leg hung up (the survey may follow)
    wait_ms: int | None = None
    within_rule: bool = False
    seat: str = ""  # who answered first
    current_seat: str = ""
    ringing_seat: str = ""
    seats_rung: list[str] = field(default_factory=list)
    alerted: bool = False
    outcome_recorded: bool = False  # for the current queue leg
    transferred_to: str = ""
    conference: str = ""
    conf_channels: set[str] = field(default_factory=set)
    recordings: list[str] = field(default_factory=list)
    survey: str = ""
    callback_requested: bool = False
    cut_by_shutdown: bool = False  # Asterisk stopping hung it up: lost, not abandoned
    variables: dict[str, str] = field(default_factory=dict)
    holding: set[str] = field(default_factory=set)  # uniqueids of the phones holding the call
    hold_since: float | None = None
    hold_s: float = 0.0  # finished hold spells

    def held_s(self, now: float) -> float:
        return self.hold_s + (now - self.hold_since if self.hold_since is not None else 0.0)

    def view(self, now: float) -> dict:
        waiting = self.state in _WAITING
        return {
            "call_id": self.call_id,
            "caller_num": self.caller_num,
            "caller_name": self.caller_name,
            "queue": self.current_queue or self.queue,
            "state": str(self.state),
            "seat": self.current_seat or self.ringing_seat,
            "offered_at": self.offered_at,
            "answered_at": self.answered_at,
            "waiting_s": round(now - self.queued_at, 1) if waiting else None,
            "wait_ms": self.wait_ms,
            "seats_rung": list(self.seats_rung),
            "conference": self.conference,
            "transferred_to": self.transferred_to,
            "on_hold": bool(self.holding),
            "hold_s": round(self.held_s(now), 1),
        }


@dataclass(slots=True)
class Seat:
    seat: str
    interface: str = ""
    operator: str = ""
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
            "wrapup_remaining_s": (
                max(0.0, round(self.wrapup_until - now, 1))
                if self.state == SeatState.WRAP_UP and self.wrapup_until
                else None
            ),
        }


@dataclass(frozen=True, slots=True)
class SeatToRestore:
    """A seat that was signed in before Asterisk restarted and must be re-added (QueueAdd)."""

    seat: str
    interface: str
    queue: str
    paused: bool
    reason: str


@dataclass(frozen=True, slots=True)
class ResyncResult:
    events: list[DomainEvent]
    seats_to_restore: list[SeatToRestore]
    calls_dropped: list[str]
    calls_adopted: list[str]


class CtiState:
    """Calls, seats and queues. Feed :meth:`handle` typed events; call :meth:`tick` every second."""

    def __init__(
        self,
        *,
        rule_s: int = 15,
        wrapup_s: float = 30.0,
        tz: str = "Asia/Shanghai",
        inbound_context: str = "from-trunk",
        recbase_var: str = "HL_RECBASE",
        clock: Clock = time.time,
    ) -> None:
        self.rule_s = rule_s
        self.rule_ms = rule_s * 1000
        self.wrapup_s = wrapup_s
        self.tz = ZoneInfo(tz)
        self.inbound_context = inbound_context
        self.recbase_var = recbase_var  # the dialplan's recording base name (VarSet is filtered out)
        self.clock = clock
        self.calls: dict[str, Call] = {}
        self.seats: dict[str, Seat] = {}
        self.stats: dict[str, AnswerStats] = {}
        self.ignored = 0  # events about calls/seats we do not know (e.g. before a resync)
        self._leg_call: dict[str, str] = {}  # seat leg uniqueid → call id
        self._conf_call: dict[str, str] = {}  # conference name → call id
        self._iface_seat: dict[str, str] = {}
        # who is signed in where: bumped by every change of a seat's operator or queues, so that
        # operator_seats() (asked per message per websocket) is rebuilt only when it can differ
        self.roster_version = 0
        self._roster: tuple[int, dict[str, str]] = (-1, {})
        self._handlers: dict[type, Callable[[ev.AmiEvent], list[DomainEvent]]] = {
            ev.Newchannel: self._on_newchannel,
            ev.QueueCallerJoin: self._on_join,
            ev.QueueCallerAbandon: self._on_abandon,
            ev.AgentCalled: self._on_called,
            ev.AgentRingNoAnswer: self._on_ring_no_answer,
            ev.DialEnd: self._on_dial_end,
            ev.AgentConnect: self._on_connect,
            ev.AgentComplete: self._on_complete,
            ev.AgentDump: self._on_dump,
            ev.Hangup: self._on_hangup,
            ev.Hold: self._on_hold,
            ev.Unhold: self._on_hold,
            ev.QueueMemberAdded: self._on_member,
            ev.QueueMemberRemoved: self._on_member_removed,
            ev.QueueMemberPause: self._on_member,
            ev.QueueMemberStatus: self._on_member,
            ev.ConfbridgeJoin: self._on_conf_join,
            ev.ConfbridgeLeave: self._on_conf_leave,
            ev.BlindTransfer: self._on_blind_transfer,
            ev.AttendedTransfer: self._on_attended_transfer,
            ev.VarSet: self._on_varset,
            ev.UserEvent: self._on_user_event,
            ev.Shutdown: self._on_shutdown,
            ev.SoftHangupRequest: self._on_soft_hangup,
        }
        self._shutting_down = False  # Asterisk said Shutdown: its hang-ups are not the citizens' doing

    # ------------------------------------------------------------ entry points

    def handle(self, e: ev.AmiEvent) -> list[DomainEvent]:
        """Apply one AMI event; return what changed, as domain events."""
        h = self._handlers.get(type(e))
        return h(e) if h is not None else []

    def tick(self, now: float) -> list[DomainEvent]:
        """Time passes: answer-rule alerts for waiting calls, wrap-ups that end."""
        out: list[DomainEvent] = []
        for call in self.calls.values():
            if call.state in _WAITING and not call.alerted and call.picked_up is None:
                self._check_rule(call, now, out)
        for seat in self.seats.values():
            if seat.wrapup_until is not None and now >= seat.wrapup_until:
                seat.wrapup_until = None
                self._touch(seat, now, out)
        return out

    def seed_history(self, records: Iterable[CallRecord]) -> int:
        """Rebuild the rolling figures from the persisted call log after a bridge restart.

        Only calls that reached a queue and were answered or abandoned count (``lost`` ones
        never had an outcome). Returns how many were taken.
        """
        n = 0
        for r in records:
            if not r.queue or r.lost or r.wait_ms is None:
                continue
            self._stats(r.queue).add(Outcome(r.offered_at, r.answered_at is not None, r.wait_ms))
            n += 1
        return n

    def set_operator(self, seat: str, operator: str) -> None:
        """Who sits at the seat (known to the console, not to Asterisk)."""
        self._seat(seat, "").operator = operator
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

    # ------------------------------------------------------------ views (for the REST API)

    def seat_views(self, now: float | None = None) -> list[dict]:
        now = self.clock() if now is None else now
        return [s.view(now) for s in sorted(self.seats.values(), key=lambda s: s.seat)]

    def call_views(self, now: float | None = None) -> list[dict]:
        now = self.clock() if now is None else now
        return [c.view(now) for c in self.calls.values()]

    def figures(self, queue: str, now: float | None = None) -> Figures:
        now = self.clock() if now is None else now
        return self._stats(queue).figures(now, local_midnight(now, self.tz))

    def queue_views(self, now: float | None = None, queues: Iterable[str] = ()) -> list[dict]:
        now = self.clock() if now is None else now
        names = set(queues) | set(self.stats)
        for s in self.seats.values():
            names |= s.queues
        for c in self.calls.values():
            if c.current_queue:
                names.add(c.current_queue)
        day_start = local_midnight(now, self.tz)
        out = []
        for q in sorted(names):
            waiting = [c for c in self.calls.values() if c.current_queue == q and c.state in _WAITING]
            members = [s for s in self.seats.values() if q in s.queues]
            f = self._stats(q).figures(now, day_start)
            out.append(
                {
                    "queue": q,
                    "waiting": len(waiting),
                    "longest_wait_s": round(max((now - c.queued_at for c in waiting), default=0.0), 1),
                    "seats_ready": sum(s.state == SeatState.READY for s in members),
                    "seats_busy": sum(s.state == SeatState.BUSY for s in members),
                    "seats_on_call": sum(s.state == SeatState.ON_CALL for s in members),
                    "seats_ringing": sum(s.state == SeatState.RINGING for s in members),
                    "seats_wrap_up": sum(s.state == SeatState.WRAP_UP for s in members),
                    "answered": f.answered,
                    "abandoned": f.abandoned,
                    "pct_within_rule_today": f.pct_within_rule_today,
                    "pct_within_rule_24h": f.pct_within_rule_24h,
                    "completion_24h": f.completion_24h,
                    "abandoned_24h": f.abandoned_24h,
                    "abandoned_waits_ms_24h": list(f.abandoned_waits_ms_24h),
                }
            )
        return out

    # ------------------------------------------------------------ resync after (re)login

    def resync(
        self,
        members: Iterable[ev.QueueMember],
        entries: Iterable[ev.QueueEntry],
        channels: Iterable[ev.CoreShowChannel],
        now: float,
    ) -> ResyncResult:
        """Reconcile with ``QueueStatus`` + ``CoreShowChannels`` after events were lost.

        Calls Asterisk no longer has are closed (``lost``); waiting callers we did not know are
        adopted; seats Asterisk forgot (it restarted) are returned to be re-added.
        """
        self._shutting_down = False  # a new Asterisk session
        members = list(members)
        entries = list(entries)
        live = {c.uniqueid for c in channels} | {e.uniqueid for e in entries}
        out: list[DomainEvent] = []
        dropped: list[str] = []
        for call in list(self.calls.values()):
            if call.call_id not in live:
                dropped.append(call.call_id)
                self._finish(call, now, out, lost=True)
        adopted: list[str] = []
        for e in entries:
            call = self.calls.get(e.uniqueid)
            if call is None:
                call = self._new_call(e, e.queue, now - e.wait_s)
                call.state = CallState.QUEUED
                adopted.append(call.call_id)
                out.append(
                    CallOffered(
                        at=now,
                        call_id=call.call_id,
                        queue=e.queue,
                        caller_num=call.caller_num,
                        caller_name=call.caller_name,
                        resynced=True,
                    )
                )
        # seat legs that no longer exist: nobody is ringing or talking there any more
        for uid in [u for u in self._leg_call if u not in live]:
            del self._leg_call[uid]
        in_asterisk: dict[tuple[str, str], ev.QueueMember] = {}
        for m in members:
            sid = seat_id(m.member_name, m.interface)
            in_asterisk[(sid, m.queue)] = m
            seat = self._seat(sid, m.interface)
            seat.queues.add(m.queue)
            seat.paused, seat.reason = m.paused, m.paused_reason
        self.roster_version += 1
        restore: list[SeatToRestore] = []
        for seat in self.seats.values():
            if seat.activity != "idle" and seat.channel_uid not in live:
                seat.activity, seat.call_id, seat.channel_uid = "idle", "", ""
            for q in sorted(seat.queues):
                if (seat.seat, q) not in in_asterisk:
                    restore.append(SeatToRestore(seat.seat, seat.interface, q, seat.paused, seat.reason))
            self._touch(seat, now, out)
        return ResyncResult(out, restore, dropped, adopted)

    # ------------------------------------------------------------ helpers

    def _stats(self, queue: str) -> AnswerStats:
        s = self.stats.get(queue)
        if s is None:
            s = self.stats[queue] = AnswerStats(self.rule_ms)
        return s

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

    def _new_call(self, e: ev.ChannelEvent, queue: str, ts: float) -> Call:
        call = Call(
            e.uniqueid,
            channel=e.channel,
            caller_num=e.caller_num,
            caller_name=e.caller_name,
            queue=queue,
            current_queue=queue,
            offered_at=ts,
            queued_at=ts,
        )
        self.calls[call.call_id] = call
        return call

    def _merge_vars(self, call: Call, variables: dict[str, str]) -> None:
        for k, v in variables.items():
            if v:
                call.variables[k] = v

    def _check_rule(self, call: Call, now: float, out: list[DomainEvent]) -> None:
        waited = round((now - call.queued_at) * 1000)
        if waited > self.rule_ms:
            call.alerted = True
            out.append(
                AnswerRuleBreached(
                    at=now,
                    call_id=call.call_id,
                    queue=call.current_queue,
                    caller_num=call.caller_num,
                    waited_ms=waited,
                    rule_s=self.rule_s,
                    seats_rung=tuple(call.seats_rung),
                    ringing_seat=call.ringing_seat,
                )
            )

    def _record_outcome(self, call: Call, answered: bool, wait_ms: int) -> None:
        if not call.outcome_recorded:
            call.outcome_recorded = True
            self._stats(call.current_queue).add(Outcome(call.queued_at, answered, wait_ms))

    def _release_seat(self, sid: str, ts: float, out: list[DomainEvent], wrapup: bool) -> None:
        seat = self.seats.get(sid)
        if seat is None:
            return
        seat.activity, seat.call_id, seat.channel_uid = "idle", "", ""
        if wrapup and self.wrapup_s > 0:
            seat.wrapup_until = ts + self.wrapup_s
        self._touch(seat, ts, out)

    def _abandon(self, call: Call, ts: float, queue: str, out: list[DomainEvent]) -> None:
        """The citizen gave up while waiting: one outcome for the figures, one event."""
        wait = round((ts - call.queued_at) * 1000)
        self._record_outcome(call, False, wait)
        if call.wait_ms is None:
            call.wait_ms = wait
        call.state = CallState.ABANDONED
        out.append(CallAbandoned(at=ts, call_id=call.call_id, queue=queue, caller_num=call.caller_num, wait_ms=wait,
                                 seats_rung=tuple(call.seats_rung)))

    def _release_ringing(self, call: Call, ts: float, out: list[DomainEvent]) -> None:
        """The seat still ringing for this call stops ringing."""
        seat = self.seats.get(call.ringing_seat) if call.ringing_seat else None
        if seat is not None and seat.call_id == call.call_id and seat.activity == "ringing":
            self._release_seat(seat.seat, ts, out, wrapup=False)

    def _finish(self, call: Call, ts: float, out: list[DomainEvent], lost: bool = False) -> None:
        """The citizen's channel is gone: close the call and hand its record to the call log."""
        lost = lost or self._shutting_down or call.cut_by_shutdown
        self.calls.pop(call.call_id, None)
        joined = bool(call.current_queue)
        if call.state in _WAITING and joined and not lost:
            self._abandon(call, ts, call.current_queue, out)
        self._release_ringing(call, ts, out)
        for uid in [u for u, cid in self._leg_call.items() if cid == call.call_id and lost]:
            del self._leg_call[uid]
        if call.conference:
            self._conf_call.pop(call.conference, None)
        base = call.variables.get(self.recbase_var)
        if not call.recordings and base and call.answered_at is not None:
            call.recordings = [f"{base}.wav", f"{base}-in.wav", f"{base}-out.wav"]  # mixed, citizen, operator
        record = CallRecord(
            call_id=call.call_id,
            caller_num=call.caller_num,
            caller_name=call.caller_name,
            queue=call.queue,
            seats_rung=tuple(call.seats_rung),
            seat=call.seat,
            offered_at=call.offered_at,
            answered_at=call.answered_at,
            ended_at=ts,
            wait_ms=call.wait_ms,
            within_rule=call.within_rule,
            talk_s=round((call.talk_end or ts) - call.answered_at, 3) if call.answered_at is not None else 0.0,
            abandoned=call.answered_at is None and joined and not lost,
            transferred_to=call.transferred_to,
            conference=call.conference,
            recordings=tuple(call.recordings),
            survey=call.survey,
            callback_requested=call.callback_requested,
            variables=dict(call.variables),
            lost=lost,
            hold_s=round(call.held_s(ts), 3),
        )
        out.append(CallCompleted(at=ts, call_id=call.call_id, record=record))

    # ------------------------------------------------------------ handlers: calls

    def _on_shutdown(self, e: ev.Shutdown) -> list[DomainEvent]:
        # the hang-ups that follow are Asterisk stopping: close those calls as lost, not abandoned
        self._shutting_down = True
        return []

    def _on_soft_hangup(self, e: ev.SoftHangupRequest) -> list[DomainEvent]:
        # Asterisk hangs every channel up (flag 4) *before* it sends Shutdown
        if e.cause & 4:
            call = self.calls.get(e.uniqueid)
            if call is not None:
                call.cut_by_shutdown = True
        return []

    def _on_newchannel(self, e: ev.Newchannel) -> list[DomainEvent]:
        # a citizen arriving on the inbound context: known (offered) before it reaches a queue
        # (Local channels are simulated callers: their ;2 half joins the queue and is the call)
        if (
            e.context == self.inbound_context
            and e.uniqueid == e.linkedid
            and e.uniqueid not in self.calls
            and not e.channel.startswith("Local/")
        ):
            call = self._new_call(e, "", e.ts)
            call.state = CallState.OFFERED
        return []

    def _on_join(self, e: ev.QueueCallerJoin) -> list[DomainEvent]:
        call = self.calls.get(e.uniqueid)
        if call is None:
            call = self._new_call(e, e.queue, e.ts)
        elif not call.queue:  # offered on the inbound context, now in its first queue
            call.queue = call.current_queue = e.queue
            call.offered_at = call.queued_at = e.ts
        else:  # back in a queue: a transfer to another queue (e.g. the specialist seats)
            call.current_queue = e.queue
            call.queued_at = e.ts
            call.alerted = call.outcome_recorded = False
            call.current_seat = ""
            if not call.transferred_to:
                call.transferred_to = e.queue
        call.state = CallState.QUEUED
        call.caller_name = e.caller_name or call.caller_name
        self._merge_vars(call, e.chanvars)
        return [
            CallOffered(
                at=e.ts,
                call_id=call.call_id,
                queue=e.queue,
                caller_num=call.caller_num,
                caller_name=call.caller_name,
            )
        ]

    def _on_called(self, e: ev.AgentCalled) -> list[DomainEvent]:
        call = self.calls.get(e.uniqueid)
        if call is None:
            self.ignored += 1
            return []
        seat = self._seat_for(e)
        out: list[DomainEvent] = []
        call.state = CallState.RINGING
        call.ringing_seat = seat.seat
        if seat.seat not in call.seats_rung:
            call.seats_rung.append(seat.seat)
        self._merge_vars(call, e.chanvars)
        self._merge_vars(call, e.dest_chanvars)
        if e.dest_uniqueid:
            self._leg_call[e.dest_uniqueid] = call.call_id
        seat.activity, seat.call_id, seat.channel_uid = "ringing", call.call_id, e.dest_uniqueid
        seat.channel = e.dest_channel
        seat.wrapup_until = None
        out.append(
            SeatRinging(
                at=e.ts,
                call_id=call.call_id,
                seat=seat.seat,
                queue=e.queue,
                caller_num=call.caller_num,
                caller_name=call.caller_name,
                waited_ms=round((e.ts - call.queued_at) * 1000),
                variables=dict(call.variables),
            )
        )
        self._touch(seat, e.ts, out)
        return out

    def _on_ring_no_answer(self, e: ev.AgentRingNoAnswer) -> list[DomainEvent]:
        call = self.calls.get(e.uniqueid)
        seat = self._seat_for(e)
        out: list[DomainEvent] = []
        if call is not None:
            if not call.alerted and call.state in _WAITING:
                self._check_rule(call, e.ts, out)
            if call.state == CallState.RINGING:
                call.state = CallState.QUEUED
            call.ringing_seat = ""
            out.append(SeatRingNoAnswer(at=e.ts, call_id=call.call_id, seat=seat.seat, ring_ms=e.ring_time_ms))
        if seat.activity == "ringing":
            self._leg_call.pop(seat.channel_uid, None)
            seat.activity, seat.call_id, seat.channel_uid = "idle", "", ""
            self._touch(seat, e.ts, out)
        return out

    def _on_dial_end(self, e: ev.DialEnd) -> list[DomainEvent]:
        call_id = self._leg_call.get(e.dest_uniqueid)
        call = self.calls.get(call_id) if call_id else None
        if call is not None and e.dial_status == "ANSWER" and call.picked_up is None:
            call.picked_up = (e.dest_uniqueid, e.ts)
        return []

    def _on_connect(self, e: ev.AgentConnect) -> list[DomainEvent]:
        call = self.calls.get(e.uniqueid)
        seat = self._seat_for(e)
        out: list[DomainEvent] = []
        if call is None:
            self.ignored += 1
            return out
        # the operator answered when their leg did; an announcement may have delayed AgentConnect
        answered = e.ts
        if call.picked_up is not None and call.picked_up[0] == e.dest_uniqueid:
            answered = min(answered, call.picked_up[1])
        call.picked_up = None
        wait = round((answered - call.queued_at) * 1000)
        if not call.alerted:
            self._check_rule(call, answered, out)
        within = wait <= self.rule_ms
        self._merge_vars(call, e.chanvars)
        self._record_outcome(call, True, wait)
        if call.answered_at is None:  # the first answer is the one the 15 s rule judges
            call.answered_at, call.wait_ms, call.within_rule, call.seat = answered, wait, within, seat.seat
        call.state = CallState.ANSWERED
        call.current_seat, call.ringing_seat = seat.seat, ""
        if seat.seat not in call.seats_rung:
            call.seats_rung.append(seat.seat)
        if e.dest_uniqueid:
            self._leg_call[e.dest_uniqueid] = call.call_id
        seat.activity, seat.call_id, seat.channel_uid = "on_call", call.call_id, e.dest_uniqueid
        seat.channel = e.dest_channel
        out.append(
            CallAnswered(at=e.ts, call_id=call.call_id, seat=seat.seat, queue=e.queue, wait_ms=wait, within_rule=within)
        )
        self._touch(seat, e.ts, out)
        return out

    def _on_abandon(self, e: ev.QueueCallerAbandon) -> list[DomainEvent]:
        call = self.calls.get(e.uniqueid)
        if call is None:
            self.ignored += 1
            return []
        if call.cut_by_shutdown:  # Asterisk is stopping, the citizen did not give up
            return []
        out: list[DomainEvent] = []
        if not call.alerted:
            self._check_rule(call, e.ts, out)
        self._abandon(call, e.ts, e.queue, out)
        self._release_ringing(call, e.ts, out)
        call.ringing_seat = ""
        return out

    def _on_complete(self, e: ev.AgentComplete) -> list[DomainEvent]:
        # The seat's own Hangup ends its call; AgentComplete only matters when that leg is
        # unknown to us (it sometimes lacks Channel/Uniqueid): then it is the end.
        seat = self._seat_for(e)
        out: list[DomainEvent] = []
        if seat.activity == "on_call" and not seat.channel_uid:
            self._release_seat(seat.seat, e.ts, out, wrapup=True)
        return out

    def _on_dump(self, e: ev.AgentDump) -> list[DomainEvent]:
        seat = self._seat_for(e)
        out: list[DomainEvent] = []
        if seat.activity != "idle":
            self._leg_call.pop(seat.channel_uid, None)
            self._release_seat(seat.seat, e.ts, out, wrapup=False)
        return out

    def _on_hangup(self, e: ev.Hangup) -> list[DomainEvent]:
        out: list[DomainEvent] = []
        uid = e.uniqueid
        cid = self._leg_call.pop(uid, None)
        if cid is not None:  # a seat's leg
            call = self.calls.get(cid)
            for seat in self.seats.values():
                if seat.channel_uid == uid:
                    if call is not None and seat.activity == "on_call":
                        call.talk_end = e.ts
                    self._release_seat(seat.seat, e.ts, out, wrapup=seat.activity == "on_call")
                    break
            if call is not None and call.state == CallState.CONFERENCE:
                call.conf_channels.discard(e.channel)
            if call is not None and uid in call.holding:  # the held phone hung up (a transfer): the hold ends
                self._hold(call, uid, False, e.ts, out)
        call = self.calls.get(uid)
        if call is not None:
            self._merge_vars(call, e.chanvars)
            self._finish(call, e.ts, out)
        return out

    def _on_hold(self, e: ev.Hold | ev.Unhold) -> list[DomainEvent]:
        uid = e.uniqueid
        call = self.calls.get(self._leg_call.get(uid) or uid)
        if call is None:
            self.ignored += 1
            return []
        out: list[DomainEvent] = []
        self._hold(call, uid, isinstance(e, ev.Hold), e.ts, out)
        return out

    def _hold(self, call: Call, uid: str, held: bool, ts: float, out: list[DomainEvent]) -> None:
        """One phone holds or resumes; the call is on hold while any of its phones holds it."""
        was = bool(call.holding)
        if held:
            call.holding.add(uid)
        else:
            call.holding.discard(uid)
        if bool(call.holding) == was:
            return  # a second phone holding too, or an Unhold without a Hold (a transfer's REFER)
        if call.holding:
            call.hold_since = ts
        elif call.hold_since is not None:
            call.hold_s += ts - call.hold_since
            call.hold_since = None
        out.append(CallHeld(at=ts, call_id=call.call_id, seat=call.current_seat, held=bool(call.holding),
                            hold_s=round(call.held_s(ts), 1),
                            state=CallState.ON_HOLD if call.holding else call.state))

    def _on_conf_join(self, e: ev.ConfbridgeJoin) -> list[DomainEvent]:
        cid = self._conf_call.get(e.conference)
        if cid is None:
            cid = e.uniqueid if e.uniqueid in self.calls else self._leg_call.get(e.uniqueid)
            if cid is None and e.conference.startswith("conf-"):  # our naming: conf-<call id>
                cid = e.conference[5:]
        call = self.calls.get(cid) if cid else None
        if call is None:
            self.ignored += 1
            return []
        self._conf_call[e.conference] = call.call_id
        call.conference = e.conference
        call.conf_channels.add(e.channel)
        call.state = CallState.CONFERENCE
        return [
            CallConferenced(
                at=e.ts,
                call_id=call.call_id,
                conference=e.conference,
                channel=e.channel,
                parties=len(call.conf_channels),
            )
        ]

    def _on_conf_leave(self, e: ev.ConfbridgeLeave) -> list[DomainEvent]:
        cid = self._conf_call.get(e.conference)
        call = self.calls.get(cid) if cid else None
        if call is not None:
            call.conf_channels.discard(e.channel)
        return []

    def _on_blind_transfer(self, e: ev.BlindTransfer) -> list[DomainEvent]:
        call = self.calls.get(e.transferee_uniqueid)
        if call is None or e.result.lower() != "success":
            return []
        target = f"{e.extension}@{e.context}" if e.context else e.extension
        call.state = CallState.TRANSFERRED
        call.transferred_to = target
        seat = next((s.seat for s in self.seats.values() if s.channel_uid == e.transferer_uniqueid), "")
        return [CallTransferred(at=e.ts, call_id=call.call_id, seat=seat, target=target, kind="blind")]

    def _on_attended_transfer(self, e: ev.AttendedTransfer) -> list[DomainEvent]:
        call = self.calls.get(e.transferee_uniqueid)
        if call is None or e.result.lower() != "success":
            return []
        seat = next((s.seat for s in self.seats.values() if s.channel_uid == e.transferer_uniqueid), "")
        if e.dest_type.lower() == "threeway":  # the seat pressed *3: everyone in one bridge
            call.state = CallState.CONFERENCE
            call.conference = e.dest_bridge_uniqueid
            return [
                CallConferenced(
                    at=e.ts,
                    call_id=call.call_id,
                    conference=call.conference,
                    channel=e.target_channel,
                    parties=3,
                )
            ]
        call.state = CallState.TRANSFERRED
        call.transferred_to = e.target_channel
        return [CallTransferred(at=e.ts, call_id=call.call_id, seat=seat, target=e.target_channel, kind="attended")]

    def _on_varset(self, e: ev.VarSet) -> list[DomainEvent]:
        # MixMonitorStart has no file name; this VarSet has
        if e.variable == "MIXMONITOR_FILENAME" and e.value:
            call = self.calls.get(e.uniqueid) or self.calls.get(e.linkedid)
            if call is not None and e.value not in call.recordings:
                call.recordings.append(e.value)
        return []

    def _on_user_event(self, e: ev.UserEvent) -> list[DomainEvent]:
        # the dialplan adds "Uniqueid: ${HL_UID}", which repeats the snapshot's header: the last wins
        call = self.calls.get(e.uniqueid) or self.calls.get(e.linkedid)
        if call is None:
            return []
        if e.user_event == "SurveyResult":
            call.survey = e.fields.get("Digits") or e.fields.get("Score") or ""
        elif e.user_event == "CallbackRequest":
            call.callback_requested = True
            caller = e.fields.get("Caller") or call.caller_num
            return [CallbackRequested(at=e.ts, call_id=call.call_id, caller_num=caller)]
        return []

    # ------------------------------------------------------------ handlers: seats

    def _on_member(self, e: ev.QueueMemberEvent) -> list[DomainEvent]:
        seat = self._seat_for(e)
        seat.queues.add(e.queue)
        self.roster_version += 1
        seat.paused = e.paused
        seat.reason = e.paused_reason if e.paused else ""
        out: list[DomainEvent] = []
        self._touch(seat, e.ts, out)
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
