"""Fuzzing the AMI protocol core (issue #13): bytes from anywhere never break the frame parser or
the event factory, and TCP's cuts never change what they give.

Inputs: arbitrary bytes; the recorded AMI transcripts (raw ``.ami`` files and the spike's logs,
see tests/fixtures/ami/README.md) cut at arbitrary places; the same frames mutated (bytes flipped,
inserted, deleted, separators and stray line ends injected, characters cut, headers repeated,
huge or odd); frames made of odd headers. Properties:

* nothing but the documented behaviour: :class:`~cti.protocol.FrameParser` never raises, every
  frame it gives has an ``Event`` or ``Response``, its buffer stays under its bound; the
  :class:`~cti.protocol.EventFactory` gives one typed event per frame and never needs its safety
  net for a builder that raised;
* one piece or many: the whole stream fed at once and the same stream cut into random chunks give
  the same frames, the same typed events and the same counts of malformed frames.

Bounded in ``make test``; ``make fuzz`` runs it for minutes (``testkit.fuzz``).
"""

from __future__ import annotations

import dataclasses
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

import cti.protocol as protocol
from cti import events as ev
from cti.protocol import BUILDERS, EventFactory, FrameParser, parse_frame
from testkit import ami
from testkit.fuzz import figures, fuzz_settings, run

pytestmark = pytest.mark.fuzz

SEP = protocol.SEP


def _seeds() -> list[bytes]:
    """Every recorded stream in the checkout: raw transcripts (greeting, responses, events) and
    the spike's logs rendered back into wire bytes."""
    out = [p.read_bytes() for p in ami.raw_transcripts()]
    out += [ami.to_wire(ami.load_jsonl(p)) for p in (ami.FLOWS, ami.THREE_PARTY)]
    return out


SEEDS = _seeds()
FRAMES = sorted({f + SEP for s in SEEDS for f in s.split(SEP) if f.strip()})  # one frame each, terminated
NAMES = [*sorted(BUILDERS), "UserEvent", "SuccessfulAuth", "Newexten", ""]


def test_the_seeds_are_the_recorded_transcripts() -> None:
    assert len(SEEDS) >= 3 and len(FRAMES) > 200  # a fresh clone has the spike's logs and the raw transcripts
    whole = FrameParser()
    whole.feed(max(SEEDS, key=len))  # the longest stream, whole (each begins with its greeting)
    assert whole.malformed == 0 and whole.frames > 50


# --------------------------------------------------------------------------------- strategies


def _mutate(frame: bytes, how: str, at: int, blob: bytes) -> bytes:
    at %= len(frame) + 1
    if how == "flip" and at < len(frame):
        return frame[:at] + bytes([frame[at] ^ (blob[0] if blob else 0xFF)]) + frame[at + 1 :]
    if how == "insert":
        return frame[:at] + blob + frame[at:]
    if how == "delete":
        return frame[:at] + frame[at + len(blob) + 1 :]
    if how == "separator":  # a frame cut in two by an early terminator
        return frame[:at] + SEP + frame[at:]
    if how == "stray_eol":
        return frame[:at] + b"\r\n" + frame[at:]
    if how == "bare_lf":  # LF without CR: not AMI's line end
        return frame.replace(b"\r\n", b"\n", 1 + len(blob))
    if how == "truncate":
        return frame[:at]
    if how == "cut_char":  # half of a UTF-8 character
        return frame[:at] + "张".encode()[: 1 + len(blob) % 2] + frame[at:]
    if how == "repeat_header":
        line = frame.split(b"\r\n", 1)[0]
        return frame[:at] + (line + b"\r\n") * (1 + len(blob)) + frame[at:]
    if how == "huge_value":
        return frame.replace(b": ", b": " + (blob or b"x") * 2000, 1)
    return frame


MUTATIONS = ["flip", "insert", "delete", "separator", "stray_eol", "bare_lf", "truncate", "cut_char",
             "repeat_header", "huge_value"]

recorded = st.lists(st.sampled_from(FRAMES), min_size=1, max_size=40).map(b"".join)
whole_seed = st.sampled_from(SEEDS)
mutated = st.builds(
    lambda frames, edits: b"".join(_apply(frames, edits)),
    st.lists(st.sampled_from(FRAMES), min_size=1, max_size=20),
    st.lists(st.tuples(st.integers(0, 19), st.sampled_from(MUTATIONS), st.integers(0, 10_000),
                       st.binary(max_size=24)), min_size=1, max_size=8),
)


def _apply(frames: list[bytes], edits: list[tuple[int, str, int, bytes]]) -> list[bytes]:
    frames = list(frames)
    for which, how, at, blob in edits:
        i = which % len(frames)
        frames[i] = _mutate(frames[i], how, at, blob)
    return frames


header_name = st.one_of(st.sampled_from(["Event", "Response", "ActionID", "Timestamp", "ChanVariable",
                                         "CallerIDName", "Uniqueid", "Queue", "RingTime", "Paused"]),
                        st.text(max_size=12))
header_value = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["", "nan", "inf", "-inf", "1e999", "-1", "0x10", "²", "١٢", "9" * 5000, "yes", "Yes",
                     "A=1", "=", "==", ": ", "\udcff"]),
    st.integers().map(str), st.floats(allow_nan=True).map(repr),
)
odd_headers = st.builds(
    lambda name, headers, greeting: (
        (b"Asterisk Call Manager/9.0.0\r\n" if greeting else b"")
        + f"Event: {name}\r\n".encode()
        + "".join(f"{k}: {v}\r\n" for k, v in headers).encode("utf-8", "surrogateescape")
        + b"\r\n"
    ),
    st.sampled_from(NAMES), st.lists(st.tuples(header_name, header_value), max_size=30), st.booleans(),
)
greeting_like = st.builds(lambda head, tail: head + tail,
                          st.sampled_from([b"", b"\r\n", b"Asterisk Call Manager/", b"Asterisk Call Manager/9.0.0\r\n",
                                           b"Aster", b"\r\n\r\n\r\n"]),
                          st.binary(max_size=300))
streams = st.one_of(st.binary(max_size=2048), recorded, whole_seed, mutated, odd_headers, greeting_like,
                    st.lists(st.one_of(recorded, mutated, odd_headers, st.binary(max_size=64)), max_size=5)
                    .map(b"".join))


@st.composite
def cut(draw: st.DrawFn, data: bytes) -> list[bytes]:
    """``data`` in chunks as TCP might deliver it: cuts anywhere, one byte at a time at times."""
    if len(data) < 2:
        return [data] if data else []
    n = draw(st.integers(0, min(60, len(data) - 1)))
    points = sorted(set(draw(st.lists(st.integers(1, len(data) - 1), min_size=n, max_size=n))))
    if draw(st.booleans()):  # and a run of single bytes somewhere (every cut inside it)
        start = draw(st.integers(0, len(data) - 1))
        points = sorted(set(points) | set(range(start, min(len(data), start + 64))) - {0})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


# --------------------------------------------------------------------------------- properties


@dataclasses.dataclass
class Parsed:
    frames: list[tuple[dict, list[str]]]
    events: list[object]  # comparable: an unknown event by its frame's headers
    malformed: int
    decode_errors: int
    version: str | None
    factory_errors: int


def parse(chunks: list[bytes]) -> Parsed:
    p = FrameParser()
    factory = EventFactory()
    frames = []
    for chunk in chunks:
        for f in p.iter_feed(chunk):
            assert f.event is not None or f.response is not None, f.headers
            frames.append(f)
        # bounded: what waits for its terminator never outgrows the limit (plus the chunk just read)
        assert len(p._buf) <= protocol.MAX_FRAME_BYTES + len(chunk)
    events = [factory.build(f, received=1.0) for f in frames if f.event is not None]
    for e in events:
        assert isinstance(e, ev.AmiEvent) and math.isfinite(e.ts)
    return Parsed([(f.headers, f.lines) for f in frames], [_comparable(e) for e in events], p.malformed,
                  p.decode_errors, p.version, factory.errors)


def _comparable(e: ev.AmiEvent) -> object:
    if isinstance(e, ev.UnknownEvent):
        return ("UnknownEvent", e.ts, e.name, e.frame.headers if e.frame is not None else None)
    return e


def test_any_bytes_cut_anywhere_give_the_same_frames_and_events() -> None:
    fig = figures("cti.protocol: AMI frames and events")

    @fuzz_settings(1500)
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        stream = data.draw(streams, label="stream")
        chunks = data.draw(cut(stream), label="chunks")
        fig.tried += 1
        whole, pieces = parse([stream] if stream else []), parse(chunks)
        assert pieces == whole  # frames, typed events, malformed and undecodable counts, the version
        assert whole.factory_errors == 0  # no builder raised: the safety net in build() stayed unused

    run(fig.target, check)


def test_the_event_factory_types_any_headers() -> None:
    """Straight into the factory: every known event name with any headers, repeated or not."""
    fig = figures("cti.protocol: event factory on any headers")
    value = st.one_of(header_value, st.lists(header_value, min_size=2, max_size=4))

    @fuzz_settings(1500)
    @given(name=st.sampled_from(NAMES), headers=st.dictionaries(header_name, value, max_size=25),
           received=st.floats(allow_nan=False, allow_infinity=False))
    def check(name: str, headers: dict, received: float) -> None:
        fig.tried += 1
        factory = EventFactory()
        frame = protocol.Frame({**headers, "Event": name})
        e = factory.build(frame, received)
        assert isinstance(e, ev.AmiEvent) and math.isfinite(e.ts)
        assert factory.errors == 0
        if name in BUILDERS:
            assert not isinstance(e, ev.UnknownEvent)
        # and the frame's text form reads back to the same event, when its lines are lines
        lines = [(k, v) for k, vs in frame.headers.items() for v in ([vs] if isinstance(vs, str) else vs)]
        if all(k and ": " not in k and "\r\n" not in k + v for k, v in lines):
            again = parse_frame("\r\n".join(f"{k}: {v}" for k, v in lines))
            assert again is not None and again.event == name and again.headers == frame.headers

    run(fig.target, check)


# --------------------------------------------------------------------------------- what fuzzing found


def test_a_repeated_event_header_is_no_frame() -> None:
    """``Event: A`` twice named no event and no response, yet went on as a frame whose ``event`` and
    ``response`` were both None; it is a malformed frame now, counted and logged."""
    p = FrameParser()
    assert p.feed(b"Event:\r\nEvent:\r\n\r\nResponse: A\r\nResponse: B\r\n\r\nEvent: Ok\r\n\r\n")[0].event == "Ok"
    assert p.malformed == 2


def test_a_timestamp_that_is_no_moment_is_the_time_received() -> None:
    factory = EventFactory()
    for raw in ("nan", "inf", "-inf", "1e999"):
        frame = parse_frame(f"Event: Hangup\r\nTimestamp: {raw}\r\nUniqueid: 1.1")
        assert frame is not None and factory.build(frame, received=5.0).ts == 5.0


def test_line_ends_between_frames_count_the_same_however_they_arrive() -> None:
    stream = b"\r\n\r\n\r\nEvent: A\r\n\r\n\r\n\r\nEvent: B\r\n\r\n"
    whole = parse([stream])
    assert [h["Event"] for h, _ in whole.frames] == ["A", "B"] and whole.malformed == 0
    assert parse([stream[:2], stream[2:5], stream[5:]]) == whole


def test_a_greeting_without_its_line_end_is_bounded() -> None:
    """``Asterisk Call Manager/`` and then no line end was buffered forever, however much followed."""
    p = FrameParser()
    p.feed(protocol.GREETING)
    for _ in range(protocol.MAX_FRAME_BYTES // 4096 + 2):
        assert p.feed(b"x" * 4096) == []
        assert len(p._buf) <= protocol.MAX_FRAME_BYTES + 4096
    assert p.version is None and p.malformed == 1
    assert [f.event for f in p.feed(b"\r\n\r\nEvent: Next\r\n\r\n")] == ["Next"]


def test_a_big_frame_one_byte_at_a_time_is_linear_work() -> None:
    """Each read used to copy and search the whole buffer again (quadratic: minutes for a big frame
    read in small pieces); now the buffer is appended to and only the new bytes are searched. No
    clock here: pytest-timeout is what would catch the old behaviour."""
    frame = b"Event: Big\r\nX: " + b"y" * 300_000 + b"\r\n\r\n"
    p = FrameParser()
    out = [f for i in range(len(frame)) for f in p.iter_feed(frame[i : i + 1])]
    assert [f.event for f in out] == ["Big"] and len(out[0]["X"]) == 300_000
