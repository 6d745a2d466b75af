"""This web node's one reader of the bus, and the routing of each event to the websockets that may
see it.

Every websocket used to hold a bus subscription whose filter the bus ran for every event, so a
burst of 50 pops to 50 operators cost 2 500 filter calls on the loop, and 200 pops 40 000: the
pop's p99 grew with the square of the seats (issue #15). Most live traffic is addressed to one
seat (a pop, a call's updates, a ringing alert), so the hub looks the addressees up instead:

- operators by the seat they sit at (the inverse of the bridge's roster, rebuilt only when the
  roster changes) and by the calls that popped on them (a call that moved on keeps its updates);
- everyone else (leads, admins, departments, QA) is asked about every event, as before: they are
  few, and what they see does not follow a seat.

Each candidate is then asked the same :meth:`Audience.visible` as before, so the hub changes who
is asked, never the answer. An event a seat-less rule could show an operator (link status, queue
figures, the centre's tickets and intake) still goes to every operator's filter.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, cast

from agent_ui.audience import OPERATOR_UNSEATED, Audience
from hotline.bus import Bus, BusLagged, Envelope, LocalFanout, Subscription
from hotline.identity import Role
from hotline.tasks import stop_task

log = logging.getLogger(__name__)

# the hub lets the loop turn after every this many envelopes it routes: a burst's hundreds of them queue
# here at once (one bus in the process: a read of AMI's events), and the sockets' tasks send only
# between turns
ROUTE_TURN = 32

Roster = Callable[[], dict[str, str]]  # operator username → their seat (one shared dict per roster version)


class Inbox(Subscription):
    """One websocket's queue of the envelopes its audience may see: a bus subscription that the
    hub fills instead of the bus (``BusLagged`` when it fell behind: replay or resync, go on)."""

    def __init__(self, hub: Hub, audience: Audience, maxsize: int) -> None:
        super().__init__(cast(LocalFanout, hub.bus), maxsize)
        self.hub, self.audience = hub, audience
        self.username: str = audience.principal.username
        self.operator = audience.principal.role is Role.OPERATOR
        self.calls: set[str] = set()  # call ids indexed for this inbox (the calls that popped here)

    def accept(self, env: Envelope) -> bool:
        """Whether this socket may see ``env`` (a replayed one: what the hub asks as events arrive)."""
        return self.hub._visible(self, env, env.message())

    def close(self) -> None:
        self.hub._leave(self)


class Hub:
    """Reads the bus once for this process and hands each envelope to the inboxes that may see it."""

    def __init__(self, bus: Bus, roster: Roster, maxsize: int = 100_000,
                 observe: Callable[[Envelope], None] | None = None) -> None:
        self.bus, self.roster, self.maxsize = bus, roster, maxsize
        # sees each envelope before it is routed: a node without the bridge learns who sits where
        # from the bus (cti.replica), so a sign-in applies before the pop that follows it
        self.observe = observe
        self._broad: set[Inbox] = set()  # non-operators: asked about everything
        self._operators: dict[str, set[Inbox]] = {}  # username → their sockets (a second tab is a second inbox)
        self._by_call: dict[str, set[Inbox]] = {}
        self._seen_roster: dict[str, str] | None = None
        self._by_seat: dict[str, tuple[str, ...]] = {}  # seat → usernames signed in there
        self._task: asyncio.Task[None] | None = None
        self.routed = 0
        self.asked = 0  # filter calls: what the index saves is visible here

    # --- websockets join and leave ------------------------------------------------------------

    def join(self, audience: Audience, maxsize: int = 1000) -> Inbox:
        """An inbox for one websocket, from now on (replay what came before from the bus)."""
        self._ensure_running()
        inbox = Inbox(self, audience, maxsize)
        if inbox.operator:
            self._operators.setdefault(inbox.username, set()).add(inbox)
        else:
            self._broad.add(inbox)
        return inbox

    def _leave(self, inbox: Inbox) -> None:
        self._broad.discard(inbox)
        mine = self._operators.get(inbox.username)
        if mine is not None:
            mine.discard(inbox)
            if not mine:
                del self._operators[inbox.username]
        for call in inbox.calls:
            holders = self._by_call.get(call)
            if holders is not None:
                holders.discard(inbox)
                if not holders:
                    del self._by_call[call]

    # --- the one reader -----------------------------------------------------------------------

    def _ensure_running(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="ws-hub")

    async def _run(self) -> None:
        sub = self.bus.subscribe(maxsize=self.maxsize)
        routed = 0
        try:
            while True:
                try:
                    async for env in sub:
                        self.route(env)
                        routed += 1
                        if routed % ROUTE_TURN == 0:  # the sockets' tasks send what is routed so far
                            await asyncio.sleep(0)
                except BusLagged:  # this node fell behind the bus: every socket must catch up
                    log.warning("websocket hub fell behind the bus; %d sockets resync", self.sockets)
                    for inbox in self._all():
                        inbox._resync()
        finally:
            sub.close()

    async def stop(self) -> None:
        task, self._task = self._task, None
        await stop_task(task)

    @property
    def sockets(self) -> int:
        return len(self._broad) + sum(len(s) for s in self._operators.values())

    def _all(self) -> list[Inbox]:
        return [*self._broad, *(i for s in self._operators.values() for i in s)]

    # --- routing ------------------------------------------------------------------------------

    def route(self, env: Envelope) -> None:
        """Offer ``env`` to every inbox whose audience may see it (the audience decides)."""
        self.routed += 1
        if self.observe is not None:
            self.observe(env)
        msg = env.message()
        for inbox in self._broad:
            self._ask(inbox, env, msg)
        if not self._operators:
            return
        if msg.get("type") in OPERATOR_UNSEATED:
            for inboxes in self._operators.values():
                for inbox in inboxes:
                    self._ask(inbox, env, msg)
            return
        for inbox in self._addressees(msg):
            self._ask(inbox, env, msg)

    def _ask(self, inbox: Inbox, env: Envelope, msg: dict[str, Any]) -> None:
        if inbox._lagged:  # dropped until it has taken its BusLagged (as the bus's own fan-out does)
            return
        if self._visible(inbox, env, msg):
            inbox._put(env)

    def _visible(self, inbox: Inbox, env: Envelope, msg: dict[str, Any]) -> bool:
        self.asked += 1
        try:
            seen = inbox.audience.visible(msg)
        except Exception:  # fail closed for that socket, and say so
            log.exception("websocket filter of %s failed on seq %d; not delivered", inbox.username, env.seq)
            return False
        if seen and inbox.operator and msg.get("type") == "screen_pop":  # its later updates follow it here
            self._index_call(inbox, msg.get("call_id"))
        return seen

    def _addressees(self, msg: dict[str, Any]) -> set[Inbox]:
        """The operators' inboxes a seat-addressed message could be for: whoever sits at its seat or
        its ringing seat, and whoever the call popped on."""
        by_seat = self._seats()
        found: set[Inbox] = set()
        for key in ("seat", "ringing_seat"):
            seat = msg.get(key)
            if seat:
                for username in by_seat.get(seat, ()):
                    found |= self._operators.get(username, set())
        call = msg.get("call_id")
        if call:
            found |= self._by_call.get(str(call), set())
        return found

    def _seats(self) -> dict[str, tuple[str, ...]]:
        roster = self.roster()
        if roster is not self._seen_roster:  # the bridge hands out a new dict when the roster changed
            inverse: dict[str, list[str]] = {}
            for username, seat in roster.items():
                inverse.setdefault(seat, []).append(username)
            self._by_seat = {seat: tuple(users) for seat, users in inverse.items()}
            self._seen_roster = roster
        return self._by_seat

    def _index_call(self, inbox: Inbox, call: Any) -> None:
        if call:
            call = str(call)
            self._by_call.setdefault(call, set()).add(inbox)
            inbox.calls.add(call)
