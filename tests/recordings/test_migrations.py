"""recordings/migrations: the tables the models describe, and rows catalogued before files were
checked (rec0004) keep their checksums or get one lazily, once."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from recordings import integrity
from recordings.db import make_engine, migrate
from recordings.models import OURS, RecordingFile
from recordings.sweep import Sweeper
from tests.recordings.conftest import leg
from tests.recordings.test_integrity import flip_byte


def test_the_migrations_build_exactly_the_models(engine) -> None:
    # a column added to a model without its migration (or the reverse) shows up here
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlmodel import SQLModel

    def ours(obj, name, type_, _reflected, _compare_to) -> bool:
        table = name if type_ == "table" else getattr(getattr(obj, "table", None), "name", None)
        return table is None or table in OURS

    with engine.connect() as c:
        assert compare_metadata(MigrationContext.configure(c, opts={"include_object": ours}), SQLModel.metadata) == []


@pytest.fixture
def old_catalog(rec_settings, tmp_path: Path):
    """A catalog as rec0003 left it: one file with the checksum taken at storing, two without."""
    eng = make_engine(rec_settings.db_url)
    migrate(eng, "rec0003")
    files = {name: leg(tmp_path / f"hotline-20261123-101500-1763869500.1{suffix}.wav", [("sil", 1.0)], 2.0)
             for name, suffix in (("mixed", ""), ("citizen", "-in"), ("operator", "-out"))}
    with eng.begin() as c:
        c.execute(sa.text("INSERT INTO recording (id, base, uniqueid, seat, operator, caller_num, survey,"
                          " registered_at, status, problem, duration_s) VALUES (1,"
                          " 'hotline-20261123-101500-1763869500.1', '1763869500.1', '8001', '1024', '', '',"
                          " '2025-11-23 02:15:00', 'ok', '', 2.0)"))
        for i, (name, path) in enumerate(files.items(), 1):
            digest = integrity.sha256_of(path) if name == "mixed" else ""
            c.execute(sa.text("INSERT INTO recording_file (id, recording_id, leg, path, size_bytes, duration_s, sha256,"
                              " status, problem) VALUES (:id, 1, :leg, :path, :size, 2.0, :sha, 'ok', '')"),
                      {"id": i, "leg": name, "path": str(path), "size": path.stat().st_size, "sha": digest})
    migrate(eng)
    yield eng, files
    eng.dispose()


def test_an_old_row_keeps_its_checksum_and_one_without_gets_it_at_its_first_read_once(old_catalog) -> None:
    eng, files = old_catalog
    with Session(eng) as s:
        rows = {f.leg: f for f in s.exec(select(RecordingFile))}
    assert (rows["mixed"].sha256_source, rows["citizen"].sha256_source) == ("catalog", "")
    assert rows["citizen"].sha256 == "" and rows["citizen"].checked_at is None
    with eng.connect() as c:
        assert c.execute(sa.text("SELECT count(*) FROM recording_orphan")).scalar_one() == 0

    with Session(eng) as s:
        integrity.checked_path(s, s.get(RecordingFile, rows["citizen"].id))  # the first read takes it
    with Session(eng) as s:
        citizen = s.get(RecordingFile, rows["citizen"].id)
    assert (citizen.sha256, citizen.sha256_source) == (integrity.sha256_of(files["citizen"]), "late")
    assert citizen.checked_at is not None

    flip_byte(files["citizen"])  # from now on it vouches for the bytes, like any other checksum
    with Session(eng) as s, pytest.raises(integrity.Unreadable, match="录音文件校验失败"):
        integrity.checked_path(s, s.get(RecordingFile, rows["citizen"].id))
    with Session(eng) as s:
        assert s.get(RecordingFile, rows["citizen"].id).sha256 == citizen.sha256  # taken once, not again


def test_the_sweep_gives_the_old_rows_their_checksums_too(old_catalog, rec_settings) -> None:
    eng, files = old_catalog
    done = Sweeper(eng, rec_settings).run()
    assert (done.checked, done.late, done.corrupt, done.missing) == (3, 2, 0, 0)
    with Session(eng) as s:
        rows = {f.leg: f for f in s.exec(select(RecordingFile))}
    assert {leg: f.sha256_source for leg, f in rows.items()} == {"mixed": "catalog", "citizen": "late",
                                                                   "operator": "late"}
    assert all(f.sha256 == integrity.sha256_of(files[leg]) for leg, f in rows.items())


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_live_legs_get_parts_and_keep_their_rows(dialect: str, rec_settings, request) -> None:
    # rec0006: a speaker may have two legs (the operator before and after a transfer); a leg written
    # before keeps its row as part 1. On both databases: rec0005's unnamed constraint is found
    if dialect == "postgresql":
        url = request.getfixturevalue("postgres_server").create_database()
    else:
        url = rec_settings.db_url
    eng = make_engine(url)
    try:
        migrate(eng, "rec0005")
        with eng.begin() as c:
            c.execute(sa.text("INSERT INTO recording_live_leg (call_id, speaker, seat, node, model, state, started_at, "
                              "audio_s, lines, words) VALUES ('c1', 'operator', '8001', 'n', 'm', 'complete', "
                              "'2026-12-06 10:00:00+00', 3.0, '[]', '[]')"))
        migrate(eng)
        from recordings import live_legs

        [old] = live_legs.legs_of(eng, "c1")
        assert (old.speaker, old.part, old.seat) == ("operator", 1, "8001")
        live_legs.save(eng, call_id="c1", speaker="operator", part=2, seat="8002")
        assert [r.part for r in live_legs.legs_of(eng, "c1")] == [1, 2]
        with pytest.raises(sa.exc.IntegrityError), eng.begin() as c:  # still one row per call, speaker and part
            c.execute(sa.text("INSERT INTO recording_live_leg (call_id, speaker, part, seat, node, model, state, "
                              "started_at, audio_s, lines, words) VALUES ('c1', 'operator', 2, '', '', '', "
                              "'listening', '2026-12-06 10:00:00+00', 0, '[]', '[]')"))
        from alembic import command
        from alembic.config import Config

        from recordings.db import MIGRATIONS

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        with eng.begin() as conn:  # and back: the second operator's leg goes, the first stays
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "rec0005")
        with eng.connect() as c:
            assert c.execute(sa.text("SELECT call_id, speaker FROM recording_live_leg")).all() == [("c1", "operator")]
    finally:
        eng.dispose()
