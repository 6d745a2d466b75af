"""The pure FastAGI protocol: environment, replies, the incremental splitter, command quoting."""

from __future__ import annotations

import doctest

import pytest

import agi.protocol as protocol
from agi.protocol import ProtocolError, Splitter, command, parse_env, parse_reply, quote
from tests.agi.fakes import asterisk_parse_args

HEADER = ("agi_network: yes\nagi_network_script: lookup\nagi_request: agi://127.0.0.1:4573/lookup\n"
          "agi_channel: PJSIP/trunk-00000007\nagi_language: zh\nagi_uniqueid: 1763866000.42\n"
          "agi_callerid: 13953012345\nagi_calleridname: 张三\nagi_context: from-trunk\nagi_extension: 12345\n\n")
REPLIES = ("200 result=1\n200 result=1 (山东省菏泽市)\n"
           "520-Invalid command syntax.  Proper usage follows:\nUsage: GET DATA <file> [timeout]\n"
           "520 End of proper usage.\nHANGUP\n200 result=-1\n511 Command Not Permitted on a dead channel\n")
STREAM = (HEADER + REPLIES).encode()


def test_doctests() -> None:
    assert doctest.testmod(protocol).failed == 0


def frames(chunks: list[bytes]) -> tuple[list[str] | None, list]:
    s = Splitter()
    header = None
    replies = []
    for chunk in chunks:
        s.feed(chunk)
        if header is None:
            header = s.header()
        if header is not None:
            while (r := s.reply()) is not None:
                replies.append(r)
    return header, replies


def test_a_stream_cut_at_every_byte_gives_the_same_frames() -> None:
    whole_header, whole = frames([STREAM])
    assert whole_header is not None and parse_env(whole_header).calleridname == "张三"
    assert [r.code for r in whole] == [200, 200, 520, 0, 200, 511]
    assert whole[1].data == "山东省菏泽市" and whole[3].hangup and whole[4].result == -1
    assert whole[2].text.count("\n") == 2  # the usage block is one reply
    for cut in range(1, len(STREAM)):
        assert frames([STREAM[:cut], STREAM[cut:]]) == (whole_header, whole), cut
    # and one byte at a time, which cuts every UTF-8 character too
    assert frames([STREAM[i : i + 1] for i in range(len(STREAM))]) == (whole_header, whole)


def test_eof_mid_header_is_seen_and_leaves_a_partial_frame() -> None:
    s = Splitter()
    s.feed(HEADER.encode()[:40])
    s.feed(b"")
    assert s.eof and s.header() is None and s.pending


def test_nothing_sent_then_eof() -> None:
    s = Splitter()
    s.feed(b"")
    assert s.eof and not s.pending and s.header() is None


def test_crlf_lines_and_stray_blank_lines() -> None:
    s = Splitter()
    s.feed(b"agi_request: agi://h/survey\r\n\r\n\n200 result=1\r\n")
    assert s.header() == ["agi_request: agi://h/survey"]
    assert s.reply().result == 1 and s.reply() is None


def test_garbage_is_refused_not_buffered() -> None:
    s = Splitter()
    with pytest.raises(ProtocolError):
        s.feed(b"x" * 10000)
    with pytest.raises(ProtocolError):
        parse_env(["GET / HTTP/1.1"])
    with pytest.raises(ProtocolError):
        parse_reply("HTTP/1.1 200 OK")


def test_env_without_network_script_routes_by_the_request_path_and_strips_withheld_ids() -> None:
    e = parse_env(["agi_request: agi://127.0.0.1/status?x=1", "agi_callerid: anonymous",
                   "agi_calleridname: unknown", "agi_arg_1: after_hours", "agi_arg_3: skipped"])
    assert (e.script, e.query, e.callerid, e.calleridname, e.args) == ("status", "x=1", "", "", ("after_hours",))


@pytest.mark.parametrize("text, code, result, value, data", [
    ("200 result=1 (a (b) c)", 200, 1, "1", "a (b) c"),
    ("200 result=1 ())", 200, 1, "1", ")"),
    ("200 result=1 ()", 200, 1, "1", ""),
    ("200 result=0", 200, 0, "0", None),
    ("200 result=49 endpos=12000", 200, 49, "49", None),
    ("200 result=0123# (timeout)", 200, None, "0123#", "timeout"),
    ("200 result=-1", 200, -1, "-1", None),
    ("510 Invalid or unknown command", 510, None, "", None),
    ("511 Command Not Permitted on a dead channel or intercepted channel", 511, None, "", None),
])
def test_replies(text: str, code: int, result: int | None, value: str, data: str | None) -> None:
    r = parse_reply(text)
    assert (r.code, r.result, r.value, r.data) == (code, result, value, data)


@pytest.mark.parametrize("value", [
    '张"三', "a\\b", 'O\'Brien"; DROP TABLE caller;--', "line\nbreak\r\n", "\\", '"', "", " lead and trail ",
    "tab\there", "\x00\x1b[31m", "${SHELL(rm -rf /)}",
])
def test_quoted_values_come_back_whole_as_asterisk_parses_them(value: str) -> None:
    line = command("SET VARIABLE", "__HL_NAME", value).decode()
    assert line.endswith("\n") and "\n" not in line[:-1] and "\r" not in line
    args = asterisk_parse_args(line[:-1])
    assert args[:2] == ["SET", "VARIABLE"] and len(args) == 4
    expected = "".join(c if c >= " " and c != "\x7f" else " " for c in value)
    assert args[2:] == ["__HL_NAME", expected]


def test_a_huge_value_is_cut_to_fit_asterisks_buffer_on_a_character_boundary() -> None:
    line = command("SET VARIABLE", "__HL_LOCATION", "菏泽" * 3000 + '"')
    assert len(line) <= protocol.MAX_COMMAND
    args = asterisk_parse_args(line.decode()[:-1])
    assert args[2] == "__HL_LOCATION" and set(args[3]) == {"菏", "泽"}


def test_verbs_are_ours_only() -> None:
    with pytest.raises(ValueError):
        command("SET VARIABLE\nEXEC System", "x")
    assert quote(12) == '"12"'
