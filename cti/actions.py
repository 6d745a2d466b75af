"""Call control: the only module that sends AMI actions (handler → rules → action).

Rules (:mod:`cti.rules`) are checked before an action leaves; the live state
(:class:`cti.state.CtiState`) says which channels a seat and its call use. Dialplan names
are constructor parameters (:class:`Dialplan`): the lead engineer's dialplan is the truth.

Three-party conference (DESIGN.md §5, the spike's working recipe): ``Setvar HL_CONF`` on
both channels, ``Redirect`` the citizen into the ConfBridge as the ``marked`` user and the
operator as ``end_marked`` (the bridge ends when the citizen hangs up), then ``Originate``
the department into the same bridge. Everyone hears everyone and the recording keeps all three.

Recording is the dialplan's (the queue's MONITOR_OPTIONS, hotline-outbound's MixMonitor): the AMI
``MixMonitor`` action needs the ``system`` class, which the bridge's AMI user must not have
(asterisk-config/manager.conf lists the classes these actions need).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from cti.domain import DomainEvent, HandoverMeasured
from cti.resync import SeatToRestore
from cti.rules import Decision, Handover, HandoverTracker, Shift, check_seat_action
from cti.seats import WRAPUP_REASON
from cti.state import CtiState

log = logging.getLogger(__name__)


class Sender(Protocol):
    """What actions need from the link (``AmiLink.send``)."""

    def send(self, action: dict[str, Any], *, as_list: bool | None = False) -> Awaitable[Any]: ...


class ActionError(Exception):
    pass


class RuleViolation(ActionError):
    """The action needs a lead's approval now (first/last 30 min of a shift)."""

    def __init__(self, action: str, decision: Decision) -> None:
        super().__init__(f"{action} not allowed: {decision.reason}; needs a lead's approval")
        self.decision = decision


class ActionFailed(ActionError):
    """Asterisk answered ``Response: Error``."""


class NotOnCall(ActionError):
    pass


@dataclass(frozen=True, slots=True)
class Dialplan:
    """Contexts, extensions and variables the actions rely on (asterisk-config/extensions.conf)."""

    seat_interface: str = "PJSIP/{seat}"
    department_channel: str = "PJSIP/{number}"  # a department's own SIP line (one of department_lines)
    # any other department number (a directory phone) is dialled out on the trunk, as hotline-transfer
    # dials a department without a line
    outside_channel: str = "PJSIP/{number}@pstn-out"
    department_lines: tuple[str, ...] = ()  # settings.department_lines: the SIP endpoints of departments
    transfer_context: str = "hotline-transfer"  # exten = department number, or specialist_exten
    specialist_exten: str = "expert"  # → Queue(hotline_expert)
    conf_context: str = "hotline-conf"
    conf_variable: str = "HL_CONF"  # names the ConfBridge
    conf_citizen_exten: str = "citizen"  # ConfBridge(${HL_CONF},…,hotline_citizen: marked=yes)
    conf_operator_exten: str = "member"  # ConfBridge(${HL_CONF},…,hotline_member: end_marked=yes)
    conf_department_exten: str = "member"  # the department joins like the operator
    # the seat answers, then this context dials the citizen out; no phone's context reaches it
    # (seats dial only the internal plan): the only way out is this Originate
    callback_context: str = "hotline-outbound"
    call_id_variable: str = "HL_UID"  # one id for the call across every leg
    hotline_number: str = "12345"
    wrapup_reason: str = WRAPUP_REASON  # QueuePause reason while a seat is in 话后处理
    system_name: str = ""  # asterisk.conf systemname: the ids we give originated calls carry it as Asterisk's do


@dataclass(frozen=True, slots=True)
class ActionResult:
    action: str
    replies: tuple[Any, ...]
    decision: Decision | None = None
    handover: Handover | None = None
    detail: str = ""
    call_id: str = ""  # an originated call's own id (its channel's Uniqueid, which names its recording)


class CtiActions:
    def __init__(
        self,
        link: Sender,
        state: CtiState,
        *,
        queue: str = "hotline",
        shifts: list[Shift] | None = None,
        tz: str = "Asia/Shanghai",
        dialplan: Dialplan | None = None,
        clock: Callable[[], float] = time.time,
        publish: Callable[[list[DomainEvent]], None] | None = None,
        settle_s: float = 2.0,
    ) -> None:
        self.settle_s = settle_s
        self.publish = publish  # domain events the actions themselves produce (handover gaps)
        self.link = link
        self.state = state
        self.queue = queue
        self.shifts = shifts or []
        self.tz = tz
        self.dp = dialplan or Dialplan()
        self.clock = clock
        self.handovers = HandoverTracker()
        # ids of the calls we originate: "<epoch>.<n>", the shape of Asterisk's own uniqueids (the
        # recordings catalog reads it off the file name), from a counter far above Asterisk's own
        self._originated = itertools.count(900_000)

    # ------------------------------------------------------------------ helpers

    async def _send(self, action: dict[str, Any]) -> Any:
        reply = await self.link.send(action, as_list=False)
        if not getattr(reply, "success", False):
            msg = reply.get("Message") if hasattr(reply, "get") else reply
            raise ActionFailed(f"{action['Action']}: {msg}")
        return reply

    async def _settle(self, seat: str, done: Callable[[Any], bool]) -> bool:
        """Wait (at most ``settle_s``) until the live state shows what Asterisk accepted.

        Asterisk answers QueueAdd/QueuePause before it publishes the member event, so whoever
        signed a seat in would otherwise look it up and find it still signed out.
        """
        deadline = time.monotonic() + self.settle_s
        while True:
            seat_state = self.state.seats.get(seat)
            if seat_state is not None and done(seat_state):
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.01)

    def _iface(self, seat: str) -> str:
        return self.dp.seat_interface.format(seat=seat)

    def _check(self, action: str, approved_by: str | None) -> Decision:
        d = check_seat_action(action, self.clock(), self.shifts, approved_by=approved_by, tz=self.tz)
        if not d.allowed:
            raise RuleViolation(action, d)
        return d

    def _on_call(self, seat: str) -> tuple[str, str, str]:
        """(seat channel, citizen channel, call id) of the seat's current call."""
        s = self.state.seats.get(seat)
        if s is None or s.activity != "on_call" or not s.channel:
            raise NotOnCall(f"seat {seat} is not on a call")
        citizen = self.state.citizen_channel(s.call_id)  # a call begun before a takeover too
        if not citizen:
            raise NotOnCall(f"seat {seat}: call {s.call_id} unknown")
        return s.channel, citizen, s.call_id

    # ------------------------------------------------------------------ seats

    async def sign_in(
        self, seat: str, *, queue: str | None = None, operator: str = "", job_number: str = "", penalty: int = 0
    ):
        iface = self._iface(seat)
        reply = await self._send(
            {
                "Action": "QueueAdd",
                "Queue": queue or self.queue,
                "Interface": iface,
                "MemberName": seat,
                "StateInterface": iface,
                "Penalty": str(penalty),
            }
        )
        if operator:
            self.state.set_operator(seat, operator, job_number)
        q = queue or self.queue
        await self._settle(seat, lambda s: q in s.queues)
        handover = self.handovers.signed_in(seat, self.clock())
        if handover is not None and self.publish is not None:
            self.publish(
                [
                    HandoverMeasured(
                        at=handover.signed_in_at,
                        from_seat=handover.from_seat,
                        to_seat=handover.to_seat,
                        gap_s=handover.gap_s,
                        ok=handover.ok,
                    )
                ]
            )
        return ActionResult("sign_in", (reply,), handover=handover)

    async def sign_out(self, seat: str, *, queue: str | None = None, approved_by: str | None = None):
        d = self._check("sign_out", approved_by)
        reply = await self._send(
            {"Action": "QueueRemove", "Queue": queue or self.queue, "Interface": self._iface(seat)}
        )
        q = queue or self.queue
        await self._settle(seat, lambda s: q not in s.queues)
        self.handovers.signed_out(seat, self.clock())
        return ActionResult("sign_out", (reply,), decision=d)

    async def busy(self, seat: str, reason: str, *, approved_by: str | None = None):
        """示忙 with a reason code (in every queue the seat is in)."""
        d = self._check("busy", approved_by)
        reply = await self._send(
            {"Action": "QueuePause", "Interface": self._iface(seat), "Paused": "true", "Reason": reason}
        )
        await self._settle(seat, lambda s: s.paused and s.reason == reason)
        return ActionResult("busy", (reply,), decision=d)

    async def ready(self, seat: str):
        reply = await self._send({"Action": "QueuePause", "Interface": self._iface(seat), "Paused": "false"})
        await self._settle(seat, lambda s: not s.paused)
        self.state.end_wrapup(seat, self.clock())
        return ActionResult("ready", (reply,))

    async def wrapup_pause(self, seat: str) -> ActionResult:
        """Keep calls away from a seat in 话后处理 (queues.conf wrapuptime = 0: the bridge owns it)."""
        reply = await self._send(
            {"Action": "QueuePause", "Interface": self._iface(seat), "Paused": "true", "Reason": self.dp.wrapup_reason}
        )
        return ActionResult("wrapup_pause", (reply,))

    async def wrapup_resume(self, seat: str) -> ActionResult:
        reply = await self._send({"Action": "QueuePause", "Interface": self._iface(seat), "Paused": "false"})
        return ActionResult("wrapup_resume", (reply,))

    async def restore(self, seats: list[SeatToRestore]) -> list[ActionResult]:
        """Re-add seats Asterisk forgot (it restarted): a system action, no rules apply."""
        out = []
        for s in seats:
            action = {
                "Action": "QueueAdd",
                "Queue": s.queue,
                "Interface": s.interface or self._iface(s.seat),
                "MemberName": s.seat,
                "StateInterface": s.interface or self._iface(s.seat),
            }
            if s.paused:
                action.update(Paused="true", Reason=s.reason)
            try:  # one seat Asterisk refuses ("Already there") must not keep the others out
                out.append(ActionResult("restore", (await self._send(action),), detail=s.seat))
            except ActionFailed as exc:
                log.warning("CTI: seat %s not re-added to %s: %s", s.seat, s.queue, exc)
        return out

    # ------------------------------------------------------------------ calls

    def new_call_id(self) -> str:
        """An id for a call we are about to originate (see :meth:`originate_callback`)."""
        uid = f"{int(self.clock())}.{next(self._originated)}"
        return f"{self.dp.system_name}-{uid}" if self.dp.system_name else uid

    async def originate_callback(self, seat: str, number: str, *, call_id: str = "",
                                 channel_id: str = "") -> ActionResult:
        """未接来电回拨 / 回访: ring the seat, then dial the citizen from the callback context.

        The call gets an id of ours (``ChannelId``: the seat channel's Uniqueid, the tail of its
        ``callback-…`` recording), returned as ``call_id`` so the caller can tie the call, and its
        recording, to a ticket before it is even answered; ``channel_id`` is one taken before from
        :meth:`new_call_id` (the console stores it with its claim of the dial, agent_ui.dialing).
        ``call_id`` names the missed call this one answers, if any (``HL_CALLBACK_OF``)."""
        channel_id = channel_id or self.new_call_id()
        reply = await self._send(
            {
                "Action": "Originate",
                "Channel": self._iface(seat),
                "ChannelId": channel_id,
                "Context": self.dp.callback_context,
                "Exten": number,
                "Priority": "1",
                "CallerID": f"{self.dp.hotline_number} <{self.dp.hotline_number}>",
                "Timeout": "30000",
                "Async": "true",
                "Variable": f"HL_CALLBACK_OF={call_id},HL_SEAT={seat}",
            }
        )
        return ActionResult("callback", (reply,), detail=number, call_id=channel_id)

    async def transfer_to_specialist(self, seat: str) -> ActionResult:
        return await self._blind(seat, self.dp.specialist_exten)

    async def transfer_to_department(self, seat: str, number: str) -> ActionResult:
        return await self._blind(seat, number)

    async def _connected(self, seat: str) -> tuple[str, str, str]:
        """The seat's call as :meth:`_on_call` gives it, once Asterisk has bridged the seat's leg to
        the citizen (waiting at most ``settle_s``).

        Asterisk says the operator answered (AgentConnect, our CallAnswered, the console's 通话中) a
        moment before it bridges the two legs, longer on a busy box; a BlindTransfer or Redirect sent
        in between is refused ("Transfer invalid") although the operator sees the call connected.
        Past the wait the action goes anyway and Asterisk's answer stands. The call must still be the
        one the operator clicked on: one that ended meanwhile is not carried over to the seat's next."""
        _, _, call_id = self._on_call(seat)
        uid = self.state.seats[seat].channel_uid
        if uid:  # a leg Asterisk named (it always does): wait for that one
            await self._settle(seat, lambda s: s.channel_uid != uid or uid in self.state.bridged)
        now = self._on_call(seat)
        if now[2] != call_id or self.state.seats[seat].channel_uid != uid:
            raise NotOnCall(f"seat {seat}: call {call_id} ended")
        return now

    async def _blind(self, seat: str, exten: str) -> ActionResult:
        seat_chan, _, _ = await self._connected(seat)
        # BlindTransfer moves the *other* party of Channel (the citizen) to exten@context
        reply = await self._send(
            {
                "Action": "BlindTransfer",
                "Channel": seat_chan,
                "Context": self.dp.transfer_context,
                "Exten": exten,
            }
        )
        return ActionResult("transfer", (reply,), detail=f"{exten}@{self.dp.transfer_context}")

    async def conference(self, seat: str, department: str) -> ActionResult:
        """Bring a department into the call: a three-party ConfBridge (citizen marked)."""
        seat_chan, citizen_chan, call_id = await self._connected(seat)
        conf = f"conf-{call_id}"  # the state machine maps conf-<call id> back to the call
        var = self.dp.conf_variable
        replies = []
        for ch in (citizen_chan, seat_chan):
            replies.append(await self._send({"Action": "Setvar", "Channel": ch, "Variable": var, "Value": conf}))
        replies.append(
            await self._send(
                {
                    "Action": "Redirect",
                    "Channel": citizen_chan,
                    "Context": self.dp.conf_context,
                    "Exten": self.dp.conf_citizen_exten,
                    "Priority": "1",
                    "ExtraChannel": seat_chan,
                    "ExtraContext": self.dp.conf_context,
                    "ExtraExten": self.dp.conf_operator_exten,
                    "ExtraPriority": "1",
                }
            )
        )
        replies.append(
            await self._send(
                {
                    "Action": "Originate",
                    "Channel": self.department_channel(department),
                    "Context": self.dp.conf_context,
                    "Exten": self.dp.conf_department_exten,
                    "Priority": "1",
                    "Variable": [f"{var}={conf}", f"{self.dp.call_id_variable}={call_id}"],
                    "CallerID": f"{self.dp.hotline_number} <{self.dp.hotline_number}>",
                    "Timeout": "30000",
                    "Async": "true",
                }
            )
        )
        return ActionResult("conference", tuple(replies), detail=conf)

    def department_channel(self, number: str) -> str:
        """The channel that rings a department: its SIP line, or its directory phone on the trunk."""
        internal = number in self.dp.department_lines
        return (self.dp.department_channel if internal else self.dp.outside_channel).format(number=number)

    async def hangup(self, channel: str, cause: int = 16) -> ActionResult:
        reply = await self._send({"Action": "Hangup", "Channel": channel, "Cause": str(cause)})
        return ActionResult("hangup", (reply,), detail=channel)

    async def hangup_seat_call(self, seat: str) -> ActionResult:
        seat_chan, _, _ = self._on_call(seat)
        return await self.hangup(seat_chan)

    # ------------------------------------------------------------------ the live transcript's spies

    def channels_of(self, seat: str) -> tuple[str, str, str]:
        """(seat channel, citizen channel, call id) of the seat's call; ``NotOnCall`` else."""
        return self._on_call(seat)

    async def spy(self, audiosocket: str, spied: str, options: str) -> ActionResult:
        """An ``AudioSocket/host:port/uuid`` channel running ChanSpy on ``spied`` (cti.spies)."""
        reply = await self._send({
            "Action": "Originate", "Channel": audiosocket, "Application": "ChanSpy",
            "Data": f"{spied},{options}", "Async": "true", "Timeout": "5000",
            "CallerID": "live <live>",
        })
        return ActionResult("spy", (reply,), detail=spied)
