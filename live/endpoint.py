"""Where a sentence ends, from the leg's own loudness: the pause after it.

Why not the recogniser's own end-of-sentence rule: Vosk ends a sentence when its model hears
silence phones for long enough, and on a phone line's floor (pink noise at -64 dBFS in the bench,
street noise on a mobile) it often does not: measured on the bench's legs, Vosk alone settled a
sentence 1.5 s (p50) and 6.2 s (p95) after it was spoken, 17 s at a -46 dBFS floor. The operator
reads the line that long after it was said. Here a sentence ends once the leg has been quiet for
``pause_s`` (0.6 s) after at least ``min_speech_s`` of speech, and the recogniser is asked for its
final there (0.68 / 0.80 s on the same legs, and no words lost).

"Quiet" is relative to the line: each leg keeps its own noise floor (the quietest 20 ms frame,
rising slowly, ``rise_db_s`` a second, so a line that got noisier is followed within seconds, and
faster in the leg's first ``learn_s``, when nothing is known of it), and a
frame is speech when it is ``margin_db`` above that floor and above ``speech_dbfs`` (a digitally
silent line, -90 dBFS, would otherwise call the faintest hiss speech). A pure state machine over the
audio's own time: no clock, no I/O.
"""

from __future__ import annotations

import array
import math
import operator
import sys
from dataclasses import dataclass

FRAME_S = 0.02  # Asterisk's frame: the unit the floor and the pause are counted in
_FULL_SCALE = 32768.0**2


def frame_dbfs(samples: array.array) -> float:
    """A frame's loudness (RMS, dB below full scale); digital zero is -90."""
    power = sum(map(operator.mul, samples, samples)) / max(len(samples), 1)
    return 10 * math.log10(max(power, 1.0) / _FULL_SCALE)


@dataclass(slots=True)
class Endpointer:
    """Fed a leg's 16-bit mono PCM in any sizes; :meth:`push` says when a sentence ended in it."""

    rate: int
    pause_s: float = 0.6
    min_speech_s: float = 0.2
    margin_db: float = 12.0
    rise_db_s: float = 4.0
    learn_s: float = 2.0  # a leg's first seconds: the floor is not known yet and rises faster
    learn_rise_db_s: float = 15.0
    speech_dbfs: float = -55.0
    floor_dbfs: float | None = None  # the line's noise floor as learnt so far
    speech_s: float = 0.0  # speech since the last end
    quiet_s: float = 0.0  # the pause so far
    heard_s: float = 0.0  # audio taken
    voiced: bool = False  # the last push held speech
    _rest: bytes = b""  # a part frame, kept for the next push

    def push(self, pcm: bytes) -> bool:
        """Take audio; True if a sentence ended somewhere in it (then counting starts again)."""
        size = int(self.rate * FRAME_S) * 2
        data = self._rest + pcm
        whole = len(data) - len(data) % size
        self._rest = data[whole:]
        ended = self.voiced = False
        samples = array.array("h", data[:whole])
        if sys.byteorder != "little":  # slin on the wire is little-endian
            samples.byteswap()
        n = size // 2
        for i in range(0, len(samples), n):
            ended = self._frame(frame_dbfs(samples[i:i + n])) or ended
        return ended

    def reset(self) -> None:
        """The recogniser ended a sentence itself: the next one starts here (the floor is kept)."""
        self.speech_s = self.quiet_s = 0.0

    @property
    def threshold_dbfs(self) -> float:
        floor = self.floor_dbfs if self.floor_dbfs is not None else -90.0
        return max(floor + self.margin_db, self.speech_dbfs)

    def _frame(self, db: float) -> bool:
        self.heard_s += FRAME_S
        if self.floor_dbfs is None:
            # a leg that starts with a word must not learn the word as its floor: start no higher
            # than where the threshold is the absolute one, and rise from there
            self.floor_dbfs = min(db, self.speech_dbfs - self.margin_db)
        elif db < self.floor_dbfs:
            self.floor_dbfs = db
        else:
            self.floor_dbfs += (self.learn_rise_db_s if self.heard_s <= self.learn_s else self.rise_db_s) * FRAME_S
        if db > self.threshold_dbfs:
            self.voiced = True
            self.speech_s += FRAME_S
            self.quiet_s = 0.0
            return False
        self.quiet_s += FRAME_S
        if self.speech_s >= self.min_speech_s and self.quiet_s >= self.pause_s - 1e-9:
            self.speech_s = 0.0
            return True
        return False
