"""Looking into recordings the tests made: is there speech in them?"""

from __future__ import annotations

import array
import wave
from pathlib import Path


def loud_seconds(path: Path | str, threshold: int = 1500) -> float:
    """How many 100 ms windows of the recording carry speech-level energy, in seconds."""
    with wave.open(str(path)) as w:
        samples = array.array("h", w.readframes(w.getnframes()))
        rate = w.getframerate()
    window = rate // 10
    loud = sum(1 for i in range(0, len(samples) - window, window)
               if sum(abs(s) for s in samples[i:i + window]) / window > threshold)
    return loud / 10
