"""Where a sentence ends (live/endpoint.py), on synthetic lines whose loudness is known.

Speech is a 300 Hz tone at -20 dBFS, a line's floor is seeded white noise at a given dBFS; both in
8 kHz slin as Asterisk sends a spy channel. Checked: the end is said once the leg has paused for
``pause_s`` (to the frame), never inside a shorter pause or after a click; the floor is each line's
own (a -40 dBFS street is quiet, and a line that turns noisy mid-call is followed within seconds);
a digitally silent line's faint hiss is not speech; audio cut anywhere gives the same answer.
"""

from __future__ import annotations

import array
import math
import random

import pytest

from live.endpoint import FRAME_S, Endpointer, frame_dbfs

RATE = 8000
FRAME = int(RATE * FRAME_S)


def tone(seconds: float, dbfs: float = -20.0) -> bytes:
    amp = 32768 * 10 ** (dbfs / 20) * math.sqrt(2)  # RMS of a sine is its peak / √2
    n = int(RATE * seconds)
    return array.array("h", (int(amp * math.sin(2 * math.pi * 300 * i / RATE)) for i in range(n))).tobytes()


def noise(seconds: float, dbfs: float, seed: int = 1) -> bytes:
    rnd = random.Random(seed)
    amp = 32768 * 10 ** (dbfs / 20) * math.sqrt(3)  # RMS of uniform noise is its bound / √3
    return array.array("h", (int(rnd.uniform(-amp, amp)) for _ in range(int(RATE * seconds)))).tobytes()


def mix(a: bytes, b: bytes) -> bytes:
    x, y = array.array("h", a), array.array("h", b)
    return array.array("h", (max(-32768, min(32767, p + q)) for p, q in zip(x, y, strict=True))).tobytes()


def ends_at(ep: Endpointer, pcm: bytes, piece: int = FRAME * 2) -> list[float]:
    """The times (end of the piece, s from the start of ``pcm``) at which the endpointer said an end."""
    out = []
    for i in range(0, len(pcm), piece):
        if ep.push(pcm[i:i + piece]):
            out.append(round((i + len(pcm[i:i + piece])) / 2 / RATE, 3))
    return out


def test_frame_loudness_is_rms_in_dbfs() -> None:
    assert frame_dbfs(array.array("h", tone(FRAME_S))) == pytest.approx(-20.0, abs=0.2)
    assert frame_dbfs(array.array("h", noise(FRAME_S, -50.0))) == pytest.approx(-50.0, abs=1.5)
    assert frame_dbfs(array.array("h", bytes(FRAME * 2))) == pytest.approx(-90.3, abs=0.1)


def test_a_sentence_ends_once_the_leg_has_paused_for_pause_s() -> None:
    floor = -64.0
    pcm = mix(bytes(2 * RATE // 2) + tone(1.5) + bytes(2 * RATE * 2),
              noise(4.0, floor, seed=3))
    got = ends_at(Endpointer(RATE), pcm)
    assert got == [pytest.approx(2.0 + 0.6, abs=FRAME_S + 1e-6)], got


def test_a_shorter_pause_inside_the_sentence_does_not_end_it() -> None:
    floor = noise(6.0, -64.0)
    said = tone(1.0) + bytes(2 * int(RATE * 0.5)) + tone(1.0) + bytes(2 * int(RATE * 3.5))
    got = ends_at(Endpointer(RATE), mix(said, floor))
    assert len(got) == 1 and got[0] == pytest.approx(2.5 + 0.6, abs=FRAME_S + 1e-6), got


def test_a_click_is_not_a_sentence() -> None:
    pcm = mix(bytes(2 * RATE) + tone(0.1) + bytes(2 * RATE * 2), noise(3.1, -64.0))
    assert ends_at(Endpointer(RATE), pcm) == []


def test_each_sentence_of_a_leg_ends_once() -> None:
    parts = b"".join(tone(1.2) + bytes(2 * int(RATE * 1.5)) for _ in range(3))
    got = ends_at(Endpointer(RATE), mix(parts, noise(len(parts) / 2 / RATE, -64.0)))
    assert got == [pytest.approx(1.2 + 0.6 + k * 2.7, abs=FRAME_S + 1e-6) for k in range(3)], got


def test_a_noisy_line_has_its_own_floor() -> None:
    # a mobile in the street: -40 dBFS between words, the voice at -15; a fixed -50 dBFS threshold
    # would call the whole line speech and never end a sentence
    said = bytes(2 * RATE) + tone(1.5, -15.0) + bytes(2 * RATE * 2)
    ep = Endpointer(RATE)
    got = ends_at(ep, mix(said, noise(4.5, -40.0)))
    assert got == [pytest.approx(2.5 + 0.6, abs=FRAME_S + 1e-6)], got
    assert ep.floor_dbfs is not None and -46.0 < ep.floor_dbfs < -38.0


def test_a_line_that_turns_noisy_is_followed_within_seconds() -> None:
    ep = Endpointer(RATE)
    assert ends_at(ep, mix(tone(1.0) + bytes(2 * RATE), noise(2.0, -64.0))) != []
    # the caller walks into the street: 24 dB louder; the floor rises 4 dB a second to meet it (the
    # first seconds of the noise may pass for a sentence once: the recogniser then has no words to settle)
    assert len(ends_at(ep, noise(10.0, -40.0, seed=5))) <= 1
    assert ep.floor_dbfs is not None and ep.floor_dbfs > -46.0
    said = tone(1.0, -15.0) + bytes(2 * RATE * 2)
    got = ends_at(ep, mix(said, noise(3.0, -40.0, seed=6)))
    assert got == [pytest.approx(1.6, abs=FRAME_S + 1e-6)], got


def test_a_digitally_silent_lines_hiss_is_not_speech() -> None:
    # between words the spy sends zeros (-90 dBFS): the floor is -90, yet -70 dBFS hiss is no voice
    ep = Endpointer(RATE)
    pcm = bytes(2 * RATE) + noise(1.0, -70.0) + bytes(2 * RATE)
    assert ends_at(ep, pcm) == []
    assert ep.speech_s == 0.0
    assert ends_at(ep, tone(1.0) + bytes(2 * RATE)) == [pytest.approx(1.6, abs=FRAME_S + 1e-6)]


@pytest.mark.parametrize("piece", [7, 320, 1601, 3200, 16000])
def test_audio_cut_anywhere_gives_the_same_ends(piece: int) -> None:
    parts = b"".join(tone(1.0) + bytes(2 * int(RATE * 1.2)) for _ in range(2))
    pcm = mix(parts, noise(len(parts) / 2 / RATE, -60.0))
    whole = ends_at(Endpointer(RATE), pcm, FRAME * 2)
    assert len(whole) == 2
    # a piece reports an end anywhere inside it: compare by the frame the end fell in
    got = ends_at(Endpointer(RATE), pcm, piece)
    assert len(got) == 2
    for w, g in zip(whole, got, strict=True):
        assert w <= g < w + piece / 2 / RATE + FRAME_S


def test_reset_starts_the_next_sentence_afresh() -> None:
    ep = Endpointer(RATE)
    ep.push(tone(1.0))
    assert ep.speech_s > 0.9
    ep.reset()  # the recogniser settled the sentence itself
    assert ep.push(bytes(2 * RATE)) is False, "no second end for a sentence already settled"
    assert ep.floor_dbfs is not None, "the floor is the line's, kept"
