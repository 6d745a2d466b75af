"""The live state of calls, seats and queues: pure state machines, no I/O, no clock of their own.

:class:`CtiState` consumes typed AMI events (:mod:`cti.events`) and returns domain events
(:mod:`cti.domain`): :meth:`CtiState.handle` dispatches each event to its handler. Time comes from
the events (Asterisk's ``Timestamp``) and from the ``now`` given to :meth:`CtiState.tick` / the
snapshot methods, so tests need no sleeps.

The state is built in floors, each its own module: the seats (:mod:`cti.seats`), the calls and
their figures over them (:mod:`cti.calls`), reconciliation after a reconnect (:mod:`cti.resync`),
and here the handlers of the call events, where the screen-pop (:class:`~cti.domain.SeatRinging`)
is made.

Why some choices:

* A **seat** stays on the call as long as its own channel lives (not until ``AgentComplete``):
  in a three-party conference the seat's leg is redirected out of the queue but still talks,
  and ``AgentComplete`` sometimes lacks the channel. Wrap-up (话后处理) starts when the seat's
  channel hangs up.
* The answer that the 15 s rule judges is the seat's pick-up (``DialEnd ANSWER`` on its leg): the
  job number announced before the bridge is not waiting time.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from cti import events as ev
from cti.calls import WAITING, Call
from cti.domain import (
    CallAnswered,
    CallbackRequested,
    CallConferenced,
    CallHeld,
    CallOffered,
    CallState,
    CallTransferred,
    DomainEvent,
    SeatRinging,
    SeatRingNoAnswer,
)
from cti.outbound import OutboundBook
from cti.seats import Clock
from hotline.calls import SURVEY_LABELS

_SURVEY_KEYS = {str(k): k for k in SURVEY_LABELS}  # the digit the citizen pressed → the survey score


class CtiState(OutboundBook):
    """Calls, seats and queues. Feed :meth:`handle` typed events; call :meth:`tick` every second."""

    def __init__(
        self,
        *,
        rule_s: int = 15,
        wrapup_s: float = 30.0,
        tz: str = "Asia/Shanghai",
        inbound_context: str = "from-trunk",
        outbound_context: str = "hotline-outbound",
        recbase_var: str = "HL_RECBASE",
        clock: Clock = time.time,
    ) -> None:
        super().__init__(rule_s=rule_s, wrapup_s=wrapup_s, tz=tz, recbase_var=recbase_var, clock=clock)
        self.inbound_context = inbound_context
        self.outbound_context = outbound_context
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
            ev.BridgeEnter: self._on_bridge,
            ev.BridgeLeave: self._on_bridge,
            ev.ConfbridgeJoin: self._on_conf_join,
            ev.ConfbridgeLeave: self._on_conf_leave,
            ev.BlindTransfer: self._on_blind_transfer,
            ev.AttendedTransfer: self._on_attended_transfer,
            ev.VarSet: self._on_varset,
            ev.UserEvent: self._on_user_event,
            ev.Shutdown: self._on_shutdown,
            ev.SoftHangupRequest: self._on_soft_hangup,
        }

    # ------------------------------------------------------------ entry points

    def handle(self, e: ev.AmiEvent) -> list[DomainEvent]:
        """Apply one AMI event; return what changed, as domain events."""
        h = self._handlers.get(type(e))
        return h(e) if h is not None else []

    def tick(self, now: float) -> list[DomainEvent]:
        """Time passes: answer-rule alerts for waiting calls, wrap-ups that end."""
        out: list[DomainEvent] = []
        for call in self.calls.values():
            if call.state in WAITING and not call.alerted and call.picked_up is None:
                self._check_rule(call, now, out)
        self._end_wrapups(now, out)
        return out

    @staticmethod
    def _merge_vars(call: Call, variables: dict[str, str]) -> None:
        """What the dialplan and the AGI set on the channels (HL_*): the screen-pop shows it."""
        for k, v in variables.items():
            if v:
                call.variables[k] = v

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
                operator=seat.operator,
            )
        )
        self._touch(seat, e.ts, out)
        return out

    def _on_ring_no_answer(self, e: ev.AgentRingNoAnswer) -> list[DomainEvent]:
        call = self.calls.get(e.uniqueid)
        seat = self._seat_for(e)
        out: list[DomainEvent] = []
        if call is not None:
            if not call.alerted and call.state in WAITING:
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
        if self._is_outbound_answer(e):  # a callback's citizen answered (cti.outbound)
            return self._outbound_answered(e)
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
            call.operator, call.job_number = seat.operator, seat.job_number
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
        out: list[DomainEvent] = self._outbound_hangup(e) if self.outbound else []
        uid = e.uniqueid
        self.bridged.pop(uid, None)
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
        self.unfiled.pop(uid, None)  # a call found at a takeover ended: the witness files it
        call = self.calls.get(uid)
        if call is not None:
            self._merge_vars(call, e.chanvars)
            self._finish(call, e.ts, out)
        return out

    def _on_bridge(self, e: ev.BridgeEnter | ev.BridgeLeave) -> list[DomainEvent]:
        if isinstance(e, ev.BridgeEnter):
            self.bridged[e.uniqueid] = e.bridge_uniqueid
        elif self.bridged.get(e.uniqueid) == e.bridge_uniqueid:  # not a leave that trails a move elsewhere
            del self.bridged[e.uniqueid]
        return []

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
        if call is None:  # a department brought into a callback (回访), or nothing of ours
            return self._outbound_conferenced(cid or "", e)
        call.state = CallState.CONFERENCE
        return [self._joined(call, e, call.current_seat)]

    def _on_conf_leave(self, e: ev.ConfbridgeLeave) -> list[DomainEvent]:
        cid = self._conf_call.get(e.conference) or ""
        call = self.calls.get(cid) or self.outbound.get(cid)
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
                    seat=seat,
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
            call.survey = _SURVEY_KEYS.get(e.fields.get("Digits") or e.fields.get("Score") or "")
        elif e.user_event == "CallbackRequest":
            call.callback_requested = True
            caller = e.fields.get("Caller") or call.caller_num
            return [CallbackRequested(at=e.ts, call_id=call.call_id, caller_num=caller)]
        return []
