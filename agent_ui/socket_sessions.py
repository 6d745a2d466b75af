"""The sessions behind a node's open websockets, re-read together (``WS /ws`` closes a socket whose
session ended or now means something else).

Each socket re-read its own session every ``RECHECK_S``, and all of them at once after any revocation
made in this process. The consoles connect to a node together (its start, a failover of the node
beside it), so their re-reads came due together too: 100 sockets on a node were 100 reads on the
thread pool in the same instant every 15 s, a twentieth of a web node's busy time in a burst of calls
(bench/screen_pop.py). Here one task reads the sessions of every open socket in one query, on the
same two occasions, and wakes only the sockets whose session no longer stands as it did.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from fastapi.concurrency import run_in_threadpool

from hotline.identity import Principal, socket_principals

log = logging.getLogger(__name__)

RECHECK_S = 15.0  # a revocation made by another process is seen this late at most


class SocketSessions:
    """One per app (:meth:`of`); :meth:`until_ended` returns once a socket's session ends or changes."""

    def __init__(self, sessions: Any, recheck_s: float = RECHECK_S) -> None:
        self.sessions, self.recheck_s = sessions, recheck_s
        self._open: dict[object, tuple[str, Principal, asyncio.Event]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        on_revoke = getattr(sessions, "on_revoke", None)
        if on_revoke is not None:  # a revocation here: every open socket re-checked now, in one read
            on_revoke(self._revoked)

    @classmethod
    def of(cls, app: Any) -> SocketSessions:
        watch = getattr(app.state, "socket_sessions", None)
        if watch is None:
            watch = app.state.socket_sessions = cls(getattr(app.state, "sessions", None))
        return watch

    def _revoked(self) -> None:  # on the thread that revoked
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._changed.set)

    async def until_ended(self, token: str, principal: Principal) -> None:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # an app served by another loop (tests): a watch of its own there
            self._loop, self._open, self._changed, self._task = loop, {}, asyncio.Event(), None
        ended = asyncio.Event()
        key = object()
        sockets, changed = self._open, self._changed
        sockets[key] = (token, principal, ended)
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._run(sockets, changed), name="socket-sessions")
        try:
            await ended.wait()
        finally:
            sockets.pop(key, None)
            if not sockets:  # the last socket gone: the task ends now, not after its wait (nor at loop close)
                changed.set()

    async def _run(self, sockets: dict[object, tuple[str, Principal, asyncio.Event]], changed: asyncio.Event) -> None:
        while sockets:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), self.recheck_s)
            changed.clear()
            try:
                watched = list(sockets.values())
                if not watched:
                    return
                now = await run_in_threadpool(socket_principals, self.sessions, {t for t, _, _ in watched})
                for token, principal, ended in watched:
                    if now.get(token) != principal:
                        ended.set()
            except Exception:  # the database away, say: the sockets stay, as a page's requests would fail
                log.exception("websocket sessions: re-check failed; trying again in %.0f s", self.recheck_s)
