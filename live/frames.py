"""AudioSocket framing, without I/O: bytes in, typed frames out (and the frames we send back).

A frame is one kind byte, a 2-byte big-endian payload length, then the payload. What Asterisk
22.10 sends an ``AudioSocket/host:port/<uuid>/c(slin16)`` channel (checked with a logging server
before relying on the documentation, see ``docs/deploy.md``, Live transcript):

- ``0x01`` first, 16 bytes: the uuid we put in the channel string (binary), which names the leg;
- ``0x12``, 640 bytes: 20 ms of signed 16-bit little-endian mono at 16 kHz (``0x10`` 8 kHz
  without a codec; the rest of the table is the documentation's: 0x11 12 kHz … 0x18 192 kHz);
- nothing at the end: Asterisk closes the socket (``0x00`` hang-up is in the protocol, never seen).

``0x03`` (DTMF, one ASCII digit) and ``0xff`` (error, a code byte) are parsed too, so a frame
Asterisk may send one day is a typed event, not a crash; an unknown kind is :class:`Unknown`.
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass

HANGUP, UUID, DTMF, ERROR = 0x00, 0x01, 0x03, 0xFF
RATES = {0x10: 8000, 0x11: 12000, 0x12: 16000, 0x13: 24000, 0x14: 32000,
         0x15: 44100, 0x16: 48000, 0x17: 96000, 0x18: 192000}
KIND_OF_RATE = {rate: kind for kind, rate in RATES.items()}
HEADER = struct.Struct(">BH")
MAX_PAYLOAD = 0xFFFF


class FrameError(ValueError):
    """The stream is not AudioSocket (a payload that cannot be what its kind says)."""


@dataclass(frozen=True, slots=True)
class Hello:
    """The leg's id: the first frame of every connection."""

    id: uuid.UUID


@dataclass(frozen=True, slots=True)
class Audio:
    rate: int
    pcm: bytes  # 16-bit LE mono

    @property
    def seconds(self) -> float:
        return len(self.pcm) / 2 / self.rate


@dataclass(frozen=True, slots=True)
class Dtmf:
    digit: str


@dataclass(frozen=True, slots=True)
class Hangup:
    pass


@dataclass(frozen=True, slots=True)
class Failed:
    code: int  # Asterisk's error byte (0x01 hang-up, 0x02 frame forwarding, 0x04 memory)


@dataclass(frozen=True, slots=True)
class Unknown:
    kind: int
    payload: bytes


Frame = Hello | Audio | Dtmf | Hangup | Failed | Unknown


class Reader:
    """Frames out of a byte stream fed as it arrives (a frame may span reads, a read many frames)."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[Frame]:
        self._buf += data
        out: list[Frame] = []
        at = 0
        while len(self._buf) - at >= HEADER.size:
            kind, length = HEADER.unpack_from(self._buf, at)
            end = at + HEADER.size + length
            if len(self._buf) < end:
                break
            out.append(parse(kind, bytes(self._buf[at + HEADER.size:end])))
            at = end
        del self._buf[:at]
        return out

    @property
    def pending(self) -> int:
        """Bytes of a frame not complete yet (a stream that ends with some was cut mid-frame)."""
        return len(self._buf)


def parse(kind: int, payload: bytes) -> Frame:
    if kind in RATES:
        if len(payload) % 2:
            raise FrameError(f"audio frame 0x{kind:02x} of {len(payload)} bytes: not 16-bit samples")
        return Audio(RATES[kind], payload)
    if kind == UUID:
        if len(payload) != 16:
            raise FrameError(f"uuid frame of {len(payload)} bytes, not 16")
        return Hello(uuid.UUID(bytes=payload))
    if kind == HANGUP:
        return Hangup()
    if kind == DTMF:
        return Dtmf(payload[:1].decode("ascii", "replace"))
    if kind == ERROR:
        return Failed(payload[0] if payload else 0)
    return Unknown(kind, payload)


def kind_of(frame: Frame) -> int:
    """The kind byte a frame came with."""
    if isinstance(frame, Audio):
        return KIND_OF_RATE[frame.rate]
    if isinstance(frame, Unknown):
        return frame.kind
    return {Hello: UUID, Dtmf: DTMF, Hangup: HANGUP, Failed: ERROR}[type(frame)]


def encode(kind: int, payload: bytes = b"") -> bytes:
    if len(payload) > MAX_PAYLOAD:
        raise FrameError(f"payload of {len(payload)} bytes does not fit a frame")
    return HEADER.pack(kind, len(payload)) + payload


def audio(pcm: bytes, rate: int) -> bytes:
    return encode(KIND_OF_RATE[rate], pcm)


def hello(leg: uuid.UUID) -> bytes:
    return encode(UUID, leg.bytes)


def silence(rate: int, ms: int = 20) -> bytes:
    """``ms`` of silence in the stream's own format: what we send back every 20 ms, so ChanSpy's
    wait on our channel wakes and notices the spied leg hang up (a server that sends nothing left a
    spy, and the citizen's channel with it, up for 90 s in the spike)."""
    return audio(b"\0" * (rate * ms // 1000 * 2), rate)
