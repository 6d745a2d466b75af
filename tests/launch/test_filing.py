"""A finished call is filed for good (launch/filing.py): journaled before the first try, kept
while the database refuses it, stored once when it comes back — also by the next process after a
crash — and never twice."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from hotline.calls import FinishedCall
from hotline.outbox import Outbox
from hotline.settings import Settings
from launch import compose
from launch.filing import CallFiler

BASE = "hotline-20261123-101500-1763866021.42"
CALL = FinishedCall(call_id="1763866021.42", caller_num="13953012345", queue="hotline", seat="8001",
                    operator="op1024", job_number="1024", offered_at=1763866021.0, answered_at=1763866024.0,
                    ended_at=1763866090.0, wait_ms=3000, within_rule=True, talk_s=66.0, seats_rung=("8001",),
                    recordings=(f"{BASE}.wav",), recording_base=BASE, survey=1)


@pytest.fixture
def node(tmp_path: Path):
    built = compose.build(Settings(var_dir=tmp_path / "var"), set())
    yield built
    built.engine.dispose()


def locked(engine: sa.Engine):
    """The call log's table refuses writes, as a database that is locked or away would."""
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TRIGGER no_calls BEFORE INSERT ON call_record "
                             "BEGIN SELECT RAISE(ABORT, 'database is locked'); END"))

    def unlock() -> None:
        with engine.begin() as conn:
            conn.execute(sa.text("DROP TRIGGER no_calls"))
    return unlock


def test_a_call_the_database_refuses_waits_in_the_outbox_and_is_stored_once_it_comes_back(node) -> None:
    filer = CallFiler(node.store.calls, node.engine, node.settings, node.filer.outbox, sleep=lambda _s: None)
    unlock = locked(node.engine)
    assert filer.file(CALL) is False  # three tries, all refused: nothing lost, nothing raised
    assert filer.pending == 1 and node.store.calls.list() == []
    assert filer.outbox.folder.stat().st_mode & 0o077 == 0  # citizens' numbers: the service's own
    [(key, record)] = filer.outbox.pending()
    assert key == CALL.call_id and FinishedCall.from_record(record) == CALL  # the whole call, as it was
    assert filer.retry_pending() == 0 and filer.pending == 1  # still refused: still kept
    unlock()
    assert filer.retry_pending() == 1 and filer.pending == 0
    [row] = node.store.calls.list()
    assert (row["id"], row["seat"], row["wait_s"], row["abandoned"]) == (CALL.call_id, "8001", 3.0, False)
    assert filer.file(CALL) is True  # reported again (a resync): still one row
    assert len(node.store.calls.list()) == 1 and filer.pending == 0


def test_what_a_crashed_process_left_in_the_outbox_is_filed_by_the_next(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path / "var")
    Outbox(settings.call_outbox_dir).put(CALL.call_id, CALL.as_record())  # died before storing it
    (settings.call_outbox_dir / "garbage.json").write_text("{not json")
    node = compose.build(settings, set())
    try:
        assert node.filer.retry_pending() == 1 and node.filer.pending == 0
        [row] = node.store.calls.list()
        assert row["recording_id"] == BASE
        assert (settings.call_outbox_dir / "bad" / "garbage.json").is_file()  # set aside, said
    finally:
        node.engine.dispose()


def test_an_older_outbox_entry_still_reads() -> None:
    record = json.loads(json.dumps(CALL.as_record())) | {"a_field_from_the_future": 1}
    assert FinishedCall.from_record(record) == CALL
