"""The channel the flows talk to: a small interface, and its FastAGI implementation.

Flows only see :class:`Channel`; unit tests give them a fake one (tests/agi/fakes.py). The
real one writes quoted command lines and reads replies through :class:`protocol.Splitter`,
with a timeout on every read.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

from agi.protocol import MAX_COMMAND, AgiEnv, Reply, Splitter, command

_NAME = re.compile(r"_{0,2}[A-Z][A-Z0-9_]*")
_ARRAY_UNSAFE = re.compile(r'["\\()]')  # what ARRAY() would alter; a search in C, not a set per value
_ARRAY_SAFE = str.maketrans({'"': "＂", "\\": "＼", "(": "（", ")": "）"})


def array_assignment(values: dict[str, str]) -> tuple[str, str]:
    """One ``SET VARIABLE`` for many: ``ARRAY(A,B)`` = ``"a","b"``. Asterisk splits the value on
    commas outside quotes and parentheses and drops the quotes, so quotes, backslashes and
    parentheses inside a value become their full-width forms.

    >>> array_assignment({"__HL_LOCATION": '山东省"菏泽"(市)', "__HL_FLAGS": "repeat,overdue"})
    ('ARRAY(__HL_LOCATION,__HL_FLAGS)', '"山东省＂菏泽＂（市）","repeat,overdue"')
    """
    for name in values:
        if not _NAME.fullmatch(name):
            raise ValueError(f"bad variable name {name!r}")
    return (f"ARRAY({','.join(values)})", ",".join(f'"{_array_safe(str(v))}"' for v in values.values()))


_NEEDS_MORE = re.compile(r'["\\()\x00-\x1f\x7f]')  # what quoting would escape or ARRAY() alter


@lru_cache(maxsize=256)
def _name_ok(name: str) -> bool:
    return _NAME.fullmatch(name) is not None


def array_command(values: dict[str, str]) -> bytes:
    """``command("SET VARIABLE", *array_assignment(values))``, written out in one go when no value
    needs more than its quotes (the usual case: names, digits, Chinese text): the general path
    searches and escapes every value twice, on the path every call waits on.

    >>> v = {"HL_QTIMEOUT": "120", "__HL_LOCATION": "山东省菏泽市", "__HL_FLAGS": "repeat,vip"}
    >>> array_command(v) == command("SET VARIABLE", *array_assignment(v))
    True
    """
    for name in values:
        if not _name_ok(name):
            raise ValueError(f"bad variable name {name!r}")
    if any(_NEEDS_MORE.search(v) for v in values.values()):
        return command("SET VARIABLE", *array_assignment(values))
    line = ('SET VARIABLE "ARRAY(' + ",".join(values) + ')" "\\"' + '\\",\\"'.join(values.values())
            + '\\""\n').encode()
    return line if len(line) <= MAX_COMMAND else command("SET VARIABLE", *array_assignment(values))


def _array_safe(text: str) -> str:
    """Most values hold none of ``"\\()``: a search in C spares translating them."""
    return text.translate(_ARRAY_SAFE) if _ARRAY_UNSAFE.search(text) else text


_ARRAY_BASE = len(command("SET VARIABLE", "ARRAY()", ""))


def _array_cost(name: str, value: str) -> int:
    """Bytes one plain value adds to an ARRAY command: its name, and its value quoted twice
    (``"v"`` inside the argument's quotes becomes ``\\"v\\"``), each with its comma.

    >>> v = {"__HL_LOCATION": "山东省菏泽市", "HL_FLAGS": "repeat,vip", "HL_X": "a b"}
    >>> _ARRAY_BASE + sum(_array_cost(k, x) for k, x in v.items()) - 2
    98
    >>> len(command("SET VARIABLE", *array_assignment(v)))
    98
    """
    return len(name) + len(value.encode()) + 6


def _batches(values: dict[str, str]) -> list[dict[str, str]]:
    """Split plain values (none of ``"\\()``) so that each ARRAY command fits Asterisk's line
    buffer (a cut line would lose values). Linear: each value's cost is added, not re-rendered.

    >>> [len(b) for b in _batches({f"V{i}": "菏" * 150 for i in range(8)})]
    [4, 4]
    """
    limit = MAX_COMMAND - 64
    # the usual case, at a glance: no character is more than 4 bytes, so if all fit even so,
    # all go in one command (what the loop below would find, one value at a time)
    if _ARRAY_BASE + len("".join(values)) + 4 * len("".join(values.values())) + 6 * len(values) <= limit:
        return [values] if values else []
    out: list[dict[str, str]] = []
    cur: dict[str, str] = {}
    size = _ARRAY_BASE - 2  # the first value has no comma before it in either list
    for k, v in values.items():
        cost = _array_cost(k, v)
        if cur and size + cost > limit:
            out.append(cur)
            cur, size = {}, _ARRAY_BASE - 2
        cur[k] = v
        size += cost
    return [*out, cur] if cur else out


class Deadline:
    """The timeout of every read of one session, on one timer.

    ``asyncio.timeout`` around each read costs a Timeout, a timer and its cancellation per reply,
    on the path every call waits on; here arming a read sets a number, and the timer is only
    moved when it fires before that number. At the deadline the reader gets a ``TimeoutError``,
    which the pending (or next) read raises: the session ends there.
    """

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self._reader = reader
        self._loop = asyncio.get_running_loop()
        self._at: float | None = None
        self._timer: asyncio.TimerHandle | None = None

    def arm(self, seconds: float) -> None:
        """Reads must be done within ``seconds`` from now (until disarmed or armed again)."""
        self._at = at = self._loop.time() + seconds
        if self._timer is None or self._timer.when() > at:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = self._loop.call_at(at, self._fire)

    def disarm(self) -> None:
        self._at = None

    def _fire(self) -> None:
        self._timer = None
        if self._at is None:
            return
        if self._loop.time() < self._at:  # armed again, later, since the timer was set
            self._timer = self._loop.call_at(self._at, self._fire)
        else:
            self._reader.set_exception(TimeoutError())

    def close(self) -> None:
        self._at = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class AgiHangup(Exception):
    """The caller hung up (``HANGUP``, ``511``, ``result=-1`` or the socket closed)."""


class AgiTimeout(Exception):
    """Asterisk did not answer within the read timeout."""


class AgiCommandError(Exception):
    """Asterisk refused a command (510/520): a bug on our side, logged, never the caller's fault."""


@dataclass(frozen=True)
class Recorded:
    """What ``RECORD FILE`` wrote: how it ended, and how much (8 kHz samples)."""

    ended_by: str  # dtmf | timeout (time up or silence) | hangup | error
    samples: int

    @property
    def seconds(self) -> float:
        return self.samples / 8000


class Channel(Protocol):
    env: AgiEnv

    async def get_variable(self, name: str) -> str: ...

    async def set_variables(self, values: dict[str, str]) -> None: ...

    async def play(self, *sounds: str) -> None: ...

    async def get_data(self, sound: str, timeout_ms: int, max_digits: int) -> str: ...

    async def exec(self, app: str, args: str) -> None: ...

    async def record(self, path: str, max_ms: int, silence_s: int) -> Recorded: ...


class AgiChannel:
    """One FastAGI session's channel over an asyncio stream pair."""

    def __init__(self, env: AgiEnv, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 splitter: Splitter, read_timeout: float = 10.0, deadline: Deadline | None = None) -> None:
        self.env = env
        self._reader, self._writer, self._split = reader, writer, splitter
        self.read_timeout = read_timeout
        self._deadline = deadline  # the server's, shared with the header read; else made on first use
        self.hung_up = False

    async def _reply(self, timeout: float) -> Reply:
        if self._deadline is None:
            self._deadline = Deadline(self._reader)
        self._deadline.arm(timeout)
        try:
            while True:
                reply = self._split.reply()
                if reply is not None:
                    if reply.hangup:
                        self.hung_up = True  # the reply to the pending command still follows
                        continue
                    return reply
                if self._split.eof:
                    raise AgiHangup("connection closed")
                try:
                    data = await self._reader.read(4096)
                except TimeoutError:
                    raise AgiTimeout("no reply from Asterisk") from None
                except (ConnectionError, OSError):
                    raise AgiHangup("connection lost") from None
                self._split.feed(data)
        finally:
            self._deadline.disarm()

    async def _send(self, lines: list[bytes], extra_timeout: float = 0.0) -> list[Reply]:
        """Write the lines and read one reply each (one line at a time for Asterisk: see set_variables)."""
        if self.hung_up:
            raise AgiHangup("channel hung up")
        try:
            self._writer.write(b"".join(lines))
            await self._writer.drain()
        except (ConnectionError, OSError):
            raise AgiHangup("connection lost") from None
        replies = [await self._reply(self.read_timeout + extra_timeout) for _ in lines]
        for r in replies:
            if r.code == 511:
                self.hung_up = True
                raise AgiHangup(r.text)
            if r.code in (510, 520):
                raise AgiCommandError(r.text)
        return replies

    async def command(self, verb: str, *args: object, extra_timeout: float = 0.0) -> Reply:
        (reply,) = await self._send([command(verb, *args)], extra_timeout)
        return reply

    async def get_variable(self, name: str) -> str:
        reply = await self.command("GET FULL VARIABLE", "${" + name + "}")
        return reply.data or "" if reply.result == 1 else ""

    async def set_variables(self, values: dict[str, str]) -> None:
        # Never pipelined: res_agi reads commands through a stdio buffer and only looks for the
        # next one when the socket is readable again, so a second line in flight stalls (seen on
        # Asterisk 22). Several variables go in one command instead, through ARRAY(); a value
        # ARRAY would alter (quotes, backslashes, parentheses) goes alone, exactly as it is.
        plain = {k: str(v) for k, v in values.items() if not _ARRAY_UNSAFE.search(str(v))}
        alone = [(k, v) for k, v in values.items() if k not in plain]
        for batch in _batches(plain):
            if len(batch) == 1:
                alone += list(batch.items())
            else:
                await self._send([array_command(batch)])
        for name, value in alone:
            await self._send([command("SET VARIABLE", name, value)])

    async def play(self, *sounds: str) -> None:
        if sounds:
            # Playback of a list in one command: one reply when all is said (or on hang-up)
            reply = await self.command("EXEC", "Playback", "&".join(sounds), extra_timeout=60 + 10 * len(sounds))
            if reply.result == -1 or self.hung_up:
                self.hung_up = True
                raise AgiHangup("hung up during playback")

    async def get_data(self, sound: str, timeout_ms: int, max_digits: int) -> str:
        reply = await self.command("GET DATA", sound, timeout_ms, max_digits,
                                   extra_timeout=60 + timeout_ms / 1000 * max(1, max_digits))
        if reply.result == -1 or self.hung_up:
            self.hung_up = True
            raise AgiHangup("hung up during input")
        # the raw text keeps leading zeros ("0012"); "*" may be among the digits
        return "".join(ch for ch in reply.value if ch.isdigit() or ch in "*#")

    async def exec(self, app: str, args: str) -> None:
        reply = await self.command("EXEC", app, args)
        if reply.result == -1:
            self.hung_up = True
            raise AgiHangup(f"hung up during {app}")

    async def record(self, path: str, max_ms: int, silence_s: int) -> Recorded:
        """A beep, then record ``path``.wav until "#", ``silence_s`` of silence, ``max_ms`` or a hang-up.

        A caller who hangs up to end the message is the usual case: what was said is kept and
        reported, not raised (the channel is marked hung up, so the next command raises).
        """
        reply = await self.command("RECORD FILE", path, "wav", "#", max_ms, 0, "BEEP", f"s={silence_s}",
                                   extra_timeout=max_ms / 1000 + 30)
        endpos = reply.extra.get("endpos", "")
        samples = int(endpos) if endpos.isascii() and endpos.isdigit() else 0  # "²".isdigit(), int("²") raises
        if reply.data == "hangup" or self.hung_up:
            self.hung_up = True
            return Recorded("hangup", samples)
        if reply.result is not None and reply.result < 0:
            return Recorded("error", samples)  # writefile: the spool is not writable
        return Recorded(reply.data if reply.data in ("dtmf", "timeout") else "timeout", samples)
