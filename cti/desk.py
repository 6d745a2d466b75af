"""The active bridge's side of the board (hotline/board.py): its live picture, posted twice a second,
and the call-control requests of the centre's web nodes, run by its own :class:`CtiActions
<cti.actions.CtiActions>` (issue #15).

Only the node that holds the Asterisk server's lease runs a desk (``launch.compose``'s
``Node.activate``), so each request is run once, by the bridge that drives the seat. A request
whose asker has given up (its deadline passed while it waited) is not run: a transfer done half a
minute after the click would move someone else's call.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from cti.actions import ActionFailed, ActionResult, NotOnCall, RuleViolation
from cti.link import AmiNotSent
from cti.picture import picture, seat_now
from cti.state import CtiState
from hotline.board import Board, Request
from hotline.redis_bus import BusUnavailable

log = logging.getLogger(__name__)

# what a web node may ask a bridge to do, with the arguments each takes (nothing else is run)
ACTIONS: dict[str, frozenset[str]] = {
    "sign_in": frozenset({"seat", "operator", "job_number"}),
    "sign_out": frozenset({"seat", "approved_by"}),
    "busy": frozenset({"seat", "reason", "approved_by"}),
    "ready": frozenset({"seat"}),
    "transfer_to_specialist": frozenset({"seat"}),
    "transfer_to_department": frozenset({"seat", "number"}),
    "conference": frozenset({"seat", "department"}),
    "hangup_seat_call": frozenset({"seat"}),
    "originate_callback": frozenset({"seat", "number", "call_id", "channel_id"}),
}
ERRORS: dict[type[Exception], str] = {RuleViolation: "rule", NotOnCall: "not_on_call", AmiNotSent: "not_sent",
                                      ActionFailed: "failed"}


def result_of(result: ActionResult) -> dict[str, Any]:
    """An action's result as JSON (Asterisk's own replies stay with the bridge)."""
    return {"action": result.action, "replies": [], "detail": result.detail, "call_id": result.call_id,
            "decision": dataclasses.asdict(result.decision) if result.decision else None,
            "handover": dataclasses.asdict(result.handover) if result.handover else None}


def error_of(exc: Exception) -> dict[str, Any]:
    """An action's failure as JSON: which kind (the web node raises the same), and what was said."""
    kind = next((k for cls, k in ERRORS.items() if isinstance(exc, cls)), "unknown")
    out: dict[str, Any] = {"error": kind, "message": str(exc)}
    if isinstance(exc, RuleViolation):
        out["decision"] = dataclasses.asdict(exc.decision)
    return out


class Bridge(Protocol):
    """What the desk uses of :class:`cti.service.CtiService` (which builds a desk: named here, not
    imported, so the two do not import each other)."""

    server: str
    state: CtiState
    synced: bool  # resynced with Asterisk since its link last came up
    queue_names: tuple[str, ...]
    link: Any  # .logged_in
    leader: Any  # cti.leader.Candidate or None: .status()
    actions: Any  # cti.actions.CtiActions


class BridgeDesk:
    """Posts the bridge's picture and runs the requests for its Asterisk server while it is active."""

    def __init__(self, service: Bridge, board: Board, *, owned: Iterable[str], every_s: float = 0.5,
                 ttl_s: float = 5.0, wait_s: float = 1.0, clock: Callable[[], float] = time.time) -> None:
        self.service, self.board, self.owned = service, board, tuple(owned)
        self.every_s, self.ttl_s, self.wait_s, self.clock = every_s, ttl_s, wait_s, clock
        self.served = self.expired = 0
        self._running: set[asyncio.Task[None]] = set()

    def picture(self) -> dict[str, Any]:
        s = self.service
        leader = s.leader.status() if s.leader is not None else {}
        return picture(s.state, server=s.server, queues=s.queue_names, owned=self.owned, now=self.clock(),
                       logged_in=s.link.logged_in, leader=leader, system_name=s.actions.dp.system_name)

    async def post(self) -> dict[str, Any]:
        p = self.picture()
        await self.board.post(self.service.server, json.dumps(p, ensure_ascii=False, separators=(",", ":")),
                              self.ttl_s)
        return p

    async def run(self) -> None:
        """Until cancelled: post the picture every ``every_s`` and serve the server's requests."""
        tasks = [asyncio.create_task(self._posting(), name="cti-desk-post"),
                 asyncio.create_task(self._serving(), name="cti-desk-serve")]
        try:
            await asyncio.gather(*tasks)
        finally:
            for t in [*tasks, *self._running]:
                t.cancel()
            for t in [*tasks, *self._running]:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t

    async def _posting(self) -> None:
        # a bridge that just took over knows no seats until its first resync: the last holder's
        # picture (kept ttl_s) shows the wall meanwhile, not an empty one. If the resync does not come
        # (Asterisk away), its own picture goes up after ttl_s and says the link is down
        began = self.clock()
        while True:
            if not self.service.synced and self.clock() - began < self.ttl_s:
                await asyncio.sleep(min(self.every_s, 0.05))
                continue
            try:
                await self.post()
            except BusUnavailable as exc:  # the board is the bus's Redis: it says so itself, and comes back
                log.debug("CTI desk: picture not posted: %s", exc)
            except Exception:
                log.exception("CTI desk: picture not posted")
            await asyncio.sleep(self.every_s)

    async def _serving(self) -> None:
        while True:
            try:
                requests = await self.board.take(self.service.server, self.wait_s)
            except BusUnavailable:
                await asyncio.sleep(self.wait_s)
                continue
            for request in requests:  # each in its own task: a settle of 2 s must not hold the next seat's
                task = asyncio.create_task(self._serve(request), name="cti-desk-request")
                self._running.add(task)
                task.add_done_callback(self._running.discard)

    async def _serve(self, request: Request) -> None:
        reply = await self.handle(request)
        if reply is None:
            return
        try:
            await self.board.answer(request, reply)
        except Exception as exc:
            log.warning("CTI desk: answer to %s not delivered: %s", request.get("action"), exc)

    async def handle(self, request: Request) -> dict[str, Any] | None:
        """Run one request; its answer, or None when it came too late. The answer carries the seat as
        the action left it (``seat_now``, :func:`cti.picture.seat_now`), which the asker shows until a
        picture as new comes; the other nodes see the change in the next periodic picture, as any.

        (Bridges of the releases before answered with the whole picture, then with when the next one
        was posted, ``picture_at``: a web node of this release still reads both.)"""
        name, args, deadline = request.get("action"), request.get("args") or {}, request.get("deadline", 0)
        if (not isinstance(name, str) or name not in ACTIONS or not isinstance(args, dict)
                or not set(args) <= ACTIONS[name] or not isinstance(args.get("seat"), str)
                or not isinstance(deadline, int | float)):  # refused, not a crash that leaves it unanswered
            return {"error": "refused", "message": f"unknown request {name!r}"}
        if deadline < self.clock():
            self.expired += 1
            log.warning("CTI desk: %s for seat %s came after its asker gave up; not run", name, args["seat"])
            return None
        self.served += 1
        roster_was = self.service.state.roster_version
        action = getattr(self.service.actions, name)
        seat = args.pop("seat")
        try:
            out: dict[str, Any] = {"result": result_of(await action(seat, **args))}
        except Exception as exc:
            if not isinstance(exc, tuple(ERRORS)):
                log.exception("CTI desk: %s for seat %s failed", name, seat)
            out = error_of(exc)
        # the asker's page reloads next and must show what the click did: the seat as it is now. Not
        # the next picture: waiting for it (the bridge posted one per 100 ms then) and reading every
        # server's made the answer to a wrap-up click 4x the time Asterisk took to unpause the seat
        now = self.clock()
        try:
            state = self.service.state  # the roster too when the action changed it (~6 kB at 200 seats)
            if (mine := seat_now(state, seat, now=now, roster=state.roster_version != roster_was)) is not None:
                out["seat_now"] = mine
        except Exception:  # the action's own answer goes anyway: the asker's next read shows the seat
            log.exception("CTI desk: seat %s could not be described after %s", seat, name)
        return out
