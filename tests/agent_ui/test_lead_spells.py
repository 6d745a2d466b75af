"""The seat spells the node on duty writes for the lead's reports (agent_ui/lead/runtime.py): stored in
rounds, not a commit per seat change; kept and tried again while the database refuses them; and
written before the node stops."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import pytest
import sqlalchemy as sa

from agent_ui.db import migrate
from agent_ui.lead import LeadConfig, LeadRuntime, LeadStore
from agent_ui.lead import runtime as lead_runtime
from cti.domain import SeatStateChanged
from hotline.bus import InProcessBus
from hotline.db import make_engine
from tests.support import migrated

pytestmark = pytest.mark.timeout(60)
STATES = ("ready", "ringing", "on_call", "wrap_up")


class Counted(LeadStore):
    """The real store, counting its rounds, refusing the first ``refuse`` of them."""

    def __init__(self, *args, refuse: int = 0, **kw) -> None:
        super().__init__(*args, **kw)
        self.rounds: list[int] = []
        self.refuse = refuse

    def add_spells(self, spells) -> int:
        if self.refuse:
            self.refuse -= 1
            raise OSError("database is locked")
        n = super().add_spells(spells)
        self.rounds.append(n)
        return n


class NoEmergencies:
    def emergencies(self, since) -> list:
        return []


def store_at(tmp_path: Path, refuse: int = 0) -> Counted:
    return Counted(make_engine(migrated.sqlite_url(tmp_path / "ui.db", migrate)), refuse=refuse)


def shift(seats: int, changes: int, t0: float = 1_795_400_000.0) -> list[SeatStateChanged]:
    """Every seat through ``changes`` states, a second apart, all seats at once (a burst of calls)."""
    return [SeatStateChanged(at=t0 + k, seat=f"9{s:03d}", state=STATES[k % 4], previous=STATES[(k - 1) % 4],
                             reason="", operator=f"op9{s:03d}") for k in range(changes) for s in range(seats)]


async def run(store: LeadStore, events: list[SeatStateChanged], *, settle: float = 0.0) -> LeadRuntime:
    bus = InProcessBus()
    lead = LeadRuntime(LeadConfig(), store, bus, None, NoEmergencies(), None)  # type: ignore[arg-type]
    await lead.start()
    await asyncio.sleep(0)  # its subscription is taken
    for e in events:
        await bus.publish(e)
    await asyncio.sleep(settle)
    await lead.stop()
    return lead


def stored(store: LeadStore) -> list[tuple]:
    import sqlalchemy as sa

    with store.engine.connect() as c:
        return [tuple(r) for r in c.execute(sa.text("SELECT seat, state, started_at FROM seat_spell ORDER BY id"))]


def test_a_burst_of_seat_changes_is_stored_in_rounds_each_spell_once(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    asyncio.run(run(store, shift(seats=200, changes=5), settle=0.5))
    rows = stored(store)
    assert len(rows) == 200 * 4 and len(set(rows)) == len(rows)  # the first state opens a spell, each next closes one
    assert sum(store.rounds) == 800 and len(store.rounds) < 100, store.rounds  # not a transaction a spell


def test_spells_the_database_refuses_wait_and_are_stored_in_their_order(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lead_runtime, "SPELL_RETRY_S", (0.05,))
    store = store_at(tmp_path, refuse=3)
    lead = asyncio.run(run(store, shift(seats=3, changes=4), settle=0.5))
    rows = stored(store)
    assert len(rows) == 9 and lead.spells_lost == 0
    assert [r[2] for r in rows] == sorted(r[2] for r in rows)  # the refused ones first, as they happened


def test_the_spells_of_the_last_moment_are_stored_when_the_node_stops(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    asyncio.run(run(store, shift(seats=50, changes=3)))  # stopped at once, the writer mid-round or not begun
    assert len(stored(store)) == 100


def test_with_the_database_away_for_long_the_oldest_spells_go_first_and_it_is_said(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(lead_runtime, "SPELLS_MAX", 10)
    monkeypatch.setattr(lead_runtime, "SPELL_RETRY_S", (0.05,))
    store = store_at(tmp_path, refuse=10**6)
    lead = asyncio.run(run(store, shift(seats=5, changes=5), settle=0.2))
    assert lead.spells_lost == 10 and stored(store) == []
    assert "dropped" in caplog.text and "not stored at stop" in caplog.text


class Picky(Counted):
    """The real store, refusing (as PostgreSQL would, for a seat longer than its column) any
    transaction that holds the seat ``bad``'s spells."""

    bad = "9-too-long"

    def add_spells(self, spells) -> int:
        spells = list(spells)
        if any(sp[0] == self.bad for sp in spells):
            raise sa.exc.DataError("INSERT INTO seat_spell", {}, Exception("value too long for type varchar(32)"))
        return super().add_spells(spells)


def test_a_spell_the_database_refuses_for_what_it_holds_loses_only_itself(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Not the database away (its rounds wait and are tried again) but one spell it will never take,
    or one with a time no clock gives: those alone are dropped and said, the others of their round
    are stored at once, not held behind them until the cap."""
    store = Picky(store_at(tmp_path).engine)
    t0 = 1_795_400_000.0
    odd = [SeatStateChanged(at=t0 + k, seat=Picky.bad, state=STATES[k % 4], previous=STATES[(k - 1) % 4])
           for k in range(3)]  # two spells the database refuses
    odd += [SeatStateChanged(at=t, seat="9998", state=STATES[k % 4], previous=STATES[(k - 1) % 4])
            for k, t in enumerate([t0, math.nan, t0 + 2])]  # two spells with a NaN end or start
    lead = asyncio.run(run(store, odd + shift(seats=20, changes=4, t0=t0 + 0.5), settle=0.5))
    rows = stored(store)
    assert len(rows) == 20 * 3 and {r[0] for r in rows} == {f"9{s:03d}" for s in range(20)}
    assert lead.spells_lost == 4
    assert "refused by the database; dropped" in caplog.text and "no usable times" in caplog.text
