"""Chinese prompts: espeak-ng placeholders from asterisk-config/prompts.json, or recorded files.

A centre replaces a placeholder by dropping ``var/prompts/<name>.wav`` (e.g.
``var/prompts/hotline/survey.wav``); install converts it to what Asterisk plays (8 kHz mono wav).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from hotline.asterisk.render import directories, host_path
from hotline.settings import PROJECT_ROOT, Settings

MANIFEST = PROJECT_ROOT / "asterisk-config" / "prompts.json"


def manifest() -> dict[str, str]:
    return {k: v for k, v in json.loads(MANIFEST.read_text()).items() if not k.startswith("_")}


def speak(text: str, out: Path, voice: str = "cmn") -> None:
    """Text → 8 kHz 16-bit mono wav (what format_wav plays without transcoding to slin)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    raw = out.with_suffix(".espeak.wav")
    subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", str(raw), text], check=True,
                   capture_output=True)
    convert(raw, out)
    raw.unlink()


def convert(src: Path, out: Path) -> None:
    subprocess.run(["sox", str(src), "-r", "8000", "-c", "1", "-b", "16", str(out)], check=True,
                   capture_output=True)


def hold_music(out: Path) -> None:
    """A calm generated loop, so the chroot needs no music package."""
    notes = ["sine 523.25", "sine 659.25", "sine 783.99", "sine 659.25"]
    parts = []
    for i, note in enumerate(notes * 4):
        part = out.with_name(f"_moh{i}.wav")
        subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(part), "synth", "0.6", *note.split(),
                        "fade", "q", "0.05", "0.6", "0.3", "vol", "0.15"], check=True, capture_output=True)
        parts.append(str(part))
    subprocess.run(["sox", *parts, str(out)], check=True, capture_output=True)
    for p in parts:
        Path(p).unlink()


def install_prompts(settings: Settings, log: Callable[[str], None] = print) -> Path:
    """Generate (or copy recorded) prompts into Asterisk's zh sounds; cached by text."""
    data = host_path(settings, directories(settings)["data"])
    sounds = data / "sounds" / "zh"
    cache = settings.var_dir / "prompts-cache"
    custom = settings.var_dir / "prompts"
    for name, text in manifest().items():
        target = sounds / f"{name}.wav"
        target.parent.mkdir(parents=True, exist_ok=True)
        recorded = custom / f"{name}.wav"
        if recorded.exists():
            convert(recorded, target)
            continue
        key = hashlib.sha1(text.encode()).hexdigest()[:12]
        cached = cache / f"{name}.{key}.wav"
        if not cached.exists():
            speak(text, cached)
        shutil.copyfile(cached, target)
    # Never write through the chroot's own symlinks (sounds/en → /etc/alternatives/…): from the
    # host they resolve to the host's files. Channels speak zh (asterisk.conf, pjsip.conf).
    moh = data / "moh-hotline" / "hold.wav"
    if not moh.exists():
        moh.parent.mkdir(parents=True, exist_ok=True)
        hold_music(moh)
    log(f"prompts ready in {sounds}")
    return sounds
