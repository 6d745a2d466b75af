"""The AudioSocket protocol core (live/frames.py), bytes in and typed frames out, without I/O.

What Asterisk 22.10 sends a spy channel is what matters: the 16-byte uuid frame first, then 20 ms
audio frames (0x10: 320 bytes at 8 kHz for a channel without a codec, 0x12: 640 bytes at 16 kHz),
arriving in TCP reads that cut frames anywhere or carry many at once. A payload that cannot be
what its kind says is a :class:`FrameError` (the stream is not AudioSocket); a kind we never saw
is a typed :class:`Unknown`, not a crash. What we send back (hello, audio, the 20 ms silences that
keep ChanSpy awake) must read back the same through :class:`Reader`.
"""

from __future__ import annotations

import struct
import uuid

import pytest

from live import frames
from live.frames import Audio, Dtmf, Failed, FrameError, Hangup, Hello, Reader, Unknown

LEG = uuid.UUID("6f1c2a4e-8b3d-4e5f-9a0b-1c2d3e4f5a6b")


def frame(kind: int, payload: bytes) -> bytes:
    """A frame as the protocol lays it out, written here by hand (not with the module's encoder)."""
    return bytes([kind]) + struct.pack(">H", len(payload)) + payload


def ramp(n_bytes: int) -> bytes:
    """Distinct sample bytes, so a payload cut or shifted by one is noticed."""
    return bytes(i % 251 for i in range(n_bytes))


# a connection as Asterisk opens it: the uuid, then 20 ms of 8 kHz slin, then 20 ms of 16 kHz
STREAM = frame(0x01, LEG.bytes) + frame(0x10, ramp(320)) + frame(0x12, ramp(640))
EXPECTED = [Hello(LEG), Audio(8000, ramp(320)), Audio(16000, ramp(640))]


def test_the_uuid_frame_names_the_leg() -> None:
    assert Reader().feed(frame(0x01, LEG.bytes)) == [Hello(LEG)]


@pytest.mark.parametrize(("kind", "rate", "size"), [(0x10, 8000, 320), (0x12, 16000, 640)])
def test_audio_frames_carry_their_rate_and_last_20_ms(kind: int, rate: int, size: int) -> None:
    [got] = Reader().feed(frame(kind, ramp(size)))
    assert isinstance(got, Audio)
    assert got.rate == rate and got.pcm == ramp(size)
    assert got.seconds == pytest.approx(0.020)


def test_the_documented_rates_are_all_read() -> None:
    table = {0x11: 12000, 0x13: 24000, 0x14: 32000, 0x15: 44100, 0x16: 48000, 0x17: 96000, 0x18: 192000}
    for kind, rate in table.items():
        assert Reader().feed(frame(kind, ramp(rate // 50 * 2))) == [Audio(rate, ramp(rate // 50 * 2))]


def test_many_frames_in_one_read() -> None:
    reader = Reader()
    assert reader.feed(STREAM * 3) == EXPECTED * 3
    assert reader.pending == 0


def test_a_read_cut_at_any_byte_loses_and_doubles_nothing() -> None:
    for cut in range(1, len(STREAM)):
        reader = Reader()
        got = reader.feed(STREAM[:cut])
        got += reader.feed(STREAM[cut:])
        assert got == EXPECTED, f"cut at byte {cut}"
        assert reader.pending == 0, f"cut at byte {cut}"


def test_a_stream_fed_one_byte_at_a_time() -> None:
    reader = Reader()
    got = [f for i in range(len(STREAM)) for f in reader.feed(STREAM[i:i + 1])]
    assert got == EXPECTED
    assert reader.pending == 0


def test_pending_counts_the_bytes_of_a_cut_frame() -> None:
    reader = Reader()
    whole = frame(0x10, ramp(320))
    assert reader.feed(frame(0x01, LEG.bytes) + whole[:2]) == [Hello(LEG)]
    assert reader.pending == 2  # not even a whole header yet
    assert reader.feed(whole[2:100]) == []
    assert reader.pending == 100
    assert reader.feed(whole[100:]) == [Audio(8000, ramp(320))]
    assert reader.pending == 0


def test_an_empty_read_says_nothing() -> None:
    reader = Reader()
    assert reader.feed(b"") == []
    assert reader.pending == 0


@pytest.mark.parametrize("kind", [0x10, 0x12, 0x18])
def test_audio_of_an_odd_length_is_not_audiosocket(kind: int) -> None:
    with pytest.raises(FrameError):
        Reader().feed(frame(kind, ramp(321)))


@pytest.mark.parametrize("size", [0, 3, 15, 17, 36])
def test_a_uuid_of_the_wrong_length_is_not_audiosocket(size: int) -> None:
    with pytest.raises(FrameError):
        Reader().feed(frame(0x01, ramp(size)))


def test_dtmf_hangup_and_error_frames_are_typed() -> None:
    got = Reader().feed(frame(0x03, b"7") + frame(0x00, b"") + frame(0xFF, b"\x02") + frame(0xFF, b""))
    assert got == [Dtmf("7"), Hangup(), Failed(2), Failed(0)]


def test_an_unknown_kind_is_kept_whole_and_the_stream_goes_on() -> None:
    got = Reader().feed(frame(0x42, b"abc") + frame(0x10, ramp(320)))
    assert got == [Unknown(0x42, b"abc"), Audio(8000, ramp(320))]


def test_encode_lays_out_kind_length_payload() -> None:
    assert frames.encode(0x10, b"\x01\x02") == b"\x10\x00\x02\x01\x02"
    assert frames.encode(0x00) == b"\x00\x00\x00"
    assert len(frames.encode(0x10, bytes(0xFFFF))) == 3 + 0xFFFF  # the largest payload still fits


def test_encode_refuses_a_payload_longer_than_the_length_field() -> None:
    with pytest.raises(FrameError):
        frames.encode(0x10, bytes(0x10000))


@pytest.mark.parametrize(("rate", "kind", "size"), [(8000, 0x10, 320), (16000, 0x12, 640)])
def test_silence_is_20_ms_of_zeros_of_the_streams_own_kind(rate: int, kind: int, size: int) -> None:
    out = frames.silence(rate)
    assert out[0] == kind and struct.unpack(">H", out[1:3])[0] == size
    assert out[3:] == bytes(size)
    assert Reader().feed(out) == [Audio(rate, bytes(size))]


def test_what_we_send_reads_back_the_same() -> None:
    reader = Reader()
    sent = frames.hello(LEG) + frames.audio(ramp(320), 8000) + frames.audio(ramp(640), 16000)
    assert reader.feed(sent) == EXPECTED
    assert frames.hello(LEG) == frame(0x01, LEG.bytes)


def test_every_frame_tells_the_kind_it_came_with() -> None:
    # what the receiver counts to learn what Asterisk really sends
    sent = {0x00: b"", 0x01: LEG.bytes, 0x03: b"5", 0xFF: b"\x04", 0x42: b"?",
            **{kind: ramp(rate // 50 * 2) for kind, rate in frames.RATES.items()}}
    for kind, payload in sent.items():
        [got] = Reader().feed(frame(kind, payload))
        assert frames.kind_of(got) == kind, hex(kind)
