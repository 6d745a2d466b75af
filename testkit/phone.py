"""The browser phone under test or benchmark: chromium's flags for a fake microphone, the tone it
plays, and when a known tone first reaches a recording."""

from __future__ import annotations

import subprocess
from pathlib import Path

from testkit.audio import tone_windows


def fake_media(wav: Path) -> tuple[str, ...]:
    """Chromium's flags for a browser phone under test: a fake microphone playing ``wav`` (looped),
    granted without a prompt, sound without a click, loopback ICE candidates, no mDNS names."""
    return ("--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={wav}", "--autoplay-policy=no-user-gesture-required",
            # the host's only candidates may be loopback ones; no mDNS names Asterisk cannot resolve
            "--allow-loopback-in-peer-connection", "--disable-features=WebRtcHideLocalIpsWithMdns")


def tone_wav(path: Path, hz: int, seconds: float, rate: int = 48000) -> Path:
    """A mono 16-bit sine at half scale (what the fake microphone plays)."""
    subprocess.run(["sox", "-n", "-r", str(rate), "-c", "1", "-b", "16", str(path), "synth", str(seconds), "sine",
                    str(hz), "vol", "0.5"], check=True, capture_output=True)
    return path


def first_tone_ms(recording: Path, hz: int, window_s: float = 0.02) -> float | None:
    """Milliseconds from the start of a recording to the first window that is mostly ``hz``."""
    for i, (rms, share) in enumerate(tone_windows(recording, hz, window_s)):
        if rms > 300 and share > 0.5:
            return i * window_s * 1000
    return None
