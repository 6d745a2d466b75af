"""The calls in progress, the rolling answer figures, and what a call becomes when it ends. No I/O.

* A **call** is the citizen's channel (its ``Uniqueid``); seat legs are mapped back to it.
* The **15 s rule** is timed from ``QueueCallerJoin`` to the answer using Asterisk's
  timestamps; ``AgentConnect.HoldTime`` is whole seconds and too coarse.
* When the citizen's channel is gone the call becomes one :class:`hotline.calls.FinishedCall`
  (carried by :class:`~cti.domain.CallCompleted`), the one shape every room uses for it.

:class:`CallBook` keeps the calls and the figures over :class:`cti.seats.SeatBook`; the
handlers of the call events are :class:`cti.state.CtiState`'s.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from cti import events as ev
from cti.domain import (
    AnswerRuleBreached,
    CallAbandoned,
    CallCompleted,
    CallConferenced,
    CallState,
    DomainEvent,
    OutboundEnded,
    SeatState,
)
from cti.seats import Clock, SeatBook
from cti.stats import AnswerStats, Figures, Outcome, local_midnight
from hotline.calls import FinishedCall

WAITING = (CallState.QUEUED, CallState.RINGING)

#: the AGI lookup's variable naming where the caller's number is from (山东省菏泽市 …)
LOCATION_VAR = "HL_LOCATION"


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
    operator: str = ""  # who sat at that seat then
    job_number: str = ""  # and their 工号
    current_seat: str = ""
    ringing_seat: str = ""
    seats_rung: list[str] = field(default_factory=list)
    alerted: bool = False
    outcome_recorded: bool = False  # for the current queue leg
    transferred_to: str = ""
    conference: str = ""
    conf_channels: set[str] = field(default_factory=set)
    recordings: list[str] = field(default_factory=list)
    survey: int | None = None  # 1 满意, 2 基本满意, 3 不满意
    callback_requested: bool = False
    cut_by_shutdown: bool = False  # Asterisk stopping hung it up: lost, not abandoned
    variables: dict[str, str] = field(default_factory=dict)
    holding: set[str] = field(default_factory=set)  # uniqueids of the phones holding the call
    hold_since: float | None = None
    hold_s: float = 0.0  # finished hold spells

    def held_s(self, now: float) -> float:
        return self.hold_s + (now - self.hold_since if self.hold_since is not None else 0.0)

    def view(self, now: float) -> dict:
        waiting = self.state in WAITING
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

    def finished(self, ended_at: float, *, lost: bool, recbase_var: str) -> FinishedCall:
        """What the call log keeps of this call once the citizen's channel is gone."""
        base = self.variables.get(recbase_var, "")
        recordings = tuple(self.recordings)
        if not recordings and base and self.answered_at is not None:
            recordings = (f"{base}.wav", f"{base}-in.wav", f"{base}-out.wav")  # mixed, citizen, operator
        answered = self.answered_at is not None
        return FinishedCall(
            call_id=self.call_id,
            caller_num=self.caller_num,
            offered_at=self.offered_at,
            ended_at=ended_at,
            caller_name=self.caller_name,
            queue=self.queue,
            seats_rung=tuple(self.seats_rung),
            seat=self.seat,
            operator=self.operator,
            job_number=self.job_number,
            answered_at=self.answered_at,
            wait_ms=self.wait_ms,
            within_rule=self.within_rule,
            talk_s=round((self.talk_end or ended_at) - self.answered_at, 3) if self.answered_at is not None else 0.0,
            hold_s=round(self.held_s(ended_at), 3),
            abandoned=not answered and bool(self.current_queue) and not lost,
            lost=lost,
            transferred_to=self.transferred_to,
            conference=self.conference,
            recordings=recordings,
            recording_base=base,
            location=self.variables.get(LOCATION_VAR, ""),
            survey=self.survey,
            callback_requested=self.callback_requested,
        )


@dataclass(slots=True)
class Outbound:
    """A call out of the centre (回拨 / 回访) that the citizen answered: its seat is on it until one of
    its two channels hangs up. Not a :class:`Call`: no queue, no wait, nothing for the call log."""

    call_id: str  # the seat channel's Uniqueid, chosen by the Originate (cti.actions.originate_callback)
    seat: str
    number: str  # the citizen's, as dialled
    citizen_uid: str
    answered_at: float
    job_number: str = ""  # of the operator who dialled it
    recording_base: str = ""
    conference: str = ""  # a department brought in (三方): the ConfBridge it went on in
    conf_channels: set[str] = field(default_factory=set)

    def ended(self, at: float, *, lost: bool = False) -> OutboundEnded:
        return OutboundEnded(at=at, call_id=self.call_id, seat=self.seat, number=self.number,
                             talk_s=round(max(0.0, at - self.answered_at), 3), job_number=self.job_number,
                             recording_base=self.recording_base, lost=lost)


class CallBook(SeatBook):
    """The calls by id, the seat legs and conferences that lead to them, and each queue's figures."""

    def __init__(self, *, rule_s: int, wrapup_s: float, tz: str, recbase_var: str, clock: Clock) -> None:
        super().__init__(wrapup_s=wrapup_s, clock=clock)
        self.rule_s = rule_s
        self.rule_ms = rule_s * 1000
        self.tz = ZoneInfo(tz)
        self.recbase_var = recbase_var  # the dialplan's recording base name (VarSet is filtered out)
        self.calls: dict[str, Call] = {}
        self.stats: dict[str, AnswerStats] = {}
        self.ignored = 0  # events about calls/seats we do not know (e.g. before a resync)
        self._leg_call: dict[str, str] = {}  # seat leg uniqueid → call id
        self._conf_call: dict[str, str] = {}  # conference name → call id
        # channel Uniqueid → the bridge it is in (BridgeEnter / BridgeLeave; CoreShowChannels at a
        # resync). Asterisk announces the operator (AgentConnect) a moment before it bridges the two:
        # a BlindTransfer or Redirect sent in between is refused ("Transfer invalid"), so call control
        # waits for the seat's leg to be here (cti.actions)
        self.bridged: dict[str, str] = {}
        # calls this bridge files nothing for: found talking at a takeover (cti.resync; the witness
        # files them from CEL) or dialled out (回拨 / 回访, cti.outbound). Call id → the citizen's
        # channel: the seat's transfer, 三方 and hang-up need it as for any call
        self.unfiled: dict[str, str] = {}
        self.outbound: dict[str, Outbound] = {}  # calls out answered, by call id (cti.outbound)
        self._outbound_leg: dict[str, str] = {}  # their citizen channels' Uniqueids → call id
        self._shutting_down = False  # Asterisk said Shutdown: its hang-ups are not the citizens' doing

    def seed_history(self, calls: Iterable[FinishedCall]) -> int:
        """Rebuild the rolling figures from the persisted call log after a bridge restart.

        Only calls that reached a queue and were answered or abandoned count (``lost`` ones
        never had an outcome). Returns how many were taken.
        """
        n = 0
        for c in calls:
            if not c.queue or c.lost or c.wait_ms is None:
                continue
            self._stats(c.queue).add(Outcome(c.offered_at, c.answered_at is not None, c.wait_ms))
            n += 1
        return n

    # ------------------------------------------------------------ views (for the REST API)

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
            waiting = [c for c in self.calls.values() if c.current_queue == q and c.state in WAITING]
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

    def _open_outbound(self, call: Outbound, seat_uid: str, citizen_channel: str) -> None:
        """A call out answered (or found at a takeover): followed to its end, its citizen's channel at
        hand for call control, the seat's leg leading to it (its Hangup starts 话后处理)."""
        self.outbound[call.call_id] = call
        self._outbound_leg[call.citizen_uid] = call.call_id
        self.unfiled[call.call_id] = citizen_channel
        self._leg_call[seat_uid] = call.call_id

    def _end_outbound(self, call_id: str, at: float, *, lost: bool = False) -> OutboundEnded:
        o = self.outbound.pop(call_id)
        self._outbound_leg.pop(o.citizen_uid, None)
        self.unfiled.pop(call_id, None)
        if o.conference:
            self._conf_call.pop(o.conference, None)
        return o.ended(at, lost=lost)

    def _joined(self, call: Call | Outbound, e: ev.ConfbridgeJoin, seat: str) -> CallConferenced:
        """A channel joined the call's room (三方), a queue call's or a callback's: one party more."""
        self._conf_call[e.conference] = call.call_id
        call.conference = e.conference
        call.conf_channels.add(e.channel)
        return CallConferenced(at=e.ts, call_id=call.call_id, conference=e.conference, channel=e.channel,
                               parties=len(call.conf_channels), seat=seat)

    def citizen_channel(self, call_id: str) -> str:
        """The citizen's channel of a call in progress, filed here or found at a takeover ("" if none)."""
        call = self.calls.get(call_id)
        return call.channel if call is not None else self.unfiled.get(call_id, "")

    # ------------------------------------------------------------ helpers

    def _stats(self, queue: str) -> AnswerStats:
        s = self.stats.get(queue)
        if s is None:
            s = self.stats[queue] = AnswerStats(self.rule_ms)
        return s

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
        """The citizen's channel is gone: close the call; the finished call goes out for the call log."""
        lost = lost or self._shutting_down or call.cut_by_shutdown
        self.calls.pop(call.call_id, None)
        if call.state in WAITING and call.current_queue and not lost:
            self._abandon(call, ts, call.current_queue, out)
        self._release_ringing(call, ts, out)
        if lost:  # its seats' legs will not hang up: forget them (else each leg's Hangup does)
            for uid in [u for u, cid in self._leg_call.items() if cid == call.call_id]:
                del self._leg_call[uid]
        if call.conference:
            self._conf_call.pop(call.conference, None)
        finished = call.finished(ts, lost=lost, recbase_var=self.recbase_var)
        out.append(CallCompleted(at=ts, call_id=call.call_id, call=finished))
