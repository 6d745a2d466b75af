"""The byte-level AMI frame parser: every cut position, greeting, repeated headers, garbage."""

from __future__ import annotations

import doctest

import pytest

import cti.protocol
from cti.protocol import FrameParser, parse_frame

NAME = "张三丰"  # 9 UTF-8 bytes: cuts at 1, 2, 4, 5, 7, 8 fall inside a character


def _name_frame() -> bytes:
    return (
        "Event: Newchannel\r\nPrivilege: call,all\r\nTimestamp: 1795344882.156000\r\n"
        f"CallerIDNum: 13800001\r\nCallerIDName: {NAME}\r\n"
        "ChanVariable: LOCATION=山东省聊城市\r\nChanVariable: TICKETS=3\r\n\r\n"
    ).encode()


def test_doctests() -> None:
    assert doctest.testmod(cti.protocol).failed == 0


@pytest.mark.parametrize("greeting", [True, False])
def test_name_survives_every_cut_position(greeting: bool) -> None:
    data = (b"Asterisk Call Manager/9.0.0\r\n" if greeting else b"") + _name_frame()
    for cut in range(1, len(data)):
        p = FrameParser()
        frames = p.feed(data[:cut]) + p.feed(data[cut:])
        assert len(frames) == 1, cut
        assert frames[0]["CallerIDName"] == NAME, cut
        assert frames[0]["ChanVariable"] == ["LOCATION=山东省聊城市", "TICKETS=3"]
        assert p.malformed == 0
        assert p.version == ("9.0.0" if greeting else None)


def test_byte_by_byte_recorded_stream(wire) -> None:
    data = wire.to_wire(wire.load_jsonl(wire.FLOWS))
    whole = FrameParser().feed(data)
    p = FrameParser()
    trickled = [f for i in range(len(data)) for f in p.feed(data[i : i + 1])]
    assert [f.headers for f in trickled] == [f.headers for f in whole]
    n_events = sum(1 for d in wire.load_jsonl(wire.FLOWS) if not d["Event"].startswith("_"))
    assert len(whole) == n_events == 179
    assert p.malformed == 0


def test_repeated_headers_keep_order_and_single_stays_str() -> None:
    f = parse_frame("Event: X\r\nA: 1\r\nB: 2\r\nA: 3\r\nA: 4")
    assert f is not None
    assert f["A"] == ["1", "3", "4"]
    assert f["B"] == "2"


def test_value_with_colon_space_and_empty_values() -> None:
    f = parse_frame("Response: Success\r\nMessage: Queue: hotline: ok\r\nAccountCode: \r\nEmpty:")
    assert f is not None
    assert f["Message"] == "Queue: hotline: ok"
    assert f["AccountCode"] == ""
    assert f["Empty"] == ""


def test_malformed_frames_are_counted_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    p = FrameParser()
    out = p.feed(b"Asterisk Call Manager/9.0.0\r\nhello world\r\n\r\nEvent: Ok\r\n\r\n")
    assert [f.event for f in out] == ["Ok"]
    assert p.malformed == 1
    out = p.feed(b"Event: Bad\r\nCallerIDName: \xe5\xbc\r\n\r\n")  # truncated character
    assert out[0]["CallerIDName"] == "\ufffd"
    assert p.decode_errors == 1 and p.malformed == 2
    assert "invalid UTF-8" in caplog.text


def test_oversized_garbage_is_dropped() -> None:
    p = FrameParser()
    p.feed(b"Event: X\r\n")
    assert p.feed(b"x" * (cti.protocol.MAX_FRAME_BYTES + 1)) == []
    assert p.malformed == 1
    assert [f.event for f in p.feed(b"Event: Next\r\n\r\n")] == ["Next"]


def test_stray_eol_between_frames_and_split_separator() -> None:
    p = FrameParser()
    out = p.feed(b"Event: A\r\n\r")
    assert out == []
    out = p.feed(b"\n\r\nEvent: B\r\n\r\n")
    assert [f.event for f in out] == ["A", "B"]


def test_greeting_split_and_reset() -> None:
    p = FrameParser()
    assert p.feed(b"Aster") == []
    assert p.feed(b"isk Call Manager/9.0.0") == []
    assert p.feed(b"\r\nResponse: Success\r\n\r\n")[0].response == "Success"
    assert p.version == "9.0.0"
    p.reset()
    p.feed(b"Event: half")
    p.reset()  # a reconnect drops the half frame of the old connection
    out = p.feed(b"Asterisk Call Manager/10.0.0\r\nEvent: New\r\n\r\n")
    assert [f.event for f in out] == ["New"] and p.version == "10.0.0"
