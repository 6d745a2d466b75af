"""Fixtures for recordings/: a throwaway var/ and database, two-leg recordings made with
espeak-ng and sox (as Asterisk's MixMonitor writes them), and one Vosk model per session."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from hotline.settings import Settings
from hotline.simulate import audio
from recordings.catalog import spool_dir
from recordings.db import make_engine, migrate
from tests.support.postgres import postgres_server  # noqa: F401  (the fixture)

ROOT = Path(__file__).resolve().parents[2]
AUDIO_CACHE = ROOT / "var" / "audio"  # espeak-ng phrases are cached across runs


@pytest.fixture
def rec_settings(tmp_path: Path) -> Settings:
    return Settings(var_dir=tmp_path / "var", ami_port=1, agi_port=1, transcribe_lease_s=30)


@pytest.fixture
def engine(rec_settings: Settings) -> Iterator[sa.Engine]:
    from ticketing.db import migrate as migrate_ticketing

    eng = make_engine(rec_settings.db_url)
    migrate_ticketing(eng)  # the call log (call_record) links calls to tickets
    migrate(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def spool(rec_settings: Settings) -> Path:
    path = spool_dir(rec_settings)
    path.mkdir(parents=True, exist_ok=True)
    return path


def sox(*args: str) -> None:
    subprocess.run(["sox", *args], check=True, capture_output=True)


def leg(path: Path, parts: list[tuple[str, Any]], total_s: float) -> Path:
    """An 8 kHz 16-bit mono wav of ``[("sil", 1.0), ("say", "caller_ko")…]`` padded to ``total_s``."""
    inputs, temps = [], []
    for i, (kind, value) in enumerate(parts):
        if kind == "say":
            inputs.append(str(audio.speech_wav(AUDIO_CACHE, str(value))))
        else:
            sil = path.with_name(f"_{path.stem}-{i}.wav")
            sox("-n", "-r", "8000", "-c", "1", "-b", "16", str(sil), "trim", "0", str(value))
            temps.append(sil)
            inputs.append(str(sil))
    raw = path.with_name(f"_{path.stem}-raw.wav")
    sox(*inputs, str(raw)) if len(inputs) > 1 else sox(inputs[0], str(raw))
    sox(str(raw), "-r", "8000", "-c", "1", "-b", "16", str(path), "pad", "0", str(total_s), "trim", "0", str(total_s))
    for t in [*temps, raw]:
        t.unlink()
    return path


def two_leg_call(folder: Path, base: str, citizen: list[tuple[str, Any]], operator: list[tuple[str, Any]],
                 total_s: float = 12.0) -> dict[str, Path]:
    """The three files MixMonitor leaves: ``<base>.wav`` (mixed), ``-in`` (citizen), ``-out`` (operator)."""
    folder.mkdir(parents=True, exist_ok=True)
    cin = leg(folder / f"{base}-in.wav", citizen, total_s)
    out = leg(folder / f"{base}-out.wav", operator, total_s)
    mixed = folder / f"{base}.wav"
    sox("-m", str(cin), str(out), str(mixed))
    return {"mixed": mixed, "citizen": cin, "operator": out}


CITIZEN_SAYS = [("sil", 3.0), ("say", "caller_ko")]
OPERATOR_SAYS = [("say", "agent_ko")]


@pytest.fixture
def make_call(spool: Path):
    def make(uid: str, when: str = "20261123-101500", total_s: float = 12.0) -> str:
        base = f"hotline-{when}-{uid}"
        two_leg_call(spool, base, CITIZEN_SAYS, OPERATOR_SAYS, total_s)
        return base

    return make


@pytest.fixture(scope="session")
def vosk_model() -> Any:
    """The Korean model, loaded once for the whole session (≈ 4.5 s, ≈ 1 GB)."""
    from recordings.transcribe import load_model, model_path

    return load_model(model_path(Settings()))
