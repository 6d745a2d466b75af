"""Reconciliation after a (re)login: the live state made to agree with what Asterisk says now. No I/O.

Events are lost while the link is down, and a restarted Asterisk knows no calls and no dynamic
members. ``QueueStatus`` + ``CoreShowChannels`` (asked by :meth:`cti.service.CtiService.resync`)
are the truth: calls Asterisk no longer has are closed as ``lost``, waiting callers we did not
know are adopted, and seats Asterisk forgot are handed back to be re-added (``QueueAdd``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from cti import events as ev
from cti.calls import CallBook, Outbound
from cti.domain import CallOffered, CallState, DomainEvent
from cti.seats import WRAPUP_REASON, seat_id


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
    seats_in_calls: list[str] = field(default_factory=list)  # talking on calls this bridge never saw


class Reconciler(CallBook):
    """The calls and seats, with :meth:`resync` to reconcile them after events were lost."""

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
        channels = list(channels)
        live = {c.uniqueid for c in channels} | {e.uniqueid for e in entries}
        self.bridged = {c.uniqueid: c.bridge_id for c in channels if c.bridge_id}  # BridgeEnters may be lost
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
        for cid in [c for c in self.outbound if c not in live]:  # a call out that ended unseen
            out.append(self._end_outbound(cid, now, lost=True))
        for cid in [c for c in self.unfiled if c not in live]:
            del self.unfiled[cid]
        in_asterisk: dict[tuple[str, str], ev.QueueMember] = {}
        for m in members:
            sid = seat_id(m.member_name, m.interface)
            in_asterisk[(sid, m.queue)] = m
            seat = self._seat(sid, m.interface)
            seat.queues.add(m.queue)
            seat.paused, seat.reason = m.paused, m.paused_reason
            if m.paused and m.paused_reason == WRAPUP_REASON and seat.wrapup_until is None:
                # paused for 话后处理 by a bridge that is gone (it died, this one took over): the wrap-up
                # runs its course from the seat's last call, and ends here, unpausing the seat
                seat.wrapup_until = max((m.last_call or now) + self.wrapup_s, now + 1.0)
        self.roster_version += 1
        talking = self._seats_in_calls(channels, now)
        restore: list[SeatToRestore] = []
        for seat in self.seats.values():
            if seat.activity != "idle" and seat.channel_uid not in live:
                seat.activity, seat.call_id, seat.channel_uid = "idle", "", ""
            for q in sorted(seat.queues):
                if (seat.seat, q) not in in_asterisk:
                    restore.append(SeatToRestore(seat.seat, seat.interface, q, seat.paused, seat.reason))
            self._touch(seat, now, out)
        return ResyncResult(out, restore, dropped, adopted, talking)

    def _seats_in_calls(self, channels: list[ev.CoreShowChannel], now: float) -> list[str]:
        """Seats talking on a call this bridge never saw (it took over from one that died mid-call):
        on a call again, so the wall shows them busy and their leg's hang-up starts 话后处理 as after
        any call. Without this, the seat showed ready while talking and went back to the queue the
        moment the call ended, with no wrap-up.

        The call itself is not adopted: this bridge does not know when it was queued or answered,
        and a call filed without its wait would count against the 15 s rule. The witness files it
        from Asterisk's CEL, with its real times, once it ends (补录). Its citizen's channel is kept
        (``unfiled``): the operator's transfer, 三方 and hang-up work on it as on any call."""
        by_interface = {s.interface: s for s in self.seats.values() if s.interface}
        found: list[str] = []
        in_bridge: dict[str, list[ev.CoreShowChannel]] = {}
        for c in channels:
            if c.bridge_id:
                in_bridge.setdefault(c.bridge_id, []).append(c)
        for c in channels:
            seat = by_interface.get(c.channel.rsplit("-", 1)[0])
            if seat is None or not c.bridge_id or seat.activity != "idle" or c.uniqueid in self._leg_call:
                continue
            peers = [p for p in in_bridge[c.bridge_id] if p.uniqueid != c.uniqueid]
            caller = next((p for p in peers if p.uniqueid == c.linkedid), peers[0] if peers else None)
            if caller is None:  # alone in a bridge: not talking to anyone
                continue
            # the seat's own channel began the call: a call out (回拨 / 回访), named by that channel
            call_id = c.uniqueid if c.uniqueid == c.linkedid else caller.uniqueid
            seat.activity, seat.call_id = "on_call", call_id
            seat.channel_uid, seat.channel = c.uniqueid, c.channel
            if call_id == c.uniqueid and call_id not in self.outbound:
                self._open_outbound(Outbound(call_id, seat.seat, c.exten, caller.uniqueid, now - _seconds(c.duration),
                                             seat.job_number, c.chanvars.get(self.recbase_var, "")),
                                    c.uniqueid, caller.channel)
            else:
                self._leg_call[c.uniqueid] = call_id
                if call_id not in self.calls:
                    self.unfiled[call_id] = caller.channel
            found.append(seat.seat)
        return found


def _seconds(duration: str) -> float:
    """``CoreShowChannels``' Duration (``HH:MM:SS``) in seconds; 0 when it says something else.

    >>> _seconds("00:01:05"), _seconds("1:00:00"), _seconds("")
    (65.0, 3600.0, 0.0)
    """
    try:
        h, m, sec = (int(x) for x in duration.split(":"))
    except ValueError:
        return 0.0
    return float(h * 3600 + m * 60 + sec)
