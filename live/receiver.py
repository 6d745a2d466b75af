"""The AudioSocket server: Asterisk connects once per spied leg and streams its audio here.

Each connection: the uuid frame names the leg (the bridge announced it on the bus a moment before:
:meth:`Legs.expect`; a uuid nobody announced is waited for ``claim_s``, then refused); audio frames
go to the leg's recogniser; every audio frame is answered with a silent frame of the same size, so
ChanSpy on the other end wakes every 20 ms and notices when the spied leg hangs up (without it a
spy, and the citizen's channel with it, stayed up 90 s in the spike). Every read has a timeout: a
connection silent for ``idle_s`` is closed, and so is the leg.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Protocol

from hotline.tasks import LISTEN_BACKLOG
from live import frames
from live.legs import Leg

log = logging.getLogger(__name__)
# why a leg ended, as its sink is told: the reasons of a leg its call ended (Asterisk hung up or closed the
# spy, or this node hung it up) ...
CLEAN_ENDS = frozenset({"eof", "hangup", "hung up"})
# ... and the beginnings of those of a leg that broke off: a reset, or a close half-way through a frame.
# Asterisk closing a spy whose socket still holds our unread echo frames makes the kernel send a reset,
# not an end of file: the node asks the bus whether the call ended then (live.node)
BROKEN_ENDS = ("connection:", "cut mid-frame")


class Sink(Protocol):
    """What the server hands one leg's audio to (the node's recogniser for it)."""

    def audio(self, pcm: bytes, rate: int) -> None: ...

    def ended(self, why: str) -> None: ...


Claim = Callable[[str], Awaitable[Sink | None]]  # uuid → the leg's sink, or None (refused)


class Receiver:
    def __init__(self, claim: Claim, *, host: str = "127.0.0.1", port: int = 0, hello_s: float = 5.0,
                 idle_s: float = 10.0) -> None:
        self.claim, self.host, self.port = claim, host, port
        self.hello_s, self.idle_s = hello_s, idle_s
        self._server: asyncio.Server | None = None
        self._conns: dict[str, asyncio.StreamWriter] = {}  # uuid → its connection (closed on hang-up)
        self._hung: set[str] = set()  # legs hung up here: whatever the last read saw, they ended with their call
        self.refused = 0
        self.bad_frames = 0
        # (kind byte, payload length) of every frame after the uuid: what Asterisk really sends, not
        # what the documentation says (22.10: 0x10 × 320 for a channel without a codec)
        self.kinds: Counter[tuple[int, int]] = Counter()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port, backlog=LISTEN_BACKLOG)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for w in list(self._conns.values()):
                w.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
            self._server = None

    def hang_up(self, leg_id: str) -> bool:
        """Close a leg's connection (the call ended and its spy lingers: Asterisk then ends it)."""
        w = self._conns.get(leg_id)
        if w is None:
            return False
        self._hung.add(leg_id)
        w.close()
        return True

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        parser = frames.Reader()
        leg_id, sink, why = "", None, "closed"
        try:
            got = await self._frames(reader, parser, self.hello_s)
            if not got or not isinstance(got[0], frames.Hello):
                why = f"first frame {type(got[0]).__name__ if got else 'none'}, not the uuid"
                self.refused += 1
                log.warning("live: AudioSocket connection refused: %s", why)
                return
            leg_id = str(got[0].id)
            sink = await self.claim(leg_id)
            if sink is None:
                self.refused += 1
                log.warning("live: AudioSocket leg %s was not assigned here; refused", leg_id)
                return
            self._conns[leg_id] = writer
            pending = got[1:]
            first = True
            while True:
                for f in pending:
                    kind = frames.kind_of(f)
                    self.kinds[kind, len(getattr(f, "pcm", getattr(f, "payload", b"")))] += 1
                    if first:
                        first = False
                        log.info("live: leg %s: first frame kind 0x%02x (%s)", leg_id, kind, type(f).__name__)
                    if writer.is_closing():  # hung up here (the call ended): what is left is not read
                        why = "hung up"
                        return
                    if isinstance(f, frames.Audio):
                        sink.audio(f.pcm, f.rate)
                        writer.write(frames.audio(b"\0" * len(f.pcm), f.rate))
                    elif isinstance(f, frames.Hangup):
                        why = "hangup"
                        return
                    elif isinstance(f, frames.Failed):
                        why = f"asterisk error 0x{f.code:02x}"
                        return
                pending = await self._frames(reader, parser, self.idle_s)
                if not pending:
                    why = "eof" if not parser.pending else f"cut mid-frame ({parser.pending} bytes)"
                    return
        except TimeoutError:
            why = "timeout"
            if sink is None:  # never said which leg it was (not Asterisk, or a stuck one)
                self.refused += 1
                log.warning("live: AudioSocket connection refused: no uuid frame in %.0f s", self.hello_s)
        except frames.FrameError as exc:
            self.bad_frames += 1
            why = f"bad frame: {exc}"
            log.warning("live: leg %s: %s", leg_id or "?", exc)
        except (ConnectionError, OSError, RuntimeError) as exc:  # uvloop: RuntimeError on a closed transport
            why = f"connection: {exc}"
        finally:
            if leg_id:
                self._conns.pop(leg_id, None)
                if leg_id in self._hung:  # the read that follows our close ends any way (eof, half a frame)
                    self._hung.discard(leg_id)
                    why = "hung up"
            if sink is not None:
                sink.ended(why)
            writer.close()

    @staticmethod
    async def _frames(reader: asyncio.StreamReader, parser: frames.Reader, timeout: float) -> list[frames.Frame]:
        """The next frames (at least one), or [] at the end of the stream; TimeoutError if none came."""
        while True:
            data = await asyncio.wait_for(reader.read(65536), timeout)
            if not data:
                return []
            got = parser.feed(data)
            if got:
                return got


__all__ = ["BROKEN_ENDS", "CLEAN_ENDS", "Leg", "Receiver", "Sink"]
