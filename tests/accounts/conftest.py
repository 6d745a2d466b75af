"""An account database on SQLite and a clock the tests move by hand."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from accounts import db
from accounts.sessions import Sessions
from accounts.store import Accounts
from accounts.throttle import LoginThrottle
from hotline.db import make_engine


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def engine(tmp_path) -> Iterator[sa.Engine]:
    eng = make_engine(f"sqlite:///{tmp_path / 'accounts.db'}")
    db.migrate(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def accounts(engine: sa.Engine, clock: Clock) -> Accounts:
    return Accounts(engine, sessions=Sessions(engine, idle_s=1800, absolute_s=8 * 3600, clock=clock),
                    throttle=LoginThrottle(engine, per_account=5, per_client=20, window_s=900, clock=clock),
                    clock=clock)
