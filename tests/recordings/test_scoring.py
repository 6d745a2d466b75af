"""Scoring forms: the arithmetic (pure) and the never-edited, versioned scores."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from recordings import scoring
from recordings.models import QaScore, Recording
from recordings.scoring import Item, ScoreError, total

FORM = [Item("opening", "开头语", 10), Item("taboo", "通话禁忌", 5)]


def test_total_adds_points_within_weights():
    assert total(FORM, {"opening": {"points": 7.5}, "taboo": {"points": 5}}) == (12.5, 15.0)


@pytest.mark.parametrize(("marks", "message"), [
    ({"opening": {"points": 10}}, "“通话禁忌”未评分"),
    ({"opening": {"points": 11}, "taboo": {"points": 0}}, "“开头语”的分数应在 0 到 10 之间"),
    ({"opening": {"points": -1}, "taboo": {"points": 0}}, "“开头语”的分数应在 0 到 10 之间"),
    ({"opening": {"points": "x"}, "taboo": {"points": 0}}, "“开头语”的分数不是数字"),
    ({"opening": {"points": 1}, "taboo": {"points": 0}, "extra": {"points": 1}}, "未知的检查项：extra"),
])
def test_bad_forms_are_refused_in_chinese(marks, message):
    with pytest.raises(ScoreError, match=message):
        total(FORM, marks)


def test_default_items_follow_the_seeds_and_weigh_100(engine):
    with Session(engine) as s:
        items = scoring.items(s)
    assert sum(i.weight for i in items) == 100
    assert [i.name for i in items][:2] == ["开头语", "结束语"] and items[-1].code == "taboo"


def test_a_filed_score_is_kept_when_corrected(engine):
    with Session(engine, expire_on_commit=False) as s:
        rec = Recording(base="hotline-20261123-101500-1763869500.1", operator="1024", status="ok")
        s.add(rec)
        s.commit()
        full = {i.code: {"points": i.weight} for i in scoring.items(s)}
        first = scoring.file_score(s, recording_id=rec.id, scorer="qa", marks=full, team="一班")
        with pytest.raises(ScoreError, match="更正请基于当前版本提交"):
            scoring.file_score(s, recording_id=rec.id, scorer="qa", marks=full)
        second = scoring.file_score(s, recording_id=rec.id, scorer="qa2", marks=full | {"taboo": {"points": 0}},
                                    supersedes=first.id, reason="复听发现禁用语", team="一班")
        with pytest.raises(ScoreError, match="更正请基于当前版本提交"):  # the old version cannot be corrected again
            scoring.file_score(s, recording_id=rec.id, scorer="qa", marks=full, supersedes=first.id, reason="x")
    with Session(engine) as s:
        old, new = s.get(QaScore, first.id), s.get(QaScore, second.id)
        assert (old.total, old.superseded, old.scorer, old.marks["taboo"]["points"]) == (100.0, True, "qa", 6.0)
        assert (new.version, new.supersedes_id, new.total, new.reason) == (2, first.id, 94.0, "复听发现禁用语")
    assert scoring.results(engine, "team") == [{"team": "一班", "scored": 1, "average": 94.0, "lowest": 94.0}]


def _filed(engine) -> int:
    with Session(engine, expire_on_commit=False) as s:
        rec = Recording(base="hotline-20261123-101500-1763869600.1", operator="1024", status="ok")
        s.add(rec)
        s.commit()
        full = {i.code: {"points": i.weight} for i in scoring.items(s)}
        return scoring.file_score(s, recording_id=rec.id, scorer="qa", marks=full).id


def _tamper(engine, sql: str, score_id: int) -> None:
    with pytest.raises(sa.exc.DBAPIError, match="immutable"), engine.begin() as conn:
        conn.execute(sa.text(sql), {"id": score_id})


def test_the_database_refuses_edits_and_deletes_of_filed_scores(engine):
    sid = _filed(engine)
    _tamper(engine, "UPDATE qa_score SET total = 1 WHERE id = :id", sid)
    _tamper(engine, "UPDATE qa_score SET scorer = 'someone' WHERE id = :id", sid)
    _tamper(engine, "DELETE FROM qa_score WHERE id = :id", sid)


@pytest.mark.postgres
def test_postgresql_refuses_them_too(postgres_server):
    from recordings.db import make_engine, migrate

    engine = make_engine(postgres_server.create_database())
    try:
        migrate(engine)
        sid = _filed(engine)
        _tamper(engine, "UPDATE qa_score SET total = 1 WHERE id = :id", sid)
        _tamper(engine, "DELETE FROM qa_score WHERE id = :id", sid)
        with engine.begin() as conn:  # the one allowed change: superseded by a new version
            conn.execute(sa.text("UPDATE qa_score SET superseded = true WHERE id = :id"), {"id": sid})
    finally:
        engine.dispose()
