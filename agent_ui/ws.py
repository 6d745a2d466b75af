"""``WS /ws``: the bus's events, as JSON messages with their ``seq``, to the people who may see them.

A client that reconnects passes ``?since=<last seq>&epoch=<epoch>`` and gets what it missed; if
the bus cannot tell (too far behind, or the bus restarted) it gets ``{"type": "resync"}`` and
reloads its state from the REST API. The server pings every ``PING_S``; a client that does not
answer within ``PONG_TIMEOUT_S`` is dropped (its page reconnects by itself).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from fastapi.concurrency import run_in_threadpool

from agent_ui.centre import scope, seat_queues
from hotline.bus import Bus, BusLagged, Envelope
from hotline.centres import CentreScope, SeatQueues
from hotline.identity import Principal, Role, websocket_principal

log = logging.getLogger(__name__)
router = APIRouter()

PING_S = 15.0
PONG_TIMEOUT_S = 10.0
RECHECK_S = 15.0  # the session is re-read this often (a revocation in another process), and on every one here
SESSION_ENDED = 4401  # pages go to the login page on this close code
SeatOf = Callable[[str], str | None]  # username → the seat they are signed in to


_EVERYONE = frozenset({"link_status", "hello", "resync"})
_CENTRE_WORK = frozenset({"ticket_update", "intake_update"})  # the centre's desk and intake queue


@dataclass
class Audience:
    """What one connection may see. Leads and admins: the live traffic of their centre (all of it
    without one: hotline/centres.py); operators: their own seat's pops and calls only, their
    centre's queues, and the ticket and intake changes; departments: changes to the tickets they
    handle, nothing of the calls; QA: nothing live.

    Asked for every published event and every client as the event is published (the bus's filter),
    so the role is looked at once, here, not per message.
    """

    principal: Principal
    seat_of: SeatOf
    scope: CentreScope = field(default_factory=CentreScope)
    seat_queues: SeatQueues = lambda _seat: frozenset()
    my_calls: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        role = self.principal.role
        self._sees_all = role in (Role.LEAD, Role.ADMIN)
        self._operator = role is Role.OPERATOR  # QA and departments follow no live call traffic
        self._department = self.principal.department_id if role is Role.DEPARTMENT else None
        self._username = self.principal.username

    def visible(self, msg: dict[str, Any]) -> bool:
        kind = msg.get("type")
        if kind in _EVERYONE:
            return True
        if self._sees_all:
            return self.scope.has_message(msg, self.seat_queues)
        if self._department is not None:
            return kind == "ticket_update" and self._department in msg.get("department_ids", ())
        if not self._operator:
            return False
        if kind == "queue_update":
            return self.scope.has_queue(msg.get("queue"))
        if kind in _CENTRE_WORK:
            return True
        seat = self.seat_of(self._username)
        call_id = msg.get("call_id")
        if seat and msg.get("seat") == seat:
            if call_id and kind == "screen_pop":
                self.my_calls.add(str(call_id))
            return True
        if kind == "alert":
            return bool(seat) and msg.get("ringing_seat") == seat
        # a pop that moved to another seat, an answer elsewhere: only for calls that popped here
        return kind == "call_update" and call_id in self.my_calls


def _same_origin(ws: WebSocket) -> bool:
    """Refuse cross-site websocket hijacking: a browser always sends Origin."""
    origin = ws.headers.get("origin")
    if origin is None:
        return True  # not a browser (tests, tools); the token still has to be valid
    host = ws.headers.get("host", "")
    return origin.split("://", 1)[-1] == host


@router.websocket("/ws")
async def websocket_endpoint(ws: WebSocket, since: int | None = None, epoch: str | None = None) -> None:
    principal = await run_in_threadpool(websocket_principal, ws)
    if principal is None or not _same_origin(ws):
        await ws.close(code=1008, reason="未登录或来源不允许")
        return
    bus: Bus = ws.app.state.bus
    audience = Audience(principal, ws.app.state.seat_of, scope(ws.app, principal), seat_queues(ws.app))
    await ws.accept()
    pong = asyncio.Event()
    pong.set()
    sender = asyncio.create_task(_send_loop(ws, bus, audience, since, epoch, pong))
    watcher = asyncio.create_task(_watch_session(ws, principal))
    try:
        while True:
            msg = await ws.receive_json()
            if isinstance(msg, dict) and msg.get("type") == "pong":
                pong.set()
            elif isinstance(msg, dict) and msg.get("type") == "ping":
                await ws.send_json({"type": "pong"})
    except (WebSocketDisconnect, RuntimeError, ValueError):
        pass
    finally:
        for task in (sender, watcher):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def _watch_session(ws: WebSocket, principal: Principal) -> None:
    """Close the socket once its session ends (sign-out, disabled, role changed, timed out) or
    the account now means someone else may see less: woken by every revocation in this process,
    and every ``RECHECK_S`` for those made elsewhere."""
    sessions = ws.app.state.sessions
    changed = asyncio.Event()
    loop = asyncio.get_running_loop()
    on_revoke = getattr(sessions, "on_revoke", None)
    unlisten = on_revoke(lambda: loop.call_soon_threadsafe(changed.set)) if on_revoke else None
    try:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), RECHECK_S)
            changed.clear()
            now = await run_in_threadpool(websocket_principal, ws)
            if now != principal:
                log.info("websocket of %s: session ended or changed, closing", principal.username)
                await ws.close(code=SESSION_ENDED, reason="会话已结束，请重新登录")
                return
    finally:
        if unlisten is not None:
            unlisten()


async def _send_loop(ws: WebSocket, bus: Bus, audience: Audience, since: int | None, epoch: str | None,
                     pong: asyncio.Event) -> None:
    def accept(env: Envelope) -> bool:
        return audience.visible(env.message())

    sub = bus.subscribe(accept=accept)  # before the replay, so nothing falls between the two
    sent = since if since is not None else bus.last_seq
    try:
        await ws.send_json({"type": "hello", "epoch": bus.epoch, "last_seq": bus.last_seq,
                            "user": audience.principal.username, "role": audience.principal.role.value})
        if since is not None:
            replay = await bus.replay(since, epoch)
            if replay.gap:
                await ws.send_json({"type": "resync", "seq": replay.last_seq, "epoch": replay.epoch})
                sent = replay.last_seq
            else:
                for env in replay.envelopes:
                    if accept(env):
                        sent = await _deliver(ws, env, sent)
        pinger = asyncio.create_task(_ping_loop(ws, pong))
        try:
            while True:
                try:
                    async for env in sub:  # already filtered for this audience as it was published
                        sent = await _deliver(ws, env, sent)
                except BusLagged as lag:
                    sub.close()
                    sub = bus.subscribe(accept=accept)
                    await ws.send_json({"type": "resync", "seq": bus.last_seq, "epoch": bus.epoch})
                    sent = max(sent, lag.last_seq)
        finally:
            pinger.cancel()
    finally:
        sub.close()


async def _deliver(ws: WebSocket, env: Envelope, sent: int) -> int:
    if env.seq <= sent:
        return sent  # already delivered by the replay
    await ws.send_text(env.text())
    return env.seq


async def _ping_loop(ws: WebSocket, pong: asyncio.Event) -> None:
    while True:
        await asyncio.sleep(PING_S)
        pong.clear()
        await ws.send_json({"type": "ping"})
        try:
            await asyncio.wait_for(pong.wait(), PONG_TIMEOUT_S)
        except TimeoutError:
            log.info("websocket of %s missed its pong: closing", ws.client)
            await ws.close(code=1001, reason="心跳超时")
            return
