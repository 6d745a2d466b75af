"""The asyncio FastAGI server: one task per connection, routed by the script path.

Every read has a timeout; a client that sends half a header (or nothing) only ever holds its
own task, never the loop (panoramisk's server spins on such a client). Sessions beyond the
cap are closed at once: Asterisk then carries on in the dialplan, so the call still reaches
the queue. Log lines are ``agi <event> key=value …``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping

from agi.channel import AgiChannel, AgiCommandError, AgiHangup, AgiTimeout, Channel, Deadline
from agi.protocol import ProtocolError, Splitter, parse_env
from hotline.tasks import LISTEN_BACKLOG

log = logging.getLogger("agi")

Handler = Callable[[Channel], Awaitable[None]]


def kv(event: str, **fields: object) -> str:
    """A structured log line: ``event k=v k2="v 2"`` (values quoted when they hold spaces)."""
    parts = [event]
    for k, v in fields.items():
        text = str(v)
        parts.append(f"{k}={text!r}" if (not text or any(c in text for c in ' ="')) else f"{k}={text}")
    return " ".join(parts)


class FastAgiServer:
    """Serve ``routes`` (script name → handler) on ``host:port`` (port 0 picks a free one)."""

    def __init__(self, routes: Mapping[str, Handler], host: str = "127.0.0.1", port: int = 4573, *,
                 max_sessions: int = 200, header_timeout: float = 2.0, read_timeout: float = 10.0) -> None:
        self.routes = dict(routes)
        self.host, self.port = host, port
        self.max_sessions = max_sessions
        self.header_timeout = header_timeout
        self.read_timeout = read_timeout
        self._server: asyncio.Server | None = None
        self._sessions: set[asyncio.Task[None]] = set()
        self.served = 0  # sessions that reached a handler
        self.refused = 0  # over the cap, unknown script, bad or missing header

    @property
    def active(self) -> int:
        return len(self._sessions)

    async def start(self) -> None:
        # a burst of calls connects at once: its SYNs wait in the listen queue, not dropped (LISTEN_BACKLOG)
        self._server = await asyncio.start_server(self._accept, self.host, self.port, reuse_address=True,
                                                  limit=65536, backlog=max(LISTEN_BACKLOG, self.max_sessions))
        self.port = self._server.sockets[0].getsockname()[1]
        log.info(kv("listening", host=self.host, port=self.port, routes=",".join(sorted(self.routes))))

    async def serve_forever(self) -> None:
        if self._server is None:
            await self.start()
        assert self._server is not None
        try:
            await asyncio.Event().wait()
        finally:
            await self.stop()

    async def stop(self, grace: float = 5.0) -> None:
        """Stop accepting, let running sessions finish for ``grace`` seconds, then cut them."""
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None
        if self._sessions:
            _, pending = await asyncio.wait(set(self._sessions), timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=1)
        log.info(kv("stopped", served=self.served, refused=self.refused))

    async def __aenter__(self) -> FastAgiServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        if len(self._sessions) >= self.max_sessions:
            self.refused += 1
            log.warning(kv("refused", reason="max_sessions", active=len(self._sessions)))
            _close(writer)
            return
        self._sessions.add(task)
        deadline = Deadline(reader)  # every read of the session, the header's and the replies', on one timer
        try:
            await self._session(reader, writer, deadline)
        except asyncio.CancelledError:
            pass  # stop() cut it: the session ends here (asyncio would log a cancelled handler as an error)
        finally:
            deadline.close()
            self._sessions.discard(task)
            _close(writer)

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, deadline: Deadline) -> None:
        started = time.perf_counter()
        split = Splitter()
        deadline.arm(self.header_timeout)
        try:
            while (lines := split.header()) is None:
                if split.eof:
                    self.refused += 1
                    log.info(kv("dropped", reason="eof_in_header", peer=_peer(writer), partial=split.pending))
                    return
                split.feed(await reader.read(4096))
            deadline.disarm()
            env = parse_env(lines)
        except TimeoutError:
            self.refused += 1
            log.info(kv("dropped", reason="header_timeout", peer=_peer(writer)))
            return
        except (ProtocolError, ConnectionError, OSError) as exc:
            self.refused += 1
            log.info(kv("dropped", reason="bad_header", peer=_peer(writer), error=str(exc)[:80]))
            return
        handler = self.routes.get(env.script)
        fields = {"script": env.script, "uid": env.uniqueid, "channel": env.channel}
        if handler is None:
            self.refused += 1
            log.warning(kv("unknown_script", **fields))
            return
        self.served += 1
        channel = AgiChannel(env, reader, writer, split, self.read_timeout, deadline)
        outcome = "done"
        try:
            await handler(channel)
        except AgiHangup:
            outcome = "hangup"  # the caller's right; nothing to report
        except AgiTimeout:
            outcome = "timeout"
            log.warning(kv("timeout", **fields))
        except AgiCommandError as exc:
            outcome = "command_error"
            log.error(kv("command_error", error=str(exc)[:200], **fields))
        except ProtocolError as exc:
            outcome = "protocol_error"
            log.warning(kv("protocol_error", error=str(exc)[:120], **fields))
        except asyncio.CancelledError:
            outcome = "cancelled"
            raise
        except Exception:
            outcome = "error"
            log.exception(kv("flow_failed", **fields))
        finally:
            if log.isEnabledFor(logging.INFO):
                ms = f"{(time.perf_counter() - started) * 1000:.1f}"
                log.info(kv("session", outcome=outcome, ms=ms, **fields))


def _peer(writer: asyncio.StreamWriter) -> object:
    return writer.get_extra_info("peername")  # uvloop asks the socket each time: only for the log lines that need it


def _close(writer: asyncio.StreamWriter) -> None:
    # the transport sends what is buffered, then closes: nothing is left to wait for here
    with contextlib.suppress(Exception):
        writer.close()
