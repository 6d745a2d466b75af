"""The centre's live state on a web node that does not run the bridge (issue #15).

Every active bridge posts its picture on the board beside the bus (:mod:`cti.desk`); this node
reads them all twice a second and shows their merge (:func:`cti.picture.merge`), so its pages look
the same as the bridge's own node's. Who sits where, which each pop is routed by, also comes on the
bus itself (:class:`~cti.domain.RosterChanged`, seen by the hub before it routes what follows), so
a pop never arrives ahead of its operator's sign-in. Call control goes to the bridge of the server
that owns the seat, through the board, and raises what the bridge's own actions raise; its answer
carries the seat as the action left it, shown here until the bridge's next picture (:meth:`patch`).

:class:`CentreLive` has the surface the web room uses of :class:`cti.service.CtiService`:
``queues()``, ``seats()``, ``calls()``, ``seat_queues()``, ``operator_seats()``, ``job_number_at()``,
``health()`` and ``actions``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import random
import time
from collections.abc import Callable
from typing import Any

from cti.actions import ActionFailed, ActionResult, NotOnCall, RuleViolation
from cti.domain import RosterChanged
from cti.link import AmiNotSent, AmiTimeout
from cti.picture import Centre, merge, patched, patched_at, unnamed
from cti.rules import Decision
from hotline.board import Board, NoAnswer, NotTaken
from hotline.bus import Envelope
from hotline.codec import from_message
from hotline.redis_bus import BusUnavailable
from hotline.tasks import Coalesced, stop_task

log = logging.getLogger(__name__)


class CentreLive:
    """The centre's live views from the board, and call control through it."""

    def __init__(self, board: Board, *, every_s: float = 0.5, stale_s: float = 5.0, action_timeout_s: float = 10.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.board, self.every_s, self.stale_s, self.clock = board, every_s, stale_s, clock
        self.actions = RemoteActions(self, action_timeout_s)
        self.leader = None  # no bridge here
        self._pictures: dict[str, dict[str, Any]] = {}
        self._merged = Centre()  # the pictures' merge
        self._patches: dict[str, dict[str, Any]] = {}  # seat → as its bridge answered after its picture
        self._centre = Centre()  # what the views show: the merge, patched
        self._index: dict[str, int] = {}  # seat → its place in the views' seats
        self._rosters: dict[str, tuple[float, dict[str, str]]] = {}  # server → (as of, its roster)
        self._roster: dict[str, str] = {}  # merged: a new dict whenever it changes (the hub watches identity)
        self._seat_queues: dict[str, frozenset[str]] = {}
        self._task: asyncio.Task[None] | None = None
        self.read_at = 0.0  # when the board last answered
        self.problem = ""
        self.fresh = Coalesced(self.refresh)  # one read of the board for the askers of one moment

    # --- following the board ------------------------------------------------------------------

    async def start(self) -> None:
        """Follow the board (started by its owner: the node, or a test)."""
        with contextlib.suppress(BusUnavailable):
            await self.refresh()  # the first pages need not wait half a second
        self._task = asyncio.create_task(self._follow(), name="cti-replica")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await stop_task(task)

    async def _follow(self) -> None:
        while True:
            await asyncio.sleep(self.every_s)
            await self._read_board()

    async def _read_board(self) -> None:
        """One read of the board, shared with whoever asks at the same moment; a failure is said (the
        health page shows it) and the pictures stay as they were."""
        try:
            await self.fresh()
        except BusUnavailable as exc:
            self.problem = str(exc)
        except Exception:
            log.exception("CTI replica: the board's pictures could not be read")

    async def refresh(self) -> None:
        found = {name: json.loads(text) for name, text in (await self.board.pictures()).items()}
        self.read_at, self.problem = self.clock(), ""
        self._install(found)

    async def catch_up(self, server: str, at: float) -> None:
        """After an action on the bridge of a release before, which answered with when it posted its
        next picture (``at``): read the board unless this node's picture of that server is already as
        new, so a page reloaded next shows what the action did. A board that does not answer leaves
        the picture as it is (the action itself was done; the next read brings it)."""
        if float(self._pictures.get(server, {}).get("at", 0.0)) < at:
            await self._read_board()

    def take(self, picture: dict[str, Any]) -> None:
        """A picture that came inside an action's answer (from a bridge of the releases before)."""
        self._install({**self._pictures, picture["server"]: picture})

    def patch(self, server: str, seat_now: Any) -> None:
        """The seat as ``server``'s bridge answered an action on it (:func:`cti.picture.seat_now`):
        shown here at once, in place of the seat's entry in that server's picture, until a picture of
        the server at least as new is read; with the server's roster as of the answer when it carries
        one (the action changed who sits where). The page the operator reloads after a click shows
        what the click did, without reading every server's picture again (issue #15). An answer that
        does not describe a seat changes nothing."""
        try:
            at, view = float(seat_now["at"]), dict(seat_now["view"])
            said = seat_now.get("roster")
            roster = None if said is None else {str(op): str(s) for op, s in dict(said).items()}
            job_number = str(seat_now.get("job_number") or "")
            if not math.isfinite(at) or not isinstance(view.get("seat"), str) or not isinstance(
                    view.get("queues", []), list) or not isinstance(view.get("signed_in"), bool):
                raise ValueError("not a seat")
        except (TypeError, KeyError, ValueError) as exc:  # the bridge's bug: the next picture shows the seat
            log.warning("CTI replica: %s's answer carried a seat it does not describe: %r (%s)", server, seat_now, exc)
            return
        seat = view["seat"]
        if roster is not None:  # kept if newer than what the bus and the pictures said, as any roster
            self._roster_from(server, at, roster)
            self._merge_rosters()
        if float(self._pictures.get(server, {}).get("at", 0.0)) >= at:
            return  # the picture here is newer already
        if self._patches.get(seat, {}).get("at", -math.inf) >= at:
            return  # an answer to a later action on the seat came first
        held = self._patches.get(seat)
        self._patches[seat] = {"server": server, "at": at, "view": view, "job_number": job_number}
        try:
            self._show_one(seat)
        except Exception:  # a seat the views cannot show must not stay to break every later read
            if held is None:
                del self._patches[seat]
            else:
                self._patches[seat] = held
            self._show()
            raise

    def _install(self, pictures: dict[str, dict[str, Any]]) -> None:
        self._pictures = pictures
        self._merged = merge(pictures)
        self._patches = {seat: p for seat, p in self._patches.items()  # until the picture has caught up
                         if p["server"] in pictures and float(pictures[p["server"]].get("at", 0.0)) < p["at"]}
        self._show()
        for name, p in pictures.items():
            self._roster_from(name, float(p.get("at", 0.0)), p.get("roster", {}))
        for gone in set(self._rosters) - set(pictures):  # its bridge and any standby are gone
            del self._rosters[gone]
        self._merge_rosters()

    def _show(self) -> None:
        self._centre = patched(self._merged, self._patches)
        self._seat_queues = {s["seat"]: frozenset(s.get("queues", ())) for s in self._centre.seats}
        index: dict[str, int] = {}
        for i, s in enumerate(self._centre.seats):  # a seat two pictures show (it moved between servers)
            index[s["seat"]] = -1 if s["seat"] in index else i  # is left to the whole rebuild
        self._index = index

    def _show_one(self, seat: str) -> None:
        """:meth:`_show` after one more answer: the seat's entry replaced, not every seat's views
        rebuilt (an answer a click, a hundred a burst on a node: 42 µs each at 200 seats, against
        135 for the whole rebuild)."""
        i = self._index.get(seat, -1)
        if i < 0:  # a seat the pictures do not show yet, or show twice
            self._show()
            return
        p = self._patches[seat]
        queues = frozenset(p["view"].get("queues", ()))
        self._centre = patched_at(self._centre, i, seat, p)
        self._seat_queues = {**self._seat_queues, seat: queues}

    def observe(self, env: Envelope) -> None:
        """Every envelope this node's hub reads, before it routes it: a roster change applies first."""
        if not issubclass(env.kind, RosterChanged):  # by class: the rest of the stream is not rebuilt here
            return
        e = env.event
        if isinstance(e, RosterChanged):
            self._roster_from(e.server, e.at, e.roster)
            self._merge_rosters()

    def _roster_from(self, server: str, at: float, roster: dict[str, str]) -> None:
        held = self._rosters.get(server)
        if held is None or at >= held[0]:
            self._rosters[server] = (at, dict(roster))

    def _merge_rosters(self) -> None:
        merged: dict[str, str] = {}
        for name in sorted(self._rosters):
            merged.update(self._rosters[name][1])
        if merged != self._roster:
            self._roster = merged

    # --- the web room's views -----------------------------------------------------------------

    def queues(self) -> list[dict]:
        return self._centre.queues

    def seats(self) -> list[dict]:
        return self._centre.seats

    def calls(self) -> list[dict]:
        return self._centre.calls

    def seat_queues(self, seat: str) -> frozenset[str]:
        return self._seat_queues.get(seat, frozenset())

    def operator_seats(self) -> dict[str, str]:
        return self._roster

    def job_number_at(self, seat: str) -> str:
        return self._centre.job_numbers.get(seat, "")

    def owner(self, seat: str) -> str:
        """The server whose bridge drives ``seat``: :class:`AmiNotSent` when no bridge of the
        centre reports it (nothing can be done), ``ActionFailed`` when two servers claim it."""
        try:
            found = self._centre.owner(seat)
        except ValueError as exc:
            raise ActionFailed(str(exc)) from None
        if found is None:
            raise AmiNotSent(f"没有在线的话务桥管理坐席 {seat}")
        return found

    def health(self) -> dict[str, Any]:
        """As the bridge's own: ``logged_in`` when every server's bridge reports in, fresh."""
        now = self.clock()
        servers = {name: {**s, "age_s": round(now - float(s["at"]), 1)} for name, s in self._centre.servers.items()}
        fresh = [s for s in servers.values() if s["age_s"] <= self.stale_s]
        clash = unnamed(self._centre)
        lost = (f"交换机 {'、'.join(clash)} 未设置各自不同的 HOTLINE_ASTERISK_SYSTEMNAME："
                "同一秒的来电会得到相同的通话编号，通话记录会丢失")
        problem = self.problem or (lost if clash else "")
        return {"replica": True, "servers": servers, "problem": problem, "unnamed": clash,
                "logged_in": bool(servers) and len(fresh) == len(servers) and all(s["logged_in"] for s in fresh)}


class RemoteActions:
    """:class:`cti.actions.CtiActions`'s calls a web node makes, run by the seat's bridge."""

    def __init__(self, live: CentreLive, timeout_s: float) -> None:
        self.live, self.timeout_s = live, timeout_s

    async def _ask(self, action: str, seat: str, **args: Any) -> ActionResult:
        server = self.live.owner(seat)
        try:
            reply = await self.live.board.ask(server, {"action": action, "args": {"seat": seat, **args}},
                                              self.timeout_s)
        except (NotTaken, BusUnavailable) as exc:  # not run: safe to try again
            raise AmiNotSent(f"话务桥（{server}）未接收操作：{exc}") from None
        except NoAnswer as exc:  # taken, no word back: it may have been done
            raise AmiTimeout(f"话务桥（{server}）未应答，操作结果未知：{exc}") from None
        if "seat_now" in reply:  # the seat as the action left it
            try:
                self.live.patch(server, reply["seat_now"])
            except Exception:  # the action was done: say so; the next picture shows the seat
                log.exception("CTI replica: %s's answer to %s could not be shown", server, action)
        elif isinstance(reply.get("picture_at"), int | float):  # bridges of the releases before: the
            await self.live.catch_up(server, float(reply["picture_at"]))  # picture posted after the action
        elif isinstance(reply.get("picture"), dict):  # ... or the picture itself
            self.live.take(reply["picture"])
        if "result" in reply:
            return from_message(ActionResult, reply["result"])
        raise _error(action, reply)

    async def sign_in(self, seat: str, *, operator: str = "", job_number: str = "") -> ActionResult:
        return await self._ask("sign_in", seat, operator=operator, job_number=job_number)

    async def sign_out(self, seat: str, *, approved_by: str | None = None) -> ActionResult:
        return await self._ask("sign_out", seat, approved_by=approved_by)

    async def busy(self, seat: str, reason: str, *, approved_by: str | None = None) -> ActionResult:
        return await self._ask("busy", seat, reason=reason, approved_by=approved_by)

    async def ready(self, seat: str) -> ActionResult:
        return await self._ask("ready", seat)

    async def transfer_to_specialist(self, seat: str) -> ActionResult:
        return await self._ask("transfer_to_specialist", seat)

    async def transfer_to_department(self, seat: str, number: str) -> ActionResult:
        return await self._ask("transfer_to_department", seat, number=number)

    async def conference(self, seat: str, department: str) -> ActionResult:
        return await self._ask("conference", seat, department=department)

    async def hangup_seat_call(self, seat: str) -> ActionResult:
        return await self._ask("hangup_seat_call", seat)

    async def originate_callback(self, seat: str, number: str, *, call_id: str = "",
                                 channel_id: str = "") -> ActionResult:
        return await self._ask("originate_callback", seat, number=number, call_id=call_id, channel_id=channel_id)

    def new_call_id(self) -> str:
        """An id for a call to originate, of Asterisk's uniqueid shape (see ``CtiActions.new_call_id``).
        Several web nodes make them, so the tail is random, far above Asterisk's own counter."""
        return f"{int(self.live.clock())}.{random.randrange(9_000_000, 10_000_000)}"


def _error(action: str, reply: dict[str, Any]) -> Exception:
    kind, message = reply.get("error"), str(reply.get("message", ""))
    if kind == "rule":
        return RuleViolation(action, from_message(Decision, reply.get("decision", {"allowed": False})))
    if kind == "not_on_call":
        return NotOnCall(message)
    if kind == "not_sent":
        return AmiNotSent(message)
    if kind in ("failed", "refused"):  # Asterisk said no, or the bridge does not know the request: not done
        return ActionFailed(message)
    return AmiTimeout(f"{action}: {message or kind}")  # the bridge could not say: the outcome is unknown
