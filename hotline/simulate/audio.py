"""Test speech for simulated phones: espeak-ng → 8 kHz PCMU (SIPp rtp_stream) and wav.

Chinese (cmn) for demos; Korean (ko) because the Vosk model shipped on PyPI is Korean, so the
transcription tests can recognise what the phones said. Timelines pad speech with silence so a
phone streams RTP for the whole call, as real phones do (recordings only grow while RTP flows).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

SPEECH: dict[str, tuple[str, str]] = {
    "caller_cmn": ("cmn", "你好，我要反映一下，我家门口的路灯坏了好几天了，晚上特别黑，请尽快派人修理。"),
    "agent_cmn": ("cmn", "您好！12345热线，1024号话务员为您服务。请问有什么可以帮您？"),
    "dept_cmn": ("cmn", "您好，这里是市城管局，我们明天安排人员去修理。"),
    "caller_ko": ("ko", "안녕하세요. 우리 집 앞 도로에 큰 구멍이 있어서 신고하려고 합니다. 빨리 고쳐 주세요."),
    "agent_ko": ("ko", "네, 시민 상담 센터입니다. 무엇을 도와드릴까요?"),
    "dept_ko": ("ko", "여기는 도로 관리과입니다. 내일 수리하겠습니다."),
}


def _run(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True)


def speech_wav(audio_dir: Path, name: str) -> Path:
    """8 kHz 16-bit mono wav of one phrase of SPEECH (cached by its text)."""
    voice, text = SPEECH[name]
    key = hashlib.sha1(f"{voice}:{text}".encode()).hexdigest()[:10]
    out = audio_dir / f"{name}.{key}.wav"
    if not out.exists():
        audio_dir.mkdir(parents=True, exist_ok=True)
        # this process's own temporaries, renamed into place: two test processes (make test runs two)
        # may make the same phrase at once, and neither may read the other's half-written file
        raw = out.with_suffix(f".{os.getpid()}.espeak.wav")
        done = out.with_suffix(f".{os.getpid()}.tmp.wav")
        # klatt reads Korean more clearly for the small Korean model
        _run("espeak-ng", "-v", f"{voice}+klatt" if voice == "ko" else voice, "-s", "130", "-w", str(raw), text)
        _run("sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", str(done))
        raw.unlink()
        os.replace(done, out)
    return out


def timeline(audio_dir: Path, parts: list[tuple[str, float | str]]) -> Path:
    """Raw PCMU of ``[("sil", 2.0), ("say", "caller_ko"), ("tone", "1000x30"), ("sil", 30)]`` for SIPp's
    rtp_stream (a tone: its frequency in Hz x its length in seconds)."""
    key = hashlib.sha1(repr(parts).encode()).hexdigest()[:12]
    out = audio_dir / f"tl-{key}.ulaw"
    if out.exists():
        return out
    audio_dir.mkdir(parents=True, exist_ok=True)
    inputs: list[str] = []
    temps: list[Path] = []
    for i, (kind, value) in enumerate(parts):
        if kind == "say":
            inputs.append(str(speech_wav(audio_dir, str(value))))
        elif kind in ("sil", "tone"):
            part = audio_dir / f"_{kind}-{key}-{i}.{os.getpid()}.wav"
            hz, _, seconds = str(value).partition("x")
            make = ["trim", "0", str(value)] if kind == "sil" else ["synth", seconds, "sine", hz, "vol", "0.5"]
            _run("sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(part), *make)
            temps.append(part)
            inputs.append(str(part))
        else:
            raise ValueError(f"unknown timeline part {kind!r}")
    tmp = out.with_suffix(f".{os.getpid()}.tmp")
    _run("sox", *inputs, "-t", "ul", str(tmp))
    os.replace(tmp, out)
    for t in temps:
        t.unlink()
    return out
