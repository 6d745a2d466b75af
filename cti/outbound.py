"""Calls out of the centre (回拨 / 回访) in the live state. No I/O.

The console dials a citizen back through the seat (:meth:`cti.actions.CtiActions.originate_callback`):
Asterisk rings the seat's phone first, and once it answers the seat's channel runs the callback
context (``hotline-outbound``: MixMonitor, then ``Dial`` to the outside line). What the bridge
follows, as Asterisk 22 sends it (``tests/cti/transcripts/callback_answered.ami``):

* ``DialEnd`` ``ANSWER`` *from* the seat's channel in that context: the citizen answered. The seat
  is on this call from now on (the wallboard shows it busy, its lead can open the live transcript,
  its 话后处理 follows the call) under the seat channel's Uniqueid, the id the console chose before
  it rang and the recording is named by. The citizen's channel is kept for transfer and hang-up.
* The first ``Hangup`` of either channel: the call is over (Dial takes the other with it).
* A department brought in (三方, :meth:`cti.actions.CtiActions.conference`, as for a queue call):
  both channels are redirected out of the Dial into the ConfBridge ``conf-<call id>`` (no Hangup,
  no new DialEnd), and each ``ConfbridgeJoin`` is a party more (``CallConferenced``, with the seat:
  the operator's page knows its callback by it). The citizen is the room's marked user, so the
  citizen's hang-up closes it on everyone, and the call ends at that first Hangup as before.
  (``tests/cti/transcripts/callback_conferenced.ami``.)

The first ``DialEnd`` (the Originate ringing the seat, no ``Channel``) and a citizen who never
answers leave the seat as it was: nothing was said to anyone.
"""

from __future__ import annotations

from cti import events as ev
from cti.calls import Outbound
from cti.domain import DomainEvent, OutboundAnswered
from cti.resync import Reconciler
from cti.seats import seat_id


class OutboundBook(Reconciler):
    """The calls out, over the calls and seats; :class:`cti.state.CtiState` routes the events here."""

    outbound_context = "hotline-outbound"  # cti.actions.Dialplan.callback_context

    def _is_outbound_answer(self, e: ev.DialEnd) -> bool:
        return e.dial_status == "ANSWER" and e.context == self.outbound_context and bool(e.channel and e.dest_uniqueid)

    def _outbound_answered(self, e: ev.DialEnd) -> list[DomainEvent]:
        if e.uniqueid in self.outbound:  # Asterisk repeats nothing, but a replayed stream might
            return []
        iface = e.channel.rsplit("-", 1)[0]
        seat = self._seat(self._iface_seat.get(iface) or seat_id("", iface), "")
        call = Outbound(e.uniqueid, seat.seat, e.exten, e.dest_uniqueid, e.ts, seat.job_number,
                        e.chanvars.get(self.recbase_var, ""))
        self._open_outbound(call, e.uniqueid, e.dest_channel)
        seat.activity, seat.call_id, seat.channel_uid, seat.channel = "on_call", call.call_id, e.uniqueid, e.channel
        out: list[DomainEvent] = [OutboundAnswered(at=e.ts, call_id=call.call_id, seat=seat.seat, number=call.number,
                                                   operator=seat.operator, job_number=call.job_number,
                                                   recording_base=call.recording_base)]
        self._touch(seat, e.ts, out)
        return out

    def _outbound_conferenced(self, call_id: str, e: ev.ConfbridgeJoin) -> list[DomainEvent]:
        call = self.outbound.get(call_id)
        if call is None:
            self.ignored += 1
            return []
        return [self._joined(call, e, call.seat)]

    def seat_views(self, now: float | None = None) -> list[dict]:
        """The seats, each saying whether the call it is on is a callback (the wall labels it 回拨)."""
        return [self._callback_said(v) for v in super().seat_views(now)]

    def seat_view(self, seat: str, now: float | None = None) -> dict | None:
        view = super().seat_view(seat, now)
        return None if view is None else self._callback_said(view)

    def _callback_said(self, view: dict) -> dict:
        view["callback"] = bool(view["call_id"]) and view["call_id"] in self.outbound
        return view

    def _outbound_hangup(self, e: ev.Hangup) -> list[DomainEvent]:
        """The call's end at its first channel's Hangup, said before its seat's release so that a
        listener hears the end first."""
        call_id = e.uniqueid if e.uniqueid in self.outbound else self._outbound_leg.get(e.uniqueid)
        return [self._end_outbound(call_id, e.ts)] if call_id else []
