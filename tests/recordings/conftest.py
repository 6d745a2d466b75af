"""Fixtures for recordings/: a throwaway var/ and database, two-leg recordings made with
espeak-ng and sox (as Asterisk's MixMonitor writes them: testkit.audio), and one Vosk model per session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from hotline.settings import Settings
from recordings.catalog import spool_dir
from recordings.db import make_engine, migrate
from testkit.audio import Part, leg, two_leg_call
from tests.support.postgres import postgres_server  # noqa: F401  (the fixture)

__all__ = ["CITIZEN_SAYS", "OPERATOR_SAYS", "leg", "two_leg_call"]  # the recordings tests import these from here


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


CITIZEN_SAYS: list[Part] = [("sil", 3.0), ("say", "caller_ko")]
OPERATOR_SAYS: list[Part] = [("say", "agent_ko")]


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
