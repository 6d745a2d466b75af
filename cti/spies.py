"""The live transcript's ears on the active bridge: when a seat is bridged to a citizen, send both
legs' audio to a listening node with room (issue #16). A call out (回拨 / 回访) is heard from the
citizen's answer as a queue call is from the seat's. A department brought into the call (三方) is
heard too, by a spy of its own on the same node (speaker ``department``), from the moment its channel
joins the room.

Route: one AMI ``Originate`` per leg of an ``AudioSocket/<node>/<uuid>`` channel into ``ChanSpy``
on that leg with ``qEoS``: quiet (no beep), the spied channel's own audio only (so the citizen's
words and the operator's come apart), exit when it hangs up, and at once if it is already gone.
Nothing changes in the dialplan, no ARI application holds the call, the call's bridge and its
recording are untouched, and a spy that fails leaves the call as it was. Checked on Asterisk 22.10:
the AudioSocket stream starts ≈ 0.1 s after the Originate, 20 ms frames, ≈ 0.4 % of a core a leg.

Admission: listening nodes say every few seconds how many legs they hold
(:class:`~hotline.listening.ListenerStatus`); the call goes to the node with the most room that is
not behind, two legs reserved there until its next word. No node with room: the call is announced
``unavailable`` (the console says it will be transcribed after the call) and is not spied. With no
listening node at all the feature is off and nothing is said.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cti.actions import ActionError
from cti.domain import CallAnswered, CallCompleted, CallConferenced, DomainEvent, OutboundAnswered, OutboundEnded
from hotline.bus import Envelope
from hotline.listening import LegsAssigned, ListenerStatus, LiveState

log = logging.getLogger(__name__)

SPY_OPTIONS = "qEoS"


@dataclass
class _Node:
    status: ListenerStatus
    seen: float
    reserved: int = 0  # legs sent there since its last heartbeat counted them

    def room(self) -> int:
        return self.status.capacity - self.status.active - self.reserved


class Spies:
    """Fed every envelope of the bus (a listener on the active bridge); spawns the Originates."""

    # what the bridge follows for this (its own calls' answers and ends, every node's heartbeat): the
    # bus rebuilds only these here, not the pops and seat changes that make most of its stream
    KINDS = (ListenerStatus, CallAnswered, CallCompleted, OutboundAnswered, OutboundEnded, CallConferenced)

    def __init__(self, channels: Callable[[str], tuple[str, str, str]], originate: Callable[[str, str, str], Any],
                 hang_up: Callable[[str], Any], publish: Callable[[list[DomainEvent]], None],
                 spawn: Callable[[Any], None], operator_at: Callable[[str], str],
                 clock: Callable[[], float]) -> None:
        self.channels, self.originate, self.hang_up = channels, originate, hang_up
        self.publish, self.spawn, self.operator_at, self.clock = publish, spawn, operator_at, clock
        self.nodes: dict[str, _Node] = {}
        self.spied: dict[str, list[str]] = {}  # call → its spy channels (hung up with the call)
        self.heard_by: dict[str, tuple[str, str, str]] = {}  # call → (node, its address, the seat spied now)
        self.rooms: dict[str, set[str]] = {}  # call → the channels of its 三方 room seen joining
        self.refused = 0

    def on_envelope(self, env: Envelope) -> None:
        e = env.event
        if isinstance(e, ListenerStatus):
            self.nodes[e.node] = _Node(e, self.clock())
        elif isinstance(e, (CallAnswered, OutboundAnswered)):  # OutboundAnswered: a callback (回拨 / 回访)
            if e.call_id not in self.spied:
                self._spy(e)
            elif isinstance(e, CallAnswered) and e.call_id in self.heard_by and self.heard_by[e.call_id][2] != e.seat:
                self._follow_transfer(e)
        elif isinstance(e, CallConferenced):
            if e.call_id in self.heard_by and e.channel not in self.rooms.setdefault(e.call_id, set()):
                self.rooms[e.call_id].add(e.channel)
                self._follow_conference(e)
        elif isinstance(e, (CallCompleted, OutboundEnded)):
            self.heard_by.pop(e.call_id, None)
            self.rooms.pop(e.call_id, None)
            for channel in self.spied.pop(e.call_id, []):
                self.spawn(self.hang_up(channel))  # a spy that outlived its call (see live.receiver)

    def pick(self) -> _Node | None:
        now = self.clock()
        alive = [n for n in self.nodes.values() if now - n.seen <= 3 * n.status.every_s]
        ok = [n for n in alive if not n.status.overloaded and n.room() >= 2]
        return max(ok, key=lambda n: n.room(), default=None)

    def _spy(self, e: CallAnswered | OutboundAnswered) -> None:
        if not self.nodes:
            return  # no listening node in the centre: the live transcript is off
        node = self.pick()
        if node is None:
            self.refused += 1
            self.publish([LiveState(at=self.clock(), call_id=e.call_id, seat=e.seat, state="unavailable",
                                    detail="实时转写节点均已满载，本通话在结束后转写")])
            return
        try:
            seat_channel, citizen_channel, _ = self.channels(e.seat)
        except ActionError as exc:  # the seat left the call already, or it is another server's call
            log.debug("live: no channels to spy on for %s: %s", e.call_id, exc)
            return
        legs = {str(uuid.uuid4()): "citizen", str(uuid.uuid4()): "operator"}
        node.reserved += 2
        self.publish([LegsAssigned(at=self.clock(), call_id=e.call_id, seat=e.seat, operator=self.operator_at(e.seat),
                                   node=node.status.node, legs=legs, callback=isinstance(e, OutboundAnswered))])
        address = node.status.address
        self.spied[e.call_id] = [f"AudioSocket/{address}-{uid}" for uid in legs]
        self.heard_by[e.call_id] = (node.status.node, address, e.seat)
        for uid, speaker in legs.items():
            spied = citizen_channel if speaker == "citizen" else seat_channel
            self.spawn(self._originate(e, address, uid, spied, speaker))

    def _follow_transfer(self, e: CallAnswered) -> None:
        """The citizen was transferred and another seat answered: the citizen's spy goes on (same
        channel, same node); the new operator is heard by a spy of their own on that node, and the
        node sends the call's lines to the new seat from now on (the first seat's spy ended with it)."""
        name, address, _ = self.heard_by[e.call_id]
        node = self.nodes.get(name)
        try:
            seat_channel, _, _ = self.channels(e.seat)
        except ActionError as exc:
            log.debug("live: no channel to spy on for %s at %s: %s", e.call_id, e.seat, exc)
            return
        uid = str(uuid.uuid4())
        if node is not None:
            node.reserved += 1
        self.heard_by[e.call_id] = (name, address, e.seat)
        self.publish([LegsAssigned(at=self.clock(), call_id=e.call_id, seat=e.seat, operator=self.operator_at(e.seat),
                                   node=name, legs={uid: "operator"})])
        self.spied[e.call_id].append(f"AudioSocket/{address}-{uid}")
        self.spawn(self._originate(e, address, uid, seat_channel, "operator"))

    def _follow_conference(self, e: CallConferenced) -> None:
        """A channel joined the call's room: the citizen and the operator are heard already (their spies
        follow their channels into it); any other is a department, heard on the call's node."""
        name, address, seat = self.heard_by[e.call_id]
        try:
            heard = self.channels(seat)[:2]
        except ActionError as exc:  # the operator left the room: what joins now is not followed
            log.debug("live: no call at %s for %s: %s", seat, e.call_id, exc)
            return
        if e.channel in heard:
            return
        node = self.nodes.get(name)
        if node is not None:
            node.reserved += 1
        uid = str(uuid.uuid4())
        self.publish([LegsAssigned(at=self.clock(), call_id=e.call_id, seat=seat, operator=self.operator_at(seat),
                                   node=name, legs={uid: "department"})])
        self.spied.setdefault(e.call_id, []).append(f"AudioSocket/{address}-{uid}")
        self.spawn(self._originate(e, address, uid, e.channel, "department"))

    async def _originate(self, e: CallAnswered | OutboundAnswered | CallConferenced, address: str, uid: str,
                         spied: str, speaker: str) -> None:
        try:
            await self.originate(f"AudioSocket/{address}/{uid}", spied, SPY_OPTIONS)
        except Exception as exc:  # the call goes on unheard; the console says so
            log.warning("live: spy on %s (%s) refused: %s", spied, speaker, exc)
            self.publish([LiveState(at=self.clock(), call_id=e.call_id, seat=e.seat, state="unavailable",
                                    speaker=speaker, detail=f"无法接入通话音频：{exc}")])
