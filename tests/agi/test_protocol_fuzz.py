"""Fuzzing the FastAGI protocol (issue #13): whatever arrives on an AGI socket, the server's parser
refuses it with :class:`~agi.protocol.ProtocolError` (its one documented refusal: the server logs it
and drops the session) or reads it, never anything else; and TCP's cuts never change what it reads.

Inputs: arbitrary bytes; Asterisk's own ``agi_*`` header block and replies (``200 result=…
(data) endpos=…``, ``510``, ``511``, ``520-`` usage blocks, ``HANGUP``) cut at arbitrary places,
mutated, with huge and odd lines; replies straight into :func:`~agi.protocol.parse_reply`; and the
other way, any values through :func:`~agi.protocol.command`, read back as res_agi splits them.

Bounded in ``make test``; ``make fuzz`` runs it for minutes (``testkit.fuzz``).
"""

from __future__ import annotations

import dataclasses
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

import agi.protocol as protocol
from agi.protocol import AgiEnv, ProtocolError, Reply, Splitter, command, parse_env, parse_reply
from testkit.agi import asterisk_parse_args, header
from testkit.fuzz import figures, fuzz_settings, run

pytestmark = pytest.mark.fuzz

HEADERS = [
    header("127.0.0.1", 4573, "lookup", "1763866000.42", "13953012345"),
    header("127.0.0.1", 4573, "survey", "1763866000.43", "unknown", extra={"agi_arg_1": "1", "agi_arg_2": "x: y"}),
    "agi_network: yes\nagi_request: agi://[::1]:4573/status?x=1\nagi_calleridname: 张三\n\n".encode(),
]
REPLIES = [
    "200 result=1\n", "200 result=1 (山东省菏泽市 (市区)) endpos=0\n", "200 result=0 endpos=8000\n",
    "200 result=0012 (timeout)\n", "200 result= (timeout)\n", "200 result=-1\n", "200 result=1 (dtmf) endpos=96000\n",
    "510 Invalid or unknown command\n", "511 Command Not Permitted on a dead channel or intercepted channel\n",
    "520-Invalid command syntax.  Proper usage follows:\nUsage: GET DATA <file> [timeout]\n520 End of proper usage.\n",
    "HANGUP\n", "\n", "200 result=1\r\n",
]

line_text = st.one_of(
    st.text(max_size=60),
    st.sampled_from(["200 result=", "200 result=1 (", "200 result=1 ())", "²⁰⁰ result=1", "١٢٣ x", "200-x",
                     "200 result=" + "9" * 5000, "200 result=1 (" + ")" * 3000, "520-", "520 ", "HANGUP", "agi_",
                     "agi_request: agi://[", "agi_request: agi://h:99999999/x", "agi_arg_1", ":", "\x00", "\r"]),
)
huge_line = st.builds(lambda c, n: c * n, st.sampled_from(["x", "张", ")", " a=)", "\r"]),
                      st.integers(protocol.MAX_LINE // 3 - 4, protocol.MAX_LINE + 10))
session_stream = st.builds(
    lambda head, body: head + body,
    st.one_of(st.sampled_from(HEADERS),
              st.lists(line_text, max_size=8).map(lambda ls: "\n".join(ls).encode() + b"\n\n")),
    st.lists(st.one_of(st.sampled_from(REPLIES).map(str.encode), line_text.map(lambda t: (t + "\n").encode()),
                       huge_line.map(lambda t: (t + "\n").encode()), st.binary(max_size=40)),
             max_size=25).map(b"".join),
)


def _mutated(data: bytes, edits: list[tuple[int, bytes, int]]) -> bytes:
    for at, blob, drop in edits:
        at %= len(data) + 1
        data = data[:at] + blob + data[at + drop :]
    return data


streams = st.one_of(
    st.binary(max_size=2048),
    session_stream,
    st.builds(_mutated, session_stream, st.lists(st.tuples(st.integers(0, 5000), st.binary(max_size=8),
                                                           st.integers(0, 6)), min_size=1, max_size=6)),
)


@st.composite
def cut(draw: st.DrawFn, data: bytes) -> list[bytes]:
    """Non-empty chunks (an empty read is the end of the stream)."""
    if len(data) < 2:
        return [data] if data else []
    n = draw(st.integers(0, min(40, len(data) - 1)))
    points = sorted(set(draw(st.lists(st.integers(1, len(data) - 1), min_size=n, max_size=n))))
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


@dataclasses.dataclass
class Session:
    """What the server and the channel read from one connection, as they read it."""

    env: AgiEnv | None = None
    replies: list[Reply] = dataclasses.field(default_factory=list)
    refused: bool = False
    pending: bool = False


def read(chunks: list[bytes]) -> Session:
    out = Session()
    split = Splitter()
    lines = None
    try:
        for chunk in [*chunks, b""]:  # the last read: the end of the stream
            split.feed(chunk)
            if lines is None:
                lines = split.header()
                if lines is not None:
                    out.env = parse_env(lines)
            if lines is not None:
                while (r := split.reply()) is not None:
                    out.replies.append(r)
    except ProtocolError:
        out.refused = True
    out.pending = split.pending
    return out


def test_any_bytes_cut_anywhere_are_read_the_same_or_refused() -> None:
    fig = figures("agi.protocol: FastAGI header and replies")

    @fuzz_settings(1500)
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        stream = data.draw(streams, label="stream")
        chunks = data.draw(cut(stream), label="chunks")
        fig.tried += 1
        whole, pieces = read([stream] if stream else []), read(chunks)  # only ProtocolError is caught
        assert pieces.refused == whole.refused
        if whole.refused:  # one may refuse a little earlier than the other: what both read agrees
            assert pieces.env == whole.env or None in (pieces.env, whole.env)
            n = min(len(whole.replies), len(pieces.replies))
            assert pieces.replies[:n] == whole.replies[:n]
        else:
            assert pieces == whole
        for r in whole.replies:
            assert 100 <= r.code <= 999 or r.hangup
            assert r.result is None or (r.code == 200 and r.value.lstrip("-").isascii())

    run(fig.target, check)


def _reference(text: str) -> tuple[str | None, dict[str, str]]:
    """The ``(data)`` and the ``key=value`` extras of a 200 reply, as first written: each ")" from
    the right tried with a regex over the rest of the line (quadratic on a line of ")")."""
    rest = text.split("\n", 1)[0][4:].strip()
    m = re.match(r"^result=(\S*)(.*)$", rest)
    assert m is not None
    tail = m.group(2)
    data = None
    stripped = tail.lstrip()
    if stripped.startswith("("):
        body = stripped[1:]
        for i in range(len(body) - 1, -1, -1):
            if body[i] == ")" and (not body[i + 1 :].strip()
                                   or re.fullmatch(r"(\s+[A-Za-z_]+=\S*)+\s*", body[i + 1 :])):
                data, tail = body[:i], body[i + 1 :]
                break
        else:
            data, tail = body, ""
    extra = dict(re.findall(r"\s+([A-Za-z_]+)=(\S*)", " " + tail.strip())) if tail.strip() else {}
    return data, extra


def test_any_reply_line_is_read_or_refused() -> None:
    fig = figures("agi.protocol: parse_reply on any line")
    reply_text = st.one_of(
        line_text,
        st.builds(lambda code, value, data, extras: f"{code} result={value}{data}{extras}",
                  st.sampled_from(["200", "510", "520", "²⁰⁰", "20", "2000"]),
                  st.one_of(st.integers().map(str), st.text(max_size=8), st.just("9" * 5000)),
                  st.one_of(st.just(""), st.text(max_size=30).map(lambda t: f" ({t})")),
                  st.lists(st.tuples(st.text(max_size=6), st.text(max_size=6)), max_size=4)
                  .map(lambda kv: "".join(f" {k}={v}" for k, v in kv))),
    )

    @fuzz_settings(1500)
    @given(text=reply_text)
    def check(text: str) -> None:
        fig.tried += 1
        try:
            r = parse_reply(text)
        except ProtocolError:
            return
        assert isinstance(r.code, int) and (r.hangup or 100 <= r.code <= 999)
        if r.code == 200 and not r.hangup and r.text.split("\n", 1)[0][4:].strip().startswith("result="):
            assert (r.data, r.extra) == _reference(text)  # the linear reading agrees with the first one

    run(fig.target, check)


def test_any_values_go_out_as_one_command_line_asterisk_reads_back() -> None:
    fig = figures("agi.protocol: command() with any values")
    verbs = st.sampled_from(["SET VARIABLE", "GET FULL VARIABLE", "EXEC", "GET DATA", "RECORD FILE"])

    @fuzz_settings(1000)
    @given(verb=verbs, args=st.lists(st.one_of(st.text(max_size=80), st.integers(), st.text(max_size=3000)),
                                     max_size=5))
    def check(verb: str, args: list[object]) -> None:
        fig.tried += 1
        line = command(verb, *args)
        assert line.endswith(b"\n") and b"\n" not in line[:-1] and b"\r" not in line
        assert len(line) <= protocol.MAX_COMMAND
        parsed = asterisk_parse_args(line.decode()[:-1])
        assert parsed[: len(verb.split())] == verb.split()
        sent = ["".join(c if c >= " " and c != "\x7f" else " " for c in str(a)) for a in args]
        got = parsed[len(verb.split()) :]
        assert len(got) == len(sent) and got[:-1] == sent[:-1]
        if sent:  # the last value may be cut to fit, on a character boundary, never changed
            assert sent[-1].startswith(got[-1])

    run(fig.target, check)


# --------------------------------------------------------------------------------- what fuzzing found


@pytest.mark.parametrize("text", ["²⁰⁰ result=1", "١٢٣ result=1", "200 result=" + "9" * 5000])
def test_digits_that_are_not_ascii_or_too_many_are_no_crash(text: str) -> None:
    """``"²".isdigit()`` is true but ``int("²")`` raises, and ``int()`` refuses 4 300 digits and more:
    a ValueError escaped, which the server does not expect (only ProtocolError is a refusal)."""
    try:
        r = parse_reply(text)
    except ProtocolError:
        return
    assert r.result is None and r.value == text.split("=", 1)[1]


def test_a_request_url_that_is_no_url_is_refused() -> None:
    with pytest.raises(ProtocolError):
        parse_env(["agi_request: agi://[::1/lookup"])  # urlsplit's ValueError escaped before


def test_a_line_over_the_limit_is_refused_however_it_arrives() -> None:
    line = b"200 result=1 (" + b"x" * protocol.MAX_LINE + b")\n"
    for chunks in ([line], [line[:100], line[100:]], [line[:5000], line[5000:]]):
        assert read([HEADERS[0], *chunks]).refused


def test_a_usage_block_without_its_end_is_refused_not_gathered_forever() -> None:
    s = Splitter()
    s.feed(HEADERS[0])
    assert s.header() is not None
    s.feed(b"520-Invalid command syntax.\n" + b"Usage: more\n" * (protocol.MAX_USAGE_LINES + 1))
    with pytest.raises(ProtocolError):
        while s.reply() is not None:
            pass
