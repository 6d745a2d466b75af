"""A client that speaks AudioSocket as Asterisk does (the uuid frame, then 20 ms slin frames), for
the listening node's tests and ``bench/live_transcribe.py``; what it sends is a real leg's audio.
The real Asterisk route is covered by ``tests/live/test_live_asterisk.py``."""

from __future__ import annotations

import asyncio
import socket
import struct
import time
import uuid
import wave
from dataclasses import dataclass, field
from pathlib import Path

from live import frames


def read_wav(path: Path | str) -> tuple[bytes, int]:
    with wave.open(str(path)) as w:
        return w.readframes(w.getnframes()), w.getframerate()


@dataclass
class Sent:
    """What one leg's client did: when each 20 ms frame went (monotonic), and what came back."""

    frames_sent: int = 0
    started: float = 0.0
    ended: float = 0.0
    echoed: int = 0  # frames received back (the node's silence)
    echoed_bytes: set[int] = field(default_factory=set)
    closed_by_peer: bool = False


async def stream_leg(host: str, port: int, leg: str | uuid.UUID, pcm: bytes, rate: int, *,
                     pace: float = 1.0, frame_ms: int = 20, linger_s: float = 0.0,
                     until: asyncio.Event | None = None, reset: bool = False) -> Sent:
    """Send ``pcm`` as AudioSocket frames, one every ``frame_ms / pace`` ms, then close (as
    Asterisk does when the spied leg hangs up).

    ``until``: after ``pcm``, silence frames at the same pace until it is set (a caller who stops
    talking but stays on the line: Asterisk's spy sends frames all along). ``reset``: close with a
    TCP reset, as the kernel does when Asterisk closes a socket whose incoming data it has not read
    (our echoed frames)."""
    out = Sent()
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(frames.hello(leg if isinstance(leg, uuid.UUID) else uuid.UUID(leg)))
    parser = frames.Reader()

    async def read_back() -> None:
        while True:
            data = await reader.read(65536)
            if not data:
                out.closed_by_peer = True
                return
            for f in parser.feed(data):
                if isinstance(f, frames.Audio):
                    out.echoed += 1
                    out.echoed_bytes.add(len(f.pcm))

    back = asyncio.create_task(read_back())
    step = rate * frame_ms // 1000 * 2
    out.started = time.monotonic()
    due = out.started

    async def send(chunk: bytes) -> None:
        nonlocal due
        writer.write(frames.audio(chunk, rate))
        out.frames_sent += 1
        due += frame_ms / 1000 / pace
        await writer.drain()
        await asyncio.sleep(max(0.0, due - time.monotonic()))

    try:
        for i in range(0, len(pcm), step):
            await send(pcm[i:i + step])
            if back.done():
                break
        while until is not None and not until.is_set() and not back.done():
            await send(b"\0" * step)
        out.ended = time.monotonic()
        if linger_s:
            await asyncio.sleep(linger_s)
    except ConnectionError:
        out.closed_by_peer = True
    finally:
        if reset:  # SO_LINGER on, zero seconds: close() sends RST instead of FIN
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.close()
        back.cancel()
        await asyncio.gather(back, return_exceptions=True)
    return out
