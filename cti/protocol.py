"""AMI wire protocol: bytes in, frames out. No I/O.

AMI is a stream of frames, each a block of ``Key: Value\\r\\n`` lines closed by an empty line,
preceded once by a greeting line (``Asterisk Call Manager/<version>\\r\\n``).

Frames are split on **bytes** and only a complete frame is decoded. That is the incremental
UTF-8 decoding the AMI link needs: ``\\r\\n\\r\\n`` can never occur inside a multi-byte UTF-8
sequence, so a Chinese caller name cut between two TCP reads is reassembled before any
decoding happens (panoramisk decodes every chunk on its own with ``errors='ignore'`` and
loses the cut character).

>>> p = FrameParser()
>>> p.feed(b"Asterisk Call Manager/9.0.0\\r\\nResponse: Success\\r\\nMessage: Authentication accepted\\r\\n")
[]
>>> p.version
'9.0.0'
>>> name = "张三".encode()
>>> p.feed(b"\\r\\nEvent: Newchannel\\r\\nCallerIDName: " + name[:4])
[Frame(Response: Success)]
>>> [f] = p.feed(name[4:] + b"\\r\\nChanVariable: A=1\\r\\nChanVariable: B=2\\r\\n\\r\\n")
>>> f["CallerIDName"], f["ChanVariable"]
('张三', ['A=1', 'B=2'])
>>> p.feed(b"no colon here\\r\\n\\r\\n"), p.malformed
([], 1)
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

log = logging.getLogger(__name__)

SEP = b"\r\n\r\n"
GREETING = b"Asterisk Call Manager/"
#: a frame larger than this without a terminator is garbage (or an attack): drop it
MAX_FRAME_BYTES = 1 << 20

Value = str | list[str]


class Frame:
    """One AMI frame: its headers (repeated headers as a list, in order) and free text lines.

    Plain ``__slots__`` class rather than a dataclass: the ingest path builds tens of
    thousands of these per second.
    """

    __slots__ = ("headers", "lines")

    def __init__(self, headers: dict[str, Value], lines: list[str] | None = None) -> None:
        self.headers = headers
        self.lines = lines or []  # body lines without "Key: " (old-style Command output)

    @property
    def event(self) -> str | None:
        v = self.headers.get("Event")
        return v if isinstance(v, str) else None

    @property
    def response(self) -> str | None:
        v = self.headers.get("Response")
        return v if isinstance(v, str) else None

    @property
    def action_id(self) -> str | None:
        v = self.headers.get("ActionID")
        return v if isinstance(v, str) else None

    def __getitem__(self, key: str) -> Value:
        return self.headers[key]

    def get(self, key: str, default: str = "") -> Value:
        return self.headers.get(key, default)

    def __contains__(self, key: str) -> bool:
        return key in self.headers

    def __repr__(self) -> str:
        kind = "Event" if self.event is not None else "Response"
        return f"Frame({kind}: {self.headers.get(kind)})"


def parse_frame(text: str) -> Frame | None:
    """Turn one decoded frame (without its terminator) into a :class:`Frame`.

    Returns ``None`` when the frame is neither an event nor a response.

    >>> parse_frame("Event: Hangup\\r\\nCause-txt: Normal Clearing\\r\\nEmpty:").headers
    {'Event': 'Hangup', 'Cause-txt': 'Normal Clearing', 'Empty': ''}
    >>> parse_frame("garbage") is None
    True
    """
    headers: dict[str, Value] = {}
    lines: list[str] | None = None
    for line in text.split("\r\n"):
        key, sep, value = line.partition(": ")
        if not sep:
            if line.endswith(":") and " " not in line:  # "Key:" with an empty value
                key, value = line[:-1], ""
            else:
                if line:
                    if lines is None:
                        lines = []
                    lines.append(line)
                continue
        old = headers.get(key)
        if old is None:
            headers[key] = value
        elif isinstance(old, list):
            old.append(value)
        else:
            headers[key] = [old, value]
    if "Event" not in headers and "Response" not in headers:
        return None
    return Frame(headers, lines)


class FrameParser:
    """Incremental AMI frame parser. Feed it whatever TCP delivers; it never raises.

    Malformed frames (undecodable bytes, no ``Event``/``Response``, oversized) are logged and
    counted in :attr:`malformed`; undecodable bytes are replaced (U+FFFD), the frame is kept.
    """

    def __init__(self) -> None:
        self._buf = b""
        self._greeting_pending = True
        self.version: str | None = None
        self.frames = 0
        self.malformed = 0
        self.decode_errors = 0

    def reset(self) -> None:
        """Forget buffered bytes: a new connection starts with a new greeting."""
        self._buf = b""
        self._greeting_pending = True

    def feed(self, data: bytes) -> list[Frame]:
        """Add bytes; return the frames they complete (possibly none)."""
        return list(self.iter_feed(data))

    def iter_feed(self, data: bytes) -> Iterator[Frame]:
        buf = self._buf + data if self._buf else data
        if self._greeting_pending:
            buf = self._take_greeting(buf)
            if self._greeting_pending:
                self._buf = buf
                return
        end = buf.rfind(SEP)
        if end < 0:
            if len(buf) > MAX_FRAME_BYTES:
                self.malformed += 1
                log.warning("AMI: dropped %d bytes without a frame terminator", len(buf))
                buf = b""
            self._buf = buf
            return
        self._buf = buf[end + 4 :]
        for raw in buf[:end].split(SEP):
            frame = self._decode(raw)
            if frame is not None:
                yield frame

    def _take_greeting(self, buf: bytes) -> bytes:
        stripped = buf.lstrip(b"\r\n")
        if not stripped:
            return stripped
        if stripped.startswith(GREETING):
            eol = stripped.find(b"\r\n")
            if eol < 0:
                return stripped  # greeting not complete yet
            self.version = stripped[len(GREETING) : eol].decode("ascii", "replace").strip()
            self._greeting_pending = False
            return stripped[eol + 2 :]
        if len(stripped) < len(GREETING) and GREETING.startswith(stripped):
            return stripped  # could still become the greeting
        self._greeting_pending = False  # no greeting (e.g. a mid-stream transcript)
        return buf

    def _decode(self, raw: bytes) -> Frame | None:
        if raw.startswith(b"\r\n"):  # Asterisk sometimes sends a stray EOL between frames
            raw = raw.lstrip(b"\r\n")
            if not raw:
                return None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            self.decode_errors += 1
            self.malformed += 1
            text = raw.decode("utf-8", "replace")
            log.warning("AMI: frame with invalid UTF-8: %r", raw[:200])
        frame = parse_frame(text)
        if frame is None:
            self.malformed += 1
            log.warning("AMI: frame without Event/Response: %r", text[:200])
            return None
        self.frames += 1
        return frame
