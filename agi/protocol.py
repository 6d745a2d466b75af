"""The FastAGI protocol, bytes in and typed values out; no I/O.

Asterisk opens a TCP connection, sends the ``agi_*`` environment (``key: value`` lines ended by
an empty line), then reads one command line at a time and answers each with a reply line:
``200 result=1 (value) endpos=8000``, ``510 Invalid or unknown command``, ``511 Command Not
Permitted on a dead channel…``, or a multi-line ``520-`` usage block. When the caller hangs up
it also sends a bare ``HANGUP`` line, at any moment, before the reply it belongs to.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field
from urllib.parse import urlsplit

MAX_LINE = 8192  # longer "lines" are garbage, not Asterisk: refuse instead of buffering forever
MAX_COMMAND = 2000  # Asterisk reads commands into a 2048-byte buffer (AGI_BUF_LEN)
MAX_HEADER_LINES = 512  # Asterisk sends some 25 agi_* lines (and the arguments)
MAX_USAGE_LINES = 200  # a 520- usage block is a few lines of help text
MAX_RESULT_DIGITS = 18  # result= is a digit, a DTMF string or a count; more digits is no number we use


class ProtocolError(ValueError):
    """The peer sent something that is not AGI."""


# --- the environment -------------------------------------------------------------------------


@dataclass(frozen=True)
class AgiEnv:
    """The ``agi_*`` block Asterisk sends first, with the few fields the flows use typed."""

    script: str  # "lookup" for agi://host:port/lookup?x=1
    query: str
    request: str
    channel: str
    uniqueid: str
    callerid: str  # "" when withheld or unknown
    calleridname: str
    context: str
    extension: str
    language: str
    args: tuple[str, ...]
    raw: dict[str, str] = field(repr=False, compare=False)


_UNKNOWN = {"", "unknown", "anonymous", "<unknown>", "restricted", "withheld", "private"}
# "agi_key: value" as Asterisk writes it: the key up to the first ":", then one space dropped
_ENV_LINE = re.compile(r"^(agi_\w*):(?: )?(.*)$", re.MULTILINE)


def parse_env(lines: list[str]) -> AgiEnv:
    """Turn the header lines (without the blank line) into an :class:`AgiEnv`.

    >>> env = parse_env(["agi_network: yes", "agi_network_script: lookup?a=1",
    ...                  "agi_request: agi://127.0.0.1:4573/lookup?a=1", "agi_callerid: unknown",
    ...                  "agi_uniqueid: 1700000000.7", "agi_arg_1: 0", "agi_arg_2: x: y"])
    >>> env.script, env.query, env.callerid, env.uniqueid, env.args
    ('lookup', 'a=1', '', '1700000000.7', ('0', 'x: y'))
    >>> parse_env(["no colon here"])
    Traceback (most recent call last):
    ...
    agi.protocol.ProtocolError: not an AGI header line: 'no colon here'
    >>> parse_env(["agi_request: agi://[::1/lookup"])
    Traceback (most recent call last):
    ...
    agi.protocol.ProtocolError: agi_request is no URL: 'agi://[::1/lookup'
    """
    pairs = _ENV_LINE.findall("\n".join(lines))  # Asterisk's own lines, all at once
    if len(pairs) == len(lines):
        raw = dict(pairs)
    else:  # something unusual (spaces around a key, a bad line): line by line, the same rules
        raw = {}
        for line in lines:
            key, sep, value = line.partition(":")
            key = key.strip()
            if not sep or not key.startswith("agi_"):
                raise ProtocolError(f"not an AGI header line: {line[:60]!r}")
            raw[key] = value[1:] if value.startswith(" ") else value
    request = raw.get("agi_request", "")
    script = raw.get("agi_network_script")
    if script is None:
        try:
            parts = urlsplit(request) if "://" in request else None
        except ValueError:  # "agi://[::1/x": urlsplit's own refusal, which the server does not expect
            raise ProtocolError(f"agi_request is no URL: {request[:60]!r}") from None
        script = (parts.path + ("?" + parts.query if parts.query else "")) if parts else request
    path, _, query = script.lstrip("/").partition("?")
    args: list[str] = []
    while f"agi_arg_{len(args) + 1}" in raw:
        args.append(raw[f"agi_arg_{len(args) + 1}"])
    callerid = raw.get("agi_callerid", "")
    return AgiEnv(
        script=path.strip("/"),
        query=query,
        request=request,
        channel=raw.get("agi_channel", ""),
        uniqueid=raw.get("agi_uniqueid", ""),
        callerid="" if callerid.strip().lower() in _UNKNOWN else callerid.strip(),
        calleridname="" if raw.get("agi_calleridname", "").strip().lower() in _UNKNOWN else raw["agi_calleridname"],
        context=raw.get("agi_context", ""),
        extension=raw.get("agi_extension", ""),
        language=raw.get("agi_language", ""),
        args=tuple(args),
        raw=raw,
    )


# --- replies ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """One answer from Asterisk. ``hangup`` is the asynchronous ``HANGUP`` notice."""

    code: int
    result: int | None = None  # the number, when ``value`` is one
    value: str = ""  # result= as sent: GET DATA's digits keep leading zeros and "*"
    data: str | None = None  # the "(…)" part: a variable's value, "timeout", "dtmf"
    extra: dict[str, str] = field(default_factory=dict)
    text: str = ""  # the whole reply (all lines for 520)
    hangup: bool = False

    @property
    def ok(self) -> bool:
        return self.code == 200


HANGUP = Reply(code=0, text="HANGUP", hangup=True)
_RESULT = re.compile(r"^result=(\S*)(.*)$")
_EXTRA = re.compile(r"\s+([A-Za-z_]+)=(\S*)")
_EXTRA_TOKEN = re.compile(r"[A-Za-z_]+=\S*")
_NUMBER = re.compile(rf"-?[0-9]{{1,{MAX_RESULT_DIGITS}}}")  # ASCII only: "²".isdigit(), but int("²") raises


def parse_reply(text: str) -> Reply:
    """Parse one (possibly multi-line, ``\\n``-joined) reply.

    >>> r = parse_reply("200 result=1 (山东省菏泽市 (市区)) endpos=0")
    >>> r.code, r.result, r.value, r.data, r.extra, r.hangup
    (200, 1, '1', '山东省菏泽市 (市区)', {'endpos': '0'}, False)
    >>> r = parse_reply("200 result=0 endpos=8000"); (r.result, r.data, r.extra)
    (0, None, {'endpos': '8000'})
    >>> r = parse_reply("200 result=0012 (timeout)"); (r.result, r.value, r.data)
    (12, '0012', 'timeout')
    >>> r = parse_reply("200 result= (timeout)"); (r.result, r.value, r.data)
    (None, '', 'timeout')
    >>> parse_reply("511 Command Not Permitted on a dead channel or intercepted channel").code
    511
    >>> parse_reply("520-Invalid command syntax.  Proper usage follows:\\nUsage: x\\n520 End of proper usage.").code
    520
    >>> parse_reply("HANGUP").hangup
    True
    >>> parse_reply("hello")
    Traceback (most recent call last):
    ...
    agi.protocol.ProtocolError: not an AGI reply: 'hello'
    >>> parse_reply("²⁰⁰ result=1")
    Traceback (most recent call last):
    ...
    agi.protocol.ProtocolError: not an AGI reply: '²⁰⁰ result=1'
    """
    if text.startswith("200 result=") and len(text) <= 11 + MAX_RESULT_DIGITS:  # "200 result=1": most replies
        value = text[11:]
        if value.isascii() and value.isdigit():
            return Reply(code=200, result=int(value), value=value, text=text)
    if text.strip() == "HANGUP":
        return HANGUP
    head = text.split("\n", 1)[0]
    code_text = head[:3]
    if len(head) < 3 or not (code_text.isascii() and code_text.isdigit()) or (len(head) > 3 and head[3] not in " -"):
        raise ProtocolError(f"not an AGI reply: {head[:60]!r}")
    code = int(code_text)
    rest = head[4:].strip()
    m = _RESULT.match(rest)
    if code != 200 or not m:
        return Reply(code=code, text=text)
    value, tail = m.group(1), m.group(2)
    result = int(value) if _NUMBER.fullmatch(value) else None  # else the text alone: "0123#", 5 000 digits
    data: str | None = None
    stripped = tail.lstrip()
    if stripped.startswith("("):
        data, tail = _data(stripped[1:])
    extra = dict(_EXTRA.findall(" " + tail.strip())) if tail.strip() else {}
    return Reply(code=code, result=result, value=value, data=data, extra=extra, text=text)


def _data(body: str) -> tuple[str, str]:
    """Split ``body`` (what follows the opening "(") into the value and the ``key=value`` tail.

    The value may itself hold ")" or spaces: it ends at the last ")" that is only followed by
    key=value pairs (endpos=…). Read from the right one word at a time, so a line full of ")"
    costs one pass, not one regex over the rest of the line for every ")".

    >>> _data("山东省菏泽市 (市区)) endpos=0"), _data("a) b"), _data("x) endpos=1)")
    (('山东省菏泽市 (市区)', ' endpos=0'), ('a) b', ''), ('x) endpos=1', ''))
    """
    for word in reversed(list(re.finditer(r"\S+", body))):
        if word.group().endswith(")"):
            return body[: word.end() - 1], body[word.end() :]
        if not _EXTRA_TOKEN.fullmatch(word.group()):
            break
    return body, ""


# --- the incremental splitter ----------------------------------------------------------------


class Splitter:
    """Feed bytes as they arrive; take out the header block, then replies, each once complete.

    Lines end with ``\\n`` (a ``\\r`` before it is dropped). Decoding happens per whole line, so
    a UTF-8 character cut between two reads is never damaged.

    >>> s = Splitter()
    >>> s.feed(b"agi_request: agi://h/lookup\\nagi_callerid: 1380"); s.header()
    >>> s.feed(b"0138000\\n\\n200 resu"); s.header()
    ['agi_request: agi://h/lookup', 'agi_callerid: 13800138000']
    >>> s.reply()
    >>> s.feed(b"lt=1\\nHANGUP\\n"); s.reply().result, s.reply().hangup, s.reply()
    (1, True, None)
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._lines: deque[str] = deque()
        self._partial: list[str] = []  # a 520- block being gathered
        self.eof = False

    def feed(self, data: bytes) -> None:
        """Add bytes; :class:`ProtocolError` for a line over :data:`MAX_LINE`, whether it arrives
        whole or in pieces (the refusal must not depend on how TCP cut the stream)."""
        if not data:
            self.eof = True
            return
        buf = self._buf
        if buf:
            buf += data
            end = buf.rfind(b"\n")
            block = bytes(buf[:end]) if end >= 0 else b""
            del buf[: end + 1]
        else:  # the usual case, nothing left over: no copy through the buffer
            end = data.rfind(b"\n")
            block = data[:end] if end >= 0 else b""
            buf += data[end + 1 :]
        if end >= 0:  # every complete line at once; the cut one stays in the buffer
            if len(block) > MAX_LINE and max(map(len, block.split(b"\n"))) > MAX_LINE:
                raise ProtocolError("line too long")
            # one decode for the block: a line break is never inside a UTF-8 character, so each
            # line decodes (and a broken character is replaced) exactly as it would alone
            lines = block.decode("utf-8", errors="replace").split("\n")
            self._lines += [line.rstrip("\r") for line in lines] if b"\r" in block else lines
        if len(buf) > MAX_LINE:
            raise ProtocolError("line too long")

    @property
    def pending(self) -> bool:
        """Bytes or lines not taken out yet (EOF now means a cut frame)."""
        return bool(self._buf or self._lines or self._partial)

    def header(self) -> list[str] | None:
        """The environment lines once the blank line arrived, else None."""
        try:
            end = self._lines.index("")
        except ValueError:
            if len(self._lines) > MAX_HEADER_LINES:
                raise ProtocolError("header too long") from None
            return None
        if end > MAX_HEADER_LINES:  # the same refusal when the blank line came in the same read
            raise ProtocolError("header too long")
        if end + 1 == len(self._lines):  # the usual case: the header, and nothing after it yet
            block = list(self._lines)
            self._lines.clear()
            block.pop()
            return block
        block = [self._lines.popleft() for _ in range(end)]
        self._lines.popleft()
        return block

    def reply(self) -> Reply | None:
        """The next complete reply (or ``HANGUP`` notice), else None."""
        while self._lines:
            line = self._lines.popleft()
            if self._partial:
                self._partial.append(line)
                if line.startswith("520 "):
                    text, self._partial = "\n".join(self._partial), []
                    return parse_reply(text)
                if len(self._partial) > MAX_USAGE_LINES:
                    raise ProtocolError("520 usage block without its end")
                continue
            if line.startswith("520-"):
                self._partial = [line]
                continue
            if not line.strip():
                continue  # stray blank lines carry nothing
            return parse_reply(line)
        return None


# --- commands --------------------------------------------------------------------------------


_CONTROL = {c: " " for c in [*range(32), 127]}
_CONTROL_CHAR = re.compile(r"[\x00-\x1f\x7f]")
_VERB = re.compile(r"[A-Z][A-Z ]*[A-Z]")


def quote(value: object) -> str:
    """One AGI argument, always double-quoted: Asterisk splits on spaces outside quotes and
    takes ``\\`` as an escape. Line breaks and control characters would end or corrupt the
    command line, so they become spaces.

    >>> quote('张"三\\\\n\\n; DROP TABLE ticket;--')
    '"张\\\\"三\\\\\\\\n ; DROP TABLE ticket;--"'
    >>> quote("")
    '""'
    """
    text = str(value)
    if _CONTROL_CHAR.search(text):  # rare: translating every value costs more than the search
        text = text.translate(_CONTROL)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def command(verb: str, *args: object) -> bytes:
    """A command line; the verb is ours (never user input), the arguments are quoted.

    >>> command("SET VARIABLE", "__HL_LOCATION", "山东省菏泽市").decode()
    'SET VARIABLE "__HL_LOCATION" "山东省菏泽市"\\n'
    >>> command("GET DATA", "hotline/survey", 6000, 1)
    b'GET DATA "hotline/survey" "6000" "1"\\n'
    >>> len(command("SET VARIABLE", "X", "长" * 5000)) <= MAX_COMMAND
    True
    """
    if not _VERB.fullmatch(verb):
        raise ValueError(f"bad AGI verb {verb!r}")
    parts = [verb, *(quote(a) for a in args)]
    line = " ".join(parts).encode()
    if len(line) + 1 > MAX_COMMAND:
        # shorten the last argument (the value) on a character boundary, keeping the quotes
        head = " ".join(parts[:-1]).encode()
        value = str(args[-1]) if args else ""
        while value and len(head) + len(quote(value).encode()) + 2 > MAX_COMMAND:
            value = value[: max(0, len(value) - max(1, (len(quote(value).encode()) + len(head) - MAX_COMMAND) // 3))]
        line = head + b" " + quote(value).encode()
    return line + b"\n"
