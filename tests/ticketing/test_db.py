"""ticketing/db.py: a prepared read gives exactly what SQLAlchemy gives, on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.ticketing.test_service import intake
from ticketing.callers import _lookup_statement
from ticketing.db import PreparedQuery


def test_the_prepared_lookup_matches_sqlalchemy_row_for_row(svc, people, engine, clock) -> None:
    for i in range(4):
        svc.tickets.create(intake(title=f"第{i}次来电"), people.operator)
        clock.advance(days=3)
    svc.callers.set_flags("13853012345", people.lead, vip=True)
    since = clock() - timedelta(days=5)
    for number, lim in (("13853012345", 5), ("13853012345", 2), ("13900000000", 5)):
        values = {"n": number, "since": since, "lim": lim}
        with engine.connect() as c:
            expected = [tuple(r) for r in c.execute(_lookup_statement(), values)]
        got = PreparedQuery(engine, _lookup_statement()).all(**values)
        assert [tuple(r) for r in got] == expected
    first = got[0]
    assert (first.total, first.id) == (0, None)  # nobody: the counts still come, with no ticket


def test_values_come_back_typed(svc, people, engine) -> None:
    svc.tickets.create(intake(), people.operator)
    svc.callers.set_flags("13853012345", people.lead, blacklisted=True)
    [row] = PreparedQuery(engine, _lookup_statement()).all(n="13853012345", since=datetime(2020, 1, 1, tzinfo=UTC),
                                                            lim=5)
    assert row.created_at.tzinfo is not None and row.created_at.utcoffset() == timedelta(0)
    assert row.blacklisted is True and row.vip is False and row.total == 1 and row.r30 == 1
    assert isinstance(row.id, int) and isinstance(row.confidential, bool)

