"""Call recordings for tests and benchmarks: two-leg calls built as MixMonitor leaves them, and a
look at whether a recording carries speech.

The legs are 8 kHz 16-bit mono wavs of espeak-ng phrases (the simulator's, cached under
var/audio/) and silences, made with sox, so the real Vosk models hear speech, not noise.
"""

from __future__ import annotations

import array
import math
import subprocess
import wave
from pathlib import Path

from hotline.simulate import audio
from testkit import ROOT

AUDIO_CACHE = ROOT / "var" / "audio"  # espeak-ng phrases are cached across runs
PCM8K = ("-r", "8000", "-c", "1", "-b", "16")

Part = tuple[str, object]  # ("sil", seconds) or ("say", a phrase name of hotline.simulate.audio.SPEECH)


def sox(*args: str) -> None:
    subprocess.run(["sox", *args], check=True, capture_output=True)


def leg(path: Path, parts: list[Part], total_s: float) -> Path:
    """An 8 kHz 16-bit mono wav of ``[("sil", 1.0), ("say", "caller_ko")…]`` padded to ``total_s``."""
    inputs, temps = [], []
    for i, (kind, value) in enumerate(parts):
        if kind == "say":
            inputs.append(str(audio.speech_wav(AUDIO_CACHE, str(value))))
        else:
            sil = path.with_name(f"_{path.stem}-{i}.wav")
            sox("-n", *PCM8K, str(sil), "trim", "0", str(value))
            temps.append(sil)
            inputs.append(str(sil))
    try:
        sox(*inputs, *PCM8K, str(path), "pad", "0", str(total_s), "trim", "0", str(total_s))
    finally:
        for t in temps:
            t.unlink()
    return path


def two_leg_call(folder: Path, base: str, citizen: list[Part], operator: list[Part],
                 total_s: float = 12.0) -> dict[str, Path]:
    """The three files MixMonitor leaves: ``<base>.wav`` (mixed), ``-in`` (citizen), ``-out`` (operator)."""
    folder.mkdir(parents=True, exist_ok=True)
    cin = leg(folder / f"{base}-in.wav", citizen, total_s)
    out = leg(folder / f"{base}-out.wav", operator, total_s)
    mixed = folder / f"{base}.wav"
    sox("-m", str(cin), str(out), str(mixed))
    return {"mixed": mixed, "citizen": cin, "operator": out}


def loud_seconds(path: Path | str, threshold: int = 1500) -> float:
    """How many 100 ms windows of the recording carry speech-level energy, in seconds."""
    with wave.open(str(path)) as w:
        samples = array.array("h", w.readframes(w.getnframes()))
        rate = w.getframerate()
    window = rate // 10
    loud = sum(1 for i in range(0, len(samples) - window, window)
               if sum(abs(s) for s in samples[i:i + window]) / window > threshold)
    return loud / 10


def tone_windows(path: Path | str, hz: float, window_s: float = 0.5) -> list[tuple[float, float]]:
    """Per window of the recording: its RMS (16-bit scale) and the share of its energy at ``hz``
    (Goertzel: about 1 for a pure tone at that frequency, near 0 for speech, music or silence)."""
    with wave.open(str(path)) as w:
        samples = array.array("h", w.readframes(w.getnframes()))
        rate = w.getframerate()
    n = int(rate * window_s)
    coeff = 2 * math.cos(2 * math.pi * hz / rate)
    out = []
    for i in range(0, len(samples) - n + 1, n):
        block = samples[i:i + n]
        s1 = s2 = 0.0
        for x in block:
            s1, s2 = x + coeff * s1 - s2, s1
        energy = sum(x * x for x in block)
        at_hz = (s1 * s1 + s2 * s2 - coeff * s1 * s2) * 2 / n  # ≈ energy of the block's component at hz
        out.append((math.sqrt(energy / n), at_hz / energy if energy else 0.0))
    return out
