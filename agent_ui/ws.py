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

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from agent_ui.audience import Audience
from agent_ui.centre import scope, seat_queues
from agent_ui.hub import Hub
from agent_ui.socket_sessions import SocketSessions
from hotline.bus import BusLagged, Envelope
from hotline.identity import Principal, websocket_principal, websocket_token

log = logging.getLogger(__name__)
router = APIRouter()

PING_S = 15.0
PONG_TIMEOUT_S = 10.0
SESSION_ENDED = 4401  # pages go to the login page on this close code
def _same_origin(ws: WebSocket) -> bool:
    """Refuse cross-site websocket hijacking: a browser always sends Origin."""
    origin = ws.headers.get("origin")
    if origin is None:
        return True  # not a browser (tests, tools); the token still has to be valid
    host = ws.headers.get("host", "")
    return origin.split("://", 1)[-1] == host


@router.websocket("/ws")
async def websocket_endpoint(ws: WebSocket, since: int | None = None, epoch: str | None = None) -> None:
    principal = await websocket_principal(ws)
    if principal is None or not _same_origin(ws):
        await ws.close(code=1008, reason="未登录或来源不允许")
        return
    audience = Audience(principal, ws.app.state.seat_of, scope(ws.app, principal), seat_queues(ws.app))
    await ws.accept()
    pong = asyncio.Event()
    pong.set()
    sender = asyncio.create_task(_send_loop(ws, ws.app.state.hub, audience, since, epoch, pong))
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
    the account now means someone else may see less (agent_ui.socket_sessions)."""
    await SocketSessions.of(ws.app).until_ended(websocket_token(ws) or "", principal)
    log.info("websocket of %s: session ended or changed, closing", principal.username)
    await ws.close(code=SESSION_ENDED, reason="会话已结束，请重新登录")


async def _send_loop(ws: WebSocket, hub: Hub, audience: Audience, since: int | None, epoch: str | None,
                     pong: asyncio.Event) -> None:
    bus = hub.bus
    inbox = hub.join(audience)  # before the replay, so nothing falls between the two
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
                    if inbox.accept(env):
                        sent = await _deliver(ws, env, sent)
        pinger = asyncio.create_task(_ping_loop(ws, pong))
        try:
            while True:
                try:
                    async for env in inbox:  # only what this audience may see (the hub asked it)
                        sent = await _deliver(ws, env, sent)
                except BusLagged as lag:  # its queue was dropped: the page reloads its state instead
                    await ws.send_json({"type": "resync", "seq": bus.last_seq, "epoch": bus.epoch})
                    sent = max(sent, lag.last_seq)
        finally:
            pinger.cancel()
    finally:
        inbox.close()


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
